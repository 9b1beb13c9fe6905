//! The container's seccomp profile, compiled to a BPF program once and
//! loaded with a single `seccomp(2)` call.
//!
//! libcontainer compiles the OCI profile with libseccomp inside every
//! container's init process, just before `execve`: for Docker's default
//! profile (some 350 syscalls, three architectures on x86-64) that is
//! tens of milliseconds of each `run`, more than the rest of the runtime's
//! work. The program only depends on the profile, the libseccomp version
//! and the kernel's seccomp API level, so the shim compiles it with the
//! same rules libcontainer applies ([`compile`], exported instead of
//! loaded), keeps it in a cache directory under the exec-root keyed by a
//! digest of those inputs ([`Program::cached`]), and the container's
//! processes load it from the workload executor (`crate::workload`).
//!
//! Profiles with `SCMP_ACT_NOTIFY` rules need libseccomp's listener set-up
//! and are left to libcontainer ([`precompilable`]).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use libcontainer::oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"BERTHBPF";
/// One `struct sock_filter`.
const INSN: usize = 8;
/// The kernel's limit on one filter's length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

// seccomp(2) constants: the libc crate has no SECCOMP_FILTER_FLAG_*.
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
const SECCOMP_FILTER_FLAG_LOG: u32 = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;

/// A compiled filter: the BPF instructions and the `seccomp(2)` flags.
#[derive(Clone)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
    flags: u32,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Program({} insns, flags {:#x})",
            self.insns.len(),
            self.flags
        )
    }
}

/// Whether [`compile`] can handle `profile` (no notify rules, no notify
/// default).
pub fn precompilable(profile: &LinuxSeccomp) -> bool {
    profile.default_action() != LinuxSeccompAction::ScmpActNotify
        && !profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

impl Program {
    /// The program for `profile`, from `cache_dir` when an intact copy is
    /// there, else compiled and (best effort) stored there.
    pub fn cached(profile: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Program, String> {
        let Some(dir) = cache_dir else {
            return compile(profile);
        };
        let key = cache_key(profile)?;
        let path = dir.join(format!("{key}.bpf"));
        if let Ok(bytes) = fs::read(&path) {
            if let Some(p) = Program::decode(&bytes) {
                return Ok(p);
            }
            tracing::warn!(path = %path.display(), "discarding a damaged cached seccomp program");
        }
        let program = compile(profile)?;
        if let Err(e) = store(dir, &path, &program.encode()) {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache the seccomp program");
        }
        Ok(program)
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Installs the filter on the calling thread (and, with TSYNC, its
    /// siblings). Needs no-new-privileges or CAP_SYS_ADMIN, as any
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    pub fn load(&self) -> io::Result<()> {
        let prog = libc::sock_fprog {
            len: self.insns.len() as libc::c_ushort,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `len` initialized instructions that
        // outlive the call; the kernel copies them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn from_bpf(bytes: &[u8], flags: u32) -> Option<Program> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(INSN) || bytes.len() / INSN > MAX_INSNS {
            return None;
        }
        let insns = bytes
            .chunks_exact(INSN)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Some(Program { insns, flags })
    }

    fn bpf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * INSN);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }

    /// `MAGIC`, flags (LE u32), SHA-256 of the instructions, instructions:
    /// a torn or altered file fails the digest and is recompiled.
    fn encode(&self) -> Vec<u8> {
        let bpf = self.bpf_bytes();
        let mut out = Vec::with_capacity(8 + 4 + 32 + bpf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&bpf));
        out.extend_from_slice(&bpf);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Program> {
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        if rest.len() < 4 + 32 {
            return None;
        }
        let flags = u32::from_le_bytes(rest[..4].try_into().ok()?);
        let (digest, bpf) = rest[4..].split_at(32);
        if Sha256::digest(bpf).as_slice() != digest {
            return None;
        }
        Program::from_bpf(bpf, flags)
    }
}

/// Digest of everything the program depends on.
fn cache_key(profile: &LinuxSeccomp) -> Result<String, String> {
    let json = serde_json::to_vec(profile).map_err(|e| format!("seccomp profile: {e}"))?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let api = libseccomp::get_api();
    let mut h = Sha256::new();
    h.update(b"berth-seccomp-1\0");
    h.update(version.as_bytes());
    h.update(format!("\0{api}\0{}\0", std::env::consts::ARCH).as_bytes());
    h.update(&json);
    Ok(hex::encode(h.finalize()))
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    fs::rename(&tmp, path)
}

/// `profile` as the BPF program libcontainer's `initialize_seccomp` would
/// load: the same translation of actions, architectures, operators and
/// flags, the same skipping of rules that repeat the default action and of
/// syscalls this libseccomp does not know, no no-new-privileges attribute.
/// (libcontainer 0.7 keeps its translation functions private and only
/// loads, never exports, hence [`action`], [`op`] and [`arch`] here.)
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, String> {
    if !precompilable(profile) {
        return Err("seccomp notify profiles are compiled by the runtime".into());
    }
    let err = |what: &str, e: libseccomp::error::SeccompError| format!("seccomp: {what}: {e}");
    let default_action = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default_action).map_err(|e| err("new filter", e))?;
    let mut flags = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // Only meaningful with a notify listener, which is not compiled here.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    for &a in profile.architectures().iter().flatten() {
        ctx.add_arch(arch(a))
            .map_err(|e| err(&format!("architecture {a:?}"), e))?;
    }
    ctx.set_ctl_nnp(false)
        .map_err(|e| err("no-new-privileges attribute", e))?;
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default_action {
            continue;
        }
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Unknown to this libseccomp: the kernel lacks it too.
                continue;
            };
            let Some(args) = rule.args() else {
                ctx.add_rule(act, sc)
                    .map_err(|e| err(&format!("rule for {name}"), e))?;
                continue;
            };
            let cmps: Vec<ScmpArgCompare> = args
                .iter()
                .map(|a| {
                    ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value())
                })
                .collect();
            let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
            indexes.sort_unstable();
            let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
            if repeated {
                // One argument compared twice: one rule per comparison, as runc.
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map_err(|e| err(&format!("rule for {name}"), e))?;
                }
            } else {
                ctx.add_rule_conditional(act, sc, &cmps)
                    .map_err(|e| err(&format!("rule for {name}"), e))?;
            }
        }
    }
    let bpf = export(&ctx)?;
    Program::from_bpf(&bpf, flags).ok_or_else(|| {
        format!(
            "seccomp: the compiled program has {} bytes, not 1 to {MAX_INSNS} instructions",
            bpf.len()
        )
    })
}

/// The filter's BPF: `seccomp_export_bpf` into a memfd, read back
/// (`seccomp_export_bpf_mem` needs libseccomp 2.6; Debian 12 has 2.5).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek};
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name and flags; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("seccomp: memfd: {}", io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut f = unsafe { fs::File::from_raw_fd(fd) };
    ctx.export_bpf(&f)
        .map_err(|e| format!("seccomp: export: {e}"))?;
    let mut bpf = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bpf))
        .map_err(|e| format!("seccomp: reading the exported program: {e}"))?;
    Ok(bpf)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, String> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno)
                .map_err(|_| format!("seccomp: trace value {errno} out of range"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn op(o: LinuxSeccompOperator, datum_b: Option<u64>) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(datum_b.unwrap_or(0)),
    }
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    fn docker_default() -> LinuxSeccomp {
        let arch = berth_oci::seccomp::SeccompArch::host().expect("a supported host");
        berth_oci::seccomp::docker_default_seccomp(&berth_oci::caps::default_capabilities(), arch)
    }

    #[test]
    fn dockers_default_profile_compiles_and_is_cached_intact() {
        let dir = tempfile::tempdir().unwrap();
        let first = Program::cached(&docker_default(), Some(dir.path())).unwrap();
        assert!(first.len() > 100, "{first:?}");
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "one cached program, no temporary left");
        let path = files[0].path();
        let again = Program::cached(&docker_default(), Some(dir.path())).unwrap();
        assert_eq!(again.bpf_bytes(), first.bpf_bytes());
        assert_eq!(again.flags, first.flags);

        // A damaged cache entry is not trusted: recompiled and rewritten.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let healed = Program::cached(&docker_default(), Some(dir.path())).unwrap();
        assert_eq!(healed.bpf_bytes(), first.bpf_bytes());
        assert_eq!(fs::read(&path).unwrap(), first.encode());
    }

    #[test]
    fn a_different_profile_gets_its_own_entry() {
        let dir = tempfile::tempdir().unwrap();
        let a = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}));
        let b = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO"}]}));
        let pa = Program::cached(&a, Some(dir.path())).unwrap();
        let pb = Program::cached(&b, Some(dir.path())).unwrap();
        assert_ne!(pa.bpf_bytes(), pb.bpf_bytes());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn flags_are_passed_through() {
        let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]})))
        .unwrap();
        assert_eq!(
            p.flags,
            SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW
        );
    }

    #[test]
    fn notify_profiles_are_left_to_the_runtime() {
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
        assert!(!precompilable(&p));
        assert!(compile(&p).is_err());
    }

    /// The loaded program does what the profile says: in a child process,
    /// `getppid` fails with the profile's errno, `getpid` still works.
    #[test]
    fn a_loaded_program_filters() {
        let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                              "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]})))
        .unwrap();
        // SAFETY: the child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = (|| {
                // SAFETY: plain prctl/syscalls with integer arguments.
                unsafe {
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                        return 10;
                    }
                }
                if p.load().is_err() {
                    return 11;
                }
                // glibc's getppid() cannot fail, so it returns the raw -errno.
                // SAFETY: as above.
                let ppid = unsafe { libc::getppid() };
                if ppid != -77 {
                    return 12;
                }
                // SAFETY: as above.
                if unsafe { libc::getpid() } <= 0 {
                    return 13;
                }
                0
            })();
            // SAFETY: leaving the forked child without running the test harness.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "10 nnp, 11 load, 12 filter, 13 allow"
        );
    }
}
