//! Helpers shared by the builder's integration tests.

use std::fs;

use super::TestDaemon;

/// A context directory with `files` (`name`, content).
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let p = dir.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

pub fn path(d: &tempfile::TempDir) -> &str {
    d.path().to_str().unwrap()
}

/// Nothing of the build left behind: no containers, no mounts, no build dirs.
#[allow(dead_code)]
pub fn assert_clean(d: &TestDaemon) {
    let ps = d.berth_ok(&["ps", "-a", "-q"]);
    assert_eq!(ps.trim(), "", "containers left: {ps}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = d.data_root.display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "mounts left under {root}"
    );
    let tmp = d.data_root.join("tmp");
    let left: Vec<_> = fs::read_dir(&tmp)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "build dirs left in {}: {left:?}",
        tmp.display()
    );
}
