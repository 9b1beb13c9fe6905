//! Build arguments: `--build-arg` values, `ARG` declarations and the
//! arguments Docker defines by itself.
//!
//! - **Predefined proxy args** (`HTTP_PROXY`, `no_proxy`, …) may be passed
//!   without an `ARG`; they reach `RUN` but stay out of history and the
//!   cache key unless the Dockerfile declares them.
//! - **Platform args** (`TARGETPLATFORM`, `BUILDARCH`, …) are defined in the
//!   global scope (usable in `FROM`); inside a stage they need an `ARG`.
//! - An `ARG` inside a stage takes the `--build-arg` value, else its
//!   default, else the value of the global `ARG` of that name.
//!
//! [`ArgScope`] tracks this for one stage as the executor walks it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::expand::Env;

/// Docker's predefined args ("Predefined ARGs" in the reference).
pub const PREDEFINED_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub fn is_predefined(name: &str) -> bool {
    PREDEFINED_ARGS.contains(&name)
}

/// Build args the builder itself reads; never reported as unused.
pub fn is_builtin(name: &str) -> bool {
    name.starts_with("BUILDKIT_") || name == "SOURCE_DATE_EPOCH"
}

/// An OCI platform (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on, in OCI/Go names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: (architecture == "arm").then(|| "v7".to_string()),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.to_ascii_lowercase(),
            architecture: architecture.to_ascii_lowercase(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The automatic platform args, in the global scope.
pub fn platform_args(build: &Platform, target: &Platform) -> Env {
    let mut env = Env::new();
    for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
        env.set(format!("{prefix}PLATFORM"), p.to_string());
        env.set(format!("{prefix}OS"), p.os.clone());
        env.set(format!("{prefix}ARCH"), p.architecture.clone());
        env.set(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    env
}

/// The args in effect in one stage.
#[derive(Debug, Clone)]
pub struct ArgScope {
    build_args: BTreeMap<String, String>,
    /// Global (pre-FROM) args with values, platform args included.
    globals: Env,
    declared: Vec<String>,
    values: Env,
}

impl ArgScope {
    /// A scope for a new stage; `inherited` carries the args of a parent
    /// stage (`FROM parent`), empty for an image base.
    pub fn new(
        build_args: &BTreeMap<String, String>,
        globals: &Env,
        inherited: Option<&ArgScope>,
    ) -> ArgScope {
        let mut s = ArgScope {
            build_args: build_args.clone(),
            globals: globals.clone(),
            declared: Vec::new(),
            values: Env::new(),
        };
        if let Some(p) = inherited {
            s.declared = p.declared.clone();
            s.values = p.values.clone();
        }
        s
    }

    /// Declares `name` with its (already expanded) default; returns the
    /// value it takes.
    pub fn declare(&mut self, name: &str, default: Option<&str>) -> Option<String> {
        let value = self
            .build_args
            .get(name)
            .cloned()
            .or_else(|| default.map(str::to_string))
            .or_else(|| self.globals.get(name).map(str::to_string));
        if !self.declared.iter().any(|d| d == name) {
            self.declared.push(name.to_string());
        }
        match &value {
            Some(v) => self.values.set(name, v.clone()),
            None => self.values.remove(name),
        }
        value
    }

    /// Declared args that have a value: usable for expansion.
    pub fn values(&self) -> &Env {
        &self.values
    }

    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.iter().any(|d| d == name)
    }

    /// The args a `RUN` sees: declared ones plus undeclared predefined
    /// proxy args given with `--build-arg`.
    pub fn run_env(&self) -> Env {
        let mut env = self.values.clone();
        for (k, v) in &self.build_args {
            if is_predefined(k) && !self.is_declared(k) {
                env.set(k.clone(), v.clone());
            }
        }
        env
    }

    /// The args that belong in history and the cache key: only declared
    /// ones (undeclared proxy args are left out, as Docker does).
    pub fn cache_env(&self) -> Env {
        self.values.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_rules() {
        let ba: BTreeMap<String, String> = [("user", "what_user"), ("HTTP_PROXY", "http://p")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let globals: Env = [("VERSION", "latest")].into_iter().collect();
        let mut s = ArgScope::new(&ba, &globals, None);
        assert_eq!(
            s.declare("user", Some("some_user")).as_deref(),
            Some("what_user")
        );
        assert_eq!(s.declare("VERSION", None).as_deref(), Some("latest"));
        assert_eq!(s.declare("nothing", None), None);
        assert_eq!(s.run_env().get("HTTP_PROXY"), Some("http://p"));
        assert_eq!(s.cache_env().get("HTTP_PROXY"), None);
        s.declare("HTTP_PROXY", None);
        assert_eq!(s.cache_env().get("HTTP_PROXY"), Some("http://p"));
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        let env = platform_args(&Platform::parse("linux/amd64").unwrap(), &p);
        assert_eq!(env.get("TARGETARCH"), Some("arm"));
        assert_eq!(env.get("TARGETVARIANT"), Some("v7"));
        assert_eq!(env.get("BUILDPLATFORM"), Some("linux/amd64"));
        assert!(Platform::parse("linux").is_none());
        assert_eq!(Platform::host().os, "linux");
    }
}
