//! Golden files: every `testdata/<case>/input.json` (a serialized
//! `SpecInput`) must build into exactly `testdata/<case>/expected.json`.
//!
//! After an intended change, regenerate with
//! `BERTH_UPDATE_GOLDEN=1 cargo test -p berth-oci --test golden` and review
//! the diff.

use std::fs;
use std::path::{Path, PathBuf};

use berth_oci::{build_spec, to_config_json, SeccompArch, SpecInput};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn run_case(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let input_text =
        fs::read_to_string(dir.join("input.json")).map_err(|e| format!("{name}: {e}"))?;
    let mut input: SpecInput =
        serde_json::from_str(&input_text).map_err(|e| format!("{name}: input.json: {e}"))?;
    // Golden files are the same on every build machine.
    input.arch = SeccompArch::X86_64;
    let spec = build_spec(&input).map_err(|e| format!("{name}: build_spec: {e}"))?;
    let actual = to_config_json(&spec).map_err(|e| format!("{name}: {e}"))?;
    let expected_path = dir.join("expected.json");
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        fs::write(&expected_path, &actual).map_err(|e| format!("{name}: {e}"))?;
        return Ok(());
    }
    let expected = fs::read_to_string(&expected_path).map_err(|e| {
        format!("{name}: {e} (run with BERTH_UPDATE_GOLDEN=1 to create expected.json)")
    })?;
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        return Err(format!(
            "{name}: output differs from expected.json at line {}:\n  expected: {}\n  actual:   {}\n\
             (rerun with BERTH_UPDATE_GOLDEN=1 if the change is intended)",
            first + 1,
            expected.lines().nth(first).unwrap_or("<eof>"),
            actual.lines().nth(first).unwrap_or("<eof>"),
        ));
    }
    // The file must also read back as the same spec (what the runtime sees).
    let reparsed: oci_spec::runtime::Spec =
        serde_json::from_str(&actual).map_err(|e| format!("{name}: reparse: {e}"))?;
    if reparsed != spec {
        return Err(format!(
            "{name}: expected.json does not parse back to the same spec"
        ));
    }
    Ok(())
}

#[test]
fn golden_cases() {
    let mut dirs: Vec<PathBuf> = fs::read_dir(testdata())
        .expect("testdata directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 7, "golden cases missing: {dirs:?}");
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
