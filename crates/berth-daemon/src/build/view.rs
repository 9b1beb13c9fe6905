//! A read-only view of an image's root file system for the steps that read
//! it without a container (`COPY --from`, `--chown` name lookup, the
//! metadata of existing parent directories). Several layers are stacked
//! with a lowerdir-only (hence read-only) overlay mount that is detached on
//! drop; one layer is used as is; no layer is an empty directory.

use std::path::{Path, PathBuf};

use berth_core::Digest;
use nix::mount::{umount2, MntFlags};

use super::{err, BuildError};
use crate::build::BuildService;

pub(crate) struct RootView {
    path: PathBuf,
    mounted: Option<PathBuf>,
}

impl RootView {
    /// A view of `image` (`None`: scratch) using `scratch_dir` (which must
    /// not exist yet) as mount point when one is needed.
    pub fn open(
        service: &BuildService,
        image: Option<&Digest>,
        scratch_dir: &Path,
    ) -> Result<RootView, BuildError> {
        let layers = match image {
            Some(id) => service
                .images
                .store
                .layer_dirs(id)
                .map_err(|e| BuildError::new(e.to_string()))?,
            None => Vec::new(),
        };
        std::fs::create_dir_all(scratch_dir).map_err(|e| err("creating a rootfs view", e))?;
        match layers.len() {
            0 => Ok(RootView {
                path: scratch_dir.to_path_buf(),
                mounted: None,
            }),
            1 => Ok(RootView {
                path: layers[0].clone(),
                mounted: None,
            }),
            _ => {
                berth_snapshot::mount_overlay(scratch_dir, &layers, None, true).map_err(|e| {
                    BuildError::new(format!("mounting a view of the image's rootfs: {e}"))
                })?;
                Ok(RootView {
                    path: scratch_dir.to_path_buf(),
                    mounted: Some(scratch_dir.to_path_buf()),
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootView {
    fn drop(&mut self) {
        if let Some(p) = &self.mounted {
            if let Err(e) = umount2(p, MntFlags::MNT_DETACH) {
                tracing::warn!(path = %p.display(), error = %e, "unmounting a build rootfs view");
            }
        }
    }
}
