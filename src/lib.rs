pub mod flavors;
pub mod yaml;
