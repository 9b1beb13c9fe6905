//! Variable interpolation in compose values (Compose Specification,
//! "Interpolation"): `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, nesting inside
//! the default or message, and `$$` for a literal `$`.
//!
//! Applied to YAML values only, never keys, per file before merging. An
//! unset variable without a default becomes the empty string, as Compose
//! does (it warns; the caller may collect the names from [`Interpolation`]).

use std::collections::BTreeMap;

/// The environment variables are looked up in.
pub type Environment = BTreeMap<String, String>;

/// What interpolating one string found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?msg}` or `${VAR?msg}` with the variable missing.
    Required { name: String, message: String },
    /// A `${` without its `}` or with a bad name.
    Syntax(String),
}

impl std::fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolateError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value")
            }
            InterpolateError::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
            InterpolateError::Syntax(s) => write!(f, "invalid interpolation format: {s}"),
        }
    }
}

/// Interpolates `s` against `env`.
pub fn interpolate(s: &str, env: &Environment) -> Result<String, InterpolateError> {
    let chars: Vec<char> = s.chars().collect();
    let (out, end) = expand(&chars, 0, env, None, s)?;
    debug_assert_eq!(end, chars.len());
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Expands from `i` until the end, or until an unmatched `}` when `stop` is
/// set (inside a `${…}` default). Returns the text and the index reached.
fn expand(
    chars: &[char],
    mut i: usize,
    env: &Environment,
    stop: Option<char>,
    whole: &str,
) -> Result<(String, usize), InterpolateError> {
    let mut out = String::new();
    while i < chars.len() {
        let c = chars[i];
        if Some(c) == stop {
            return Ok((out, i));
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let (value, next) = braced(chars, i + 2, env, whole)?;
                out.push_str(&value);
                i = next;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(env.get(&name).map(String::as_str).unwrap_or(""));
                i = j;
            }
            // A `$` not followed by a name is kept as it is.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    if stop.is_some() {
        return Err(InterpolateError::Syntax(whole.to_string()));
    }
    Ok((out, i))
}

/// `${` has been read; `i` is the first character of the name.
fn braced(
    chars: &[char],
    i: usize,
    env: &Environment,
    whole: &str,
) -> Result<(String, usize), InterpolateError> {
    let mut j = i;
    while j < chars.len() && is_name_char(chars[j]) {
        j += 1;
    }
    let name: String = chars[i..j].iter().collect();
    if name.is_empty() || !is_name_start(chars[i]) {
        return Err(InterpolateError::Syntax(whole.to_string()));
    }
    let value = env.get(&name);
    let rest = chars.get(j).copied();
    if rest == Some('}') {
        return Ok((value.cloned().unwrap_or_default(), j + 1));
    }
    // `:-`, `-`, `:?`, `?`, `:+`, `+`: the colon forms treat empty as unset.
    let (colon, op_at) = match rest {
        Some(':') => (true, j + 1),
        Some(_) => (false, j),
        None => return Err(InterpolateError::Syntax(whole.to_string())),
    };
    let op = chars.get(op_at).copied();
    if !matches!(op, Some('-') | Some('?') | Some('+')) {
        return Err(InterpolateError::Syntax(whole.to_string()));
    }
    let (word, end) = expand(chars, op_at + 1, env, Some('}'), whole)?;
    let next = end + 1;
    let missing = match value {
        None => true,
        Some(v) => colon && v.is_empty(),
    };
    let result = match op {
        Some('-') if missing => word,
        Some('?') if missing => {
            return Err(InterpolateError::Required {
                name,
                message: word,
            })
        }
        Some('+') if missing => String::new(),
        Some('+') => word,
        _ => value.cloned().unwrap_or_default(),
    };
    Ok((result, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        [("A", "1"), ("EMPTY", ""), ("NAME", "web")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn i(s: &str) -> String {
        interpolate(s, &env()).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(i("$A ${A} x${NAME}y"), "1 1 xweby");
        assert_eq!(i("${UNSET}|$UNSET"), "|");
        assert_eq!(i("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${A:-d}"), "d d  1");
        assert_eq!(i("${UNSET-d} ${A-d}"), "d 1");
        assert_eq!(i("${A:+yes} ${EMPTY:+yes} ${EMPTY+yes}"), "yes  yes");
        assert_eq!(i("$$A $${A} cost: $5 $"), "$A ${A} cost: $5 $");
        assert_eq!(i("${UNSET:-${NAME:-x}-${A}}"), "web-1");
        assert_eq!(i("${EMPTY?no}"), "");
    }

    #[test]
    fn errors() {
        let e = interpolate("${EMPTY:?set EMPTY}", &env()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable EMPTY is missing a value: set EMPTY"
        );
        let e = interpolate("${UNSET?}", &env()).unwrap_err();
        assert_eq!(e.to_string(), "required variable UNSET is missing a value");
        assert!(matches!(
            interpolate("${A", &env()),
            Err(InterpolateError::Syntax(_))
        ));
        assert!(matches!(
            interpolate("${A/x/y}", &env()),
            Err(InterpolateError::Syntax(_))
        ));
        assert!(matches!(
            interpolate("${}", &env()),
            Err(InterpolateError::Syntax(_))
        ));
    }
}
