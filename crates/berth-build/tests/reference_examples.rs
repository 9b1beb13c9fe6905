//! Examples of the Dockerfile reference, run through parse → expand with a
//! minimal walker standing in for the executor (ENV and ARG only).

use std::collections::BTreeMap;

use berth_build::{ArgScope, Dockerfile, Env, Instruction, Lexer};

/// Expands every instruction after the FROM in order, tracking ENV and
/// ARG like the executor does; returns the expanded instructions.
fn walk(text: &str, build_args: &[(&str, &str)]) -> Vec<Instruction> {
    let df = Dockerfile::parse("Dockerfile", text).unwrap();
    let ba: BTreeMap<String, String> = build_args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lx = Lexer::new(df.directives.escape);
    let mut args = ArgScope::new(&ba, &Env::new(), None);
    let mut env = Env::new();
    let mut out = Vec::new();
    for l in &df.instructions[1..] {
        // ENV wins over ARG of the same name.
        let mut vars = args.values().clone();
        env.iter().for_each(|(k, v)| vars.set(k, v));
        let i = l.expand(&df.file, &lx, &vars).unwrap();
        match &i {
            Instruction::Env(kvs) => kvs.iter().for_each(|kv| env.set(&kv.key, &kv.value)),
            Instruction::Arg(decls) => decls.iter().for_each(|d| {
                args.declare(&d.name, d.default.as_deref());
            }),
            _ => {}
        }
        out.push(i);
    }
    out
}

#[test]
fn environment_replacement_example() {
    let out = walk(
        "FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\n",
        &[],
    );
    assert_eq!(out[1], Instruction::Workdir("/bar".into()));
}

#[test]
fn env_same_value_in_instruction() {
    let out = walk(
        "FROM b\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n",
        &[],
    );
    let Instruction::Env(kvs) = &out[1] else {
        panic!()
    };
    assert_eq!(kvs[1].value, "hello");
    let Instruction::Env(kvs) = &out[2] else {
        panic!()
    };
    assert_eq!(kvs[0].value, "bye");
}

#[test]
fn arg_scope_example() {
    let out = walk(
        "FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n",
        &[("username", "what_user")],
    );
    assert_eq!(out[0], Instruction::User("some_user".into()));
    assert_eq!(out[2], Instruction::User("what_user".into()));
}

#[test]
fn env_overrides_arg_example() {
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nWORKDIR /$CONT_IMG_VER\n";
    let out = walk(text, &[("CONT_IMG_VER", "v2.0.1")]);
    assert_eq!(out[2], Instruction::Workdir("/v1.0.0".into()));
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nWORKDIR /$CONT_IMG_VER\n";
    assert_eq!(walk(text, &[])[2], Instruction::Workdir("/v1.0.0".into()));
    assert_eq!(
        walk(text, &[("CONT_IMG_VER", "v2.0.1")])[2],
        Instruction::Workdir("/v2.0.1".into())
    );
}

#[test]
fn workdir_unset_variable_example() {
    // "ENV DIRPATH=/path / WORKDIR $DIRPATH/$DIRNAME" gives /path/ with
    // DIRNAME unset (the reference shows what `pwd` prints).
    let out = walk(
        "FROM a\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME\n",
        &[],
    );
    assert_eq!(out[1], Instruction::Workdir("/path/".into()));
}

#[test]
fn env_and_label_quoting_examples() {
    let out = walk(
        "FROM a\nENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy\nLABEL multi.label1=\"value1\" other=\"value3\"\n",
        &[],
    );
    let Instruction::Env(kvs) = &out[0] else {
        panic!()
    };
    let got: Vec<(&str, &str)> = kvs
        .iter()
        .map(|k| (k.key.as_str(), k.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("MY_NAME", "John Doe"),
            ("MY_DOG", "Rex The Dog"),
            ("MY_CAT", "fluffy")
        ]
    );
    let Instruction::Label(kvs) = &out[1] else {
        panic!()
    };
    assert_eq!(kvs[0].value, "value1");
}

#[test]
fn run_cmd_entrypoint_not_expanded() {
    let out = walk(
        "FROM a\nENV X=1\nRUN echo $X\nCMD [\"echo\", \"$X\"]\n",
        &[],
    );
    let Instruction::Run(r) = &out[1] else {
        panic!()
    };
    assert_eq!(r.command, berth_build::Command::Shell("echo $X".into()));
    assert_eq!(
        out[2],
        Instruction::Cmd(berth_build::Command::Exec(vec!["echo".into(), "$X".into()]))
    );
}
