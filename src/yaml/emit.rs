//! A deterministic block-style YAML emitter for the values we generate.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::read::{Kind, Node, ReadError, pos, read};

/// A YAML value to emit. Maps keep their insertion order; that order is the output order.
/// Strings are borrowed from the model they describe where they can be, so emitting a large
/// document copies each string once, into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(u64),
    /// A token written verbatim, for numbers the schema wants unquoted (`version: 0.2`).
    Raw(&'static str),
    Seq(Vec<Value<'a>>),
    Map(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// A string value.
    pub fn str(text: impl Into<Cow<'a, str>>) -> Self {
        Value::Str(text.into())
    }

    /// A sequence of strings.
    pub fn strs<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Cow<'a, str>>,
    {
        Value::Seq(items.into_iter().map(|s| Value::Str(s.into())).collect())
    }
}

/// Emits `value` as a YAML document (no `---`, trailing newline).
pub fn emit(value: &Value<'_>) -> String {
    let mut w = Writer::default();
    w.document(value);
    w.out
}

/// Emits `value` and returns its text with the tree a YAML reader builds from that text
/// (the same tree [`read`](super::read) returns, positions included), without reading the
/// whole text again.
///
/// The layout this emitter writes (indentation, `- `, `key: `, `[]`, `{}`) depends only on the
/// shape of `value` and is checked against the reader for every shape by this module's tests.
/// What depends on the input is how each string is rendered, so every distinct rendering is
/// read back here by the YAML reader, once in the position of a list item and once in the
/// position of a key, and must come back as exactly its string. An error names the first
/// place such a rendering appears. Plain words (ASCII letters, digits and `_-./`, not reserved
/// for other meanings), which are most of a buildspec's strings, are the exception: that they
/// read back as themselves in either place is checked for thousands of words against the same
/// reader by this module's tests, so they are not read again for every document.
pub fn emit_read<'v>(value: &'v Value<'_>) -> Result<(String, Node<'v>), ReadError> {
    emit_read_with(value, &mut ReadBack::default())
}

/// [`emit_read`] for one of several documents: renderings an earlier document already read
/// back in the same place (a list item, a key) are not read again. A rendering stands for one
/// string only, so reading it back again would give the same answer.
pub fn emit_read_with<'v>(
    value: &'v Value<'_>,
    read_back: &mut ReadBack,
) -> Result<(String, Node<'v>), ReadError> {
    let mut w = Writer::default();
    // Documents written together are of a size: room for a quarter more than the last one
    // saves growing the text (and copying it) step by step.
    w.out.reserve(read_back.last_len + read_back.last_len / 4);
    let tree = w.document(value);
    w.read_back_scalars(read_back)?;
    read_back.last_len = w.out.len();
    Ok((w.out, tree))
}

/// The renderings that have read back as their strings, as list items and as keys; and the
/// length of the last document written.
#[derive(Debug, Default)]
pub struct ReadBack {
    values: HashSet<String, foldhash::fast::RandomState>,
    keys: HashSet<String, foldhash::fast::RandomState>,
    last_len: usize,
}

impl ReadBack {
    fn place(&mut self, place: Place) -> &mut HashSet<String, foldhash::fast::RandomState> {
        match place {
            Place::Value => &mut self.values,
            Place::Key => &mut self.keys,
        }
    }
}

/// Where a rendering was written: as a key, as a value, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Key,
    Value,
}

/// One distinct rendering and what it must read back as.
#[derive(Debug)]
struct Rendering {
    /// Where the rendering stands in the output, which only grows.
    start: usize,
    end: usize,
    /// Whether the rendering differs from the string it stands for (it is quoted).
    quoted: bool,
    as_key: bool,
    as_value: bool,
    /// Where it first appears in the document.
    line: usize,
    col: usize,
}

/// Distinct strings by their text. A string's rendering depends on its text alone, so the
/// text names the rendering; tokens, written verbatim, are kept apart (the token `true` and
/// the string `true` render differently).
type Renderings<'v> = HashMap<Cow<'v, str>, Rendering, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Writer<'v> {
    out: String,
    line: usize,
    /// Byte offset of the current line's start in `out`.
    line_start: usize,
    /// Whether the current line is ASCII so far (then its columns are its bytes).
    line_ascii: bool,
    strings: Renderings<'v>,
    tokens: Renderings<'v>,
}

impl Default for Writer<'_> {
    fn default() -> Self {
        Writer {
            out: String::with_capacity(4096),
            line: 1,
            line_start: 0,
            line_ascii: true,
            strings: Renderings::default(),
            tokens: Renderings::default(),
        }
    }
}

impl<'v> Writer<'v> {
    fn document(&mut self, value: &'v Value<'_>) -> Node<'v> {
        match value {
            Value::Map(entries) if !entries.is_empty() => self.map(entries, 0, false),
            Value::Seq(items) if !items.is_empty() => self.seq(items, 0),
            other => {
                let node = self.inline(other);
                self.newline();
                node
            }
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.line += 1;
        self.line_start = self.out.len();
        self.line_ascii = true;
    }

    fn indent(&mut self, n: usize) {
        const SPACES: &str = "                                                                ";
        let mut left = n;
        while left > 0 {
            let now = left.min(SPACES.len());
            self.out.push_str(&SPACES[..now]);
            left -= now;
        }
    }

    /// The 1-based column the next character is written at.
    fn col(&self) -> usize {
        let current = &self.out[self.line_start..];
        if self.line_ascii {
            current.len() + 1
        } else {
            current.chars().count() + 1
        }
    }

    fn node(&self, kind: Kind<'v>) -> Node<'v> {
        Node {
            line: pos(self.line),
            col: pos(self.col()),
            kind,
            tag: None,
        }
    }

    /// Writes a scalar or an empty collection on the current line.
    fn inline(&mut self, value: &'v Value<'_>) -> Node<'v> {
        match value {
            Value::Str(s) => self.string(s, Place::Value),
            Value::Bool(b) => self.token(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Int(n) => self.token(Cow::Owned(n.to_string())),
            Value::Raw(token) => self.token(Cow::Borrowed(token)),
            Value::Seq(_) => {
                let node = self.node(Kind::Seq(Vec::new()));
                self.out.push_str("[]");
                node
            }
            Value::Map(_) => {
                let node = self.node(Kind::Map(Vec::new()));
                self.out.push_str("{}");
                node
            }
        }
    }

    /// A plain token the emitter chooses (`true`, `3`, `0.2`): read back like any rendering.
    fn token(&mut self, token: Cow<'v, str>) -> Node<'v> {
        self.write_scalar(token, Place::Value, true)
    }

    fn string(&mut self, text: &'v str, place: Place) -> Node<'v> {
        self.write_scalar(Cow::Borrowed(text), place, false)
    }

    fn write_scalar(&mut self, text: Cow<'v, str>, place: Place, verbatim: bool) -> Node<'v> {
        let (line, col) = (self.line, self.col());
        let start = self.out.len();
        let rendered = if verbatim {
            self.out.push_str(&text);
            Rendered::Plain
        } else {
            render_into(&mut self.out, &text)
        };
        let quoted = rendered == Rendered::Quoted;
        let end = self.out.len();
        // Everything else the writer puts on a line is ASCII.
        if self.line_ascii && !self.out.as_bytes()[start..end].is_ascii() {
            self.line_ascii = false;
        }
        // Plain words are read back by the tests, not here (see `emit_read`).
        if rendered != Rendered::PlainWord {
            let seen = if verbatim {
                &mut self.tokens
            } else {
                &mut self.strings
            };
            let r = seen.entry(text.clone()).or_insert(Rendering {
                start,
                end,
                quoted,
                as_key: false,
                as_value: false,
                line,
                col,
            });
            match place {
                Place::Key => r.as_key = true,
                Place::Value => r.as_value = true,
            }
        }
        Node {
            line: pos(line),
            col: pos(col),
            kind: Kind::Scalar { text, quoted },
            tag: None,
        }
    }

    /// A block mapping; `after_dash` when its first entry shares the line of a list item's `- `.
    fn map(
        &mut self,
        entries: &'v [(Cow<'_, str>, Value<'_>)],
        level: usize,
        after_dash: bool,
    ) -> Node<'v> {
        let mut read = Vec::with_capacity(entries.len());
        let mut at = (self.line, self.col());
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 || !after_dash {
                self.indent(level);
            }
            if i == 0 {
                at = (self.line, self.col());
            }
            let key_node = self.string(key, Place::Key);
            self.out.push(':');
            let value_node = self.value_after_key(value, level);
            read.push((key_node, value_node));
        }
        Node {
            line: pos(at.0),
            col: pos(at.1),
            kind: Kind::Map(read),
            tag: None,
        }
    }

    fn value_after_key(&mut self, value: &'v Value<'_>, level: usize) -> Node<'v> {
        match value {
            Value::Map(entries) if !entries.is_empty() => {
                self.newline();
                self.map(entries, level + 2, false)
            }
            Value::Seq(items) if !items.is_empty() => {
                self.newline();
                self.seq(items, level + 2)
            }
            scalar_value => {
                self.out.push(' ');
                let node = self.inline(scalar_value);
                self.newline();
                node
            }
        }
    }

    fn seq(&mut self, items: &'v [Value<'_>], level: usize) -> Node<'v> {
        let mut read = Vec::with_capacity(items.len());
        let mut at = (self.line, self.col());
        for (i, item) in items.iter().enumerate() {
            self.indent(level);
            if i == 0 {
                at = (self.line, self.col());
            }
            let node = match item {
                Value::Map(entries) if !entries.is_empty() => {
                    self.out.push_str("- ");
                    self.map(entries, level + 2, true)
                }
                Value::Seq(inner) if !inner.is_empty() => {
                    self.out.push('-');
                    self.newline();
                    self.seq(inner, level + 2)
                }
                scalar_value => {
                    self.out.push_str("- ");
                    let node = self.inline(scalar_value);
                    self.newline();
                    node
                }
            };
            read.push(node);
        }
        Node {
            line: pos(at.0),
            col: pos(at.1),
            kind: Kind::Seq(read),
            tag: None,
        }
    }

    /// Reads every distinct rendering back, as list items in one small document and as keys in
    /// another, and checks each comes back as the string it was written for.
    fn read_back_scalars(&self, read_back: &mut ReadBack) -> Result<(), ReadError> {
        let order: Vec<Written<'_>> = self
            .strings
            .iter()
            .chain(&self.tokens)
            .map(|(text, r)| Written {
                text,
                rendering: &self.out[r.start..r.end],
                r,
            })
            .collect();
        // Each probe line stands alone, so the probe reads back whatever the order; only a
        // failure is looked at in document order.
        for place in [Place::Value, Place::Key] {
            let done = read_back.place(place);
            let mut wanted: Vec<&Written<'_>> = order
                .iter()
                .filter(|w| match place {
                    Place::Key => w.r.as_key,
                    Place::Value => w.r.as_value,
                })
                .filter(|w| !done.contains(w.rendering))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let mut probe =
                String::with_capacity(wanted.iter().map(|w| w.rendering.len() + 4).sum::<usize>());
            for w in &wanted {
                probe_line(&mut probe, w.rendering, place);
            }
            let all_read_back = read(&probe).ok().is_some_and(|node| {
                let nodes: Vec<&Node<'_>> = match (&node.kind, place) {
                    (Kind::Seq(items), Place::Value) => items.iter().collect(),
                    (Kind::Map(entries), Place::Key) => entries.iter().map(|(k, _)| k).collect(),
                    _ => Vec::new(),
                };
                nodes.len() == wanted.len()
                    && nodes.iter().zip(&wanted).all(|(node, w)| w.reads_as(node))
            });
            if !all_read_back {
                wanted.sort_by_key(|w| (w.r.line, w.r.col));
                return Err(first_misread(&wanted, place));
            }
            done.extend(wanted.iter().map(|w| w.rendering.to_owned()));
        }
        Ok(())
    }
}

/// A distinct string as written: its text, its rendering and where it first stands.
#[derive(Debug)]
struct Written<'w> {
    text: &'w str,
    rendering: &'w str,
    r: &'w Rendering,
}

impl Written<'_> {
    /// Whether `node` is the scalar this rendering was written for.
    fn reads_as(&self, node: &Node<'_>) -> bool {
        matches!(&node.kind, Kind::Scalar { text, quoted } if text == self.text && *quoted == self.r.quoted)
            && node.tag.is_none()
    }
}

fn probe_line(probe: &mut String, rendering: &str, place: Place) {
    match place {
        Place::Value => {
            probe.push_str("- ");
            probe.push_str(rendering);
            probe.push('\n');
        }
        Place::Key => {
            probe.push_str(rendering);
            probe.push_str(": 0\n");
        }
    }
}

/// The first rendering (in document order) that does not read back alone, as an error there.
fn first_misread(wanted: &[&Written<'_>], place: Place) -> ReadError {
    for w in wanted {
        let mut probe = String::new();
        probe_line(&mut probe, w.rendering, place);
        let read_back = match read(&probe) {
            Ok(node) => match (&node.kind, place) {
                (Kind::Seq(items), Place::Value) if items.len() == 1 => w.reads_as(&items[0]),
                (Kind::Map(entries), Place::Key) if entries.len() == 1 => w.reads_as(&entries[0].0),
                _ => false,
            },
            Err(_) => false,
        };
        if !read_back {
            return ReadError {
                line: w.r.line,
                col: w.r.col,
                message: format!(
                    "{:?} is written as `{}`, which a YAML reader does not read back as that text",
                    w.text, w.rendering
                ),
            };
        }
    }
    // Each reads back alone but not together: name the document as a whole.
    ReadError {
        line: 1,
        col: 1,
        message: "the written scalars do not read back as the text they were written for".into(),
    }
}

/// Renders a string as a YAML scalar that every YAML 1.1 and 1.2 reader reads back as exactly
/// this string: plain when that is unambiguous, single-quoted when the text is printable, and
/// double-quoted with escapes otherwise.
pub fn scalar(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    render_into(&mut out, text);
    out
}

/// How a string was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendered {
    /// As itself, and it is a plain word: a word (see [`is_word`]) that is not reserved.
    PlainWord,
    /// As itself.
    Plain,
    /// In quotes: the rendering differs from the string.
    Quoted,
}

/// Writes the rendering of `text`.
fn render_into(out: &mut String, text: &str) -> Rendered {
    let bytes = text.as_bytes();
    let word = is_word(bytes);
    if word && !is_reserved(bytes) {
        out.push_str(text);
        return Rendered::PlainWord;
    }
    if !word && !needs_quotes_in_general(text) {
        out.push_str(text);
        return Rendered::Plain;
    }
    if text.chars().all(is_printable_inline) {
        out.push('\'');
        for c in text.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
    } else {
        double_quoted(out, text);
    }
    Rendered::Quoted
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

fn double_quoted(out: &mut String, text: &str) {
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
    // Most strings written are words of ASCII letters, digits and `_-./` that start with a
    // letter, `_` or `/` (identifiers, flavor names, paths): of those, only the reserved words
    // (five characters at most) need quotes.
    let bytes = text.as_bytes();
    if is_word(bytes) {
        return is_reserved(bytes);
    }
    needs_quotes_in_general(text)
}

/// The bytes a word may hold: ASCII letters, digits and `_-./`.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/');
        b += 1;
    }
    table
};

/// ASCII letters, digits and `_-./`, starting with a letter, `_` or `/`.
fn is_word(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'/'))
        && bytes.iter().all(|&b| WORD_BYTES[usize::from(b)])
}

/// Whether a word is one of the reserved words (they are five characters at most).
fn is_reserved(word: &[u8]) -> bool {
    word.len() <= 5 && RESERVED_WORDS.iter().any(|w| w.as_bytes() == word)
}

/// A word (see [`is_word`]) that is not reserved: written plain, and read back by every
/// YAML reader as exactly itself, as a list item and as a key.
#[cfg(test)]
fn is_plain_word(bytes: &[u8]) -> bool {
    is_word(bytes) && !is_reserved(bytes)
}

fn needs_quotes_in_general(text: &str) -> bool {
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

    use proptest::prelude::*;

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_][a-z0-9_.-]{0,12}",
            "\\PC{0,12}",
            "[ -~]{0,12}",
            "[0-9.:+eE_xob -]{1,8}",
            "\\p{Any}{0,6}",
        ]
    }

    fn any_value() -> impl Strategy<Value = Value<'static>> {
        let leaf = prop_oneof![
            any_text().prop_map(|s| Value::Str(s.into())),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::Int),
            Just(Value::Raw("0.2")),
            Just(Value::Seq(Vec::new())),
            Just(Value::Map(Vec::new())),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Seq),
                proptest::collection::vec((any_text(), inner), 0..6).prop_map(|entries| {
                    // Keys are distinct in every mapping the emitter is given.
                    let mut seen = std::collections::HashSet::new();
                    Value::Map(
                        entries
                            .into_iter()
                            .filter(|(k, _)| seen.insert(k.clone()))
                            .map(|(k, v)| (k.into(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The shortcut for plain words decides as the general rules do.
        #[test]
        fn plain_words_are_quoted_exactly_when_the_general_rules_say(text in "[A-Za-z0-9_./ :#-]{0,8}|[a-zA-Z_/][a-zA-Z0-9_./-]{0,6}|y|n|on|No|\\PC{0,4}") {
            prop_assert_eq!(needs_quotes(&text), needs_quotes_in_general(&text), "{:?}", text);
        }

        /// The claim `emit_read` rests on for plain words: each reads back as exactly itself,
        /// unquoted and untagged, as a list item, as a key and as a value after a key, alone
        /// and among others.
        #[test]
        fn plain_words_read_back_as_themselves(words in proptest::collection::vec("[A-Za-z_/][A-Za-z0-9_./-]{0,40}|[a-zA-Z]{1,5}", 1..40)) {
            let words: Vec<&String> = words.iter().filter(|w| is_plain_word(w.as_bytes())).collect();
            prop_assume!(!words.is_empty());
            let mut doc = String::new();
            for w in &words {
                doc.push_str(&format!("- {w}\n- {w}: {w}\n"));
            }
            let node = read(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
            let Kind::Seq(items) = &node.kind else {
                return Err(TestCaseError::fail(format!("not a list:\n{doc}")));
            };
            prop_assert_eq!(items.len(), 2 * words.len());
            let plain = |n: &Node<'_>, w: &str| {
                matches!(&n.kind, Kind::Scalar { text, quoted: false } if text == w) && n.tag.is_none()
            };
            for (pair, w) in items.chunks(2).zip(&words) {
                prop_assert!(plain(&pair[0], w), "{:?} in\n{}", w, doc);
                let Kind::Map(entries) = &pair[1].kind else {
                    return Err(TestCaseError::fail(format!("{w:?}: not a mapping in\n{doc}")));
                };
                prop_assert_eq!(entries.len(), 1);
                prop_assert!(plain(&entries[0].0, w) && plain(&entries[0].1, w), "{:?} in\n{}", w, doc);
            }
        }

        /// The layout claim `emit_read` rests on: for every shape and every string, the tree it
        /// returns is the tree the reader builds from its text, positions included.
        #[test]
        fn emit_read_gives_the_tree_the_reader_reads(value in any_value()) {
            let (text, tree) = emit_read(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&text, &emit(&value));
            let read_back = read(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(tree, read_back, "{}", text);
        }
    }

    #[test]
    fn a_rendering_that_reads_back_as_something_else_is_caught_where_it_is_written() {
        for (bad, place) in [
            ("a: b", Place::Value),
            ("x #c", Place::Value),
            ("[1]", Place::Value),
            ("- y", Place::Key),
            ("'q'", Place::Value),
        ] {
            let mut w = Writer::default();
            w.out.push_str("k:\n  - ok\n  - ");
            w.line = 3;
            w.line_start = "k:\n  - ok\n".len();
            w.string("ok", Place::Value);
            // Written verbatim, as tokens are, whatever it holds.
            w.write_scalar(Cow::Borrowed(bad), place, true);
            let e = w
                .read_back_scalars(&mut ReadBack::default())
                .expect_err(bad);
            assert_eq!((e.line, e.col), (3, 7), "{bad}: {e}");
            assert!(e.message.contains(bad), "{e}");
        }
        // Renderings this emitter makes read back.
        let mut w = Writer::default();
        for text in ["a: b", "x #c", "[1]", "- y", "'q'", "yes", "", "\u{85}"] {
            w.string(text, Place::Value);
            w.string(text, Place::Key);
        }
        assert_eq!(w.read_back_scalars(&mut ReadBack::default()), Ok(()));
    }

    #[test]
    fn renderings_read_back_once_across_documents() {
        let mut read_back = ReadBack::default();
        let first = Value::Map(vec![("k k".into(), Value::strs(["a b", "yes", "plain"]))]);
        emit_read_with(&first, &mut read_back).unwrap();
        assert!(read_back.values.contains("a b") && read_back.values.contains("'yes'"));
        assert!(read_back.keys.contains("k k") && !read_back.keys.contains("a b"));
        // Plain words are read back by the tests, not at each document.
        assert!(!read_back.values.contains("plain"));
        // A later document's new renderings are still read back.
        let mut w = Writer::default();
        w.string("a", Place::Value);
        w.write_scalar(Cow::Borrowed("x #c"), Place::Value, true);
        let e = w.read_back_scalars(&mut read_back).expect_err("x #c");
        assert!(e.message.contains("x #c"), "{e}");
        // Known ones are not: a rendering recorded as read back is taken as such.
        read_back.values.insert("x #c".into());
        assert_eq!(w.read_back_scalars(&mut read_back), Ok(()));
        // In its place only.
        let mut w = Writer::default();
        w.write_scalar(Cow::Borrowed("x #c"), Place::Key, true);
        assert!(w.read_back_scalars(&mut read_back).is_err());
    }

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
