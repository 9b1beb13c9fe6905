//! A subset of Go's `text/template`, enough for Docker's `--format` flags.
//!
//! Supported: literal text, `{{.Field.Sub}}`, `{{.}}`, string and number
//! literals, functions (`json`, `join`, `index`, `upper`, `lower`, `title`,
//! `split`, `len`, `truncate`, `pad`, `println`), pipelines with `|`,
//! `{{if}}`/`{{range}}`/`{{with}}` with `{{else}}` and `{{end}}`, and the
//! `{{-`/`-}}` whitespace trimmers. Data is JSON; values print the way Go's
//! `fmt` prints them (`[a b]`, `map[k:v]`).
//!
//! Two lookup modes mirror what Docker passes to templates: a *strict* root
//! (a Go struct: an unknown field is an error naming it) for list formats
//! such as `images --format`, and a lenient one (a Go map: a missing key
//! prints `<no value>`) for `inspect -f` over raw JSON.

use serde_json::Value;
use std::fmt;

use crate::table::TabWriter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {}", self.0)
    }
}

impl std::error::Error for TemplateError {}

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Ident(String),
}

#[derive(Debug, Clone)]
struct Pipeline {
    cmds: Vec<Vec<Arg>>,
    source: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

const FUNCTIONS: &[&str] = &[
    "json", "join", "index", "upper", "lower", "title", "split", "len", "truncate", "pad",
    "println", "print",
];

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let segments = split_segments(src)?;
        let mut pos = 0;
        let (nodes, stop) = parse_nodes(&segments, &mut pos)?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::Else => err("unexpected {{else}}"),
            Stop::End => err("unexpected {{end}}"),
        }
    }

    /// Renders with `data` as the dot. With `strict`, a field missing from
    /// the root object is an error instead of `<no value>`.
    pub fn render(&self, data: &Value, strict: bool) -> Result<String, TemplateError> {
        let mut out = String::new();
        let ctx = Ctx { root: data, strict };
        ctx.exec(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

// ---- lexing into text and actions ----

enum Segment {
    Text(String),
    Action(String),
}

fn split_segments(src: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut segs = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        match rest.find("{{") {
            None => {
                let text = if trim_next_text {
                    rest.trim_start()
                } else {
                    rest
                };
                segs.push(Segment::Text(text.to_string()));
                break;
            }
            Some(i) => {
                let mut text = &rest[..i];
                if trim_next_text {
                    text = text.trim_start();
                }
                let after = &rest[i + 2..];
                let trim_left =
                    after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
                if trim_left {
                    text = text.trim_end();
                }
                if !text.is_empty() {
                    segs.push(Segment::Text(text.to_string()));
                }
                let inner_start = if trim_left { 1 } else { 0 };
                let close =
                    find_close(after).ok_or_else(|| TemplateError("unclosed action".into()))?;
                let mut inner = &after[inner_start..close];
                trim_next_text = false;
                if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
                    inner = &inner[..inner.len() - 1];
                    trim_next_text = true;
                }
                segs.push(Segment::Action(inner.trim().to_string()));
                rest = &after[close + 2..];
            }
        }
    }
    Ok(segs)
}

/// Finds the `}}` closing an action, skipping string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

enum Stop {
    Eof,
    Else,
    End,
}

fn parse_nodes(segs: &[Segment], pos: &mut usize) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < segs.len() {
        let seg = &segs[*pos];
        *pos += 1;
        match seg {
            Segment::Text(t) => nodes.push(Node::Text(t.clone())),
            Segment::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "" => return err("missing value for command"),
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => return Ok((nodes, Stop::Else)),
                    "if" | "range" | "with" => {
                        let pipe = parse_pipeline(rest)?;
                        let (body, stop) = parse_nodes(segs, pos)?;
                        let alt = match stop {
                            Stop::End => Vec::new(),
                            Stop::Else => match parse_nodes(segs, pos)? {
                                (alt, Stop::End) => alt,
                                _ => return err(format!("unexpected EOF in {{{{{kw}}}}}")),
                            },
                            Stop::Eof => return err(format!("unexpected EOF in {{{{{kw}}}}}")),
                        };
                        nodes.push(match kw {
                            "if" => Node::If(pipe, body, alt),
                            "range" => Node::Range(pipe, body, alt),
                            _ => Node::With(pipe, body, alt),
                        });
                    }
                    _ if a.starts_with("/*") => {} // comment
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_pipeline(src: &str) -> Result<Pipeline, TemplateError> {
    let tokens = tokenize(src)?;
    let mut cmds: Vec<Vec<Arg>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Tok::Pipe => cmds.push(Vec::new()),
            Tok::Arg(a) => cmds.last_mut().expect("at least one command").push(a),
        }
    }
    if cmds.iter().any(Vec::is_empty) {
        return err(format!("missing value for command in {{{{{src}}}}}"));
    }
    for cmd in &cmds {
        if let Arg::Ident(name) = &cmd[0] {
            if !FUNCTIONS.contains(&name.as_str()) {
                return err(format!("function {name:?} not defined"));
            }
        } else if cmd.len() > 1 {
            return err(format!(
                "can't give argument to non-function in {{{{{src}}}}}"
            ));
        }
    }
    Ok(Pipeline {
        cmds,
        source: src.to_string(),
    })
}

enum Tok {
    Pipe,
    Arg(Arg),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            toks.push(Tok::Pipe);
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return err("unterminated quoted string"),
                    Some('"') => break,
                    Some('\\') => {
                        i += 1;
                        match chars.get(i) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&c) => s.push(c),
                            None => return err("unterminated quoted string"),
                        }
                    }
                    Some(&c) => s.push(c),
                }
                i += 1;
            }
            i += 1;
            toks.push(Tok::Arg(Arg::Str(s)));
        } else if c == '`' {
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&c| c == '`')
                .ok_or_else(|| TemplateError("unterminated raw quoted string".into()))?;
            toks.push(Tok::Arg(Arg::Str(
                chars[start..start + end].iter().collect(),
            )));
            i = start + end + 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            toks.push(Tok::Arg(parse_word(&word)?));
        }
    }
    Ok(toks)
}

fn parse_word(word: &str) -> Result<Arg, TemplateError> {
    if word == "." {
        return Ok(Arg::Field(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return err(format!("bad field reference {word:?}"));
        }
        return Ok(Arg::Field(parts));
    }
    match word {
        "true" => return Ok(Arg::Bool(true)),
        "false" => return Ok(Arg::Bool(false)),
        _ => {}
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(word) {
            return Ok(Arg::Num(n));
        }
        return err(format!("bad number syntax: {word:?}"));
    }
    if word.starts_with('$') {
        return err(format!("variables are not supported: {word}"));
    }
    if word.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(Arg::Ident(word.to_string()));
    }
    err(format!("unexpected {word:?} in command"))
}

// ---- evaluation ----

/// A value during evaluation: JSON, or a key missing from a map.
#[derive(Debug, Clone)]
enum Val {
    Json(Value),
    Missing,
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Json(v) => v.clone(),
            Val::Missing => Value::Null,
        }
    }
}

struct Ctx<'a> {
    root: &'a Value,
    strict: bool,
}

impl Ctx<'_> {
    fn exec(&self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => out.push_str(&print_val(&self.pipeline(p, dot)?)),
                Node::If(p, body, alt) => {
                    let branch = if truthy(&self.pipeline(p, dot)?) {
                        body
                    } else {
                        alt
                    };
                    self.exec(branch, dot, out)?;
                }
                Node::With(p, body, alt) => {
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.exec(body, &v.json(), out)?;
                    } else {
                        self.exec(alt, dot, out)?;
                    }
                }
                Node::Range(p, body, alt) => {
                    let items: Vec<Value> = match self.pipeline(p, dot)?.json() {
                        Value::Array(a) => a,
                        Value::Object(m) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter().map(|k| m[k].clone()).collect()
                        }
                        Value::Null => Vec::new(),
                        other => {
                            return err(format!("range can't iterate over {}", print_json(&other)))
                        }
                    };
                    if items.is_empty() {
                        self.exec(alt, dot, out)?;
                    }
                    for item in &items {
                        self.exec(body, item, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipeline(&self, p: &Pipeline, dot: &Value) -> Result<Val, TemplateError> {
        let mut prev: Option<Val> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev, &p.source)?);
        }
        Ok(prev.unwrap_or(Val::Missing))
    }

    fn command(
        &self,
        cmd: &[Arg],
        dot: &Value,
        piped: Option<Val>,
        src: &str,
    ) -> Result<Val, TemplateError> {
        if let Arg::Ident(name) = &cmd[0] {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(self.arg(a, dot, src)?);
            }
            args.extend(piped);
            return call(name, args);
        }
        if piped.is_some() {
            return err(format!(
                "can't give argument to non-function in {{{{{src}}}}}"
            ));
        }
        self.arg(&cmd[0], dot, src)
    }

    fn arg(&self, a: &Arg, dot: &Value, src: &str) -> Result<Val, TemplateError> {
        match a {
            Arg::Str(s) => Ok(Val::Json(Value::String(s.clone()))),
            Arg::Num(n) => Ok(Val::Json(Value::Number(n.clone()))),
            Arg::Bool(b) => Ok(Val::Json(Value::Bool(*b))),
            Arg::Ident(name) => call(name, Vec::new()),
            Arg::Field(path) => {
                let mut cur = Val::Json(dot.clone());
                let mut on_root = std::ptr::eq(dot, self.root);
                for name in path {
                    cur = match cur {
                        Val::Json(Value::Object(m)) => match m.get(name) {
                            Some(v) => Val::Json(v.clone()),
                            None if self.strict && on_root => {
                                return err(format!(
                                    "executing \"\" at <{src}>: can't evaluate field {name}"
                                ))
                            }
                            None => Val::Missing,
                        },
                        Val::Json(Value::Null) | Val::Missing => Val::Missing,
                        Val::Json(other) => {
                            return err(format!(
                                "executing \"\" at <{src}>: can't evaluate field {name} in type {}",
                                go_type_name(&other)
                            ))
                        }
                    };
                    on_root = false;
                }
                Ok(cur)
            }
        }
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "interface {}",
    }
}

fn truthy(v: &Val) -> bool {
    match v {
        Val::Missing => false,
        Val::Json(v) => match v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
        },
    }
}

fn string_arg(v: &Val, func: &str) -> Result<String, TemplateError> {
    match v {
        Val::Json(Value::String(s)) => Ok(s.clone()),
        other => err(format!(
            "{func}: expected a string, got {}",
            print_val(other)
        )),
    }
}

fn int_arg(v: &Val, func: &str) -> Result<i64, TemplateError> {
    match v {
        Val::Json(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| TemplateError(format!("{func}: not an integer"))),
        other => err(format!(
            "{func}: expected an integer, got {}",
            print_val(other)
        )),
    }
}

fn want_args(func: &str, args: &[Val], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return err(format!(
            "wrong number of args for {func}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn str_val(s: String) -> Val {
    Val::Json(Value::String(s))
}

fn call(name: &str, args: Vec<Val>) -> Result<Val, TemplateError> {
    match name {
        "json" => {
            want_args(name, &args, 1)?;
            Ok(str_val(
                serde_json::to_string(&args[0].json()).unwrap_or_default(),
            ))
        }
        "join" => {
            want_args(name, &args, 2)?;
            let sep = string_arg(&args[1], name)?;
            let items = match args[0].json() {
                Value::Array(a) => a.iter().map(print_json).collect::<Vec<_>>(),
                Value::Null => Vec::new(),
                other => return err(format!("join: expected a list, got {}", print_json(&other))),
            };
            Ok(str_val(items.join(&sep)))
        }
        "index" => {
            if args.is_empty() {
                return err("wrong number of args for index: want at least 1 got 0");
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (cur.json(), key.json()) {
                    (Value::Object(m), Value::String(k)) => match m.get(&k) {
                        Some(v) => Val::Json(v.clone()),
                        None => Val::Missing,
                    },
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        match a.get(i) {
                            Some(v) => Val::Json(v.clone()),
                            None => {
                                return err(format!("error calling index: index out of range: {n}"))
                            }
                        }
                    }
                    (Value::Null, _) => Val::Missing,
                    (c, k) => {
                        return err(format!(
                            "error calling index: cannot index {} with {}",
                            go_type_name(&c),
                            go_type_name(&k)
                        ))
                    }
                };
            }
            Ok(cur)
        }
        "upper" | "lower" | "title" => {
            want_args(name, &args, 1)?;
            let s = string_arg(&args[0], name)?;
            Ok(str_val(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => title_case(&s),
            }))
        }
        "split" => {
            want_args(name, &args, 2)?;
            let s = string_arg(&args[0], name)?;
            let sep = string_arg(&args[1], name)?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Val::Json(Value::Array(parts)))
        }
        "len" => {
            want_args(name, &args, 1)?;
            let n = match args[0].json() {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => {
                    return err(format!(
                        "error calling len: len of type {}",
                        go_type_name(&other)
                    ))
                }
            };
            Ok(Val::Json(Value::from(n)))
        }
        "truncate" => {
            want_args(name, &args, 2)?;
            let s = string_arg(&args[0], name)?;
            let n = int_arg(&args[1], name)?.max(0) as usize;
            Ok(str_val(s.chars().take(n).collect()))
        }
        "pad" => {
            want_args(name, &args, 3)?;
            let s = string_arg(&args[0], name)?;
            let l = int_arg(&args[1], name)?.max(0) as usize;
            let r = int_arg(&args[2], name)?.max(0) as usize;
            Ok(str_val(format!("{}{s}{}", " ".repeat(l), " ".repeat(r))))
        }
        "print" | "println" => {
            let parts: Vec<String> = args.iter().map(print_val).collect();
            let mut s = parts.join(if name == "println" { " " } else { "" });
            if name == "println" {
                s.push('\n');
            }
            Ok(str_val(s))
        }
        _ => err(format!("function {name:?} not defined")),
    }
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn print_val(v: &Val) -> String {
    match v {
        Val::Missing => "<no value>".to_string(),
        // A nil from a map lookup prints as Go's `<no value>`.
        Val::Json(Value::Null) => "<no value>".to_string(),
        Val::Json(v) => print_json(v),
    }
}

/// Go's `fmt.Sprint` of a decoded JSON value.
fn print_json(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(print_json).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", print_json(&m[*k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

// ---- Docker's list formatter ----

/// Resolves `--format` the way Docker's formatter does: `table` (alone) is
/// the default table, `json` is `{{json .}}`, a `table ` prefix prints a
/// header row and aligns columns; `\t` and `\n` escapes are expanded.
pub struct ListFormat {
    pub table: bool,
    pub template: Template,
}

impl ListFormat {
    pub fn new(user: Option<&str>, default_table: &str) -> Result<ListFormat, TemplateError> {
        let source = match user {
            None | Some("") | Some("table") => default_table.to_string(),
            Some("json") => "{{json .}}".to_string(),
            Some(f) => f.to_string(),
        };
        let (table, body) = match source.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, source.as_str()),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(ListFormat {
            table,
            template: Template::parse(&body)?,
        })
    }

    /// Renders `rows` (strict lookup), with `header` as the first row in
    /// table mode. Each row ends with a newline.
    pub fn render(&self, header: &Value, rows: &[Value]) -> Result<String, TemplateError> {
        let mut body = String::new();
        for row in rows {
            body.push_str(&self.template.render(row, true)?);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let mut tw = TabWriter::docker_table();
        tw.push_str(&self.template.render(header, false)?);
        tw.push_str("\n");
        tw.push_str(&body);
        Ok(tw.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v, false).unwrap()
    }

    #[test]
    fn fields_and_text() {
        let v = json!({"Id": "sha256:abc", "Config": {"Cmd": ["sh", "-c", "echo hi"], "Env": null, "Labels": null}});
        assert_eq!(render("id={{.Id}}", v.clone()), "id=sha256:abc");
        assert_eq!(render("{{.Config.Cmd}}", v.clone()), "[sh -c echo hi]");
        assert_eq!(
            render("{{.Config.Env}} {{.Config.Labels}}", v.clone()),
            "<no value> <no value>"
        );
        assert_eq!(
            render("{{.}}", json!({"a": [null], "b": null})),
            "map[a:[<nil>] b:<nil>]"
        );
        assert_eq!(render("{{.Nope}}", v.clone()), "<no value>");
        assert_eq!(render("{{.Config.Nope.Deeper}}", v), "<no value>");
        assert_eq!(render("{{.Size}}", json!({"Size": 4260000})), "4260000");
        assert_eq!(
            render("{{.}}", json!({"b": 1, "a": [true]})),
            "map[a:[true] b:1]"
        );
    }

    #[test]
    fn json_function() {
        let v = json!({"Config": {"Cmd": ["sh"], "User": "<root>"}});
        assert_eq!(
            render("{{json .Config}}", v.clone()),
            r#"{"Cmd":["sh"],"User":"<root>"}"#
        );
        assert_eq!(render("{{json .Config.Cmd}}", v.clone()), r#"["sh"]"#);
        assert_eq!(render("{{json .}}", json!({"a": "b"})), r#"{"a":"b"}"#);
        assert_eq!(render("{{json .Missing}}", v), "null");
    }

    #[test]
    fn functions_pipes_and_control() {
        let v = json!({"RepoTags": ["a:1", "b:2"], "Labels": {"x": "y"}, "Name": "web"});
        assert_eq!(render(r#"{{join .RepoTags ", "}}"#, v.clone()), "a:1, b:2");
        assert_eq!(render(r#"{{index .Labels "x"}}"#, v.clone()), "y");
        assert_eq!(render("{{.Name | upper}}", v.clone()), "WEB");
        assert_eq!(
            render("{{range .RepoTags}}[{{.}}]{{end}}", v.clone()),
            "[a:1][b:2]"
        );
        assert_eq!(render("{{if .Name}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(render("{{if .Nope}}yes{{else}}no{{end}}", v.clone()), "no");
        assert_eq!(render("a  {{- .Name -}}  b", v.clone()), "awebb");
        assert_eq!(render("{{len .RepoTags}}", v), "2");
    }

    #[test]
    fn errors() {
        let e = Template::parse("{{nosuch .X}}").unwrap_err();
        assert!(e.to_string().contains("\"nosuch\" not defined"), "{e}");
        assert!(Template::parse("{{.X").is_err());
        assert!(Template::parse("{{if .X}}a").is_err());
        let t = Template::parse("{{.Repository}} {{.Bogus}}").unwrap();
        let e = t.render(&json!({"Repository": "r"}), true).unwrap_err();
        assert!(e.to_string().contains("can't evaluate field Bogus"), "{e}");
    }

    #[test]
    fn table_prefix_header_and_tabs() {
        let f = ListFormat::new(Some(r"table {{.Repository}}\t{{.Tag}}"), "").unwrap();
        let header = json!({"Repository": "REPOSITORY", "Tag": "TAG"});
        let rows = vec![json!({"Repository": "busybox", "Tag": "latest"})];
        assert_eq!(
            f.render(&header, &rows).unwrap(),
            "REPOSITORY   TAG\nbusybox      latest\n"
        );

        let f = ListFormat::new(Some(r"{{.Repository}}\t{{.Tag}}"), "").unwrap();
        assert_eq!(f.render(&header, &rows).unwrap(), "busybox\tlatest\n");

        let f = ListFormat::new(Some("json"), "").unwrap();
        assert_eq!(
            f.render(&header, &rows).unwrap(),
            "{\"Repository\":\"busybox\",\"Tag\":\"latest\"}\n"
        );

        let f = ListFormat::new(None, "table {{.Tag}}").unwrap();
        assert!(f.table);
    }
}
