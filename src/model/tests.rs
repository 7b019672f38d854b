//! Unit tests of the model: VirtualServers + cluster objects → desired applications.

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use super::*;
use crate::crd::VirtualServer;

/// No TransportServers.
const NO_TS: [&crate::crd::TransportServer; 0] = [];

fn defaults(mode: PoolMemberType) -> ModelDefaults {
    ModelDefaults { partition: "k8s".into(), pool_member_type: mode, node_selector: None, default_route_domain: 0 }
}

fn vs(name: &str, address: &str, port: i32, extra: serde_json::Value) -> VirtualServer {
    let mut spec = json!({
        "virtualAddress": address,
        "port": port,
        "pools": [{"name": "web", "service": "web", "servicePort": 80}],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": format!("2026-01-01T00:00:{:02}Z", name.len())},
        "spec": spec,
    }))
    .expect("valid VirtualServer")
}

fn service(name: &str, node_port: Option<i32>) -> ServiceView {
    let mut port = json!({"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"});
    if let Some(np) = node_port {
        port["nodePort"] = json!(np);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"type": if node_port.is_some() { "NodePort" } else { "ClusterIP" }, "ports": [port]},
    }))
    .expect("valid Service")
}

fn slice(name: &str, service: &str, endpoints: &[(&str, Option<bool>)]) -> EndpointSliceView {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|(ip, ready)| match ready {
            Some(r) => json!({"addresses": [ip], "conditions": {"ready": r}}),
            None => json!({"addresses": [ip]}),
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("valid EndpointSlice")
}

fn node(name: &str, ip: &str, ready: bool) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {
            "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    }))
    .expect("valid Node")
}

fn cluster() -> ClusterObjects {
    let mut c = ClusterObjects::default();
    c.add_service(service("web", Some(30080)));
    c.add_endpoint_slice(slice(
        "web-abc",
        "web",
        &[("10.244.1.5", Some(true)), ("10.244.2.7", None), ("10.244.2.9", Some(false))],
    ));
    c.add_node(node("n1", "172.31.0.1", true));
    c.add_node(node("n2", "172.31.0.2", true));
    c.add_node(node("n3", "172.31.0.3", false));
    c
}

fn members(app: &DesiredApplication) -> Vec<String> {
    app.pools[0].members.iter().map(|m| format!("{}:{}", m.address, m.port)).collect()
}

#[test]
fn nodeport_members_are_ready_nodes_with_the_node_port() {
    let built =
        build_application(&vs("web", "10.1.10.80", 80, json!({})), &cluster(), &defaults(PoolMemberType::Nodeport))
            .expect("valid");
    assert_eq!(members(&built.application), ["172.31.0.1:30080", "172.31.0.2:30080"]);
    assert!(built.unresolved.is_empty());
    assert_eq!(built.application.name, "shop_web");
    assert_eq!(built.application.partition, "k8s");
}

#[test]
fn cluster_members_are_ready_endpoints_with_the_target_port() {
    let built =
        build_application(&vs("web", "10.1.10.80", 80, json!({})), &cluster(), &defaults(PoolMemberType::Cluster))
            .expect("valid");
    // 10.244.2.9 is not ready; an endpoint without a ready condition counts as ready.
    assert_eq!(members(&built.application), ["10.244.1.5:8080", "10.244.2.7:8080"]);
}

#[test]
fn per_object_member_type_overrides_the_operator_default() {
    let object = vs("web", "10.1.10.80", 80, json!({"poolMemberType": "cluster"}));
    let built = build_application(&object, &cluster(), &defaults(PoolMemberType::Nodeport)).expect("valid");
    assert_eq!(members(&built.application), ["10.244.1.5:8080", "10.244.2.7:8080"]);
}

#[test]
fn service_port_can_be_named() {
    let object =
        vs("web", "10.1.10.80", 80, json!({"pools": [{"name": "web", "service": "web", "servicePort": "http"}]}));
    let built = build_application(&object, &cluster(), &defaults(PoolMemberType::Nodeport)).expect("valid");
    assert_eq!(built.application.member_count(), 2);
}

#[test]
fn missing_service_is_unresolved_with_an_empty_pool() {
    let object = vs("web", "10.1.10.80", 80, json!({"pools": [{"name": "api", "service": "api", "servicePort": 80}]}));
    let built = build_application(&object, &cluster(), &defaults(PoolMemberType::Nodeport)).expect("valid spec");
    assert_eq!(built.application.member_count(), 0);
    assert_eq!(built.unresolved, vec![UnresolvedRef::ServiceNotFound { pool: "api".into(), service: "api".into() }]);
    assert_eq!(built.unresolved[0].reason(), "ServiceNotFound");
}

#[test]
fn missing_service_port_and_missing_node_port_are_unresolved() {
    let object = vs("web", "10.1.10.80", 80, json!({"pools": [{"name": "web", "service": "web", "servicePort": 443}]}));
    let built = build_application(&object, &cluster(), &defaults(PoolMemberType::Nodeport)).expect("valid spec");
    assert_eq!(built.unresolved[0].reason(), "ServicePortNotFound");

    let mut c = cluster();
    c.add_service(service("web", None));
    let built = build_application(&vs("web", "10.1.10.80", 80, json!({})), &c, &defaults(PoolMemberType::Nodeport))
        .expect("valid spec");
    assert_eq!(built.unresolved[0].reason(), "ServiceHasNoNodePort");
    // The same ClusterIP Service works in cluster mode.
    let built = build_application(&vs("web", "10.1.10.80", 80, json!({})), &c, &defaults(PoolMemberType::Cluster))
        .expect("valid spec");
    assert!(built.unresolved.is_empty());
}

#[test]
fn invalid_specs_name_the_field() {
    let c = cluster();
    let d = defaults(PoolMemberType::Nodeport);
    let err = |object: VirtualServer| build_application(&object, &c, &d).expect_err("invalid").to_string();
    assert!(err(vs("web", "10.1.10", 80, json!({}))).contains("spec.virtualAddress"));
    assert!(err(vs("web", "10.1.10.80", 0, json!({}))).contains("spec.port"));
    assert!(err(vs("web", "10.1.10.80", 70000, json!({}))).contains("spec.port"));
    assert!(err(vs("web", "10.1.10.80", 80, json!({"partition": "Common"}))).contains("spec.partition"));
    assert!(err(vs("web", "10.1.10.80", 80, json!({"defaultPool": "nope"}))).contains("spec.defaultPool"));
    let dup = json!({"pools": [{"name": "a", "service": "web", "servicePort": 80}, {"name": "a", "service": "web", "servicePort": 80}]});
    assert!(err(vs("web", "10.1.10.80", 80, dup)).contains("spec.pools[1].name"));
    let monitor = json!({"pools": [{"name": "a", "service": "web", "servicePort": 80,
        "monitors": [{"type": "http", "interval": 10, "timeout": 5}]}]});
    assert!(err(vs("web", "10.1.10.80", 80, monitor)).contains("spec.pools[0].monitors[0]"));
}

#[test]
fn partitions_named_like_declaration_properties_are_refused() {
    // Found by tests/fuzz.rs: the tenant replaced the declaration's own `class`, `id`, ...
    let c = cluster();
    let d = defaults(PoolMemberType::Nodeport);
    for name in ["class", "id", "label", "remark", "updateMode", "schemaVersion", "controls", "constants"] {
        let err = build_application(&vs("web", "10.1.10.80", 80, json!({"partition": name})), &c, &d).expect_err(name);
        assert!(matches!(&err, InvalidSpec::Partition { value, .. } if value == name), "{err}");
        assert!(err.to_string().contains("spec.partition"), "{err}");
    }
    assert!(build_application(&vs("web", "10.1.10.80", 80, json!({"partition": "Class"})), &c, &d).is_ok());
}

#[test]
fn monitor_timing_beyond_as3_limits_is_refused() {
    // Found by tests/fuzz.rs: AS3 allows interval <= 3600 and timeout <= 900, the CRD 86400.
    let c = cluster();
    let d = defaults(PoolMemberType::Nodeport);
    let with_monitor = |interval: i32, timeout: i32| {
        vs(
            "web",
            "10.1.10.80",
            80,
            json!({"pools": [{"name": "a", "service": "web", "servicePort": 80,
            "monitors": [{"type": "http", "interval": interval, "timeout": timeout}]}]}),
        )
    };
    assert!(build_application(&with_monitor(899, 900), &c, &d).is_ok());
    let err = build_application(&with_monitor(900, 901), &c, &d).expect_err("timeout 901");
    assert!(err.to_string().contains("spec.pools[0].monitors[0]: timeout 901 is outside 2-900"), "{err}");
    let err = build_application(&with_monitor(3601, 86400), &c, &d).expect_err("interval 3601");
    assert!(err.to_string().contains("interval 3601 is outside 1-3600"), "{err}");
}

#[test]
fn objects_whose_application_names_would_collide_are_refused() {
    // shop_web/a and shop/web_a would both be the AS3 application shop_web_a: the render kept
    // one and dropped the other without a word.
    let named = |namespace: &str, name: &str, address: &str| {
        let mut object = vs("x", address, 80, json!({}));
        object.metadata.namespace = Some(namespace.into());
        object.metadata.name = Some(name.into());
        object
    };
    let (first, second) = (named("shop_web", "a", "10.1.10.80"), named("shop", "web_a", "10.1.10.81"));
    let fleet = build_fleet([&first, &second], NO_TS, &cluster(), &defaults(PoolMemberType::Nodeport));
    assert!(fleet.partitions.is_empty());
    for outcome in fleet.outcomes.values() {
        assert!(matches!(outcome, AppOutcome::Invalid(InvalidSpec::ApplicationName { .. })), "{outcome:?}");
    }
    let unnamed = named("shop", "", "10.1.10.82");
    let err = build_application(&unnamed, &cluster(), &defaults(PoolMemberType::Nodeport)).expect_err("no name");
    assert!(err.to_string().contains("must not be empty"), "{err}");
}

#[test]
fn ipv6_virtual_addresses_are_accepted() {
    let built =
        build_application(&vs("web", "2001:db8::80", 443, json!({})), &cluster(), &defaults(PoolMemberType::Nodeport))
            .expect("valid");
    assert_eq!(built.application.virtual_address.to_string(), "2001:db8::80");
}

#[test]
fn fleet_groups_by_partition_and_gives_a_contested_address_to_the_older_object() {
    let older = vs("a", "10.1.10.80", 80, json!({}));
    let newer = vs("bbbb", "10.1.10.80", 80, json!({}));
    let elsewhere = vs("cc", "10.1.10.81", 80, json!({"partition": "other"}));
    let invalid = vs("ddddd", "nope", 80, json!({}));
    let fleet =
        build_fleet([&newer, &older, &elsewhere, &invalid], NO_TS, &cluster(), &defaults(PoolMemberType::Nodeport));
    let names = |p: &str| fleet.partitions[p].iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    assert_eq!(names("k8s"), ["shop_a"]);
    assert_eq!(names("other"), ["shop_cc"]);
    let key = |n: &str| SourceId {
        kind: SourceKind::VirtualServer,
        key: ObjectKey { namespace: "shop".into(), name: n.into() },
    };
    assert!(matches!(&fleet.outcomes[&key("bbbb")], AppOutcome::AddressConflict { holder, .. } if holder == &key("a")));
    assert!(matches!(&fleet.outcomes[&key("ddddd")], AppOutcome::Invalid(InvalidSpec::VirtualAddress { .. })));
    assert!(matches!(&fleet.outcomes[&key("a")], AppOutcome::Included { members: 2, .. }));
}

#[test]
fn an_address_serves_one_partition_on_any_port() {
    let older = vs("a", "10.1.11.80", 80, json!({}));
    let same_partition = vs("b", "10.1.11.80", 443, json!({}));
    let other_partition = vs("c", "10.1.11.80", 8080, json!({"partition": "other"}));
    let fleet = build_fleet(
        [&other_partition, &same_partition, &older],
        NO_TS,
        &cluster(),
        &defaults(PoolMemberType::Nodeport),
    );
    let key = |n: &str| SourceId {
        kind: SourceKind::VirtualServer,
        key: ObjectKey { namespace: "shop".into(), name: n.into() },
    };
    assert!(matches!(&fleet.outcomes[&key("b")], AppOutcome::Included { .. }), "another port, same partition");
    match &fleet.outcomes[&key("c")] {
        AppOutcome::AddressConflict { holder, listener } => {
            assert_eq!(holder, &key("a"));
            assert_eq!(listener.to_string(), "the address 10.1.11.80 (BIG-IP keeps an address in one partition)");
        }
        other => panic!("another partition on the same address: {other:?}"),
    }
}

#[test]
fn objects_being_deleted_leave_the_fleet() {
    let mut gone = vs("a", "10.1.10.80", 80, json!({}));
    gone.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let fleet = build_fleet([&gone], NO_TS, &cluster(), &defaults(PoolMemberType::Nodeport));
    assert!(fleet.partitions.is_empty());
    assert!(fleet.outcomes.is_empty());
}

#[test]
fn the_operator_node_selector_and_the_virtual_address_family_reach_member_resolution() {
    let mut c = cluster();
    let labelled = |name: &str, v4: &str, v6: &str, zone: &str| -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"zone": zone}},
            "status": {
                "addresses": [{"type": "InternalIP", "address": v4}, {"type": "InternalIP", "address": v6}],
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
        .expect("valid Node")
    };
    c.add_node(labelled("n1", "172.31.0.1", "fd00::1", "a"));
    c.add_node(labelled("n2", "172.31.0.2", "fd00::2", "b"));
    let mut d = defaults(PoolMemberType::Nodeport);
    d.node_selector = Some("zone in (a)".parse().expect("valid selector"));
    let built = build_application(&vs("web", "10.1.10.80", 80, json!({})), &c, &d).expect("valid");
    assert_eq!(members(&built.application), ["172.31.0.1:30080"]);
    let built = build_application(&vs("web", "2001:db8::80", 80, json!({})), &c, &d).expect("valid");
    assert_eq!(members(&built.application), ["fd00::1:30080"]);
}

#[test]
fn draining_members_are_programmed_but_not_counted() {
    let mut c = cluster();
    let slice: EndpointSliceView = serde_json::from_value(json!({
        "metadata": {"name": "web-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": ["10.244.1.5"], "conditions": {"ready": false, "serving": true, "terminating": true}},
            {"addresses": ["10.244.1.6"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        ],
    }))
    .expect("valid EndpointSlice");
    c.add_endpoint_slice(slice);
    let built = build_application(&vs("web", "10.1.10.80", 80, json!({})), &c, &defaults(PoolMemberType::Cluster))
        .expect("valid");
    let states: Vec<MemberState> = built.application.pools[0].members.iter().map(|m| m.state).collect();
    assert_eq!(states, [MemberState::Draining, MemberState::Draining]);
    // Nothing takes new connections, so the status reports no members (Ready: NoMembers).
    assert_eq!(built.application.member_count(), 0);
}

fn grant(namespace: &str, from_kind: &str, from_namespace: &str, to_name: Option<&str>) -> crate::crd::ReferenceGrant {
    let mut to = json!({"group": "", "kind": "Service"});
    if let Some(name) = to_name {
        to["name"] = json!(name);
    }
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": format!("allow-{from_namespace}"), "namespace": namespace},
        "spec": {"from": [{"group": "bigip.operator.dev", "kind": from_kind, "namespace": from_namespace}], "to": [to]},
    }))
    .expect("valid ReferenceGrant")
}

/// The `web` Service and the nodes, but in namespace `shared` instead of `shop`.
fn cluster_with_shared_service() -> ClusterObjects {
    let mut c = ClusterObjects::default();
    let mut svc = service("web", Some(30090));
    svc.metadata.namespace = Some("shared".into());
    c.add_service(svc);
    c.add_node(node("n1", "172.31.0.1", true));
    c
}

#[test]
fn a_service_of_another_namespace_needs_a_reference_grant_there() {
    let object = vs(
        "web",
        "10.1.10.80",
        80,
        json!({"pools": [{"name": "web", "service": "web", "namespace": "shared", "servicePort": 80}]}),
    );
    let mut cluster = cluster_with_shared_service();
    let refused = build_application(&object, &cluster, &defaults(PoolMemberType::Nodeport)).expect("valid");
    assert!(members(&refused.application).is_empty());
    assert_eq!(refused.unresolved.len(), 1);
    assert_eq!(refused.unresolved[0].reason(), "RefNotPermitted");
    assert!(
        refused.unresolved[0].to_string().contains(r#"Service "shared/web" is in another namespace, and no ReferenceGrant there allows VirtualServers from namespace shop"#),
        "{}",
        refused.unresolved[0]
    );

    // Grants that do not fit: another kind, another source namespace, another Service, or in
    // the wrong namespace.
    cluster.add_reference_grant(grant("shared", "TransportServer", "shop", None));
    cluster.add_reference_grant(grant("shared", "VirtualServer", "other", None));
    let mut wrong_name = grant("shared", "VirtualServer", "shop", Some("db"));
    wrong_name.metadata.name = Some("only-db".into());
    cluster.add_reference_grant(wrong_name);
    cluster.add_reference_grant(grant("shop", "VirtualServer", "shop", None));
    let still = build_application(&object, &cluster, &defaults(PoolMemberType::Nodeport)).expect("valid");
    assert_eq!(still.unresolved.iter().map(|u| u.reason()).collect::<Vec<_>>(), ["RefNotPermitted"]);

    let mut exact = grant("shared", "VirtualServer", "shop", Some("web"));
    exact.metadata.name = Some("web-for-shop".into());
    cluster.add_reference_grant(exact);
    let allowed = build_application(&object, &cluster, &defaults(PoolMemberType::Nodeport)).expect("valid");
    assert!(allowed.unresolved.is_empty(), "{:?}", allowed.unresolved);
    assert_eq!(members(&allowed.application), ["172.31.0.1:30090"]);
}

#[test]
fn a_missing_service_of_another_namespace_is_named_with_its_namespace() {
    let object = vs(
        "web",
        "10.1.10.80",
        80,
        json!({"pools": [{"name": "web", "service": "gone", "namespace": "shared", "servicePort": 80}]}),
    );
    let mut cluster = cluster_with_shared_service();
    cluster.add_reference_grant(grant("shared", "VirtualServer", "shop", None));
    let built = build_application(&object, &cluster, &defaults(PoolMemberType::Nodeport)).expect("valid");
    assert_eq!(
        built.unresolved,
        [UnresolvedRef::ServiceNotFound { pool: "web".into(), service: "shared/gone".into() }]
    );
}
