//! Applying [`expand`](crate::expand) to an instruction, with the list of
//! instructions the Dockerfile reference says support it: ADD COPY ENV
//! EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR (and `RUN --mount`
//! options, which BuildKit expands too). RUN, CMD, ENTRYPOINT, SHELL,
//! HEALTHCHECK, MAINTAINER and ONBUILD triggers are returned unchanged: for
//! commands the shell expands at run time, and an ONBUILD trigger is
//! expanded when it fires in a downstream build.
//!
//! Every variable reference in one instruction sees the environment as it
//! was *before* the instruction (`ENV abc=bye def=$abc` gives `def` the old
//! `abc`). `RUN` heredocs are left to the shell; a `COPY`/`ADD` heredoc
//! with an unquoted delimiter is expanded here, as a here-document.

use crate::error::{DockerfileError, Loc, Reason};
use crate::expand::{Env, Lexer};
use crate::instructions::{validate_port, FileOp, Instruction, KeyValue, Located, Source};

fn word(lx: &Lexer, env: &Env, s: &str) -> Result<String, Reason> {
    Ok(lx.process_word(s, env)?)
}

fn opt(lx: &Lexer, env: &Env, s: &Option<String>) -> Result<Option<String>, Reason> {
    s.as_deref().map(|s| word(lx, env, s)).transpose()
}

fn pairs(lx: &Lexer, env: &Env, kvs: &[KeyValue]) -> Result<Vec<KeyValue>, Reason> {
    kvs.iter()
        .map(|kv| {
            Ok(KeyValue {
                key: word(lx, env, &kv.key)?,
                value: word(lx, env, &kv.value)?,
            })
        })
        .collect()
}

/// The content of a `COPY <<EOF` heredoc whose delimiter is not quoted,
/// expanded as a shell here-document is (POSIX 2.7.4; the reference's
/// `COPY <<-EOT /script.sh` example): `$NAME` and `${…}` (with the
/// `:-`/`:+` forms) are replaced, `\$`, `\\` and `` \` `` are the character,
/// `\` before a newline joins lines; quotes stay as they are.
pub fn heredoc_content(lx: &Lexer, env: &Env, content: &str) -> Result<String, Reason> {
    let mut out = String::with_capacity(content.len());
    let mut chars = content.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.peek().map(|&(_, n)| n) {
                Some(n @ ('$' | '`' | '\\')) => {
                    out.push(n);
                    chars.next();
                }
                Some('\n') => {
                    chars.next();
                }
                _ => out.push('\\'),
            },
            '$' => match chars.peek().map(|&(_, n)| n) {
                Some('{') => {
                    // `${…}` up to its matching brace, expanded as a word.
                    let mut depth = 0;
                    let mut end = None;
                    for (j, d) in content[i + 1..].char_indices() {
                        match d {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    end = Some(i + 1 + j);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some(end) = end else {
                        out.push_str(&content[i..]);
                        break;
                    };
                    out.push_str(&word(lx, env, &content[i..=end])?);
                    while chars.peek().is_some_and(|&(j, _)| j <= end) {
                        chars.next();
                    }
                }
                Some(n) if n == '_' || n.is_ascii_alphabetic() => {
                    let mut name = String::new();
                    while let Some(&(_, n)) = chars.peek() {
                        if n == '_' || n.is_ascii_alphanumeric() {
                            name.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push_str(env.get(&name).unwrap_or(""));
                }
                _ => out.push('$'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

fn file_op(lx: &Lexer, env: &Env, op: &FileOp) -> Result<FileOp, Reason> {
    Ok(FileOp {
        sources: op
            .sources
            .iter()
            .map(|s| match s {
                Source::Path(p) => Ok(Source::Path(word(lx, env, p)?)),
                Source::Heredoc(h) if h.expand => {
                    let mut h = h.clone();
                    h.content = heredoc_content(lx, env, &h.content)?;
                    Ok(Source::Heredoc(h))
                }
                Source::Heredoc(h) => Ok(Source::Heredoc(h.clone())),
            })
            .collect::<Result<_, Reason>>()?,
        dest: word(lx, env, &op.dest)?,
        chown: opt(lx, env, &op.chown)?,
        chmod: opt(lx, env, &op.chmod)?,
        link: op.link,
        exclude: op
            .exclude
            .iter()
            .map(|e| word(lx, env, e))
            .collect::<Result<_, _>>()?,
        json: op.json,
    })
}

/// Expands the parts of `instr` that support substitution.
pub fn expand_instruction(
    instr: &Instruction,
    lx: &Lexer,
    env: &Env,
) -> Result<Instruction, Reason> {
    use Instruction as I;
    Ok(match instr {
        I::From(f) => {
            let mut f = f.clone();
            f.image = word(lx, env, &f.image)?;
            f.platform = opt(lx, env, &f.platform)?;
            I::From(f)
        }
        I::Run(r) => {
            let mut r = r.clone();
            for m in &mut r.mounts {
                m.target = opt(lx, env, &m.target)?;
                m.source = opt(lx, env, &m.source)?;
                m.from = opt(lx, env, &m.from)?;
                m.id = opt(lx, env, &m.id)?;
                m.env = opt(lx, env, &m.env)?;
            }
            I::Run(r)
        }
        I::Label(kvs) => I::Label(pairs(lx, env, kvs)?),
        I::Env(kvs) => I::Env(pairs(lx, env, kvs)?),
        I::Arg(decls) => {
            let mut decls = decls.clone();
            for d in &mut decls {
                d.default = opt(lx, env, &d.default)?;
            }
            I::Arg(decls)
        }
        I::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                for w in lx.process_words(p, env)? {
                    validate_port(&w)?;
                    out.push(w);
                }
            }
            I::Expose(out)
        }
        I::User(s) => I::User(word(lx, env, s)?),
        I::Workdir(s) => I::Workdir(word(lx, env, s)?),
        I::Stopsignal(s) => I::Stopsignal(word(lx, env, s)?),
        I::Volume(v) => {
            let v = v
                .iter()
                .map(|s| word(lx, env, s))
                .collect::<Result<Vec<_>, _>>()?;
            if v.iter().any(|s| s.trim().is_empty()) {
                return Err(Reason::Arguments(
                    "VOLUME specified can not be an empty string".into(),
                ));
            }
            I::Volume(v)
        }
        I::Copy(c) => {
            let mut c = c.clone();
            c.op = file_op(lx, env, &c.op)?;
            c.from = opt(lx, env, &c.from)?;
            I::Copy(c)
        }
        I::Add(a) => {
            let mut a = a.clone();
            a.op = file_op(lx, env, &a.op)?;
            a.checksum = opt(lx, env, &a.checksum)?;
            I::Add(a)
        }
        other => other.clone(),
    })
}

impl Located {
    /// Expands this instruction with `env`; errors name `file`, the line
    /// and the instruction.
    pub fn expand(
        &self,
        file: &str,
        lx: &Lexer,
        env: &Env,
    ) -> Result<Instruction, DockerfileError> {
        expand_instruction(&self.instruction, lx, env).map_err(|r| {
            Loc {
                file,
                line: self.start_line,
                instruction: Some(self.instruction.keyword()),
            }
            .err(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::Dockerfile;

    #[test]
    fn copy_heredoc_expands_as_a_here_document() {
        let mut env = Env::new();
        env.set("FOO", "bar");
        env.set("GREETING", "hello world");
        let lx = Lexer::new('\\');
        let got = heredoc_content(
            &lx,
            &env,
            "echo \"hello ${FOO}\" '$GREETING'\ncost \\$5 ${NOPE:-none} $ \\\nx$FOO.y\n",
        )
        .unwrap();
        assert_eq!(
            got,
            "echo \"hello bar\" 'hello world'\ncost $5 none $ xbar.y\n"
        );
        let df = Dockerfile::parse(
            "Dockerfile",
            "FROM busybox\nCOPY <<EOF /a\n$FOO\nEOF\nCOPY <<\"EOF\" /b\n$FOO\nEOF\n",
        )
        .unwrap();
        let contents: Vec<String> = df.instructions[1..]
            .iter()
            .map(|l| match l.expand("Dockerfile", &lx, &env).unwrap() {
                Instruction::Copy(c) => match &c.op.sources[0] {
                    Source::Heredoc(h) => h.content.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(contents, vec!["bar\n", "$FOO\n"]);
    }

    /// The example of the reference's "Environment replacement" section.
    #[test]
    fn reference_example() {
        let df = Dockerfile::parse(
            "Dockerfile",
            "FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\n",
        )
        .unwrap();
        let lx = Lexer::new('\\');
        let mut env = Env::new();
        let mut out = Vec::new();
        for l in &df.instructions[1..] {
            let i = l.expand("Dockerfile", &lx, &env).unwrap();
            if let Instruction::Env(kvs) = &i {
                for kv in kvs {
                    env.set(&kv.key, &kv.value);
                }
            }
            out.push(i);
        }
        assert_eq!(out[1], Instruction::Workdir("/bar".into()));
        let Instruction::Add(a) = &out[2] else {
            panic!()
        };
        assert_eq!(a.op.dest, "/bar");
        let Instruction::Copy(c) = &out[3] else {
            panic!()
        };
        assert_eq!(c.op.sources, vec![Source::Path("$FOO".into())]);
        assert_eq!(c.op.dest, "/quux");
    }

    #[test]
    fn same_value_throughout_instruction() {
        let df = Dockerfile::parse("Dockerfile", "ENV abc=bye def=$abc\n").unwrap();
        let env: Env = [("abc", "hello")].into_iter().collect();
        let i = df.instructions[0]
            .expand("Dockerfile", &Lexer::new('\\'), &env)
            .unwrap();
        let Instruction::Env(kvs) = i else { panic!() };
        assert_eq!(kvs[1].value, "hello");
    }

    #[test]
    fn quotes_removed_and_ports_checked() {
        let df = Dockerfile::parse(
            "Dockerfile",
            "LABEL \"com.example.vendor\"=\"ACME Incorporated\" d=\"a \\\nb\"\nEXPOSE $P\n",
        )
        .unwrap();
        let lx = Lexer::new('\\');
        let env: Env = [("P", "80 443/udp")].into_iter().collect();
        let Instruction::Label(kvs) = df.instructions[0].expand("Dockerfile", &lx, &env).unwrap()
        else {
            panic!()
        };
        assert_eq!(kvs[0].key, "com.example.vendor");
        assert_eq!(kvs[0].value, "ACME Incorporated");
        assert_eq!(kvs[1].value, "a b");
        assert_eq!(
            df.instructions[1].expand("Dockerfile", &lx, &env).unwrap(),
            Instruction::Expose(vec!["80".into(), "443/udp".into()])
        );
        let bad: Env = [("P", "80x")].into_iter().collect();
        let e = df.instructions[1]
            .expand("Dockerfile", &lx, &bad)
            .unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:3: EXPOSE: invalid port \"80x\"");
    }
}
