//! Glob patterns for branch names, tag names and repository paths.
//!
//! `*` matches any run of characters except `/`, `**` any run including `/` (`**/` also
//! none at all), `?` one character except `/`; everything else matches itself. Path patterns also match everything
//! under a directory they match: `docs` and `docs/` cover `docs/guide/index.md`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    One,
    Star,
    DoubleStar,
    /// `**/`: nothing, or any run of characters that ends with `/`.
    Dirs,
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("an empty pattern matches nothing; remove it")]
    Empty,
    /// One pattern of a list, by its text.
    #[error("pattern {pattern:?}: {source}")]
    InList {
        pattern: String,
        source: Box<GlobError>,
    },
}

/// A parsed glob pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Parses `text`; an empty pattern is an error.
    pub fn new(text: &str) -> Result<Self, GlobError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(GlobError::Empty);
        }
        let body = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let mut tokens = Vec::with_capacity(body.len());
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' if chars.peek() == Some(&'*') => {
                    while chars.peek() == Some(&'*') {
                        chars.next();
                    }
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        Token::Dirs
                    } else {
                        Token::DoubleStar
                    }
                }
                '*' => Token::Star,
                '?' => Token::One,
                c => Token::Char(c),
            });
        }
        Ok(Self {
            text: trimmed.to_owned(),
            tokens,
        })
    }

    /// Parses a comma- or newline-separated list; blank entries are skipped.
    pub fn list(text: &str) -> Result<Vec<Self>, GlobError> {
        text.split([',', '\n'])
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                Self::new(p).map_err(|e| GlobError::InList {
                    pattern: p.trim().to_owned(),
                    source: Box::new(e),
                })
            })
            .collect()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        // reach[j]: the tokens so far can consume exactly chars[..j].
        let mut reach = vec![false; chars.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; chars.len() + 1];
            match token {
                Token::Star | Token::DoubleStar => {
                    let crosses = *token == Token::DoubleStar;
                    let mut open = false;
                    for j in 0..=chars.len() {
                        open |= reach[j];
                        next[j] = open;
                        if j < chars.len() && chars[j] == '/' && !crosses {
                            open = false;
                        }
                    }
                }
                Token::Dirs => {
                    let mut seen = false;
                    for j in 0..=chars.len() {
                        next[j] = reach[j] || (seen && chars[j - 1] == '/');
                        seen |= reach[j];
                    }
                }
                Token::One | Token::Char(_) => {
                    for j in 0..chars.len() {
                        let fits = match token {
                            Token::Char(c) => chars[j] == *c,
                            _ => chars[j] != '/',
                        };
                        next[j + 1] = reach[j] && fits;
                    }
                }
            }
            reach = next;
        }
        reach[chars.len()]
    }

    /// Whether `path` or a directory above it matches.
    pub fn matches_path(&self, path: &str) -> bool {
        self.matches(path)
            || path
                .match_indices('/')
                .any(|(i, _)| self.matches(&path[..i]))
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn stars_stop_at_slashes_and_double_stars_do_not() {
        assert!(glob("main").matches("main"));
        assert!(!glob("main").matches("mains"));
        assert!(glob("release/*").matches("release/1.0"));
        assert!(!glob("release/*").matches("release/1.0/hotfix"));
        assert!(glob("release/**").matches("release/1.0/hotfix"));
        assert!(glob("*").matches("feature"));
        assert!(!glob("*").matches("feature/x"));
        assert!(glob("**").matches("feature/x"));
        assert!(glob("v?.*").matches("v1.2"));
        assert!(!glob("v?.*").matches("v10.2"));
        assert!(glob("**/*.md").matches("a/b/README.md"));
        assert!(glob("**/*.md").matches("README.md"));
        assert!(!glob("**/*.md").matches("a/README.txt"));
        assert!(glob("a/**/b").matches("a/b"));
        assert!(glob("a/**/b").matches("a/x/y/b"));
        assert!(!glob("a/**/b").matches("a/xb"));
        assert!(glob("*.md").matches("README.md"));
        assert!(!glob("*.md").matches("docs/README.md"));
        assert!(glob("a*b*c").matches("aXbYc"));
        assert!(!glob("a*b*c").matches("aXbY"));
        assert!(glob("flavors/*/README.md").matches("flavors/python-3.10/README.md"));
    }

    #[test]
    fn path_patterns_cover_what_is_under_a_matching_directory() {
        assert!(glob("docs").matches_path("docs/guide/index.md"));
        assert!(glob("docs/").matches_path("docs/index.md"));
        assert!(glob("docs/**").matches_path("docs/a/b"));
        assert!(!glob("docs").matches_path("docsite/index.md"));
        assert!(glob(".github").matches_path(".github/workflows/x.yml"));
        assert!(glob("**/*.md").matches_path("flavors/a/NOTES.md"));
    }

    #[test]
    fn lists_skip_blanks_and_reject_nothing_else() {
        let list = Glob::list(" main, release/* ,\n,hotfix/** ").unwrap();
        let texts: Vec<&str> = list.iter().map(Glob::as_str).collect();
        assert_eq!(texts, ["main", "release/*", "hotfix/**"]);
        assert!(Glob::list("").unwrap().is_empty());
        assert!(Glob::new("  ").is_err());
    }
}
