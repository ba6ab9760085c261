//! One bound on how deeply outside input may nest.
//!
//! Settings, buildspecs, templates, CloudFormation events and webhook deliveries are walked
//! recursively once read. A document nested thousands of levels deep (a few kilobytes of
//! `[[[[` or `- - - -`) would otherwise end the process with a stack overflow: no message, and
//! for the custom resource no answer to CloudFormation. Every reader stops at
//! [`MAX_NESTING`] levels and says so. Real inputs stay under 20 levels.
//!
//! YAML is bounded in [`crate::yaml::read`]; JSON here: [`BoundedJson`] reads any JSON without
//! recursing past the bound (deeper parts are skipped by serde_json's non-recursive skipper) and
//! remembers where the input went too deep, so a Lambda event can still be read and answered.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The most levels of lists and mappings (arrays and objects) any input may nest.
pub const MAX_NESTING: usize = 100;

/// The input nests deeper than [`MAX_NESTING`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TooDeep {
    /// Where it first goes too deep, e.g. `ResourceProperties.Settings.build[0]`; empty for
    /// the document itself.
    pub path: String,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str("the document")?;
        } else {
            write!(f, "`{}`", self.path)?;
        }
        write!(
            f,
            " nests lists or objects more than {MAX_NESTING} levels deep; flatten it"
        )
    }
}

/// JSON that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("not valid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("{0}")]
    TooDeep(#[from] TooDeep),
}

/// A JSON value read with its nesting bounded. Parts deeper than [`MAX_NESTING`] are left out
/// (as `null`) and `too_deep` says where the first one was.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundedJson {
    pub value: Value,
    pub too_deep: Option<TooDeep>,
}

impl BoundedJson {
    /// The value, or where it nests too deeply.
    pub fn into_value(self) -> Result<Value, TooDeep> {
        match self.too_deep {
            None => Ok(self.value),
            Some(e) => Err(e),
        }
    }
}

/// Reads JSON text into a value, refusing input that nests deeper than [`MAX_NESTING`].
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    Ok(serde_json::from_slice::<BoundedJson>(bytes)?.into_value()?)
}

/// How much of the path to a too-deep place an error shows.
const SHOWN_SEGMENTS: usize = 6;

/// Checks JSON text against [`MAX_NESTING`] in one pass over its bytes, without parsing it:
/// for bodies that are then read into typed structures, where skipped fields are never
/// walked but should not pass unchecked either. Text that is not JSON passes; the parser
/// reports it.
pub fn check_text(bytes: &[u8]) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep {
                        path: String::new(),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct State {
    path: RefCell<Vec<Segment>>,
    too_deep: RefCell<Option<TooDeep>>,
}

impl State {
    fn note_too_deep(&self) {
        let mut slot = self.too_deep.borrow_mut();
        if slot.is_some() {
            return;
        }
        let mut path = String::new();
        let segments = self.path.borrow();
        for segment in segments.iter().take(SHOWN_SEGMENTS) {
            match segment {
                Segment::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Segment::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        if segments.len() > SHOWN_SEGMENTS {
            path.push('…');
        }
        *slot = Some(TooDeep { path });
    }
}

impl<'de> Deserialize<'de> for BoundedJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let state = State::default();
        let value = d.deserialize_any(Level {
            state: &state,
            depth: 0,
        })?;
        Ok(BoundedJson {
            value,
            too_deep: state.too_deep.into_inner(),
        })
    }
}

/// Reads one value whose enclosing collections number `depth`.
#[derive(Clone, Copy)]
struct Level<'s> {
    state: &'s State,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_NESTING {
            self.state.note_too_deep();
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        }
        let inner = Level {
            depth: self.depth + 1,
            ..self
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            self.state
                .path
                .borrow_mut()
                .push(Segment::Index(items.len()));
            let next = seq.next_element_seed(inner);
            self.state.path.borrow_mut().pop();
            match next? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_NESTING {
            self.state.note_too_deep();
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        }
        let inner = Level {
            depth: self.depth + 1,
            ..self
        };
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.state.path.borrow_mut().push(Segment::Key(key.clone()));
            let value = map.next_value_seed(inner);
            self.state.path.borrow_mut().pop();
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, levels: usize) -> String {
        format!("{}1{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn values_within_the_bound_read_as_serde_json_reads_them() {
        let text = br#"{"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "c": "d"}"#;
        let ours = from_slice(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(
            ours.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "c"]
        );
        from_slice(nested("[", "]", MAX_NESTING).as_bytes()).unwrap();
        from_slice(nested("{\"k\":", "}", MAX_NESTING).as_bytes()).unwrap();
    }

    #[test]
    fn arrays_and_objects_past_the_bound_are_refused_whatever_the_depth() {
        for levels in [MAX_NESTING + 1, 128, 129, 10_000, 1_000_000] {
            for (open, close) in [("[", "]"), ("{\"k\":", "}"), ("[{\"k\":", "}]")] {
                let err = from_slice(nested(open, close, levels).as_bytes()).unwrap_err();
                assert!(
                    err.to_string()
                        .contains("nests lists or objects more than 100 levels deep"),
                    "{levels} {open}: {err}"
                );
            }
        }
    }

    #[test]
    fn the_first_place_that_is_too_deep_is_named() {
        let text = format!(
            r#"{{"RequestType": "Create", "ResourceProperties": {{"Settings": {{"build": [0, {}]}}}}}}"#,
            nested("[", "]", MAX_NESTING)
        );
        let read: BoundedJson = serde_json::from_str(&text).unwrap();
        assert_eq!(read.value["RequestType"], "Create");
        let err = read.into_value().unwrap_err();
        assert_eq!(err.path, "ResourceProperties.Settings.build[1][0][0]…");
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        assert!(matches!(
            from_slice(b"{\"a\": [1, 2}"),
            Err(JsonError::Syntax(_))
        ));
    }

    #[test]
    fn the_text_check_counts_only_brackets_outside_strings() {
        check_text(nested("[", "]", MAX_NESTING).as_bytes()).unwrap();
        assert!(check_text(nested("{\"k\":", "}", MAX_NESTING + 1).as_bytes()).is_err());
        let in_strings = format!(r#"{{"a": "{}", "b": "\"[[[", "c": [1]}}"#, "[".repeat(1000));
        check_text(in_strings.as_bytes()).unwrap();
        assert_eq!(
            check_text(in_strings.as_bytes()).is_ok(),
            from_slice(in_strings.as_bytes()).is_ok()
        );
    }
}
