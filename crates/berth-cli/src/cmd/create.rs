//! `create`, and the create step of `run`: the flags become the body of
//! `POST /containers/create?name=` (Config + HostConfig + NetworkingConfig)
//! the way Docker's `parse` builds it, then the request is sent, pulling
//! the image first when it is missing (`--pull`).
//!
//! The body is `berth_wire`'s `ContainerCreateBody`, the struct the daemon
//! decodes it into, so a field is spelled once for both sides. A flag left
//! unset goes out as its zero value (`0`, `""`, `null`), which the daemon
//! reads as unset; the lists Docker's CLI sends as `[]` (`Dns`, `Devices`,
//! `Ulimits`) and the maps it sends as `{}` stay so.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use berth_core::Reference;
use berth_wire::container_types::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, EndpointIpamConfig,
    EndpointSettings, HostConfig, LogConfig, NetworkingConfig, PortBinding,
};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use super::emit;
use crate::cli::{ContainerOpts, CreateArgs};
use crate::conn::{empty_body, Engine};
use crate::error::{is_status, ApiError, ExitStatus};
use crate::opts::{self, HealthFlags};

/// What the create body depends on besides the flags.
pub struct Env<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub read_file: &'a dyn Fn(&str) -> Result<String>,
    pub cwd: &'a str,
    /// The terminal size (height, width), sent as `ConsoleSize` with `-t`.
    pub console: Option<(u16, u16)>,
}

impl Env<'static> {
    pub fn real<R>(f: impl FnOnce(&Env) -> R) -> R {
        let lookup = |k: &str| std::env::var(k).ok();
        let read_file = |p: &str| {
            std::fs::read_to_string(p).map_err(|e| anyhow!("open {p}: {}", io_reason(&e)))
        };
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/".into());
        let console = crate::attach::window_size(1);
        f(&Env {
            lookup: &lookup,
            read_file: &read_file,
            cwd: &cwd,
            console,
        })
    }
}

/// Go's wording of common I/O errors.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// `None` for an empty list: Docker's CLI sends `null` for these.
fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Builds the create body. `detach` is `run -d` (nothing attached).
pub fn create_body(o: &ContainerOpts, detach: bool, env: &Env) -> Result<ContainerCreateBody> {
    let (image, cmd) = o
        .image_and_command
        .split_first()
        .ok_or_else(|| anyhow!("requires at least 1 argument"))?;

    // Attach streams (`-a`), as Docker's `parse` resolves them.
    let mut attach = [false; 3];
    for a in &o.attach {
        match a.to_lowercase().as_str() {
            "stdin" => attach[0] = true,
            "stdout" => attach[1] = true,
            "stderr" => attach[2] = true,
            _ => bail!("valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    if o.interactive {
        attach[0] = true;
    }
    if o.attach.is_empty() {
        attach[1] = true;
        attach[2] = true;
    }
    if detach {
        if !o.attach.is_empty() {
            bail!("Conflicting options: -a and -d");
        }
        attach = [false; 3];
    }

    let mut env_list = Vec::new();
    for f in &o.env_file {
        let content = (env.read_file)(f)?;
        env_list.extend(opts::parse_env_file(&content, f, env.lookup)?);
    }
    for e in &o.env {
        env_list.push(opts::expand_env(e, env.lookup)?);
    }

    let mut exposed: BTreeMap<String, Value> = BTreeMap::new();
    let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in &o.publish {
        for m in opts::parse_port_spec(p)? {
            exposed.insert(m.port.clone(), json!({}));
            bindings
                .entry(m.port)
                .or_default()
                .get_or_insert_default()
                .push(m.binding);
        }
    }
    for e in &o.expose {
        for p in opts::parse_expose(e)? {
            exposed.insert(p, json!({}));
        }
    }

    let (binds, anon) = opts::split_volumes(&o.volume, env.cwd);
    let volumes: BTreeMap<String, Value> = anon.into_iter().map(|v| (v, json!({}))).collect();
    let mounts = o
        .mount
        .iter()
        .map(|m| opts::parse_mount(m, env.cwd))
        .collect::<Result<Vec<_>>>()?;
    let tmpfs: BTreeMap<String, String> = o
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, o)) => (p.to_string(), o.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();

    let restart = opts::parse_restart(&o.restart)?;
    if o.rm && !opts::restart_is_none(&restart) {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    let health = opts::parse_health(&HealthFlags {
        cmd: o.health_cmd.as_deref(),
        interval: o.health_interval.as_deref(),
        timeout: o.health_timeout.as_deref(),
        start_period: o.health_start_period.as_deref(),
        start_interval: o.health_start_interval.as_deref(),
        retries: o.health_retries,
        none: o.no_healthcheck,
    })?;

    let flag_err = |flag: &str, v: &str, e: anyhow::Error| {
        anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: {e}")
    };
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| opts::ram_in_bytes(s).map_err(|e| flag_err(flag, s, e)))
            .transpose()
    };
    let memory = size("-m, --memory", &o.resources.memory)?;
    let memory_reservation = size("--memory-reservation", &o.resources.memory_reservation)?;
    let shm = size("--shm-size", &o.shm_size)?;
    let swap = o
        .resources
        .memory_swap
        .as_deref()
        .map(|s| opts::memory_swap(s).map_err(|e| flag_err("--memory-swap", s, e)))
        .transpose()?;
    let cpus = o
        .resources
        .cpus
        .as_deref()
        .map(|s| opts::nano_cpus(s).map_err(|e| flag_err("--cpus", s, e)))
        .transpose()?;

    let mut security_opt = Vec::new();
    for s in &o.security_opt {
        // Docker's CLI sends a seccomp profile's content, not its path.
        match s.split_once(['=', ':']) {
            Some(("seccomp", p)) if p != "unconfined" && p != "builtin" => {
                let content = (env.read_file)(p)
                    .map_err(|e| anyhow!("opening seccomp profile ({p}) failed: {e}"))?;
                let compact: Value = serde_json::from_str(&content)
                    .map_err(|e| anyhow!("parsing seccomp profile ({p}) failed: {e}"))?;
                security_opt.push(format!("seccomp={compact}"));
            }
            Some((k, v)) if s.as_bytes()[k.len()] == b':' && k == "label" => {
                security_opt.push(format!("label={v}"))
            }
            _ => security_opt.push(s.clone()),
        }
    }

    let devices = o
        .device
        .iter()
        .map(|d| opts::parse_device(d))
        .collect::<Result<Vec<_>>>()?;
    let ulimits = o
        .ulimit
        .iter()
        .map(|u| opts::parse_ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    let caps = |v: &[String]| non_empty(v.iter().map(|c| opts::normalize_cap(c)).collect());
    let network = o.network.clone().unwrap_or_else(|| "default".into());

    let config = ContainerConfig {
        hostname: o.hostname.clone().unwrap_or_default(),
        domainname: o.domainname.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        attach_stdin: attach[0],
        attach_stdout: attach[1],
        attach_stderr: attach[2],
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: o.tty,
        open_stdin: o.interactive,
        stdin_once: o.interactive && attach[0],
        env: non_empty(env_list),
        cmd: non_empty(cmd.to_vec()),
        healthcheck: health.map(serde_json::to_value).transpose()?,
        image: image.clone(),
        volumes: Some(volumes),
        working_dir: o.workdir.clone().unwrap_or_default(),
        entrypoint: o.entrypoint.clone().map(|ep| vec![ep]),
        labels: Some(opts::kv_map(&o.label)),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        ..Default::default()
    };

    let host_config = HostConfig {
        binds: non_empty(binds),
        log_config: LogConfig {
            kind: o.log_driver.clone().unwrap_or_default(),
            config: opts::kv_map(&o.log_opt),
        },
        network_mode: network.clone(),
        port_bindings: Some(bindings),
        restart_policy: restart,
        auto_remove: o.rm,
        volumes_from: non_empty(o.volumes_from.clone()),
        console_size: o.tty.then(|| {
            let (rows, cols) = env.console.unwrap_or((0, 0));
            vec![rows.into(), cols.into()]
        }),
        cap_add: caps(&o.cap_add),
        cap_drop: caps(&o.cap_drop),
        cgroupns_mode: o.cgroupns.clone().unwrap_or_default(),
        dns: Some(o.dns.clone()),
        dns_options: Some(o.dns_option.clone()),
        dns_search: Some(o.dns_search.clone()),
        extra_hosts: non_empty(o.add_host.iter().map(|a| a.replacen('=', ":", 1)).collect()),
        group_add: non_empty(o.group_add.clone()),
        ipc_mode: o.ipc.clone().unwrap_or_default(),
        pid_mode: o.pid.clone().unwrap_or_default(),
        uts_mode: o.uts.clone().unwrap_or_default(),
        userns_mode: o.userns.clone().unwrap_or_default(),
        runtime: o.runtime.clone().unwrap_or_default(),
        cpuset_cpus: o.resources.cpuset_cpus.clone().unwrap_or_default(),
        oom_score_adj: o.oom_score_adj.unwrap_or_default(),
        privileged: o.privileged,
        publish_all_ports: o.publish_all,
        readonly_rootfs: o.read_only,
        security_opt: non_empty(security_opt),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        shm_size: shm.unwrap_or_default(),
        sysctls: (!o.sysctl.is_empty()).then(|| opts::kv_map(&o.sysctl)),
        cpu_shares: o.resources.cpu_shares.unwrap_or_default(),
        memory: memory.unwrap_or_default(),
        nano_cpus: cpus.unwrap_or_default(),
        devices: Some(devices),
        memory_reservation: memory_reservation.unwrap_or_default(),
        memory_swap: swap.unwrap_or_default(),
        pids_limit: o.resources.pids_limit,
        ulimits: Some(ulimits),
        mounts: non_empty(mounts),
        init: o.init.then_some(true),
        ..Default::default()
    };

    // ---- NetworkingConfig ----
    let mut endpoints = BTreeMap::new();
    let builtin = matches!(network.as_str(), "default" | "bridge" | "host" | "none")
        || network.starts_with("container:");
    if !builtin && (!o.network_alias.is_empty() || o.ip.is_some()) {
        let ep = EndpointSettings {
            aliases: non_empty(o.network_alias.clone()),
            ipam_config: o.ip.clone().map(|ip| EndpointIpamConfig {
                ipv4_address: ip,
                ..Default::default()
            }),
            ..Default::default()
        };
        endpoints.insert(network, ep);
    } else if !o.network_alias.is_empty() {
        bail!("network-scoped aliases are only supported for user-defined networks");
    } else if o.ip.is_some() {
        bail!("Error response from daemon: user specified IP address is supported on user defined networks only");
    }
    Ok(ContainerCreateBody {
        config,
        host_config,
        networking_config: Some(NetworkingConfig {
            endpoints_config: endpoints,
        }),
    })
}

/// Docker's `Unable to find image 'busybox:latest' locally` name.
pub fn familiar_with_tag(image: &str) -> String {
    match Reference::parse_normalized(image) {
        Ok(r) => r.familiar(),
        Err(_) => image.to_string(),
    }
}

/// `POST /images/create?fromImage=&tag=`, progress on stderr.
async fn pull(e: &Engine, image: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    let r = Reference::parse_normalized(image)
        .map_err(|err| anyhow!("invalid reference format: {err}"))?;
    let mut q: Vec<(&str, String)> = vec![("fromImage", r.familiar_name())];
    match (r.tag(), r.digest()) {
        (_, Some(d)) => q.push(("tag", d.to_string())),
        (Some(t), None) => q.push(("tag", t.to_string())),
        (None, None) => {}
    }
    if let Some(p) = platform {
        q.push(("platform", p.to_string()));
    }
    let path = format!("/images/create?{}", serde_urlencoded::to_string(&q)?);
    let auth = super::registry::auth_headers(image);
    let resp = e.raw(Method::POST, &path, empty_body(), &auth).await?;
    let mut body = resp.into_body();
    let mut msgs = crate::stream::JsonMessages::default();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            msgs.push(data);
            for m in msgs.drain()? {
                if let Some(line) = crate::stream::render_message(&m)? {
                    if !quiet {
                        eprint!("{line}");
                    }
                }
            }
        }
    }
    Ok(())
}

async fn post_create(
    e: &Engine,
    body: &ContainerCreateBody,
    name: Option<&str>,
    platform: Option<&str>,
) -> Result<String> {
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(n) = name {
        q.push(("name", n));
    }
    if let Some(p) = platform {
        q.push(("platform", p));
    }
    let path = if q.is_empty() {
        "/containers/create".to_string()
    } else {
        format!("/containers/create?{}", serde_urlencoded::to_string(&q)?)
    };
    let bytes = serde_json::to_vec(body)?;
    let resp = e
        .raw(
            Method::POST,
            &path,
            crate::conn::full_body(bytes),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    let raw = resp.into_body().collect().await?.to_bytes();
    let r: ContainerCreateResponse = serde_json::from_slice(&raw)
        .map_err(|e| anyhow!("the engine's create response is not understood: {e}"))?;
    for w in r.warnings.iter().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    Ok(r.id)
}

/// Creates the container, pulling as `--pull` asks; returns its ID.
pub async fn create_container(
    e: &Engine,
    o: &ContainerOpts,
    body: &ContainerCreateBody,
) -> Result<String> {
    let image = o.image_and_command[0].as_str();
    let platform = o.platform.as_deref();
    if o.pull == "always" {
        pull(e, image, platform, o.quiet).await?;
    }
    match post_create(e, body, o.name.as_deref(), platform).await {
        Err(err) if is_status(&err, 404) && o.pull != "never" && is_image_missing(&err) => {
            eprintln!(
                "Unable to find image '{}' locally",
                familiar_with_tag(image)
            );
            pull(e, image, platform, o.quiet).await?;
            post_create(e, body, o.name.as_deref(), platform).await
        }
        r => r,
    }
}

fn is_image_missing(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ApiError>()
        .is_some_and(|a| a.message.to_lowercase().contains("image"))
}

/// Reports a `run`/`create` failure as Docker does and exits with `code`.
pub fn fail(cmd: &str, err: anyhow::Error, code: i32) -> anyhow::Error {
    if let Some(ExitStatus(_)) = err.downcast_ref::<ExitStatus>() {
        return err;
    }
    eprintln!("berth: {err:#}\n\nRun 'berth {cmd} --help' for more information");
    ExitStatus(code).into()
}

pub async fn create(e: &Engine, a: CreateArgs) -> Result<()> {
    let body = Env::real(|env| create_body(&a.opts, false, env))
        .map_err(|err| fail("create", err, 125))?;
    let id = create_container(e, &a.opts, &body)
        .await
        .map_err(|err| fail("create", err, 125))?;
    emit(&format!("{id}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> ContainerOpts {
        let mut argv = vec!["berth", "create"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::Command::Create(c)) => c.opts,
            other => panic!("{other:?}"),
        }
    }

    fn test_env<R>(f: impl FnOnce(&Env) -> R) -> R {
        let lookup = |k: &str| (k == "B").then(|| "bee".to_string());
        let read_file = |p: &str| match p {
            "/envf" => Ok("A=1\n# c\nB\n".to_string()),
            _ => Err(anyhow!("open {p}: no such file or directory")),
        };
        f(&Env {
            lookup: &lookup,
            read_file: &read_file,
            cwd: "/work",
            console: Some((24, 80)),
        })
    }

    #[test]
    fn golden_create_body() {
        let o = parse(&[
            "--name",
            "golden",
            "-e",
            "X=1",
            "--env-file",
            "/envf",
            "-w",
            "/tmp",
            "--entrypoint",
            "/bin/sh",
            "-h",
            "hn",
            "-l",
            "a=b",
            "-u",
            "1000:1000",
            "--group-add",
            "10",
            "-v",
            "/tmp:/data:ro",
            "-v",
            "vol1:/v",
            "-v",
            "/anon",
            "--mount",
            "type=tmpfs,target=/t",
            "--tmpfs",
            "/run:size=1m",
            "--read-only",
            "--restart",
            "on-failure:3",
            "--init",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "5",
            "--network",
            "none",
            "-p",
            "127.0.0.1:8080:80/udp",
            "-p",
            "90",
            "--cap-add",
            "net_admin",
            "--cap-drop",
            "MKNOD",
            "--security-opt",
            "no-new-privileges",
            "--ulimit",
            "nofile=1024:2048",
            "--sysctl",
            "net.core.somaxconn=100",
            "--shm-size",
            "64m",
            "-m",
            "32m",
            "--memory-swap",
            "64m",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "10",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--health-retries",
            "2",
            "--log-opt",
            "max-size=1m",
            "-it",
            "busybox",
            "-c",
            "echo hi",
        ]);
        let body = test_env(|env| create_body(&o, false, env)).unwrap();
        let got = serde_json::to_value(&body).unwrap();
        let want: Value =
            serde_json::from_str(include_str!("../../testdata/create-body/run.json")).unwrap();
        assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
        // What the daemon reads back is what was built.
        let read: ContainerCreateBody = serde_json::from_value(want).unwrap();
        assert_eq!(read, body);
    }

    #[test]
    fn detach_and_conflicts() {
        let o = parse(&["-i", "busybox"]);
        let b = test_env(|env| create_body(&o, true, env)).unwrap().config;
        assert_eq!(
            (b.attach_stdin, b.attach_stdout, b.open_stdin, b.stdin_once),
            (false, false, true, false)
        );
        let b = serde_json::to_value(test_env(|env| create_body(&o, true, env)).unwrap()).unwrap();
        assert_eq!(b["Cmd"], Value::Null);
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        let o = parse(&["--rm", "--restart", "always", "busybox"]);
        let e = test_env(|env| create_body(&o, false, env)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflicting options: cannot specify both --restart and --rm"
        );
        let o = parse(&["-a", "stdout", "busybox"]);
        let b = test_env(|env| create_body(&o, false, env)).unwrap().config;
        assert_eq!((b.attach_stdout, b.attach_stderr), (true, false));
        let o = parse(&["-m", "32x", "busybox"]);
        let e = test_env(|env| create_body(&o, false, env)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"32x\" for \"-m, --memory\" flag: invalid size: '32x'"
        );
        let o = parse(&["--entrypoint", "", "busybox", "ls", "-l"]);
        let b = test_env(|env| create_body(&o, false, env)).unwrap().config;
        assert_eq!(b.entrypoint, Some(vec![String::new()]));
        assert_eq!(b.cmd, Some(vec!["ls".to_string(), "-l".to_string()]));
    }

    #[test]
    fn endpoint_settings_for_user_networks() {
        let o = parse(&[
            "--network",
            "mynet",
            "--network-alias",
            "web",
            "--ip",
            "10.1.0.5",
            "busybox",
        ]);
        let b = test_env(|env| create_body(&o, false, env)).unwrap();
        assert_eq!(
            serde_json::to_value(b.networking_config).unwrap(),
            json!({"EndpointsConfig": {"mynet": {
                "IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Aliases": ["web"]}}})
        );
        let o = parse(&["--network-alias", "web", "busybox"]);
        let e = test_env(|env| create_body(&o, false, env)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "network-scoped aliases are only supported for user-defined networks"
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(familiar_with_tag("busybox"), "busybox:latest");
        assert_eq!(
            familiar_with_tag("docker.io/library/busybox:1"),
            "busybox:1"
        );
    }
}
