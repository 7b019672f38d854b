//! Golden tests: manifests in tests/data/golden/<case>.yaml render to <case>.json, and every
//! rendering validates against F5's official AS3 schema.
//!
//! After an intended change, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and
//! review the diff by eye.

use std::path::{Path, PathBuf};

use bigip_operator::as3::schema::validate_declaration;
use bigip_operator::as3::Ownership;
use bigip_operator::crd::PoolMemberType;
use bigip_operator::manifests::{read_manifests, render_manifests};
use bigip_operator::model::ModelDefaults;

/// Golden renderings are labelled with a fixed cluster id.
fn golden_owner() -> Ownership {
    Ownership::new("golden-cluster").expect("valid cluster id")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn check_case(case: &str, mode: PoolMemberType) -> Vec<String> {
    let input = golden_dir().join(format!("{case}.yaml"));
    let manifests = read_manifests(&[input]).expect("manifests parse");
    let defaults = ModelDefaults { partition: "kubernetes".into(), pool_member_type: mode, node_selector: None };
    let rendered = render_manifests(&manifests, &defaults, &golden_owner()).expect("renders");
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
fn the_samples_render_to_a_schema_valid_declaration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifests = read_manifests(&[root.join("config/samples"), root.join("config/offline")]).expect("parse");
    let defaults = ModelDefaults { partition: "kubernetes".into(), pool_member_type: PoolMemberType::Nodeport, node_selector: None };
    let rendered = render_manifests(&manifests, &defaults, &golden_owner()).expect("renders");
    let members = rendered.declaration.pointer("/declaration/kubernetes/default_web/pool_web/members/0/serverAddresses");
    assert_eq!(members, Some(&serde_json::json!(["172.31.0.1", "172.31.0.2"])));
}

#[test]
fn a_schema_violation_is_reported_with_its_path() {
    let mut declaration: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join("nodeport-basic.json")).expect("golden exists"),
    )
    .expect("json");
    declaration["declaration"]["kubernetes"]["default_web"]["vs"]["virtualPort"] = serde_json::json!("eighty");
    let violations = validate_declaration(&declaration).expect("schema compiles");
    assert!(
        violations.iter().any(|v| v.instance_path.ends_with("/default_web/vs/virtualPort")),
        "{violations:#?}"
    );
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
