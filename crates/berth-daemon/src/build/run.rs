//! `RUN`: a temporary container from the current image runs the command;
//! its output is streamed, its writable layer committed, and it is removed.
//! The container goes through the engine's own create/start/wait, so it
//! gets exactly the isolation of `docker run` (never forked here).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_api::container_types::{ContainerConfig, ContainerCreateBody, HostConfig};
use berth_build::{BuildPlan, Command, Network, Run};
use berth_image::ChildOptions;
use serde_json::json;

use super::cache::KeyBuilder;
use super::cache_from::Step;
use super::history::run_created_by;
use super::{err, BuildError, Builder, Result, StageState};
use crate::containers::{Container, Status};

/// Where RUN steps see the host's CA bundle with `--trust-host-ca`.
const HOST_CA_IN_RUN: &str = "/etc/ssl/certs/berth-host-ca.pem";
const HOST_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/cert.pem",                  // Alpine, Arch
];

fn host_ca_bundle() -> Option<&'static str> {
    HOST_CA_BUNDLES
        .iter()
        .copied()
        .find(|p| Path::new(p).is_file())
}

/// The topmost lower layer's entry at `rel`, if any.
fn in_lower(lower: &[PathBuf], rel: &Path) -> Option<std::fs::Metadata> {
    lower
        .iter()
        .rev()
        .find_map(|l| l.join(rel).symlink_metadata().ok())
}

/// Whether the upper dir's entry at `rel` is only a trace of a mount point:
/// an empty file or directory the lower layers lack, or an empty directory
/// overlayfs copied up (same owner and mode as below, not opaque) when the
/// runtime created a mount point inside it.
fn is_mount_trace(upper: &Path, lower: &[PathBuf], rel: &Path) -> bool {
    // Never through a symlink the step made: that could point at the host.
    if rel.ancestors().skip(1).any(|a| {
        !a.as_os_str().is_empty()
            && upper
                .join(a)
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
    }) {
        return false;
    }
    let p = upper.join(rel);
    let Ok(m) = p.symlink_metadata() else {
        return false;
    };
    let empty = if m.is_dir() {
        std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none())
    } else {
        m.is_file() && m.len() == 0
    };
    if !empty {
        return false;
    }
    match in_lower(lower, rel) {
        None => true,
        Some(l) => {
            use std::os::unix::fs::MetadataExt;
            m.is_dir()
                && l.is_dir()
                && m.mode() == l.mode()
                && m.uid() == l.uid()
                && m.gid() == l.gid()
                && !is_opaque(&p)
        }
    }
}

/// Whether overlayfs marked the upper directory opaque (it hides the
/// lower one: the step removed and recreated it).
fn is_opaque(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: both strings are NUL-terminated; a null buffer of size 0
    // only asks for the attribute's size.
    let r = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    r >= 0
}

/// Removes the trace of a mount point at `rel` from the upper dir, then
/// the parent directories that were only made or copied up for it.
fn drop_mount_point(upper: &Path, lower: &[PathBuf], rel: &Path) {
    let remove = |r: &Path| {
        let p = upper.join(r);
        if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(&p).is_ok()
        } else {
            std::fs::remove_file(&p).is_ok()
        }
    };
    if !is_mount_trace(upper, lower, rel) || !remove(rel) {
        return;
    }
    let mut cur = rel.to_path_buf();
    while let Some(parent) = cur.parent().map(Path::to_path_buf) {
        if parent.as_os_str().is_empty()
            || !is_mount_trace(upper, lower, &parent)
            || !remove(&parent)
        {
            break;
        }
        cur = parent;
    }
}

impl Builder<'_> {
    pub(super) fn run(
        &mut self,
        plan: &BuildPlan,
        st: &mut StageState,
        r: &Run,
        line: usize,
    ) -> Result<()> {
        self.check_mounts(&r.mounts, line)?;
        let file = self.file.clone();
        // Mount errors name the instruction's line.
        let at = move |e: BuildError| BuildError {
            message: format!("{file}:{line}: {}", e.message),
            code: e.code,
        };
        // `RUN --network`: `default` is the build's own (`--network`).
        let network_mode = match r.network {
            Network::Default => self.req.network_mode.clone(),
            Network::None => "none".to_string(),
            Network::Host => "host".to_string(),
        };
        let argv = match &r.command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(berth_build::heredoc::run_script(s, &r.heredocs));
                v
            }
        };
        // Build args visible to RUN and not shadowed by ENV: in history and key.
        let env_keys = st.env_keys();
        let args: Vec<String> = st
            .scope
            .cache_env()
            .iter()
            .filter(|(k, _)| !env_keys.iter().any(|e| e == k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let created_by = run_created_by(&args, &argv);
        let portable = KeyBuilder::default()
            .part(
                "run",
                &serde_json::to_string(&argv).expect("argv serializes"),
            )
            .part("created_by", &created_by)
            .part("network", &format!("{:?}", r.network))
            .part(
                "mounts",
                &self.mounts_key(plan, st, &r.mounts).map_err(&at)?,
            )
            .finish();
        // docker's created_by says nothing of mounts and network options.
        let needs_key = !r.mounts.is_empty() || !matches!(r.network, Network::Default);
        let step = Step::new(&st.parent_key(), portable, created_by.clone()).needs_key(needs_key);
        if self.cached(st, &step)? {
            return Ok(());
        }
        let mut env: Vec<String> = st
            .scope
            .run_env()
            .iter()
            .filter(|(k, _)| !env_keys.iter().any(|e| e == k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend(st.config.env.clone().unwrap_or_default());
        let prepared = self.prepare_mounts(plan, st, &r.mounts).map_err(&at)?;
        // Secrets as variables live only in this step's container, which
        // therefore never outlives the step.
        let env_secrets = !prepared.env.is_empty();
        env.extend(prepared.env.iter().cloned());
        let trust = self.req.trust_host_ca || self.service.config.build_trust_host_ca;
        let mut binds = vec![];
        if trust {
            let bundle = host_ca_bundle().ok_or_else(|| {
                BuildError::new(format!(
                    "--trust-host-ca: no CA bundle on the host (looked for {})",
                    HOST_CA_BUNDLES.join(", ")
                ))
            })?;
            binds.push(format!("{bundle}:{HOST_CA_IN_RUN}:ro"));
            // Set for RUN only: the variables the usual clients read.
            for var in [
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "PIP_CERT",
                "NODE_EXTRA_CA_CERTS",
                "CURL_CA_BUNDLE",
                "GIT_SSL_CAINFO",
            ] {
                env.push(format!("{var}={HOST_CA_IN_RUN}"));
            }
        }
        let Some(image) = st.image.clone() else {
            return Err(BuildError::new(
                "RUN needs a root file system: the stage has no image (FROM scratch with nothing added)",
            ));
        };
        let body = ContainerCreateBody {
            config: ContainerConfig {
                image: image.to_string(),
                cmd: Some(argv.clone()),
                entrypoint: Some(vec![]),
                env: Some(env),
                working_dir: st.config.working_dir.clone().unwrap_or_default(),
                user: st.config.user.clone().unwrap_or_default(),
                healthcheck: Some(json!({ "Test": ["NONE"] })),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode,
                binds: (!binds.is_empty()).then_some(binds),
                mounts: (!prepared.mounts.is_empty()).then(|| prepared.mounts.clone()),
                tmpfs: (!prepared.tmpfs.is_empty()).then(|| prepared.tmpfs.clone()),
                ..Default::default()
            },
            networking_config: None,
        };
        let (id, _) = self
            .service
            .containers
            .container_create(None, body)
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.containers.push(id.clone());
        let short = id[..12].to_string();
        self.say(format!(" ---> Running in {short}\n"));
        let c = self
            .service
            .containers
            .store()
            .get(&id)
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.service
            .containers
            .container_start(&c)
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.follow_output(&c);
        let code = c.record().state.exit_code;
        if code != 0 {
            if !self.req.force_rm && !env_secrets {
                // Docker keeps a failed step's container unless --force-rm.
                self.containers.retain(|x| x != &id);
            }
            return Err(BuildError {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    argv.join(" ")
                ),
                code: Some(code),
            });
        }
        let new_id = self.commit_container(st, &c, &step, &prepared.targets)?;
        drop(prepared);
        if self.req.rm || self.req.force_rm || env_secrets {
            // The step's output is committed: the container goes while the
            // next step runs (joined before the build ends, so a finished
            // build leaves none behind).
            let containers = self.service.containers.clone();
            self.removals.push(std::thread::spawn(move || {
                containers
                    .container_remove_v(&c, true, true)
                    .map_err(|e| BuildError::new(e.to_string()))
            }));
            self.containers.retain(|x| x != &id);
            if self.req.rm || self.req.force_rm {
                self.say(format!("Removing intermediate container {short}\n"));
            }
        } else {
            self.containers.retain(|x| x != &id);
        }
        self.record(st, &step, new_id);
        Ok(())
    }

    /// Streams the container's log lines until it has exited.
    fn follow_output(&mut self, c: &Arc<Container>) {
        let path = c.log_path();
        let mut pos = 0u64;
        loop {
            let seen = c.changes();
            let running = c.record().state.status == Status::Running;
            pos = self.read_log_from(&path, pos);
            if !running {
                break;
            }
            // Output is polled for; the exit wakes us at once.
            c.wait_change(seen, Duration::from_millis(30));
        }
    }

    fn read_log_from(&mut self, path: &Path, pos: u64) -> u64 {
        let Ok(mut f) = std::fs::File::open(path) else {
            return pos;
        };
        if f.seek(SeekFrom::Start(pos)).is_err() {
            return pos;
        }
        let mut r = BufReader::new(f);
        let mut pos = pos;
        let mut buf = String::new();
        loop {
            buf.clear();
            match r.read_line(&mut buf) {
                Ok(n) if n > 0 && buf.ends_with('\n') => {
                    pos += n as u64;
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&buf) {
                        if let Some(text) = v["log"].as_str() {
                            self.say(text.to_string());
                        }
                    }
                }
                _ => return pos,
            }
        }
    }

    /// Commits the container's writable layer on top of the step's image.
    fn commit_container(
        &mut self,
        st: &StageState,
        c: &Arc<Container>,
        step: &Step,
        mount_targets: &[String],
    ) -> Result<berth_core::Digest> {
        // Mount points the engine made for the step (name-resolution files,
        // the host CA bundle) are not the step's output: drop those that
        // the image did not have, so they reach no layer.
        let lower = match &st.image {
            Some(id) => self.service.images.store.layer_dirs(id).unwrap_or_default(),
            None => vec![],
        };
        let fixed = [
            "etc/hosts",
            "etc/resolv.conf",
            "etc/hostname",
            HOST_CA_IN_RUN.trim_start_matches('/'),
        ];
        let targets = mount_targets.iter().map(|t| t.trim_start_matches('/'));
        for p in fixed.into_iter().chain(targets) {
            if !p.is_empty() {
                drop_mount_point(&c.upper_dir(), &lower, Path::new(p));
            }
        }
        self.commit_dir(st, &c.upper_dir(), step)
    }

    /// Commits a directory (a layer laid out as a root) on top of the
    /// step's image.
    pub(super) fn commit_dir(
        &mut self,
        st: &StageState,
        dir: &Path,
        step: &Step,
    ) -> Result<berth_core::Digest> {
        let dir = dir.to_path_buf();
        let (reader, writer) = std::io::pipe().map_err(|e| err("creating a pipe", e))?;
        let producer = std::thread::spawn(move || {
            berth_snapshot::write_layer_from_dir(&dir, writer).map(|_| ())
        });
        let result = self.service.images.store.commit_child(
            st.image.as_ref(),
            ChildOptions {
                config: st.config.clone(),
                created_by: step.created_by.clone(),
                layer: Some(Box::new(reader)),
                cache_key: Some(step.portable.clone()),
            },
        );
        let produced = producer.join().unwrap_or_else(|_| {
            Err(berth_snapshot::LayerError::Write {
                source: std::io::Error::other("layer writer panicked"),
            })
        });
        produced.map_err(|e| err("writing the layer", e))?;
        result.map_err(|e| BuildError::new(e.to_string()))
    }
}

#[cfg(test)]
mod mount_trace_tests {
    use super::*;

    #[test]
    fn traces_go_and_content_stays() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        std::fs::create_dir_all(upper.join("made/for/mount")).unwrap();
        std::fs::create_dir_all(upper.join("kept")).unwrap();
        std::fs::write(upper.join("kept/file"), "x").unwrap();
        std::fs::create_dir_all(upper.join("kept/mnt")).unwrap();
        std::fs::create_dir_all(lower.join("root")).unwrap();
        std::fs::create_dir_all(upper.join("root/.cache")).unwrap();
        let lowers = vec![lower.clone()];
        drop_mount_point(&upper, &lowers, Path::new("made/for/mount"));
        assert!(!upper.join("made").exists());
        drop_mount_point(&upper, &lowers, Path::new("kept/mnt"));
        assert!(!upper.join("kept/mnt").exists());
        assert!(upper.join("kept/file").exists());
        // A copied-up parent with the lower's metadata goes too.
        let m = std::fs::metadata(lower.join("root")).unwrap();
        std::fs::set_permissions(upper.join("root"), m.permissions()).unwrap();
        drop_mount_point(&upper, &lowers, Path::new("root/.cache"));
        assert!(!upper.join("root").exists());
        // Never through a symlink out of the upper dir.
        let outside = t.path().join("outside");
        std::fs::create_dir_all(outside.join("victim")).unwrap();
        std::os::unix::fs::symlink(&outside, upper.join("link")).unwrap();
        drop_mount_point(&upper, &lowers, Path::new("link/victim"));
        assert!(outside.join("victim").exists());
    }
}
