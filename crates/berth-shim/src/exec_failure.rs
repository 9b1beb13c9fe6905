//! Why a container's process could not be started, as a class the daemon
//! acts on without reading messages: Docker's exit code 127 for "no such
//! executable", 126 for "cannot execute it".
//!
//! The class is decided where the errno is known: inside the container's
//! init, by [`crate::executor::ShimExecutor`], at the `PATH` lookup before
//! the start or at `execve` itself. libcontainer carries the init's error
//! back to the shim only as text, so the executor ends its message with a
//! marker, `[exec-errno=N]` ([`marker`]). The shim takes the marker out
//! again where it turns libcontainer's error into its own
//! ([`crate::ShimError`]'s `Runtime`), once; from there the failure travels
//! typed, in the control socket's and `berth shim start`'s error replies
//! ([`crate::protocol::ErrorReply`]).

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

const MARKER_OPEN: &str = "[exec-errno=";

/// What kind of failure it was; see [`ExecFailure::from_errno`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecFailureClass {
    /// No such executable: the `PATH` lookup missed, or the path (or its
    /// interpreter) does not exist.
    NotFound,
    /// The file is there but cannot be executed.
    NotExecutable,
    /// `execve` failed for another reason (a bad format, E2BIG, ...); also
    /// any class a newer shim sends that this side does not know.
    #[serde(other)]
    Other,
}

/// A failed start of a container's process, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecFailure {
    pub class: ExecFailureClass,
    /// The errno that decided the class.
    pub errno: i32,
}

impl ExecFailure {
    /// The class of an errno from the lookup or `execve`, as dockerd sorts
    /// runc's start errors (daemon/start.go): ENOENT and ENOTDIR are "not
    /// found"; EACCES is "cannot execute", and so is EISDIR (which Go 1.20
    /// started reporting for a directory, where it used to say EACCES).
    pub fn from_errno(errno: i32) -> Self {
        let class = match Errno::from_raw(errno) {
            Errno::ENOENT | Errno::ENOTDIR => ExecFailureClass::NotFound,
            Errno::EACCES | Errno::EISDIR => ExecFailureClass::NotExecutable,
            _ => ExecFailureClass::Other,
        };
        ExecFailure { class, errno }
    }

    /// Takes the executor's marker out of `message` and returns the failure
    /// it carried. Bytes libcontainer leaves after the marker (its exec
    /// error pipe is read in 3-byte chunks and may pad with NULs) go too.
    pub(crate) fn take_from(message: &mut String) -> Option<ExecFailure> {
        let start = message.find(MARKER_OPEN)?;
        let digits_at = start + MARKER_OPEN.len();
        let len = message[digits_at..].find(']')?;
        let errno: i32 = message[digits_at..digits_at + len].parse().ok()?;
        let mut rest = message[digits_at + len + 1..].to_owned();
        rest.retain(|c| c != '\0');
        message.truncate(start);
        let kept = message.trim_end().len();
        message.truncate(kept);
        message.push_str(&rest);
        Some(ExecFailure::from_errno(errno))
    }
}

/// The marker the executor appends to its error message for `errno`.
pub(crate) fn marker(errno: Errno) -> String {
    format!("{MARKER_OPEN}{}]", errno as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_leaves_the_message() {
        for errno in [Errno::ENOENT, Errno::EACCES, Errno::ENOEXEC] {
            let mut m = format!("executable 'x' not found {}", marker(errno));
            let f = ExecFailure::take_from(&mut m).expect("marker found");
            assert_eq!(f.errno, errno as i32);
            assert_eq!(m, "executable 'x' not found");
        }
        // Wrapped by libcontainer and the shim, padded by the exec pipe.
        let mut m = format!(
            "container c: exec: exec process failed with error exec 'x': Permission denied {}\0\0",
            marker(Errno::EACCES)
        );
        let f = ExecFailure::take_from(&mut m).unwrap();
        assert_eq!(f.class, ExecFailureClass::NotExecutable);
        assert_eq!(
            m,
            "container c: exec: exec process failed with error exec 'x': Permission denied"
        );
    }

    #[test]
    fn no_or_broken_marker_is_no_failure() {
        for text in [
            "plain error",
            "[exec-errno=]",
            "[exec-errno=2",
            "[exec-errno=x]",
        ] {
            let mut m = text.to_owned();
            assert_eq!(ExecFailure::take_from(&mut m), None, "{text}");
            assert_eq!(m, text, "message untouched");
        }
    }

    #[test]
    fn classes_follow_dockerd() {
        let class = |e: Errno| ExecFailure::from_errno(e as i32).class;
        assert_eq!(class(Errno::ENOENT), ExecFailureClass::NotFound);
        assert_eq!(class(Errno::ENOTDIR), ExecFailureClass::NotFound);
        assert_eq!(class(Errno::EACCES), ExecFailureClass::NotExecutable);
        assert_eq!(class(Errno::EISDIR), ExecFailureClass::NotExecutable);
        assert_eq!(class(Errno::ENOEXEC), ExecFailureClass::Other);
        assert_eq!(class(Errno::E2BIG), ExecFailureClass::Other);
    }

    #[test]
    fn wire_form_is_stable_and_tolerant() {
        let f = ExecFailure::from_errno(Errno::ENOENT as i32);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"class":"not_found","errno":2}"#
        );
        let later: ExecFailure =
            serde_json::from_str(r#"{"class":"from_the_future","errno":99}"#).unwrap();
        assert_eq!(later.class, ExecFailureClass::Other);
    }
}
