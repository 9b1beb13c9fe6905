//! Text in the forms Docker's Go code prints it.

/// Go's `strconv.Quote` for the text containers and Dockerfiles hold:
/// `ps` prints commands this way, and the classic builder writes history
/// entries with it.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote(r#"a "b"\c"#), r#""a \"b\"\\c""#);
        assert_eq!(go_quote("x\ny\t\u{7}\u{1}"), r#""x\ny\t\a\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }
}
