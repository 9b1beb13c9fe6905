//! Applying a layer: unpacking one uncompressed OCI/Docker layer tar into an
//! empty directory that then serves as one overlayfs `lowerdir`.
//!
//! Lifecycle: the snapshotter hands out a fresh staging directory, the image
//! puller streams the layer (decompressed, through a digest tee) into
//! [`apply_layer`], and on success the directory is committed under the
//! layer's chain ID. On error the staging directory is discarded.
//!
//! What an entry becomes (image-spec `layer.md`):
//! - files, directories, symlinks, hardlinks, devices and fifos are created
//!   with their numeric owner, mode (including setuid/setgid/sticky), mtime
//!   and `SCHILY.xattr.*` extended attributes; directory modes and times are
//!   applied after the last entry, since adding children changes them;
//! - `dir/.wh.name` becomes an overlayfs whiteout, a 0/0 character device at
//!   `dir/name`; `dir/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `dir`;
//! - a later entry for the same path replaces the earlier one (an existing
//!   directory is kept when the new entry is a directory).
//!
//! Security: a layer is untrusted input. Every entry path is checked before
//! anything is created: absolute paths and `..` components are refused, and
//! every ancestor already present under `dest` is examined with `lstat` and
//! must be a real directory, never a symlink (the classic "symlink then write
//! through it" escape, e.g. CVE-2018-15664-style and CVE-2019-14271-style
//! archive attacks). Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`, so an
//! existing symlink at the final component is replaced, never followed.
//! Hardlink targets get the same checks and must already exist inside
//! `dest`. The layer may not set `trusted.overlay.*` xattrs itself.
//!
//! The checks are path based and rely on `dest` being private to this call
//! (a staging directory nobody else writes to) while it runs.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

use crate::{
    is_overlay_private_xattr, LayerError, OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR,
    WHITEOUT_META_PREFIX, WHITEOUT_PREFIX,
};

/// Size of the buffer file contents are copied through.
const COPY_BUF_LEN: usize = 1 << 20;
/// Read-ahead for tar headers, so small entries do not cost a read each.
const HEADER_BUF_LEN: usize = 256 << 10;

/// What [`apply_layer`] unpacked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries processed, whiteouts included.
    pub entries: u64,
    /// Sum of the sizes of regular files written.
    pub size: u64,
}

/// Unpacks the uncompressed layer tar `reader` into `dest`, an existing
/// directory (normally empty). After the end-of-archive marker the rest of
/// `reader` is read to EOF, so a digest computed over everything `reader`
/// returned covers the whole blob.
///
/// On error `dest` may be partially populated; nothing outside it is
/// touched. The caller discards it.
pub fn apply_layer<R: Read>(reader: R, dest: &Path) -> Result<ApplyStats, LayerError> {
    let mut archive = tar::Archive::new(BufReader::with_capacity(HEADER_BUF_LEN, reader));
    let mut applier = Applier::new(dest);
    for entry in archive.entries().map_err(LayerError::read)? {
        let mut entry = entry.map_err(LayerError::read)?;
        applier.apply_entry(&mut entry)?;
    }
    applier.finish()?;
    // tar stops at the first zero block; the second one and any blocking
    // padding are still unread.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(LayerError::read)?;
    Ok(applier.stats)
}

/// Metadata of one entry, decoded from its header and PAX records.
struct EntryMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: FileTime,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// A directory whose mode and times are applied after the last entry.
struct DeferredDir {
    rel: PathBuf,
    mode: u32,
    mtime: FileTime,
}

struct Applier<'a> {
    dest: &'a Path,
    /// Relative paths known to be real directories under `dest`. Closed
    /// under ancestors; cleared whenever a directory is removed.
    verified: HashSet<PathBuf>,
    deferred: Vec<DeferredDir>,
    buf: Vec<u8>,
    stats: ApplyStats,
}

impl<'a> Applier<'a> {
    fn new(dest: &'a Path) -> Self {
        Applier {
            dest,
            verified: HashSet::new(),
            deferred: Vec::new(),
            buf: vec![0; COPY_BUF_LEN],
            stats: ApplyStats::default(),
        }
    }

    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = entry_path(&entry.path_bytes(), &shown)?;
        self.stats.entries += 1;

        if let Some(name) = rel.file_name() {
            if name.as_bytes().starts_with(WHITEOUT_PREFIX) {
                return self.apply_whiteout(&rel, &shown);
            }
        }
        match kind {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            other => {
                return Err(LayerError::Unsupported {
                    path: shown,
                    kind: format!("{other:?}").to_lowercase(),
                })
            }
        }
        let meta = entry_meta(entry, &shown)?;

        if rel.as_os_str().is_empty() {
            // "./": the layer's root directory, i.e. `dest` itself.
            if kind != EntryType::Directory {
                return Err(invalid(
                    &shown,
                    "names the layer root but is not a directory",
                ));
            }
            self.set_xattrs(self.dest, &meta, &shown)?;
            chown(self.dest, &meta)?;
            self.deferred.push(DeferredDir {
                rel,
                mode: meta.mode,
                mtime: meta.mtime,
            });
            return Ok(());
        }

        self.ensure_parent(&rel, &shown)?;
        let full = self.dest.join(&rel);
        match kind {
            EntryType::Directory => self.make_dir(rel, &full, &meta, &shown),
            EntryType::Symlink => self.make_symlink(entry, &rel, &full, &meta, &shown),
            EntryType::Link => self.make_hardlink(entry, &rel, &full, &shown),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.make_node(entry, kind, &rel, &full, &meta, &shown)
            }
            _ => self.write_file(entry, &rel, &full, &meta, &shown),
        }
    }

    /// Makes sure every ancestor of `rel` is a real directory under `dest`,
    /// creating missing ones (mode 0755, as Docker does).
    fn ensure_parent(&mut self, rel: &Path, shown: &str) -> Result<(), LayerError> {
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => return Ok(()),
        };
        if self.verified.contains(parent) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            if self.verified.contains(&prefix) {
                continue;
            }
            let full = self.dest.join(&prefix);
            match check_dir(&full, &prefix, shown)? {
                true => {}
                false => fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&full)
                    .map_err(LayerError::io("creating directory", &full))?,
            }
            self.verified.insert(prefix.clone());
        }
        Ok(())
    }

    /// Removes whatever exists at `rel` (recursively for a directory),
    /// without following symlinks.
    fn remove_existing(&mut self, rel: &Path, full: &Path) -> Result<(), LayerError> {
        match fs::symlink_metadata(full) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(full).map_err(LayerError::io("removing directory", full))?;
                self.verified.clear();
                self.deferred.retain(|d| !d.rel.starts_with(rel));
                Ok(())
            }
            Ok(_) => fs::remove_file(full).map_err(LayerError::io("removing", full)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LayerError::io("inspecting", full)(e)),
        }
    }

    /// Runs `create` once; if the path is taken, removes what is there and
    /// runs it again.
    fn create_replacing<T>(
        &mut self,
        rel: &Path,
        full: &Path,
        op: &'static str,
        mut create: impl FnMut() -> io::Result<T>,
    ) -> Result<T, LayerError> {
        match create() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove_existing(rel, full)?;
                create().map_err(LayerError::io(op, full))
            }
            other => other.map_err(LayerError::io(op, full)),
        }
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        full: &Path,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<(), LayerError> {
        // O_EXCL with O_CREAT never follows a symlink at the last component;
        // O_NOFOLLOW says so explicitly.
        let mut file = self.create_replacing(rel, full, "creating file", || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(full)
        })?;
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::read(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(LayerError::io("writing", full))?;
            written += n as u64;
        }
        self.stats.size += written;
        // chown clears setuid/setgid and security.capability, so: owner,
        // then mode, then xattrs.
        std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
            .map_err(LayerError::io("changing owner of", full))?;
        file.set_permissions(Permissions::from_mode(meta.mode))
            .map_err(LayerError::io("changing mode of", full))?;
        for (name, value) in &meta.xattrs {
            let res = xattr::FileExt::set_xattr(&file, name, value);
            tolerate_xattr(res, name, full, shown)?;
        }
        filetime::set_file_handle_times(&file, Some(meta.mtime), Some(meta.mtime))
            .map_err(LayerError::io("setting times of", full))?;
        Ok(())
    }

    fn make_dir(
        &mut self,
        rel: PathBuf,
        full: &Path,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<(), LayerError> {
        match fs::symlink_metadata(full) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                self.remove_existing(&rel, full)?;
                create_dir(full)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(full)?,
            Err(e) => return Err(LayerError::io("inspecting", full)(e)),
        }
        chown(full, meta)?;
        self.set_xattrs(full, meta, shown)?;
        self.verified.insert(rel.clone());
        self.deferred.push(DeferredDir {
            rel,
            mode: meta.mode,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn make_symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        rel: &Path,
        full: &Path,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<(), LayerError> {
        // The target is stored as is: it is resolved inside the container's
        // root at run time, never by us.
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(shown, "symlink without a target"))?
            .into_owned();
        let target = Path::new(OsStr::from_bytes(&target));
        self.create_replacing(rel, full, "creating symlink", || {
            std::os::unix::fs::symlink(target, full)
        })?;
        chown(full, meta)?;
        self.set_xattrs(full, meta, shown)?;
        filetime::set_symlink_file_times(full, meta.mtime, meta.mtime)
            .map_err(LayerError::io("setting times of", full))?;
        Ok(())
    }

    fn make_hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        rel: &Path,
        full: &Path,
        shown: &str,
    ) -> Result<(), LayerError> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(shown, "hardlink without a target"))?
            .into_owned();
        let target_shown = String::from_utf8_lossy(&raw).into_owned();
        let target_rel = link_target_path(&raw, &target_shown, shown)?;
        if target_rel.as_os_str().is_empty() {
            return Err(invalid(shown, "hardlink to the layer root"));
        }
        // Every ancestor of the target must be a real directory that exists.
        let mut prefix = PathBuf::new();
        if let Some(parent) = target_rel.parent() {
            for component in parent.components() {
                prefix.push(component);
                if self.verified.contains(&prefix) {
                    continue;
                }
                let exists =
                    check_dir(&self.dest.join(&prefix), &prefix, shown).map_err(|e| match e {
                        LayerError::Escape { reason, .. } => LayerError::Escape {
                            path: shown.to_owned(),
                            reason: format!("hardlink target \"{target_shown}\" {reason}"),
                        },
                        other => other,
                    })?;
                if !exists {
                    return Err(missing_target(shown, &target_shown));
                }
            }
        }
        let target_full = self.dest.join(&target_rel);
        match fs::symlink_metadata(&target_full) {
            Ok(m) if m.is_dir() => {
                return Err(invalid(
                    shown,
                    &format!("hardlink to directory \"{target_shown}\""),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(missing_target(shown, &target_shown))
            }
            Err(e) => return Err(LayerError::io("inspecting", target_full)(e)),
        }
        if target_rel == rel {
            return Ok(());
        }
        // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked
        // itself, not followed.
        self.create_replacing(rel, full, "creating hardlink", || {
            fs::hard_link(&target_full, full)
        })
    }

    fn make_node<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        kind: EntryType,
        rel: &Path,
        full: &Path,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<(), LayerError> {
        let header = entry.header();
        let (sflag, dev) = match kind {
            EntryType::Fifo => (SFlag::S_IFIFO, 0),
            _ => {
                let major = header
                    .device_major()
                    .map_err(|e| invalid(shown, &e.to_string()))?;
                let minor = header
                    .device_minor()
                    .map_err(|e| invalid(shown, &e.to_string()))?;
                let dev = makedev(major.unwrap_or(0).into(), minor.unwrap_or(0).into());
                let sflag = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                (sflag, dev)
            }
        };
        self.create_replacing(rel, full, "creating device node", || {
            mknod(full, sflag, Mode::empty(), dev).map_err(io::Error::from)
        })?;
        chown(full, meta)?;
        // The node was created just now by us, so chmod's path lookup
        // cannot be redirected.
        fs::set_permissions(full, Permissions::from_mode(meta.mode))
            .map_err(LayerError::io("changing mode of", full))?;
        self.set_xattrs(full, meta, shown)?;
        filetime::set_symlink_file_times(full, meta.mtime, meta.mtime)
            .map_err(LayerError::io("setting times of", full))?;
        Ok(())
    }

    /// `dir/.wh.name` and `dir/.wh..wh..opq` (image-spec `layer.md`,
    /// "Whiteouts"), turned into what overlayfs understands.
    fn apply_whiteout(&mut self, rel: &Path, shown: &str) -> Result<(), LayerError> {
        let name = rel.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.ensure_parent(rel, shown)?;
        if name == OPAQUE_MARKER {
            let dir = self.dest.join(parent);
            return xattr::set(&dir, OVERLAY_OPAQUE_XATTR, b"y")
                .map_err(LayerError::io("marking opaque", dir));
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            // AUFS bookkeeping (hardlink dirs and the like); meaningless here.
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(invalid(shown, "whiteout without a valid name"));
        }
        let target_rel = parent.join(OsStr::from_bytes(hidden));
        let full = self.dest.join(&target_rel);
        // overlayfs whiteout: a character device with device number 0/0.
        self.create_replacing(&target_rel, &full, "creating whiteout", || {
            mknod(&full, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(io::Error::from)
        })
    }

    fn set_xattrs(&self, path: &Path, meta: &EntryMeta, shown: &str) -> Result<(), LayerError> {
        for (name, value) in &meta.xattrs {
            // xattr::set is lsetxattr(2): never follows a symlink.
            tolerate_xattr(xattr::set(path, name, value), name, path, shown)?;
        }
        Ok(())
    }

    /// Applies directory modes and times, now that no more children come.
    fn finish(&mut self) -> Result<(), LayerError> {
        for dir in self.deferred.drain(..) {
            let full = self.dest.join(&dir.rel);
            // remove_existing drops deferred entries of anything it removes,
            // so this is still the directory the entry created; check anyway.
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                _ => continue,
            }
            fs::set_permissions(&full, Permissions::from_mode(dir.mode))
                .map_err(LayerError::io("changing mode of", &full))?;
            filetime::set_symlink_file_times(&full, dir.mtime, dir.mtime)
                .map_err(LayerError::io("setting times of", &full))?;
        }
        Ok(())
    }
}

/// Whether `full` (the ancestor `prefix` of entry `shown`) is a directory:
/// `Ok(true)` if it is, `Ok(false)` if absent, an error if it is a symlink
/// or anything else.
fn check_dir(full: &Path, prefix: &Path, shown: &str) -> Result<bool, LayerError> {
    match fs::symlink_metadata(full) {
        Ok(m) if m.file_type().is_symlink() => Err(LayerError::Escape {
            path: shown.to_owned(),
            reason: format!("passes through symlink \"{}\"", prefix.display()),
        }),
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(invalid(
            shown,
            &format!("parent \"{}\" is not a directory", prefix.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(LayerError::io("inspecting", full)(e)),
    }
}

/// The entry's path relative to the layer root, `""` for the root itself.
fn entry_path(raw: &[u8], shown: &str) -> Result<PathBuf, LayerError> {
    clean_relative(raw).map_err(|reason| LayerError::Escape {
        path: shown.to_owned(),
        reason: reason.to_owned(),
    })
}

fn link_target_path(raw: &[u8], target_shown: &str, shown: &str) -> Result<PathBuf, LayerError> {
    clean_relative(raw).map_err(|reason| LayerError::Escape {
        path: shown.to_owned(),
        reason: format!("hardlink target \"{target_shown}\" {reason}"),
    })
}

/// Normalizes a tar path: drops `.` components and trailing slashes,
/// refuses absolute paths and `..`.
fn clean_relative(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
            Component::ParentDir => return Err("contains \"..\""),
        }
    }
    Ok(out)
}

fn entry_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    shown: &str,
) -> Result<EntryMeta, LayerError> {
    let header = entry.header();
    let bad = |e: io::Error| invalid(shown, &e.to_string());
    // The tar crate already folds PAX uid/gid records into the header.
    let mode = header.mode().map_err(bad)? & 0o7777;
    let uid = header.uid().map_err(bad)?;
    let gid = header.gid().map_err(bad)?;
    let uid = u32::try_from(uid).map_err(|_| invalid(shown, "uid out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| invalid(shown, "gid out of range"))?;
    let mut mtime = FileTime::from_unix_time(header.mtime().map_err(bad)? as i64, 0);
    let mut xattrs = Vec::new();
    if let Some(records) = entry.pax_extensions().map_err(LayerError::read)? {
        for record in records {
            let record = record.map_err(LayerError::read)?;
            let Ok(key) = record.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if !is_overlay_private_xattr(name.as_bytes()) {
                    xattrs.push((name.to_owned(), record.value_bytes().to_vec()));
                }
            } else if key == "mtime" {
                if let Some(t) = record.value().ok().and_then(parse_pax_time) {
                    mtime = t;
                }
            }
        }
    }
    Ok(EntryMeta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// Parses a PAX time value, `seconds[.fraction]` (POSIX pax, "mtime").
fn parse_pax_time(value: &str) -> Option<FileTime> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    if secs < 0 && nanos > 0 {
        // -1.5 means 1.5 s before the epoch.
        return Some(FileTime::from_unix_time(secs - 1, 1_000_000_000 - nanos));
    }
    Some(FileTime::from_unix_time(secs, nanos))
}

fn create_dir(full: &Path) -> Result<(), LayerError> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(full)
        .map_err(LayerError::io("creating directory", full))
}

fn chown(full: &Path, meta: &EntryMeta) -> Result<(), LayerError> {
    std::os::unix::fs::lchown(full, Some(meta.uid), Some(meta.gid))
        .map_err(LayerError::io("changing owner of", full))
}

/// Xattrs the filesystem cannot store at all are reported and skipped, as
/// Docker does; any other failure is an error.
fn tolerate_xattr(
    res: io::Result<()>,
    name: &str,
    path: &Path,
    shown: &str,
) -> Result<(), LayerError> {
    match res {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            tracing::warn!(
                entry = shown,
                xattr = name,
                "filesystem does not support xattr; skipped"
            );
            Ok(())
        }
        other => other.map_err(LayerError::io("setting xattr on", path)),
    }
}

fn invalid(shown: &str, reason: &str) -> LayerError {
    LayerError::Invalid {
        path: shown.to_owned(),
        reason: reason.to_owned(),
    }
}

fn missing_target(shown: &str, target_shown: &str) -> LayerError {
    invalid(
        shown,
        &format!("hardlink target \"{target_shown}\" does not exist in the layer"),
    )
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
