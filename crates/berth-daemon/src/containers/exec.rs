//! Exec instances: processes started in a running container after its
//! init, `docker exec`'s model.
//!
//! Lifecycle: create (a record in memory: what to run and how, nothing
//! started; `exec_create` event) → start (user resolved against the
//! container's passwd and group files, env and cwd completed the way
//! dockerd does, the container's shim joins the process to the container
//! and hands back its stream; `exec_start`) → the process exits (the shim
//! closes the stream; its exit code is read from the shim and recorded;
//! `exec_die`). Records live in memory only, keyed by exec ID, and go away
//! with their container.
//!
//! One thread per started exec sits between the shim's stream and the API
//! (or drains the output of a detached exec) and notices the end.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use berth_shim::protocol::{frame_header, read_frame, StreamType};
use berth_shim::{ExecRequest, ShimClient, ShimError};

use super::record::{ContainerRecord, Status};
use super::{process_start, ContainerService};
use super::{Container, ContainerError};
use crate::events::{ContainerAction, EngineEvent};

/// What `POST /containers/{id}/exec` asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub privileged: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub console_size: Option<[u16; 2]>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub pid: i64,
    pub exit_code: Option<i64>,
}

pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

impl ExecRecord {
    pub fn state(&self) -> ExecState {
        *self.state.lock().expect("exec state lock")
    }

    fn update(&self, f: impl FnOnce(&mut ExecState)) {
        f(&mut self.state.lock().expect("exec state lock"))
    }
}

/// Every exec of this engine.
#[derive(Default)]
pub struct Execs {
    map: RwLock<HashMap<String, Arc<ExecRecord>>>,
}

impl Execs {
    pub fn get(&self, id: &str) -> Result<Arc<ExecRecord>, ContainerError> {
        self.map
            .read()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFoundOther(format!("No such exec instance: {id}")))
    }

    /// Forgets one exec (health probes do not pile up).
    pub fn remove(&self, id: &str) {
        self.map.write().expect("execs lock").remove(id);
    }

    fn insert(&self, r: Arc<ExecRecord>) {
        self.map
            .write()
            .expect("execs lock")
            .insert(r.id.clone(), r);
    }

    /// Forgets the execs of a removed container.
    /// Exec IDs of a container, for `inspect`'s `ExecIDs`.
    pub fn of_container(&self, container_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .map
            .read()
            .expect("execs lock")
            .values()
            .filter(|r| r.container_id == container_id)
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub fn remove_container(&self, container_id: &str) {
        self.map
            .write()
            .expect("execs lock")
            .retain(|_, r| r.container_id != container_id);
    }
}

fn not_running(id: &str) -> ContainerError {
    ContainerError::Conflict(format!("Container {id} is not running"))
}

fn check_running(r: &ContainerRecord) -> Result<(), ContainerError> {
    match r.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(ContainerError::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            r.id
        ))),
        Status::Restarting => Err(ContainerError::Conflict(format!(
            "Container {} is restarting, wait until the container is running",
            r.id
        ))),
        _ => Err(not_running(&r.id)),
    }
}

/// moby's exec environment: `PATH`, `HOSTNAME` and (with the exec's tty)
/// `TERM=xterm`, then the container's env, then the exec's, each replacing
/// a same-named entry or appended.
pub fn exec_env(
    hostname: &str,
    tty: bool,
    container_env: &[String],
    exec_env: &[String],
) -> Vec<String> {
    let mut env = vec![
        format!("PATH={}", berth_oci::DEFAULT_PATH_ENV),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    for value in container_env.iter().chain(exec_env) {
        if !value.contains('=') {
            continue;
        }
        let k = key(value);
        match env.iter().position(|e| key(e) == k) {
            Some(i) => env[i] = value.clone(),
            None => env.push(value.clone()),
        }
    }
    env
}

/// Docker's exit code for a process that could not be started.
impl ContainerService {
    pub(crate) fn exec_create(
        &self,
        c: &Container,
        config: ExecConfig,
    ) -> Result<String, ContainerError> {
        let r = c.record();
        check_running(&r)?;
        if config.cmd.is_empty() {
            return Err(ContainerError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let id = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let rec = Arc::new(ExecRecord {
            id: id.clone(),
            container_id: r.id.clone(),
            config,
            state: Mutex::default(),
        });
        self.events.container(
            &r,
            ContainerAction::ExecCreate {
                exec_id: id.clone(),
                command: rec.config.cmd.clone(),
            },
        );
        self.containers.execs.insert(rec);
        Ok(id)
    }

    /// Starts the process. Detached, its output is drained and dropped;
    /// otherwise the returned stream is the client's.
    pub(crate) fn exec_start(
        &self,
        exec: &Arc<ExecRecord>,
        detach: bool,
        console_size: Option<[u16; 2]>,
    ) -> Result<Option<UnixStream>, ContainerError> {
        {
            let mut s = exec.state.lock().expect("exec state lock");
            if s.running {
                return Err(ContainerError::Conflict(format!(
                    "Error: Exec command {} is already running",
                    exec.id
                )));
            }
            if s.started {
                return Err(ContainerError::Conflict(format!(
                    "Error: Exec command {} has already run",
                    exec.id
                )));
            }
            s.started = true;
        }
        let c = match self.containers.get(&exec.container_id) {
            Ok(c) => c,
            Err(_) => return Err(not_running(&exec.container_id)),
        };
        let r = c.record();
        if let Err(e) = check_running(&r) {
            exec.update(|s| s.started = false);
            return Err(e);
        }
        let req = self
            .exec_request(&c, &r, exec, detach, console_size)
            .inspect_err(|_| exec.update(|s| s.started = false))?;
        let started = ShimClient::connect(&c.shim_dir()).and_then(|cl| cl.exec(&req));
        let (pid, shim) = match started {
            Ok(s) => s,
            Err(ShimError::Unreachable { .. }) => return Err(not_running(&r.id)),
            Err(e) => {
                let argv0 = exec.config.cmd.first().map_or("", String::as_str);
                let e = process_start::exec_error(argv0, &e);
                exec.update(|s| s.exit_code = Some(process_start::exec_exit_code(&e)));
                return Err(e);
            }
        };
        exec.update(|s| {
            s.running = true;
            s.pid = pid as i64;
        });
        self.events.container(
            &r,
            ContainerAction::ExecStart {
                exec_id: exec.id.clone(),
                command: exec.config.cmd.clone(),
            },
        );
        let service = self.arc();
        let shim_dir = c.shim_dir();
        let exec = exec.clone();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| ContainerError::Runtime(format!("starting exec thread: {e}")))
        };
        let short = exec.id[..12].to_string();
        if detach {
            spawn(
                format!("exec-{short}"),
                Box::new(move || {
                    let mut shim = shim;
                    let _ = std::io::copy(&mut shim, &mut std::io::sink());
                    service.exec_finished(&exec, &shim_dir);
                }),
            )?;
            return Ok(None);
        }
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| ContainerError::Runtime(format!("socketpair: {e}")))?;
        let (to_shim, from_client) = match (shim.try_clone(), ours.try_clone()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(ContainerError::Runtime("duplicating exec stream".into())),
        };
        let stdin = exec.config.attach_stdin;
        spawn(
            format!("exec-in-{short}"),
            Box::new(move || {
                let (mut from_client, mut to_shim) = (from_client, to_shim);
                if stdin {
                    let _ = std::io::copy(&mut from_client, &mut to_shim);
                    let _ = to_shim.shutdown(std::net::Shutdown::Write);
                } else {
                    let _ = std::io::copy(&mut from_client, &mut std::io::sink());
                }
            }),
        )?;
        let filter = (!exec.config.tty
            && (!exec.config.attach_stdout || !exec.config.attach_stderr))
            .then_some((exec.config.attach_stdout, exec.config.attach_stderr));
        spawn(
            format!("exec-out-{short}"),
            Box::new(move || {
                let (mut shim, mut to_client) = (shim, ours);
                match filter {
                    None => {
                        let _ = std::io::copy(&mut shim, &mut to_client);
                    }
                    Some((stdout, stderr)) => {
                        copy_frames(&mut shim, &mut to_client, stdout, stderr)
                    }
                }
                service.exec_finished(&exec, &shim_dir);
                // Only now may the client's session end: it reads the exit
                // code right after, and must find it recorded.
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            }),
        )?;
        Ok(Some(theirs))
    }

    fn exec_request(
        &self,
        c: &Container,
        r: &ContainerRecord,
        exec: &ExecRecord,
        detach: bool,
        console_size: Option<[u16; 2]>,
    ) -> Result<ExecRequest, ContainerError> {
        let cfg = &exec.config;
        let rootfs = c.rootfs();
        let user_spec = if cfg.user.is_empty() {
            r.config.user.as_str()
        } else {
            cfg.user.as_str()
        };
        let user = berth_oci::resolve_user(
            &super::runtime::read_in_rootfs(&rootfs, "etc/passwd"),
            &super::runtime::read_in_rootfs(&rootfs, "etc/group"),
            user_spec,
            r.host_config.group_add.as_deref().unwrap_or(&[]),
        )
        .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
        let cwd = [cfg.working_dir.as_str(), r.config.working_dir.as_str()]
            .into_iter()
            .find(|d| !d.is_empty())
            .unwrap_or("/")
            .to_string();
        Ok(ExecRequest {
            id: exec.id.clone(),
            args: cfg.cmd.clone(),
            env: exec_env(
                &r.config.hostname,
                cfg.tty,
                r.config.env.as_deref().unwrap_or(&[]),
                &cfg.env,
            ),
            cwd,
            user: format!("{}:{}", user.uid, user.gid),
            additional_gids: user.additional_gids,
            tty: cfg.tty,
            stdin: cfg.attach_stdin && !detach,
            privileged: cfg.privileged,
            console_size: console_size
                .or(cfg.console_size)
                .filter(|[h, w]| *h > 0 && *w > 0),
        })
    }

    /// The shim closed the exec's stream: the process is gone. Its exit
    /// code comes from the shim (or the record it left when it exited).
    fn exec_finished(&self, exec: &ExecRecord, shim_dir: &Path) {
        let state = ShimClient::connect(shim_dir)
            .and_then(|cl| cl.exec_state(&exec.id))
            .ok()
            .or_else(|| berth_shim::read_exec_record(shim_dir, &exec.id));
        // A shim that vanished without a record took the process with it.
        let code = state.and_then(|s| s.exit_code).unwrap_or(137) as i64;
        exec.update(|s| {
            s.running = false;
            s.exit_code = Some(code);
        });
        let (name, image) = match self.containers.get(&exec.container_id) {
            Ok(c) => {
                let r = c.record();
                (r.name, r.image)
            }
            Err(_) => (String::new(), String::new()),
        };
        self.events.publish(EngineEvent::Container {
            id: exec.container_id.clone(),
            name,
            image,
            action: ContainerAction::ExecDie {
                exec_id: exec.id.clone(),
                exit_code: code,
            },
        });
    }

    pub(crate) fn exec_resize(
        &self,
        exec: &ExecRecord,
        h: u16,
        w: u16,
    ) -> Result<(), ContainerError> {
        let s = exec.state();
        if !s.running {
            return Err(ContainerError::Conflict(format!(
                "Exec {} is not running",
                exec.id
            )));
        }
        let c = self.containers.get(&exec.container_id)?;
        ShimClient::connect(&c.shim_dir())
            .and_then(|cl| cl.exec_resize(&exec.id, h, w))
            .map_err(|e| ContainerError::Runtime(e.to_string()))
    }
}

/// Passes on only the wanted streams of a multiplexed stream.
fn copy_frames(from: &mut impl Read, to: &mut impl Write, stdout: bool, stderr: bool) {
    while let Ok(Some((stream, data))) = read_frame(from) {
        let wanted = match stream {
            StreamType::Stdout => stdout,
            StreamType::Stderr => stderr,
            StreamType::Stdin => false,
        };
        if wanted
            && (to
                .write_all(&frame_header(stream, data.len() as u32))
                .is_err()
                || to.write_all(&data).is_err())
        {
            // The client left; keep reading so the process is not blocked.
            let _ = std::io::copy(from, &mut std::io::sink());
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_follows_moby() {
        let env = exec_env(
            "abc",
            true,
            &["PATH=/x".into(), "A=1".into(), "B".into()],
            &["A=2".into(), "C=3".into()],
        );
        assert_eq!(env, ["PATH=/x", "HOSTNAME=abc", "TERM=xterm", "A=2", "C=3"]);
        let env = exec_env("h", false, &[], &[]);
        assert_eq!(
            env,
            [
                format!("PATH={}", berth_oci::DEFAULT_PATH_ENV),
                "HOSTNAME=h".to_string()
            ]
        );
    }

    #[test]
    fn frames_are_filtered() {
        let mut wire = Vec::new();
        for (s, d) in [
            (StreamType::Stdout, &b"out"[..]),
            (StreamType::Stderr, b"err"),
        ] {
            wire.extend_from_slice(&frame_header(s, d.len() as u32));
            wire.extend_from_slice(d);
        }
        let mut out = Vec::new();
        copy_frames(&mut &wire[..], &mut out, false, true);
        assert_eq!(
            out,
            [&frame_header(StreamType::Stderr, 3)[..], b"err"].concat()
        );
    }
}
