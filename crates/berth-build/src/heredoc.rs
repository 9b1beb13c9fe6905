//! Here-documents (`<<EOF`) in `RUN`, `COPY` and `ADD`.
//!
//! When such an instruction contains a word of the form `[n]<<[-]NAME`, the
//! lines following the instruction, up to a line consisting only of `NAME`,
//! are the heredoc's content. Several heredocs on one line are read one
//! after the other. As in POSIX sh (XCU 2.7.4): `<<-` strips leading tabs
//! from the content and the terminator line; quoting any part of the name
//! (`<<"EOF"`, `<<'EOF'`) disables variable expansion in the content.

use serde::Serialize;

/// One here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter, unquoted.
    pub name: String,
    /// Content lines, each ending with `\n` (tabs already stripped for `<<-`).
    pub content: String,
    /// False when the delimiter was quoted: no expansion of the content.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
    /// File descriptor before `<<` (`3<<EOF`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<u32>,
}

/// A heredoc marker found in a word, before its content is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub name: String,
    pub expand: bool,
    pub chomp: bool,
    pub fd: Option<u32>,
}

/// Recognizes `[digits]<<[-][blanks]name` where name holds no `<`.
pub(crate) fn parse_marker(word: &str, escape: char) -> Option<Marker> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let after = word[digits..].strip_prefix("<<")?;
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let raw = after.trim_start();
    if raw.is_empty() || raw.contains('<') {
        return None;
    }
    let mut name = String::new();
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            quoted = true;
        } else if c == escape {
            quoted = true;
            if let Some(n) = chars.next() {
                name.push(n);
            }
        } else {
            name.push(c);
        }
    }
    if name.is_empty() {
        return None;
    }
    Some(Marker {
        name,
        expand: !quoted,
        chomp,
        fd: if digits > 0 {
            word[..digits].parse().ok()
        } else {
            None
        },
    })
}

/// Strips leading tabs from every line (for `<<-`).
pub(crate) fn strip_leading_tabs(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let m = parse_marker("<<EOF", '\\').unwrap();
        assert_eq!(
            (m.name.as_str(), m.expand, m.chomp, m.fd),
            ("EOF", true, false, None)
        );
        let m = parse_marker("<<-\"EOT\"", '\\').unwrap();
        assert_eq!((m.name.as_str(), m.expand, m.chomp), ("EOT", false, true));
        let m = parse_marker("3<<'X'", '\\').unwrap();
        assert_eq!((m.name.as_str(), m.expand, m.fd), ("X", false, Some(3)));
        assert!(parse_marker("<<", '\\').is_none());
        assert!(parse_marker("<<<x", '\\').is_none());
        assert!(parse_marker("\"<<EOF\"", '\\').is_none());
        assert!(parse_marker("a<<EOF", '\\').is_none());
    }

    #[test]
    fn tabs() {
        assert_eq!(strip_leading_tabs("\t\ta\n\t b\n"), "a\n b\n");
    }
}
