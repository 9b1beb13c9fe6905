//! `COPY` and `ADD` without a container: the sources are resolved in the
//! context (or, with `--from`, in a stage's or image's root file system),
//! laid out in a fresh directory as they will appear under `/`, and that
//! directory becomes the step's layer.
//!
//! Semantics (Dockerfile reference, "COPY"/"ADD"): globs match with Go's
//! `filepath.Match` rules; copying a directory copies its contents; a
//! destination ending in `/` (or several sources) is a directory; a
//! relative destination is taken against `WORKDIR`; missing parents are
//! created (owned by the `--chown` user), existing ones keep the image's
//! metadata. Files are owned by 0:0 unless `--chown`; modes are kept
//! unless `--chmod`. `ADD` of a local tar (plain, gzip, zstd) extracts it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_build::{BuildPlan, FileOp, Pattern, Source};
use sha2::{Digest as _, Sha256};

use super::cache::{hash_tree, KeyBuilder};
use super::cache_from::Step;
use super::fetch;
use super::history::nop_layer;
use super::steps::clean_abs;
use super::view::RootView;
use super::{err, BuildError, Builder, Result, StageState};
use crate::rootpath::resolve_path;

fn io_err(e: std::io::Error) -> BuildError {
    err("copying files", e)
}

fn set_mtime(path: &Path, m: &fs::Metadata) {
    let t = nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec());
    let _ = nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err)
}

/// Owner and mode rules of one copy.
#[derive(Clone, Copy)]
struct CopyOpts {
    /// `None`: keep the source's owner (extracted archives).
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
    /// The source is one of the build's private files (the unpacked
    /// context, a heredoc, a download), which nothing writes after they
    /// are made: a file that already has the owner,
    /// mode and time the copy would get may be hard-linked instead.
    link: bool,
}

/// Copies `src` (file, link or directory tree) to `dst`.
fn copy_entry(src: &Path, dst: &Path, o: CopyOpts) -> Result<()> {
    let m = fs::symlink_metadata(src).map_err(io_err)?;
    let (uid, gid) = o.owner.unwrap_or((m.uid(), m.gid()));
    let ft = m.file_type();
    if let Ok(existing) = fs::symlink_metadata(dst) {
        if !(existing.is_dir() && ft.is_dir()) {
            if existing.is_dir() {
                fs::remove_dir_all(dst).map_err(io_err)?;
            } else {
                fs::remove_file(dst).map_err(io_err)?;
            }
        }
    }
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err)?;
        std::os::unix::fs::symlink(target, dst).map_err(io_err)?;
        lchown(dst, uid, gid)?;
    } else if ft.is_dir() {
        if !dst.exists() {
            fs::create_dir(dst).map_err(io_err)?;
        }
        for e in fs::read_dir(src).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            copy_entry(&e.path(), &dst.join(e.file_name()), o)?;
        }
        lchown(dst, uid, gid)?;
        let mode = o.chmod.unwrap_or(m.permissions().mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        set_mtime(dst, &m);
    } else if ft.is_file() {
        let mode = o.chmod.unwrap_or(m.permissions().mode() & 0o7777);
        // Only a file linked nowhere else: two links in one layer would
        // become a hard link in the image.
        if o.link
            && m.nlink() == 1
            && (m.uid(), m.gid()) == (uid, gid)
            && m.permissions().mode() & 0o7777 == mode
            && fs::hard_link(src, dst).is_ok()
        {
            return Ok(());
        }
        fs::copy(src, dst).map_err(io_err)?;
        lchown(dst, uid, gid)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        set_mtime(dst, &m);
    }
    // Devices, fifos and sockets are not copied (neither does Docker).
    Ok(())
}

/// Copies a file or tree keeping owners, modes and times (mount sources).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    copy_entry(
        src,
        dst,
        CopyOpts {
            owner: None,
            chmod: None,
            link: false,
        },
    )
}

/// Creates `abs` (an absolute, symlink-free path) and its parents in
/// `diff`: directories the image has keep their metadata, new ones are
/// 0755 owned by `owner`.
pub(crate) fn make_dirs(view: &Path, diff: &Path, abs: &str, owner: (u32, u32)) -> Result<()> {
    let mut rel = PathBuf::new();
    for part in abs.split('/').filter(|p| !p.is_empty()) {
        rel.push(part);
        let d = diff.join(&rel);
        if d.is_dir() {
            continue;
        }
        fs::create_dir(&d).map_err(io_err)?;
        match fs::symlink_metadata(view.join(&rel)) {
            Ok(m) if m.is_dir() => {
                lchown(&d, m.uid(), m.gid())?;
                fs::set_permissions(
                    &d,
                    fs::Permissions::from_mode(m.permissions().mode() & 0o7777),
                )
                .map_err(io_err)?;
                set_mtime(&d, &m);
            }
            _ => {
                lchown(&d, owner.0, owner.1)?;
                fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).map_err(io_err)?;
            }
        }
    }
    Ok(())
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Relative paths of every entry under `root` (not following links).
fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in fs::read_dir(root.join(rel))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = e.file_type()?.is_dir();
        out.push(path.clone());
        if is_dir {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

/// One source resolved to a host path.
struct Resolved {
    path: PathBuf,
    /// The name a file source gets in a destination directory.
    base: String,
}

fn resolve_sources(root: &Path, src: &str, from_context: bool) -> Result<Vec<Resolved>> {
    let cleaned = clean_abs(src);
    let rel = cleaned.trim_start_matches('/');
    let not_found = || {
        BuildError::new(if from_context {
            format!("COPY failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist")
        } else {
            format!("COPY failed: stat {src}: file does not exist")
        })
    };
    if has_glob(rel) {
        let pattern = Pattern::new(rel).map_err(|e| BuildError::new(e.to_string()))?;
        let mut all = Vec::new();
        walk(root, "", &mut all).map_err(io_err)?;
        all.sort();
        let out: Vec<Resolved> = all
            .into_iter()
            .filter(|p| pattern.matches(p))
            .map(|p| Resolved {
                base: p.rsplit('/').next().unwrap_or(&p).to_string(),
                path: root.join(&p),
            })
            .collect();
        if out.is_empty() {
            return Err(BuildError::new(format!(
                "COPY failed: no source files were specified (no match for {src})"
            )));
        }
        return Ok(out);
    }
    let path = resolve_path(root, rel, true).map_err(|e| BuildError::new(e.to_string()))?;
    if fs::symlink_metadata(&path).is_err() {
        return Err(not_found());
    }
    Ok(vec![Resolved {
        base: rel.rsplit('/').next().unwrap_or(rel).to_string(),
        path,
    }])
}

/// `user[:group]` of `--chown`, names looked up in the image's files.
fn parse_chown(spec: &str, root: &Path) -> Result<(u32, u32)> {
    let lookup = |file: &str, name: &str, field: usize| -> Option<u32> {
        let text = fs::read_to_string(root.join(file)).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f.get(field)?.parse().ok())?
        })
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup("etc/passwd", user, 2).ok_or_else(|| {
            BuildError::new(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            ))
        })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g, 2).ok_or_else(|| {
                BuildError::new(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

enum Archive {
    No,
    Tar,
    Unsupported(&'static str),
}

fn sniff_archive(path: &Path) -> Archive {
    let mut head = [0u8; 512];
    let Ok(mut f) = fs::File::open(path) else {
        return Archive::No;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let h = &head[..n];
    if h.starts_with(b"BZh") {
        return Archive::Unsupported("bzip2");
    }
    if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Archive::Unsupported("xz");
    }
    let compressed = h.starts_with(&[0x1f, 0x8b]) || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let inner: Vec<u8> = if compressed {
        let Ok(f) = fs::File::open(path) else {
            return Archive::No;
        };
        let Ok(mut r) = berth_snapshot::decompressed(Box::new(f)) else {
            return Archive::No;
        };
        let mut buf = vec![0u8; 512];
        let mut got = 0;
        while got < 512 {
            match r.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        buf.truncate(got);
        buf
    } else {
        h.to_vec()
    };
    if inner.len() >= 262 && &inner[257..262] == b"ustar" {
        Archive::Tar
    } else {
        Archive::No
    }
}

impl Builder<'_> {
    /// `COPY` (`add` false) or `ADD` (`add` true: local archives unpack,
    /// URLs are fetched and checked against `checksum`).
    #[allow(clippy::too_many_arguments)] // the two instructions' flags, flat
    pub(super) fn copy_step(
        &mut self,
        plan: &BuildPlan,
        st: &mut StageState,
        op: &FileOp,
        from: Option<&str>,
        add: bool,
        parents: bool,
        checksum: Option<&str>,
    ) -> Result<()> {
        let keyword = if add { "ADD" } else { "COPY" };
        if parents {
            return Err(BuildError::new("COPY --parents is not supported yet"));
        }
        if !op.exclude.is_empty() {
            return Err(BuildError::new(format!(
                "{keyword} --exclude is not supported yet"
            )));
        }
        for s in &op.sources {
            if let Source::Path(p) = s {
                let git = p.starts_with("git@")
                    || (fetch::is_url(p)
                        && p.split(['#', '?'])
                            .next()
                            .is_some_and(|u| u.ends_with(".git")));
                if !add && (fetch::is_url(p) || p.starts_with("git@")) {
                    return Err(BuildError::new(
                        "COPY failed: source can't be a URL for COPY",
                    ));
                }
                if git {
                    return Err(BuildError::new(format!(
                        "ADD from a Git repository ({p}) is not supported by berth's builder"
                    )));
                }
            }
        }
        let remote_only = op
            .sources
            .iter()
            .all(|s| matches!(s, Source::Path(p) if fetch::is_url(p)));
        if let Some(c) = checksum {
            if !remote_only {
                return Err(BuildError::new(format!(
                    "ADD --checksum={c} needs HTTP(S) sources only"
                )));
            }
        }
        let chmod = op
            .chmod
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| BuildError::new(format!("invalid chmod parameter: {m}")))
            })
            .transpose()?;
        // Where the sources come from.
        let from_image = match from {
            None => None,
            Some(f) => Some(match self.stage_image(plan, f) {
                Some(image) => image,
                None => Some(self.resolved_image(f)?),
            }),
        };
        let src_view_dir = self.scratch("from");
        let src_view = match &from_image {
            Some(img) => Some(RootView::open(self.service, img.as_ref(), &src_view_dir)?),
            None => None,
        };
        let src_root = src_view
            .as_ref()
            .map_or_else(|| self.context.clone(), |v| v.path().to_path_buf());
        // Heredoc sources become files of their own.
        let mut resolved: Vec<Resolved> = Vec::new();
        // Downloaded files: copied as they are, never extracted.
        let mut fetched: Vec<PathBuf> = Vec::new();
        for s in &op.sources {
            match s {
                Source::Path(p) if fetch::is_url(p) => {
                    let dir_dest = op.dest.ends_with('/') || op.sources.len() > 1;
                    let name = match fetch::url_file_name(p) {
                        Some(n) => n,
                        None if !dir_dest => "download".to_string(),
                        None => {
                            return Err(BuildError::new(format!(
                                "ADD {p}: cannot determine a file name from the URL; give a destination file name"
                            )))
                        }
                    };
                    let dir = self.scratch("url");
                    let path = fetch::fetch(p, &name, checksum, &dir)?;
                    fetched.push(path.clone());
                    resolved.push(Resolved { path, base: name });
                }
                Source::Path(p) => resolved.extend(resolve_sources(&src_root, p, from.is_none())?),
                Source::Heredoc(h) => {
                    let dir = self.scratch("heredoc");
                    fs::create_dir_all(&dir).map_err(io_err)?;
                    let path = dir.join(&h.name);
                    fs::write(&path, &h.content).map_err(io_err)?;
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                        .map_err(io_err)?;
                    resolved.push(Resolved {
                        base: h.name.clone(),
                        path,
                    });
                }
            }
        }
        // The key: what the sources hold, never their times.
        let mut h = Sha256::new();
        for r in &resolved {
            let name = r
                .path
                .strip_prefix(&src_root)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| r.base.clone());
            hash_tree(&mut h, &r.path, &name).map_err(io_err)?;
        }
        let src_hash = hex::encode(h.finalize());
        let spec = match resolved.as_slice() {
            [one] if one.path.is_dir() => format!("dir:{src_hash}"),
            [_] => format!("file:{src_hash}"),
            _ => format!("multi:{src_hash}"),
        };
        // The sources' digest stands for where they came from (`--from`):
        // the same bytes copied give the same layer.
        let portable = KeyBuilder::default()
            .part(keyword, &serde_json::to_string(op).expect("op serializes"))
            .part(
                "from",
                if from_image.is_some() {
                    "image"
                } else {
                    "context"
                },
            )
            .part("sources", &spec)
            .part("unpack", if add { "1" } else { "0" })
            .finish();
        let comment = format!("{keyword} {spec} in {} ", op.dest);
        let step =
            Step::new(&st.parent_key(), portable, nop_layer(&st.shell(), &comment)).needs_key(true);
        if self.cached(st, &step)? {
            return Ok(());
        }

        let view_dir = self.scratch("view");
        let view = RootView::open(self.service, st.image.as_ref(), &view_dir)?;
        let owner = match &op.chown {
            Some(c) => parse_chown(c, view.path())?,
            None => (0, 0),
        };
        let workdir = st.config.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest_abs = if op.dest.starts_with('/') {
            op.dest.clone()
        } else {
            format!("{workdir}/{}", op.dest)
        };
        let dir_hint = op.dest.ends_with('/') || op.dest == "." || op.dest.ends_with("/.");
        if resolved.len() > 1 && !dir_hint {
            return Err(BuildError::new(format!(
                "When using {keyword} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        // Follow the image's symlinks (`/var/run` → `/run`) inside its root.
        let dest = {
            let cleaned = clean_abs(&dest_abs);
            let p = resolve_path(view.path(), &cleaned, true)
                .map_err(|e| BuildError::new(e.to_string()))?;
            match p.strip_prefix(view.path()) {
                Ok(r) => clean_abs(&format!("/{}", r.display())),
                Err(_) => cleaned,
            }
        };
        let dest_is_dir = dir_hint
            || fs::metadata(view.path().join(dest.trim_start_matches('/')))
                .is_ok_and(|m| m.is_dir());
        // COPY from the context stages next to it, on its tmpfs if it has
        // one (and hard-links there); ADD may extract archives of any size.
        let diff = match (from.is_none() && !add)
            .then(|| self.mem_scratch("diff"))
            .flatten()
        {
            Some(d) => d,
            None => self.scratch("diff"),
        };
        fs::create_dir_all(&diff).map_err(io_err)?;
        let opts = CopyOpts {
            owner: Some(owner),
            chmod,
            // Not from an image's root: those files are the image's own.
            link: from.is_none(),
        };
        let parent_of = |p: &str| -> String {
            match p.rsplit_once('/') {
                Some((parent, _)) if !parent.is_empty() => parent.to_string(),
                _ => "/".to_string(),
            }
        };
        for r in &resolved {
            let is_dir = fs::metadata(&r.path).is_ok_and(|m| m.is_dir());
            let rel_dest = dest.trim_start_matches('/');
            if is_dir {
                make_dirs(view.path(), &diff, &dest, owner)?;
                for e in fs::read_dir(&r.path).map_err(io_err)? {
                    let e = e.map_err(io_err)?;
                    copy_entry(&e.path(), &diff.join(rel_dest).join(e.file_name()), opts)?;
                }
                continue;
            }
            if add && !fetched.contains(&r.path) {
                match sniff_archive(&r.path) {
                    Archive::Tar => {
                        make_dirs(view.path(), &diff, &dest, owner)?;
                        self.extract(&r.path, &diff.join(rel_dest))?;
                        continue;
                    }
                    Archive::Unsupported(kind) => {
                        return Err(BuildError::new(format!(
                            "ADD: extracting {kind} archives is not supported yet ({})",
                            r.base
                        )))
                    }
                    Archive::No => {}
                }
            }
            if dest_is_dir {
                make_dirs(view.path(), &diff, &dest, owner)?;
                copy_entry(&r.path, &diff.join(rel_dest).join(&r.base), opts)?;
            } else {
                make_dirs(view.path(), &diff, &parent_of(&dest), owner)?;
                copy_entry(&r.path, &diff.join(rel_dest), opts)?;
            }
        }
        drop(view);
        drop(src_view);
        let id = self.commit_dir(st, &diff, &step);
        if self.mem.as_ref().is_some_and(|m| diff.starts_with(m)) {
            // Committed (or failed): free the tmpfs for the next COPY.
            let _ = fs::remove_dir_all(&diff);
        }
        self.record(st, &step, id?);
        Ok(())
    }

    /// Unpacks a local archive into `dest` (a directory of the layer),
    /// owners and modes as the archive has them.
    fn extract(&mut self, archive: &Path, dest: &Path) -> Result<()> {
        let staging = self.scratch("extract");
        fs::create_dir_all(&staging).map_err(io_err)?;
        let f = fs::File::open(archive).map_err(io_err)?;
        let reader = berth_snapshot::decompressed(Box::new(f)).map_err(io_err)?;
        berth_snapshot::apply_layer(reader, &staging)
            .map_err(|e| BuildError::new(format!("ADD: extracting {}: {e}", archive.display())))?;
        for e in fs::read_dir(&staging).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            copy_entry(
                &e.path(),
                &dest.join(e.file_name()),
                CopyOpts {
                    owner: None,
                    chmod: None,
                    link: false,
                },
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_names_resolve_in_the_image() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/h:/bin/sh\n",
        )
        .unwrap();
        fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(parse_chown("bob", t.path()).unwrap(), (1000, 1000));
        assert_eq!(parse_chown("bob:staff", t.path()).unwrap(), (1000, 50));
        assert_eq!(parse_chown("7:8", t.path()).unwrap(), (7, 8));
        assert!(parse_chown("nobody", t.path()).is_err());
    }

    #[test]
    fn globs_and_missing_sources() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a.txt"), "").unwrap();
        fs::write(t.path().join("b.txt"), "").unwrap();
        fs::write(t.path().join("c.md"), "").unwrap();
        let r = resolve_sources(t.path(), "*.txt", true).unwrap();
        assert_eq!(
            r.iter().map(|r| r.base.as_str()).collect::<Vec<_>>(),
            ["a.txt", "b.txt"]
        );
        let e = resolve_sources(t.path(), "nothere", true).err().unwrap();
        assert!(
            e.message.contains("file not found in build context"),
            "{}",
            e.message
        );
    }
}
