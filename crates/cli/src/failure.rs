//! A command's failure: what to print and the exit status.

use std::io;
use std::path::Path;

/// Exit status: the input (flavors, settings or a buildspec) has problems.
pub(crate) const EXIT_INVALID: u8 = 1;
/// Exit status: the command line asks for something this build cannot do.
#[cfg(not(feature = "aws"))]
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: a file could not be read or written.
pub(crate) const EXIT_IO: u8 = 3;

/// A failure to report: its message and exit status.
pub(crate) struct Failure {
    pub(crate) status: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn invalid(message: impl ToString) -> Self {
        Self {
            status: EXIT_INVALID,
            message: message.to_string(),
        }
    }
    #[cfg(not(feature = "aws"))]
    pub(crate) fn usage(message: impl ToString) -> Self {
        Self {
            status: EXIT_USAGE,
            message: message.to_string(),
        }
    }
    pub(crate) fn io(path: &Path, action: &str, e: &io::Error) -> Self {
        Self {
            status: EXIT_IO,
            message: format!("cannot {action} {}: {e}", path.display()),
        }
    }
}
