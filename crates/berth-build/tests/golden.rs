//! Golden files: every `testdata/<case>/Dockerfile` parses into exactly
//! `testdata/<case>/expected.json` (the typed instructions with their
//! lines, or `{"error": "<message>"}` for a Dockerfile that must fail).
//!
//! After an intended change, regenerate with
//! `BERTH_UPDATE_GOLDEN=1 cargo test -p berth-build --test golden` and
//! review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use berth_build::Dockerfile;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn render(dir: &Path) -> String {
    let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let value = match Dockerfile::parse("Dockerfile", &text) {
        Ok(df) => serde_json::to_value(&df).unwrap(),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    serde_json::to_string_pretty(&value).unwrap() + "\n"
}

fn run_case(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let actual = render(dir);
    let path = dir.join("expected.json");
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        fs::write(&path, &actual).map_err(|e| format!("{name}: {e}"))?;
        return Ok(());
    }
    let expected = fs::read_to_string(&path)
        .map_err(|e| format!("{name}: {e} (run with BERTH_UPDATE_GOLDEN=1)"))?;
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        return Err(format!(
            "{name}: differs from expected.json at line {}:\n  expected: {}\n  actual:   {}",
            line + 1,
            expected.lines().nth(line).unwrap_or("<eof>"),
            actual.lines().nth(line).unwrap_or("<eof>"),
        ));
    }
    // Error cases must say where: file, line, instruction.
    if name.starts_with("error-") && !expected.contains("\"error\": \"Dockerfile:") {
        return Err(format!("{name}: expected a located error"));
    }
    Ok(())
}

#[test]
fn golden_cases() {
    let mut dirs: Vec<PathBuf> = fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "golden cases missing: {dirs:?}");
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
