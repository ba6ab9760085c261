pub mod buildspec;
pub mod flavors;
pub mod generate;
pub mod settings;
pub mod validate;
pub mod yaml;
