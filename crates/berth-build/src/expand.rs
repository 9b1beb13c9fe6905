//! Variable substitution as the Dockerfile builder does it ("Environment
//! replacement" in the Dockerfile reference), a small subset of sh:
//!
//! - `$name`, `${name}`; an unset variable is empty;
//! - `${name:-word}` `${name-word}` `${name:+word}` `${name+word}`
//!   `${name:?msg}` `${name?msg}` (with `:` empty counts as unset);
//! - `${name#pat}` `${name##pat}` `${name%pat}` `${name%%pat}`
//!   `${name/pat/repl}` `${name//pat/repl}` with `?`/`*` globs;
//! - `word` may itself contain substitutions (`${a:-${b}}`);
//! - single quotes are literal, double quotes are removed and their content
//!   processed; the escape character makes the next character literal
//!   (inside double quotes only before `"`, `$` and itself).
//!
//! [`Lexer::process_word`] yields one string (whitespace kept);
//! [`Lexer::process_words`] also splits on unquoted whitespace, including
//! whitespace coming from variable values.

use serde::Serialize;

/// Errors of substitution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(char),
    #[error("bad substitution in {0:?}")]
    BadSubstitution(String),
}

impl berth_core::HasKind for ExpandError {
    fn kind(&self) -> berth_core::ErrorKind {
        berth_core::ErrorKind::InvalidArgument
    }
}

/// An ordered set of variables; setting an existing name replaces its value
/// in place (as Docker keeps `Env` in first-definition order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Env(Vec<(String, String)>);

impl Env {
    pub fn new() -> Env {
        Env::default()
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| k != name);
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// `KEY=value` strings, as in an image config.
    pub fn to_list(&self) -> Vec<String> {
        self.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut env = Env::new();
        for (k, v) in iter {
            env.set(k, v);
        }
        env
    }
}

/// The word expander for one escape character.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer { escape }
    }

    /// Expands `word` into one string.
    pub fn process_word(&self, word: &str, env: &Env) -> Result<String, ExpandError> {
        let mut s = Scan::new(word, self.escape, env);
        let (text, _) = s.until(None, false)?;
        Ok(text)
    }

    /// Expands `word` and splits the result into fields on unquoted
    /// whitespace.
    pub fn process_words(&self, word: &str, env: &Env) -> Result<Vec<String>, ExpandError> {
        let mut s = Scan::new(word, self.escape, env);
        let (_, words) = s.until(None, false)?;
        Ok(words.finish())
    }
}

/// Fields being built by word splitting.
#[derive(Default)]
struct Fields {
    done: Vec<String>,
    cur: String,
    in_word: bool,
}

impl Fields {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word {
                self.done.push(std::mem::take(&mut self.cur));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.cur.push(c);
        self.in_word = true;
    }
    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_str(&mut self, s: &str) {
        // A quoted empty string still makes a field.
        self.in_word = true;
        self.cur.push_str(s);
    }
    fn finish(mut self) -> Vec<String> {
        if self.in_word {
            self.done.push(self.cur);
        }
        self.done
    }
}

struct Scan<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a Env,
    source: &'a str,
}

impl<'a> Scan<'a> {
    fn new(word: &'a str, escape: char, env: &'a Env) -> Scan<'a> {
        Scan {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            env,
            source: word,
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end. `raw_escapes` keeps
    /// escape characters (for glob patterns, where `\*` is a literal star).
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Fields), ExpandError> {
        let mut out = String::new();
        let mut fields = Fields::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((out, fields));
            }
            match c {
                '\'' => {
                    let s = self.single_quote()?;
                    fields.add_raw_str(&s);
                    out.push_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    fields.add_raw_str(&s);
                    out.push_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    fields.add_str(&s);
                    out.push_str(&s);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        if raw_escapes {
                            fields.add_raw_char(c);
                            out.push(c);
                        }
                        let Some(n) = self.next() else { break };
                        fields.add_raw_char(n);
                        out.push(n);
                    } else {
                        fields.add_char(c);
                        out.push(c);
                    }
                }
            }
        }
        match stop {
            Some('}') => Err(ExpandError::Unterminated("}")),
            Some(_) => Err(ExpandError::Unterminated("/")),
            None => Ok((out, fields)),
        }
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(ExpandError::Unterminated("single-quote")),
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError::Unterminated("double-quote")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                s.push(n);
                            }
                            Some(_) => s.push(c),
                        }
                    } else {
                        s.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            // sh's special parameters: never set in a build.
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.env.get(&name).unwrap_or("").to_string());
        }
        self.pos += 1;
        let name = self.name();
        let value = self.env.get(&name);
        let set = value.is_some();
        let value = value.unwrap_or("").to_string();
        let c = self.next().ok_or(ExpandError::Unterminated("}"))?;
        match c {
            '}' => Ok(value),
            ':' | '-' | '+' | '?' => {
                let colon = c == ':';
                let op = if colon {
                    self.next().ok_or(ExpandError::Unterminated("}"))?
                } else {
                    c
                };
                if !matches!(op, '-' | '+' | '?') {
                    return Err(ExpandError::UnsupportedModifier(op));
                }
                let (word, _) = self.until(Some('}'), false)?;
                // With `:`, an empty value counts as unset.
                let present = set && !(colon && value.is_empty());
                match op {
                    '-' => Ok(if present { value } else { word }),
                    '+' => Ok(if present { word } else { String::new() }),
                    _ if present => Ok(value),
                    _ => Err(ExpandError::Required {
                        name,
                        message: if word.is_empty() {
                            "parameter null or not set".into()
                        } else {
                            word
                        },
                    }),
                }
            }
            '#' | '%' => {
                let longest = self.peek() == Some(c);
                if longest {
                    self.pos += 1;
                }
                let (pattern, _) = self.until(Some('}'), true)?;
                let pat: Vec<char> = pattern.chars().collect();
                Ok(trim_match(&value, &pat, c == '#', longest, self.escape))
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let (pattern, _) = self.until(Some('/'), true)?;
                let (repl, _) = self.until(Some('}'), false)?;
                let pat: Vec<char> = pattern.chars().collect();
                Ok(replace(&value, &pat, &repl, all, self.escape))
            }
            _ if name.is_empty() => Err(ExpandError::BadSubstitution(self.source.to_string())),
            _ => Err(ExpandError::UnsupportedModifier(c)),
        }
    }
}

/// sh glob (`*`, `?`, escaped literals) against the whole of `s`.
fn glob(p: &[char], s: &[char], esc: char) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob(&p[1..], &s[i..], esc)),
        Some('?') => !s.is_empty() && glob(&p[1..], &s[1..], esc),
        Some(&c) if c == esc && p.len() > 1 => {
            s.first() == Some(&p[1]) && glob(&p[2..], &s[1..], esc)
        }
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..], esc),
    }
}

fn trim_match(value: &str, pat: &[char], prefix: bool, longest: bool, esc: char) -> String {
    let v: Vec<char> = value.chars().collect();
    let n = v.len();
    let cuts: Vec<usize> = if prefix == longest {
        (0..=n).rev().collect()
    } else {
        (0..=n).collect()
    };
    for i in cuts {
        let (part, keep) = if prefix {
            (&v[..i], &v[i..])
        } else {
            (&v[i..], &v[..i])
        };
        if glob(pat, part, esc) {
            return keep.iter().collect();
        }
    }
    value.to_string()
}

fn replace(value: &str, pat: &[char], repl: &str, all: bool, esc: char) -> String {
    if pat.is_empty() {
        return value.to_string();
    }
    let v: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i < v.len() {
        if !replaced || all {
            // Longest match starting here, as sh does.
            if let Some(end) = (i + 1..=v.len()).rev().find(|&e| glob(pat, &v[i..e], esc)) {
                out.push_str(repl);
                i = end;
                replaced = true;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [
            ("FOO", "/bar"),
            ("EMPTY", ""),
            ("str", "foobarbaz"),
            ("SP", "a b  c"),
        ]
        .into_iter()
        .collect()
    }

    fn w(s: &str) -> String {
        Lexer::new('\\').process_word(s, &env()).unwrap()
    }

    #[test]
    fn basic_forms() {
        assert_eq!(w("${FOO}"), "/bar");
        assert_eq!(w("$FOO/x"), "/bar/x");
        assert_eq!(w("${FOO}_bar"), "/bar_bar");
        assert_eq!(w(r"\$FOO"), "$FOO");
        assert_eq!(w(r"\${FOO}"), "${FOO}");
        assert_eq!(w("'$FOO'"), "$FOO");
        assert_eq!(w("\"$FOO x\""), "/bar x");
        assert_eq!(w(r#""a\"b\$c\d""#), r#"a"b$c\d"#);
        assert_eq!(w("$NOPE"), "");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$ x"), "$ x");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${EMPTY:-d}"), "d");
        assert_eq!(w("${EMPTY-d}"), "");
        assert_eq!(w("${NOPE-d}"), "d");
        assert_eq!(w("${FOO:+set}"), "set");
        assert_eq!(w("${EMPTY:+set}"), "");
        assert_eq!(w("${EMPTY+set}"), "set");
        assert_eq!(w("${NOPE:-${FOO}/x}"), "/bar/x");
        assert_eq!(w("${NOPE:-'a b'}"), "a b");
        let e = Lexer::new('\\')
            .process_word("${NOPE:?is required}", &env())
            .unwrap_err();
        assert_eq!(e.to_string(), "NOPE: is required");
        assert!(Lexer::new('\\').process_word("${FOO", &env()).is_err());
        assert!(Lexer::new('\\').process_word("'abc", &env()).is_err());
        assert!(Lexer::new('\\').process_word("${FOO:x}", &env()).is_err());
    }

    #[test]
    fn patterns_from_reference() {
        assert_eq!(w("${str#f*b}"), "arbaz");
        assert_eq!(w("${str##f*b}"), "az");
        assert_eq!(w("${str%b*}"), "foobar");
        assert_eq!(w("${str%%b*}"), "foo");
        assert_eq!(w("${str/ba/fo}"), "fooforbaz");
        assert_eq!(w("${str//ba/fo}"), "fooforfoz");
        assert_eq!(w(r"${str#foo\*}"), "foobarbaz");
    }

    #[test]
    fn splitting() {
        let l = Lexer::new('\\');
        assert_eq!(
            l.process_words("x $SP 'd e' \"\"", &env()).unwrap(),
            vec!["x", "a", "b", "c", "d e", ""]
        );
        assert_eq!(l.process_word("x $SP", &env()).unwrap(), "x a b  c");
    }

    #[test]
    fn backtick_escape() {
        let l = Lexer::new('`');
        assert_eq!(
            l.process_word(r"c:\dir `$FOO", &env()).unwrap(),
            r"c:\dir $FOO"
        );
    }
}
