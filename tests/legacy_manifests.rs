//! Legacy manifests through `read_manifests` (what `render` and `convert` use): the Ingress
//! examples of k8s-bigip-ctlr's documentation (tests/data/legacy/ingress,
//! copied from shared/reference/legacy-examples) translate into VirtualServers that render to
//! schema-valid AS3, or are refused with the reason.

use std::path::{Path, PathBuf};

use bigip_operator::as3::Ownership;
use bigip_operator::crd::PoolMemberType;
use bigip_operator::manifests::{read_manifests, render_manifests, ManifestError};
use bigip_operator::model::ModelDefaults;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/legacy/ingress");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files
}

fn defaults() -> ModelDefaults {
    ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    }
}

#[test]
fn every_example_translates_and_renders_or_is_refused_with_its_reason() {
    let owner = Ownership::new("legacy").expect("owner");
    let (mut rendered, mut refused) = (0, 0);
    for file in examples() {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        match read_manifests(std::slice::from_ref(&file)) {
            Ok(manifests) => {
                assert_eq!(manifests.legacy.len(), 1, "{name}: one Ingress");
                assert!(!manifests.virtual_servers.is_empty(), "{name}: no VirtualServer");
                let output =
                    render_manifests(&manifests, &defaults(), &owner).unwrap_or_else(|e| panic!("{name}: {e}"));
                let tenant = &output.declaration["declaration"]["k8s"];
                assert_eq!(tenant["class"], "Tenant", "{name}: the partition annotation is the tenant");
                rendered += 1;
            }
            Err(ManifestError::Object { kind, message, .. }) => {
                // Only the example using the controller's default address cannot be expressed.
                assert_eq!(name, "ci-f5-k8s-ingress-annotation.yaml", "{name}: {message}");
                assert_eq!(kind, "Ingress");
                assert!(message.contains("controller-default is not supported"), "{message}");
                refused += 1;
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }
    assert_eq!((rendered, refused), (8, 1));
}

#[test]
fn the_health_monitor_example_programs_routes_and_monitors() {
    let file = examples().into_iter().find(|f| f.ends_with("k8s-ingress-with-health-monitors.yaml")).expect("example");
    let manifests = read_manifests(&[file]).expect("reads");
    let output = render_manifests(&manifests, &defaults(), &Ownership::new("legacy").expect("owner")).expect("renders");
    let app = &output.declaration["declaration"]["k8s"]["default_ing-ing1"];
    assert_eq!(app["vs"]["class"], "Service_HTTP");
    assert_eq!(app["vs"]["virtualAddresses"][0], "1.2.3.4");
    let rules = app["routes"]["rules"].as_array().expect("routing policy");
    let hosts: Vec<&str> = rules.iter().filter_map(|r| r["conditions"][0]["host"]["values"][0].as_str()).collect();
    assert!(hosts.contains(&"svc1.example.com") && hosts.contains(&"svc2.example.com"), "{hosts:?}");
    assert_eq!(app["monitor_svc1-8080_0"]["send"], "GET /health/app1 HTTP/1.0\r\n\r\n");
    assert_eq!(app["monitor_svc2-9090_0"]["timeout"], 6);
    assert!(
        output.warnings.iter().any(|w| w.contains("Ingress default/ing1") && w.contains("timeout 5")),
        "{:?}",
        output.warnings
    );
}

/// `render` and `convert` read legacy ConfigMaps from manifests too; other ConfigMaps are
/// skipped, and a bad one is an error naming the ConfigMap and the schema path.
#[test]
fn manifests_translate_legacy_config_maps_and_skip_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cms.yaml");
    let legacy = |name: &str, port: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop, labels: {{f5type: virtual-server}}}}\ndata:\n  schema: f5schemadb://bigip-virtual-server_v0.1.7.json\n  data: '{{\"virtualServer\": {{\"backend\": {{\"serviceName\": \"web\", \"servicePort\": 80}}, \"frontend\": {{\"mode\": \"tcp\", \"partition\": \"k8s\", \"virtualAddress\": {{\"bindAddr\": \"10.1.2.3\", \"port\": {port}}}}}}}}}'\n"
        )
    };
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {a: b}\n";
    std::fs::write(&file, format!("{}---\n{other}", legacy("db", "5432"))).expect("write");
    let manifests = read_manifests(std::slice::from_ref(&file)).expect("reads");
    assert_eq!(manifests.transport_servers.len(), 1);
    assert_eq!(manifests.transport_servers[0].metadata.name.as_deref(), Some("cm-db"));
    assert!(manifests.ignored.iter().any(|i| i == "ConfigMap shop/settings"), "{:?}", manifests.ignored);
    let output = render_manifests(&manifests, &defaults(), &Ownership::new("legacy").expect("owner")).expect("renders");
    assert_eq!(output.declaration["declaration"]["k8s"]["shop_ts_cm-db"]["vs"]["class"], "Service_TCP");

    std::fs::write(&file, legacy("bad", "\"eighty\"")).expect("write");
    match read_manifests(std::slice::from_ref(&file)) {
        Err(ManifestError::Object { kind, name, message, .. }) => {
            assert_eq!((kind.as_str(), name.as_str()), ("ConfigMap", "shop/bad"));
            assert!(message.contains("/virtualServer/frontend/virtualAddress/port"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
