//! Steps that change only the image config (ENV, LABEL, EXPOSE, USER,
//! VOLUME, CMD, ENTRYPOINT, HEALTHCHECK, SHELL, STOPSIGNAL, ARG, ONBUILD,
//! MAINTAINER) and `WORKDIR`, which also creates its directory in a layer
//! as the classic builder does.

use berth_build::{Command, Healthcheck, Instruction};
use berth_image::ChildOptions;
use serde_json::{json, Value};

use super::cache::KeyBuilder;
use super::cache_from::Step;
use super::history::{go_duration, go_quote_list, nop, nop_layer};
use super::{BuildError, Builder, Result, StageState};

/// The command a CMD/ENTRYPOINT/HEALTHCHECK stores: exec form as is, shell
/// form through the stage's shell.
fn command_argv(st: &StageState, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = st.shell();
            v.push(s.clone());
            v
        }
    }
}

/// `EXPOSE` ports as `ExposedPorts` keys (`80` → `80/tcp`, ranges expanded).
fn port_keys(spec: &str) -> Vec<String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) if lo <= hi => (lo..=hi).map(|p| format!("{p}/{proto}")).collect(),
        _ => vec![format!("{ports}/{proto}")],
    }
}

/// Go's `%q` of Docker's `HealthConfig` pointer, as the classic builder
/// writes it into history.
fn healthcheck_comment(test: &[String], h: &Healthcheck) -> String {
    let d = |v: Option<i64>| format!("\"{}\"", go_duration(v.unwrap_or(0)));
    let (i, t, sp, si, r) = match h {
        Healthcheck::None => (None, None, None, None, None),
        Healthcheck::Cmd {
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
            ..
        } => (
            *interval,
            *timeout,
            *start_period,
            *start_interval,
            *retries,
        ),
    };
    let retries = r.unwrap_or(0);
    let retries = if (0x20..0x7f).contains(&retries) {
        format!("'{}'", char::from(retries as u8))
    } else {
        format!("'\\x{retries:02x}'")
    };
    format!(
        "HEALTHCHECK &{{{} {} {} {} {} {retries}}}",
        go_quote_list(test),
        d(i),
        d(t),
        d(sp),
        d(si)
    )
}

fn healthcheck_json(test: Vec<String>, h: &Healthcheck) -> Value {
    let mut v = json!({ "Test": test });
    if let Healthcheck::Cmd {
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
        ..
    } = h
    {
        for (k, val) in [
            ("Interval", interval),
            ("Timeout", timeout),
            ("StartPeriod", start_period),
            ("StartInterval", start_interval),
            ("Retries", retries),
        ] {
            if let Some(x) = val.filter(|x| *x != 0) {
                v[k] = json!(x);
            }
        }
    }
    v
}

/// Lexically cleans an absolute path (`/a/./b/../c` → `/a/c`).
pub(crate) fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Builder<'_> {
    /// Applies a config-only instruction and commits an empty layer.
    pub(super) fn metadata(&mut self, st: &mut StageState, i: Instruction) -> Result<()> {
        let key_text = serde_json::to_string(&i).expect("instruction serializes");
        let comment = match i {
            Instruction::Env(kvs) => {
                let mut words = Vec::new();
                for kv in kvs {
                    st.set_env(&kv.key, &kv.value);
                    words.push(format!("{}={}", kv.key, kv.value));
                }
                format!("ENV {}", words.join(" "))
            }
            Instruction::Label(kvs) => {
                let labels = st.config.labels.get_or_insert_with(Default::default);
                let mut words = Vec::new();
                for kv in kvs {
                    labels.insert(kv.key.clone(), kv.value.clone());
                    words.push(format!("{}={}", kv.key, kv.value));
                }
                format!("LABEL {}", words.join(" "))
            }
            Instruction::Expose(ports) => {
                let map = st.config.exposed_ports.get_or_insert_with(Default::default);
                for p in &ports {
                    for k in port_keys(p) {
                        map.insert(k, json!({}));
                    }
                }
                format!("EXPOSE {}", ports.join(" "))
            }
            Instruction::User(u) => {
                st.config.user = Some(u.clone()).filter(|u| !u.is_empty());
                format!("USER {u}")
            }
            Instruction::Volume(v) => {
                let map = st.config.volumes.get_or_insert_with(Default::default);
                for p in &v {
                    map.insert(p.clone(), json!({}));
                }
                format!("VOLUME [{}]", v.join(" "))
            }
            Instruction::Stopsignal(s) => {
                st.config.stop_signal = Some(s.clone());
                format!("STOPSIGNAL {s}")
            }
            Instruction::Cmd(c) => {
                let argv = command_argv(st, &c);
                st.config.cmd = Some(argv.clone());
                st.cmd_set = true;
                format!("CMD {}", go_quote_list(&argv))
            }
            Instruction::Entrypoint(c) => {
                let argv = command_argv(st, &c);
                st.config.entrypoint = Some(argv.clone());
                // The reference: ENTRYPOINT resets a CMD inherited from the
                // base image, not one set earlier in this stage.
                if !st.cmd_set {
                    st.config.cmd = None;
                }
                format!("ENTRYPOINT {}", go_quote_list(&argv))
            }
            Instruction::Healthcheck(h) => {
                let test = match &h {
                    Healthcheck::None => vec!["NONE".to_string()],
                    Healthcheck::Cmd { .. } => h.test(),
                };
                let comment = healthcheck_comment(&test, &h);
                st.config.healthcheck = Some(healthcheck_json(test, &h));
                comment
            }
            Instruction::Shell(v) => {
                st.config.shell = Some(v.clone());
                // The classic builder writes Go's `%v` of the slice here
                // (`SHELL [/bin/sh -ec]`), unlike CMD's `%q`.
                format!("SHELL [{}]", v.join(" "))
            }
            Instruction::Arg(decls) => {
                let mut words = Vec::new();
                for d in decls {
                    st.scope.declare(&d.name, d.default.as_deref());
                    words.push(match &d.default {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    });
                }
                format!("ARG {}", words.join(" "))
            }
            Instruction::Onbuild(o) => {
                st.config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(o.expression.clone());
                format!("ONBUILD {}", o.expression)
            }
            Instruction::Maintainer(m) => format!("MAINTAINER {m}"),
            other => {
                return Err(BuildError::new(format!(
                    "{} is not a metadata instruction",
                    other.keyword()
                )))
            }
        };
        let portable = KeyBuilder::default()
            .part("meta", &key_text)
            .part("comment", &comment)
            .finish();
        let created_by = nop(&st.shell(), &comment);
        let step = Step::new(&st.parent_key(), portable, created_by.clone()).empty_layer();
        if self.cached(st, &step)? {
            return Ok(());
        }
        let id = self
            .service
            .images
            .store
            .commit_child(
                st.image.as_ref(),
                ChildOptions {
                    config: st.config.clone(),
                    created_by,
                    layer: None,
                    cache_key: Some(step.portable.clone()),
                },
            )
            .map_err(|e| BuildError::new(e.to_string()))?;
        self.record(st, &step, id);
        Ok(())
    }

    /// `WORKDIR`: sets the working directory (relative to the previous one)
    /// and creates it in a new layer.
    pub(super) fn workdir(&mut self, st: &mut StageState, path: &str) -> Result<()> {
        let base = st.config.working_dir.clone().unwrap_or_else(|| "/".into());
        let abs = if path.starts_with('/') {
            clean_abs(path)
        } else {
            clean_abs(&format!("{base}/{path}"))
        };
        st.config.working_dir = Some(abs.clone());
        let comment = format!("WORKDIR {abs}");
        let portable = KeyBuilder::default().part("workdir", &abs).finish();
        let step = Step::new(&st.parent_key(), portable, nop_layer(&st.shell(), &comment));
        if self.cached(st, &step)? {
            return Ok(());
        }
        let diff = self.scratch("diff");
        std::fs::create_dir_all(&diff).map_err(|e| super::err("creating a layer dir", e))?;
        {
            let view_dir = self.scratch("view");
            let view = super::view::RootView::open(self.service, st.image.as_ref(), &view_dir)?;
            super::copy::make_dirs(view.path(), &diff, &abs, (0, 0))?;
        }
        let id = self.commit_dir(st, &diff, &step)?;
        self.record(st, &step, id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_paths() {
        assert_eq!(port_keys("80"), vec!["80/tcp"]);
        assert_eq!(port_keys("53/UDP"), vec!["53/udp"]);
        assert_eq!(port_keys("8000-8001"), vec!["8000/tcp", "8001/tcp"]);
        assert_eq!(clean_abs("/a/./b/../c/"), "/a/c");
        assert_eq!(clean_abs("/"), "/");
    }

    #[test]
    fn healthcheck_history() {
        let h = Healthcheck::Cmd {
            test: Command::Shell("true".into()),
            interval: Some(30_000_000_000),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some(3),
        };
        assert_eq!(
            healthcheck_comment(&h.test(), &h),
            r#"HEALTHCHECK &{["CMD-SHELL" "true"] "30s" "0s" "0s" "0s" '\x03'}"#
        );
    }
}
