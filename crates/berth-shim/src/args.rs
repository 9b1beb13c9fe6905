//! The command line of `berth shim start`, built by the daemon
//! ([`ShimArgs::to_args`]) and parsed by the shim ([`ShimArgs::parse`]).
//! Hand-written so the daemon side needs no argument-parser dependency.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::ShimError;

/// Docker's json-file `max-size`, berth's default (Docker's is unlimited).
pub const DEFAULT_LOG_MAX_SIZE: u64 = 20 * 1024 * 1024;
/// Docker's json-file `max-file`, berth's default.
pub const DEFAULT_LOG_MAX_FILE: u32 = 3;

/// Everything one shim needs to run one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// The container id (also the runtime's id for it).
    pub id: String,
    /// The OCI bundle: `config.json` and the mounted rootfs.
    pub bundle: PathBuf,
    /// The shim's own directory: `shim.sock`, `exit.json`, `shim.log`,
    /// `runtime/` (the runtime's state).
    pub state_dir: PathBuf,
    /// The json-file log.
    pub log_path: PathBuf,
    /// Give the container a pty (must match `process.terminal`).
    pub tty: bool,
    /// Keep the container's stdin open for attachers.
    pub stdin: bool,
    /// Run this runc-compatible binary instead of the embedded libcontainer.
    pub runtime: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_file: u32,
    /// Where compiled seccomp programs are kept between containers
    /// (`crate::seccomp`); without it every start compiles its profile.
    pub seccomp_cache: Option<PathBuf>,
}

impl ShimArgs {
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        log_path: impl Into<PathBuf>,
    ) -> Self {
        ShimArgs {
            id: id.into(),
            bundle: bundle.into(),
            state_dir: state_dir.into(),
            log_path: log_path.into(),
            tty: false,
            stdin: false,
            runtime: None,
            log_max_size: DEFAULT_LOG_MAX_SIZE,
            log_max_file: DEFAULT_LOG_MAX_FILE,
            seccomp_cache: None,
        }
    }

    /// The arguments that follow `berth shim start`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--log-path".into(),
            self.log_path.clone().into(),
            "--log-max-size".into(),
            self.log_max_size.to_string().into(),
            "--log-max-file".into(),
            self.log_max_file.to_string().into(),
        ];
        if self.tty {
            v.push("--tty".into());
        }
        if self.stdin {
            v.push("--stdin".into());
        }
        if let Some(rt) = &self.runtime {
            v.push("--runtime".into());
            v.push(rt.clone().into());
        }
        if let Some(dir) = &self.seccomp_cache {
            v.push("--seccomp-cache".into());
            v.push(dir.clone().into());
        }
        v
    }

    /// Parse the arguments that follow `berth shim start`.
    pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Self, ShimError> {
        let mut id = None;
        let mut bundle = None;
        let mut state_dir = None;
        let mut log_path = None;
        let mut out = ShimArgs::new("", "", "", "");
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let arg = arg
                .into_string()
                .map_err(|a| ShimError::InvalidArgs(format!("unexpected argument {a:?}")))?;
            // Accept both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(OsString::from(v))),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<OsString, ShimError> {
                match inline.clone().or_else(|| it.next()) {
                    Some(v) => Ok(v),
                    None => Err(ShimError::InvalidArgs(format!("{name} needs a value"))),
                }
            };
            match flag.as_str() {
                "--id" => id = Some(utf8(value("--id")?, "--id")?),
                "--bundle" => bundle = Some(PathBuf::from(value("--bundle")?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value("--state-dir")?)),
                "--log-path" => log_path = Some(PathBuf::from(value("--log-path")?)),
                "--runtime" => out.runtime = Some(PathBuf::from(value("--runtime")?)),
                "--seccomp-cache" => {
                    out.seccomp_cache = Some(PathBuf::from(value("--seccomp-cache")?))
                }
                "--log-max-size" => {
                    out.log_max_size =
                        parse_size(&utf8(value("--log-max-size")?, "--log-max-size")?)?
                }
                "--log-max-file" => {
                    let v = utf8(value("--log-max-file")?, "--log-max-file")?;
                    out.log_max_file = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        ShimError::InvalidArgs(format!("--log-max-file {v:?}: want a count >= 1"))
                    })?;
                }
                "--tty" if inline.is_none() => out.tty = true,
                "--stdin" if inline.is_none() => out.stdin = true,
                other => {
                    return Err(ShimError::InvalidArgs(format!(
                        "unknown argument {other:?}"
                    )))
                }
            }
        }
        let missing = |name: &str| ShimError::InvalidArgs(format!("{name} is required"));
        out.id = id.ok_or_else(|| missing("--id"))?;
        out.bundle = bundle.ok_or_else(|| missing("--bundle"))?;
        out.state_dir = state_dir.ok_or_else(|| missing("--state-dir"))?;
        out.log_path = log_path.ok_or_else(|| missing("--log-path"))?;
        if out.id.is_empty() || out.id.contains('/') || out.id == "." || out.id == ".." {
            return Err(ShimError::InvalidArgs(format!(
                "invalid container id {:?}",
                out.id
            )));
        }
        Ok(out)
    }
}

fn utf8(v: OsString, name: &str) -> Result<String, ShimError> {
    v.into_string()
        .map_err(|v| ShimError::InvalidArgs(format!("{name} {v:?} is not UTF-8")))
}

/// A byte count, optionally with Docker's `k`, `m` or `g` suffix (powers of
/// 1024, as in Docker's `max-size`). The daemon checks `--log-opt max-size`
/// with it too, so both sides accept the same values.
pub fn parse_size(s: &str) -> Result<u64, ShimError> {
    let bad = || ShimError::InvalidArgs(format!("--log-max-size {s:?}: want bytes, e.g. 20m"));
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower, 1),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(mult).filter(|n| *n > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn round_trips() {
        let mut a = ShimArgs::new("c1", "/b", "/s", "/l/c1-json.log");
        a.tty = true;
        a.stdin = true;
        a.runtime = Some("/usr/sbin/runc".into());
        a.log_max_size = 1234;
        a.log_max_file = 5;
        a.seccomp_cache = Some("/run/berth/seccomp".into());
        assert_eq!(ShimArgs::parse(a.to_args()).unwrap(), a);
        let plain = ShimArgs::new("c2", "/b", "/s", "/l");
        assert_eq!(ShimArgs::parse(plain.to_args()).unwrap(), plain);
    }

    #[test]
    fn parses_documented_form() {
        let a = ShimArgs::parse(os(&[
            "--id",
            "x",
            "--bundle",
            "/b",
            "--state-dir=/s",
            "--log-path",
            "/l",
            "--log-max-size",
            "10m",
            "--stdin",
        ]))
        .unwrap();
        assert_eq!(a.state_dir, PathBuf::from("/s"));
        assert_eq!(a.log_max_size, 10 << 20);
        assert_eq!(a.log_max_file, DEFAULT_LOG_MAX_FILE);
        assert!(a.stdin && !a.tty && a.runtime.is_none());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &["--bundle", "/b", "--state-dir", "/s", "--log-path", "/l"][..],
            &[
                "--id",
                "a/b",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log-path",
                "/l",
            ],
            &[
                "--id",
                "x",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log-path",
                "/l",
                "--what",
            ],
            &[
                "--id",
                "x",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log-path",
            ],
            &[
                "--id",
                "x",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log-path",
                "/l",
                "--log-max-size",
                "0",
            ],
            &[
                "--id",
                "x",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log-path",
                "/l",
                "--log-max-file",
                "0",
            ],
        ] {
            assert!(ShimArgs::parse(os(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert_eq!(parse_size("3").unwrap(), 3);
        assert!(parse_size("m").is_err());
    }
}
