//! The workload executor handed to libcontainer: its default one's `execvp`,
//! with the pre-start check made as runc and the kernel make it.
//!
//! libcontainer 0.7's `DefaultExecutor::validate` accepts an executable
//! only when its *others* execute bit is set, so an image's `ENTRYPOINT`
//! with mode 0750 or 0700 (`COPY --chmod=0750`) fails to start with
//! "permission denied" even for root, while docker runs it. Here any
//! execute bit will do (runc's `exec.LookPath` rule: a regular file with
//! `mode & 0111 != 0`); whether the process's user may run it is left to
//! `execve`, whose EACCES is reported as before.
//!
//! Both the check and the `execve` end a failure's message with the
//! errno's marker ([`crate::exec_failure`]), so that the daemon learns
//! "not found" (exit code 127) from "cannot execute" (126) by number, not
//! by wording.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::errno::Errno;

use crate::exec_failure::marker;

#[derive(Clone)]
pub(crate) struct ShimExecutor;

/// `name` as `execvp` finds it: as given when it has a `/`, else the first
/// existing entry of `PATH`. The errno says why there is none.
fn lookup(name: &str, path_var: &str) -> Result<PathBuf, Errno> {
    if name.contains('/') {
        return match Path::new(name).metadata() {
            Ok(_) => Ok(PathBuf::from(name)),
            Err(e) => Err(errno_of(&e)),
        };
    }
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| p.exists())
        .ok_or(Errno::ENOENT)
}

/// What `execve` would say of `path` before trying: EISDIR for a
/// directory, EACCES for anything else that is not a regular file with an
/// execute bit.
fn check_executable(path: &Path) -> Result<(), Errno> {
    let m = path.metadata().map_err(|e| errno_of(&e))?;
    if m.is_dir() {
        Err(Errno::EISDIR)
    } else if m.is_file() && m.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

impl Executor for ShimExecutor {
    /// libcontainer's `DefaultExecutor::exec` (an `execvp` of the spec's
    /// args in the environment it has set up), keeping the errno.
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|a| !a.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
            .collect::<Result<_, _>>()?;
        let errno = match nix::unistd::execvp(&argv[0], &argv) {
            Ok(never) => match never {},
            Err(errno) => errno,
        };
        Err(ExecutorError::Other(format!(
            "exec '{}': {} {}",
            args[0],
            errno.desc(),
            marker(errno)
        )))
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
        let path = match lookup(argv0, path_var) {
            Ok(p) => p,
            Err(Errno::ENOENT) if !argv0.contains('/') => {
                return Err(invalid(format!(
                    "executable '{argv0}' not found in $PATH {}",
                    marker(Errno::ENOENT)
                )))
            }
            Err(errno) => {
                return Err(invalid(format!(
                    "executable '{argv0}': {} {}",
                    errno.desc(),
                    marker(errno)
                )))
            }
        };
        check_executable(&path).map_err(|errno| {
            invalid(format!(
                "executable '{argv0}' at path '{}': {} {}",
                path.display(),
                errno.desc(),
                marker(errno)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec_failure::{ExecFailure, ExecFailureClass};
    use std::fs;

    #[test]
    fn any_execute_bit_counts() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("run.sh");
        fs::write(&f, "#!/bin/sh\n").unwrap();
        for (mode, want) in [
            (0o750, Ok(())),
            (0o700, Ok(())),
            (0o755, Ok(())),
            (0o644, Err(Errno::EACCES)),
        ] {
            fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check_executable(&f), want, "{mode:o}");
        }
        assert_eq!(check_executable(d.path()), Err(Errno::EISDIR));
        assert_eq!(check_executable(&d.path().join("gone")), Err(Errno::ENOENT));
        let path_var = format!("/nonexistent:{}", d.path().display());
        assert_eq!(lookup("run.sh", &path_var), Ok(f.clone()));
        assert_eq!(lookup("nope", &path_var), Err(Errno::ENOENT));
        assert_eq!(lookup(f.to_str().unwrap(), ""), Ok(f.clone()));
        let under_file = format!("{}/x", f.display());
        assert_eq!(lookup(&under_file, ""), Err(Errno::ENOTDIR));
    }

    fn spec(args: &[&str], path: &str) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": args, "env": [format!("PATH={path}")], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        }))
        .unwrap()
    }

    fn failure(spec: &Spec) -> Option<ExecFailure> {
        let e = ShimExecutor.validate(spec).err()?;
        let mut text = e.to_string();
        ExecFailure::take_from(&mut text)
    }

    #[test]
    fn validation_failures_carry_their_class() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("data");
        fs::write(&f, "x").unwrap();
        let dir = d.path().display().to_string();
        let class = |args: &[&str]| failure(&spec(args, &dir)).map(|f| f.class);
        assert_eq!(class(&["missing"]), Some(ExecFailureClass::NotFound));
        assert_eq!(
            class(&[&format!("{dir}/missing")]),
            Some(ExecFailureClass::NotFound)
        );
        assert_eq!(class(&["data"]), Some(ExecFailureClass::NotExecutable));
        assert_eq!(class(&[&dir]), Some(ExecFailureClass::NotExecutable));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ShimExecutor.validate(&spec(&["data"], &dir)).is_ok());
        // Not an exec failure: no marker, no class.
        let no_path: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "process": {"args": ["x"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        }))
        .unwrap();
        assert_eq!(failure(&no_path), None);
    }
}
