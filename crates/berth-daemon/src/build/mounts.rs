//! `RUN --mount`: what each mount type becomes for the step's container
//! (Dockerfile reference, "RUN --mount"), and its part of the step's key.
//!
//! - `bind`: a path of the context (default) or of a stage's/image's root
//!   (`from=`), read-only unless `rw`; an `rw` bind gets a private copy,
//!   so its writes are discarded with the step.
//! - `cache`: a directory per `id` under `<data-root>/build-cache/mounts/`
//!   that outlives builds and daemon restarts. Created on first use with
//!   `mode`/`uid`/`gid` (0755, 0:0), seeded from `from`/`source` if given
//!   (under a lock of its own). While the step runs, `sharing=shared`
//!   holds a shared `flock` on the cache's lock file, `locked` an
//!   exclusive one (a second build waits), `private` takes the
//!   exclusive lock if free and otherwise works in a throwaway directory.
//!   `builder prune -a` removes caches nobody holds.
//! - `tmpfs`: a tmpfs of `size` bytes.
//! - `secret`: the value `berth build --secret` sent, as a file (mode
//!   0400, 0:0 unless `mode`/`uid`/`gid`) written under the exec-root (a
//!   tmpfs, not the data disk) and bind-mounted read-only, or as the
//!   variable `env=`. A missing secret fails the step only if `required`.
//! - `ssh`: refused (no agent forwarding in the classic protocol).
//!
//! The key of such a step covers the mount specs, the image a `from=`
//! resolves to and the content of bind-mounted context paths — never a
//! cache mount's content and never a secret's value.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_api::container_types::Mount as ApiMount;
use berth_build::{BuildPlan, Mount, MountType, Sharing};
use berth_core::Digest;
use sha2::{Digest as _, Sha256};

use super::cache::hash_tree;
use super::steps::clean_abs;
use super::view::RootView;
use super::{err, BuildError, Builder, Result, StageState};
use crate::rootpath::resolve_path;

/// What the step's container gets from its `--mount`s. Dropping it
/// releases cache locks, unmounts views and removes secret files and
/// private copies.
#[derive(Default)]
pub(super) struct Prepared {
    pub mounts: Vec<ApiMount>,
    pub tmpfs: BTreeMap<String, String>,
    /// `KEY=value` of `env=` secrets.
    pub env: Vec<String>,
    /// Absolute mount targets, to keep their mount points out of the layer.
    pub targets: Vec<String>,
    locks: Vec<fs::File>,
    views: Vec<RootView>,
    remove: Vec<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self.views.clear();
        for p in self.remove.drain(..) {
            let _ = fs::remove_dir_all(&p);
        }
        // The locks go with their files.
    }
}

/// `flock(2)` on the cache's lock file.
fn flock(f: &fs::File, op: libc::c_int) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor this function borrows; no memory involved.
    let r = unsafe { libc::flock(f.as_raw_fd(), op) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn type_name(m: &Mount) -> &'static str {
    match m.kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

/// The cache mounts' directory.
pub(super) fn cache_mounts_dir(data_root: &Path) -> PathBuf {
    data_root.join("build-cache").join("mounts")
}

impl Builder<'_> {
    /// The absolute target of `m` (relative ones are taken against WORKDIR).
    fn target_of(st: &StageState, m: &Mount) -> Option<String> {
        let t = m.target.as_deref()?;
        let wd = st.config.working_dir.clone().unwrap_or_else(|| "/".into());
        Some(if t.starts_with('/') {
            clean_abs(t)
        } else {
            clean_abs(&format!("{wd}/{t}"))
        })
    }

    /// The image `from=` names (a stage or an image); `None` inside: scratch.
    fn mount_from(&self, plan: &BuildPlan, from: &str) -> Result<Option<Digest>> {
        match self.stage_image(plan, from) {
            Some(image) => Ok(image),
            None => Ok(Some(self.resolved_image(from)?)),
        }
    }

    /// Refuses what cannot be mounted, before anything runs; `line` names
    /// the instruction in the message.
    pub(super) fn check_mounts(&self, mounts: &[Mount], line: usize) -> Result<()> {
        for m in mounts {
            let at = format!("{}:{line}: RUN --mount=type={}", self.file, type_name(m));
            match m.kind {
                MountType::Ssh => {
                    return Err(BuildError::new(format!(
                        "{at}: ssh mounts are not supported by berth's builder (no SSH agent forwarding); \
                         use a secret mount for keys"
                    )))
                }
                MountType::Secret if m.required => {
                    let id = m.id.as_deref().unwrap_or_default();
                    if !self.req.secrets.0.contains_key(id) {
                        return Err(BuildError::new(format!(
                            "{at}: secret {id:?} is required but was not given (berth build --secret id={id},src=FILE)"
                        )));
                    }
                }
                _ => {}
            }
            if let Some(t) = &m.target {
                if t.is_empty() {
                    return Err(BuildError::new(format!("{at}: empty target")));
                }
            }
            if let Some(env) = &m.env {
                if env.is_empty() || env.contains('=') {
                    return Err(BuildError::new(format!("{at}: invalid env name {env:?}")));
                }
            }
        }
        Ok(())
    }

    /// The part of the step's key the mounts contribute.
    pub(super) fn mounts_key(
        &mut self,
        plan: &BuildPlan,
        st: &StageState,
        mounts: &[Mount],
    ) -> Result<String> {
        let mut h = Sha256::new();
        for m in mounts {
            let mut spec = m.clone();
            spec.target = Self::target_of(st, m);
            h.update(serde_json::to_vec(&spec).expect("mount serializes"));
            h.update(b"\0");
            match (m.kind, &m.from) {
                (MountType::Bind | MountType::Cache, Some(from)) => {
                    let image = self.mount_from(plan, from)?;
                    let id = image.map_or_else(|| "scratch".into(), |d| d.to_string());
                    h.update(format!("from {id}\0").as_bytes());
                }
                (MountType::Bind, None) => {
                    // The content of what is bound from the context.
                    let src = self.bind_source(&self.context.clone(), m)?;
                    hash_tree(&mut h, &src, "src")
                        .map_err(|e| err("reading the bind source", e))?;
                }
                _ => {}
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// The host path of a bind/cache `source` inside `root`.
    fn bind_source(&self, root: &Path, m: &Mount) -> Result<PathBuf> {
        let src = clean_abs(m.source.as_deref().unwrap_or("/"));
        let rel = src.trim_start_matches('/');
        let p = resolve_path(root, rel, true).map_err(|e| BuildError::new(e.to_string()))?;
        if fs::symlink_metadata(&p).is_err() {
            return Err(BuildError::new(format!(
                "RUN --mount=type={}: source {src:?} not found{}",
                type_name(m),
                if m.from.is_some() {
                    String::new()
                } else {
                    " in the build context".to_string()
                }
            )));
        }
        Ok(p)
    }

    /// Sets the mounts up for the step's container.
    pub(super) fn prepare_mounts(
        &mut self,
        plan: &BuildPlan,
        st: &StageState,
        mounts: &[Mount],
    ) -> Result<Prepared> {
        let mut p = Prepared::default();
        for m in mounts {
            let target = Self::target_of(st, m);
            match m.kind {
                MountType::Bind => {
                    let target = target.expect("parser requires a bind target");
                    let root = match &m.from {
                        Some(from) => {
                            let image = self.mount_from(plan, from)?;
                            let dir = self.scratch("mount-from");
                            let view = RootView::open(self.service, image.as_ref(), &dir)?;
                            let root = view.path().to_path_buf();
                            p.views.push(view);
                            root
                        }
                        None => self.context.clone(),
                    };
                    let mut src = self.bind_source(&root, m)?;
                    if !m.readonly {
                        // Writes go to a private copy that goes with the step.
                        let copy = self.scratch("mount-rw");
                        fs::create_dir_all(&copy).map_err(|e| err("copying a bind source", e))?;
                        let dst = copy.join("src");
                        super::copy::copy_tree(&src, &dst)?;
                        p.remove.push(copy);
                        src = dst;
                    }
                    p.mounts.push(ApiMount {
                        kind: "bind".into(),
                        source: src.display().to_string(),
                        target: target.clone(),
                        read_only: m.readonly,
                        ..Default::default()
                    });
                    p.targets.push(target);
                }
                MountType::Cache => {
                    let target = target.expect("parser requires a cache target");
                    let dir = self.cache_mount(plan, m, &mut p)?;
                    p.mounts.push(ApiMount {
                        kind: "bind".into(),
                        source: dir.display().to_string(),
                        target: target.clone(),
                        read_only: m.readonly,
                        ..Default::default()
                    });
                    p.targets.push(target);
                }
                MountType::Tmpfs => {
                    let target = target.expect("parser requires a tmpfs target");
                    let opts = m.size.map(|s| format!("size={s}")).unwrap_or_default();
                    p.tmpfs.insert(target.clone(), opts);
                    p.targets.push(target);
                }
                MountType::Secret => {
                    let id = m.id.clone().unwrap_or_default();
                    let Some(value) = self.req.secrets.0.get(&id) else {
                        continue; // not required (checked before): skipped
                    };
                    if let Some(var) = &m.env {
                        let text = String::from_utf8(value.clone()).map_err(|_| {
                            BuildError::new(format!(
                                "RUN --mount=type=secret,id={id},env={var}: the secret is not UTF-8 text"
                            ))
                        })?;
                        p.env.push(format!("{var}={text}"));
                    }
                    if let Some(target) = target {
                        let file = self.secret_file(&id, value, m, &mut p)?;
                        p.mounts.push(ApiMount {
                            kind: "bind".into(),
                            source: file.display().to_string(),
                            target: target.clone(),
                            read_only: true,
                            ..Default::default()
                        });
                        p.targets.push(target);
                    }
                }
                MountType::Ssh => {
                    return Err(BuildError::new(
                        "RUN --mount=type=ssh is not supported by berth's builder",
                    ))
                }
            }
        }
        Ok(p)
    }

    /// Writes a secret where only root can read it, outside the data disk.
    fn secret_file(
        &mut self,
        id: &str,
        value: &[u8],
        m: &Mount,
        p: &mut Prepared,
    ) -> Result<PathBuf> {
        let dir = self
            .service
            .config
            .exec_root
            .join("build-secrets")
            .join(format!("{:016x}", rand::random::<u64>()));
        let io = |e| err("writing a build secret", e);
        fs::create_dir_all(&dir).map_err(io)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        p.remove.push(dir.clone());
        let file = dir.join("secret");
        let mut opts = fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.write(true).create_new(true).open(&file).map_err(io)?;
        std::io::Write::write_all(&mut f, value).map_err(io)?;
        drop(f);
        std::os::unix::fs::chown(&file, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
            .map_err(io)?;
        fs::set_permissions(&file, fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
            .map_err(io)?;
        tracing::debug!(id, "build secret mounted");
        Ok(file)
    }

    /// The directory of a cache mount, created (and seeded) on first use,
    /// locked as its `sharing` says.
    fn cache_mount(&mut self, plan: &BuildPlan, m: &Mount, p: &mut Prepared) -> Result<PathBuf> {
        let id = m.id.clone().unwrap_or_default();
        let base = cache_mounts_dir(&self.service.config.data_root)
            .join(&hex::encode(Sha256::digest(id.as_bytes()))[..32]);
        let io = |e| err(&format!("cache mount {id:?}"), e);
        fs::create_dir_all(&base).map_err(io)?;
        let open = |name: &str| {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(base.join(name))
        };
        // Made once, under a lock of its own.
        let data = base.join("data");
        {
            let create = open("create.lock").map_err(io)?;
            flock(&create, libc::LOCK_EX).map_err(io)?;
            if !data.exists() {
                fs::write(base.join("id"), &id).map_err(io)?;
                let fresh = base.join("data.new");
                let _ = fs::remove_dir_all(&fresh);
                self.make_cache_dir(plan, m, &fresh)?;
                fs::rename(&fresh, &data).map_err(io)?;
            }
        }
        // Held while the step runs, as `sharing` says.
        let lock = open("lock").map_err(io)?;
        // Marks the use, for `builder prune --filter until=…`.
        let _ = lock.set_modified(std::time::SystemTime::now());
        let dir = match m.sharing {
            Sharing::Locked => {
                flock(&lock, libc::LOCK_EX).map_err(io)?;
                data
            }
            Sharing::Shared => {
                flock(&lock, libc::LOCK_SH).map_err(io)?;
                data
            }
            Sharing::Private => {
                if flock(&lock, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
                    data
                } else {
                    // Another step has it: a throwaway instance.
                    let own = self.scratch("cache-private");
                    self.make_cache_dir(plan, m, &own)?;
                    p.remove.push(own.clone());
                    own
                }
            }
        };
        p.locks.push(lock);
        Ok(dir)
    }

    fn make_cache_dir(&mut self, plan: &BuildPlan, m: &Mount, dir: &Path) -> Result<()> {
        let io = |e| err("creating a cache mount", e);
        match &m.from {
            Some(from) => {
                let image = self.mount_from(plan, from)?;
                let view_dir = self.scratch("mount-from");
                let view = RootView::open(self.service, image.as_ref(), &view_dir)?;
                let src = self.bind_source(view.path(), m)?;
                super::copy::copy_tree(&src, dir)?;
            }
            None => fs::create_dir_all(dir).map_err(io)?,
        }
        std::os::unix::fs::chown(dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
            .map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
            .map_err(io)?;
        Ok(())
    }
}
