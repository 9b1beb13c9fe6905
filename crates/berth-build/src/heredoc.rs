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

/// The script a shell-form `RUN` with heredocs hands to its shell.
///
/// As BuildKit runs them: when the command is the heredoc alone (`RUN
/// <<EOF`), its content is the script (`sh -c CONTENT`), and one starting
/// with `#!` is read by that interpreter from its standard input;
/// otherwise (`RUN python3 <<EOF`, `RUN cat <<A <<B > f`) the command and
/// the heredocs go to the shell together, which reads them itself.
pub fn run_script(command: &str, heredocs: &[Heredoc]) -> String {
    if let [h] = heredocs {
        let only = command.trim();
        let marker = only
            .strip_prefix("<<")
            .map(|m| m.trim_start_matches('-').trim())
            .map(|m| m.trim_matches(|c| c == '"' || c == '\''));
        if h.fd.is_none() && marker == Some(h.name.as_str()) {
            if let Some(interp) = h.content.strip_prefix("#!") {
                let interp = interp.lines().next().unwrap_or("").trim();
                return format!("{interp} <<'{}'\n{}{}", h.name, h.content, h.name);
            }
            return h.content.clone();
        }
    }
    let mut script = command.to_string();
    for h in heredocs {
        script.push('\n');
        script.push_str(&h.content);
        script.push_str(&h.name);
    }
    script
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

#[cfg(test)]
mod script_tests {
    use super::*;

    fn h(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp: false,
            fd: None,
        }
    }

    #[test]
    fn heredoc_alone_is_the_script() {
        assert_eq!(
            run_script("<<EOF", &[h("EOF", "echo a\necho b\n")]),
            "echo a\necho b\n"
        );
        assert_eq!(run_script("<<-\"EOT\"", &[h("EOT", "x\n")]), "x\n");
        assert_eq!(
            run_script("<<EOF", &[h("EOF", "#!/usr/bin/python3\nprint(1)\n")]),
            "/usr/bin/python3 <<'EOF'\n#!/usr/bin/python3\nprint(1)\nEOF"
        );
        assert_eq!(
            run_script("python3 <<EOF", &[h("EOF", "print(1)\n")]),
            "python3 <<EOF\nprint(1)\nEOF"
        );
    }
}
