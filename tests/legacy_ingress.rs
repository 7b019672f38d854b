//! The legacy Ingress examples of k8s-bigip-ctlr's documentation (tests/data/legacy/ingress,
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
    ModelDefaults { partition: "kubernetes".into(), pool_member_type: PoolMemberType::Nodeport, node_selector: None }
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
                let output = render_manifests(&manifests, &defaults(), &owner).unwrap_or_else(|e| panic!("{name}: {e}"));
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
    assert!(output.warnings.iter().any(|w| w.contains("Ingress default/ing1") && w.contains("timeout 5")), "{:?}", output.warnings);
}
