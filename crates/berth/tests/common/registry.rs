//! A berth registry served inside the test process, on its own runtime.
#![allow(dead_code)]

use std::path::Path;

use berth_registry::{AuthConfig, Config, ServerHandle};

/// A registry served in this process, on its own runtime.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    handle: Option<ServerHandle>,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: impl FnOnce(&Path) -> AuthConfig) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::new("127.0.0.1:0", dir.path().join("storage"));
        cfg.auth = auth(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.block_on(berth_registry::serve(cfg)).unwrap();
        Registry {
            rt,
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.handle.as_ref().unwrap().local_addr().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}
