//! A compose project as the swarm objects of a stack, the way `docker stack
//! deploy` converts it: every object named `STACK_key` (unless the file
//! names it or it is external) and labelled `com.docker.stack.namespace`;
//! services on the `STACK_default` overlay network when they name none.
//!
//! Pure: the data of secrets, configs and env files comes through the
//! reader the caller passes; IDs of secrets and configs are left empty for
//! the caller to fill once the objects exist.

mod service;

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_wire::swarm::{ConfigSpec, SecretSpec, ServiceSpec};
use serde::Serialize;

use crate::interpolate::Environment;
use crate::model::{FileObject, Project};

pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// Reads a file named in the project (secret and config data, env files).
pub type Reader<'a> = &'a dyn Fn(&str) -> Result<Vec<u8>, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

/// `POST /networks/create` for a stack network.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreate {
    pub name: String,
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "IPAM", skip_serializing_if = "Option::is_none")]
    pub ipam: Option<serde_json::Value>,
}

/// Everything a deploy creates or updates, in creation order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stack {
    pub networks: Vec<NetworkCreate>,
    /// Networks the services use that must already exist.
    pub external_networks: Vec<String>,
    pub secrets: Vec<SecretSpec>,
    pub external_secrets: Vec<String>,
    pub configs: Vec<ConfigSpec>,
    pub external_configs: Vec<String>,
    pub services: Vec<ServiceSpec>,
}

/// `STACK_name`, docker's `convert.Namespace.Scope`.
pub fn scoped(stack: &str, name: &str) -> String {
    format!("{stack}_{name}")
}

pub fn namespace_labels(
    stack: &str,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = labels.clone();
    l.insert(NAMESPACE_LABEL.into(), stack.into());
    l
}

/// Converts `project` for stack `stack`.
pub fn convert(
    stack: &str,
    project: &Project,
    env: &Environment,
    read: Reader,
) -> Result<Stack, ConvertError> {
    let mut out = Stack::default();
    // Networks the services use, by their key in the file.
    let mut used: Vec<String> = Vec::new();
    for svc in project.services.values() {
        if svc.networks.is_empty() {
            used.push("default".into());
        }
        used.extend(svc.networks.keys().cloned());
    }
    used.sort();
    used.dedup();
    for key in &used {
        let declared = project.networks.get(key);
        if declared.is_none() && key != "default" {
            return Err(ConvertError(format!(
                "service network {key:?} is not declared under the top-level networks"
            )));
        }
        let net = declared.cloned().unwrap_or_default();
        if net.external {
            out.external_networks
                .push(net.name.unwrap_or_else(|| key.clone()));
            continue;
        }
        let ipam = net.ipam.as_ref().map(|i| {
            serde_json::json!({
                "Driver": i.driver.clone().unwrap_or_else(|| "default".into()),
                "Options": i.options,
                "Config": i.config.iter().map(|p| serde_json::json!({
                    "Subnet": p.subnet, "IPRange": p.ip_range, "Gateway": p.gateway,
                    "AuxiliaryAddresses": p.aux_addresses,
                })).collect::<Vec<_>>(),
            })
        });
        out.networks.push(NetworkCreate {
            name: net.name.clone().unwrap_or_else(|| scoped(stack, key)),
            driver: net.driver.clone().unwrap_or_else(|| "overlay".into()),
            options: net.driver_opts.clone(),
            internal: net.internal,
            attachable: net.attachable,
            labels: namespace_labels(stack, &net.labels),
            ipam,
        });
    }
    for (key, s) in &project.secrets {
        match data(stack, "secret", key, s, env, read)? {
            None => out
                .external_secrets
                .push(s.name.clone().unwrap_or_else(|| key.clone())),
            Some((name, data)) => out.secrets.push(SecretSpec {
                name: Some(name),
                labels: Some(namespace_labels(stack, &s.labels)),
                data: Some(data),
                ..Default::default()
            }),
        }
    }
    for (key, c) in &project.configs {
        match data(stack, "config", key, c, env, read)? {
            None => out
                .external_configs
                .push(c.name.clone().unwrap_or_else(|| key.clone())),
            Some((name, data)) => out.configs.push(ConfigSpec {
                name: Some(name),
                labels: Some(namespace_labels(stack, &c.labels)),
                data: Some(data),
                ..Default::default()
            }),
        }
    }
    for (key, svc) in &project.services {
        out.services
            .push(service::convert(stack, key, svc, project, env, read)?);
    }
    Ok(out)
}

/// The name and base64 data of a secret or config; `None` when external.
fn data(
    stack: &str,
    kind: &str,
    key: &str,
    obj: &FileObject,
    env: &Environment,
    read: Reader,
) -> Result<Option<(String, String)>, ConvertError> {
    if obj.external {
        return Ok(None);
    }
    let name = obj.name.clone().unwrap_or_else(|| scoped(stack, key));
    let bytes = if let Some(file) = &obj.file {
        read(file).map_err(|e| ConvertError(format!("{kind} {key}: reading {file}: {e}")))?
    } else if let Some(var) = &obj.environment {
        env.get(var)
            .ok_or_else(|| {
                ConvertError(format!(
                    "{kind} {key}: environment variable {var} is not set"
                ))
            })?
            .clone()
            .into_bytes()
    } else if let Some(content) = &obj.content {
        content.clone().into_bytes()
    } else {
        return Err(ConvertError(format!(
            "{kind} {key}: needs one of file, environment, content or external"
        )));
    };
    Ok(Some((
        name,
        base64::engine::general_purpose::STANDARD.encode(bytes),
    )))
}
