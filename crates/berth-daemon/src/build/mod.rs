//! The builder: executes a Dockerfile in the engine, as Docker's classic
//! builder (`DOCKER_BUILDKIT=0`) does, on top of the pure front end in
//! `berth-build`.
//!
//! Lifecycle of one build:
//! 1. the context tar is unpacked into `<data-root>/tmp/build-<id>/context`
//!    ([`context`]), `.dockerignore` applied, the Dockerfile read and
//!    planned (`berth_build::plan`: stages, their order for `--target`);
//! 2. each needed stage runs from its base (`FROM image|scratch|stage`,
//!    then the base's `ONBUILD` triggers), one step per instruction. Every
//!    step makes an image: metadata instructions an `empty_layer` one
//!    ([`steps`]), `RUN` commits the writable layer of a temporary
//!    container ([`run`]), `COPY`/`ADD`/`WORKDIR` a layer built as a plain
//!    directory without a container ([`copy`]);
//! 3. before executing, each step looks up its key in the [`cache`]; a hit
//!    reuses the image ("Using cache");
//! 4. the target stage's image is tagged; the work directory is removed.
//!
//! Progress goes out as the classic builder's text lines (`Step 1/5 : …`,
//! ` ---> …`) and `aux` image IDs; history entries and configs follow what
//! the classic builder writes ([`history`]).

mod cache;
mod cache_from;
mod context;
mod copy;
mod fetch;
mod history;
mod mounts;
mod parallel;
mod prune;
mod run;
mod steps;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use berth_api::backend::{BuildFailure, BuildMessage, BuildRequest};
use berth_build::{
    plan, ArgScope, Base, BuildOptions, BuildPlan, Dockerfile, Env, Instruction, Lexer, Located,
};
use berth_core::{Digest, Reference};
use berth_image::config::ContainerConfig;

use crate::config::DaemonConfig;
use crate::containers::ContainerService;
use crate::images::ImageService;
use cache::BuildCache;
use cache_from::{CacheSource, Step};

/// A build failure as the stream reports it.
#[derive(Debug)]
pub(crate) struct BuildError {
    pub message: String,
    /// Exit code of a failed `RUN`.
    pub code: Option<i64>,
}

impl BuildError {
    pub fn new(message: impl Into<String>) -> BuildError {
        BuildError {
            message: message.into(),
            code: None,
        }
    }
}

/// What a stage stopped by another stage's failure returns.
const CANCELLED: &str = "stopped: another stage of the build failed";

impl BuildError {
    fn cancelled() -> BuildError {
        BuildError::new(CANCELLED)
    }

    pub fn is_cancelled(&self) -> bool {
        self.message == CANCELLED && self.code.is_none()
    }
}

pub(crate) fn err(context: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::new(format!("{context}: {e}"))
}

type Result<T> = std::result::Result<T, BuildError>;

/// Docker's default `PATH` for stages whose image has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The build service: runs Dockerfiles (`POST /build`) and prunes the
/// build cache. It runs `RUN` steps as containers of the container service
/// and commits step images to the image service.
pub struct BuildService {
    pub(crate) config: Arc<DaemonConfig>,
    pub(crate) images: Arc<ImageService>,
    pub(crate) containers: Arc<ContainerService>,
}

impl BuildService {
    pub fn new(
        config: Arc<DaemonConfig>,
        images: Arc<ImageService>,
        containers: Arc<ContainerService>,
    ) -> BuildService {
        BuildService {
            config,
            images,
            containers,
        }
    }

    /// Builds the Dockerfile in `context`; returns the image ID.
    pub fn build(
        &self,
        context: Box<dyn std::io::Read + Send>,
        req: BuildRequest,
        progress: &mut dyn FnMut(BuildMessage),
    ) -> std::result::Result<String, BuildFailure> {
        let work =
            WorkDir::new(&self.config.data_root.join("tmp"), req.context_size).map_err(|e| {
                BuildFailure {
                    message: e.message,
                    code: None,
                }
            })?;
        let mut b = Builder {
            service: self,
            req: &req,
            out: Sink::Direct(progress),
            work: work.root.clone(),
            context: work.context(),
            mem: work.mem.clone(),
            lexer: Lexer::new('\\'),
            file: "Dockerfile".into(),
            step_of: HashMap::new(),
            total: 0,
            cache: BuildCache::open(&self.config.data_root),
            results: Vec::new(),
            seq: 0,
            scratch_tag: String::new(),
            containers: Vec::new(),
            removals: Vec::new(),
            cancel: None,
            cache_from: Vec::new(),
        };
        let result = b.build(context);
        let removed = b.join_removals();
        let result = result.and_then(|id| removed.map(|()| id));
        b.cleanup_containers();
        drop(work);
        result.map_err(|e| BuildFailure {
            message: e.message,
            code: e.code,
        })
    }

    /// `POST /build/prune`.
    pub fn prune_cache(
        &self,
        req: berth_api::backend::BuildPruneRequest,
    ) -> std::result::Result<berth_api::backend::BuildPruneReport, berth_api::ApiError> {
        prune::prune(self, &req)
    }
}

/// The build's private directory, removed on drop.
struct WorkDir {
    root: PathBuf,
    /// A tmpfs of the build's own holding the context (and the staging of
    /// COPY layers from it), when the context is small enough.
    mem: Option<PathBuf>,
}

/// Contexts up to this size (the tar the client announced) are unpacked
/// into a tmpfs of their own rather than onto the data-root's disk.
const TMPFS_CONTEXT_MAX: u64 = 64 << 20;

impl WorkDir {
    /// `context_size`: the context tar's size, if the client said it.
    ///
    /// The context is unpacked for every build, cache hit or not, and
    /// deleted after it: thousands of small files created and removed on
    /// each rebuild. On ext4 a create after such deletions can cost a few
    /// hundred microseconds (10,000 files: seconds), on a tmpfs a few.
    /// A small context therefore gets a tmpfs. Its size is a limit, not a
    /// reservation: room for the context's pages (up to four times the tar,
    /// as a tar block is 512 bytes and a page 4 KiB) and for the staging of
    /// COPY layers from it (hard-linked where it can be, copied with
    /// `--chown`/`--chmod`, each removed once committed; up to four stages
    /// copy at once), plus directories. A large or unannounced context (a
    /// client that streams it chunked) stays on disk.
    fn new(tmp: &Path, context_size: Option<u64>) -> Result<WorkDir> {
        let root = tmp.join(format!("build-{:016x}", rand::random::<u64>()));
        let mut work = WorkDir { root, mem: None };
        if let Some(size) = context_size.filter(|s| *s <= TMPFS_CONTEXT_MAX) {
            let mem = work.root.join("mem");
            std::fs::create_dir_all(&mem).map_err(|e| err("creating the build dir", e))?;
            let opts = format!("size={},mode=0700", size * 24 + (64 << 20));
            match nix::mount::mount(
                Some("tmpfs"),
                &mem,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                Some(opts.as_str()),
            ) {
                Ok(()) => work.mem = Some(mem),
                Err(e) => tracing::debug!(error = %e, "build context stays on disk"),
            }
        }
        std::fs::create_dir_all(work.context()).map_err(|e| err("creating the build dir", e))?;
        Ok(work)
    }

    fn context(&self) -> PathBuf {
        self.mem.as_ref().unwrap_or(&self.root).join("context")
    }
}

/// Unmounts the tmpfs of builds that a crash left under `tmp`
/// (`build-*/mem`, [`WorkDir`]), so that the image store can clear `tmp`
/// at start-up.
pub(crate) fn release_leftover_mounts(tmp: &Path) {
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        // A build dir without a tmpfs gives EINVAL: nothing to do.
        let _ = nix::mount::umount2(&e.path().join("mem"), nix::mount::MntFlags::MNT_DETACH);
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(mem) = &self.mem {
            // Lazily: a view still open under it must not fail the removal.
            let _ = nix::mount::umount2(mem, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!(path = %self.root.display(), error = %e, "removing the build dir");
        }
    }
}

/// What a finished stage leaves for the stages after it.
#[derive(Clone)]
pub(crate) struct StageResult {
    pub image: Option<Digest>,
    pub scope: ArgScope,
}

/// The state of the stage being built.
pub(crate) struct StageState {
    /// `None` until something was built on `scratch`.
    pub image: Option<Digest>,
    pub config: ContainerConfig,
    pub scope: ArgScope,
    /// `CMD` was set in this stage (a later `ENTRYPOINT` keeps it).
    pub cmd_set: bool,
}

impl StageState {
    pub fn shell(&self) -> Vec<String> {
        self.config
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The environment words are expanded with: declared args, then the
    /// image's env (ENV wins over ARG, as the reference says).
    pub fn expand_env(&self) -> Env {
        let mut env = self.scope.values().clone();
        for e in self.config.env.iter().flatten() {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            env.set(k, v);
        }
        env
    }

    pub fn env_keys(&self) -> Vec<String> {
        self.config
            .env
            .iter()
            .flatten()
            .map(|e| e.split('=').next().unwrap_or(e).to_string())
            .collect()
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.config.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    pub fn parent_key(&self) -> String {
        self.image
            .as_ref()
            .map_or_else(|| "scratch".to_string(), |d| d.to_string())
    }
}

/// Where a builder's progress goes: the request's stream, or (for a stage
/// built on a thread of its own) the scheduler, line by line and prefixed.
pub(crate) enum Sink<'a> {
    Direct(&'a mut dyn FnMut(BuildMessage)),
    Stage {
        tx: mpsc::Sender<parallel::Event>,
        lines: parallel::LinePrefixer,
    },
}

impl Sink<'_> {
    pub fn send(&mut self, m: BuildMessage) {
        match self {
            Sink::Direct(f) => f(m),
            Sink::Stage { tx, lines } => {
                let m = match m {
                    BuildMessage::Stream(t) => match lines.push(&t) {
                        Some(t) => BuildMessage::Stream(t),
                        None => return,
                    },
                    other => other,
                };
                let _ = tx.send(parallel::Event::Out(m));
            }
        }
    }

    /// Sends a last unterminated line.
    pub fn flush(&mut self) {
        if let Sink::Stage { tx, lines } = self {
            if let Some(t) = lines.flush() {
                let _ = tx.send(parallel::Event::Out(BuildMessage::Stream(t)));
            }
        }
    }
}

/// What a stage's thread makes its own [`Builder`] from (a `Builder`
/// itself holds the request's progress callback, which stays on the
/// request's thread).
pub(crate) struct WorkerSeed<'a> {
    service: &'a BuildService,
    req: &'a BuildRequest,
    tx: mpsc::Sender<parallel::Event>,
    prefix: String,
    work: PathBuf,
    context: PathBuf,
    mem: Option<PathBuf>,
    lexer: Lexer,
    file: String,
    step_of: HashMap<usize, usize>,
    total: usize,
    results: Vec<Option<StageResult>>,
    scratch_tag: String,
    cancel: &'a AtomicBool,
    cache_from: Vec<CacheSource>,
}

impl<'a> WorkerSeed<'a> {
    pub fn into_builder(self) -> Builder<'a> {
        Builder {
            service: self.service,
            req: self.req,
            out: Sink::Stage {
                tx: self.tx,
                lines: parallel::LinePrefixer::new(self.prefix),
            },
            cache: BuildCache::open(&self.service.config.data_root),
            work: self.work,
            context: self.context,
            mem: self.mem,
            lexer: self.lexer,
            file: self.file,
            step_of: self.step_of,
            total: self.total,
            results: self.results,
            seq: 0,
            scratch_tag: self.scratch_tag,
            containers: Vec::new(),
            removals: Vec::new(),
            cancel: Some(self.cancel),
            cache_from: self.cache_from,
        }
    }
}

pub(crate) struct Builder<'a> {
    pub service: &'a BuildService,
    pub req: &'a BuildRequest,
    out: Sink<'a>,
    pub work: PathBuf,
    pub context: PathBuf,
    /// The build's tmpfs, when the context is on one ([`WorkDir`]).
    pub mem: Option<PathBuf>,
    pub lexer: Lexer,
    pub file: String,
    /// Step number by the instruction's first line.
    step_of: HashMap<usize, usize>,
    total: usize,
    pub cache: BuildCache,
    results: Vec<Option<StageResult>>,
    seq: usize,
    /// Makes the scratch paths of parallel stages distinct.
    scratch_tag: String,
    /// Set when another stage failed: stop before the next step.
    cancel: Option<&'a AtomicBool>,
    /// Intermediate containers kept after a failure without `forcerm`
    /// are left; these are the ones still to remove.
    pub containers: Vec<String>,
    /// Removals of committed steps' containers, running while the next
    /// step goes on; joined before the build (or a parallel stage) ends.
    pub removals: Vec<std::thread::JoinHandle<Result<()>>>,
    /// The `--cache-from` images still in play ([`cache_from`]).
    cache_from: Vec<CacheSource>,
}

impl<'a> Builder<'a> {
    /// The seed of a builder for stage `idx` on another thread.
    fn worker_seed<'s>(
        &self,
        plan: &BuildPlan,
        idx: usize,
        tx: mpsc::Sender<parallel::Event>,
        cancel: &'s AtomicBool,
    ) -> WorkerSeed<'s>
    where
        'a: 's,
    {
        WorkerSeed {
            service: self.service,
            req: self.req,
            tx,
            prefix: format!("[{}] ", plan.stages[idx].display_name()),
            work: self.work.clone(),
            context: self.context.clone(),
            mem: self.mem.clone(),
            lexer: self.lexer,
            file: self.file.clone(),
            step_of: self.step_of.clone(),
            total: self.total,
            results: self.results.clone(),
            scratch_tag: format!("s{idx}-"),
            cancel,
            cache_from: self.cache_from.clone(),
        }
    }
}

impl Builder<'_> {
    /// Progress text (suppressed with `q`).
    pub fn say(&mut self, text: impl Into<String>) {
        if !self.req.quiet {
            self.out.send(BuildMessage::Stream(text.into()));
        }
    }

    /// A fresh path on the build's tmpfs, if it has one: for what is
    /// bounded by the context's size (a COPY's staging of context files).
    pub fn mem_scratch(&mut self, what: &str) -> Option<PathBuf> {
        let mem = self.mem.clone()?;
        self.seq += 1;
        Some(mem.join(format!("{what}-{}{}", self.scratch_tag, self.seq)))
    }

    /// A fresh path under the work dir.
    pub fn scratch(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        self.work
            .join(format!("{what}-{}{}", self.scratch_tag, self.seq))
    }

    /// Waits for the background removals of committed steps' containers;
    /// the first that failed fails the build, as an inline removal did.
    pub(crate) fn join_removals(&mut self) -> Result<()> {
        let mut first = Ok(());
        for h in std::mem::take(&mut self.removals) {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(BuildError::new("removing a step's container panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    fn cleanup_containers(&mut self) {
        let _ = self.join_removals();
        for id in std::mem::take(&mut self.containers) {
            if let Ok(c) = self.service.containers.store().get(&id) {
                let _ = self.service.containers.container_remove_v(&c, true, true);
            }
        }
    }

    fn announce(&mut self, l: &Located) {
        let n = self
            .step_of
            .get(&l.start_line)
            .copied()
            .unwrap_or(self.total);
        let total = self.total;
        self.say(format!("Step {n}/{total} : {}\n", l.original));
    }

    fn show_id(&mut self, st: &StageState) {
        if let Some(id) = &st.image {
            let short = id.hex()[..12].to_string();
            self.say(format!(" ---> {short}\n"));
        }
    }

    /// Looks `step` up unless `--no-cache`: in the local cache, then in
    /// the `--cache-from` images. On a hit the state moves to the cached
    /// image.
    pub fn cached(&mut self, st: &mut StageState, step: &Step) -> Result<bool> {
        if self.req.no_cache {
            return Ok(false);
        }
        let local = self
            .cache
            .get(&step.local)
            .filter(|id| self.service.images.store.exists(id));
        let id = match local {
            Some(id) => id,
            None => match self.lookup_cache_sources(st, step)? {
                Some(id) => {
                    if let Err(e) = self.cache.put(&step.local, &id) {
                        tracing::warn!(error = %e, "writing the build cache");
                    }
                    id
                }
                None => return Ok(false),
            },
        };
        st.config = self.image_config(&id)?;
        st.image = Some(id);
        self.say(" ---> Using cache\n");
        Ok(true)
    }

    /// The image a `--cache-from` image yields for `step`, if one matches
    /// ([`cache_from`]); from then on the build keeps to that image.
    fn lookup_cache_sources(&mut self, st: &StageState, step: &Step) -> Result<Option<Digest>> {
        if self.cache_from.is_empty() {
            return Ok(None);
        }
        let parent = match &st.image {
            Some(id) => Some(
                self.service
                    .images
                    .store
                    .config(id)
                    .map_err(|e| BuildError::new(e.to_string()))?,
            ),
            None => None,
        };
        let Some((i, index, last)) = cache_from::find(&self.cache_from, parent.as_ref(), step)
        else {
            return Ok(None);
        };
        let source = self.cache_from.swap_remove(i);
        let id = if last {
            source.id.clone()
        } else {
            self.service
                .images
                .store
                .commit_cached_step(st.image.as_ref(), &source.id, index, st.config.clone())
                .map_err(|e| BuildError::new(format!("--cache-from {}: {e}", source.id)))?
        };
        self.cache_from = vec![source];
        Ok(Some(id))
    }

    /// Moves the state to a newly built image and remembers it.
    pub fn record(&mut self, st: &mut StageState, step: &Step, id: Digest) {
        if let Err(e) = self.cache.put(&step.local, &id) {
            tracing::warn!(error = %e, "writing the build cache");
        }
        st.image = Some(id);
    }

    /// Resolves the `--cache-from` images; one that is not here is
    /// skipped with a warning, as the classic builder does.
    fn resolve_cache_from(&mut self) -> Result<()> {
        let req = self.req;
        for name in &req.cache_from {
            let id = match self.service.images.store.resolve(name) {
                Ok(id) => id,
                Err(e) if berth_core::HasKind::kind(&e) == berth_core::ErrorKind::NotFound => {
                    self.say(format!(
                        "[Warning] --cache-from: no local image {name}, skipped\n"
                    ));
                    continue;
                }
                Err(e) => {
                    return Err(BuildError::new(format!("--cache-from {name}: {e}")));
                }
            };
            let config = self
                .service
                .images
                .store
                .config(&id)
                .map_err(|e| BuildError::new(format!("--cache-from {name}: {e}")))?;
            if !self.cache_from.iter().any(|s| s.id == id) {
                self.cache_from.push(CacheSource { id, config });
            }
        }
        Ok(())
    }

    pub fn image_config(&self, id: &Digest) -> Result<ContainerConfig> {
        Ok(self
            .service
            .images
            .store
            .config(id)
            .map_err(|e| BuildError::new(e.to_string()))?
            .config
            .unwrap_or_default())
    }

    /// An image the build resolved (or pulled) before its first step.
    pub fn resolved_image(&self, name: &str) -> Result<Digest> {
        self.service
            .images
            .store
            .resolve(name)
            .map_err(|e| BuildError::new(e.to_string()))
    }

    /// Resolves a base image: the local one, pulled first when missing
    /// (or always with `--pull`), through the engine's registry client —
    /// mirrors and insecure registries as the daemon is configured.
    pub fn local_image(&mut self, name: &str) -> Result<Digest> {
        let local = self.service.images.store.resolve(name);
        let missing = matches!(&local, Err(e) if berth_core::HasKind::kind(e) == berth_core::ErrorKind::NotFound);
        if missing || (self.req.pull && local.is_ok()) {
            let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let sink = lines.clone();
            let progress: berth_api::backend::ProgressFn =
                std::sync::Arc::new(move |v: serde_json::Value| {
                    // The per-layer lines stay out of the build log; the summary stays.
                    if v.get("id").is_none() {
                        if let Some(s) = v["status"].as_str() {
                            sink.lock().expect("pull lines").push(format!("{s}\n"));
                        }
                    }
                });
            let pulled = self.service.images.pull(
                berth_api::backend::PullRequest {
                    from_image: name.to_string(),
                    ..Default::default()
                },
                progress,
            );
            for l in lines.lock().expect("pull lines").drain(..) {
                self.say(l);
            }
            if let Err(e) = pulled {
                if missing {
                    return Err(BuildError::new(format!(
                        "pull access denied for {name}: {}",
                        e.message
                    )));
                }
                self.say(format!(
                    "[Warning] pulling {name} failed, using the local image: {}\n",
                    e.message
                ));
            }
        }
        self.service
            .images
            .store
            .resolve(name)
            .map_err(|e| BuildError::new(e.to_string()))
    }

    /// The image a finished stage produced, by name or index.
    pub fn stage_image(&self, plan: &BuildPlan, reference: &str) -> Option<Option<Digest>> {
        let lower = reference.to_ascii_lowercase();
        let idx = plan
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                reference
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < plan.stages.len())
            })?;
        self.results
            .get(idx)
            .and_then(|r| r.as_ref())
            .map(|r| r.image.clone())
    }

    fn build(&mut self, input: Box<dyn std::io::Read + Send>) -> Result<String> {
        context::unpack(input, &self.context)?;
        let df_rel = self.req.dockerfile.trim_start_matches("./").to_string();
        let df_path = crate::rootpath::resolve_path(&self.context, &df_rel, true)
            .map_err(|e| BuildError::new(e.to_string()))?;
        let text = std::fs::read_to_string(&df_path).map_err(|_| {
            BuildError::new(format!(
                "Cannot locate specified Dockerfile: {}",
                self.req.dockerfile
            ))
        })?;
        context::apply_dockerignore(&self.context, &[df_rel.as_str(), ".dockerignore"])?;
        self.file = Path::new(&df_rel)
            .file_name()
            .map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().to_string());
        let df =
            Dockerfile::parse(&self.file, &text).map_err(|e| BuildError::new(e.to_string()))?;
        self.lexer = Lexer::new(df.directives.escape);
        let build_args: BTreeMap<String, String> = self
            .req
            .build_args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let opts = BuildOptions {
            build_args,
            target: self.req.target.clone(),
            ..Default::default()
        };
        let mut plan = plan(&df, &opts).map_err(|e| BuildError::new(e.to_string()))?;
        for (i, l) in df.instructions.iter().enumerate() {
            self.step_of.insert(l.start_line, i + 1);
        }
        self.total = df.instructions.len();
        if !self.req.labels.is_empty() {
            // `--label`s become one more LABEL step of the target stage.
            let line = history::label_line(&self.req.labels);
            let parsed =
                Dockerfile::parse(&self.file, &line).map_err(|e| BuildError::new(e.to_string()))?;
            let mut l = parsed.instructions[0].clone();
            l.start_line = usize::MAX;
            self.total += 1;
            self.step_of.insert(usize::MAX, self.total);
            plan.stages[plan.target].instructions.push(l);
        }
        for l in df
            .instructions
            .iter()
            .take_while(|l| !matches!(l.instruction, Instruction::From(_)))
        {
            self.announce(l);
        }
        self.results = vec![None; plan.stages.len()];
        // Every image the build needs is found (or pulled) before any step
        // runs, so a bad name fails the build with nothing done.
        for &idx in &plan.order {
            let stage = &plan.stages[idx];
            let mut wanted: Vec<(String, usize)> = stage
                .images
                .iter()
                .map(|(n, l)| (n.clone(), l.start_line))
                .collect();
            if let Base::Image(name) = &stage.base {
                wanted.insert(0, (name.clone(), stage.from.start_line));
            }
            for (name, line) in wanted {
                if let Err(e) = self.local_image(&name) {
                    return Err(BuildError::new(format!(
                        "{}:{line}: {}",
                        self.file, e.message
                    )));
                }
            }
        }
        self.resolve_cache_from()?;
        if parallel::has_independent_stages(&plan) {
            self.stages_in_parallel(&plan, &opts.build_args)?;
        } else {
            for idx in plan.order.clone() {
                self.stage(&plan, idx, &opts.build_args)?;
            }
        }
        if !plan.unused_build_args.is_empty() {
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                plan.unused_build_args.join(" ")
            ));
        }
        let image = self.results[plan.target]
            .as_ref()
            .and_then(|r| r.image.clone())
            .ok_or_else(|| BuildError::new("No image was generated. Is your Dockerfile empty?"))?;
        self.say(format!("Successfully built {}\n", &image.hex()[..12]));
        for t in &self.req.tags {
            let r = Reference::parse_normalized(t)
                .map_err(|e| BuildError::new(format!("invalid tag {t:?}: {e}")))?;
            self.service
                .images
                .tag(&image.to_string(), &r)
                .map_err(|e| BuildError::new(e.to_string()))?;
            self.say(format!("Successfully tagged {}\n", r.familiar()));
        }
        if self.req.quiet {
            self.out.send(BuildMessage::Stream(format!("{image}\n")));
        }
        Ok(image.to_string())
    }

    fn stage(
        &mut self,
        plan: &BuildPlan,
        idx: usize,
        build_args: &BTreeMap<String, String>,
    ) -> Result<()> {
        let stage = &plan.stages[idx];
        self.announce(&stage.from);
        let globals = &plan.global_args;
        let mut st = match &stage.base {
            Base::Scratch => StageState {
                image: None,
                config: ContainerConfig::default(),
                scope: ArgScope::new(build_args, globals, None),
                cmd_set: false,
            },
            Base::Stage(i) => {
                let r = self.results[*i]
                    .clone()
                    .ok_or_else(|| BuildError::new(format!("stage {i} was not built")))?;
                let config = match &r.image {
                    Some(id) => self.image_config(id)?,
                    None => ContainerConfig::default(),
                };
                StageState {
                    image: r.image.clone(),
                    config,
                    scope: ArgScope::new(build_args, globals, Some(&r.scope)),
                    cmd_set: false,
                }
            }
            Base::Image(name) => {
                let id = self.resolved_image(name)?;
                StageState {
                    config: self.image_config(&id)?,
                    image: Some(id),
                    scope: ArgScope::new(build_args, globals, None),
                    cmd_set: false,
                }
            }
        };
        if !st.env_keys().iter().any(|k| k == "PATH") {
            st.set_env("PATH", DEFAULT_PATH);
        }
        self.show_id(&st);
        let triggers = st.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            let s = if triggers.len() == 1 { "" } else { "s" };
            self.say(format!("# Executing {} build trigger{s}\n", triggers.len()));
            for t in &triggers {
                let parsed = Dockerfile::parse(&self.file, t)
                    .map_err(|e| BuildError::new(format!("ONBUILD trigger {t:?}: {e}")))?;
                for l in &parsed.instructions {
                    self.instruction(plan, &mut st, l)?;
                }
            }
        }
        for l in &stage.instructions {
            if self.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Err(BuildError::cancelled());
            }
            self.announce(l);
            if let Err(mut e) = self.instruction(plan, &mut st, l) {
                // With stages interleaved, the failure says where it is
                // (the classic builder's wording stays, after it).
                if self.cancel.is_some() && !e.is_cancelled() && l.start_line != usize::MAX {
                    e.message = format!(
                        "{}:{}: stage {}: {}",
                        self.file,
                        l.start_line,
                        stage.display_name(),
                        e.message
                    );
                }
                return Err(e);
            }
            self.show_id(&st);
        }
        if let Some(id) = &st.image {
            self.out.send(BuildMessage::ImageId(id.to_string()));
        }
        self.results[idx] = Some(StageResult {
            image: st.image.clone(),
            scope: st.scope.clone(),
        });
        Ok(())
    }

    fn instruction(&mut self, plan: &BuildPlan, st: &mut StageState, l: &Located) -> Result<()> {
        let env = st.expand_env();
        let expanded = l
            .expand(&self.file, &self.lexer, &env)
            .map_err(|e| BuildError::new(e.to_string()))?;
        match expanded {
            Instruction::Run(r) => self.run(plan, st, &r, l.start_line),
            Instruction::Copy(c) => {
                self.copy_step(plan, st, &c.op, c.from.as_deref(), false, c.parents, None)
            }
            Instruction::Add(a) => self.copy_step(
                plan,
                st,
                &a.op,
                None,
                a.unpack != Some(false),
                false,
                a.checksum.as_deref(),
            ),
            Instruction::Workdir(w) => self.workdir(st, &w),
            Instruction::From(_) => Err(BuildError::new("FROM inside a stage")),
            other => self.metadata(st, other),
        }
    }
}
