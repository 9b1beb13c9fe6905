//! The OCI runtime behind the shim: youki's `libcontainer`, linked in, or
//! an external runc-compatible binary (`--runtime PATH`) as an escape hatch.
//!
//! Lifecycle: [`create_and_start`] builds the container with its stdio and
//! starts it; the shim then signals it ([`Runtime::kill`]), freezes it
//! ([`Runtime::pause`]) and, after the init process is reaped, deletes it
//! ([`Runtime::delete`]), which removes its cgroups and runtime state.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::Pid;

use crate::args::ShimArgs;
use crate::error::ShimError;
use crate::seccomp::{self, Program};
use crate::stdio::{self, ContainerIo};
use crate::workload::{Confinement, Workload};

/// The runtime's state lives here, under the shim's state dir.
pub const RUNTIME_DIR: &str = "runtime";
/// The spec libcontainer runs, under the shim's state dir: the bundle's,
/// with the seccomp profile taken out (the shim loads it precompiled).
pub const RUNTIME_SPEC_DIR: &str = "spec";
const CONSOLE_SOCKET: &str = "console.sock";

pub enum Runtime {
    Embedded {
        root: PathBuf,
        id: String,
    },
    External {
        binary: PathBuf,
        root: PathBuf,
        id: String,
    },
}

pub struct Started {
    pub runtime: Runtime,
    pub pid: Pid,
    pub io: ContainerIo,
    /// The container's seccomp filter, for its execs.
    pub confinement: Confinement,
}

/// Create the container from the bundle and start its process.
/// On failure whatever was created is removed again.
pub fn create_and_start(args: &ShimArgs) -> Result<Started, ShimError> {
    let root = args.state_dir.join(RUNTIME_DIR);
    fs::create_dir_all(&root)
        .map_err(|e| ShimError::io(format!("create {}", root.display()), e))?;
    let runtime = match &args.runtime {
        None => Runtime::Embedded {
            root,
            id: args.id.clone(),
        },
        Some(binary) => Runtime::External {
            binary: binary.clone(),
            root,
            id: args.id.clone(),
        },
    };
    let result = match &runtime {
        Runtime::Embedded { root, id } => start_embedded(args, root, id),
        Runtime::External { binary, root, id } => start_external(args, binary, root, id)
            .map(|(pid, io)| (pid, io, Confinement::Unconfined)),
    };
    match result {
        Ok((pid, io, confinement)) => Ok(Started {
            runtime,
            pid,
            io,
            confinement,
        }),
        Err(error) => match runtime.delete() {
            Ok(()) => Err(error),
            Err(cleanup) => Err(ShimError::CreateAndCleanup {
                error: Box::new(error),
                cleanup: cleanup.to_string(),
            }),
        },
    }
}

/// The bundle libcontainer runs and the init's workload. A seccomp profile
/// that [`seccomp::compile`] handles is taken out of the spec (written to
/// `STATE_DIR/spec/config.json`, the rootfs path made absolute) and loaded
/// by the workload instead; otherwise the bundle is run as it is.
fn runtime_spec(args: &ShimArgs) -> Result<(PathBuf, Workload, Confinement), ShimError> {
    let path = args.bundle.join("config.json");
    let bad = |reason: String| ShimError::BundleConfig {
        path: path.clone(),
        reason,
    };
    let bytes =
        fs::read(&path).map_err(|e| ShimError::io(format!("read {}", path.display()), e))?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let Some(raw) = spec.pointer("/linux/seccomp").filter(|v| !v.is_null()) else {
        return Ok((
            args.bundle.clone(),
            Workload::default(),
            Confinement::Unconfined,
        ));
    };
    let profile: libcontainer::oci_spec::runtime::LinuxSeccomp =
        serde_json::from_value(raw.clone()).map_err(|e| bad(format!("linux.seccomp: {e}")))?;
    if !seccomp::precompilable(&profile) {
        return Ok((
            args.bundle.clone(),
            Workload::default(),
            Confinement::Notify,
        ));
    }
    let program = Program::cached(&profile, args.seccomp_cache.as_deref())
        .map_err(|e| bad(format!("linux.seccomp: {e}")))?;
    let confinement = Confinement::Program(program);
    let mut process = spec
        .get("process")
        .cloned()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    let workload = Workload::prepare(&confinement, &mut process, None).map_err(bad)?;
    spec["process"] = process;
    if let Some(linux) = spec.get_mut("linux").and_then(|l| l.as_object_mut()) {
        linux.remove("seccomp");
    }
    if let Some(root) = spec.pointer_mut("/root/path") {
        let rootfs = root.as_str().map(PathBuf::from).unwrap_or_default();
        if rootfs.is_relative() {
            *root = serde_json::json!(args.bundle.join(rootfs));
        }
    }
    let dir = args.state_dir.join(RUNTIME_SPEC_DIR);
    fs::create_dir_all(&dir).map_err(|e| ShimError::io(format!("create {}", dir.display()), e))?;
    let out = dir.join("config.json");
    fs::write(&out, serde_json::to_vec(&spec).expect("json serializes"))
        .map_err(|e| ShimError::io(format!("write {}", out.display()), e))?;
    Ok((dir, workload, confinement))
}

fn start_embedded(
    args: &ShimArgs,
    root: &Path,
    id: &str,
) -> Result<(Pid, ContainerIo, Confinement), ShimError> {
    let (bundle, workload, confinement) = runtime_spec(args)?;
    let builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .validate_id()
        .and_then(|b| b.with_root_path(root))
        .map_err(|e| ShimError::runtime(id, "create", &e))?;
    let (builder, io, console) = if args.tty {
        let path = args.state_dir.join(CONSOLE_SOCKET);
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| ShimError::io(format!("bind console socket {}", path.display()), e))?;
        (
            builder.with_console_socket(Some(&path)),
            None,
            Some((listener, path)),
        )
    } else {
        let (io, child) = stdio::pipes(args.stdin)?;
        let b = builder
            .with_stdin(child.stdin)
            .with_stdout(child.stdout)
            .with_stderr(child.stderr);
        (b, Some(io), None)
    };
    let built = builder
        .with_executor(workload)
        .as_init(&bundle)
        .with_systemd(false)
        .with_detach(true)
        .build();
    let io = match (io, console) {
        (Some(io), _) => io,
        (None, Some((listener, path))) => {
            let master = built
                .as_ref()
                .ok()
                .map(|_| stdio::recv_pty_master(&listener));
            let _ = fs::remove_file(&path);
            match master {
                Some(m) => ContainerIo::Pty { master: m? },
                None => ContainerIo::Pipes {
                    stdin: None,
                    stdout: dev_null()?,
                    stderr: dev_null()?,
                },
            }
        }
        (None, None) => unreachable!("either pipes or a console socket"),
    };
    let mut container = built.map_err(|e| ShimError::runtime(id, "create", &e))?;
    container
        .start()
        .map_err(|e| ShimError::runtime(id, "start", &e))?;
    let pid = container
        .pid()
        .ok_or_else(|| ShimError::runtime_msg(id, "start", "runtime state has no init pid"))?;
    Ok((pid, io, confinement))
}

fn dev_null() -> Result<OwnedFd, ShimError> {
    fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| ShimError::io("open /dev/null", e))
}

/// runc's command line: `runc --root R create --bundle B --pid-file P ID`,
/// then `runc --root R start ID`. Without a terminal runc passes its own
/// stdio through to the container, so the pipes go to `create`.
fn start_external(
    args: &ShimArgs,
    binary: &Path,
    root: &Path,
    id: &str,
) -> Result<(Pid, ContainerIo), ShimError> {
    if args.tty {
        return Err(ShimError::NotImplemented(
            "a tty with an external runtime".into(),
        ));
    }
    let (io, child) = stdio::pipes(args.stdin)?;
    let pid_file = args.state_dir.join("init.pid");
    let _ = fs::remove_file(&pid_file);
    let status = Command::new(binary)
        .arg("--root")
        .arg(root)
        .arg("create")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(id)
        .stdin(Stdio::from(child.stdin))
        .stdout(Stdio::from(child.stdout))
        .stderr(Stdio::from(child.stderr))
        .status()
        .map_err(|e| ShimError::io(format!("run {}", binary.display()), e))?;
    if !status.success() {
        // runc reports on its stderr, which is the container's stderr pipe;
        // every writer is gone, so reading to EOF cannot block.
        let mut message = String::new();
        if let ContainerIo::Pipes { stderr, .. } = io {
            let _ = fs::File::from(stderr).read_to_string(&mut message);
        }
        return Err(ShimError::runtime_msg(
            id,
            "create",
            format!("{status}: {}", message.trim()),
        ));
    }
    let text = fs::read_to_string(&pid_file)
        .map_err(|e| ShimError::io(format!("read {}", pid_file.display()), e))?;
    let pid: i32 = text.trim().parse().map_err(|_| {
        ShimError::runtime_msg(
            id,
            "create",
            format!("pid file {} holds {text:?}", pid_file.display()),
        )
    })?;
    run_external(binary, root, id, "start", &["start", id])?;
    Ok((Pid::from_raw(pid), io))
}

fn run_external(
    binary: &Path,
    root: &Path,
    id: &str,
    op: &'static str,
    argv: &[&str],
) -> Result<(), ShimError> {
    let out = Command::new(binary)
        .arg("--root")
        .arg(root)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ShimError::io(format!("run {}", binary.display()), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ShimError::runtime_msg(
            id,
            op,
            format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

impl Runtime {
    fn load(root: &Path, id: &str, op: &'static str) -> Result<Container, ShimError> {
        Container::load(root.join(id)).map_err(|e| ShimError::runtime(id, op, &e))
    }

    pub fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        match self {
            Runtime::Embedded { root, id } => {
                let sig = Signal::try_from(signal).map_err(|_| ShimError::InvalidSignal(signal))?;
                Self::load(root, id, "kill")?
                    .kill(sig, all)
                    .map_err(|e| ShimError::runtime(id, "kill", &e))
            }
            Runtime::External { binary, root, id } => {
                let sig = signal.to_string();
                let mut argv = vec!["kill"];
                if all {
                    argv.push("--all");
                }
                argv.extend([id.as_str(), sig.as_str()]);
                run_external(binary, root, id, "kill", &argv)
            }
        }
    }

    pub fn pause(&self) -> Result<(), ShimError> {
        match self {
            Runtime::Embedded { root, id } => Self::load(root, id, "pause")?
                .pause()
                .map_err(|e| ShimError::runtime(id, "pause", &e)),
            Runtime::External { binary, root, id } => {
                run_external(binary, root, id, "pause", &["pause", id])
            }
        }
    }

    pub fn resume(&self) -> Result<(), ShimError> {
        match self {
            Runtime::Embedded { root, id } => Self::load(root, id, "resume")?
                .resume()
                .map_err(|e| ShimError::runtime(id, "resume", &e)),
            Runtime::External { binary, root, id } => {
                run_external(binary, root, id, "resume", &["resume", id])
            }
        }
    }

    /// Remove the container's cgroups and runtime state; killing anything
    /// left in it first. Missing state is not an error.
    pub fn delete(&self) -> Result<(), ShimError> {
        match self {
            Runtime::Embedded { root, id } => {
                let dir = root.join(id);
                if !dir.exists() {
                    return Ok(());
                }
                let result = Container::load(dir.clone()).and_then(|mut c| c.delete(true));
                match result {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // A half-created container may not even load: drop
                        // its state so the id can be reused, report why.
                        let _ = fs::remove_dir_all(&dir);
                        Err(ShimError::runtime(id, "delete", &e))
                    }
                }
            }
            Runtime::External { binary, root, id } => {
                if !root.join(id).exists() {
                    return Ok(());
                }
                run_external(binary, root, id, "delete", &["delete", "--force", id])
            }
        }
    }
}
