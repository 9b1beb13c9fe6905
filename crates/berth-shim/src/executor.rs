//! The workload executor handed to libcontainer: its default one, with the
//! pre-start check made as runc and the kernel make it.
//!
//! libcontainer 0.7's `DefaultExecutor::validate` accepts an executable
//! only when its *others* execute bit is set, so an image's `ENTRYPOINT`
//! with mode 0750 or 0700 (`COPY --chmod=0750`) fails to start with
//! "permission denied" even for root, while docker runs it. Here any
//! execute bit will do (runc's `exec.LookPath` rule: a regular file with
//! `mode & 0111 != 0`); whether the process's user may run it is left to
//! `execve`, whose EACCES is reported as before.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

#[derive(Clone)]
pub(crate) struct ShimExecutor;

/// `name` as `execvp` finds it: as given when it has a `/`, else the first
/// existing entry of `PATH`.
fn lookup(name: &str, path_var: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).exists().then(|| PathBuf::from(name));
    }
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| p.exists())
}

fn is_executable(path: &Path) -> std::io::Result<bool> {
    let m = path.metadata()?;
    Ok(m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Executor for ShimExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let invalid = ExecutorValidationError::ArgValidationError;
        let Some(proc) = spec.process() else {
            return Err(invalid("spec did not contain process".into()));
        };
        let Some(argv0) = proc.args().as_ref().and_then(|a| a.first()) else {
            return Ok(());
        };
        let env = proc.env().clone().unwrap_or_default();
        let Some(path_var) = env.iter().find_map(|e| e.strip_prefix("PATH=")) else {
            return Err(invalid("PATH environment variable is not set".into()));
        };
        // The wording below is what the daemon maps to exit codes 127/126.
        let Some(path) = lookup(argv0, path_var) else {
            return Err(invalid(format!("executable '{argv0}' not found in $PATH")));
        };
        match is_executable(&path) {
            Ok(true) => Ok(()),
            Ok(false) => Err(invalid(format!(
                "executable '{argv0}' at path '{}' does not have correct permissions",
                path.display()
            ))),
            Err(e) => Err(invalid(format!(
                "failed to check permissions for executable '{argv0}' at path '{}': {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn any_execute_bit_counts() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("run.sh");
        fs::write(&f, "#!/bin/sh\n").unwrap();
        for (mode, want) in [(0o750, true), (0o700, true), (0o755, true), (0o644, false)] {
            fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(is_executable(&f).unwrap(), want, "{mode:o}");
        }
        assert!(
            !is_executable(d.path()).unwrap(),
            "a directory is not executable"
        );
        let path_var = format!("/nonexistent:{}", d.path().display());
        assert_eq!(lookup("run.sh", &path_var), Some(f.clone()));
        assert_eq!(lookup("nope", &path_var), None);
        assert_eq!(lookup(f.to_str().unwrap(), ""), Some(f.clone()));
    }
}
