//! The build context: the tar the client sends, unpacked into a private
//! directory under the data-root's `tmp/`, with `.dockerignore` applied.
//!
//! Entries are refused when their name is absolute or climbs with `..`,
//! and no entry is ever written through a symlink (a context may hold a
//! link `x -> /etc` followed by `x/passwd`: that would write outside). Links
//! themselves are kept as they are; they are resolved inside the context
//! root when a `COPY` reads them.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use berth_build::{included_files, Matcher};

use super::{err, BuildError};

/// The `/`-separated relative name of a tar entry, or an error when it
/// would escape the context.
pub(crate) fn entry_name(raw: &Path) -> Result<Option<PathBuf>, BuildError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                return Err(BuildError::new(format!(
                    "invalid build context: entry {} escapes the context",
                    raw.display()
                )))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Fails when a component of `rel`'s parent inside `root` is a symlink.
fn check_parents(root: &Path, rel: &Path) -> Result<(), BuildError> {
    let mut p = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            p.push(c);
            if let Ok(m) = fs::symlink_metadata(&p) {
                if m.file_type().is_symlink() {
                    return Err(BuildError::new(format!(
                        "invalid build context: {} is written through the symlink {}",
                        rel.display(),
                        p.strip_prefix(root).unwrap_or(&p).display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Removes what an earlier entry put at `path` (a directory with all it
/// holds), so that a later entry of another kind replaces it.
fn remove_existing(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs `make` (which creates `path`); if something is already there, it
/// is removed and `make` runs again. Returns whether it replaced anything.
fn create_replacing<T>(
    path: &Path,
    mut make: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<(T, bool)> {
    match make() {
        Ok(v) => Ok((v, false)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            remove_existing(path)?;
            Ok((make()?, true))
        }
        Err(e) => Err(e),
    }
}

/// Unpacks the context tar into `dest` (which must exist).
///
/// Per file this costs one create, the writes, an `fchmod` and a
/// `futimens`: parent directories checked once (they are remembered until
/// an entry replaces something, which may turn a directory into a
/// symlink), and an existing path is only looked at when the create says
/// it exists.
pub(crate) fn unpack(input: Box<dyn Read + Send>, dest: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::OpenOptionsExt;
    let reader =
        berth_snapshot::decompressed(input).map_err(|e| err("reading the build context", e))?;
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| err("reading the build context", e))?;
    let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
    // Parents (relative) known to be real directories, no symlink on the way.
    let mut checked: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let unpack_err = |e| err("unpacking the build context", e);
    for entry in entries {
        let mut entry = entry.map_err(|e| err("reading the build context", e))?;
        let raw = entry
            .path()
            .map_err(|e| err("reading the build context", e))?
            .into_owned();
        let Some(rel) = entry_name(&raw)? else {
            continue;
        };
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        if !checked.contains(&parent) {
            check_parents(dest, &rel)?;
            fs::create_dir_all(dest.join(&parent)).map_err(unpack_err)?;
            let mut p = parent.as_path();
            loop {
                checked.insert(p.to_path_buf());
                match p.parent() {
                    Some(up) => p = up,
                    None => break,
                }
            }
        }
        let path = dest.join(&rel);
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        // An entry replaces whatever an earlier one put there, but a
        // directory is merged into.
        let replaced = match kind {
            t if t.is_dir() => {
                if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    remove_existing(&path).map_err(unpack_err)?;
                }
                fs::create_dir_all(&path).map_err(unpack_err)?;
                dirs.push((path, mode, mtime));
                false
            }
            t if t.is_symlink() => {
                let target = entry
                    .link_name()
                    .map_err(|e| err("reading the build context", e))?
                    .unwrap_or_default()
                    .into_owned();
                create_replacing(&path, || std::os::unix::fs::symlink(&target, &path))
                    .map_err(unpack_err)?
                    .1
            }
            t if t.is_hard_link() => {
                let target = entry
                    .link_name()
                    .map_err(|e| err("reading the build context", e))?
                    .unwrap_or_default()
                    .into_owned();
                let Some(target) = entry_name(&target)? else {
                    continue;
                };
                check_parents(dest, &target)?;
                let t = dest.join(&target);
                if fs::symlink_metadata(&t).is_ok_and(|m| m.is_file()) {
                    create_replacing(&path, || fs::hard_link(&t, &path))
                        .map_err(unpack_err)?
                        .1
                } else {
                    false
                }
            }
            t if t.is_file() || t == tar::EntryType::Continuous => {
                let (mut f, replaced) = create_replacing(&path, || {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                })
                .map_err(unpack_err)?;
                std::io::copy(&mut entry, &mut f).map_err(unpack_err)?;
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(unpack_err)?;
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                let _ = f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t));
                replaced
            }
            // Devices, fifos and PAX/GNU metadata entries carry nothing a
            // build can use from its context.
            _ => false,
        };
        if replaced {
            // What was replaced may have been a checked directory.
            checked.clear();
        }
    }
    // Directory modes and times last, so writing their contents worked.
    for (path, mode, mtime) in dirs.into_iter().rev() {
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o700));
        set_mtime(&path, mtime);
    }
    Ok(())
}

fn set_mtime(path: &Path, secs: u64) {
    let t = nix::sys::time::TimeSpec::new(secs as i64, 0);
    let _ = nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

/// Deletes what `.dockerignore` excludes (the CLI normally left it out
/// already; another client may not have). `keep` (the Dockerfile and
/// `.dockerignore`) stay, as docker keeps them in the context.
pub(crate) fn apply_dockerignore(root: &Path, keep: &[&str]) -> Result<(), BuildError> {
    let matcher = Matcher::for_context(root).map_err(|e| BuildError::new(e.to_string()))?;
    if matcher.patterns.is_empty() {
        return Ok(());
    }
    let included: std::collections::BTreeSet<String> = included_files(root, &matcher)
        .map_err(|e| BuildError::new(e.to_string()))?
        .into_iter()
        .collect();
    fn walk(
        root: &Path,
        rel: &str,
        included: &std::collections::BTreeSet<String>,
        keep: &[&str],
    ) -> std::io::Result<bool> {
        // Returns whether something was kept below.
        let mut kept_any = false;
        for e in fs::read_dir(root.join(rel))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                let below = walk(root, &path, included, keep)?;
                if !below {
                    fs::remove_dir(root.join(&path))?;
                } else {
                    kept_any = true;
                }
            } else if included.contains(&path) || keep.contains(&path.as_str()) {
                kept_any = true;
            } else {
                fs::remove_file(root.join(&path))?;
            }
        }
        Ok(kept_any)
    }
    walk(root, "", &included, keep).map_err(|e| err("applying .dockerignore", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            if kind.is_symlink() {
                h.set_size(0);
                b.append_link(&mut h, name, data).unwrap();
            } else {
                h.set_size(data.len() as u64);
                // Bypass the tar crate's own path checks to test ours.
                let bytes = name.as_bytes();
                h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn escapes_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let bad = tar_of(&[("../x", tar::EntryType::Regular, "a")]);
        assert!(unpack(Box::new(std::io::Cursor::new(bad)), t.path()).is_err());
        let through_link = tar_of(&[
            ("l", tar::EntryType::Symlink, "/tmp"),
            ("l/x", tar::EntryType::Regular, "a"),
        ]);
        let e = unpack(Box::new(std::io::Cursor::new(through_link)), t.path()).unwrap_err();
        assert!(e.message.contains("symlink"), "{}", e.message);
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let t = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            ("d/f", tar::EntryType::Regular, "first"),
            ("d/f", tar::EntryType::Regular, "second"),
            ("x/y", tar::EntryType::Regular, "in a dir"),
            // A directory replaced by a symlink: nothing may then be
            // written through it, even though `x` was a checked parent.
            ("x", tar::EntryType::Symlink, "/tmp"),
            ("x/z", tar::EntryType::Regular, "escape"),
        ]);
        let e = unpack(Box::new(std::io::Cursor::new(tar)), t.path()).unwrap_err();
        assert!(e.message.contains("symlink"), "{}", e.message);
        assert_eq!(fs::read_to_string(t.path().join("d/f")).unwrap(), "second");
        assert!(fs::symlink_metadata(t.path().join("x"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn files_unpack_and_ignore_applies() {
        let t = tempfile::tempdir().unwrap();
        let good = tar_of(&[
            ("a/b.txt", tar::EntryType::Regular, "hello"),
            ("c.log", tar::EntryType::Regular, "x"),
            ("Dockerfile", tar::EntryType::Regular, "FROM x"),
            (
                ".dockerignore",
                tar::EntryType::Regular,
                "*.log\nDockerfile\n",
            ),
        ]);
        unpack(Box::new(std::io::Cursor::new(good)), t.path()).unwrap();
        assert_eq!(
            fs::read_to_string(t.path().join("a/b.txt")).unwrap(),
            "hello"
        );
        apply_dockerignore(t.path(), &["Dockerfile", ".dockerignore"]).unwrap();
        assert!(!t.path().join("c.log").exists());
        assert!(t.path().join("Dockerfile").exists());
        assert!(t.path().join("a/b.txt").exists());
    }
}
