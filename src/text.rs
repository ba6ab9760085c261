//! Text for people: names shown with invisible characters escaped, and "did you mean" hints.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters a terminal shows as nothing, or as something else: controls, format characters
/// (zero-width spaces and joiners, direction marks and overrides, the BOM), whitespace other
/// than the plain space, and the noncharacters U+FFFE/U+FFFF.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}'
            | '\u{fff0}'..='\u{ffff}'
            | '\u{e0000}'..='\u{e007f}')
}

/// `text` with every invisible character written as `\u{…}`, so a message shows what is
/// really there (`python\u{200b}-3.10`); borrowed when there is nothing to escape.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_invisible) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Levenshtein distance in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Up to `n` of `candidates` closest to `name`, nearest first (ties in the candidates' order),
/// leaving out those so far off that they would not help.
pub fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 2).max(3);
    let mut scored: Vec<(usize, usize, &str)> = candidates
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let d = edit_distance(&lower, &c.to_lowercase());
            (d <= limit).then_some((d, i, c))
        })
        .collect();
    scored.sort_unstable();
    scored.into_iter().take(n).map(|(_, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(shown("python-3.10"), Cow::Borrowed(_)));
        assert_eq!(shown("python\u{200b}-3.10"), "python\\u{200b}-3.10");
        assert_eq!(shown("a\u{a0}b\tc\u{feff}"), "a\\u{a0}b\\u{9}c\\u{feff}");
        assert_eq!(shown("\u{202e}gnp.exe"), "\\u{202e}gnp.exe");
        assert_eq!(shown("über café"), "über café");
    }

    #[test]
    fn closest_names_come_nearest_first_and_far_ones_not_at_all() {
        let names = ["python-3.10", "python-3.12", "r-4.4", "java-17"];
        assert_eq!(
            closest("pyhton-3.10", names, 3),
            ["python-3.10", "python-3.12"]
        );
        assert_eq!(closest("R-4.4", names, 3), ["r-4.4"]);
        assert!(closest("completely-different", names, 3).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
