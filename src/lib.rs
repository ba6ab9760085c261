//! flavor-ci's core: flavor discovery, the settings schema, the buildspec model, generation
//! and validation. The command line and the Lambda functions are thin layers over it.

pub mod batch;
pub mod buildspec;
pub mod codebuild;
pub mod custom_resource;
pub mod flavors;
pub mod generate;
pub mod glob;
pub mod inputs;
pub mod layout;
pub mod nesting;
pub mod runs;
pub mod selection;
pub mod settings;
pub mod template;
pub mod text;
pub mod validate;
pub mod webhook;
pub mod yaml;

pub use nesting::MAX_NESTING;

/// A hash map for short string keys (flavor names, identifiers): foldhash, seeded per
/// process, is several times faster than the standard SipHash on them.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Writes `items` one per line, for errors that report every problem at once.
pub(crate) fn write_lines<T: std::fmt::Display>(
    f: &mut std::fmt::Formatter<'_>,
    items: &[T],
) -> std::fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str("\n")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}
