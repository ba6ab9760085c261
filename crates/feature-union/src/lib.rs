//! No code: this package only asks for features of shared dependencies (see its manifest), so
//! that building any one function or the command line's `aws` build resolves them the same way.
