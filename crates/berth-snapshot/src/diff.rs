//! Writing a layer: turning a directory back into an uncompressed layer tar.
//!
//! The directory is either an overlayfs upper dir (the changes a container
//! or a build step made on top of its image) or a plain root filesystem.
//! Upper-dir conventions become their OCI equivalents (image-spec
//! `layer.md`): a 0/0 character device (an overlayfs whiteout) becomes an
//! empty `.wh.<name>` file, and a directory carrying
//! `trusted.overlay.opaque=y` is followed by a `.wh..wh..opq` entry.
//!
//! The output is deterministic for a given tree, so the same changes give
//! the same diff ID: names are sorted bytewise, parents precede children,
//! and nothing time- or host-dependent beyond the files' own metadata (no
//! user or group names, no atime/ctime) is recorded. Files sharing an inode
//! become one regular entry plus hardlink entries. Xattrs go into PAX
//! `SCHILY.xattr.*` records, except overlayfs' private ones; names or link
//! targets longer than the ustar fields go into PAX `path` / `linkpath`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::stat::{major, minor};
use tar::{EntryType, Header};

use crate::{
    is_overlay_private_xattr, LayerError, OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX,
};

/// Writes the layer tar of `dir` (its contents; the root itself is not an
/// entry) to `out`, finishes the archive and returns `out`.
pub fn write_layer_from_dir<W: Write>(dir: &Path, out: W) -> Result<W, LayerError> {
    let mut writer = LayerWriter {
        root: dir,
        builder: tar::Builder::new(out),
        links: HashMap::new(),
    };
    writer.walk(&[])?;
    writer
        .builder
        .into_inner()
        .map_err(|source| LayerError::Write { source })
}

struct LayerWriter<'a, W: Write> {
    root: &'a Path,
    builder: tar::Builder<W>,
    /// First tar path seen for each multiply-linked inode, by (dev, ino).
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> LayerWriter<'_, W> {
    /// Writes the entries below the directory at tar path `rel` (no
    /// trailing slash; empty for the root).
    fn walk(&mut self, rel: &[u8]) -> Result<(), LayerError> {
        let dir = self.root.join(std::ffi::OsStr::from_bytes(rel));
        let mut names: Vec<OsString> = fs::read_dir(&dir)
            .map_err(LayerError::io("reading directory", &dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(LayerError::io("reading directory", &dir))?;
        names.sort();
        for name in names {
            let path = join(rel, name.as_bytes());
            let full = dir.join(&name);
            let meta = fs::symlink_metadata(&full).map_err(LayerError::io("inspecting", &full))?;
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                let mut wh = WHITEOUT_PREFIX.to_vec();
                wh.extend_from_slice(name.as_bytes());
                self.marker(&join(rel, &wh), &meta)?;
                continue;
            }
            if ft.is_socket() {
                // Sockets are not representable in tar; Docker skips them too.
                continue;
            }
            self.entry(&path, &full, &meta)?;
            if ft.is_dir() {
                let opaque = xattr::get(&full, OVERLAY_OPAQUE_XATTR)
                    .map_err(LayerError::io("reading xattrs of", &full))?;
                if opaque.as_deref() == Some(b"y") {
                    self.marker(&join(&path, OPAQUE_MARKER), &meta)?;
                }
                self.walk(&path)?;
            }
        }
        Ok(())
    }

    /// An empty regular file entry: a whiteout or opaque marker.
    fn marker(&mut self, path: &[u8], meta: &Metadata) -> Result<(), LayerError> {
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);
        self.append(header, path, None, Vec::new(), io::empty())
    }

    fn entry(&mut self, path: &[u8], full: &Path, meta: &Metadata) -> Result<(), LayerError> {
        let ft = meta.file_type();
        let mut header = Header::new_ustar();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid().into());
        header.set_gid(meta.gid().into());
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);

        let mut records = Vec::new();
        let names = xattr::list(full).map_err(LayerError::io("listing xattrs of", full))?;
        let mut names: Vec<OsString> = names.collect();
        names.sort();
        for name in names {
            if is_overlay_private_xattr(name.as_bytes()) {
                continue;
            }
            if let Some(value) =
                xattr::get(full, &name).map_err(LayerError::io("reading xattrs of", full))?
            {
                let mut key = b"SCHILY.xattr.".to_vec();
                key.extend_from_slice(name.as_bytes());
                records.push((key, value));
            }
        }

        if !ft.is_dir() && meta.nlink() > 1 {
            let id = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&id).cloned() {
                header.set_entry_type(EntryType::Link);
                return self.append(header, path, Some(&first), records, io::empty());
            }
            self.links.insert(id, path.to_vec());
        }

        if ft.is_dir() {
            header.set_entry_type(EntryType::Directory);
            let mut p = path.to_vec();
            p.push(b'/');
            self.append(header, &p, None, records, io::empty())
        } else if ft.is_file() {
            header.set_entry_type(EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(full).map_err(LayerError::io("opening", full))?;
            let data = ExactReader {
                inner: file.take(meta.len()),
                remaining: meta.len(),
            };
            self.append(header, path, None, records, data)
        } else if ft.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(full).map_err(LayerError::io("reading symlink", full))?;
            self.append(
                header,
                path,
                Some(target.as_os_str().as_bytes()),
                records,
                io::empty(),
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            header.set_entry_type(kind);
            let bad = |e: io::Error| LayerError::Io {
                op: "encoding device number of",
                path: full.into(),
                source: e,
            };
            header
                .set_device_major(major(meta.rdev()) as u32)
                .map_err(bad)?;
            header
                .set_device_minor(minor(meta.rdev()) as u32)
                .map_err(bad)?;
            self.append(header, path, None, records, io::empty())
        } else if ft.is_fifo() {
            header.set_entry_type(EntryType::Fifo);
            self.append(header, path, None, records, io::empty())
        } else {
            Err(LayerError::Io {
                op: "archiving",
                path: full.into(),
                source: io::Error::new(io::ErrorKind::Unsupported, "unsupported file type"),
            })
        }
    }

    /// Writes `header` for `path` (and `link`), preceded by a PAX header
    /// when there are records or a name does not fit ustar.
    fn append(
        &mut self,
        mut header: Header,
        path: &[u8],
        link: Option<&[u8]>,
        mut records: Vec<(Vec<u8>, Vec<u8>)>,
        data: impl Read,
    ) -> Result<(), LayerError> {
        let name_len = header.as_old().name.len();
        if path.len() > name_len {
            records.insert(0, (b"path".to_vec(), path.to_vec()));
        }
        set_field(&mut header.as_old_mut().name, path);
        if let Some(link) = link {
            if link.len() > header.as_old().linkname.len() {
                records.push((b"linkpath".to_vec(), link.to_vec()));
            }
            set_field(&mut header.as_old_mut().linkname, link);
        }
        if !records.is_empty() {
            let body = pax_body(&records);
            let mut pax = Header::new_ustar();
            pax.set_entry_type(EntryType::XHeader);
            set_field(&mut pax.as_old_mut().name, b"././@PaxHeader");
            pax.set_mode(0o644);
            pax.set_size(body.len() as u64);
            pax.set_mtime(0);
            pax.set_cksum();
            self.builder
                .append(&pax, &body[..])
                .map_err(|source| LayerError::Write { source })?;
        }
        header.set_cksum();
        self.builder
            .append(&header, data)
            .map_err(|source| LayerError::Write { source })
    }
}

/// Copies `value` into a fixed-size header field, truncated (the full value
/// is then in a PAX record) and NUL padded.
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        out.extend_from_slice(parent);
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// PAX extended header records: `"<len> <key>=<value>\n"`, where `<len>`
/// counts the whole record including its own digits (POSIX pax, "pax
/// Extended Header").
pub(crate) fn pax_body(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = len.to_string().len() + rest;
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(key);
        body.push(b'=');
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    body
}

/// Reads exactly the size recorded in the header: a file that shrank while
/// being archived is an error rather than a corrupt tar.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let body = pax_body(&[(b"path".to_vec(), vec![b'a'; 3])]);
        assert_eq!(body, b"12 path=aaa\n");
        assert_eq!(pax_body(&[(b"k".to_vec(), vec![b'v'; 4])]), b"9 k=vvvv\n");
        // 9 + 1 digit would be 10, which has two digits.
        assert_eq!(pax_body(&[(b"k".to_vec(), vec![b'v'; 5])]), b"11 k=vvvvv\n");
        let body = pax_body(&[(b"k".to_vec(), vec![b'v'; 95])]);
        assert_eq!(body.len(), 102);
        assert!(body.starts_with(b"102 "));
    }
}
