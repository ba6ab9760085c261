//! A deterministic block-style YAML emitter for the values we generate.

use std::fmt::Write as _;

/// A YAML value to emit. Maps keep their insertion order; that order is the output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    /// A token written verbatim, for numbers the schema wants unquoted (`version: 0.2`).
    Raw(&'static str),
    Seq(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    /// A string value.
    pub fn str(text: impl Into<String>) -> Self {
        Value::Str(text.into())
    }

    /// A sequence of strings.
    pub fn strs<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::Seq(items.into_iter().map(|s| Value::Str(s.into())).collect())
    }
}

/// Emits `value` as a YAML document (no `---`, trailing newline).
pub fn emit(value: &Value) -> String {
    let mut out = String::with_capacity(4096);
    match value {
        Value::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        Value::Seq(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            write_inline(&mut out, other);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a scalar or an empty collection on the current line.
fn write_inline(out: &mut String, value: &Value) {
    match value {
        Value::Str(s) => out.push_str(&scalar(s)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Raw(token) => out.push_str(token),
        Value::Seq(_) => out.push_str("[]"),
        Value::Map(_) => out.push_str("{}"),
    }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Seq(items) => !items.is_empty(),
        Value::Map(entries) => !entries.is_empty(),
        _ => false,
    }
}

fn write_map(out: &mut String, entries: &[(String, Value)], level: usize) {
    for (i, (key, value)) in entries.iter().enumerate() {
        // The first entry of a map inside a sequence item shares the `- ` line.
        if i > 0 || level == 0 || !out.ends_with("- ") {
            indent(out, level);
        }
        out.push_str(&scalar(key));
        out.push(':');
        write_value_after_key(out, value, level);
    }
}

fn write_value_after_key(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            write_map(out, entries, level + 2);
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, level + 2);
        }
        scalar_value => {
            out.push(' ');
            write_inline(out, scalar_value);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        match item {
            Value::Map(entries) if !entries.is_empty() => {
                out.push_str("- ");
                write_map(out, entries, level + 2);
            }
            nested if is_block(nested) => {
                out.push_str("-\n");
                if let Value::Seq(inner) = nested {
                    write_seq(out, inner, level + 2);
                }
            }
            scalar_value => {
                out.push_str("- ");
                write_inline(out, scalar_value);
                out.push('\n');
            }
        }
    }
}

/// Renders a string as a YAML scalar that every YAML 1.1 and 1.2 reader reads back as exactly
/// this string: plain when that is unambiguous, single-quoted when the text is printable, and
/// double-quoted with escapes otherwise.
pub fn scalar(text: &str) -> String {
    if !needs_quotes(text) {
        return text.to_owned();
    }
    if text.chars().all(is_printable_inline) {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('\'');
        for c in text.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
        return out;
    }
    double_quoted(text)
}

/// Characters that may appear in a single-quoted scalar on one line without changing meaning.
fn is_printable_inline(c: char) -> bool {
    match c {
        ' ' => true,
        '\u{feff}' | '\u{85}' | '\u{2028}' | '\u{2029}' => false,
        // Not in YAML's printable set: a reader rejects the file when they appear raw.
        '\u{fffe}' | '\u{ffff}' => false,
        c => !c.is_control(),
    }
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_printable_inline(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Words that YAML 1.1 or 1.2 readers resolve to null or a boolean when unquoted.
const RESERVED_WORDS: &[&str] = &[
    "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
    "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "<<", "=",
];

/// Whether `text` must be quoted to be read back as this exact string.
///
/// Deliberately conservative: anything a YAML 1.1 or 1.2 reader might resolve to null, a
/// boolean, a number, a date or a merge key is quoted, as is anything starting with an
/// indicator character or containing `: ` / ` #`.
pub fn needs_quotes(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return true;
    };
    if RESERVED_WORDS.contains(&text) {
        return true;
    }
    if first.is_whitespace() || text.ends_with(char::is_whitespace) {
        return true;
    }
    // Indicators that start something other than a plain scalar.
    if matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
            | '+'
    ) {
        return true;
    }
    // Numbers, dates, times and sexagesimals all start with a digit; `.5`, `.inf`, `.NaN` with a dot.
    if first.is_ascii_digit() {
        return true;
    }
    if first == '.' {
        let rest = &text[1..];
        // YAML 1.1's float pattern even matches `.` and `..`.
        if rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | 'e' | 'E' | '+' | '-'))
            || ["inf", "Inf", "INF", "nan", "NaN", "NAN"].contains(&rest)
        {
            return true;
        }
    }
    if text.ends_with(':') || text.contains(": ") || text.contains(" #") || text.contains(":\t") {
        return true;
    }
    !text.chars().all(|c| c != '\t' && is_printable_inline(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_stay_plain() {
        for s in [
            "standard-EXASOL-all",
            "python_3",
            "./build.sh",
            "a#b",
            "a:b",
            "x y z",
        ] {
            assert_eq!(scalar(s), s, "{s}");
        }
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "1.10",
            "3.10",
            "yes",
            "no",
            "on",
            "off",
            "null",
            "~",
            "0x1F",
            "*",
            "- x",
            "a: b",
            "a #b",
            " lead",
            "trail ",
            "",
            "-",
            "+1",
            ".5",
            ".inf",
            "2024-01-01",
            "<<",
            "a:",
        ] {
            assert!(scalar(s).starts_with(['\'', '"']), "{s:?} -> {}", scalar(s));
        }
    }

    #[test]
    fn single_quotes_are_doubled_and_controls_escaped() {
        assert_eq!(scalar("it's: x"), "'it''s: x'");
        assert_eq!(scalar("a\nb\t\"c\"\\"), "\"a\\nb\\t\\\"c\\\"\\\\\"");
        assert_eq!(scalar("\u{7}"), "\"\\x07\"");
        assert_eq!(scalar("\u{2028}"), "\"\\u2028\"");
    }

    #[test]
    fn nested_structures_use_block_style() {
        let doc = Value::Map(vec![
            ("version".into(), Value::Raw("0.2")),
            (
                "batch".into(),
                Value::Map(vec![
                    ("fast-fail".into(), Value::Bool(false)),
                    (
                        "build-graph".into(),
                        Value::Seq(vec![Value::Map(vec![
                            ("identifier".into(), Value::str("build_a")),
                            ("depend-on".into(), Value::strs(["build_b"])),
                        ])]),
                    ),
                ]),
            ),
            ("empty".into(), Value::Map(vec![])),
            (
                "nested".into(),
                Value::Seq(vec![Value::strs(["x"]), Value::Int(3)]),
            ),
        ]);
        assert_eq!(
            emit(&doc),
            "version: 0.2\nbatch:\n  fast-fail: false\n  build-graph:\n    - identifier: build_a\n      depend-on:\n        - build_b\nempty: {}\nnested:\n  -\n    - x\n  - 3\n"
        );
    }
}
