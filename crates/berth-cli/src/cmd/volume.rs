//! Volume commands: create, ls, inspect, rm, prune. Requests go through
//! [`Engine::raw`] so `inspect` can print the engine's JSON as it came.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Map, Value};

use super::container::escape;
use super::image::json_indent;
use super::{emit, parse_filters};
use crate::cli::{
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::conn::{empty_body, full_body, Engine};
use crate::error::ExitStatus;
use crate::format::{ListFormat, Template};
use crate::units::human_size;

const VOLUMES_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
const VOLUMES_QUIET: &str = "{{.Name}}";
const VOLUMES_RAW: &str = "name: {{.Name}}\ndriver: {{.Driver}}\n";

const UNUSED_VOLUMES_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_VOLUMES_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\u{b}', '\u{c}', '\r'];

// ---- create ----

/// Docker's `opts.ValidateLabel` then `ConvertKVStringsToMap`: `k=v` or a
/// bare `k` (empty value); the key may not be empty or contain whitespace.
pub fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        let trimmed = k.trim_start_matches(WHITESPACE);
        if trimmed.is_empty() {
            bail!("invalid argument {l:?} for \"--label\" flag: invalid label '{l}': empty name");
        }
        if trimmed.contains(WHITESPACE) {
            bail!("invalid argument {l:?} for \"--label\" flag: label '{trimmed}' contains whitespaces");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Docker's `MapOpts` for `--opt`: `k=v`, or a bare `k` with an empty value.
pub fn parse_opts(opts: &[String]) -> BTreeMap<String, String> {
    opts.iter()
        .map(|o| {
            let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The body of `POST /volumes/create` (Go's `omitempty` fields left out).
pub fn create_body(a: &VolumeCreateArgs) -> Result<Value> {
    let name = match (&a.name, &a.name_flag) {
        (Some(p), Some(f)) if p != f => bail!(
            "conflicting options: cannot specify a volume-name through both --name and positional arg"
        ),
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    let mut body = Map::new();
    if !name.is_empty() {
        body.insert("Name".into(), json!(name));
    }
    if !a.driver.is_empty() {
        body.insert("Driver".into(), json!(a.driver));
    }
    let opts = parse_opts(&a.opts);
    if !opts.is_empty() {
        body.insert("DriverOpts".into(), json!(opts));
    }
    let labels = parse_labels(&a.labels)?;
    if !labels.is_empty() {
        body.insert("Labels".into(), json!(labels));
    }
    Ok(Value::Object(body))
}

pub async fn read_json(resp: hyper::Response<hyper::body::Incoming>, what: &str) -> Result<Value> {
    let raw = resp
        .into_body()
        .collect()
        .await
        .context("reading response")?
        .to_bytes();
    if raw.trim_ascii().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&raw).with_context(|| format!("decoding the response of {what}"))
}

pub async fn create(e: &Engine, a: VolumeCreateArgs) -> Result<()> {
    let body = serde_json::to_vec(&create_body(&a)?)?;
    let resp = e
        .raw(
            Method::POST,
            "/volumes/create",
            full_body(body),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    let v = read_json(resp, "/volumes/create").await?;
    let name = v["Name"]
        .as_str()
        .ok_or_else(|| anyhow!("the engine answered without a volume name"))?;
    emit(&format!("{name}\n"))
}

// ---- ls ----

/// Labels as Docker's volume formatter joins them (`k=v,k2=v2`), sorted.
fn join_labels(labels: &Value) -> String {
    match labels.as_object() {
        Some(m) => {
            let mut items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            items.sort();
            items.join(",")
        }
        None => String::new(),
    }
}

/// The fields Docker's `volumeContext` offers to `volume ls --format`.
pub fn volume_context(v: &Value) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let usage = v.get("UsageData").filter(|u| u.is_object());
    let cluster = v.get("ClusterVolume").filter(|c| c.is_object());
    let cluster_str = |f: &dyn Fn(&Value) -> Option<String>| {
        cluster.and_then(f).unwrap_or_else(|| "N/A".to_string())
    };
    json!({
        "Name": s("Name"),
        "Driver": s("Driver"),
        "Scope": s("Scope"),
        "Mountpoint": s("Mountpoint"),
        "Labels": join_labels(&v["Labels"]),
        "Links": usage.map_or("N/A".to_string(), |u| u["RefCount"].as_i64().unwrap_or(0).to_string()),
        "Size": usage.map_or("N/A".to_string(), |u| human_size(u["Size"].as_f64().unwrap_or(0.0))),
        "Group": cluster_str(&|c| c["Spec"]["Group"].as_str().map(str::to_string)),
        "Availability": cluster_str(&|c| c["Spec"]["Availability"].as_str().map(str::to_string)),
        "Status": cluster_str(&|_| None),
    })
}

pub fn volume_header() -> Value {
    json!({
        "Name": "VOLUME NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS",
        "Links": "LINKS",
        "Size": "SIZE",
        "Group": "GROUP",
        "Availability": "AVAILABILITY",
        "Status": "STATUS",
    })
}

/// Docker's `NewVolumeFormat`: `-q` only changes the `table` format.
pub fn ls_format(format: Option<&str>, quiet: bool) -> Result<ListFormat> {
    let user = match format {
        None | Some("") | Some("table") if quiet => Some(VOLUMES_QUIET),
        Some("raw") if quiet => Some("name: {{.Name}}"),
        Some("raw") => Some(VOLUMES_RAW),
        f => f,
    };
    Ok(ListFormat::new(user, VOLUMES_TABLE)?)
}

/// `sortorder.NaturalLess`, which `docker volume ls` sorts names with:
/// runs of digits compare as numbers, digits sort before other bytes.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let ord = (i - nz_a)
            .cmp(&(j - nz_b))
            .then_with(|| a[nz_a..i].cmp(&b[nz_b..j]))
            .then_with(|| nz_a.cmp(&nz_b));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    // Equal so far: the shorter string sorts first.
    a.len().cmp(&b.len())
}

pub fn filters_query(filters: &HashMap<String, Vec<String>>) -> Result<String> {
    if filters.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "?{}",
        serde_urlencoded::to_string([("filters", serde_json::to_string(filters)?)])?
    ))
}

pub async fn list(e: &Engine, a: VolumeLsArgs) -> Result<()> {
    let filters = parse_filters(&a.filter)?;
    let format = ls_format(a.format.as_deref(), a.quiet)?;
    let path = format!("/volumes{}", filters_query(&filters)?);
    let v = e.get_json(&path).await?;
    let mut volumes: Vec<&Value> = v["Volumes"].as_array().into_iter().flatten().collect();
    volumes.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or_default(),
            y["Name"].as_str().unwrap_or_default(),
        )
    });
    let rows: Vec<Value> = volumes.into_iter().map(volume_context).collect();
    emit(&format.render(&volume_header(), &rows)?)
}

// ---- inspect ----

/// Renders `volume inspect` output: Docker's indented JSON array of the
/// engine's own JSON, or the template once per volume.
pub fn render_inspect(found: &[Bytes], template: Option<&Template>) -> Result<String> {
    let mut out = String::new();
    match template {
        Some(t) => {
            for raw in found {
                let v: Value = serde_json::from_slice(raw).context("decoding inspect output")?;
                out.push_str(&t.render(&v, false)?);
                out.push('\n');
            }
        }
        None => {
            let mut joined = Vec::from(&b"["[..]);
            for (i, raw) in found.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(raw.trim_ascii());
            }
            joined.push(b']');
            out.push_str(&json_indent(&String::from_utf8_lossy(&joined), "    "));
            out.push('\n');
        }
    }
    Ok(out)
}

pub async fn inspect(e: &Engine, a: VolumeInspectArgs) -> Result<()> {
    let template = match a.format.as_deref() {
        Some(f) if !f.is_empty() && f != "json" => Some(Template::parse(f)?),
        _ => None,
    };
    let paths: Vec<String> = a
        .names
        .iter()
        .map(|n| format!("/volumes/{}", escape(n)))
        .collect();
    inspect_each(e, &paths, template.as_ref()).await
}

/// `inspect` of several objects: prints those found (JSON array or one
/// template line each), then the errors of the others and exit status 1.
pub async fn inspect_each(e: &Engine, paths: &[String], template: Option<&Template>) -> Result<()> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match e.get_bytes(path).await {
            Ok(raw) => found.push(raw),
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    emit(&render_inspect(&found, template)?)?;
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

// ---- rm ----

pub async fn remove(e: &Engine, a: VolumeRmArgs) -> Result<()> {
    let q = if a.force { "?force=1" } else { "" };
    let mut errors = Vec::new();
    for name in &a.names {
        let path = format!("/volumes/{}{q}", escape(name));
        match e.raw(Method::DELETE, &path, empty_body(), &[]).await {
            Ok(_) => emit(&format!("{name}\n"))?,
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

// ---- prune ----

/// True when API version `v` (`major.minor`) is at least `min`.
pub fn api_at_least(v: &str, min: &str) -> bool {
    let parse = |s: &str| -> (u64, u64) {
        let mut it = s.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    parse(v) >= parse(min)
}

/// The filters and warning of `volume prune`, as Docker's CLI picks them:
/// from API 1.42 the engine prunes only anonymous volumes unless `all=true`.
pub fn prune_plan(
    a: &VolumePruneArgs,
    api_version: &str,
) -> Result<(HashMap<String, Vec<String>>, &'static str)> {
    let mut filters = parse_filters(&a.filter)?;
    let mut warning = UNUSED_VOLUMES_WARNING;
    if api_at_least(api_version, "1.42") {
        if a.all {
            if filters.contains_key("all") {
                bail!("conflicting options: cannot specify both --all and --filter all=1");
            }
            filters.insert("all".into(), vec!["true".into()]);
            warning = ALL_VOLUMES_WARNING;
        }
    } else {
        warning = ALL_VOLUMES_WARNING;
    }
    Ok((filters, warning))
}

/// The report Docker prints after a prune.
pub fn prune_report(v: &Value) -> String {
    let mut out = String::new();
    let deleted: Vec<&str> = v["VolumesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut reclaimed = 0.0;
    if !deleted.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for d in deleted {
            out.push_str(d);
            out.push('\n');
        }
        out.push('\n');
        reclaimed = v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed)
    ));
    out
}

pub async fn prune(e: &Engine, a: VolumePruneArgs) -> Result<()> {
    let (filters, warning) = prune_plan(&a, e.api_version())?;
    if !a.force {
        emit(&format!("{warning} [y/N] "))?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return emit("Total reclaimed space: 0B\n");
        }
    }
    let path = format!("/volumes/prune{}", filters_query(&filters)?);
    let resp = e.raw(Method::POST, &path, empty_body(), &[]).await?;
    let v = read_json(resp, "/volumes/prune").await?;
    emit(&prune_report(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_args(argv: &[&str]) -> VolumeCreateArgs {
        use clap::Parser;
        let mut full = vec!["berth", "volume", "create"];
        full.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(full).unwrap().command {
            Some(crate::cli::Command::Volume(crate::cli::VolumeCommand::Create(a))) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn labels_and_opts() {
        let l = parse_labels(&["a=b".into(), "c".into(), "d=e=f".into()]).unwrap();
        assert_eq!(l["a"], "b");
        assert_eq!(l["c"], "");
        assert_eq!(l["d"], "e=f");
        let e = parse_labels(&["=x".into()]).unwrap_err().to_string();
        assert!(e.contains("empty name"), "{e}");
        let e = parse_labels(&["a b=x".into()]).unwrap_err().to_string();
        assert!(e.contains("contains whitespaces"), "{e}");
        let o = parse_opts(&[
            "type=tmpfs".into(),
            "o=size=100m,uid=1000".into(),
            "x".into(),
        ]);
        assert_eq!(o["type"], "tmpfs");
        assert_eq!(o["o"], "size=100m,uid=1000");
        assert_eq!(o["x"], "");
    }

    #[test]
    fn create_request_body() {
        let a = create_args(&[
            "--label",
            "k=v",
            "-o",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "v1",
        ]);
        assert_eq!(
            create_body(&a).unwrap(),
            json!({
                "Name": "v1",
                "Driver": "local",
                "DriverOpts": {"type": "tmpfs", "device": "tmpfs"},
                "Labels": {"k": "v"},
            })
        );
        let a = create_args(&["-d", "other"]);
        assert_eq!(create_body(&a).unwrap(), json!({"Driver": "other"}));
        let a = create_args(&["--name", "x", "y"]);
        assert!(create_body(&a).is_err());
        let a = create_args(&["--name", "x"]);
        assert_eq!(create_body(&a).unwrap()["Name"], "x");
    }

    fn vol(name: &str) -> Value {
        json!({
            "Name": name,
            "Driver": "local",
            "Mountpoint": format!("/var/lib/berth/volumes/{name}/_data"),
            "CreatedAt": "2024-01-02T03:04:05Z",
            "Labels": {"b": "2", "a": "1"},
            "Scope": "local",
            "Options": null,
        })
    }

    #[test]
    fn ls_table_like_docker() {
        let rows = vec![volume_context(&vol("myvol"))];
        let f = ls_format(None, false).unwrap();
        assert_eq!(
            f.render(&volume_header(), &rows).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     myvol\n"
        );
        let f = ls_format(None, true).unwrap();
        assert_eq!(f.render(&volume_header(), &rows).unwrap(), "myvol\n");
        let f = ls_format(Some("{{.Name}} {{.Labels}} {{.Links}} {{.Size}}"), true).unwrap();
        assert_eq!(
            f.render(&volume_header(), &rows).unwrap(),
            "myvol a=1,b=2 N/A N/A\n"
        );
        let f = ls_format(Some("table {{.Name}}\t{{.Mountpoint}}"), false).unwrap();
        assert_eq!(
            f.render(&volume_header(), &rows).unwrap(),
            "VOLUME NAME   MOUNTPOINT\nmyvol         /var/lib/berth/volumes/myvol/_data\n"
        );
        let f = ls_format(Some("json"), false).unwrap();
        let out = f.render(&volume_header(), &rows).unwrap();
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["Name"], "myvol");
        assert_eq!(v["Availability"], "N/A");
        let f = ls_format(Some("raw"), false).unwrap();
        assert_eq!(
            f.render(&volume_header(), &rows).unwrap(),
            "name: myvol\ndriver: local\n\n"
        );
        let f = ls_format(Some("{{.CreatedAt}}"), false).unwrap();
        assert!(f.render(&volume_header(), &rows).is_err());
    }

    #[test]
    fn ls_usage_data() {
        let mut v = vol("x");
        v["UsageData"] = json!({"RefCount": 2, "Size": 2048});
        let c = volume_context(&v);
        assert_eq!(c["Links"], "2");
        assert_eq!(c["Size"], "2.048kB");
        let mut v = vol("y");
        v["Labels"] = Value::Null;
        assert_eq!(volume_context(&v)["Labels"], "");
    }

    #[test]
    fn natural_order() {
        let mut names = vec!["vol10", "vol2", "a", "vol1", "Vol3", "vol02", "1abc", "vol"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            vec!["1abc", "Vol3", "a", "vol", "vol1", "vol2", "vol02", "vol10"]
        );
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn inspect_output() {
        let raw = vec![
            Bytes::from(r#"{"Name":"a","Driver":"local","Labels":null,"Options":{}}"#),
            Bytes::from(r#"{"Name":"b","Driver":"local","Labels":{"k":"v"},"Options":null}"#),
        ];
        assert_eq!(
            render_inspect(&raw[..1], None).unwrap(),
            "[\n    {\n        \"Name\": \"a\",\n        \"Driver\": \"local\",\n        \
             \"Labels\": null,\n        \"Options\": {}\n    }\n]\n"
        );
        assert_eq!(render_inspect(&[], None).unwrap(), "[]\n");
        let t = Template::parse("{{.Name}} {{.Labels}} {{json .Options}}").unwrap();
        assert_eq!(
            render_inspect(&raw, Some(&t)).unwrap(),
            "a <no value> {}\nb map[k:v] null\n"
        );
    }

    #[test]
    fn prune_filters_and_warning() {
        let args = |all: bool, filter: &[&str]| VolumePruneArgs {
            all,
            force: true,
            filter: filter.iter().map(|s| s.to_string()).collect(),
        };
        let (f, w) = prune_plan(&args(false, &["label=a=b"]), "1.47").unwrap();
        assert_eq!(w, UNUSED_VOLUMES_WARNING);
        assert!(w.starts_with("WARNING! This will remove anonymous local volumes"));
        assert_eq!(f.len(), 1);
        assert_eq!(f["label"], vec!["a=b"]);
        let (f, w) = prune_plan(&args(true, &[]), "1.47").unwrap();
        assert_eq!(w, ALL_VOLUMES_WARNING);
        assert_eq!(f["all"], vec!["true"]);
        assert!(prune_plan(&args(true, &["all=1"]), "1.47").is_err());
        let (f, w) = prune_plan(&args(true, &[]), "1.41").unwrap();
        assert_eq!(w, ALL_VOLUMES_WARNING);
        assert!(f.is_empty());
        assert!(prune_plan(&args(false, &["bad"]), "1.47").is_err());
        assert_eq!(filters_query(&f).unwrap(), "", "no filters means no query");
        let (f, _) = prune_plan(&args(true, &[]), "1.47").unwrap();
        assert_eq!(
            filters_query(&f).unwrap(),
            "?filters=%7B%22all%22%3A%5B%22true%22%5D%7D"
        );
    }

    #[test]
    fn versions() {
        assert!(api_at_least("1.47", "1.42"));
        assert!(api_at_least("1.42", "1.42"));
        assert!(!api_at_least("1.41", "1.42"));
        assert!(api_at_least("2.0", "1.42"));
        assert!(!api_at_least("1.9", "1.42"));
    }

    #[test]
    fn prune_report_like_docker() {
        let v = json!({"VolumesDeleted": ["a", "b"], "SpaceReclaimed": 1_500_000});
        assert_eq!(
            prune_report(&v),
            "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 1.5MB\n"
        );
        let v = json!({"VolumesDeleted": null, "SpaceReclaimed": 0});
        assert_eq!(prune_report(&v), "Total reclaimed space: 0B\n");
    }

    #[test]
    fn grammar() {
        use crate::cli::{Cli, Command, VolumeCommand};
        use clap::Parser;
        let parse = |argv: &[&str]| {
            let mut full = vec!["berth", "volume"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).map(|c| c.command)
        };
        assert!(matches!(
            parse(&["ls", "-q", "-f", "dangling=true", "--filter", "name=x"]).unwrap(),
            Some(Command::Volume(VolumeCommand::Ls(a))) if a.quiet && a.filter.len() == 2
        ));
        assert!(parse(&["list"]).is_ok());
        assert!(parse(&["remove", "x"]).is_ok());
        assert!(parse(&["rm"]).is_err());
        assert!(parse(&["inspect"]).is_err());
        assert!(matches!(
            parse(&["rm", "-f", "a", "b"]).unwrap(),
            Some(Command::Volume(VolumeCommand::Rm(a))) if a.force && a.names == ["a", "b"]
        ));
        assert!(matches!(
            parse(&["prune", "-a", "-f", "--filter", "label=x"]).unwrap(),
            Some(Command::Volume(VolumeCommand::Prune(a))) if a.all && a.force && a.filter == ["label=x"]
        ));
        assert!(matches!(
            parse(&["inspect", "-f", "{{.Name}}", "a", "b"]).unwrap(),
            Some(Command::Volume(VolumeCommand::Inspect(a))) if a.names.len() == 2 && a.format.is_some()
        ));
        assert!(matches!(
            parse(&["create"]).unwrap(),
            Some(Command::Volume(VolumeCommand::Create(a))) if a.name.is_none() && a.driver == "local"
        ));
    }
}
