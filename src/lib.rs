pub mod buildspec;
pub mod flavors;
pub mod validate;
pub mod yaml;
