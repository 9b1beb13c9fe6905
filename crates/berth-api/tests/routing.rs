//! The API adapter over a fake backend: which backend method a request
//! reaches and with what arguments, the status codes dockerd answers with,
//! and Docker's `{"message": …}` error bodies. No engine, no root: the fake
//! records each call and fails on the names the tests reserve for it.

use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth_api::backend::*;
use berth_api::error::ApiResult;
use berth_api::filters::Filters;
use berth_api::types::*;
use berth_api::ApiError;
use berth_core::ErrorKind;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Records calls; names starting with `missing`, `busy`, `bad` or `broken`
/// fail with NotFound, Conflict, InvalidArgument or Internal.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn call(&self, what: String) {
        self.calls.lock().unwrap().push(what);
    }

    fn outcome(&self, name: &str) -> ApiResult<()> {
        let fail = |kind, text: &str| Err(ApiError::new(kind, format!("{text}: {name}")));
        if name.starts_with("missing") {
            fail(ErrorKind::NotFound, "No such container")
        } else if name.starts_with("busy") {
            fail(ErrorKind::Conflict, "in use")
        } else if name.starts_with("bad") {
            fail(ErrorKind::InvalidArgument, "invalid")
        } else if name.starts_with("broken") {
            fail(ErrorKind::Internal, "disk on fire")
        } else {
            Ok(())
        }
    }

    fn did(&self, what: &str, name: &str) -> ApiResult<()> {
        self.call(format!("{what} {name}"));
        self.outcome(name)
    }
}

fn unused<T>(what: &str) -> ApiResult<T> {
    Err(ApiError::new(
        ErrorKind::NotImplemented,
        format!("{what}: not used by these tests"),
    ))
}

impl SystemBackend for Fake {
    fn version(&self) -> Version {
        self.call("version".into());
        Version {
            version: "fake".into(),
            ..Default::default()
        }
    }
    fn info(&self) -> ApiResult<Info> {
        unused("info")
    }
    fn disk_usage(&self) -> ApiResult<DiskUsage> {
        unused("disk_usage")
    }
    fn subscribe_events(&self, _since: Option<i64>) -> EventSubscription {
        let (_tx, live) = tokio::sync::mpsc::channel(1);
        EventSubscription { past: vec![], live }
    }
}

impl ImageBackend for Fake {
    fn list_images(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
        self.call(format!("list_images all={}", opts.all));
        Ok(vec![])
    }
    fn inspect_image(&self, name: &str) -> ApiResult<ImageInspect> {
        self.did("inspect_image", name)?;
        unused("inspect_image body")
    }
    fn image_history(&self, name: &str) -> ApiResult<Vec<HistoryItem>> {
        self.did("image_history", name)?;
        Ok(vec![])
    }
    fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()> {
        self.did(&format!("tag_image {repo} {tag:?}"), name)
    }
    fn remove_image(&self, name: &str, force: bool, _noprune: bool) -> ApiResult<Vec<DeleteItem>> {
        self.did(&format!("remove_image force={force}"), name)?;
        Ok(vec![DeleteItem::Untagged(name.to_string())])
    }
    fn prune_images(&self, _filters: &Filters) -> ApiResult<ImagePruneReport> {
        unused("prune_images")
    }
    fn import_image(&self, _body: Box<dyn Read + Send>, _req: ImportRequest) -> ApiResult<String> {
        unused("import_image")
    }
    fn load_images(&self, _body: Box<dyn Read + Send>) -> ApiResult<Vec<String>> {
        unused("load_images")
    }
    fn save_images(&self, _names: &[String], _format: Option<&str>) -> ApiResult<SaveJob> {
        unused("save_images")
    }
}

impl ContainerBackend for Fake {
    fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> ApiResult<ContainerCreateResponse> {
        let name = name.unwrap_or("");
        self.did(
            &format!("create_container image={}", body.config.image),
            name,
        )?;
        Ok(ContainerCreateResponse {
            id: "c0ffee".into(),
            warnings: vec![],
        })
    }
    fn list_containers(&self, opts: ListContainersOptions) -> ApiResult<Vec<ContainerSummary>> {
        self.call(format!(
            "list_containers all={} limit={:?}",
            opts.all, opts.limit
        ));
        Ok(vec![])
    }
    fn inspect_container(&self, name: &str, _size: bool) -> ApiResult<ContainerInspect> {
        self.did("inspect_container", name)?;
        Ok(ContainerInspect {
            id: name.to_string(),
            ..Default::default()
        })
    }
    fn start_container(&self, name: &str) -> ApiResult<bool> {
        self.did("start_container", name)?;
        Ok(!name.starts_with("running"))
    }
    fn stop_container(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> ApiResult<bool> {
        self.did(&format!("stop_container {signal:?} {timeout:?}"), name)?;
        Ok(!name.starts_with("stopped"))
    }
    fn restart_container(&self, name: &str, _s: Option<&str>, _t: Option<i64>) -> ApiResult<()> {
        self.did("restart_container", name)
    }
    fn kill_container(&self, name: &str, signal: Option<&str>) -> ApiResult<()> {
        self.did(&format!("kill_container {signal:?}"), name)
    }
    fn remove_container(&self, name: &str, force: bool, volumes: bool) -> ApiResult<()> {
        self.did(&format!("remove_container force={force} v={volumes}"), name)
    }
    fn wait_container(
        &self,
        name: &str,
        condition: &str,
    ) -> ApiResult<BoxFut<ApiResult<ContainerWaitResponse>>> {
        self.did(&format!("wait_container {condition}"), name)?;
        Ok(Box::pin(async {
            Ok(ContainerWaitResponse {
                status_code: 3,
                error: None,
            })
        }))
    }
    fn container_logs(&self, _name: &str, _opts: LogsOptions) -> ApiResult<LogStream> {
        unused("container_logs")
    }
    fn attach_container(
        &self,
        _name: &str,
        _opts: AttachOptions,
    ) -> ApiResult<(bool, BoxFut<ApiResult<Attached>>)> {
        unused("attach_container")
    }
    fn resize_container(&self, name: &str, height: u16, width: u16) -> ApiResult<()> {
        self.did(&format!("resize_container {height}x{width}"), name)
    }
    fn rename_container(&self, name: &str, new_name: &str) -> ApiResult<()> {
        self.did(&format!("rename_container {new_name}"), name)
    }
    fn prune_containers(&self, _filters: &Filters) -> ApiResult<serde_json::Value> {
        unused("prune_containers")
    }
    fn pause_container(&self, name: &str, pause: bool) -> ApiResult<()> {
        self.did(&format!("pause_container {pause}"), name)
    }
    fn top_container(&self, _name: &str, _ps_args: &str) -> ApiResult<serde_json::Value> {
        unused("top_container")
    }
    fn container_changes(&self, _name: &str) -> ApiResult<serde_json::Value> {
        unused("container_changes")
    }
    fn container_stats(&self, _name: &str) -> ApiResult<serde_json::Value> {
        unused("container_stats")
    }
    fn update_container(&self, _name: &str, _u: serde_json::Value) -> ApiResult<Vec<String>> {
        unused("update_container")
    }
    fn commit_container(&self, _req: CommitContainer) -> ApiResult<String> {
        unused("commit_container")
    }
    fn container_path_stat(&self, _name: &str, _path: &str) -> ApiResult<serde_json::Value> {
        unused("container_path_stat")
    }
    fn container_archive(&self, _n: &str, _p: &str) -> ApiResult<(serde_json::Value, SaveJob)> {
        unused("container_archive")
    }
    fn container_extract(&self, _n: &str, _p: &str, _b: Box<dyn Read + Send>) -> ApiResult<()> {
        unused("container_extract")
    }
}

impl ExecBackend for Fake {
    fn create_exec(&self, container: &str, body: ExecCreateBody) -> ApiResult<String> {
        self.did(&format!("create_exec {:?}", body.cmd), container)?;
        Ok("e1".into())
    }
    fn start_exec(&self, _id: &str, _opts: ExecStartBody) -> ApiResult<Option<ExecStream>> {
        unused("start_exec")
    }
    fn inspect_exec(&self, _id: &str) -> ApiResult<ExecInspect> {
        unused("inspect_exec")
    }
    fn resize_exec(&self, _id: &str, _h: u16, _w: u16) -> ApiResult<()> {
        unused("resize_exec")
    }
}

impl VolumeBackend for Fake {
    fn list_volumes(&self, _filters: &Filters) -> ApiResult<serde_json::Value> {
        unused("list_volumes")
    }
    fn create_volume(&self, _body: serde_json::Value) -> ApiResult<serde_json::Value> {
        unused("create_volume")
    }
    fn inspect_volume(&self, name: &str) -> ApiResult<serde_json::Value> {
        self.did("inspect_volume", name)?;
        Ok(serde_json::json!({ "Name": name }))
    }
    fn remove_volume(&self, name: &str, force: bool) -> ApiResult<()> {
        self.did(&format!("remove_volume force={force}"), name)
    }
    fn prune_volumes(&self, _filters: &Filters) -> ApiResult<serde_json::Value> {
        unused("prune_volumes")
    }
}

impl NetworkBackend for Fake {
    fn list_networks(&self, _filters: &Filters) -> ApiResult<Vec<serde_json::Value>> {
        unused("list_networks")
    }
    fn inspect_network(&self, name: &str, _verbose: bool) -> ApiResult<serde_json::Value> {
        self.did("inspect_network", name)?;
        Ok(serde_json::json!({ "Name": name }))
    }
    fn create_network(&self, _body: serde_json::Value) -> ApiResult<serde_json::Value> {
        unused("create_network")
    }
    fn remove_network(&self, name: &str) -> ApiResult<()> {
        self.did("remove_network", name)
    }
    fn connect_network(&self, _name: &str, _body: serde_json::Value) -> ApiResult<()> {
        unused("connect_network")
    }
    fn disconnect_network(&self, _name: &str, _body: serde_json::Value) -> ApiResult<()> {
        unused("disconnect_network")
    }
    fn prune_networks(&self, _filters: &Filters) -> ApiResult<serde_json::Value> {
        unused("prune_networks")
    }
}

impl BuildBackend for Fake {
    fn build(
        &self,
        _context: Box<dyn Read + Send>,
        _req: BuildRequest,
        _progress: &mut dyn FnMut(BuildMessage),
    ) -> Result<String, BuildFailure> {
        Err(BuildFailure {
            message: "build: not used by these tests".into(),
            code: None,
        })
    }
    fn prune_build_cache(&self, _req: BuildPruneRequest) -> ApiResult<BuildPruneReport> {
        unused("prune_build_cache")
    }
}

impl SwarmBackend for Fake {
    fn swarm_info(&self) -> berth_wire::swarm::SwarmInfo {
        Default::default()
    }
    fn swarm_inspect(&self) -> ApiResult<berth_wire::swarm::Swarm> {
        self.call("swarm_inspect".into());
        Err(ApiError::new(
            ErrorKind::Unavailable,
            "This node is not a swarm manager.",
        ))
    }
    fn swarm_init(&self, req: berth_wire::swarm::SwarmInitRequest) -> ApiResult<String> {
        self.call(format!("swarm_init {}", req.advertise_addr));
        Ok("node1".into())
    }
    fn swarm_join(&self, _body: serde_json::Value) -> ApiResult<()> {
        unused("swarm_join")
    }
    fn swarm_leave(&self, force: bool) -> ApiResult<()> {
        self.call(format!("swarm_leave force={force}"));
        Ok(())
    }
    fn swarm_update(
        &self,
        _spec: berth_wire::swarm::SwarmSpec,
        flags: SwarmUpdateFlags,
    ) -> ApiResult<()> {
        self.call(format!(
            "swarm_update version={} rotate_worker={}",
            flags.version, flags.rotate_worker_token
        ));
        Ok(())
    }
    fn swarm_unlock_key(&self) -> ApiResult<berth_wire::swarm::UnlockKeyResponse> {
        unused("swarm_unlock_key")
    }
    fn swarm_unlock(&self, _req: berth_wire::swarm::SwarmUnlockRequest) -> ApiResult<()> {
        unused("swarm_unlock")
    }
    fn list_nodes(&self, _filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Node>> {
        unused("list_nodes")
    }
    fn inspect_node(&self, _id: &str) -> ApiResult<berth_wire::swarm::Node> {
        unused("inspect_node")
    }
    fn update_node(
        &self,
        id: &str,
        version: u64,
        spec: berth_wire::swarm::NodeSpec,
    ) -> ApiResult<()> {
        self.call(format!(
            "update_node {id} version={version} availability={:?}",
            spec.availability
        ));
        self.outcome(id)
    }
    fn remove_node(&self, _id: &str, _force: bool) -> ApiResult<()> {
        unused("remove_node")
    }
    fn list_services(
        &self,
        filters: &Filters,
        status: bool,
    ) -> ApiResult<Vec<berth_wire::swarm::Service>> {
        self.call(format!("list_services {:?} status={status}", filters.0));
        Ok(Vec::new())
    }
    fn create_service(
        &self,
        spec: berth_wire::swarm::ServiceSpec,
    ) -> ApiResult<berth_wire::swarm::ServiceCreateResponse> {
        let name = spec.name.unwrap_or_default();
        self.did("create_service", &name)?;
        Ok(berth_wire::swarm::ServiceCreateResponse {
            id: format!("id-of-{name}"),
            warnings: None,
        })
    }
    fn inspect_service(
        &self,
        _id: &str,
        _insert_defaults: bool,
    ) -> ApiResult<berth_wire::swarm::Service> {
        unused("inspect_service")
    }
    fn update_service(
        &self,
        id: &str,
        _spec: berth_wire::swarm::ServiceSpec,
        flags: ServiceUpdateFlags,
    ) -> ApiResult<berth_wire::swarm::ServiceUpdateResponse> {
        self.call(format!("update_service {id} version={}", flags.version));
        self.outcome(id)?;
        Ok(Default::default())
    }
    fn remove_service(&self, id: &str) -> ApiResult<()> {
        self.did("remove_service", id)
    }
    fn list_tasks(&self, _filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Task>> {
        unused("list_tasks")
    }
    fn inspect_task(&self, _id: &str) -> ApiResult<berth_wire::swarm::Task> {
        unused("inspect_task")
    }
    fn list_secrets(&self, _filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Secret>> {
        unused("list_secrets")
    }
    fn create_secret(&self, spec: berth_wire::swarm::SecretSpec) -> ApiResult<String> {
        let name = spec.name.unwrap_or_default();
        self.did("create_secret", &name)?;
        Ok(format!("id-of-{name}"))
    }
    fn inspect_secret(&self, _id: &str) -> ApiResult<berth_wire::swarm::Secret> {
        unused("inspect_secret")
    }
    fn update_secret(
        &self,
        _id: &str,
        _version: u64,
        _spec: berth_wire::swarm::SecretSpec,
    ) -> ApiResult<()> {
        unused("update_secret")
    }
    fn remove_secret(&self, id: &str) -> ApiResult<()> {
        self.did("remove_secret", id)
    }
    fn list_configs(&self, _filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Config>> {
        unused("list_configs")
    }
    fn create_config(&self, _spec: berth_wire::swarm::ConfigSpec) -> ApiResult<String> {
        unused("create_config")
    }
    fn inspect_config(&self, _id: &str) -> ApiResult<berth_wire::swarm::Config> {
        unused("inspect_config")
    }
    fn update_config(
        &self,
        _id: &str,
        _version: u64,
        _spec: berth_wire::swarm::ConfigSpec,
    ) -> ApiResult<()> {
        unused("update_config")
    }
    fn remove_config(&self, _id: &str) -> ApiResult<()> {
        unused("remove_config")
    }
}

struct Reply {
    status: StatusCode,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {:?}", self.body))
            .to_string()
    }
}

async fn send(fake: &Arc<Fake>, method: Method, uri: &str, body: &str) -> Reply {
    let app = berth_api::app(fake.clone());
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn calls(fake: &Fake) -> Vec<String> {
    std::mem::take(&mut *fake.calls.lock().unwrap())
}

#[tokio::test]
async fn container_verbs_reach_their_backend_method_with_dockers_status_codes() {
    let fake = Arc::new(Fake::default());
    let r = send(&fake, Method::POST, "/v1.47/containers/web/start", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send(&fake, Method::POST, "/containers/running1/start", "").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "already running");
    let r = send(
        &fake,
        Method::POST,
        "/containers/web/stop?t=3&signal=SIGINT",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send(&fake, Method::POST, "/containers/stopped1/stop", "").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "already stopped");
    let r = send(&fake, Method::POST, "/containers/web/kill?signal=HUP", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send(
        &fake,
        Method::DELETE,
        "/v1.41/containers/web?force=1&v=true",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send(&fake, Method::POST, "/containers/web/rename?name=web2", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        calls(&fake),
        [
            "start_container web",
            "start_container running1",
            "stop_container Some(\"SIGINT\") Some(3) web",
            "stop_container None None stopped1",
            "kill_container Some(\"HUP\") web",
            "remove_container force=true v=true web",
            "rename_container web2 web",
        ]
    );
}

#[tokio::test]
async fn create_passes_name_and_config_and_answers_201() {
    let fake = Arc::new(Fake::default());
    let r = send(
        &fake,
        Method::POST,
        "/v1.45/containers/create?name=app",
        r#"{"Image":"busybox","Cmd":["true"]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["Id"], "c0ffee");
    assert_eq!(calls(&fake), ["create_container image=busybox app"]);

    let r = send(&fake, Method::POST, "/containers/create", "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(!r.message().is_empty());
    assert!(
        calls(&fake).is_empty(),
        "a malformed body reaches no backend"
    );
}

#[tokio::test]
async fn backend_error_kinds_become_dockers_statuses_and_message_bodies() {
    let fake = Arc::new(Fake::default());
    for (name, status) in [
        ("missing-c", StatusCode::NOT_FOUND),
        ("busy-c", StatusCode::CONFLICT),
        ("bad-c", StatusCode::BAD_REQUEST),
        ("broken-c", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let r = send(&fake, Method::GET, &format!("/containers/{name}/json"), "").await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert!(
            r.message().ends_with(name),
            "the message names the object: {}",
            r.body
        );
        let r = send(&fake, Method::DELETE, &format!("/volumes/{name}"), "").await;
        assert_eq!(r.status, status, "volume {name}: {}", r.body);
        let r = send(&fake, Method::DELETE, &format!("/networks/{name}"), "").await;
        assert_eq!(r.status, status, "network {name}: {}", r.body);
    }
}

#[tokio::test]
async fn image_names_with_slashes_and_ports_are_split_on_the_last_segment() {
    let fake = Arc::new(Fake::default());
    let r = send(
        &fake,
        Method::GET,
        "/v1.47/images/localhost:5000/team/app/history",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &fake,
        Method::POST,
        "/images/localhost:5000/team/app:v1/tag?repo=me/app&tag=v2",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = send(
        &fake,
        Method::DELETE,
        "/images/localhost:5000/team/app:v1?force=1",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()[0]["Untagged"], "localhost:5000/team/app:v1");
    assert_eq!(
        calls(&fake),
        [
            "image_history localhost:5000/team/app",
            "tag_image me/app Some(\"v2\") localhost:5000/team/app:v1",
            "remove_image force=true localhost:5000/team/app:v1",
        ]
    );
}

#[tokio::test]
async fn versions_outside_the_supported_range_and_unknown_paths_are_refused() {
    let fake = Arc::new(Fake::default());
    let r = send(&fake, Method::GET, "/v1.99/version", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.message().contains("1.99"), "{}", r.body);
    let r = send(&fake, Method::GET, "/v1.12/version", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        calls(&fake).is_empty(),
        "refused before reaching the backend"
    );

    let r = send(&fake, Method::GET, "/v1.24/version", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["Version"], "fake");
    let r = send(&fake, Method::GET, "/nothing/here", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.message(), "page not found");
}

#[tokio::test]
async fn wait_streams_the_exit_code_and_refuses_unknown_conditions() {
    let fake = Arc::new(Fake::default());
    let r = send(
        &fake,
        Method::POST,
        "/containers/web/wait?condition=next-exit",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["StatusCode"], 3);
    let r = send(
        &fake,
        Method::POST,
        "/containers/web/wait?condition=soon",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(calls(&fake), ["wait_container next-exit web"]);
}

#[tokio::test]
async fn swarm_routes_reach_their_methods_with_dockers_statuses() {
    let fake = Arc::new(Fake::default());
    let r = send(&fake, Method::GET, "/v1.47/swarm", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.message().contains("not a swarm manager"), "{}", r.body);

    let r = send(
        &fake,
        Method::POST,
        "/swarm/init",
        r#"{"AdvertiseAddr":"127.0.0.1"}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, serde_json::json!("node1"))
    );
    let r = send(&fake, Method::POST, "/swarm/leave?force=1", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &fake,
        Method::POST,
        "/swarm/update?version=7&rotateWorkerToken=true",
        "{}",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let spec = r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Replicated":{"Replicas":2}}}"#;
    let r = send(&fake, Method::POST, "/services/create", spec).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["ID"], "id-of-web");
    let r = send(
        &fake,
        Method::POST,
        "/services/busy1/update?version=3",
        spec,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = send(&fake, Method::DELETE, "/services/web", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &fake,
        Method::GET,
        "/services?status=true&filters=%7B%22name%22%3A%5B%22web%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, serde_json::json!([]))
    );
    let r = send(
        &fake,
        Method::POST,
        "/nodes/n1/update?version=4",
        r#"{"Availability":"drain"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &fake,
        Method::POST,
        "/secrets/create",
        r#"{"Name":"pw","Data":"c2VjcmV0"}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["ID"].clone()),
        (StatusCode::CREATED, "id-of-pw".into())
    );
    let r = send(&fake, Method::DELETE, "/secrets/pw", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        calls(&fake),
        [
            "swarm_inspect",
            "swarm_init 127.0.0.1",
            "swarm_leave force=true",
            "swarm_update version=7 rotate_worker=true",
            "create_service web",
            "update_service busy1 version=3",
            "remove_service web",
            "list_services {\"name\": [\"web\"]} status=true",
            "update_node n1 version=4 availability=Some(\"drain\")",
            "create_secret pw",
            "remove_secret pw",
        ]
    );
}

#[tokio::test]
async fn bad_swarm_input_is_refused_naming_the_field_before_the_backend() {
    let fake = Arc::new(Fake::default());
    for (uri, body, names) in [
        (
            "/services/create",
            r#"{"Name":"web","Mode":{"Replicated":{"Replicas":-1}}}"#,
            "Mode.Replicated.Replicas",
        ),
        (
            "/services/create",
            r#"{"Name":"web","Mode":{"Replicated":{"Replicas":"three"}}}"#,
            "Mode.Replicated.Replicas",
        ),
        ("/services/web/update", "{}", "version"),
        ("/services/web/update?version=x", "{}", "version"),
        ("/nodes/n1/update?version=1", r#"{"Labels":[1]}"#, "Labels"),
    ] {
        let r = send(&fake, Method::POST, uri, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{uri} {body}: {}",
            r.body
        );
        assert!(r.message().contains(names), "{uri}: {}", r.message());
    }
    assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
}
