//! The small tokenizers the parser applies to an instruction's arguments
//! before any variable is expanded, with Docker's rules:
//!
//! - [`split_words`]: whitespace-separated words that honour quotes and the
//!   escape character but *keep* them (quote removal happens later, during
//!   expansion). Used for `ENV`/`LABEL`/`ARG` lists and heredoc detection.
//! - [`extract_flags`]: the leading `--name[=value]` words of an
//!   instruction, with quotes removed; stops at the first other word or `--`.
//! - [`parse_json_array`]: the exec (JSON) form; anything that is not a JSON
//!   array of strings is `None`, and the caller falls back to shell form.

/// Splits `rest` into words, keeping quotes and escapes in the words.
pub fn split_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    // A quoted empty string (`""`) is still a word.
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        match quote {
            None => {
                if ch.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                    word.push(ch);
                } else if ch == escape {
                    // An escape outside quotes keeps itself and the next
                    // character, even a quote; a trailing one is dropped.
                    if let Some(next) = chars.next() {
                        word.push(ch);
                        word.push(next);
                    }
                } else {
                    word.push(ch);
                }
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                    word.push(ch);
                } else if ch == escape && q != '\'' {
                    // Nothing can be escaped inside single quotes.
                    match chars.next() {
                        Some(next) => {
                            word.push(ch);
                            word.push(next);
                        }
                        None => quote = None,
                    }
                } else {
                    word.push(ch);
                }
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Splits off the leading `--flag` words of an instruction's arguments.
/// Returns the flags (quotes and backslash escapes removed) and the rest.
pub fn extract_flags(line: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let bytes = line.as_bytes();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            return (flags, "");
        }
        if !line[pos..].starts_with("--") {
            return (flags, &line[pos..]);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = line[pos..].char_indices().peekable();
        let mut end = bytes.len();
        while let Some((i, ch)) = chars.next() {
            match quote {
                None if ch.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ if ch == '\\' => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                _ => word.push(ch),
            }
        }
        pos = end;
        // A bare `--` ends the flags.
        if word == "--" {
            return (flags, line[pos..].trim_start());
        }
        flags.push(word);
    }
}

/// Parses the exec form: a JSON array of strings, nothing else.
pub fn parse_json_array(rest: &str) -> Option<Vec<String>> {
    let rest = rest.trim();
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// Plain whitespace split, no quote handling (used by FROM, EXPOSE and the
/// shell form of COPY/ADD/VOLUME, as Docker does).
pub fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            split_words(r#"a="x y" b=c\ d e='f\'"#, '\\'),
            vec![r#"a="x y""#, r"b=c\ d", r"e='f\'"]
        );
        assert_eq!(split_words(r#"  "" x "#, '\\'), vec![r#""""#, "x"]);
        assert_eq!(split_words("a`  b", '`'), vec!["a` ", "b"]);
    }

    #[test]
    fn flags_stop_at_first_word() {
        let (f, rest) = extract_flags(r#"--from=build --chown="a b" src dst"#);
        assert_eq!(f, vec!["--from=build", "--chown=a b"]);
        assert_eq!(rest, "src dst");
        let (f, rest) = extract_flags("--link -- --notaflag x");
        assert_eq!(f, vec!["--link"]);
        assert_eq!(rest, "--notaflag x");
        let (f, rest) = extract_flags("echo --x");
        assert!(f.is_empty());
        assert_eq!(rest, "echo --x");
    }

    #[test]
    fn json_or_not() {
        assert_eq!(
            parse_json_array(r#"["a", "b"]"#),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_json_array(r#"["a", 1]"#), None);
        assert_eq!(parse_json_array(r#"[c:\windows]"#), None);
        assert_eq!(parse_json_array(r#"["a"] && b"#), None);
        assert_eq!(parse_json_array("echo"), None);
    }
}
