//! Golden cases under `testdata/<case>/`: `compose.yml` (and
//! `compose.override.yml`, merged over it), variables in `env`, and either
//! `expected.json` (the normalized model), `stack.json` (the swarm objects
//! of stack `demo`) or `error.txt` (the loader's message). Files the
//! project names are read from the case directory. `UPDATE_GOLDEN=1`
//! rewrites the expectations.

use std::fs;
use std::path::Path;

use berth_compose::{load, stack, ComposeFile, Environment};

fn check(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(path).unwrap_or_default();
    assert_eq!(actual.trim_end(), expected.trim_end(), "{}", path.display());
}

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5);
    for dir in cases {
        let mut files = Vec::new();
        for name in ["compose.yml", "compose.override.yml"] {
            if let Ok(content) = fs::read_to_string(dir.join(name)) {
                files.push(ComposeFile {
                    name: name.into(),
                    content,
                });
            }
        }
        let env: Environment = fs::read_to_string(dir.join("env"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let result = load(&files, &env, ".");
        if dir.join("error.txt").exists() {
            let e = result.expect_err(&dir.display().to_string());
            check(&dir.join("error.txt"), &e.to_string());
            continue;
        }
        let project = result.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        check(
            &dir.join("expected.json"),
            &serde_json::to_string_pretty(&project).unwrap(),
        );
        if dir.join("stack.json").exists() {
            let d = dir.clone();
            let read = move |p: &str| fs::read(d.join(p)).map_err(|e| e.to_string());
            let s = stack::convert("demo", &project, &env, &read).unwrap();
            check(
                &dir.join("stack.json"),
                &serde_json::to_string_pretty(&s).unwrap(),
            );
        }
    }
}
