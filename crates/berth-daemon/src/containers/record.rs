//! The persisted description of one container: what it was created with
//! and its last known state. Stored as `<data-root>/containers/<id>/config.v2.json`,
//! replaced atomically (write, fsync, rename) on every change, so a crash
//! leaves the old or the new record, never half of one.

use std::io::Write;
use std::path::Path;

use berth_api::container_types::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct State {
    pub status: Status,
    pub pid: i64,
    pub shim_pid: i64,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Set by an explicit stop, so `unless-stopped`/`always` do not restart.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// Docker's `State.Health` (Status, FailingStreak, Log) when the
    /// container has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    #[serde(default)]
    pub restart_count: i64,
    /// Binds and volumes, resolved at create time.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// The networks the container is connected to, by network name; the
    /// addresses are filled in while it runs.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, Endpoint>,
    /// Host ports published while it runs.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

/// A container's attachment to one network (`NetworkSettings.Networks`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Endpoint {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`: the address asked for (IPAMConfig.IPv4Address).
    #[serde(default)]
    pub ipam_ipv4: String,
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub prefix: u8,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub mac: String,
    /// Host end of the veth, and the interface name inside.
    #[serde(default)]
    pub host_veth: String,
    #[serde(default)]
    pub ifname: String,
}

/// One published port while the container runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedPort {
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// A bind mount or volume of a container (`inspect`'s `Mounts`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountPoint {
    /// `bind` or `volume`.
    pub kind: String,
    /// Volume name (empty for binds).
    pub name: String,
    /// Host path.
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// Remove with the container (`rm -v`): anonymous volumes.
    pub anonymous: bool,
}

impl ContainerRecord {
    /// Writes the record atomically and durably: temporary file, fsync,
    /// rename. The directory is synced only when the record is new: a
    /// rename over an existing record leaves the name on the old or the new
    /// file after a crash, both whole, so the second fsync would buy nothing
    /// on every state change of a running container.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join("config.v2.json");
        let tmp = dir.join(".config.v2.json.tmp");
        let existed = path.exists();
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self).expect("record serializes"))?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        if existed {
            return Ok(());
        }
        std::fs::File::open(dir)?.sync_all()
    }

    pub fn load(dir: &Path) -> std::io::Result<ContainerRecord> {
        let bytes = std::fs::read(dir.join("config.v2.json"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/record-current")
    }

    /// A record as the daemon wrote it before HostConfig was fully typed
    /// (the fields berth did not model were flattened from a map) still
    /// loads, into typed fields, and saving it again loses nothing.
    #[test]
    fn a_record_in_the_current_format_loads_and_keeps_every_field() {
        let r = ContainerRecord::load(&fixture()).expect("loading the fixture record");
        let h = &r.host_config;
        assert_eq!(h.dns.as_deref(), Some(&["9.9.9.9".to_string()][..]));
        assert_eq!(
            h.dns_search.as_deref(),
            Some(&["example.org".to_string()][..])
        );
        assert_eq!(h.dns_options.as_deref(), Some(&["ndots:2".to_string()][..]));
        assert_eq!(
            h.extra_hosts.as_deref(),
            Some(&["db:10.0.0.5".to_string()][..])
        );
        assert!(h.publish_all_ports);
        let bindings = h.port_binding_list();
        assert_eq!(bindings.len(), 1);
        assert_eq!(
            (bindings[0].0.as_str(), bindings[0].1.host_port.as_str()),
            ("80/tcp", "8080")
        );
        assert_eq!(h.ipc_mode, "");
        assert_eq!(h.console_size.as_deref(), Some(&[0, 0][..]));
        let tmpfs = &h.mounts.as_ref().unwrap()[0];
        assert_eq!(tmpfs.tmpfs_options.as_ref().unwrap().size_bytes, 1 << 20);
        assert_eq!(r.config.mac_address.as_deref(), Some("02:42:ac:11:00:09"));
        assert_eq!(r.state.status, Status::Running);
        assert_eq!(r.state.pid, 4242);
        assert_eq!(r.networks["bridge"].ip, "172.17.0.9");

        // Every key of the stored JSON comes back with the same value.
        let stored: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture().join("config.v2.json")).unwrap())
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        r.save(dir.path()).unwrap();
        let again = ContainerRecord::load(dir.path()).unwrap();
        let resaved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.v2.json")).unwrap())
                .unwrap();
        for section in [
            "host_config",
            "config",
            "state",
            "networks",
            "mounts",
            "ports",
        ] {
            let (old, new) = (&stored[section], &resaved[section]);
            if let Some(fields) = old.as_object() {
                for (k, v) in fields {
                    assert_eq!(&new[k], v, "{section}.{k} changed on save");
                }
            } else {
                assert_eq!(old, new, "{section} changed on save");
            }
        }
        assert_eq!(again.host_config, r.host_config);
        assert_eq!(again.config, r.config);
    }
}
