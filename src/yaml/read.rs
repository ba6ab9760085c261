//! Reads one YAML document into a tree whose nodes remember where they came from.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Aliases are expanded by copying; this bounds the copies so that a small file cannot
/// expand into gigabytes ("billion laughs").
const MAX_NODES: usize = 1_000_000;

/// How deeply lists and mappings may nest, counting the copies aliases make. Every consumer
/// of the tree walks it recursively; the bound keeps that walk far from the end of the stack
/// whatever the input (see [`crate::nesting`]).
const MAX_DEPTH: usize = crate::MAX_NESTING;

/// A node of a YAML document with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    /// 1-based; a document of more than `u32::MAX` lines or columns reads as ending there.
    pub line: u32,
    pub col: u32,
    pub kind: Kind<'a>,
    /// The node's tag as written (`!Ref`, `!!str`), if it has one.
    pub tag: Option<Box<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A scalar with its text as written; `quoted` is true for every style but plain, so a
    /// quoted `"yes"` is a string while a plain `yes` may be a boolean to the reader. The text
    /// is borrowed from the document where it stands there as written.
    Scalar {
        text: Cow<'a, str>,
        quoted: bool,
    },
    Seq(Vec<Node<'a>>),
    /// Entries in document order; duplicate keys are kept so validation can report them.
    Map(Vec<(Node<'a>, Node<'a>)>),
}

/// The YAML text could not be read as one document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReadError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.col, self.message
        )
    }
}

impl<'a> Node<'a> {
    /// The text of a scalar node.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is a plain scalar that YAML readers take for null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, quoted: false }
            if matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The value under `key` if this is a mapping holding it.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short description of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "nothing (null)",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Converts the tree to JSON, every scalar as a string of its source text (plain nulls
    /// become JSON null). Keys must be scalars and unique.
    pub fn to_json(&self) -> Result<serde_json::Value, ReadError> {
        use serde_json::Value as J;
        Ok(match &self.kind {
            Kind::Scalar { .. } if self.is_null() => J::Null,
            Kind::Scalar { text, .. } => J::String(text.clone().into_owned()),
            Kind::Seq(items) => {
                J::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?)
            }
            Kind::Map(entries) => {
                let mut map = serde_json::Map::with_capacity(entries.len());
                for (key, value) in entries {
                    let Some(name) = key.text() else {
                        return Err(key.error("mapping keys must be plain text"));
                    };
                    if map.insert(name.to_owned(), value.to_json()?).is_some() {
                        return Err(key.error(format!(
                            "key `{name}` appears twice in this mapping; keep one"
                        )));
                    }
                }
                J::Object(map)
            }
        })
    }

    fn error(&self, message: impl Into<String>) -> ReadError {
        ReadError {
            line: self.line as usize,
            col: self.col as usize,
            message: message.into(),
        }
    }
}

enum Frame<'a> {
    Seq {
        at: Span,
        anchor: usize,
        tag: Option<Box<str>>,
        items: Vec<Node<'a>>,
        /// Collection levels of the tallest item so far (a scalar has none).
        height: usize,
    },
    Map {
        at: Span,
        anchor: usize,
        tag: Option<Box<str>>,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
        height: usize,
    },
}

impl Frame<'_> {
    fn height_mut(&mut self) -> &mut usize {
        match self {
            Frame::Seq { height, .. } | Frame::Map { height, .. } => height,
        }
    }
}

fn too_deep(span: Span) -> ReadError {
    ReadError {
        line: span.start.line(),
        col: span.start.col() + 1,
        message: too_deep_message(),
    }
}

fn too_deep_message() -> String {
    format!(
        "lists and mappings nest more than {MAX_DEPTH} levels deep here (aliases count as copies); flatten the document"
    )
}

/// A line or column as a node keeps it.
pub(crate) fn pos(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn node_at(span: Span, kind: Kind<'_>, tag: Option<Box<str>>) -> Node<'_> {
    Node {
        line: pos(span.start.line()),
        col: pos(span.start.col() + 1),
        kind,
        tag,
    }
}

fn tag_text(tag: Option<&saphyr_parser::Tag>) -> Option<Box<str>> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix).into_boxed_str())
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

/// Whether YAML allows `c` in a document (its printable set: tab, line breaks, and everything
/// but other control characters, surrogates, U+FFFE and U+FFFF).
pub fn is_yaml_printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{85}')
        || (!c.is_control() && c != '\u{fffe}' && c != '\u{ffff}')
}

/// The first character YAML does not allow, with its position, as an error.
fn forbidden_character(text: &str) -> Option<ReadError> {
    // Most documents are printable ASCII: check those bytes first, cheaply.
    if text
        .bytes()
        .all(|b| matches!(b, b' '..=b'~' | b'\n' | b'\t' | b'\r'))
    {
        return None;
    }
    let (at, c) = text.char_indices().find(|&(_, c)| !is_yaml_printable(c))?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(ReadError {
        line,
        col,
        message: format!(
            "the character U+{:04X} is not allowed in YAML (readers reject the file); remove it, or write it as \"\\u{:04X}\" inside double quotes",
            c as u32, c as u32
        ),
    })
}

/// Reads `text` as exactly one YAML document.
pub fn read(text: &str) -> Result<Node<'_>, ReadError> {
    read_optional(text)?.ok_or(ReadError {
        line: 1,
        col: 1,
        message: "the file holds no YAML document".into(),
    })
}

/// Reads `text` as at most one YAML document: `None` when it holds none (it is empty, or only
/// comments and blank lines).
pub fn read_optional(text: &str) -> Result<Option<Node<'_>>, ReadError> {
    if let Some(e) = forbidden_character(text) {
        return Err(e);
    }
    let mut parser = Parser::new_from_str(text);
    let mut reader = Reader::default();
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| ReadError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            // The scanner's own bound on flow nesting (255) can meet input before ours does.
            message: if e.info() == "recursion limit exceeded" {
                too_deep_message()
            } else {
                e.info().to_owned()
            },
        })?;
        if let Some((anchor, node, height)) = reader.event(event, span)? {
            reader.place(anchor, node, height, span)?;
        }
    }
    Ok(reader.root)
}

/// The reader's state between parser events: the collections still open, the anchored nodes,
/// and the counts that bound the document.
#[derive(Default)]
struct Reader<'a> {
    stack: Vec<Frame<'a>>,
    /// Each anchored node with its height, so an alias cannot smuggle in extra depth.
    anchors: HashMap<usize, (Node<'a>, usize)>,
    root: Option<Node<'a>>,
    documents: usize,
    nodes: usize,
}

impl<'a> Reader<'a> {
    /// Takes one event; returns the node it completes (with its anchor and height), if any.
    fn event(
        &mut self,
        event: Event<'a>,
        span: Span,
    ) -> Result<Option<(usize, Node<'a>, usize)>, ReadError> {
        let here = |message: String| ReadError {
            line: span.start.line(),
            col: span.start.col() + 1,
            message,
        };
        let complete = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(here(
                        "the file holds more than one YAML document (`---`); keep one document per file"
                            .into(),
                    ));
                }
                None
            }
            Event::Alias(id) => {
                let Some((target, height)) = self.anchors.get(&id) else {
                    return Err(here(
                        "alias refers to an anchor that is not defined before it".into(),
                    ));
                };
                self.nodes += count_nodes(target);
                Some((0, target.clone(), *height))
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.nodes += 1;
                let quoted = !matches!(style, ScalarStyle::Plain);
                Some((
                    anchor,
                    node_at(
                        span,
                        Kind::Scalar {
                            text: value,
                            quoted,
                        },
                        tag_text(tag.as_deref()),
                    ),
                    0,
                ))
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(
                    Frame::Seq {
                        at: span,
                        anchor,
                        tag: tag_text(tag.as_deref()),
                        items: Vec::new(),
                        height: 0,
                    },
                    span,
                )?;
                None
            }
            Event::MappingStart(anchor, tag) => {
                self.open(
                    Frame::Map {
                        at: span,
                        anchor,
                        tag: tag_text(tag.as_deref()),
                        entries: Vec::new(),
                        key: None,
                        height: 0,
                    },
                    span,
                )?;
                None
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    at,
                    anchor,
                    tag,
                    items,
                    height,
                }) => {
                    self.nodes += 1;
                    Some((anchor, node_at(at, Kind::Seq(items), tag), height + 1))
                }
                _ => return Err(here("unbalanced sequence end".into())),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    at,
                    anchor,
                    tag,
                    entries,
                    height,
                    ..
                }) => {
                    self.nodes += 1;
                    Some((anchor, node_at(at, Kind::Map(entries), tag), height + 1))
                }
                _ => return Err(here("unbalanced mapping end".into())),
            },
        };
        if self.nodes > MAX_NODES {
            return Err(here(format!(
                "the document expands to more than {MAX_NODES} nodes (through aliases?); simplify it"
            )));
        }
        Ok(complete)
    }

    /// Opens a list or mapping, within the depth bound.
    fn open(&mut self, frame: Frame<'a>, span: Span) -> Result<(), ReadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(span));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Puts a completed node into the collection it belongs to, or makes it the root.
    fn place(
        &mut self,
        anchor: usize,
        node: Node<'a>,
        height: usize,
        span: Span,
    ) -> Result<(), ReadError> {
        // `height` counts the node's own collection levels; the open ones add theirs.
        if self.stack.len() + height > MAX_DEPTH {
            return Err(too_deep(span));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), height));
        }
        if let Some(frame) = self.stack.last_mut() {
            let h = frame.height_mut();
            *h = (*h).max(height);
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => self.root = Some(node),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_source_text_and_positions() {
        let doc = read("a: 3.10\nb:\n  - 0x1F\n  - 'yes'\n").unwrap();
        let a = doc.get("a").unwrap();
        assert_eq!((a.text(), a.line, a.col), (Some("3.10"), 1, 4));
        let Kind::Seq(items) = &doc.get("b").unwrap().kind else {
            panic!()
        };
        assert_eq!(
            items[0].kind,
            Kind::Scalar {
                text: "0x1F".into(),
                quoted: false
            }
        );
        assert_eq!(
            items[1].kind,
            Kind::Scalar {
                text: "yes".into(),
                quoted: true
            }
        );
        assert_eq!(items[1].line, 4);
    }

    #[test]
    fn aliases_are_expanded() {
        let doc = read("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(
            doc.get("b").unwrap().to_json().unwrap(),
            serde_json::json!(["1", "2"])
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = read(&text).unwrap_err();
        assert!(err.message.contains("more than"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = read("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.line >= 1, "{err}");
        assert!(read("").is_err());
        assert!(
            read("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("more than one")
        );
    }

    fn depth_of(node: &Node) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(node, 0)];
        while let Some((n, d)) = stack.pop() {
            match &n.kind {
                Kind::Scalar { .. } => deepest = deepest.max(d),
                Kind::Seq(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
                Kind::Map(entries) => stack.extend(entries.iter().map(|(_, v)| (v, d + 1))),
            }
        }
        deepest
    }

    /// Each way YAML nests, `levels` deep.
    fn forms(levels: usize) -> Vec<(&'static str, String)> {
        // Indentation grows with depth, so the text grows with its square: stop at 2,000.
        let mut block_map = String::new();
        for i in 0..levels.min(2_000) {
            block_map.push_str(&" ".repeat(i));
            block_map.push_str("k:\n");
        }
        block_map.push_str(&" ".repeat(levels.min(2_000)));
        block_map.push_str("v\n");
        // Each anchor holds the previous one one level deeper: linear text, any depth.
        let mut aliases = String::from("a0: &a0 [v]\n");
        for i in 1..levels {
            aliases.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        vec![
            ("block sequence", format!("{}v\n", "- ".repeat(levels))),
            (
                "flow sequence",
                format!("{}v{}\n", "[".repeat(levels), "]".repeat(levels)),
            ),
            ("block mapping", block_map),
            (
                "flow mapping",
                format!("{}v{}\n", "{k: ".repeat(levels), "}".repeat(levels)),
            ),
            ("alias chain", aliases),
        ]
    }

    #[test]
    fn nesting_up_to_the_bound_is_read() {
        for (form, text) in forms(MAX_DEPTH) {
            if form == "alias chain" {
                continue;
            }
            let doc = read(&text).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(depth_of(&doc), MAX_DEPTH, "{form}");
        }
        let deepest = forms(MAX_DEPTH - 1);
        let doc = read(&deepest[4].1).unwrap();
        assert_eq!(depth_of(&doc), MAX_DEPTH);
    }

    #[test]
    fn nesting_past_the_bound_is_an_error_with_a_position_never_a_crash() {
        for levels in [MAX_DEPTH + 1, 300, 100_000] {
            for (form, text) in forms(levels) {
                let err = read(&text).unwrap_err();
                assert!(
                    err.message.contains("nest more than 100 levels deep"),
                    "{form} {levels}: {err}"
                );
                assert!(err.line >= 1, "{form}");
            }
        }
    }

    #[test]
    fn characters_yaml_forbids_are_errors_with_their_position() {
        for c in ['\u{fffe}', '\u{ffff}', '\u{7}', '\u{1b}', '\u{9f}'] {
            let err = read(&format!("a: 1\nb: x{c}y\n")).unwrap_err();
            assert_eq!((err.line, err.col), (2, 5), "{c:?}");
            assert!(err.message.contains("is not allowed in YAML"), "{err}");
        }
        // Escaped, they are fine; so are tabs, CRLF and a BOM.
        assert_eq!(
            read("a: \"x\\uFFFEy\"\n").unwrap().get("a").unwrap().text(),
            Some("x\u{fffe}y")
        );
        read("\u{feff}a: 'x\ty'\r\nb: 2\n").unwrap();
    }

    #[test]
    fn duplicate_keys_are_reported_when_converting() {
        let err = read("a: 1\na: 2\n").unwrap().to_json().unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("`a` appears twice"));
    }
}
