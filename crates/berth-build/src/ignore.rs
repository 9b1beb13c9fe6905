//! `.dockerignore`: which files of the build context are sent to the build.
//!
//! Each non-comment line is a pattern, cleaned like a path (`./a//b/` →
//! `a/b`, a leading `/` dropped); `!` makes it an exception. Patterns use
//! Go's `filepath.Match` syntax (`*` and `?` do not cross `/`, `[a-z]`,
//! `[^a]`, `\` escapes) plus `**`, which matches any number of directories.
//! A pattern that matches a directory matches everything below it. The last
//! pattern that matches a path decides.
//!
//! Walking the context, an excluded directory is skipped entirely unless an
//! exception pattern starts with that directory's path (it might re-include
//! something inside), as Docker does.

use std::path::Path;

/// Errors reading `.dockerignore` or walking the context.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("invalid .dockerignore pattern {0:?}")]
    BadPattern(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl berth_core::HasKind for IgnoreError {
    fn kind(&self) -> berth_core::ErrorKind {
        match self {
            IgnoreError::BadPattern(_) => berth_core::ErrorKind::InvalidArgument,
            IgnoreError::Io { source, .. } => berth_core::HasKind::kind(source),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    Quest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` at the end: anything.
    Any,
    /// `**` elsewhere: zero or more whole directories (`(.*/)?`).
    Dirs,
}

/// One cleaned pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    pub exclusion: bool,
    toks: Vec<Tok>,
}

/// Go's `filepath.Clean` for slash-separated paths.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            _ => out.push(part),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn compile(p: &str) -> Result<Vec<Tok>, IgnoreError> {
    let bad = || IgnoreError::BadPattern(p.to_string());
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i >= chars.len() {
                    Tok::Any
                } else {
                    Tok::Dirs
                });
                continue;
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Quest),
            '\\' => {
                i += 1;
                toks.push(Tok::Lit(*chars.get(i).ok_or_else(bad)?));
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let mut c = *chars.get(i).ok_or_else(bad)?;
                    if c == ']' && !ranges.is_empty() {
                        break;
                    }
                    if c == '\\' {
                        i += 1;
                        c = *chars.get(i).ok_or_else(bad)?;
                    }
                    let mut hi = c;
                    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']')
                    {
                        hi = chars[i + 2];
                        i += 2;
                    }
                    ranges.push((c, hi));
                    i += 1;
                }
                toks.push(Tok::Class { negated, ranges });
            }
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Ok(toks)
}

fn matches(t: &[Tok], s: &[char]) -> bool {
    let Some(first) = t.first() else {
        return s.is_empty();
    };
    let rest = &t[1..];
    match first {
        Tok::Lit(c) => s.first() == Some(c) && matches(rest, &s[1..]),
        Tok::Quest => s.first().is_some_and(|c| *c != '/') && matches(rest, &s[1..]),
        Tok::Class { negated, ranges } => {
            s.first()
                .is_some_and(|c| ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated)
                && matches(rest, &s[1..])
        }
        Tok::Star => {
            let limit = s.iter().position(|c| *c == '/').unwrap_or(s.len());
            (0..=limit).any(|i| matches(rest, &s[i..]))
        }
        Tok::Any => true,
        Tok::Dirs => {
            matches(rest, s) || (0..s.len()).any(|j| s[j] == '/' && matches(rest, &s[j + 1..]))
        }
    }
}

impl Pattern {
    /// Parses one pattern line (`!` prefix allowed).
    pub fn new(line: &str) -> Result<Pattern, IgnoreError> {
        let line = line.trim();
        let (exclusion, body) = match line.strip_prefix('!') {
            Some(b) => (true, b.trim()),
            None => (false, line),
        };
        let mut text = clean_path(body);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
        let toks = compile(&text)?;
        Ok(Pattern {
            text,
            exclusion,
            toks,
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        let s: Vec<char> = path.chars().collect();
        matches(&self.toks, &s)
    }
}

/// An ordered list of patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    pub patterns: Vec<Pattern>,
}

impl Matcher {
    /// Parses the content of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Pattern::new)
            .collect::<Result<_, _>>()?;
        Ok(Matcher { patterns })
    }

    /// Reads `<context>/.dockerignore`; no file means no patterns.
    pub fn for_context(context: &Path) -> Result<Matcher, IgnoreError> {
        let path = context.join(".dockerignore");
        match std::fs::read_to_string(&path) {
            Ok(text) => Matcher::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Matcher::default()),
            Err(source) => Err(IgnoreError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out.
    /// Matching is the same for files and directories; `is_dir` is kept
    /// for callers that walk.
    pub fn is_excluded(&self, path: &str, _is_dir: bool) -> bool {
        let path = clean_path(path);
        let path = path.trim_start_matches('/');
        let dirs: Vec<&str> = path.split('/').collect();
        let parents = &dirs[..dirs.len().saturating_sub(1)];
        let mut excluded = false;
        for p in &self.patterns {
            // An exception can only change an excluded path and vice versa.
            if p.exclusion != excluded {
                continue;
            }
            let hit =
                p.matches(path) || (1..=parents.len()).any(|n| p.matches(&parents[..n].join("/")));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether a walk must enter excluded directory `dir` because an
    /// exception pattern lies below it.
    fn must_enter(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&prefix))
    }
}

/// Lists the files (and symlinks) of `context` the matcher keeps, as
/// sorted `/`-separated relative paths. Symlinks are not followed.
pub fn included_files(context: &Path, matcher: &Matcher) -> Result<Vec<String>, IgnoreError> {
    fn walk(root: &Path, rel: &str, m: &Matcher, out: &mut Vec<String>) -> Result<(), IgnoreError> {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let io = |source| IgnoreError::Io {
            path: dir.display().to_string(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().to_string();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let is_dir = entry.file_type().map_err(io)?.is_dir();
            if m.is_excluded(&path, is_dir) {
                if is_dir && m.has_exceptions() && m.must_enter(&path) {
                    walk(root, &path, m, out)?;
                }
                continue;
            }
            if is_dir {
                walk(root, &path, m, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(context, "", matcher, &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_path("./a//b/"), "a/b");
        assert_eq!(clean_path("a/../../b"), "../b");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(Pattern::new("/foo/./bar/").unwrap().text, "foo/bar");
        assert_eq!(Pattern::new("! ./x").unwrap().text, "x");
    }

    #[test]
    fn globbing() {
        let x = m("*/temp*\n*/*/temp*\ntemp?\n");
        assert!(x.is_excluded("somedir/temporary.txt", false));
        assert!(x.is_excluded("somedir/subdir/temp", true));
        assert!(x.is_excluded("tempa", false));
        assert!(!x.is_excluded("temp", false));
        assert!(!x.is_excluded("a/b/c/temp", false));
        let x = m("**/*.go\n");
        assert!(x.is_excluded("a.go", false));
        assert!(x.is_excluded("x/y/a.go", false));
        assert!(!x.is_excluded("a.goo", false));
        let x = m("[a-c]?.txt\n[^x]\n");
        assert!(x.is_excluded("bz.txt", false));
        assert!(!x.is_excluded("dz.txt", false));
        assert!(x.is_excluded("y", false));
        assert!(!x.is_excluded("x", false));
        assert!(m("a/**\n").is_excluded("a/b/c", false));
        assert!(m("a/**/z\n").is_excluded("a/z", false));
        assert!(m("a/**/z\n").is_excluded("a/b/c/z", false));
        assert!(Matcher::parse("[a\n").is_err());
    }

    #[test]
    fn exceptions_and_dirs() {
        let x = m("# comment\n*.md\n!README*.md\nREADME-secret.md\n");
        assert!(x.is_excluded("a.md", false));
        assert!(!x.is_excluded("README.md", false));
        assert!(x.is_excluded("README-secret.md", false));
        let x = m("docs\n");
        assert!(x.is_excluded("docs/a/b.txt", false));
        let x = m("docs\n!docs/keep.txt\n");
        assert!(!x.is_excluded("docs/keep.txt", false));
        assert!(x.is_excluded("docs/other.txt", false));
    }

    #[test]
    fn walk_context() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for f in [
            "Dockerfile",
            "a.md",
            "README.md",
            "docs/x.txt",
            "docs/keep.txt",
            "node_modules/m/i.js",
            "src/main.rs",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::write(
            root.join(".dockerignore"),
            "*.md\n!README.md\nnode_modules\ndocs\n!docs/keep.txt\n.dockerignore\n",
        )
        .unwrap();
        let m = Matcher::for_context(root).unwrap();
        assert_eq!(
            included_files(root, &m).unwrap(),
            vec!["Dockerfile", "README.md", "docs/keep.txt", "src/main.rs"]
        );
    }
}
