//! YAML in and out.
//!
//! Reading uses `saphyr-parser`, a maintained, pure-Rust YAML 1.2 parser that passes the
//! yaml-test-suite and reports a line and column for every event. We build our own small
//! tree from its events so that every node keeps its position (validation errors point at a
//! line) and every scalar keeps its source text (`3.10` stays `3.10`, never the float 3.1).
//!
//! Writing is our own: buildspecs are a small, known shape, and owning the emitter makes the
//! output byte-for-byte deterministic and lets us quote every string that *any* common YAML
//! reader — YAML 1.1 ones included, where `yes`, `on` and `0x1F` are not strings — would take
//! for something else. `serde_yaml` is deprecated and its forks leave 1.1 quoting to chance.

mod emit;
mod read;

pub use emit::{ReadBack, Value, emit, emit_read, emit_read_with, needs_quotes, scalar};
pub use read::{Kind, Node, ReadError, is_yaml_printable, read, read_optional};
