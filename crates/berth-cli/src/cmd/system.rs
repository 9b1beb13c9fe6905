//! Engine-wide commands: version, info, system df.

use anyhow::Result;
use serde_json::{json, Value};

use super::{ellipsis, emit, short_id};
use crate::cli::{DfArgs, InfoArgs, VersionArgs};
use crate::conn::Engine;
use crate::format::{ListFormat, Template};
use crate::table::TabWriter;
use crate::units::{
    bytes_size, human_size, human_size_with_precision, now_unix, parse_rfc3339, since,
};
use crate::Globals;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn i(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

// ---- version ----

fn client_version(api_version: &str) -> Value {
    json!({
        "Platform": {"Name": "berth"},
        "Version": crate::VERSION,
        "ApiVersion": api_version,
        "APIVersion": api_version,
        "DefaultAPIVersion": format!("{}.{}", bollard::API_DEFAULT_VERSION.major_version, bollard::API_DEFAULT_VERSION.minor_version),
        "GitCommit": crate::GIT_COMMIT,
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "Context": "default",
    })
}

fn render_client_version(c: &Value) -> String {
    let mut t = format!("Client: {}\n", s(&c["Platform"], "Name"));
    t.push_str(&format!(" Version:\t{}\n", s(c, "Version")));
    let api = s(c, "ApiVersion");
    let default = s(c, "DefaultAPIVersion");
    if api != default {
        t.push_str(&format!(
            " API version:\t{api} (downgraded from {default})\n"
        ));
    } else {
        t.push_str(&format!(" API version:\t{api}\n"));
    }
    t.push_str(&format!(" Git commit:\t{}\n", s(c, "GitCommit")));
    t.push_str(&format!(" OS/Arch:\t{}/{}\n", s(c, "Os"), s(c, "Arch")));
    t.push_str(&format!(" Context:\t{}\n", s(c, "Context")));
    t
}

/// The `Server:` half of `version`, from `GET /version`.
pub fn render_server_version(v: &Value) -> String {
    let name = v.get("Platform").map(|p| s(p, "Name")).unwrap_or("");
    let mut t = if name.is_empty() {
        "Server:\n".to_string()
    } else {
        format!("Server: {name}\n")
    };
    let components = v
        .get("Components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let engine_fallback = [
        json!({"Name": "Engine", "Version": v.get("Version"), "Details": {
            "ApiVersion": v.get("ApiVersion"), "MinAPIVersion": v.get("MinAPIVersion"), "GoVersion": v.get("GoVersion"),
            "GitCommit": v.get("GitCommit"), "BuildTime": v.get("BuildTime"), "Os": v.get("Os"), "Arch": v.get("Arch"),
            "Experimental": v.get("Experimental").map(|e| e.to_string()),
        }}),
    ];
    let components: &[Value] = if components.is_empty() {
        &engine_fallback
    } else {
        &components
    };
    for c in components {
        let cname = s(c, "Name");
        let details = c.get("Details").cloned().unwrap_or(Value::Null);
        let d = |k: &str| match details.get(k) {
            Some(Value::String(x)) => x.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        t.push_str(&format!(" {cname}:\n"));
        t.push_str(&format!("  Version:\t{}\n", s(c, "Version")));
        if cname == "Engine" {
            t.push_str(&format!(
                "  API version:\t{} (minimum version {})\n",
                d("ApiVersion"),
                d("MinAPIVersion")
            ));
            for (label, key) in [
                ("Go version", "GoVersion"),
                ("Git commit", "GitCommit"),
                ("Built", "BuildTime"),
            ] {
                let val = d(key);
                if !val.is_empty() {
                    t.push_str(&format!("  {label}:\t{val}\n"));
                }
            }
            t.push_str(&format!("  OS/Arch:\t{}/{}\n", d("Os"), d("Arch")));
            t.push_str(&format!("  Experimental:\t{}\n", d("Experimental")));
        } else if let Some(m) = details.as_object() {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                t.push_str(&format!("  {k}:\t{}\n", d(k)));
            }
        }
    }
    t
}

fn aligned(text: &str) -> String {
    let mut tw = TabWriter::new(20, 1);
    tw.push_str(text);
    tw.finish()
}

pub async fn version(g: &Globals, a: VersionArgs) -> Result<()> {
    let connected = super::connect(g).await;
    let api = match &connected {
        Ok(e) => e.api_version().to_string(),
        Err(_) => format!(
            "{}.{}",
            bollard::API_DEFAULT_VERSION.major_version,
            bollard::API_DEFAULT_VERSION.minor_version
        ),
    };
    let client = client_version(&api);
    let server = match &connected {
        Ok(e) => Some(e.get_json("/version").await),
        Err(_) => None,
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let tmpl = Template::parse(if f == "json" { "{{json .}}" } else { f })?;
        let server_value = match &server {
            Some(Ok(v)) => v.clone(),
            _ => Value::Null,
        };
        emit(&format!(
            "{}\n",
            tmpl.render(&json!({"Client": client, "Server": server_value}), false)?
        ))?;
    } else {
        let mut text = render_client_version(&client);
        if let Some(Ok(v)) = &server {
            text.push('\n');
            text.push_str(&render_server_version(v));
        }
        emit(&aligned(&text))?;
    }
    match (connected, server) {
        (Err(e), _) => Err(e),
        (_, Some(Err(e))) => Err(e),
        _ => Ok(()),
    }
}

// ---- info ----

/// `info`'s Server section: the facts Docker prints, from `GET /info`.
pub fn render_info(v: &Value, debug_client: bool) -> String {
    let mut t = String::new();
    t.push_str("Client:\n");
    t.push_str(&format!(" Version:    {}\n", crate::VERSION));
    t.push_str(" Context:    default\n");
    t.push_str(&format!(" Debug Mode: {debug_client}\n"));
    t.push_str("\nServer:\n");
    let line = |t: &mut String, label: &str, val: String| t.push_str(&format!(" {label}: {val}\n"));
    let num = |k: &str| i(v, k).to_string();
    line(&mut t, "Containers", num("Containers"));
    t.push_str(&format!(
        "  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        num("ContainersRunning"),
        num("ContainersPaused"),
        num("ContainersStopped")
    ));
    line(&mut t, "Images", num("Images"));
    line(&mut t, "Server Version", s(v, "ServerVersion").into());
    line(&mut t, "Storage Driver", s(v, "Driver").into());
    if let Some(status) = v.get("DriverStatus").and_then(Value::as_array) {
        for pair in status {
            if let Some([k, val]) = pair.as_array().map(Vec::as_slice) {
                t.push_str(&format!(
                    "  {}: {}\n",
                    k.as_str().unwrap_or(""),
                    val.as_str().unwrap_or("")
                ));
            }
        }
    }
    line(&mut t, "Logging Driver", s(v, "LoggingDriver").into());
    line(&mut t, "Cgroup Driver", s(v, "CgroupDriver").into());
    line(&mut t, "Cgroup Version", s(v, "CgroupVersion").into());
    if let Some(plugins) = v.get("Plugins").and_then(Value::as_object) {
        t.push_str(" Plugins:\n");
        for (label, key) in [("Volume", "Volume"), ("Network", "Network"), ("Log", "Log")] {
            if let Some(list) = plugins.get(key).and_then(Value::as_array) {
                let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                t.push_str(&format!("  {label}: {}\n", names.join(" ")));
            }
        }
    }
    let runtimes: Vec<String> = v
        .get("Runtimes")
        .and_then(Value::as_object)
        .map(|m| {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        })
        .unwrap_or_default();
    if !runtimes.is_empty() {
        line(&mut t, "Runtimes", runtimes.join(" "));
    }
    if !s(v, "DefaultRuntime").is_empty() {
        line(&mut t, "Default Runtime", s(v, "DefaultRuntime").into());
    }
    line(&mut t, "Kernel Version", s(v, "KernelVersion").into());
    line(&mut t, "Operating System", s(v, "OperatingSystem").into());
    line(&mut t, "OSType", s(v, "OSType").into());
    line(&mut t, "Architecture", s(v, "Architecture").into());
    line(&mut t, "CPUs", num("NCPU"));
    line(&mut t, "Total Memory", bytes_size(i(v, "MemTotal") as f64));
    line(&mut t, "Name", s(v, "Name").into());
    line(&mut t, "ID", s(v, "ID").into());
    line(&mut t, "Docker Root Dir", s(v, "DockerRootDir").into());
    line(
        &mut t,
        "Debug Mode",
        v.get("Debug")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    );
    line(
        &mut t,
        "Experimental",
        v.get("ExperimentalBuild")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    );
    if let Some(regs) = v
        .get("RegistryConfig")
        .and_then(|r| r.get("InsecureRegistryCIDRs"))
        .and_then(Value::as_array)
    {
        if !regs.is_empty() {
            t.push_str(" Insecure Registries:\n");
            for r in regs.iter().filter_map(Value::as_str) {
                t.push_str(&format!("  {r}\n"));
            }
        }
    }
    line(
        &mut t,
        "Live Restore Enabled",
        v.get("LiveRestoreEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    );
    t
}

pub async fn info(e: &Engine, a: InfoArgs) -> Result<()> {
    let v = e.get_json("/info").await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let tmpl = Template::parse(if f == "json" { "{{json .}}" } else { f })?;
        return emit(&format!("{}\n", tmpl.render(&v, false)?));
    }
    emit(&render_info(&v, false))?;
    if let Some(w) = v.get("Warnings").and_then(Value::as_array) {
        for warning in w.iter().filter_map(Value::as_str) {
            eprintln!("{warning}");
        }
    }
    Ok(())
}

// ---- system df ----

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

fn reclaimable(reclaim: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaim as f64),
            reclaim * 100 / total
        )
    } else {
        human_size(reclaim as f64)
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The four summary rows of `system df`, from a v1.47 `GET /system/df`.
pub fn df_rows(v: &Value) -> Vec<Value> {
    let images = list(v, "Images");
    let total = i(v, "LayersSize");
    let mut used = 0;
    for img in images.iter().filter(|img| i(img, "Containers") > 0) {
        let (size, shared) = (i(img, "Size"), i(img, "SharedSize"));
        if size >= 0 && shared >= 0 {
            used += size - shared;
        }
    }
    let active_images = images.iter().filter(|img| i(img, "Containers") > 0).count();
    let image_row = json!({
        "Type": "Images", "TotalCount": images.len().to_string(), "Active": active_images.to_string(),
        "Size": human_size(total as f64), "Reclaimable": reclaimable(total - used, total),
    });

    let containers = list(v, "Containers");
    let running = |c: &Value| s(c, "State") == "running";
    let csize: i64 = containers.iter().map(|c| i(c, "SizeRw")).sum();
    let creclaim: i64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| i(c, "SizeRw"))
        .sum();
    let container_row = json!({
        "Type": "Containers", "TotalCount": containers.len().to_string(),
        "Active": containers.iter().filter(|c| running(c)).count().to_string(),
        "Size": human_size(csize as f64), "Reclaimable": reclaimable(creclaim, csize),
    });

    let volumes = list(v, "Volumes");
    let usage = |vol: &Value, k: &str| vol.get("UsageData").map(|u| i(u, k)).unwrap_or(0);
    let vsize: i64 = volumes
        .iter()
        .map(|vol| usage(vol, "Size"))
        .filter(|&n| n > 0)
        .sum();
    let vreclaim: i64 = volumes
        .iter()
        .filter(|vol| usage(vol, "RefCount") == 0)
        .map(|vol| usage(vol, "Size"))
        .filter(|&n| n > 0)
        .sum();
    let volume_row = json!({
        "Type": "Local Volumes", "TotalCount": volumes.len().to_string(),
        "Active": volumes.iter().filter(|vol| usage(vol, "RefCount") > 0).count().to_string(),
        "Size": human_size(vsize as f64), "Reclaimable": reclaimable(vreclaim, vsize),
    });

    let cache = list(v, "BuildCache");
    let flag = |c: &Value, k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let bsize: i64 = cache
        .iter()
        .filter(|c| !flag(c, "Shared"))
        .map(|c| i(c, "Size"))
        .sum();
    let breclaim: i64 = cache
        .iter()
        .filter(|c| !flag(c, "Shared") && !flag(c, "InUse"))
        .map(|c| i(c, "Size"))
        .sum();
    let cache_row = json!({
        "Type": "Build Cache", "TotalCount": cache.len().to_string(),
        "Active": cache.iter().filter(|c| flag(c, "InUse")).count().to_string(),
        "Size": human_size(bsize as f64), "Reclaimable": human_size(breclaim as f64),
    });
    vec![image_row, container_row, volume_row, cache_row]
}

fn df_header() -> Value {
    json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"})
}

fn table(rows: Vec<Vec<String>>) -> String {
    let mut tw = TabWriter::docker_table();
    for r in rows {
        tw.push_str(&r.join("\t"));
        tw.push_str("\n");
    }
    tw.finish()
}

fn df_verbose(v: &Value) -> String {
    let now = now_unix();
    let mut out = String::from("Images space usage:\n\n");
    let mut rows = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]
    .map(String::from)
    .to_vec()];
    for img in list(v, "Images") {
        let tags: Vec<&str> = list(img, "RepoTags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let (repo, tag) = match tags.first().filter(|t| **t != "<none>:<none>") {
            Some(t) => match t.rfind(':') {
                Some(p) if !t[p + 1..].contains('/') => {
                    (t[..p].to_string(), t[p + 1..].to_string())
                }
                _ => (t.to_string(), "<none>".to_string()),
            },
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        let (size, shared) = (i(img, "Size"), i(img, "SharedSize"));
        let na_or =
            |n: i64, f: &dyn Fn(i64) -> String| if n < 0 { "N/A".to_string() } else { f(n) };
        rows.push(vec![
            repo,
            tag,
            short_id(s(img, "Id")),
            since(i(img, "Created"), now),
            human_size_with_precision(size as f64, 3),
            na_or(shared, &|n| human_size(n as f64)),
            na_or(shared, &|n| human_size((size - n) as f64)),
            na_or(i(img, "Containers"), &|n| n.to_string()),
        ]);
    }
    out.push_str(&table(rows));

    out.push_str("\nContainers space usage:\n\n");
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in list(v, "Containers") {
        let local_volumes = list(c, "Mounts")
            .iter()
            .filter(|m| s(m, "Driver") == "local")
            .count();
        let names: Vec<&str> = list(c, "Names")
            .iter()
            .filter_map(Value::as_str)
            .map(|n| n.trim_start_matches('/'))
            .collect();
        rows.push(vec![
            short_id(s(c, "Id")),
            s(c, "Image").to_string(),
            ellipsis(
                &serde_json::to_string(s(c, "Command")).unwrap_or_default(),
                20,
            ),
            local_volumes.to_string(),
            human_size_with_precision(i(c, "SizeRw") as f64, 3),
            since(i(c, "Created"), now),
            s(c, "Status").to_string(),
            names.join(","),
        ]);
    }
    out.push_str(&table(rows));

    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for vol in list(v, "Volumes") {
        let u = vol.get("UsageData").cloned().unwrap_or(Value::Null);
        let size = i(&u, "Size");
        rows.push(vec![
            s(vol, "Name").to_string(),
            i(&u, "RefCount").to_string(),
            if size < 0 {
                "N/A".into()
            } else {
                human_size(size as f64)
            },
        ]);
    }
    out.push_str(&table(rows));

    let cache = list(v, "BuildCache");
    let total: i64 = cache.iter().map(|c| i(c, "Size")).sum();
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(total as f64)
    ));
    let mut rows = vec![[
        "CACHE ID",
        "CACHE TYPE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USAGE",
        "SHARED",
    ]
    .map(String::from)
    .to_vec()];
    for c in cache {
        let when = |k: &str| {
            parse_rfc3339(s(c, k))
                .map(|t| since(t, now))
                .unwrap_or_default()
        };
        rows.push(vec![
            s(c, "ID").chars().take(12).collect(),
            s(c, "Type").to_string(),
            human_size(i(c, "Size") as f64),
            when("CreatedAt"),
            when("LastUsedAt"),
            i(c, "UsageCount").to_string(),
            c.get("Shared")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
        ]);
    }
    out.push_str(&table(rows));
    out
}

pub async fn df(e: &Engine, a: DfArgs) -> Result<()> {
    let v = e.get_json("/system/df").await?;
    if a.verbose && a.format.is_none() {
        return emit(&df_verbose(&v));
    }
    let format = ListFormat::new(a.format.as_deref(), DF_TABLE)?;
    emit(&format.render(&df_header(), &df_rows(&v))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_summary() {
        let v = json!({
            "LayersSize": 16_430_000,
            "Images": [
                {"Id": "sha256:a", "Size": 4_800_000, "SharedSize": 0, "Containers": 1, "RepoTags": ["busybox:latest"], "Created": 0},
                {"Id": "sha256:b", "Size": 11_630_000, "SharedSize": 0, "Containers": 0, "RepoTags": [], "Created": 0}
            ],
            "Containers": [{"Id": "c1", "SizeRw": 2, "State": "exited", "Names": ["/x"], "Command": "sh", "Created": 0}],
            "Volumes": [{"Name": "v", "UsageData": {"Size": 36, "RefCount": 1}}],
            "BuildCache": []
        });
        let f = ListFormat::new(None, DF_TABLE).unwrap();
        assert_eq!(
            f.render(&df_header(), &df_rows(&v)).unwrap(),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          2         1         16.43MB   11.63MB (70%)\n\
             Containers      1         0         2B        2B (100%)\n\
             Local Volumes   1         1         36B       0B (0%)\n\
             Build Cache     0         0         0B        0B\n"
        );
        assert!(df_verbose(&v).contains("Images space usage:"));
    }

    #[test]
    fn server_version_section() {
        let v = json!({
            "Platform": {"Name": "berth"},
            "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {
                "ApiVersion": "1.47", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64", "Experimental": "false"}}],
            "Version": "0.1.0", "ApiVersion": "1.47"
        });
        let out = aligned(&render_server_version(&v));
        assert!(
            out.starts_with("Server: berth\n Engine:\n  Version:          0.1.0\n"),
            "{out}"
        );
        assert!(
            out.contains("  API version:      1.47 (minimum version 1.24)\n"),
            "{out}"
        );
    }

    #[test]
    fn info_lists_key_facts() {
        let v = json!({"Containers": 1, "Images": 2, "ServerVersion": "0.1.0", "Driver": "overlayfs",
            "MemTotal": 16_664_358_912_i64, "NCPU": 8, "LiveRestoreEnabled": true, "DockerRootDir": "/var/lib/berth"});
        let out = render_info(&v, false);
        for want in [
            " Containers: 1\n",
            " Images: 2\n",
            " Server Version: 0.1.0\n",
            " Storage Driver: overlayfs\n",
            " CPUs: 8\n",
            " Total Memory: 15.52GiB\n",
            " Docker Root Dir: /var/lib/berth\n",
            " Live Restore Enabled: true\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in {out}");
        }
    }
}
