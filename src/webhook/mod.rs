//! GitHub webhook deliveries: signature verification, the push payload, routing by ref, and
//! the choice of flavors to rebuild. Pure functions; the Lambda function does the I/O.

pub mod checks;
pub mod merge_group;
pub mod pull_request;
pub mod push;
pub mod run;
pub mod signature;

#[cfg(test)]
mod tests;
