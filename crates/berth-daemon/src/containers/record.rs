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
