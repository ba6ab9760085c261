//! Why a request was refused or failed: the one list of faults, each with the HTTP status it
//! is answered with. The steps that can fail (reading GitHub among them) name a fault, never a
//! status.

/// Why a request was refused or failed, which decides its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The request is not a delivery flavor-ci can read (400).
    BadRequest,
    /// The signature is missing or wrong (401).
    Unauthenticated,
    /// Not a POST (405).
    Method,
    /// Another request is handling the same body (409).
    Busy,
    /// Larger than Lambda accepts (413).
    TooLarge,
    /// Neither JSON nor a form (415).
    MediaType,
    /// The commit cannot be built as it is (422).
    Unbuildable,
    /// The function or the stack is set up wrong (500).
    Misconfigured,
    /// A service answered wrongly or refused (502).
    Upstream,
    /// A service is unavailable or slow; redelivering later helps (503).
    Unavailable,
}

impl Fault {
    /// Whether trying the same delivery again later may succeed (a service unavailable,
    /// throttling, a timeout, a concurrent copy), as opposed to a lasting fault.
    pub(crate) fn is_transient(self) -> bool {
        matches!(self, Fault::Unavailable | Fault::Busy)
    }

    pub(crate) fn status(self) -> u16 {
        match self {
            Fault::BadRequest => 400,
            Fault::Unauthenticated => 401,
            Fault::Method => 405,
            Fault::Busy => 409,
            Fault::TooLarge => 413,
            Fault::MediaType => 415,
            Fault::Unbuildable => 422,
            Fault::Misconfigured => 500,
            Fault::Upstream => 502,
            Fault::Unavailable => 503,
        }
    }
}
