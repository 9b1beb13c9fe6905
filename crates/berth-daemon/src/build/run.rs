//! `RUN`: a temporary container from the current image runs the command;
//! its output is streamed, its writable layer committed, and it is removed.
//! The container goes through the engine's own create/start/wait, so it
//! gets exactly the isolation of `docker run` (never forked here).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_api::container_types::{ContainerConfig, ContainerCreateBody, HostConfig};
use berth_build::{Command, Network, Run};
use berth_image::ChildOptions;
use serde_json::json;

use super::cache::KeyBuilder;
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

/// Removes `rel` from the upper dir when no lower layer has it (an empty
/// mount point the runtime created), then its parent directories that
/// became empty and that no lower layer has either.
fn drop_mount_point(upper: &Path, lower: &[std::path::PathBuf], rel: &Path) {
    let in_lower = |p: &Path| lower.iter().any(|l| l.join(p).symlink_metadata().is_ok());
    let mut cur = rel.to_path_buf();
    let target = upper.join(&cur);
    match target.symlink_metadata() {
        Ok(m) if m.is_file() && m.len() == 0 && !in_lower(&cur) => {
            let _ = std::fs::remove_file(&target);
        }
        _ => return,
    }
    while let Some(parent) = cur.parent().map(Path::to_path_buf) {
        if parent.as_os_str().is_empty() || in_lower(&parent) {
            break;
        }
        if std::fs::remove_dir(upper.join(&parent)).is_err() {
            break;
        }
        cur = parent;
    }
}

impl Builder<'_> {
    pub(super) fn run(&mut self, st: &mut StageState, r: &Run) -> Result<()> {
        if !r.mounts.is_empty() {
            return Err(BuildError::new(
                "the --mount option requires BuildKit; berth's builder does not support it yet",
            ));
        }
        if r.network != Network::Default {
            return Err(BuildError::new(
                "the --network option requires BuildKit; berth's builder does not support it yet",
            ));
        }
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
        let key = KeyBuilder::default()
            .part("parent", &st.parent_key())
            .part(
                "run",
                &serde_json::to_string(&argv).expect("argv serializes"),
            )
            .part("created_by", &created_by)
            .finish();
        if self.cached(st, &key)? {
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
        let trust = self.req.trust_host_ca || self.engine.config.build_trust_host_ca;
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
                network_mode: self.req.network_mode.clone(),
                binds: (!binds.is_empty()).then_some(binds),
                ..Default::default()
            },
            networking_config: None,
        };
        let (id, _) = self
            .engine
            .container_create(None, body)
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.containers.push(id.clone());
        let short = id[..12].to_string();
        self.say(format!(" ---> Running in {short}\n"));
        let c = self
            .engine
            .containers
            .get(&id)
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.engine
            .container_start(&c)
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.follow_output(&c);
        let code = c.record().state.exit_code;
        if code != 0 {
            if !self.req.force_rm {
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
        let new_id = self.commit_container(st, &c, created_by)?;
        if self.req.rm || self.req.force_rm {
            self.engine
                .container_remove_v(&c, true, true)
                .map_err(|e| BuildError::new(e.to_string()))?;
            self.containers.retain(|x| x != &id);
            self.say(format!("Removing intermediate container {short}\n"));
        } else {
            self.containers.retain(|x| x != &id);
        }
        self.record(st, &key, new_id);
        Ok(())
    }

    /// Streams the container's log lines until it has exited.
    fn follow_output(&mut self, c: &Arc<Container>) {
        let path = c.log_path();
        let mut pos = 0u64;
        loop {
            let running = c.record().state.status == Status::Running;
            pos = self.read_log_from(&path, pos);
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(30));
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
        created_by: String,
    ) -> Result<berth_core::Digest> {
        // Mount points the engine made for the step (name-resolution files,
        // the host CA bundle) are not the step's output: drop those that
        // the image did not have, so they reach no layer.
        let lower = match &st.image {
            Some(id) => self.engine.images.layer_dirs(id).unwrap_or_default(),
            None => vec![],
        };
        for p in [
            "etc/hosts",
            "etc/resolv.conf",
            "etc/hostname",
            HOST_CA_IN_RUN.trim_start_matches('/'),
        ] {
            drop_mount_point(&c.upper_dir(), &lower, Path::new(p));
        }
        self.commit_dir(st, &c.upper_dir(), created_by)
    }

    /// Commits a directory (a layer laid out as a root) on top of the
    /// step's image.
    pub(super) fn commit_dir(
        &mut self,
        st: &StageState,
        dir: &Path,
        created_by: String,
    ) -> Result<berth_core::Digest> {
        let dir = dir.to_path_buf();
        let (reader, writer) = std::io::pipe().map_err(|e| err("creating a pipe", e))?;
        let producer = std::thread::spawn(move || {
            berth_snapshot::write_layer_from_dir(&dir, writer).map(|_| ())
        });
        let result = self.engine.images.commit_child(
            st.image.as_ref(),
            ChildOptions {
                config: st.config.clone(),
                created_by,
                layer: Some(Box::new(reader)),
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
