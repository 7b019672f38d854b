//! Golden tests: manifests in tests/data/golden/<case>.yaml render to <case>.json, every
//! rendering validates against F5's official AS3 schema, and every <case>.json is accepted by
//! the BIG-IP simulator.
//!
//! After an intended change, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and
//! review the diff by eye.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use bigip_operator::as3::schema::validate_declaration;
use bigip_operator::as3::Ownership;
use bigip_operator::bigip::{BigIpClient, BigIpConfig, Credentials};
use bigip_operator::crd::PoolMemberType;
use bigip_operator::manifests::{read_manifests, render_manifests};
use bigip_operator::model::ModelDefaults;
use bigip_operator::simulator::{self, SimulatorConfig};

/// Golden renderings are labelled with a fixed cluster id.
fn golden_owner() -> Ownership {
    Ownership::new("golden-cluster").expect("valid cluster id")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn check_case(case: &str, mode: PoolMemberType) -> Vec<String> {
    check_case_in_route_domain(case, mode, 0)
}

/// [`check_case`] by an operator with `--default-route-domain <default_route_domain>`.
fn check_case_in_route_domain(case: &str, mode: PoolMemberType, default_route_domain: u16) -> Vec<String> {
    let input = golden_dir().join(format!("{case}.yaml"));
    let manifests = read_manifests(&[input]).expect("manifests parse");
    let defaults = ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: mode,
        node_selector: None,
        default_route_domain,
    };
    let owner = golden_owner().with_default_route_domain(default_route_domain);
    let rendered = render_manifests(&manifests, &defaults, &owner).expect("renders");
    let violations = validate_declaration(&rendered.declaration).expect("schema compiles");
    assert!(violations.is_empty(), "{case}: schema violations: {violations:#?}");

    let actual = serde_json::to_string_pretty(&rendered.declaration).expect("serialises") + "\n";
    let expected_path = golden_dir().join(format!("{case}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", expected_path.display()));
    assert_eq!(actual, expected, "{case}: rendering differs from {}", expected_path.display());
    rendered.warnings
}

#[test]
fn nodeport_basic() {
    assert!(check_case("nodeport-basic", PoolMemberType::Nodeport).is_empty());
}

#[test]
fn cluster_multi_pool() {
    assert!(check_case("cluster-multi-pool", PoolMemberType::Cluster).is_empty());
}

#[test]
fn two_partitions_with_an_unresolved_service() {
    let warnings = check_case("two-partitions-unresolved", PoolMemberType::Nodeport);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("edge/missing") && warnings[0].contains("ghost"), "{warnings:?}");
}

#[test]
fn http_routing_tls_and_every_l7_option() {
    assert!(check_case("http-routing-tls", PoolMemberType::Nodeport).is_empty());
}

#[test]
fn tls_reencrypt_profiles_and_passthrough() {
    assert!(check_case("tls-reencrypt-passthrough", PoolMemberType::Nodeport).is_empty());
}

#[test]
fn transport_servers_tcp_and_udp() {
    assert!(check_case("transport-tcp-udp", PoolMemberType::Nodeport).is_empty());
}

#[test]
fn members_local_draining_dual_stack() {
    assert!(check_case("members-local-draining-dual-stack", PoolMemberType::Cluster).is_empty());
    let declaration = golden_json("members-local-draining-dual-stack");
    let members = |app: &str, pool: &str| declaration["declaration"]["kubernetes"][app][pool]["members"].clone();
    // externalTrafficPolicy Local, IPv6 virtual: node-1 active, node-2 (terminating pod) drained.
    assert_eq!(
        members("shop_web", "pool_web"),
        serde_json::json!([
            {"servicePort": 30080, "serverAddresses": ["fd00:31::1"], "shareNodes": true, "enable": true},
            {"servicePort": 30080, "serverAddresses": ["fd00:31::2"], "shareNodes": true, "enable": true, "adminState": "disable"},
        ])
    );
    assert_eq!(
        members("shop_api", "pool_api"),
        serde_json::json!([
            {"servicePort": 8443, "serverAddresses": ["10.244.1.20", "10.244.3.21"], "shareNodes": true, "enable": true},
            {"servicePort": 8443, "serverAddresses": ["10.244.2.22"], "shareNodes": true, "enable": true, "adminState": "disable"},
        ])
    );
    assert_eq!(
        members("shop_legacy", "pool_legacy")[0]["serverAddresses"],
        serde_json::json!(["10.244.1.30", "10.244.3.31"])
    );
}

#[test]
fn http_rewrites_headers_and_redirects() {
    assert!(check_case("http-rewrites-redirects", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("http-rewrites-redirects");
    let rules = declaration["declaration"]["kubernetes"]["shop_shop"]["routes"]["rules"].as_array().cloned();
    let rules = rules.expect("rules");
    let names: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
    // Redirects first (the host, then the exact / of appRoot, then the prefix /catalog), then routes.
    assert_eq!(
        names,
        [
            "redirect_0",
            "redirect_1",
            "redirect_2",
            "redirect_2_below",
            "route_0",
            "route_1",
            "route_1_below",
            "route_2"
        ]
    );
    let below = &rules[6]["actions"];
    assert_eq!(below[1]["replace"]["path"], "tcl:/v2/[string range [HTTP::path] 5 end]");
    assert_eq!(rules[5]["actions"][1]["replace"]["path"], "/v2");
    assert_eq!(rules[0]["actions"][0]["location"], "https://shop.example.com/");
    assert_eq!(rules[1]["actions"][0]["location"], "/shop");
    assert_eq!(rules[5]["actions"][0]["replace"], serde_json::json!({"name": "Host", "value": "api.internal"}));
    assert_eq!(rules[4]["actions"][0]["replace"]["path"], "/healthz");
    assert_eq!(rules[5]["actions"][3]["event"], "response");
}

#[test]
fn profiles_by_reference_vlans_and_mirroring() {
    assert!(check_case("profiles-by-reference", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("profiles-by-reference");
    let tenant = &declaration["declaration"]["kubernetes"];
    let vs = &tenant["shop_shop"]["vs"];
    assert_eq!(vs["profileHTTP2"], serde_json::json!({"bigip": "/Common/http2"}));
    assert_eq!(vs["persistenceMethods"], serde_json::json!([{"bigip": "/Common/cookie"}]));
    assert_eq!(vs["mirroring"], "L4");
    // The object's own routing policy first, then the existing LTM policy.
    assert_eq!(vs["policyEndpoint"], serde_json::json!(["routes", {"bigip": "/Common/security-headers"}]));
    assert_eq!(
        tenant["shop_ts_db"]["vs"]["profileTCP"],
        serde_json::json!({"ingress": {"bigip": "/Common/f5-tcp-wan"}, "egress": {"bigip": "/Common/f5-tcp-lan"}})
    );
    assert_eq!(tenant["shop_ts_dns"]["vs"]["profileUDP"], serde_json::json!({"bigip": "/Common/udp_gtm_dns"}));
    let fast = &tenant["shop_ts_fast"]["vs"];
    assert_eq!((&fast["class"], &fast["layer4"]), (&serde_json::json!("Service_L4"), &serde_json::json!("tcp")));
    assert_eq!(fast["profileL4"], serde_json::json!({"bigip": "/Common/fastL4"}));
    assert!(fast.get("profileTCP").is_none());
}

#[test]
fn tls_versions_ciphers_and_client_certificates() {
    assert!(check_case("tls-options", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("tls-options");
    let tenant = &declaration["declaration"]["kubernetes"];
    let strict = &tenant["shop_api"]["tls_server"];
    let flags: Vec<&Value> =
        ["tls1_0Enabled", "tls1_1Enabled", "tls1_2Enabled", "tls1_3Enabled"].iter().map(|k| &strict[*k]).collect();
    assert_eq!(flags, [&Value::Bool(false), &Value::Bool(false), &Value::Bool(true), &Value::Bool(true)]);
    assert_eq!(strict["cipherGroup"], serde_json::json!({"bigip": "/Common/f5-secure"}));
    assert_eq!(strict["authenticationMode"], "require");
    assert_eq!(strict["authenticationTrustCA"], "tls_client_ca");
    assert_eq!(tenant["shop_api"]["tls_client_ca"]["class"], "CA_Bundle");
    let legacy = &tenant["shop_legacy"]["tls_server"];
    assert_eq!(legacy["ciphers"], "ECDHE+AESGCM:!SSLv3");
    assert_eq!(legacy["tls1_3Enabled"], false);
    assert_eq!(legacy["authenticationMode"], "request");
    let plain = &tenant["shop_legacy"]["vs_http"];
    assert_eq!((&plain["class"], &plain["virtualPort"]), (&serde_json::json!("Service_HTTP"), &serde_json::json!(80)));
    assert!(tenant["shop_api"].get("vs_http").is_none());
}

#[test]
fn plain_http_on_another_port_is_redirected_or_served() {
    use serde_json::json;
    assert!(check_case("http-port", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("http-port");
    let tenant = &declaration["declaration"]["kubernetes"];
    let shop = &tenant["shop_shop"];
    assert_eq!(shop["vs"]["redirect80"], false, "AS3's redirect would listen on 80");
    let redirect = &shop["vs_http"];
    assert_eq!((&redirect["class"], &redirect["virtualPort"]), (&json!("Service_HTTP"), &json!(8080)));
    assert_eq!(redirect["iRules"], json!(["https_redirect"]));
    assert!(redirect.get("pool").is_none() && redirect.get("policyEndpoint").is_none());
    let irule = shop["https_redirect"]["iRule"].as_str().expect("iRule text");
    assert!(irule.contains("HTTP::redirect \"https://[getfield [HTTP::host] \":\" 1]:8443[HTTP::uri]\""), "{irule}");
    let both = &tenant["shop_both"];
    assert_eq!(both["vs"]["redirect80"], false);
    assert_eq!(both["vs_http"]["virtualPort"], 8000);
    assert_eq!(both["vs_http"]["policyEndpoint"], both["vs"]["policyEndpoint"]);
    assert!(both.get("https_redirect").is_none());
}

#[test]
fn transport_servers_offload_tls() {
    use serde_json::json;
    assert!(check_case("transport-tls", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("transport-tls");
    let tenant = &declaration["declaration"]["kubernetes"];
    let mqtt = &tenant["shop_ts_mqtt"];
    assert_eq!((&mqtt["vs"]["class"], &mqtt["vs"]["serverTLS"]), (&json!("Service_TCP"), &json!("tls_server")));
    assert!(mqtt["vs"].get("clientTLS").is_none() && mqtt["vs"].get("redirect80").is_none());
    assert_eq!(mqtt["tls_server"]["authenticationMode"], "require");
    assert_eq!(mqtt["tls_server"]["cipherGroup"], json!({"bigip": "/Common/f5-secure"}));
    assert_eq!(mqtt["tls_certificate"]["class"], "Certificate");
    let db = &tenant["shop_ts_db"]["vs"];
    assert_eq!(db["serverTLS"], json!({"bigip": "/Common/clientssl"}));
    assert_eq!(db["clientTLS"], json!({"bigip": "/Common/serverssl"}));
}

#[test]
fn rules_persist_on_their_own() {
    use serde_json::json;
    assert!(check_case("rule-persistence", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("rule-persistence");
    let tenant = &declaration["declaration"]["kubernetes"];
    let rules = tenant["shop_shop"]["routes"]["rules"].as_array().expect("rules").clone();
    let persist_of = |name: &str| {
        let rule = rules.iter().find(|rule| rule["name"] == name).unwrap_or_else(|| panic!("rule {name}"));
        let actions = rule["actions"].as_array().expect("actions");
        let persist = actions.iter().find(|a| a["type"] == "persist").cloned().unwrap_or(Value::Null);
        assert_eq!(actions.last().map(|a| &a["type"]), Some(&json!("forward")), "{name}: forward comes last");
        persist
    };
    // Rules are in evaluation order: exact host with path, exact hosts, then no host.
    let names: Vec<&str> = rules.iter().filter_map(|rule| rule["name"].as_str()).collect();
    assert_eq!(names, ["route_0", "route_0_below", "route_1", "route_2", "route_3", "route_3_below"]);
    assert_eq!(
        persist_of("route_0"),
        json!({"type": "persist", "event": "request", "cookieInsert": {"name": "shop-account", "expiry": "1d00:00:00"}})
    );
    assert_eq!(persist_of("route_0_below"), persist_of("route_0"));
    assert_eq!(
        persist_of("route_1")["cookieInsert"],
        json!({"name": "BIGipServer_shop_shop_web", "expiry": "00:00:00"})
    );
    assert_eq!(persist_of("route_2")["sourceAddress"], json!({"netmask": "255.255.255.255", "timeout": 600}));
    assert_eq!(persist_of("route_3")["disable"], json!({}));
    assert_eq!(tenant["shop_shop"]["vs"]["persistenceMethods"], json!([]));
    let v6 = &tenant["shop_v6"]["routes"]["rules"][0]["actions"][0];
    assert_eq!(v6["destinationAddress"], json!({"netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "timeout": 180}));
}

#[test]
fn weighted_backends_become_member_ratios() {
    assert!(check_case("weighted-backends", PoolMemberType::Cluster).is_empty());
    let declaration = golden_json("weighted-backends");
    let tenant = &declaration["declaration"]["kubernetes"];
    let pool = &tenant["shop_shop"]["pool_web"];
    assert_eq!(pool["loadBalancingMode"], "ratio-member");
    let ratios: Vec<(Value, Value)> = pool["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["serverAddresses"].clone(), m["ratio"].clone()))
        .collect();
    assert_eq!(
        ratios,
        [
            (serde_json::json!(["10.244.3.20"]), serde_json::json!(33)),
            (serde_json::json!(["10.244.1.10", "10.244.1.11", "10.244.2.12"]), serde_json::json!(100)),
        ]
    );
    let db = &tenant["shop_ts_db"]["pool_db"]["members"];
    assert_eq!(db[0]["ratio"], 100);
    assert_eq!(db[0]["serverAddresses"], serde_json::json!(["10.244.4.40", "10.244.4.41"]));
}

#[test]
fn pool_options_existing_monitors_and_static_members() {
    assert!(check_case("pool-options", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("pool-options");
    let app = &declaration["declaration"]["kubernetes"]["shop_shop"];
    let pool = &app["pool_web"];
    assert_eq!(
        pool["monitors"],
        serde_json::json!([{"use": "monitor_web_0"}, {"use": "monitor_web_1"}, {"bigip": "/Common/http"}])
    );
    assert_eq!(pool["minimumMonitors"], "all");
    assert_eq!(pool["serviceDownAction"], "reselect");
    assert_eq!(pool["reselectTries"], 3);
    let members: Vec<&Value> =
        pool["members"].as_array().expect("members").iter().map(|m| &m["serverAddresses"]).collect();
    // Grouped by port: the static members' 8080, then the nodes' 30080.
    assert_eq!(members, [&serde_json::json!(["192.168.50.10", "192.168.50.11"]), &serde_json::json!(["192.168.1.11"])]);
    assert_eq!(app["monitor_web_0"]["targetPort"], 8081);
    assert_eq!(app["monitor_web_0"]["timeUntilUp"], 30);
    assert_eq!(app["monitor_web_1"]["clientTLS"], serde_json::json!({"bigip": "/Common/serverssl"}));
    let fallback = &declaration["declaration"]["kubernetes"]["shop_fallback"]["vs"];
    assert_eq!(fallback["pool"], serde_json::json!({"bigip": "/Common/fallback"}));
}

#[test]
fn pool_only_objects_program_only_their_pools() {
    assert!(check_case("pools-only", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("pools-only");
    let tenant = &declaration["declaration"]["kubernetes"];
    for (app, pool) in [("shop_web-pool", "pool_web"), ("shop_ts_db-pool", "pool_db")] {
        assert!(tenant[app].get("vs").is_none(), "{app}: no virtual server");
        assert_eq!(tenant[app][pool]["members"][0]["servicePort"], 30080, "{app}");
    }
}

#[test]
fn a_policy_shared_by_several_objects() {
    assert!(check_case("shared-policy", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("shared-policy");
    let tenant = &declaration["declaration"]["kubernetes"];
    let shop = &tenant["shop_shop"];
    assert_eq!(shop["vs"]["policyWAF"], serde_json::json!({"bigip": "/Common/linux-high"}));
    assert_eq!(shop["vs"]["profileHTTP"], serde_json::json!({"bigip": "/Common/http"}));
    assert_eq!(shop["source_ranges"]["addresses"], serde_json::json!(["10.0.0.0/8"]));
    assert_eq!(tenant["shop_admin"]["source_ranges"]["addresses"], serde_json::json!(["192.168.10.0/24"]));
    let db = &tenant["shop_ts_db"];
    assert_eq!(db["vs"]["profileTCP"], serde_json::json!({"bigip": "/Common/f5-tcp-progressive"}));
    assert!(db["vs"].get("profileHTTP").is_none() && db["vs"].get("policyWAF").is_none());
    assert_eq!(db["vs"]["mirroring"], "L4");
}

#[test]
fn route_domains_in_virtual_addresses() {
    assert!(check_case("route-domains", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("route-domains");
    let tenant = &declaration["declaration"]["kubernetes"];
    assert_eq!(tenant["shop_tenant-a"]["vs"]["virtualAddresses"], serde_json::json!(["10.1.30.80%2"]));
    assert_eq!(tenant["shop_tenant-b"]["vs"]["virtualAddresses"], serde_json::json!(["10.1.30.80%3"]));
    assert_eq!(tenant["shop_ts_default-rd"]["vs"]["virtualAddresses"], serde_json::json!(["10.1.30.81"]));
}

#[test]
fn the_partition_default_route_domain_is_declared_and_written_out() {
    assert!(check_case_in_route_domain("partition-route-domain", PoolMemberType::Nodeport, 2).is_empty());
    let declaration = golden_json("partition-route-domain");
    let tenant = &declaration["declaration"]["kubernetes"];
    assert_eq!(tenant["defaultRouteDomain"], 2);
    let address = |app: &str| tenant[app]["vs"]["virtualAddresses"].clone();
    assert_eq!(address("shop_web"), serde_json::json!(["10.1.30.90%2"]));
    assert_eq!(address("shop_admin"), serde_json::json!(["10.1.30.90%3"]));
    assert_eq!(address("shop_ts_db"), serde_json::json!(["10.1.30.91%2"]));
}

#[test]
fn listener_group_shared_by_two_namespaces() {
    assert!(check_case("listener-group", PoolMemberType::Nodeport).is_empty());
    let declaration = golden_json("listener-group");
    let app = &declaration["declaration"]["kubernetes"]["lg__public"];
    assert_eq!(app["vs"]["class"], "Service_HTTPS");
    assert_eq!(app["vs"]["virtualAddresses"], serde_json::json!(["10.1.10.50"]));
    let sni: Vec<&str> = app["tls_server"]["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .filter_map(|c| c["matchToSNI"].as_str())
        .collect();
    assert_eq!(sni, ["shop.example.com", "blog.example.com"]);
    for pool in ["pool_team-a_shop_web", "pool_team-a_shop_api", "pool_team-b_blog_blog"] {
        assert_eq!(app[pool]["class"], "Pool", "{pool}");
    }
    assert!(declaration["declaration"]["kubernetes"].get("team-a_shop").is_none(), "no application of its own");
}

fn golden_json(case: &str) -> serde_json::Value {
    let path = golden_dir().join(format!("{case}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every golden declaration is deployed, each to a fresh simulator, and every tenant succeeds.
#[tokio::test]
async fn every_golden_declaration_is_accepted_by_the_simulator() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for path in cases {
        let case = path.file_stem().and_then(|s| s.to_str()).expect("case name").to_string();
        let sim = simulator::start(SimulatorConfig::default()).await.expect("simulator starts");
        let mut config = BigIpConfig::new(sim.base_url(), Credentials::new("admin", "admin"));
        config.task_poll_interval = Duration::from_millis(20);
        let client = BigIpClient::new(config).expect("client");
        let declaration = golden_json(&case);
        // Objects the declaration names by `bigip:` must exist on the BIG-IP, as an administrator
        // would have created them: without them AS3 refuses the whole declaration.
        let references = simulator::missing_device_objects(&declaration);
        if !references.is_empty() {
            let refusal = match client.declare(&declaration).await {
                Err(error) => error.to_string(),
                Ok(report) => {
                    assert!(
                        report.tenants.values().all(|result| !result.succeeded()),
                        "{case}: deployed without its objects"
                    );
                    report.tenants.values().map(|result| result.detail()).collect::<Vec<_>>().join("; ")
                }
            };
            assert!(refusal.starts_with("Unable to find") || refusal.contains("Unable to find"), "{case}: {refusal}");
            assert!(references.iter().any(|reference| refusal.contains(&reference.name)), "{case}: {refusal}");
        }
        for reference in &references {
            create_device_object(&sim, &reference.kinds[0], &reference.name).await;
        }
        // Route domains are the administrator's too (AS3 does not create them): without them
        // the BIG-IP refuses the tenant at deploy time.
        let route_domains = route_domains_named(&declaration);
        if !route_domains.is_empty() {
            let report = client.declare(&declaration).await.unwrap_or_else(|e| panic!("{case}: {e}"));
            let refusals: Vec<String> = report.tenants.values().map(|result| result.detail()).collect();
            assert!(
                refusals.iter().any(|detail| detail.contains("The requested route domain (/Common/")),
                "{case}: deployed without its route domains: {refusals:?}"
            );
        }
        for id in &route_domains {
            create_device_object(&sim, "net/route-domain", &format!("/Common/{id}")).await;
        }
        let report = client.declare(&declaration).await.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(!report.tenants.is_empty(), "{case}: no tenant results");
        for (tenant, result) in &report.tenants {
            assert!(result.succeeded(), "{case}: tenant {tenant}: {}", result.detail());
        }
        if case == "members-local-draining-dual-stack" {
            // Draining members are pool members with adminState disable (BIG-IP: user-disabled).
            let pool = sim.state().pool_members("kubernetes", "shop_api", "pool_api").expect("pool_api exists");
            let states: Vec<(String, bool)> =
                pool.iter().map(|m| (format!("{}:{}", m.address, m.port), m.enabled)).collect();
            assert_eq!(
                states,
                [
                    ("10.244.1.20:8443".to_string(), true),
                    ("10.244.3.21:8443".into(), true),
                    ("10.244.2.22:8443".into(), false)
                ]
            );
        }
        sim.shutdown().await;
    }
}

/// The non-zero route domains (`%N`) of the virtual addresses and tenants of a declaration.
fn route_domains_named(declaration: &Value) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    fn walk(value: &Value, ids: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(object) => {
                for (key, item) in object {
                    match (key.as_str(), item) {
                        ("virtualAddresses", Value::Array(addresses)) => {
                            ids.extend(addresses.iter().filter_map(Value::as_str).filter_map(|address| {
                                address.split_once('%').map(|(_, id)| id.to_owned()).filter(|id| id != "0")
                            }))
                        }
                        ("defaultRouteDomain", Value::Number(id)) if id.as_u64() != Some(0) => {
                            ids.insert(id.to_string());
                        }
                        _ => walk(item, ids),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, ids)),
            _ => {}
        }
    }
    walk(declaration, &mut ids);
    ids
}

/// Creates `full_path` of iControl REST type `kind` on the simulated BIG-IP, over its REST API.
async fn create_device_object(sim: &simulator::RunningSimulator, kind: &str, full_path: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/mgmt/tm/{kind}", sim.base_url()))
        .basic_auth("admin", Some("admin"))
        .json(&serde_json::json!({"fullPath": full_path}))
        .send()
        .await
        .expect("create request");
    assert!(
        response.status().is_success() || response.status() == reqwest::StatusCode::CONFLICT,
        "{kind} {full_path}: {}",
        response.status()
    );
}

#[test]
fn the_samples_render_to_a_schema_valid_declaration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifests = read_manifests(&[root.join("config/samples"), root.join("config/offline")]).expect("parse");
    let defaults = ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    };
    let rendered = render_manifests(&manifests, &defaults, &golden_owner()).expect("renders");
    let members =
        rendered.declaration.pointer("/declaration/kubernetes/default_web/pool_web/members/0/serverAddresses");
    assert_eq!(members, Some(&serde_json::json!(["172.31.0.1", "172.31.0.2"])));
}

/// config/samples/loadbalancer-service.yaml and address-pool.yaml: the LoadBalancer Service
/// becomes a TransportServer on the pool's first address, over the nodes and its nodePort.
#[test]
fn the_load_balancer_sample_gets_the_pools_first_address() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests = read_manifests(&[root.join("config/samples"), root.join("config/offline")]).expect("parse");
    manifests.program_load_balancers(&bigip_operator::model::load_balancer::LoadBalancerClass {
        class: "bigip.operator.dev/bigip".into(),
        class_less: false,
    });
    assert_eq!(
        manifests.load_balancer_notes,
        ["Service default/web-lb: 10.1.20.1 (from BigIpAddressPool default-vips) as TransportServers web-lb-tcp-80"]
    );
    let defaults = ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    };
    let rendered = render_manifests(&manifests, &defaults, &golden_owner()).expect("renders");
    let app = "/declaration/kubernetes/default_ts_web-lb-tcp-80";
    let pointer = |path: &str| rendered.declaration.pointer(&format!("{app}{path}")).cloned();
    assert_eq!(pointer("/vs/virtualAddresses"), Some(serde_json::json!(["10.1.20.1"])));
    assert_eq!(pointer("/vs/virtualPort"), Some(serde_json::json!(80)));
    assert_eq!(pointer("/pool_service/members/0/servicePort"), Some(serde_json::json!(30081)));
    assert_eq!(
        pointer("/pool_service/members/0/serverAddresses"),
        Some(serde_json::json!(["172.31.0.1", "172.31.0.2"]))
    );
    assert!(validate_declaration(&rendered.declaration).expect("schema compiles").is_empty());
}

#[test]
fn a_schema_violation_is_reported_with_its_path() {
    let mut declaration: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join("nodeport-basic.json")).expect("golden exists"),
    )
    .expect("json");
    declaration["declaration"]["kubernetes"]["default_web"]["vs"]["virtualPort"] = serde_json::json!("eighty");
    let violations = validate_declaration(&declaration).expect("schema compiles");
    assert!(violations.iter().any(|v| v.instance_path.ends_with("/default_web/vs/virtualPort")), "{violations:#?}");
}

#[test]
fn invalid_manifests_name_the_object_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: bigip.operator.dev/v1alpha1\nkind: VirtualServer\nmetadata: {name: bad, namespace: x}\nspec:\n  virtualAddress: 10.0.0.1\n  port: eighty\n  pools: []\n",
    )
    .expect("write");
    let err = read_manifests(&[path]).expect_err("must fail").to_string();
    assert!(err.contains("VirtualServer x/bad") && err.contains("spec.port"), "{err}");
}

/// `render` gives a VirtualServer with `spec.addressPool` the pool's next free address, after
/// the LoadBalancer Services, as the operator would.
#[test]
fn render_allocates_for_address_pool_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = r#"
apiVersion: bigip.operator.dev/v1alpha1
kind: BigIpAddressPool
metadata: {name: vips}
spec: {addresses: ["10.9.0.1-10.9.0.2"]}
---
apiVersion: bigip.operator.dev/v1alpha1
kind: VirtualServer
metadata: {name: pooled, namespace: default}
spec:
  addressPool: vips
  port: 80
  pools: [{name: web, service: web, servicePort: 80}]
---
apiVersion: bigip.operator.dev/v1alpha1
kind: VirtualServer
metadata: {name: late, namespace: default}
spec:
  addressPool: none-such
  port: 81
  pools: [{name: web, service: web, servicePort: 80}]
"#;
    std::fs::write(dir.path().join("objects.yaml"), manifests).expect("write");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut read =
        read_manifests(&[dir.path().to_path_buf(), root.join("config/samples/web.yaml"), root.join("config/offline")])
            .expect("parse");
    read.program_load_balancers(&bigip_operator::model::load_balancer::LoadBalancerClass {
        class: "bigip.operator.dev/bigip".into(),
        class_less: false,
    });
    assert_eq!(
        read.load_balancer_notes,
        [
            "VirtualServer default/pooled: 10.9.0.1 (from BigIpAddressPool vips)",
            "VirtualServer default/late: no address: AddressPoolNotFound: BigIpAddressPool none-such does not exist",
        ]
    );
    read.virtual_servers.retain(|vs| vs.metadata.name.as_deref() == Some("pooled"));
    let defaults = ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    };
    let rendered = render_manifests(&read, &defaults, &golden_owner()).expect("renders");
    let address = rendered.declaration.pointer("/declaration/kubernetes/default_pooled/vs/virtualAddresses");
    assert_eq!(address, Some(&serde_json::json!(["10.9.0.1"])));
}
