//! `create`: resolve the image, merge its defaults into the container
//! config as dockerd does, make the writable layer directories and persist
//! the record. Nothing runs yet.

use std::collections::BTreeMap;

use berth_api::container_types::{ContainerConfig, ContainerCreateBody};
use berth_core::HasKind;

use super::names;
use super::record::{ContainerRecord, MountPoint, State};
use super::ContainerService;
use super::{io, ContainerError};

/// Image env first, then the container's, a later `KEY=` replacing an earlier one.
pub fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in image.iter().chain(user.iter()) {
        let key = e.split('=').next().unwrap_or(e);
        out.retain(|x| x.split('=').next().unwrap_or(x) != key);
        out.push(e.clone());
    }
    out
}

impl ContainerService {
    pub(crate) fn container_create(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>), ContainerError> {
        let mut config = body.config;
        let mut host = body.host_config;
        if config.image.is_empty() {
            return Err(ContainerError::InvalidArgument(
                "config.Image is required".into(),
            ));
        }
        let id = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        // The name is claimed before anything is made and held until the
        // container is inserted: a losing create leaves nothing behind.
        let claim = match name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                names::validate(n).map_err(ContainerError::InvalidArgument)?;
                self.containers.claim_name(n, &id)?
            }
            None => loop {
                let n = names::generate(&|n| self.containers.name_taken(n));
                if let Ok(claim) = self.containers.claim_name(&n, &id) {
                    break claim;
                }
            },
        };
        let name = claim.name().to_string();
        let image_id = self
            .images
            .store
            .resolve(&config.image)
            .map_err(|e| match e {
                // The image the client named is not here.
                berth_image::ImageError::NotFound(_) => {
                    ContainerError::NotFoundOther(format!("No such image: {}", config.image))
                }
                e if e.kind() == berth_core::ErrorKind::InvalidArgument => {
                    ContainerError::InvalidArgument(e.to_string())
                }
                e => ContainerError::Runtime(e.to_string()),
            })?;
        let image = self
            .images
            .store
            .config(&image_id)
            .map_err(|e| ContainerError::Runtime(e.to_string()))?;
        let ic = image.config.clone().unwrap_or_default();

        // Merge the image's defaults (dockerd's daemon/create.go merge rules).
        config.env = Some(merge_env(
            ic.env.as_deref().unwrap_or(&[]),
            config.env.as_deref().unwrap_or(&[]),
        ));
        let user_entrypoint = config.entrypoint.clone().filter(|e| !e.is_empty());
        if config.entrypoint.is_none() {
            config.entrypoint = ic.entrypoint.clone();
            if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                config.cmd = ic.cmd.clone();
            }
        } else if user_entrypoint.is_none() {
            // `--entrypoint ""` clears the image's entrypoint and keeps its cmd.
            config.entrypoint = None;
            if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                config.cmd = ic.cmd.clone();
            }
        }
        if config.working_dir.is_empty() {
            config.working_dir = ic.working_dir.clone().unwrap_or_default();
        }
        if config.user.is_empty() {
            config.user = ic.user.clone().unwrap_or_default();
        }
        let mut labels: BTreeMap<String, String> = ic.labels.clone().unwrap_or_default();
        labels.extend(config.labels.clone().unwrap_or_default());
        config.labels = Some(labels);
        if let Some(ports) = &ic.exposed_ports {
            let mut p = config.exposed_ports.clone().unwrap_or_default();
            for (k, v) in ports {
                p.entry(k.clone()).or_insert_with(|| v.clone());
            }
            config.exposed_ports = Some(p);
        }
        if let Some(v) = &ic.volumes {
            let mut vols = config.volumes.clone().unwrap_or_default();
            for (k, val) in v {
                vols.entry(k.clone()).or_insert_with(|| val.clone());
            }
            config.volumes = Some(vols);
        }
        if config.stop_signal.is_none() {
            config.stop_signal = ic.stop_signal.clone();
        }
        if config.healthcheck.is_none() {
            config.healthcheck = ic.healthcheck.clone();
        }
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(ContainerError::InvalidArgument(
                "no command specified".into(),
            ));
        }
        validate_host_config(&host)?;
        let warnings = super::host_config::check(&host)?;
        super::namespaces::validate_and_default(&mut host, &config.hostname)?;

        let mounts = self.resolve_mounts(&config, &host)?;
        let networks = self.initial_networks(&host, body.networking_config.as_ref())?;
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: berth_image::config::now_rfc3339(),
            image: config.image.clone(),
            image_id: image_id.to_string(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config: normalize(config),
            host_config: host,
            state: State::default(),
            restart_count: 0,
            mounts,
            networks,
            ports: vec![],
        };
        let c = self.containers.make(record.clone());
        for d in [c.upper_dir(), c.work_dir()] {
            std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        }
        // The record is written last: a directory without it is swept at start.
        record
            .save(&c.dir)
            .map_err(io(format!("saving container {id}")))?;
        self.containers.insert(c);
        drop(claim);
        self.events
            .container(&record, crate::events::ContainerAction::Create);
        Ok((id, warnings))
    }
}

impl ContainerService {
    /// `-v`, `--mount` and the config's `Volumes` as mount points: binds
    /// keep their host path; named volumes are created when missing; paths
    /// nothing else covers get anonymous volumes.
    fn resolve_mounts(
        &self,
        config: &ContainerConfig,
        host: &berth_api::container_types::HostConfig,
    ) -> Result<Vec<MountPoint>, ContainerError> {
        let mut out: Vec<MountPoint> = Vec::new();
        let vol = |name: Option<&str>| -> Result<(String, String, bool), ContainerError> {
            let v = self
                .volumes
                .create(name, BTreeMap::new(), BTreeMap::new())
                .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
            let anonymous = v.labels.contains_key(crate::volumes::ANONYMOUS_LABEL);
            Ok((
                v.name.clone(),
                self.volumes.mountpoint(&v.name).display().to_string(),
                anonymous,
            ))
        };
        for b in host.binds.clone().unwrap_or_default() {
            let parts: Vec<&str> = b.split(':').collect();
            let (src, dst, opts) = match parts.as_slice() {
                [s, d] => (*s, *d, ""),
                [s, d, o] => (*s, *d, *o),
                _ => {
                    return Err(ContainerError::InvalidArgument(format!(
                        "invalid volume specification: '{b}'"
                    )))
                }
            };
            if !dst.starts_with('/') {
                return Err(ContainerError::InvalidArgument(format!("invalid volume specification: '{b}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute")));
            }
            let rw = !opts.split(',').any(|o| o == "ro");
            if src.starts_with('/') {
                out.push(MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: src.into(),
                    destination: dst.into(),
                    rw,
                    anonymous: false,
                });
            } else {
                let (name, source, anonymous) = vol(Some(src))?;
                out.push(MountPoint {
                    kind: "volume".into(),
                    name,
                    source,
                    destination: dst.into(),
                    rw,
                    anonymous,
                });
            }
        }
        for m in host.mounts.clone().unwrap_or_default() {
            match m.kind.as_str() {
                "bind" => out.push(MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: m.source,
                    destination: m.target,
                    rw: !m.read_only,
                    anonymous: false,
                }),
                "volume" => {
                    let (name, source, anonymous) =
                        vol(Some(m.source.as_str()).filter(|s| !s.is_empty()))?;
                    out.push(MountPoint {
                        kind: "volume".into(),
                        name,
                        source,
                        destination: m.target,
                        rw: !m.read_only,
                        anonymous,
                    });
                }
                _ => {}
            }
        }
        // `--volumes-from C[:ro|rw]`: C's binds and volumes, at the same
        // paths, unless this container mounts something there itself.
        for from in host.volumes_from.clone().unwrap_or_default() {
            let (name, mode) = from.split_once(':').unwrap_or((from.as_str(), ""));
            let readonly = match mode {
                "" | "rw" => false,
                "ro" => true,
                other => {
                    return Err(ContainerError::InvalidArgument(format!(
                        "invalid mode for volumes-from: {other} (HostConfig.VolumesFrom {from:?})"
                    )))
                }
            };
            let source = self.containers.get(name)?;
            for m in source.record().mounts {
                if out.iter().any(|o| o.destination == m.destination) {
                    continue;
                }
                out.push(MountPoint {
                    rw: m.rw && !readonly,
                    // Owned by the source container: `rm -v` here keeps it.
                    anonymous: false,
                    ..m
                });
            }
        }
        for path in config.volumes.clone().unwrap_or_default().keys() {
            if out.iter().any(|m| &m.destination == path)
                || host.tmpfs.as_ref().is_some_and(|t| t.contains_key(path))
            {
                continue;
            }
            let (name, source, _) = vol(None)?;
            out.push(MountPoint {
                kind: "volume".into(),
                name,
                source,
                destination: path.clone(),
                rw: true,
                anonymous: true,
            });
        }
        Ok(out)
    }
}

fn normalize(mut c: ContainerConfig) -> ContainerConfig {
    if c.exposed_ports.as_ref().is_some_and(|p| p.is_empty()) {
        c.exposed_ports = None;
    }
    c
}

fn validate_host_config(h: &berth_api::container_types::HostConfig) -> Result<(), ContainerError> {
    match h.restart_policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid restart policy {other:?}"
            )))
        }
    }
    if h.restart_policy.name != "on-failure" && h.restart_policy.maximum_retry_count != 0 {
        return Err(ContainerError::InvalidArgument(
            "maximum retry count cannot be used with restart policy other than on-failure".into(),
        ));
    }
    if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return Err(ContainerError::InvalidArgument(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    if h.memory != 0 && h.memory < 6 * 1024 * 1024 {
        return Err(ContainerError::InvalidArgument(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    if h.memory_swap > 0 && h.memory > 0 && h.memory_swap < h.memory {
        return Err(ContainerError::InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn env_merges_by_key() {
        let image = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let user = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&image, &user), vec!["PATH=/bin", "A=2", "B=3"]);
    }
}
