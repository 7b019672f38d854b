//! The BIG-IP simulator through its wire API: real HTTP(S) with reqwest against `start(...)`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bigip_operator::simulator::{
    self, ChangeAction, Faults, PoolMemberView, RunningSimulator, SimulatorConfig, TlsMode,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const DECLARE: &str = "/mgmt/shared/appsvcs/declare";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/simulator").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn start(config: SimulatorConfig) -> RunningSimulator {
    simulator::start(config).await.expect("simulator starts")
}

/// A client logged in to one simulator.
struct Session {
    client: Client,
    base: String,
    token: String,
}

impl Session {
    async fn login(sim: &RunningSimulator) -> Self {
        Self::login_with(Client::new(), sim).await
    }

    async fn login_with(client: Client, sim: &RunningSimulator) -> Self {
        let base = sim.base_url();
        let response = client
            .post(format!("{base}/mgmt/shared/authn/login"))
            .json(&json!({"username": "admin", "password": "admin", "loginProviderName": "tmos"}))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("login JSON");
        let token = body["token"]["token"].as_str().expect("token").to_owned();
        Self { client, base, token }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).header("X-F5-Auth-Token", &self.token)
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = builder.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::PUT, path).json(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::PATCH, path).json(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    async fn declare(&self, body: &Value) -> (StatusCode, Value) {
        self.post(DECLARE, body).await
    }
}

/// A tenant with one HTTP service on `address` and a pool of `members` on port 30080.
fn web_tenant(address: &str, members: &[&str]) -> Value {
    json!({"class": "Tenant", "A": {"class": "Application",
        "service": {"class": "Service_HTTP", "virtualAddresses": [address], "pool": "web_pool"},
        "web_pool": {"class": "Pool", "monitors": ["http"],
            "members": [{"servicePort": 30080, "serverAddresses": members}]}}})
}

fn adc(tenants: &[(&str, Value)]) -> Value {
    let mut declaration = json!({"class": "ADC", "schemaVersion": "3.50.0", "id": "simulator-test"});
    for (name, tenant) in tenants {
        declaration[*name] = tenant.clone();
    }
    declaration
}

fn result_for<'a>(body: &'a Value, tenant: &str) -> &'a Value {
    body["results"]
        .as_array()
        .and_then(|results| results.iter().find(|r| r["tenant"] == json!([tenant])))
        .unwrap_or_else(|| panic!("no result for {tenant} in {body}"))
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().unwrap_or_else(|| panic!("no items in {body}"))
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn login_issues_a_token_and_rejects_bad_credentials() {
    let sim = start(SimulatorConfig::default()).await;
    let client = Client::new();
    let login = format!("{}/mgmt/shared/authn/login", sim.base_url());

    let response = client
        .post(&login)
        .json(&json!({"username": "admin", "password": "admin", "loginProviderName": "tmos"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    let token = &body["token"];
    let value = token["token"].as_str().expect("token string");
    assert_eq!(value.len(), 26);
    assert!(value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()), "{value}");
    assert_eq!(token["name"], value);
    assert_eq!(token["userName"], "admin");
    assert_eq!(token["timeout"], 1200);
    assert!(token["expirationMicros"].as_u64().expect("micros") > token["lastUpdateMicros"].as_u64().expect("micros"));
    assert!(token["startTime"].as_str().expect("time").ends_with('Z'));
    assert_eq!(body["loginProviderName"], "tmos");

    let refused = client
        .post(&login)
        .json(&json!({"username": "admin", "password": "wrong", "loginProviderName": "tmos"}))
        .send()
        .await
        .expect("login");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body, json!({"code": 401, "message": "Authentication failed.", "errorStack": [], "apiError": 3}));
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_without_valid_credentials_are_rejected() {
    let sim = start(SimulatorConfig::default()).await;
    let client = Client::new();
    let info = format!("{}/mgmt/shared/appsvcs/info", sim.base_url());

    let response = client.get(&info).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"code": 401, "message": "X-F5-Auth-Token does not exist.", "errorStack": [], "apiError": 1})
    );

    let bogus = client.get(&info).header("X-F5-Auth-Token", "NOTATOKEN").send().await.expect("request");
    assert_eq!(bogus.status(), StatusCode::UNAUTHORIZED);

    // The control API takes the same credentials.
    let faults = client.get(format!("{}/simulator/faults", sim.base_url())).send().await.expect("request");
    assert_eq!(faults.status(), StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

#[tokio::test]
async fn basic_auth_is_accepted_on_every_request() {
    let sim = start(SimulatorConfig::default()).await;
    let client = Client::new();
    let info = format!("{}/mgmt/shared/appsvcs/info", sim.base_url());

    let response = client.get(&info).basic_auth("admin", Some("admin")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"version": "3.56.0", "release": "10", "schemaCurrent": "3.56.0", "schemaMinimum": "3.0.0"})
    );

    let refused = client.get(&info).basic_auth("admin", Some("nope")).send().await.expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let sim = start(SimulatorConfig { token_ttl: Duration::from_secs(1), ..SimulatorConfig::default() }).await;
    let session = Session::login(&sim).await;
    assert_eq!(session.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = session.get("/mgmt/shared/appsvcs/info").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "X-F5-Auth-Token has expired.");

    // The one-shot fault expires fresh tokens too.
    let fresh = Session::login(&sim).await;
    assert_eq!(fresh.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::OK);
    sim.set_faults(Faults { expire_tokens_now: true, ..Faults::default() });
    assert_eq!(fresh.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::UNAUTHORIZED);
    assert!(!sim.state().faults().expire_tokens_now, "the flag is one-shot");
    let after = Session::login(&sim).await;
    assert_eq!(after.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::OK, "new logins work");
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_can_be_read_extended_and_revoked() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let path = format!("/mgmt/shared/authz/tokens/{}", session.token);

    let (status, token) = session.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["timeout"], 1200);

    let patch = session.request(reqwest::Method::PATCH, &path).json(&json!({"timeout": 36000}));
    let (status, token) = session.send(patch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["timeout"], 36000);

    let too_long = session.request(reqwest::Method::PATCH, &path).json(&json!({"timeout": 36001}));
    assert_eq!(session.send(too_long).await.0, StatusCode::BAD_REQUEST);

    assert_eq!(session.delete(&path).await.0, StatusCode::OK);
    assert_eq!(session.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::UNAUTHORIZED, "revoked");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Declarations

#[tokio::test]
async fn a_deployed_declaration_shows_up_in_the_ltm_views() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let declaration = fixture("http-pool-monitor.json");

    let (status, body) = session.declare(&declaration).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = result_for(&body, "Web");
    assert_eq!(result["code"], 200);
    assert_eq!(result["message"], "success");
    assert_eq!(result["host"], "localhost");
    assert!(result["lineCount"].as_u64().expect("lineCount") > 0);
    assert_eq!(body["declaration"]["id"], "simulator-http-pool-monitor");

    let (_, virtuals) = session.get("/mgmt/tm/ltm/virtual").await;
    assert_eq!(virtuals["kind"], "tm:ltm:virtual:virtualcollectionstate");
    let virtuals = items(&virtuals);
    assert_eq!(virtuals.len(), 1);
    let service = &virtuals[0];
    assert_eq!(service["name"], "service");
    assert_eq!(service["partition"], "Web");
    assert_eq!(service["subPath"], "Frontend");
    assert_eq!(service["fullPath"], "/Web/Frontend/service");
    assert_eq!(service["destination"], "/Web/10.0.1.10:80");
    assert_eq!(service["pool"], "/Web/Frontend/web_pool");
    assert_eq!(service["ipProtocol"], "tcp");

    let (status, pool) = session.get("/mgmt/tm/ltm/pool/~Web~Frontend~web_pool").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pool["loadBalancingMode"], "least-connections-member");
    assert_eq!(pool["monitor"], "/Web/Frontend/web_monitor");
    assert_eq!(pool["minActiveMembers"], 1);
    assert_eq!(items(&session.get("/mgmt/tm/ltm/pool").await.1).len(), 1);

    let (status, members) = session.get("/mgmt/tm/ltm/pool/~Web~Frontend~web_pool/members").await;
    assert_eq!(status, StatusCode::OK);
    let members: Vec<(String, String, String)> = items(&members)
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_owned(),
                m["partition"].as_str().unwrap_or_default().to_owned(),
                m["session"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("192.0.1.10:30080", "Common", "user-enabled"),
        ("192.0.1.11:30080", "Common", "user-enabled"),
        ("192.0.1.12:30080", "Web", "user-disabled"),
    ]
    .map(|(n, p, s)| (n.to_owned(), p.to_owned(), s.to_owned()));
    assert_eq!(members, expected);

    let (_, monitors) = session.get("/mgmt/tm/ltm/monitor/http").await;
    let monitors = items(&monitors);
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0]["fullPath"], "/Web/Frontend/web_monitor");
    assert_eq!(monitors[0]["send"], "GET /healthz HTTP/1.1\\r\\nHost: web\\r\\nConnection: close\\r\\n\\r\\n");
    assert_eq!(monitors[0]["recv"], "200 OK");
    assert_eq!(monitors[0]["interval"], 10);
    assert_eq!(monitors[0]["timeout"], 31);
    assert!(items(&session.get("/mgmt/tm/ltm/monitor/tcp").await.1).is_empty());
    assert_eq!(session.get("/mgmt/tm/ltm/pool/~Web~Frontend~nope").await.0, StatusCode::NOT_FOUND);

    // The Rust API sees the same.
    let state = sim.state();
    let views = state.virtual_servers();
    assert_eq!(views.len(), 1);
    assert_eq!((views[0].destination_address.as_str(), views[0].destination_port), ("10.0.1.10", 80));
    assert_eq!(views[0].pool.as_deref(), Some("/Web/Frontend/web_pool"));
    assert_eq!(
        state.pool_members("Web", "Frontend", "web_pool"),
        Some(vec![
            PoolMemberView { address: "192.0.1.10".into(), port: 30080, enabled: true },
            PoolMemberView { address: "192.0.1.11".into(), port: 30080, enabled: true },
            PoolMemberView { address: "192.0.1.12".into(), port: 30080, enabled: false },
        ])
    );
    assert_eq!(state.pool_members("Web", "Frontend", "other"), None);
    assert_eq!(state.tenants()["Web"], declaration["declaration"]["Web"]);

    // GET /declare returns what was deployed.
    let (status, current) = session.get(DECLARE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(current["class"], "ADC");
    assert_eq!(current["schemaVersion"], "3.50.0");
    assert_eq!(current["Web"], declaration["declaration"]["Web"]);

    // The same declaration again changes nothing.
    let (status, body) = session.declare(&declaration).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_for(&body, "Web")["message"], "no change");
    assert_eq!(state.history().len(), 1);
    assert_eq!(state.declare_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn redeploying_one_tenant_leaves_the_other_untouched() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let one = web_tenant("10.0.2.1", &["192.0.2.10"]);
    let two = web_tenant("10.0.2.2", &["192.0.2.20"]);
    let (status, _) = session.declare(&adc(&[("One", one), ("Two", two.clone())])).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = session.declare(&adc(&[("One", web_tenant("10.0.2.1", &["192.0.2.10", "192.0.2.11"]))])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1), "only the declared tenant is reported");
    assert_eq!(result_for(&body, "One")["message"], "success");

    let state = sim.state();
    assert_eq!(state.tenants()["Two"], two);
    let history = state.history();
    let touched: Vec<(u64, &str, ChangeAction)> =
        history.iter().map(|c| (c.seq, c.tenant.as_str(), c.action)).collect();
    assert_eq!(
        touched,
        [(1, "One", ChangeAction::Deployed), (2, "Two", ChangeAction::Deployed), (3, "One", ChangeAction::Deployed)]
    );
    assert_eq!(history[2].applications_before, ["A"]);
    assert_eq!(history[2].applications_after, ["A"]);
    assert_eq!(state.pool_members("One", "A", "web_pool").map(|m| m.len()), Some(2));

    // The history is also served over HTTP.
    let (status, served) = session.get("/simulator/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served.as_array().map(Vec::len), Some(3));
    assert_eq!(served[2]["action"], "deployed");
    assert_eq!(served[2]["applicationsBefore"], json!(["A"]));
    sim.shutdown().await;
}

#[tokio::test]
async fn an_empty_tenant_deletes_it() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    session.declare(&adc(&[("Gone", web_tenant("10.0.3.1", &["192.0.3.10"]))])).await;

    let (status, body) = session.declare(&adc(&[("Gone", json!({"class": "Tenant"}))])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_for(&body, "Gone")["message"], "success");
    assert!(sim.state().tenants().is_empty());
    assert!(sim.state().virtual_servers().is_empty());
    let last = sim.state().history().pop().expect("a change");
    assert_eq!((last.action, last.applications_after.len()), (ChangeAction::Deleted, 0));

    // Nothing is deployed any more: GET /declare answers 204 with no body.
    let (status, body) = session.get(DECLARE).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    // Deleting it again is "no change".
    let (_, body) = session.declare(&adc(&[("Gone", json!({"class": "Tenant"}))])).await;
    assert_eq!(result_for(&body, "Gone")["message"], "no change");
    sim.shutdown().await;
}

#[tokio::test]
async fn schema_invalid_declarations_are_rejected_and_change_nothing() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;

    let mut bad_port = web_tenant("10.0.4.1", &["192.0.4.10"]);
    bad_port["A"]["service"]["virtualPort"] = json!("eighty");
    let (status, body) =
        session.declare(&json!({"class": "AS3", "action": "deploy", "declaration": adc(&[("T", bad_port)])})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], 422);
    assert_eq!(body["message"], "declaration is invalid");
    let errors: Vec<&str> = body["errors"].as_array().expect("errors").iter().filter_map(Value::as_str).collect();
    assert!(errors.iter().any(|e| e.starts_with("/T/A/service/virtualPort: ")), "{errors:#?}");

    let mut no_addresses = web_tenant("10.0.4.1", &["192.0.4.10"]);
    no_addresses["A"]["service"].as_object_mut().expect("object").remove("virtualAddresses");
    let (status, body) = session.declare(&adc(&[("T", no_addresses)])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors: Vec<&str> = body["errors"].as_array().expect("errors").iter().filter_map(Value::as_str).collect();
    assert!(errors.iter().any(|e| e.starts_with("/T/A/service") && e.contains("virtualAddresses")), "{errors:#?}");

    assert!(sim.state().tenants().is_empty());
    assert!(sim.state().history().is_empty());
    assert_eq!(sim.state().declare_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_pool_refuses_the_whole_declaration_like_as3() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let mut broken = web_tenant("10.0.5.1", &["192.0.5.10"]);
    broken["A"]["service"]["pool"] = json!("no_such_pool");

    // AS3 resolves pointers before it deploys anything: one bad pointer fails every tenant.
    let (status, body) =
        session.declare(&adc(&[("Broken", broken), ("Fine", web_tenant("10.0.5.2", &["192.0.5.20"]))])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], 422);
    assert_eq!(body["message"], "declaration is invalid");
    assert_eq!(body["errors"], json!(["/Broken/A/service/pool: contains path to non-existent object no_such_pool"]));
    assert_eq!(body["tenant"], json!(["Broken"]), "AS3 names the tenant of the error");
    assert_eq!(body["host"], "localhost");
    assert!(sim.state().tenants().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn an_address_already_used_by_another_tenant_fails_the_later_tenant() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let (status, _) = session.declare(&adc(&[("First", web_tenant("10.0.6.1", &["192.0.6.10"]))])).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = session.declare(&adc(&[("Second", web_tenant("10.0.6.1", &["192.0.6.20"]))])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        result_for(&body, "Second")["response"],
        "01070333:3: Virtual Server /Second/A/service illegally shares both address and vlan with Virtual Server /First/A/service."
    );
    assert_eq!(sim.state().tenants().keys().collect::<Vec<_>>(), ["First"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_https_service_gets_a_port_80_redirect_virtual() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let (status, body) = session.declare(&fixture("examples/example-https-application.json")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut virtuals: Vec<(String, u16)> =
        sim.state().virtual_servers().into_iter().map(|v| (v.name, v.destination_port)).collect();
    virtuals.sort();
    assert_eq!(virtuals, [("service".to_owned(), 443), ("service-Redirect-".to_owned(), 80)]);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_f5_reference_example_deploys() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/simulator/examples");
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .expect("examples")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    for name in names {
        let example = fixture(&format!("examples/{name}"));
        // The BIG-IP objects an example names by `bigip:` are created first, as its docs say.
        for reference in simulator::missing_device_objects(&example) {
            let (kind, full_path) = (&reference.kinds[0], &reference.name);
            let (status, body) = session.post(&format!("/mgmt/tm/{kind}"), &json!({"fullPath": full_path})).await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
        }
        let (status, body) = session.declare(&example).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        // Start the next example from an empty device.
        let (status, body) = session.delete(DECLARE).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert!(sim.state().tenants().is_empty(), "{name}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn tenants_can_be_read_and_deleted_by_name_and_dry_runs_change_nothing() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    session
        .declare(&adc(&[("One", web_tenant("10.0.7.1", &["192.0.7.10"])), ("Two", web_tenant("10.0.7.2", &[]))]))
        .await;

    let (status, body) = session.get(&format!("{DECLARE}/Two")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("Two").is_some() && body.get("One").is_none(), "{body}");
    assert_eq!(session.get(&format!("{DECLARE}/One,Two")).await.1["One"]["class"], "Tenant");
    assert_eq!(session.get(&format!("{DECLARE}/Nope")).await.0, StatusCode::NOT_FOUND);

    let dry_run =
        json!({"class": "AS3", "action": "dry-run", "declaration": adc(&[("One", json!({"class": "Tenant"}))])});
    let (status, body) = session.declare(&dry_run).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_for(&body, "One")["dryRun"], true);
    assert!(sim.state().tenants().contains_key("One"), "a dry run changes nothing");

    let (status, body) = session.delete(&format!("{DECLARE}/One")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_for(&body, "One")["message"], "success");
    assert_eq!(sim.state().tenants().keys().collect::<Vec<_>>(), ["Two"]);

    let remove =
        json!({"class": "AS3", "action": "remove", "declaration": adc(&[("Two", json!({"class": "Tenant"}))])});
    assert_eq!(session.declare(&remove).await.0, StatusCode::OK);
    assert!(sim.state().tenants().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_answered_400() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let garbage = session
        .request(reqwest::Method::POST, DECLARE)
        .header("Content-Type", "application/json")
        .body("{\"class\": \"ADC\", ");
    let (status, body) = session.send(garbage).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 400);
    assert!(body["message"].as_str().expect("message").contains("invalid JSON"), "{body}");

    let login = Client::new()
        .post(format!("{}/mgmt/shared/authn/login", sim.base_url()))
        .body("not json")
        .send()
        .await
        .expect("request");
    assert_eq!(login.status(), StatusCode::BAD_REQUEST);

    // An array of declarations (one per target device) runs item by item, the simulator
    // standing in for every target; an empty one is not a request.
    let (status, body) = session
        .declare(&json!([adc(&[("T", web_tenant("10.0.8.2", &[]))]), {"class": "AS3", "action": "redeploy"}]))
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    assert_eq!(body["items"][0]["results"][0]["code"], 200, "{body}");
    assert_eq!(body["items"][1]["code"], 422, "no earlier declaration is kept: {body}");
    let (status, body) = session.declare(&json!([])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with("Invalid request")), "{body}");
    // The server is still fine.
    let (status, _) = session.declare(&adc(&[("U", web_tenant("10.0.8.1", &[]))])).await;
    assert_eq!(status, StatusCode::OK);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Asynchronous processing and concurrency

async fn wait_for_task(session: &Session, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, task) = session.get(&format!("/mgmt/shared/appsvcs/task/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        if task["results"][0]["code"] != 0 {
            return task;
        }
        assert!(Instant::now() < deadline, "task {id} never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn async_declarations_report_progress_then_results() {
    let sim =
        start(SimulatorConfig { as3_processing_delay: Duration::from_millis(300), ..SimulatorConfig::default() }).await;
    let session = Session::login(&sim).await;

    let (status, accepted) =
        session.post(&format!("{DECLARE}?async=true"), &adc(&[("T", web_tenant("10.0.9.1", &["192.0.9.10"]))])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = accepted["id"].as_str().expect("task id").to_owned();
    assert_eq!(accepted["results"][0]["message"], "Declaration successfully submitted");
    assert_eq!(accepted["results"][0]["code"], 0);
    assert_eq!(accepted["selfLink"], format!("https://localhost/mgmt/shared/appsvcs/task/{id}"));

    let (_, running) = session.get(&format!("/mgmt/shared/appsvcs/task/{id}")).await;
    assert_eq!(running["results"][0]["message"], "in progress");
    assert_eq!(running["declaration"], json!({}));

    let done = wait_for_task(&session, &id).await;
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["results"][0]["code"], 200);
    assert_eq!(done["results"][0]["message"], "success");
    assert_eq!(done["results"][0]["tenant"], json!(["T"]), "AS3 3.51+ lists the tenant");
    assert!(done["results"][0]["runTime"].as_u64().expect("runTime") >= 300);
    assert!(sim.state().tenants().contains_key("T"));

    let (_, all) = session.get("/mgmt/shared/appsvcs/task").await;
    assert!(items(&all).iter().any(|task| task["id"] == id.as_str()));
    assert_eq!(session.get("/mgmt/shared/appsvcs/task/no-such-task").await.0, StatusCode::NOT_FOUND);

    // An invalid declaration in async mode: the task carries the 422 and its errors.
    let mut invalid = web_tenant("10.0.9.2", &[]);
    invalid["A"]["service"]["virtualPort"] = json!("eighty");
    let (status, accepted) = session.post(&format!("{DECLARE}?async=true"), &adc(&[("Bad", invalid)])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let done = wait_for_task(&session, accepted["id"].as_str().expect("task id")).await;
    assert_eq!(done["results"][0]["code"], 422);
    assert_eq!(done["results"][0]["message"], "declaration is invalid");
    assert!(!done["results"][0]["errors"].as_array().expect("errors").is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_while_another_is_processed_gets_503() {
    let sim =
        start(SimulatorConfig { as3_processing_delay: Duration::from_millis(600), ..SimulatorConfig::default() }).await;
    let session = std::sync::Arc::new(Session::login(&sim).await);

    let first = tokio::spawn({
        let session = session.clone();
        async move { session.declare(&adc(&[("First", web_tenant("10.0.10.1", &[]))])).await }
    });
    // Wait until the first declaration holds the device.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !session.get("/simulator/stats").await.1["declarationInProgress"].as_bool().unwrap_or(false) {
        assert!(Instant::now() < deadline, "the first declaration never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = session.declare(&adc(&[("Second", web_tenant("10.0.10.2", &[]))])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"code": 503, "message": "Configuration operation in progress on device, please try again in 2 minutes"})
    );
    // Deletes are refused too.
    assert_eq!(session.delete(&format!("{DECLARE}/First")).await.0, StatusCode::SERVICE_UNAVAILABLE);

    let (status, _) = first.await.expect("first request");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.state().tenants().keys().collect::<Vec<_>>(), ["First"]);
    // Once it is done, the device takes declarations again.
    assert_eq!(session.declare(&adc(&[("Second", web_tenant("10.0.10.2", &[]))])).await.0, StatusCode::OK);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Change history: who changed what, and when

fn unix_ms_now() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    u64::try_from(elapsed.as_millis()).expect("milliseconds fit u64")
}

/// A session whose requests carry `User-Agent: agent`, like one operator replica.
async fn login_as(sim: &RunningSimulator, agent: &str) -> Session {
    Session::login_with(Client::builder().user_agent(agent).build().expect("client"), sim).await
}

#[tokio::test]
async fn every_change_records_the_user_agent_and_time_of_its_request() {
    let sim = start(SimulatorConfig::default()).await;
    let replica_a = login_as(&sim, "bigip-operator/0.1.0 (replica-a)").await;
    let anonymous = Session::login(&sim).await;
    let before = unix_ms_now();

    let tenant = web_tenant("10.0.15.1", &["192.0.15.10"]);
    assert_eq!(replica_a.declare(&adc(&[("T", tenant)])).await.0, StatusCode::OK);
    let second_app = web_tenant("10.0.15.2", &["192.0.15.20"])["A"].clone();
    let (status, body) = replica_a
        .post(&format!("{DECLARE}/T/applications"), &json!({"schemaVersion": "3.50.0", "B": second_app}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(replica_a.delete(&format!("{DECLARE}/T/applications/B")).await.0, StatusCode::OK);
    assert_eq!(replica_a.delete(&format!("{DECLARE}/T")).await.0, StatusCode::OK);
    // A request without a User-Agent (reqwest sends none unless told to).
    assert_eq!(anonymous.declare(&adc(&[("U", web_tenant("10.0.15.3", &[]))])).await.0, StatusCode::OK);
    let after = unix_ms_now();

    let history = sim.state().history();
    let recorded: Vec<(&str, ChangeAction, Option<&str>)> =
        history.iter().map(|c| (c.tenant.as_str(), c.action, c.client.as_deref())).collect();
    let replica = Some("bigip-operator/0.1.0 (replica-a)");
    assert_eq!(
        recorded,
        [
            ("T", ChangeAction::Deployed, replica),
            ("T", ChangeAction::ApplicationsDeployed, replica),
            ("T", ChangeAction::ApplicationDeleted, replica),
            ("T", ChangeAction::Deleted, replica),
            ("U", ChangeAction::Deployed, None),
        ]
    );
    for change in &history {
        assert!((before..=after).contains(&change.at_unix_ms), "{} not in {before}..={after}", change.at_unix_ms);
    }
    assert!(history.windows(2).all(|pair| pair[0].at_unix_ms <= pair[1].at_unix_ms), "{history:#?}");

    // Over HTTP: `client` and `atUnixMs`, with `client` left out when there was none.
    let (status, served) = anonymous.get("/simulator/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served[0]["client"], "bigip-operator/0.1.0 (replica-a)");
    assert_eq!(served[0]["atUnixMs"], history[0].at_unix_ms);
    assert!(served[4].get("client").is_none(), "{}", served[4]);
    assert_eq!(served[4]["atUnixMs"], history[4].at_unix_ms);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_async_declaration_records_the_user_agent_of_its_request() {
    let sim =
        start(SimulatorConfig { as3_processing_delay: Duration::from_millis(100), ..SimulatorConfig::default() }).await;
    let replica_b = login_as(&sim, "bigip-operator/0.1.0 (replica-b)").await;
    let before = unix_ms_now();

    let (status, accepted) = replica_b
        .post(&format!("{DECLARE}?async=true"), &adc(&[("T", web_tenant("10.0.16.1", &["192.0.16.10"]))]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let done = wait_for_task(&replica_b, accepted["id"].as_str().expect("task id")).await;
    assert_eq!(done["results"][0]["code"], 200, "{done}");
    let after = unix_ms_now();

    let history = sim.state().history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].client.as_deref(), Some("bigip-operator/0.1.0 (replica-b)"));
    // Applied by the task after the processing delay, not when the request was accepted.
    assert!(history[0].at_unix_ms >= before + 100, "{} < {before} + 100", history[0].at_unix_ms);
    assert!(history[0].at_unix_ms <= after, "{} > {after}", history[0].at_unix_ms);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn injected_declare_failures_are_counted_down() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    sim.set_faults(Faults { fail_with_503: 1, fail_with_500: 1, ..Faults::default() });
    let declaration = adc(&[("T", web_tenant("10.0.11.1", &[]))]);

    assert_eq!(session.declare(&declaration).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(session.declare(&declaration).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(session.declare(&declaration).await.0, StatusCode::OK);
    assert_eq!(sim.state().declare_count(), 3, "failed posts count too");
    assert_eq!(sim.state().history().len(), 1);

    // The same through the HTTP control API.
    let (status, faults) = session.put("/simulator/faults", &json!({"failWith503": 1})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(faults["failWith503"], 1);
    assert_eq!(session.get("/simulator/faults").await.1["failWith503"], 1);
    assert_eq!(session.declare(&declaration).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(session.get("/simulator/faults").await.1["failWith503"], 0);
    let (_, stats) = session.get("/simulator/stats").await;
    assert_eq!(stats["declareRequests"], 4);
    assert_eq!(stats["tenants"], 1);

    // Refusing connections is only for the Rust API: over HTTP it would lock the API out.
    assert_eq!(session.put("/simulator/faults", &json!({"refuseConnections": true})).await.0, StatusCode::BAD_REQUEST);
    sim.shutdown().await;
}

#[tokio::test]
async fn tenants_with_a_named_application_can_be_rejected_without_naming_it() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    session.declare(&adc(&[("Bad", web_tenant("10.0.12.1", &[]))])).await;
    let before = sim.state().tenants()["Bad"].clone();
    let (status, faults) = session.put("/simulator/faults", &json!({"rejectTenantsWithApplication": "bad_"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(faults["rejectTenantsWithApplication"], "bad_");

    let mut bad = web_tenant("10.0.12.1", &["192.0.2.7"]);
    bad["bad_app"] = web_tenant("10.0.12.2", &[])["A"].clone();
    let (status, body) = session.declare(&adc(&[("Bad", bad.clone()), ("Good", web_tenant("10.0.12.3", &[]))])).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    let failed = result_for(&body, "Bad");
    assert_eq!(failed["code"], 422);
    assert_eq!(failed["response"], simulator::ANONYMOUS_REJECTION);
    assert!(!failed["response"].as_str().unwrap_or_default().contains("bad_app"), "names no application");
    assert_eq!(result_for(&body, "Good")["code"], 200);
    assert_eq!(sim.state().tenants()["Bad"], before, "the refused tenant keeps its previous content");
    assert!(sim.state().history().iter().all(|change| change.tenant != "Bad" || change.seq == 1));

    // Cleared: the same declaration goes through.
    session.put("/simulator/faults", &json!({})).await;
    let (status, body) = session.declare(&adc(&[("Bad", bad)])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(sim.state().tenants()["Bad"].get("bad_app").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    sim.set_faults(Faults { latency_ms: 250, ..Faults::default() });
    let started = Instant::now();
    assert_eq!(session.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250));
    sim.set_faults(Faults::default());
    let started = Instant::now();
    session.get("/mgmt/shared/appsvcs/info").await;
    assert!(started.elapsed() < Duration::from_millis(250));
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_connections_fail_at_the_transport_level_until_cleared() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    assert_eq!(session.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::OK);

    sim.set_faults(Faults { refuse_connections: true, ..Faults::default() });
    // The open (kept-alive) connection fails...
    let error = session.request(reqwest::Method::GET, "/mgmt/shared/appsvcs/info").send().await.expect_err("refused");
    assert!(error.status().is_none(), "no HTTP answer: {error:?}");
    // ...and so does a new one.
    let error =
        Client::new().get(format!("{}/mgmt/shared/appsvcs/info", sim.base_url())).send().await.expect_err("refused");
    assert!(error.status().is_none(), "no HTTP answer: {error:?}");

    sim.set_faults(Faults::default());
    assert_eq!(session.get("/mgmt/shared/appsvcs/info").await.0, StatusCode::OK);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// TLS, per-application deployment, persistence

#[tokio::test]
async fn https_with_the_generated_ca_verifies() {
    let sim = start(SimulatorConfig { tls: TlsMode::SelfSigned, ..SimulatorConfig::default() }).await;
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let ca = sim.ca_certificate_pem().expect("a generated CA");
    let trusting = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("PEM"))
        .build()
        .expect("client");
    let session = Session::login_with(trusting, &sim).await;
    let (status, _) = session.declare(&adc(&[("T", web_tenant("10.0.12.1", &[]))])).await;
    assert_eq!(status, StatusCode::OK);

    // Verification is really on: a client without the CA is refused.
    let error = Client::new()
        .get(format!("{}/mgmt/shared/appsvcs/info", sim.base_url()))
        .send()
        .await
        .expect_err("untrusted certificate");
    assert!(error.is_connect() || error.is_request(), "{error:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn per_application_deployment_leaves_other_applications_untouched() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let tenant = web_tenant("10.0.13.1", &["192.0.13.10"]);
    session.declare(&adc(&[("T", tenant.clone())])).await;

    let second_app = web_tenant("10.0.13.2", &["192.0.13.20"])["A"].clone();
    let (status, body) =
        session.post(&format!("{DECLARE}/T/applications"), &json!({"schemaVersion": "3.50.0", "B": second_app})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(result_for(&body, "T")["message"], "success");

    let (status, apps) = session.get(&format!("{DECLARE}/T/applications")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(apps["A"], tenant["A"], "the other application is untouched");
    assert_eq!(apps["B"], second_app);
    let (status, one) = session.get(&format!("{DECLARE}/T/applications/B")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, json!({"B": second_app}));

    let last = sim.state().history().pop().expect("a change");
    assert_eq!(last.action, ChangeAction::ApplicationsDeployed);
    assert_eq!(
        (last.applications_before, last.applications_after),
        (vec!["A".to_owned()], vec!["A".to_owned(), "B".to_owned()])
    );
    assert_eq!(sim.state().virtual_servers().len(), 2);

    // Schema errors point into the per-application body.
    let mut invalid = second_app.clone();
    invalid["service"]["virtualPort"] = json!("eighty");
    let (status, body) =
        session.post(&format!("{DECLARE}/T/applications"), &json!({"schemaVersion": "3.50.0", "C": invalid})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors: Vec<&str> = body["errors"].as_array().expect("errors").iter().filter_map(Value::as_str).collect();
    assert_eq!(errors, ["/T/C/service/virtualPort: should be integer"]);

    let (status, _) = session.delete(&format!("{DECLARE}/T/applications/A")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.state().tenants()["T"].get("A"), None);
    assert_eq!(sim.state().tenants()["T"]["B"], second_app);
    assert_eq!(sim.state().history().pop().map(|c| c.action), Some(ChangeAction::ApplicationDeleted));
    assert_eq!(session.delete(&format!("{DECLARE}/T/applications/A")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(session.get(&format!("{DECLARE}/T/applications/A")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(session.get(&format!("{DECLARE}/Nope/applications")).await.0, StatusCode::NOT_FOUND);

    // Per-application posts create the tenant when it does not exist.
    let (status, _) = session
        .post(
            &format!("{DECLARE}/Fresh/applications"),
            &json!({"schemaVersion": "3.50.0", "App": web_tenant("10.0.13.3", &[])["A"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim.state().tenants().contains_key("Fresh"));

    let (_, settings) = session.get("/mgmt/shared/appsvcs/settings").await;
    assert_eq!(settings["perAppDeploymentAllowed"], true);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restarted_simulator_keeps_its_tenants() {
    let directory = tempfile::tempdir().expect("tempdir");
    let state_file = directory.path().join("bigip-state.json");
    let config = || SimulatorConfig { state_file: Some(state_file.clone()), ..SimulatorConfig::default() };

    let first = start(config()).await;
    let session = Session::login(&first).await;
    let declaration = adc(&[("Kept", web_tenant("10.0.14.1", &["192.0.14.10"]))]);
    assert_eq!(session.declare(&declaration).await.0, StatusCode::OK);
    first.shutdown().await;
    assert!(state_file.exists());

    let second = start(config()).await;
    assert_eq!(second.state().tenants()["Kept"], declaration["Kept"]);
    assert_eq!(second.state().virtual_servers().len(), 1);
    let session = Session::login(&second).await;
    let (status, current) = session.get(DECLARE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(current["Kept"], declaration["Kept"]);
    assert_eq!(current["id"], "simulator-test");
    // Redeploying what survived the restart is "no change", like on a BIG-IP.
    let (_, body) = session.declare(&declaration).await;
    assert_eq!(result_for(&body, "Kept")["message"], "no change");

    // Deleting everything is persisted too.
    assert_eq!(session.delete(DECLARE).await.0, StatusCode::OK);
    second.shutdown().await;
    let third = start(config()).await;
    assert!(third.state().tenants().is_empty());
    third.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_state_file_is_a_startup_error() {
    let directory = tempfile::tempdir().expect("tempdir");
    let state_file = directory.path().join("bigip-state.json");
    std::fs::write(&state_file, "{ not json").expect("write");
    let error = simulator::start(SimulatorConfig { state_file: Some(state_file), ..SimulatorConfig::default() })
        .await
        .expect_err("corrupt state file");
    assert!(error.to_string().contains("bigip-state.json"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Prints how long schema validation of a typical declaration takes. Run alone to see the cold
/// (schema compile) time: `cargo test --test simulator_api schema_validation_time -- --nocapture`.
#[test]
fn schema_validation_time() {
    let declaration = fixture("http-pool-monitor.json");
    let started = Instant::now();
    let violations = bigip_operator::as3::schema::validate_declaration(&declaration).expect("schema compiles");
    let first = started.elapsed();
    assert!(violations.is_empty(), "{violations:?}");
    let runs = 20;
    let started = Instant::now();
    for _ in 0..runs {
        bigip_operator::as3::schema::validate_declaration(&declaration).expect("schema compiles");
    }
    let warm = started.elapsed() / runs;
    eprintln!("AS3 schema validation: first call (includes compiling the schema unless already compiled) {first:?}, then {warm:?} per declaration");
}

/// Prints how long a whole-partition declaration of 1,000 services (10 members each) takes to
/// validate, check and deploy, and to redeploy unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_declaration_time() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let mut tenant = json!({"class": "Tenant"});
    for i in 0..1000u32 {
        let members: Vec<String> = (0..10).map(|m| format!("172.16.{}.{}", i / 200, (i % 200) + m)).collect();
        tenant[format!("app_{i}")] = json!({"class": "Application",
            "vs": {"class": "Service_HTTP", "virtualAddresses": [format!("10.{}.{}.1", 100 + i / 250, i % 250)], "pool": "pool_web"},
            "pool_web": {"class": "Pool", "monitors": ["http"],
                "members": [{"servicePort": 30080, "serverAddresses": members}]}});
    }
    let declaration = json!({"class": "AS3", "declaration": adc(&[("Big", tenant)])});
    let size = serde_json::to_vec(&declaration).map(|bytes| bytes.len()).unwrap_or_default();

    let started = Instant::now();
    let (status, body) = session.declare(&declaration).await;
    let deploy = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(sim.state().virtual_servers().len(), 1000);

    let started = Instant::now();
    let (status, body) = session.declare(&declaration).await;
    let redeploy = started.elapsed();
    assert_eq!((status, result_for(&body, "Big")["message"].as_str()), (StatusCode::OK, Some("no change")));

    let started = Instant::now();
    let (status, _) = session.get("/mgmt/tm/ltm/pool/~Big~app_999~pool_web/members").await;
    let members_view = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    eprintln!(
        "1,000-service declaration ({} KiB): deploy {deploy:?}, unchanged redeploy {redeploy:?}, one pool's members view {members_view:?}",
        size / 1024
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Network objects (/mgmt/tm/net)

const VXLAN: &str = "/mgmt/tm/net/tunnels/vxlan";
const TUNNEL: &str = "/mgmt/tm/net/tunnels/tunnel";
const SELF_IP: &str = "/mgmt/tm/net/self";
const ARP: &str = "/mgmt/tm/net/arp";
const FDB: &str = "/mgmt/tm/net/fdb/tunnel";
const BGP: &str = "/mgmt/tm/net/routing/bgp";

/// Creates the flannel VXLAN profile `fl-vxlan` and the tunnel `fl` (VNI 1) on it.
async fn create_flannel_tunnel(session: &Session) {
    let (status, profile) =
        session.post(VXLAN, &json!({"name": "fl-vxlan", "partition": "Common", "floodingType": "none"})).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["port"], 4789);
    assert_eq!(profile["fullPath"], "/Common/fl-vxlan");
    assert_eq!(profile["kind"], "tm:net:tunnels:vxlan:vxlanstate");
    let tunnel = json!({"name": "fl", "partition": "Common", "profile": "/Common/fl-vxlan",
        "localAddress": "192.168.1.10", "key": 1});
    let (status, created) = session.post(TUNNEL, &tunnel).await;
    assert_eq!(status, StatusCode::OK, "{created}");
}

fn assert_rest_error(status: StatusCode, body: &Value, expected: StatusCode, message_part: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected.as_u16(), "{body}");
    assert!(body["errorStack"].is_array(), "{body}");
    assert!(body["apiError"].is_number(), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "{message:?} does not contain {message_part:?}");
}

#[tokio::test]
async fn tunnel_self_ip_and_fdb_records_round_trip() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    create_flannel_tunnel(&session).await;

    let (status, missing_profile) =
        session.post(TUNNEL, &json!({"name": "other", "profile": "/Common/nope", "key": 2})).await;
    assert_rest_error(status, &missing_profile, StatusCode::BAD_REQUEST, "(/Common/nope) was not found");

    let self_ip =
        json!({"name": "fl-self", "address": "10.244.200.1/16", "vlan": "/Common/fl", "allowService": "none"});
    let (status, created) = session.post(SELF_IP, &self_ip).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, read) = session.get(&format!("{SELF_IP}/~Common~fl-self")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["address"], "10.244.200.1/16");
    assert_eq!(read["vlan"], "/Common/fl");
    let (status, no_vlan) =
        session.post(SELF_IP, &json!({"name": "x", "address": "10.245.0.1/16", "vlan": "/Common/nope"})).await;
    assert_rest_error(status, &no_vlan, StatusCode::BAD_REQUEST, "(/Common/nope) was not found");

    let (status, empty) = session.get(&format!("{FDB}/~Common~fl")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["kind"], "tm:net:fdb:tunnel:tunnelstate");
    assert!(empty.get("records").is_none(), "BIG-IP shows no records property when there are none: {empty}");

    let records = json!({"records": [
        {"name": "0a:58:0a:f4:01:02", "endpoint": "192.168.1.21"},
        {"name": "0a:58:0a:f4:02:02", "endpoint": "192.168.1.22"}]});
    let (status, written) = session.patch(&format!("{FDB}/~Common~fl"), &records).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    // `%7E` is how some clients encode the tilde.
    let (status, read) = session.get(&format!("{FDB}/%7ECommon%7Efl")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["name"], "fl");
    assert_eq!(read["records"], records["records"]);
    let in_state = sim.state().fdb_records("fl").expect("tunnel fl");
    let endpoints: Vec<&str> = in_state.iter().map(|record| record.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["192.168.1.21", "192.168.1.22"]);

    let replacement = json!({"records": [{"name": "0a:58:0a:f4:03:02", "endpoint": "192.168.1.23"}]});
    let (status, _) = session.patch(&format!("{FDB}/~Common~fl"), &replacement).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.state().fdb_records("fl").expect("tunnel fl").len(), 1, "PATCH replaces the whole list");

    let bad_mac = json!({"records": [{"name": "node-1", "endpoint": "192.168.1.21"}]});
    let (status, refused) = session.patch(&format!("{FDB}/~Common~fl"), &bad_mac).await;
    assert_rest_error(status, &refused, StatusCode::BAD_REQUEST, "MAC address");
    assert_eq!(sim.state().fdb_records("fl").expect("tunnel fl").len(), 1, "a refused PATCH changes nothing");

    let (status, unknown) = session.get(&format!("{FDB}/~Common~nope")).await;
    let message = "01020036:3: The requested tunnel (/Common/nope) was not found.";
    assert_rest_error(status, &unknown, StatusCode::NOT_FOUND, message);
    let (status, unknown) = session.patch(&format!("{FDB}/~Common~nope"), &records).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");

    let (status, in_use) = session.delete(&format!("{VXLAN}/~Common~fl-vxlan")).await;
    assert_rest_error(status, &in_use, StatusCode::BAD_REQUEST, "in use by tunnel (/Common/fl)");
    let (status, in_use) = session.delete(&format!("{TUNNEL}/~Common~fl")).await;
    assert_rest_error(status, &in_use, StatusCode::BAD_REQUEST, "in use by self IP (/Common/fl-self)");

    let in_order =
        [format!("{SELF_IP}/~Common~fl-self"), format!("{TUNNEL}/~Common~fl"), format!("{VXLAN}/~Common~fl-vxlan")];
    for path in in_order {
        let (status, body) = session.delete(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    assert!(sim.state().tunnels().is_empty());
    assert!(sim.state().vxlan_profiles().is_empty());
    assert_eq!(sim.state().fdb_records("fl"), None);
    let (status, _) = session.get(&format!("{TUNNEL}/~Common~fl")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn arp_ip_address_is_immutable_and_unique() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let entry = json!({"name": "k8s-10.244.1.5", "ipAddress": "10.244.1.5", "macAddress": "0a:58:0a:f4:01:05"});
    let (status, created) = session.post(ARP, &entry).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["fullPath"], "/Common/k8s-10.244.1.5");

    let (status, duplicate) = session.post(ARP, &entry).await;
    assert_rest_error(status, &duplicate, StatusCode::CONFLICT, "already exists");
    let same_ip = json!({"name": "other", "ipAddress": "10.244.1.5", "macAddress": "0a:58:0a:f4:01:06"});
    let (status, duplicate_ip) = session.post(ARP, &same_ip).await;
    assert_rest_error(status, &duplicate_ip, StatusCode::CONFLICT, "10.244.1.5");

    let path = format!("{ARP}/~Common~k8s-10.244.1.5");
    let (status, immutable) = session.patch(&path, &json!({"ipAddress": "10.244.1.6"})).await;
    assert_rest_error(status, &immutable, StatusCode::BAD_REQUEST, "ipAddress");
    let (status, patched) = session.patch(&path, &json!({"macAddress": "0a:58:0a:f4:01:99"})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["macAddress"], "0a:58:0a:f4:01:99");
    assert_eq!(patched["ipAddress"], "10.244.1.5");
    let entries = sim.state().arp_entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].mac_address, "0a:58:0a:f4:01:99");

    let (status, unexpected) = session.patch(&path, &json!({"mac": "0a:58:0a:f4:01:99"})).await;
    assert_rest_error(status, &unexpected, StatusCode::BAD_REQUEST, "Found unexpected json pair");

    let (status, list) = session.get(ARP).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(items(&list).len(), 1);
    assert_eq!(list["kind"], "tm:net:arp:arpcollectionstate");

    let (status, _) = session.delete(&path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, gone) = session.get(&path).await;
    let message = "The requested ARP entry (/Common/k8s-10.244.1.5) was not found.";
    assert_rest_error(status, &gone, StatusCode::NOT_FOUND, message);
    let (status, _) = session.delete(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bgp_neighbors_round_trip() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let (status, created) = session.post(BGP, &json!({"name": "bgp-rd0", "localAs": 64512})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert!(created.get("neighbor").is_none(), "{created}");

    let neighbors = json!({"neighbor": [
        {"name": "192.168.1.21", "remoteAs": 64513},
        {"name": "192.168.1.22", "remoteAs": 64513}]});
    let path = format!("{BGP}/~Common~bgp-rd0");
    let (status, patched) = session.patch(&path, &neighbors).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, read) = session.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["localAs"], 64512);
    assert_eq!(read["neighbor"], neighbors["neighbor"]);
    let bgp = sim.state().bgp();
    assert_eq!(bgp[0].neighbor.len(), 2);

    let (status, bad) = session.patch(&path, &json!({"neighbor": [{"name": "node-1", "remoteAs": 1}]})).await;
    assert_rest_error(status, &bad, StatusCode::BAD_REQUEST, "node-1");
    let (status, missing) = session.get(&format!("{BGP}/~Common~nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test]
async fn network_objects_need_credentials_and_survive_a_restart() {
    let directory = tempfile::tempdir().expect("tempdir");
    let state_file = directory.path().join("bigip-state.json");
    let config = || SimulatorConfig { state_file: Some(state_file.clone()), ..SimulatorConfig::default() };

    let sim = start(config()).await;
    let anonymous = Client::new().get(format!("{}{ARP}", sim.base_url())).send().await.expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let session = Session::login(&sim).await;
    create_flannel_tunnel(&session).await;
    let records = json!({"records": [{"name": "0a:58:0a:f4:01:02", "endpoint": "192.168.1.21"}]});
    let (status, _) = session.patch(&format!("{FDB}/~Common~fl"), &records).await;
    assert_eq!(status, StatusCode::OK);
    sim.shutdown().await;

    let restarted = start(config()).await;
    assert_eq!(restarted.state().tunnels().len(), 1);
    assert_eq!(restarted.state().fdb_records("fl").expect("tunnel fl").len(), 1);
}

/// `/mgmt/tm/sys/version` reports the release; claimed older than 14.1 (`tmosVersion`), the
/// routing collections are not registered, as on those releases, and an invalid version is
/// refused.
#[tokio::test]
async fn the_claimed_release_decides_whether_routing_exists() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let version_of = |body: &Value| {
        body["entries"]["https://localhost/mgmt/tm/sys/version/0"]["nestedStats"]["entries"]["Version"]["description"]
            .clone()
    };
    let (status, body) = session.get("/mgmt/tm/sys/version").await;
    assert_eq!((status, version_of(&body)), (StatusCode::OK, json!("17.1.0")), "{body}");
    assert_eq!(body["kind"], "tm:sys:version:versionstats");
    let (status, _) = session.get(BGP).await;
    assert_eq!(status, StatusCode::OK);

    let (status, faults) = session.put("/simulator/faults", &json!({"tmosVersion": "13.1.3"})).await;
    assert_eq!(status, StatusCode::OK, "{faults}");
    let (_, body) = session.get("/mgmt/tm/sys/version").await;
    assert_eq!(version_of(&body), json!("13.1.3"));
    let (status, body) = session.post(BGP, &json!({"name": "b", "localAs": 64512})).await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "Public URI path not registered: /tm/net/routing/bgp");
    let (status, body) = session.get(&format!("{BGP}/~Common~b")).await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "not registered");
    let (status, _) = session.get(ARP).await;
    assert_eq!(status, StatusCode::OK, "the other network collections stay");

    let (status, body) = session.put("/simulator/faults", &json!({"tmosVersion": "fourteen"})).await;
    assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "tmosVersion");
    assert_eq!(sim.state().tmos_version(), "13.1.3", "a refused change changes nothing");
    sim.shutdown().await;
}

/// AS3's per-application API needs AS3 3.50 or later with `perAppDeploymentAllowed`; the
/// simulator reports both and refuses per-application requests without them.
#[tokio::test]
async fn the_per_application_api_follows_the_as3_version_and_setting() {
    let apps = json!({"web": web_tenant("10.1.10.80", &["172.31.0.1"])["A"].clone()});
    for (version, allowed, offered) in [("3.56.0", true, true), ("3.49.0", true, false), ("3.56.0", false, false)] {
        let sim = start(SimulatorConfig {
            as3_version: version.into(),
            per_application_api: allowed,
            ..SimulatorConfig::default()
        })
        .await;
        let session = Session::login(&sim).await;
        assert_eq!(session.get("/mgmt/shared/appsvcs/info").await.1["version"], version);
        assert_eq!(session.get("/mgmt/shared/appsvcs/settings").await.1["perAppDeploymentAllowed"], allowed);
        let (status, body) = session.declare(&adc(&[("T1", web_tenant("10.1.10.81", &[]))])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = session.post("/mgmt/shared/appsvcs/declare/T1/applications", &apps).await;
        if offered {
            assert_eq!(status, StatusCode::OK, "{version} {allowed}: {body}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{version} {allowed}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| m.contains("per-application")), "{body}");
            let (status, _) = session.delete("/mgmt/shared/appsvcs/declare/T1/applications/web").await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
}

/// The simulated AS3 run time grows with the applications in the request and in the tenant.
#[tokio::test]
async fn the_as3_run_time_follows_the_latency_model() {
    let sim = start(SimulatorConfig {
        as3_delay_per_request_application: std::time::Duration::from_millis(40),
        as3_delay_per_tenant_application: std::time::Duration::from_millis(10),
        ..SimulatorConfig::default()
    })
    .await;
    let session = Session::login(&sim).await;
    let tenant = |n: usize| {
        let mut tenant = json!({"class": "Tenant"});
        for i in 0..n {
            tenant[format!("app{i}")] = web_tenant(&format!("10.1.10.{}", 10 + i), &[])["A"].clone();
        }
        tenant
    };
    let started = std::time::Instant::now();
    let (status, body) = session.declare(&adc(&[("T1", tenant(5))])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let five = started.elapsed();
    // 5 applications in the request (200 ms) and 5 in the tenant (50 ms).
    assert!(five >= std::time::Duration::from_millis(250), "{five:?}");
    let started = std::time::Instant::now();
    let one = json!({"app0": web_tenant("10.1.10.50", &[])["A"].clone()});
    let (status, body) = session.post("/mgmt/shared/appsvcs/declare/T1/applications", &one).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let single = started.elapsed();
    // 1 in the request (40 ms), 5 in the tenant (50 ms): less than the whole tenant.
    assert!(single >= std::time::Duration::from_millis(90) && single < five, "{single:?} vs {five:?}");
}

#[tokio::test]
async fn bigip_references_resolve_against_the_device_objects_tests_create_over_icontrol_rest() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let mut tenant = web_tenant("10.0.9.1", &["192.0.9.10"]);
    tenant["A"]["service"]["policyWAF"] = json!({"bigip": "/Common/linux-high"});
    tenant["A"]["service"]["profileHTTP"] = json!({"bigip": "/Common/http"});

    // A fresh box has the standard /Common profiles and no WAF policy.
    let (status, body) = session.get("/mgmt/tm/ltm/profile/http/~Common~http").await;
    assert_eq!((status, body["fullPath"].as_str()), (StatusCode::OK, Some("/Common/http")));
    let (status, body) = session.declare(&adc(&[("T", tenant.clone())])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["message"], "Unable to find specified WAF policy /Common/linux-high for /T/A/service/policyWAF");
    assert!(sim.state().tenants().is_empty());

    let (status, _) =
        session.post("/mgmt/tm/asm/policies", &json!({"name": "linux-high", "partition": "Common"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = session.post("/mgmt/tm/asm/policies", &json!({"fullPath": "/Common/linux-high"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "created twice");
    let (status, body) = session.get("/mgmt/tm/asm/policies").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        items(&body).iter().map(|item| item["fullPath"].clone()).collect::<Vec<_>>(),
        [json!("/Common/linux-high")]
    );
    let (status, body) = session.declare(&adc(&[("T", tenant.clone())])).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A name of another type is not found: /Common/tcp is a TCP profile, not an HTTP one.
    tenant["A"]["service"]["profileHTTP"] = json!({"bigip": "/Common/tcp"});
    let (status, body) = session.declare(&adc(&[("T", tenant.clone())])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["message"], "Unable to find /Common/tcp for /T/A/service/profileHTTP");

    let (status, _) = session.delete("/mgmt/tm/asm/policies/~Common~linux-high").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = session.get("/mgmt/tm/asm/policies/~Common~linux-high").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sim.shutdown().await;
}

#[tokio::test]
async fn edits_on_the_device_change_the_live_view_not_the_declaration_and_a_repost_repairs_them() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let declaration = adc(&[("T", web_tenant("10.0.10.1", &["192.0.10.1", "192.0.10.2"]))]);
    assert_eq!(session.declare(&declaration).await.0, StatusCode::OK);
    let (_, stored_before) = session.get(DECLARE).await;

    // tmsh-like edits through iControl REST: one member removed, the other disabled, the
    // virtual disabled.
    let members = "/mgmt/tm/ltm/pool/~T~A~web_pool/members";
    let (status, _) = session.delete(&format!("{members}/~T~192.0.10.1:30080")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        session.patch(&format!("{members}/~T~192.0.10.2:30080"), &json!({"session": "user-disabled"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = session.patch("/mgmt/tm/ltm/virtual/~T~A~service", &json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::OK);

    let live = sim.state().pool_members("T", "A", "web_pool").expect("pool");
    assert_eq!(live.iter().map(|m| (m.address.as_str(), m.enabled)).collect::<Vec<_>>(), [("192.0.10.2", false)]);
    let (_, pools) = session.get("/mgmt/tm/ltm/pool?$filter=partition%20eq%20T&expandSubcollections=true").await;
    let expanded = &items(&pools)[0]["membersReference"]["items"];
    assert_eq!(expanded.as_array().map(Vec::len), Some(1), "{pools}");
    assert_eq!(expanded[0]["session"], "user-disabled");
    let (_, virtuals) = session.get("/mgmt/tm/ltm/virtual?$filter=partition+eq+T").await;
    assert_eq!(items(&virtuals)[0]["disabled"], true);
    let (_, others) = session.get("/mgmt/tm/ltm/virtual?$filter=partition+eq+Other").await;
    assert!(items(&others).is_empty());
    // What AS3 stored did not change.
    assert_eq!(session.get(DECLARE).await.1, stored_before);

    // Posting the same declaration again puts the objects back, as AS3 diffs against the device.
    let (status, body) = session.declare(&declaration).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_for(&body, "T")["message"], "success", "a repair is a change: {body}");
    let live = sim.state().pool_members("T", "A", "web_pool").expect("pool");
    assert_eq!(live.iter().filter(|m| m.enabled).count(), 2);
    let (_, virtuals) = session.get("/mgmt/tm/ltm/virtual/~T~A~service").await;
    assert_eq!(virtuals["enabled"], true);
    let (_, body) = session.declare(&declaration).await;
    assert_eq!(result_for(&body, "T")["message"], "no change");
    sim.shutdown().await;
}

#[tokio::test]
async fn url_forms_a_big_ip_accepts() {
    let sim = start(SimulatorConfig::default()).await;
    let session = Session::login(&sim).await;
    let declaration = adc(&[("T", web_tenant("10.0.11.1", &["192.0.11.1"]))]);
    // A trailing slash, as some clients send.
    let (status, body) = session.post(&format!("{DECLARE}/"), &declaration).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = session.get(&format!("{DECLARE}/?show=full")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["T"]["class"], "Tenant", "{body}");
    let (status, _) = session.get(&format!("{DECLARE}/T/")).await;
    assert_eq!(status, StatusCode::OK);
    // `~`-separated object names, also percent-encoded, with and without the trailing slash.
    for path in
        ["/mgmt/tm/ltm/pool/~T~A~web_pool", "/mgmt/tm/ltm/pool/%7ET%7EA%7Eweb_pool", "/mgmt/tm/ltm/pool/~T~A~web_pool/"]
    {
        let (status, body) = session.get(path).await;
        assert_eq!((status, body["fullPath"].as_str()), (StatusCode::OK, Some("/T/A/web_pool")), "{path}");
    }
    // Asynchronous declarations answer 202 with a task to poll.
    let (status, body) = session.post(&format!("{DECLARE}?async=true"), &declaration).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    sim.shutdown().await;
}
