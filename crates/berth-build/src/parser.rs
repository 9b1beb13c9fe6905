//! Dockerfile text → [`Node`]s with source positions.
//!
//! This is the first stage of the pipeline (parser → typed
//! [`Instruction`](crate::Instruction)s → stage graph). It knows the
//! physical layout of a Dockerfile and nothing of what instructions mean:
//!
//! 1. **Parser directives** (`# syntax=`, `# escape=`, `# check=`) are only
//!    recognised at the very top; the first comment, blank line or
//!    instruction that is not a directive ends them. Keys are
//!    case-insensitive; a directive may appear once.
//! 2. **Comments** (lines whose first non-blank character is `#`) are
//!    dropped, also in the middle of a continued instruction.
//! 3. **Continuations**: a line ending with the escape character (plus
//!    optional blanks) continues on the next line; the pieces are joined
//!    without separator. Empty lines inside a continuation are skipped
//!    (with a warning, as Docker gives one).
//! 4. The logical line is split into keyword, leading `--flags` and the
//!    rest. For `RUN`/`COPY`/`ADD`, heredoc markers make the following lines
//!    the heredocs' content.

use serde::Serialize;

use crate::error::{DockerfileError, Loc, Reason};
use crate::heredoc::{parse_marker, strip_leading_tabs, Heredoc};
use crate::words::{extract_flags, parse_json_array, split_words};

/// The parser directives of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub syntax: Option<String>,
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// Raw value of `# check=` (e.g. `skip=JSONArgsRecommended;error=true`).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// One instruction as written, before its arguments are interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Lower-case keyword (`run`, `copy`…).
    pub keyword: String,
    /// Leading `--name[=value]` flags, quotes removed.
    pub flags: Vec<String>,
    /// The arguments after the flags, trimmed.
    pub rest: String,
    /// The whole logical line (continuations joined, comments dropped).
    pub original: String,
    pub heredocs: Vec<Heredoc>,
    /// 1-based first line of the instruction.
    pub start_line: usize,
    /// 1-based last line (including heredoc terminators).
    pub end_line: usize,
}

/// A non-fatal finding while parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// A parsed Dockerfile: directives and nodes in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedFile {
    /// Name used in error messages.
    pub file: String,
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<Warning>,
}

/// Keywords whose arguments may carry heredocs.
fn can_contain_heredoc(keyword: &str) -> bool {
    matches!(keyword, "run" | "copy" | "add")
}

/// Matches `#[blank]key[blank]=[blank]value` on a line already trimmed on
/// the left; returns the lowercased key and the value.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.strip_prefix('#')?;
    let body = body.trim_start();
    let key_len = body
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let key = &body[..key_len];
    let after = body[key_len..].trim_start().strip_prefix('=')?;
    let value = after.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (and blanks after it): returns the
/// line without it and whether the instruction continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(head) => (head, true),
        None => (line, false),
    }
}

/// Splits a logical line into keyword, flags and rest.
pub(crate) fn split_instruction(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim();
    let (keyword, args) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim_start()),
        None => (line, ""),
    };
    let (flags, rest) = extract_flags(args);
    (keyword.to_ascii_lowercase(), flags, rest.trim().to_string())
}

/// Parses Dockerfile `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<ParsedFile, DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // A final newline does not start another line.
    let n_lines = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut out = ParsedFile {
        file: file.to_string(),
        directives: Directives::default(),
        nodes: Vec::new(),
        warnings: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut in_directives = true;
    let mut i = 0;
    while i < n_lines {
        let raw = lines[i];
        let line_no = i + 1;
        i += 1;
        let first = raw.trim_start();
        if in_directives {
            match directive(first) {
                Some((key, value)) if matches!(key.as_str(), "syntax" | "escape" | "check") => {
                    let loc = Loc {
                        file,
                        line: line_no,
                        instruction: None,
                    };
                    if !seen.insert(key.clone()) {
                        return Err(loc.err(Reason::DuplicateDirective(key)));
                    }
                    match key.as_str() {
                        "syntax" => out.directives.syntax = Some(value),
                        "check" => out.directives.check = Some(value),
                        _ => {
                            out.directives.escape = match value.as_str() {
                                "\\" => '\\',
                                "`" => '`',
                                _ => return Err(loc.err(Reason::InvalidEscape(value))),
                            }
                        }
                    }
                    continue;
                }
                _ => in_directives = false,
            }
        }
        let escape = out.directives.escape;
        if is_comment(first) {
            continue;
        }
        let (head, mut continued) = trim_continuation(first, escape);
        if !continued && head.trim().is_empty() {
            continue;
        }
        let mut logical = head.to_string();
        let mut empty_continuation = false;
        let mut end_line = line_no;
        while continued && i < n_lines {
            let next = lines[i];
            i += 1;
            end_line = i;
            if is_comment(next) {
                continue;
            }
            if next.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (piece, more) = trim_continuation(next, escape);
            logical.push_str(piece);
            continued = more;
        }
        if logical.trim().is_empty() {
            continue;
        }
        let (keyword, flags, rest) = split_instruction(&logical);
        if empty_continuation {
            out.warnings.push(Warning {
                line: line_no,
                message: format!(
                    "empty continuation line in {} instruction",
                    keyword.to_ascii_uppercase()
                ),
            });
        }
        let mut heredocs = Vec::new();
        if can_contain_heredoc(&keyword) && rest.contains("<<") && parse_json_array(&rest).is_none()
        {
            for word in split_words(&rest, escape) {
                let Some(marker) = parse_marker(&word, escape) else {
                    continue;
                };
                let mut content = String::new();
                let mut terminated = false;
                while i < n_lines {
                    let l = lines[i];
                    i += 1;
                    end_line = i;
                    let candidate = if marker.chomp {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if candidate == marker.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !terminated {
                    return Err(Loc {
                        file,
                        line: line_no,
                        instruction: Some(&keyword),
                    }
                    .err(Reason::UnterminatedHeredoc(marker.name)));
                }
                if marker.chomp {
                    content = strip_leading_tabs(&content);
                }
                heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                    chomp: marker.chomp,
                    fd: marker.fd,
                });
            }
        }
        out.nodes.push(Node {
            keyword,
            flags,
            rest,
            original: logical.trim().to_string(),
            heredocs,
            start_line: line_no,
            end_line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(text: &str) -> Vec<Node> {
        parse("Dockerfile", text).unwrap().nodes
    }

    #[test]
    fn directives_only_at_top() {
        let p = parse(
            "Dockerfile",
            "# Syntax = docker/dockerfile:1\n#\tESCAPE=`\nFROM a\n# escape=\\\n",
        )
        .unwrap();
        assert_eq!(p.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(p.directives.escape, '`');
        let p = parse("Dockerfile", "# hello\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(p.directives.escape, '\\');
        let p = parse("Dockerfile", "# unknown=x\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(p.directives.escape, '\\');
        let e = parse("Dockerfile", "# escape=`\n# escape=\\\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2: only one escape parser directive can be used"
        );
        assert!(parse("Dockerfile", "# escape=x\n").is_err());
    }

    #[test]
    fn continuations_and_comments() {
        let n = nodes("RUN echo hello \\\n# comment\n  world\n\nFROM x\n");
        assert_eq!(n[0].rest, "echo hello   world");
        assert_eq!((n[0].start_line, n[0].end_line), (1, 3));
        assert_eq!(n[1].start_line, 5);
        let p = parse("Dockerfile", "RUN a \\\n\n  b\n").unwrap();
        assert_eq!(p.nodes[0].rest, "a   b");
        assert_eq!(p.warnings.len(), 1);
        // whitespace in arguments after a continuation is kept
        let n = nodes("RUN echo \"\\\n     hello\\\n     world\"\n");
        assert_eq!(n[0].rest, "echo \"     hello     world\"");
    }

    #[test]
    fn heredocs() {
        let n = nodes("RUN <<A cat && <<-'B' cat\nx $y\nA\n\t\tz\n\tB\nRUN true\n");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].heredocs.len(), 2);
        assert_eq!(n[0].heredocs[0].content, "x $y\n");
        assert!(n[0].heredocs[0].expand);
        assert_eq!(n[0].heredocs[1].content, "z\n");
        assert!(!n[0].heredocs[1].expand);
        assert_eq!(n[0].end_line, 5);
        let e = parse("Dockerfile", "FROM a\nCOPY <<EOF /x\nhi\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2: COPY: unterminated heredoc \"EOF\""
        );
    }
}
