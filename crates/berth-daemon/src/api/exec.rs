//! The exec role of the API backend: wire types to and from the exec
//! records of [`crate::containers::exec`].

use berth_api::backend::{
    ExecBackend, ExecCreateBody, ExecInspect, ExecProcessConfig, ExecStartBody, ExecStream,
};
use berth_api::error::ApiResult;
use berth_api::ApiError;

use super::Api;
use crate::containers::exec::ExecConfig;

fn e(err: crate::containers::ContainerError) -> ApiError {
    ApiError::from_err(err)
}

/// `[height, width]` when both are given.
fn console_size(v: &Option<Vec<u16>>) -> ApiResult<Option<[u16; 2]>> {
    match v.as_deref() {
        None | Some([]) => Ok(None),
        Some([h, w]) => Ok(Some([*h, *w])),
        Some(other) => Err(ApiError::bad_request(format!(
            "ConsoleSize must be [height, width], got {other:?}"
        ))),
    }
}

impl ExecBackend for Api {
    fn create_exec(&self, container: &str, body: ExecCreateBody) -> ApiResult<String> {
        let c = self.containers.store().get(container).map_err(e)?;
        let config = ExecConfig {
            cmd: body.cmd.unwrap_or_default(),
            env: body.env.unwrap_or_default(),
            user: body.user,
            working_dir: body.working_dir,
            tty: body.tty,
            privileged: body.privileged,
            attach_stdin: body.attach_stdin,
            attach_stdout: body.attach_stdout,
            attach_stderr: body.attach_stderr,
            detach_keys: body.detach_keys,
            console_size: console_size(&body.console_size)?,
        };
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        self.containers.exec_create(&c, config).map_err(e)
    }

    fn start_exec(&self, id: &str, opts: ExecStartBody) -> ApiResult<Option<ExecStream>> {
        let exec = self.containers.store().execs.get(id).map_err(e)?;
        let size = console_size(&opts.console_size)?;
        let tty = exec.config.tty;
        Ok(self
            .containers
            .exec_start(&exec, opts.detach, size)
            .map_err(e)?
            .map(|io| ExecStream { tty, io }))
    }

    fn inspect_exec(&self, id: &str) -> ApiResult<ExecInspect> {
        let exec = self.containers.store().execs.get(id).map_err(e)?;
        let s = exec.state();
        let cfg = &exec.config;
        Ok(ExecInspect {
            can_remove: false,
            detach_keys: cfg.detach_keys.clone(),
            id: exec.id.clone(),
            running: s.running,
            exit_code: s.exit_code,
            process_config: ExecProcessConfig {
                privileged: cfg.privileged,
                user: cfg.user.clone(),
                tty: cfg.tty,
                entrypoint: cfg.cmd.first().cloned().unwrap_or_default(),
                arguments: cfg.cmd.iter().skip(1).cloned().collect(),
            },
            open_stdin: cfg.attach_stdin,
            open_stderr: cfg.attach_stderr,
            open_stdout: cfg.attach_stdout,
            container_id: exec.container_id.clone(),
            pid: s.pid,
        })
    }

    fn resize_exec(&self, id: &str, height: u16, width: u16) -> ApiResult<()> {
        let exec = self.containers.store().execs.get(id).map_err(e)?;
        if !exec.config.tty {
            return Err(ApiError::new(
                berth_core::ErrorKind::Conflict,
                format!("Exec {id} has no tty"),
            ));
        }
        self.containers.exec_resize(&exec, height, width).map_err(e)
    }
}
