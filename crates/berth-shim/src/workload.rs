//! The last steps of a container process before `execve`, run by a
//! libcontainer workload executor inside the new process: for an exec, the
//! terminal's window size; for the container's init and every exec, the
//! container's seccomp filter, precompiled by the shim ([`crate::seccomp`]).
//!
//! Window size: the pty is made by the process itself and its master only
//! reaches the shim once the process may already be running, so a size set
//! from the shim races with a program that reads it at start (`docker exec
//! -it c stty size`); set on the slave before `execve`, it cannot.
//!
//! Seccomp: for the init, the shim hands libcontainer a spec without
//! `linux.seccomp` (libcontainer would compile the profile again in every
//! container) and loads the cached program here instead. For an exec,
//! libcontainer 0.7's tenant builder rebuilds the `linux` section of the
//! spec and leaves `seccomp` out, so its init never installs a filter;
//! runc (and so docker exec) filters every process of the container with
//! the container's profile, and so does this executor.
//!
//! By then libcontainer has already dropped to the process's capabilities,
//! and loading a filter needs either no-new-privileges or CAP_SYS_ADMIN.
//! Setting no-new-privileges ourselves would change what setuid programs
//! do inside the container, so (as runc does when no-new-privileges is
//! off) the filter is loaded while still privileged: the process is
//! started with CAP_SYS_ADMIN and CAP_SETPCAP added ([`widen`]), the
//! executor loads the filter and then drops to the exact capability sets
//! the process was meant to have before handing over to [`ShimExecutor`]. A
//! profile that denies `capset` or `prctl` therefore fails the start, as it
//! fails runc's.

use std::collections::HashMap;

use libcontainer::capabilities::drop_privileges;
use libcontainer::oci_spec::runtime::{LinuxCapabilities, Spec};
use libcontainer::syscall::syscall::create_syscall;
use libcontainer::workload::default::DefaultExecutor;

use crate::executor::ShimExecutor;
use crate::seccomp::Program;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use serde_json::{json, Value};

/// Capabilities the process needs between libcontainer's capability drop
/// and the filter load: SYS_ADMIN to load a filter without
/// no-new-privileges, SETPCAP to shrink the bounding set afterwards.
const LOAD_CAPS: [&str; 2] = ["CAP_SYS_ADMIN", "CAP_SETPCAP"];
const WIDENED_SETS: [&str; 3] = ["bounding", "effective", "permitted"];

/// How a container is confined by seccomp, as the shim found its profile.
#[derive(Clone, Debug, Default)]
pub(crate) enum Confinement {
    /// No profile (`seccomp=unconfined`, `--privileged`).
    #[default]
    Unconfined,
    /// A profile, compiled.
    Program(Program),
    /// A profile with notify rules: libcontainer loads it for the init;
    /// execs are refused.
    Notify,
}

#[derive(Clone, Default)]
pub(crate) struct Workload {
    /// Rows and columns of the process's terminal (its stdin).
    window: Option<[u16; 2]>,
    filter: Option<Filter>,
}

impl Workload {
    /// The workload for a process of a container confined by
    /// `confinement`, whose OCI `process` is about to be written; widens
    /// the process's capabilities when the filter must be loaded
    /// privileged.
    pub(crate) fn prepare(
        confinement: &Confinement,
        process: &mut Value,
        window: Option<[u16; 2]>,
    ) -> Result<Self, String> {
        let filter = match confinement {
            Confinement::Unconfined => None,
            Confinement::Notify => {
                return Err("seccomp notify profiles are not supported for exec".into())
            }
            Confinement::Program(p) => Some(Filter::prepare(p, process)?),
        };
        Ok(Self {
            window: window.filter(|[h, w]| *h > 0 && *w > 0),
            filter,
        })
    }
}

#[derive(Clone)]
struct Filter {
    program: Program,
    /// The process's real capability sets, restored after the filter is
    /// loaded; `None` when no-new-privileges is set (then libcontainer has
    /// set it already and the filter loads unprivileged) or the process
    /// keeps the shim's capabilities anyway.
    restore: Option<LinuxCapabilities>,
}

impl Filter {
    fn prepare(program: &Program, process: &mut Value) -> Result<Self, String> {
        let program = program.clone();
        if process.get("noNewPrivileges") == Some(&json!(true)) {
            return Ok(Self {
                program,
                restore: None,
            });
        }
        let caps = process
            .get("capabilities")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        if WIDENED_SETS
            .iter()
            .any(|set| !caps.get(*set).is_some_and(Value::is_array))
        {
            // A set left out keeps what the shim holds (all of root's
            // capabilities, CAP_SYS_ADMIN included): nothing to widen, and
            // nothing exact to restore.
            return Ok(Self {
                program,
                restore: None,
            });
        }
        let restore: LinuxCapabilities = serde_json::from_value(caps.clone())
            .map_err(|e| format!("the process's capabilities cannot be read: {e}"))?;
        process["capabilities"] = widen(caps);
        Ok(Self {
            program,
            restore: Some(restore),
        })
    }

    fn load(&self) -> Result<(), ExecutorError> {
        self.program.load().map_err(|e| {
            ExecutorError::Other(format!("loading the container's seccomp filter: {e}"))
        })?;
        if let Some(caps) = &self.restore {
            drop_privileges(caps, &*create_syscall()).map_err(|e| {
                ExecutorError::Other(format!("dropping capabilities after seccomp: {e}"))
            })?;
        }
        Ok(())
    }
}

/// `caps` with [`LOAD_CAPS`] added to the bounding, effective and
/// permitted sets (never to inheritable or ambient, so nothing can leak
/// into an `execve`).
fn widen(mut caps: Value) -> Value {
    for set in WIDENED_SETS {
        let mut names: Vec<Value> = caps
            .get(set)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for cap in LOAD_CAPS {
            if !names.iter().any(|n| n == cap) {
                names.push(json!(cap));
            }
        }
        caps[set] = Value::Array(names);
    }
    caps
}

impl Executor for Workload {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some([rows, cols]) = self.window {
            // Best effort, as a resize is: a process without a terminal on
            // stdin has no size to set.
            let _ = crate::stdio::set_window_size(&std::io::stdin(), rows, cols);
        }
        if let Some(filter) = &self.filter {
            filter.load()?;
        }
        ShimExecutor.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        ShimExecutor.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        DefaultExecutor {}.setup_envs(envs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::oci_spec::runtime::LinuxSeccomp;

    fn program() -> Program {
        let profile: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        }))
        .unwrap();
        crate::seccomp::compile(&profile).unwrap()
    }

    #[test]
    fn unconfined_container_needs_no_filter() {
        let mut p = json!({"capabilities": {"bounding": ["CAP_CHOWN"]}});
        let before = p.clone();
        let w = Workload::prepare(&Confinement::Unconfined, &mut p, None).unwrap();
        assert!(w.filter.is_none());
        assert_eq!(p, before, "process untouched");
    }

    #[test]
    fn notify_profiles_refuse_execs() {
        let mut p = json!({});
        let e = Workload::prepare(&Confinement::Notify, &mut p, None)
            .err()
            .unwrap();
        assert!(e.contains("notify"), "{e}");
    }

    #[test]
    fn filter_loaded_privileged_then_exact_caps_restored() {
        let mut p = json!({"capabilities": {
            "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"],
            "permitted": ["CAP_CHOWN"], "inheritable": []
        }});
        let ex = Filter::prepare(&program(), &mut p).unwrap();
        for set in WIDENED_SETS {
            assert_eq!(
                p["capabilities"][set],
                json!(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SETPCAP"]),
                "{set}"
            );
        }
        assert_eq!(p["capabilities"]["inheritable"], json!([]));
        let restore = ex.restore.expect("caps to restore");
        let bounding = restore.bounding().clone().unwrap();
        assert_eq!(bounding.len(), 1);
    }

    #[test]
    fn no_new_privileges_loads_unprivileged() {
        let mut p = json!({"noNewPrivileges": true, "capabilities": {"bounding": []}});
        let before = p.clone();
        let ex = Filter::prepare(&program(), &mut p).unwrap();
        assert!(ex.restore.is_none());
        assert_eq!(p, before);
    }

    #[test]
    fn a_cap_already_held_is_not_duplicated() {
        let w = widen(json!({"bounding": ["CAP_SYS_ADMIN"]}));
        assert_eq!(w["bounding"], json!(["CAP_SYS_ADMIN", "CAP_SETPCAP"]));
    }
}
