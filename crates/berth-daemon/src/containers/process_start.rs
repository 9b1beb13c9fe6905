//! A container's process, or an exec's, that could not be started: the
//! exit code and the message Docker clients expect for it.
//!
//! The shim says why in a typed [`ExecFailure`] (decided from the errno
//! inside the container); here that becomes dockerd's answer
//! (daemon/start.go's translation of runtime start errors):
//!
//! | failure        | container start | exec start | message                                   |
//! |----------------|-----------------|------------|-------------------------------------------|
//! | not found      | 127             | 127        | `executable file not found in $PATH`, or `stat PATH: …` for a path |
//! | not executable | 126             | 126        | `permission denied`                       |
//! | other / none   | 128             | 126        | the runtime's own                         |
//!
//! The docker CLI derives `docker run`'s own exit code from those words
//! ("executable file not found", "no such file or directory": 127;
//! "permission denied": 126), so they are kept exactly.

use berth_shim::{ExecFailure, ExecFailureClass, ShimError};
use nix::errno::Errno;

use super::ContainerError;

/// dockerd's exit code for a container whose start failed for a reason
/// not tied to its executable.
const START_FAILED_OTHERWISE: i64 = 128;
/// dockerd's exit code for an exec that failed to start otherwise.
const EXEC_FAILED_OTHERWISE: i64 = 126;

/// The error for a container whose shim could not start it.
pub(crate) fn start_error(argv0: &str, e: &ShimError) -> ContainerError {
    match classified(argv0, e) {
        Some((failure, words)) => ContainerError::ProcessStart {
            failure,
            message: format!("failed to create task for container: {words}: unknown"),
        },
        None => ContainerError::Runtime(e.to_string()),
    }
}

/// The error for an exec the shim could not start.
pub(crate) fn exec_error(argv0: &str, e: &ShimError) -> ContainerError {
    match classified(argv0, e) {
        Some((failure, words)) => ContainerError::ProcessStart {
            failure,
            message: format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {words}: unknown"
            ),
        },
        None => ContainerError::Runtime(format!("OCI runtime exec failed: {e}")),
    }
}

/// The exit code a container records when its start failed with `e`.
pub(crate) fn start_exit_code(e: &ContainerError) -> i64 {
    class_exit_code(e).unwrap_or(START_FAILED_OTHERWISE)
}

/// The exit code an exec records when its start failed with `e`.
pub(crate) fn exec_exit_code(e: &ContainerError) -> i64 {
    class_exit_code(e).unwrap_or(EXEC_FAILED_OTHERWISE)
}

fn class_exit_code(e: &ContainerError) -> Option<i64> {
    let ContainerError::ProcessStart { failure, .. } = e else {
        return None;
    };
    match failure.class {
        ExecFailureClass::NotFound => Some(127),
        ExecFailureClass::NotExecutable => Some(126),
        ExecFailureClass::Other => None,
    }
}

/// The shim's failure, when it has a class, and runc's words for it.
fn classified(argv0: &str, e: &ShimError) -> Option<(ExecFailure, String)> {
    let failure = e.exec_failure()?;
    Some((failure, runc_words(argv0, failure)?))
}

/// runc's words for a failed start of `argv0` (`exec: "x": …`), or `None`
/// when the failure has no class of its own and the runtime's message is
/// the better one.
fn runc_words(argv0: &str, failure: ExecFailure) -> Option<String> {
    let errno = Errno::from_raw(failure.errno);
    let what = match failure.class {
        ExecFailureClass::NotFound if !argv0.contains('/') => {
            "executable file not found in $PATH".to_owned()
        }
        ExecFailureClass::NotFound => format!("stat {argv0}: {}", go_words(errno)),
        // dockerd appends "permission denied" to EISDIR for the docker CLI,
        // which looks for those words (Go 1.20 changed the errno).
        ExecFailureClass::NotExecutable if errno == Errno::EISDIR => {
            format!("{}: permission denied", go_words(errno))
        }
        ExecFailureClass::NotExecutable => go_words(errno),
        ExecFailureClass::Other => return None,
    };
    Some(format!("exec: \"{argv0}\": {what}"))
}

/// An errno as Go's `syscall.Errno` prints it: the C description with a
/// lowercase first letter ("no such file or directory").
fn go_words(errno: Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::HasKind;

    fn shim_error(errno: Errno) -> ShimError {
        ShimError::Remote {
            kind: berth_core::ErrorKind::Internal,
            message: "raw".into(),
            exec_failure: Some(ExecFailure::from_errno(errno as i32)),
        }
    }

    fn plain() -> ShimError {
        ShimError::Protocol("raw".into())
    }

    #[test]
    fn exit_codes_follow_dockerd() {
        let start = |e: &ShimError| start_exit_code(&start_error("x", e));
        let exec = |e: &ShimError| exec_exit_code(&exec_error("x", e));
        assert_eq!(start(&shim_error(Errno::ENOENT)), 127);
        assert_eq!(start(&shim_error(Errno::ENOTDIR)), 127);
        assert_eq!(start(&shim_error(Errno::EACCES)), 126);
        assert_eq!(start(&shim_error(Errno::EISDIR)), 126);
        assert_eq!(start(&shim_error(Errno::ENOEXEC)), 128);
        assert_eq!(start(&plain()), 128);
        assert_eq!(exec(&shim_error(Errno::ENOENT)), 127);
        assert_eq!(exec(&shim_error(Errno::EACCES)), 126);
        assert_eq!(exec(&shim_error(Errno::ENOEXEC)), 126);
        assert_eq!(exec(&plain()), 126);
    }

    #[test]
    fn messages_use_runcs_and_dockerds_words() {
        let start = |argv0: &str, e: &ShimError| start_error(argv0, e).to_string();
        assert_eq!(
            start("nope", &shim_error(Errno::ENOENT)),
            "failed to create task for container: exec: \"nope\": executable file not found in $PATH: unknown"
        );
        let m = start("/bin/nope", &shim_error(Errno::ENOENT));
        assert!(
            m.contains("exec: \"/bin/nope\": stat /bin/nope: no such file or directory"),
            "{m}"
        );
        let m = start("/etc/passwd", &shim_error(Errno::EACCES));
        assert!(
            m.contains("exec: \"/etc/passwd\": permission denied"),
            "{m}"
        );
        let m = start("/etc", &shim_error(Errno::EISDIR));
        assert!(m.contains("is a directory: permission denied"), "{m}");
        assert_eq!(start("x", &shim_error(Errno::ENOEXEC)), "raw");
        assert_eq!(start("x", &plain()), "shim protocol error: raw");

        let m = exec_error("no-such-binary", &shim_error(Errno::ENOENT));
        assert_eq!(m.kind(), berth_core::ErrorKind::InvalidArgument);
        assert_eq!(
            m.to_string(),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"no-such-binary\": executable file not found in $PATH: unknown"
        );
        let m = exec_error("x", &plain());
        assert_eq!(m.kind(), berth_core::ErrorKind::Internal);
        assert_eq!(
            m.to_string(),
            "OCI runtime exec failed: shim protocol error: raw"
        );
    }
}
