//! Seccomp: moby's profile format translated into the runtime spec's
//! `linux.seccomp`.
//!
//! A moby profile is an allow-list with conditions the runtime spec cannot
//! express: a rule may apply only on some architectures (`includes.arches`,
//! Go names such as `amd64`), only when the container holds a capability
//! (`includes.caps`), only when it does not (`excludes.caps`), or only from a
//! kernel version on (`includes.minKernel`). Translation resolves those
//! conditions for one container — its bounding capabilities and the host
//! architecture — and keeps the surviving rules in profile order, as moby's
//! `profiles/seccomp.setupSeccomp` does. The result lists the native
//! architecture and its compat sub-architectures from the profile's
//! `archMap`, so 32-bit syscall entry points are filtered too.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Serialize};

use crate::SpecError;

/// moby's default profile (moby/profiles, Apache-2.0), unchanged.
pub const DOCKER_DEFAULT_PROFILE: &str = include_str!("seccomp-default.json");

/// The architecture a profile is resolved for: the host's, since containers
/// run natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompArch {
    X86_64,
    Aarch64,
    S390x,
    Riscv64,
    Ppc64le,
}

impl SeccompArch {
    /// The architecture this crate was compiled for, if the profile knows it.
    pub fn host() -> Option<SeccompArch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(SeccompArch::X86_64),
            "aarch64" => Some(SeccompArch::Aarch64),
            "s390x" => Some(SeccompArch::S390x),
            "riscv64" => Some(SeccompArch::Riscv64),
            "powerpc64" if cfg!(target_endian = "little") => Some(SeccompArch::Ppc64le),
            _ => None,
        }
    }

    /// Go's `runtime.GOARCH` name, which `includes.arches` uses.
    pub fn go_name(self) -> &'static str {
        match self {
            SeccompArch::X86_64 => "amd64",
            SeccompArch::Aarch64 => "arm64",
            SeccompArch::S390x => "s390x",
            SeccompArch::Riscv64 => "riscv64",
            SeccompArch::Ppc64le => "ppc64le",
        }
    }

    /// libseccomp's name, which `archMap` uses.
    pub fn scmp_name(self) -> &'static str {
        match self {
            SeccompArch::X86_64 => "SCMP_ARCH_X86_64",
            SeccompArch::Aarch64 => "SCMP_ARCH_AARCH64",
            SeccompArch::S390x => "SCMP_ARCH_S390X",
            SeccompArch::Riscv64 => "SCMP_ARCH_RISCV64",
            SeccompArch::Ppc64le => "SCMP_ARCH_PPC64LE",
        }
    }
}

impl Default for SeccompArch {
    fn default() -> Self {
        SeccompArch::host().unwrap_or(SeccompArch::X86_64)
    }
}

/// A moby-format profile (`profiles/seccomp/seccomp.go`), as far as
/// translation needs it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<RuleArg>>,
    #[serde(default)]
    includes: Option<Condition>,
    #[serde(default)]
    excludes: Option<Condition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleArg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Docker's default seccomp profile resolved for a container whose bounding
/// set is `caps` (`CAP_`-prefixed) on `arch`.
///
/// Rules gated on a minimum kernel are kept: berth requires a kernel newer
/// than any `minKernel` in the profile (the newest is 4.8).
pub fn docker_default_seccomp(caps: &[String], arch: SeccompArch) -> LinuxSeccomp {
    translate_profile(DOCKER_DEFAULT_PROFILE, caps, arch, None)
        .expect("the embedded default seccomp profile translates")
}

/// Translates a moby-format profile (`--security-opt seccomp=<file>`
/// contents, or the default) for one container.
///
/// `kernel` is the host's `(major, minor)`; `None` treats every `minKernel`
/// condition as met.
pub fn translate_profile(
    profile_json: &str,
    caps: &[String],
    arch: SeccompArch,
    kernel: Option<(u32, u32)>,
) -> Result<LinuxSeccomp, SpecError> {
    let profile: Profile =
        serde_json::from_str(profile_json).map_err(|e| SpecError::InvalidSeccomp {
            reason: e.to_string(),
        })?;

    let has_arches = profile
        .architectures
        .as_ref()
        .is_some_and(|a| !a.is_empty());
    let has_map = profile.arch_map.as_ref().is_some_and(|a| !a.is_empty());
    if has_arches && has_map {
        return Err(SpecError::InvalidSeccomp {
            reason: "both 'architectures' and 'archMap' are specified, use one".into(),
        });
    }
    let mut arch_names: Vec<String> = profile.architectures.unwrap_or_default();
    if let Some(entry) = profile
        .arch_map
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.architecture == arch.scmp_name())
    {
        arch_names.push(entry.architecture);
        arch_names.extend(entry.sub_architectures.unwrap_or_default());
    }
    let architectures = arch_names
        .iter()
        .map(|name| parse_arch(name))
        .collect::<Result<Vec<_>, _>>()?;

    let mut syscalls = Vec::new();
    for rule in profile.syscalls.unwrap_or_default() {
        let names = match (rule.name, rule.names) {
            (Some(_), Some(names)) if !names.is_empty() => {
                return Err(SpecError::InvalidSeccomp {
                    reason: "a rule uses both 'name' and 'names'".into(),
                })
            }
            (Some(name), _) if !name.is_empty() => vec![name],
            (_, names) => names.unwrap_or_default(),
        };
        if !applies(
            rule.includes.as_ref(),
            rule.excludes.as_ref(),
            caps,
            arch,
            kernel,
        )? {
            continue;
        }
        let mut call = LinuxSyscall::default();
        call.set_names(names);
        call.set_action(rule.action);
        call.set_errno_ret(rule.errno_ret);
        if let Some(args) = rule.args.filter(|a| !a.is_empty()) {
            let args = args
                .into_iter()
                .map(|a| {
                    let mut arg = LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .op(a.op);
                    if a.value_two != 0 {
                        arg = arg.value_two(a.value_two);
                    }
                    arg.build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            call.set_args(Some(args));
        }
        syscalls.push(call);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(profile.default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
    seccomp.set_flags(profile.flags.filter(|f| !f.is_empty()));
    seccomp.set_listener_path(profile.listener_path.map(Into::into));
    seccomp.set_listener_metadata(profile.listener_metadata);
    seccomp.set_syscalls(Some(syscalls));
    Ok(seccomp)
}

fn parse_arch(name: &str) -> Result<Arch, SpecError> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
        SpecError::InvalidSeccomp {
            reason: format!("unknown architecture \"{name}\""),
        }
    })
}

/// moby's rule filter: any excluded arch or held excluded cap drops the rule;
/// every included cap must be held and the arch listed.
fn applies(
    includes: Option<&Condition>,
    excludes: Option<&Condition>,
    caps: &[String],
    arch: SeccompArch,
    kernel: Option<(u32, u32)>,
) -> Result<bool, SpecError> {
    let holds = |c: &String| caps.iter().any(|have| have == c);
    if let Some(ex) = excludes {
        if ex
            .arches
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|a| a == arch.go_name())
        {
            return Ok(false);
        }
        if ex.caps.as_deref().unwrap_or_default().iter().any(holds) {
            return Ok(false);
        }
        if let Some(min) = &ex.min_kernel {
            if kernel_at_least(kernel, min)? {
                return Ok(false);
            }
        }
    }
    if let Some(inc) = includes {
        let arches = inc.arches.as_deref().unwrap_or_default();
        if !arches.is_empty() && !arches.iter().any(|a| a == arch.go_name()) {
            return Ok(false);
        }
        if !inc.caps.as_deref().unwrap_or_default().iter().all(holds) {
            return Ok(false);
        }
        if let Some(min) = &inc.min_kernel {
            if !kernel_at_least(kernel, min)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn kernel_at_least(kernel: Option<(u32, u32)>, min: &str) -> Result<bool, SpecError> {
    let bad = || SpecError::InvalidSeccomp {
        reason: format!("invalid minKernel \"{min}\""),
    };
    let (major, minor) = min.split_once('.').ok_or_else(bad)?;
    let want = (
        major.parse::<u32>().map_err(|_| bad())?,
        minor.parse::<u32>().map_err(|_| bad())?,
    );
    Ok(match kernel {
        None => true,
        Some(have) => have >= want,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::default_capabilities;

    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        seccomp
            .syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|c| {
                c.action() == LinuxSeccompAction::ScmpActAllow
                    && c.names().iter().any(|n| n == name)
            })
            .cloned()
            .collect()
    }

    #[test]
    fn default_profile_denies_namespace_and_keyring_syscalls() {
        let s = docker_default_seccomp(&default_capabilities(), SeccompArch::X86_64);
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        for name in [
            "unshare", "mount", "umount2", "keyctl", "add_key", "setns", "bpf", "reboot",
        ] {
            assert!(allowed(&s, name).is_empty(), "{name} must not be allowed");
        }
        // ptrace (minKernel 4.8) and chroot (CAP_SYS_CHROOT is a default) are.
        assert!(!allowed(&s, "ptrace").is_empty());
        assert!(!allowed(&s, "chroot").is_empty());
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags() {
        let s = docker_default_seccomp(&default_capabilities(), SeccompArch::X86_64);
        let clone = allowed(&s, "clone");
        assert_eq!(clone.len(), 1);
        let args = clone[0]
            .args()
            .as_ref()
            .expect("clone has an argument filter");
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), 0x7E02_0000);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        // clone3 answers ENOSYS so libc falls back to the filtered clone.
        let clone3: Vec<_> = s
            .syscalls()
            .as_deref()
            .unwrap()
            .iter()
            .filter(|c| c.names() == &["clone3".to_string()])
            .collect();
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn personality_only_with_known_arguments() {
        let s = docker_default_seccomp(&default_capabilities(), SeccompArch::X86_64);
        let values: Vec<u64> = allowed(&s, "personality")
            .iter()
            .map(|c| {
                let args = c.args().as_ref().expect("personality is argument-filtered");
                assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpEq);
                args[0].value()
            })
            .collect();
        assert_eq!(values, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn sys_admin_unlocks_mount_and_unfilters_clone() {
        let mut caps = default_capabilities();
        caps.push("CAP_SYS_ADMIN".into());
        let s = docker_default_seccomp(&caps, SeccompArch::X86_64);
        for name in ["mount", "unshare", "setns", "clone", "clone3"] {
            let rules = allowed(&s, name);
            assert!(
                rules.iter().any(|r| r.args().is_none()),
                "{name} unconditionally allowed"
            );
        }
    }

    #[test]
    fn architectures_follow_the_host() {
        let x86 = docker_default_seccomp(&default_capabilities(), SeccompArch::X86_64);
        assert_eq!(
            x86.architectures().as_deref().unwrap(),
            &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert!(!allowed(&x86, "arch_prctl").is_empty());
        assert!(allowed(&x86, "set_tls").is_empty());
        let arm = docker_default_seccomp(&default_capabilities(), SeccompArch::Aarch64);
        assert_eq!(
            arm.architectures().as_deref().unwrap(),
            &[Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        assert!(allowed(&arm, "arch_prctl").is_empty());
        assert!(!allowed(&arm, "set_tls").is_empty());
    }

    #[test]
    fn old_kernel_loses_ptrace() {
        let s = translate_profile(
            DOCKER_DEFAULT_PROFILE,
            &default_capabilities(),
            SeccompArch::X86_64,
            Some((4, 4)),
        )
        .unwrap();
        assert!(allowed(&s, "ptrace").is_empty());
    }

    #[test]
    fn custom_profile_errors_are_reported() {
        let err = translate_profile("{", &[], SeccompArch::X86_64, None).unwrap_err();
        assert!(err.to_string().starts_with("invalid seccomp profile"));
        let err = translate_profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_NOPE"]}"#,
            &[],
            SeccompArch::X86_64,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("SCMP_ARCH_NOPE"));
    }
}
