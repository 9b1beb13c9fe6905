//! Mounting an overlay over a chain of snapshots.
//!
//! mount(2) takes all options in one string of at most a page (4095 bytes
//! and a NUL), and each lower layer costs its absolute path there: about
//! 40 layers of `<data-root>/snapshots/<chain id>/fs` fill it. Images with
//! more layers are common (Docker allows 128), so past that length the
//! overlay is built with the new mount API instead, adding one lower layer
//! per `fsconfig` call (`lowerdir+`, Linux 6.8 and later), which has no
//! limit of its own beyond overlayfs's 500-layer stack. nix has no wrappers
//! for fsopen/fsconfig/fsmount/move_mount, hence the raw system calls.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One page, less the terminating NUL.
const MOUNT_DATA_MAX: usize = 4095;

/// Where an overlay writes; `None` for a read-only view of the layers.
pub struct Upper<'a> {
    pub upper: &'a Path,
    pub work: &'a Path,
}

/// Mounts at `target` an overlay of `lowers` (lowest first, as an image
/// lists its layers) with `upper` on top, read-only when `readonly`.
pub fn mount_overlay(
    target: &Path,
    lowers: &[PathBuf],
    upper: Option<Upper<'_>>,
    readonly: bool,
) -> io::Result<()> {
    let data = classic_options(lowers, upper.as_ref());
    if data.len() <= MOUNT_DATA_MAX {
        let flags = if readonly {
            nix::mount::MsFlags::MS_RDONLY
        } else {
            nix::mount::MsFlags::empty()
        };
        return nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(io::Error::from);
    }
    mount_layer_by_layer(target, lowers, upper.as_ref(), readonly).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "an overlay of {} layers (more than one mount(2) option page holds; \
                 needs Linux 6.8 or later): {e}",
                lowers.len()
            ),
        )
    })
}

fn classic_options(lowers: &[PathBuf], upper: Option<&Upper<'_>>) -> String {
    let lower = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    match upper {
        Some(u) => format!(
            "lowerdir={lower},upperdir={},workdir={}",
            u.upper.display(),
            u.work.display()
        ),
        None => format!("lowerdir={lower}"),
    }
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
}

fn mount_layer_by_layer(
    target: &Path,
    lowers: &[PathBuf],
    upper: Option<&Upper<'_>>,
    readonly: bool,
) -> io::Result<()> {
    let name = c"overlay";
    // SAFETY: fsopen reads a NUL-terminated name; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor fsopen just returned, owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let set = |key: &std::ffi::CStr, value: &std::ffi::CStr| -> io::Result<()> {
        // SAFETY: key and value are NUL-terminated and outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}{}", key.to_string_lossy(), fs_messages(&fs)),
            ));
        }
        Ok(())
    };
    // Top-most first, as in lowerdir=.
    for l in lowers.iter().rev() {
        set(c"lowerdir+", &cstr(l)?)?;
    }
    if let Some(u) = upper {
        set(c"upperdir", &cstr(u.upper)?)?;
        set(c"workdir", &cstr(u.work)?)?;
    }
    // SAFETY: a command without key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("creating: {e}{}", fs_messages(&fs)),
        ));
    }
    let attrs = if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    // SAFETY: plain integers; returns a new mount fd or -1.
    let mfd = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if mfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor fsmount just returned.
    let mnt = unsafe { OwnedFd::from_raw_fd(mfd as i32) };
    let to = cstr(target)?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's own words about a failed fsconfig, read from the fs
/// context ("e overlay: ..." lines), as ": msg; msg" or nothing.
fn fs_messages(fs: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        match nix::unistd::read(fs.as_raw_fd(), &mut buf) {
            Ok(n) if n > 0 => out.push(
                String::from_utf8_lossy(&buf[..n])
                    .trim_start_matches(|c| "ewi ".contains(c))
                    .trim()
                    .to_string(),
            ),
            _ => break,
        }
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" ({})", out.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root: mounts real overlays on a temporary directory.
    fn layers(root: &Path, n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                // Long names, as snapshot paths are, so 60 layers overflow
                // the classic option page.
                let d = root.join(format!("{:064x}", i)).join("fs");
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(format!("f{i}")), format!("{i}")).unwrap();
                std::fs::write(d.join("top"), format!("{i}")).unwrap();
                d
            })
            .collect()
    }

    fn check(n: usize) {
        let t = tempfile::tempdir().unwrap();
        let lowers = layers(t.path(), n);
        let (upper, work, target) = (t.path().join("u"), t.path().join("w"), t.path().join("m"));
        for d in [&upper, &work, &target] {
            std::fs::create_dir(d).unwrap();
        }
        let classic = classic_options(
            &lowers,
            Some(&Upper {
                upper: &upper,
                work: &work,
            }),
        );
        assert_eq!(
            classic.len() > MOUNT_DATA_MAX,
            n > 50,
            "{} bytes",
            classic.len()
        );
        mount_overlay(
            &target,
            &lowers,
            Some(Upper {
                upper: &upper,
                work: &work,
            }),
            false,
        )
        .unwrap();
        let seen = (0..n).all(|i| target.join(format!("f{i}")).exists());
        // The last layer listed is the top one.
        let top = std::fs::read_to_string(target.join("top")).unwrap();
        std::fs::write(target.join("new"), "x").unwrap();
        nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(seen, "every layer's file visible");
        assert_eq!(top, (n - 1).to_string());
        assert!(upper.join("new").exists(), "writes go to the upper dir");
    }

    #[test]
    fn few_layers_mount_with_one_option_string() {
        check(3);
    }

    #[test]
    fn a_hundred_layers_mount_layer_by_layer() {
        check(100);
    }

    #[test]
    fn read_only_view_of_many_layers() {
        let t = tempfile::tempdir().unwrap();
        let lowers = layers(t.path(), 80);
        let target = t.path().join("m");
        std::fs::create_dir(&target).unwrap();
        mount_overlay(&target, &lowers, None, true).unwrap();
        let w = std::fs::write(target.join("x"), "y");
        let f = target.join("f79").exists();
        nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(w.is_err(), "a read-only view refuses writes");
        assert!(f);
    }
}
