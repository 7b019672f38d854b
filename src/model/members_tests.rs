//! Unit tests of pool member resolution: one rule per test, straight through `resolve_members`.

use std::sync::Arc;

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

use super::*;

fn service(external_traffic_policy: Option<&str>) -> ServiceView {
    let mut spec =
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]});
    if let Some(policy) = external_traffic_policy {
        spec["externalTrafficPolicy"] = json!(policy);
    }
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec}))
        .expect("valid Service")
}

/// A node; `extra` is merged into the object (labels, spec.unschedulable).
fn node(name: &str, ips: &[&str], ready: bool, extra: Value) -> Arc<Node> {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"type": "InternalIP", "address": ip})).collect();
    let mut object = json!({
        "metadata": {"name": name},
        "status": {
            "addresses": addresses,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    });
    merge(&mut object, extra);
    Arc::new(serde_json::from_value(object).expect("valid Node"))
}

fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(target), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, extra) => *target = extra,
    }
}

/// An endpoint on `node` with the given conditions (`None`: the condition is absent).
fn endpoint(address: &str, node: &str, ready: Option<bool>, serving: Option<bool>, terminating: Option<bool>) -> Value {
    let mut conditions = serde_json::Map::new();
    for (name, value) in [("ready", ready), ("serving", serving), ("terminating", terminating)] {
        if let Some(value) = value {
            conditions.insert(name.into(), json!(value));
        }
    }
    json!({"addresses": [address], "nodeName": node, "conditions": conditions})
}

fn ready(address: &str, node: &str) -> Value {
    endpoint(address, node, Some(true), Some(true), Some(false))
}

fn terminating(address: &str, node: &str) -> Value {
    endpoint(address, node, Some(false), Some(true), Some(true))
}

fn slice(name: &str, address_type: &str, endpoints: Vec<Value>) -> Arc<EndpointSliceView> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": address_type,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .expect("valid EndpointSlice"),
    )
}

fn rules(family: AddressFamily) -> MemberRules<'static> {
    MemberRules { family, node_selector: None }
}

fn resolve(
    mode: PoolMemberType,
    service: &ServiceView,
    slices: &[Arc<EndpointSliceView>],
    nodes: &[Arc<Node>],
    rules: &MemberRules<'_>,
) -> Vec<String> {
    let port = find_service_port(service, &IntOrString::Int(80)).expect("port 80");
    resolve_members(mode, service, port, slices, nodes, rules)
        .expect("resolves")
        .iter()
        .map(|m| {
            let state = match m.state {
                MemberState::Active => "",
                MemberState::Draining => " draining",
            };
            match m.address {
                IpAddr::V4(a) => format!("{a}:{}{state}", m.port),
                IpAddr::V6(a) => format!("[{a}]:{}{state}", m.port),
            }
        })
        .collect()
}

fn nodeport(service: &ServiceView, slices: &[Arc<EndpointSliceView>], nodes: &[Arc<Node>]) -> Vec<String> {
    resolve(PoolMemberType::Nodeport, service, slices, nodes, &rules(AddressFamily::V4))
}

fn cluster(slices: &[Arc<EndpointSliceView>], family: AddressFamily) -> Vec<String> {
    resolve(PoolMemberType::Cluster, &service(None), slices, &[], &rules(family))
}

#[test]
fn nodeport_members_are_ready_schedulable_nodes_not_excluded_from_load_balancers() {
    let nodes = [
        node("ready", &["10.0.0.1"], true, json!({})),
        node("not-ready", &["10.0.0.2"], false, json!({})),
        node("cordoned", &["10.0.0.3"], true, json!({"spec": {"unschedulable": true}})),
        node("schedulable", &["10.0.0.4"], true, json!({"spec": {"unschedulable": false}})),
        node("excluded", &["10.0.0.5"], true, json!({"metadata": {"labels": {EXCLUDE_FROM_LOAD_BALANCERS_LABEL: ""}}})),
        node(
            "excluded-true",
            &["10.0.0.6"],
            true,
            json!({"metadata": {"labels": {EXCLUDE_FROM_LOAD_BALANCERS_LABEL: "true"}}}),
        ),
        node(
            "other-label",
            &["10.0.0.7"],
            true,
            json!({"metadata": {"labels": {"node.kubernetes.io/instance-type": "m5"}}}),
        ),
        node("no-address", &[], true, json!({})),
    ];
    assert_eq!(nodeport(&service(None), &[], &nodes), ["10.0.0.1:30080", "10.0.0.4:30080", "10.0.0.7:30080"]);
}

#[test]
fn external_traffic_policy_local_keeps_only_nodes_hosting_endpoints() {
    let nodes = [
        node("n1", &["10.0.0.1"], true, json!({})),
        node("n2", &["10.0.0.2"], true, json!({})),
        node("n3", &["10.0.0.3"], true, json!({})),
        node("n4", &["10.0.0.4"], true, json!({})),
        node("n5", &["10.0.0.5"], true, json!({"spec": {"unschedulable": true}})),
        node("n6", &["10.0.0.6"], true, json!({})),
    ];
    let slices = [
        slice(
            "web-a",
            "IPv4",
            vec![ready("10.244.1.1", "n1"), terminating("10.244.2.1", "n2"), terminating("10.244.6.1", "n6")],
        ),
        slice(
            "web-b",
            "IPv4",
            vec![
                // Serving false while terminating: no longer takes traffic.
                endpoint("10.244.3.1", "n3", Some(false), Some(false), Some(true)),
                // A cordoned node stays out even with an endpoint.
                ready("10.244.5.1", "n5"),
                // A node with a ready and a terminating endpoint is active.
                ready("10.244.6.2", "n6"),
            ],
        ),
    ];
    // n1 has a ready endpoint, n2 only a serving-but-terminating one (drained, as kube-proxy
    // still serves it but it should get no new connections), n4 none.
    assert_eq!(
        nodeport(&service(Some("Local")), &slices, &nodes),
        ["10.0.0.1:30080", "10.0.0.2:30080 draining", "10.0.0.6:30080"]
    );
    // Cluster (explicit or the default) sends to every eligible node, endpoints or not.
    let all = ["10.0.0.1:30080", "10.0.0.2:30080", "10.0.0.3:30080", "10.0.0.4:30080", "10.0.0.6:30080"];
    assert_eq!(nodeport(&service(Some("Cluster")), &slices, &nodes), all);
    assert_eq!(nodeport(&service(None), &slices, &nodes), all);
}

#[test]
fn external_traffic_policy_local_without_ready_endpoints_is_an_empty_pool() {
    let nodes = [node("n1", &["10.0.0.1"], true, json!({})), node("n2", &["10.0.0.2"], true, json!({}))];
    assert!(nodeport(&service(Some("Local")), &[], &nodes).is_empty());
    let not_ready = [slice("web-a", "IPv4", vec![endpoint("10.244.1.1", "n1", Some(false), None, None)])];
    assert!(nodeport(&service(Some("Local")), &not_ready, &nodes).is_empty());
    // Endpoints that name no node, or a slice without the Service's port, place nothing.
    let mut no_node = endpoint("10.244.1.2", "n1", Some(true), None, None);
    no_node.as_object_mut().map(|e| e.remove("nodeName"));
    let other_port: Arc<EndpointSliceView> = {
        let mut s = (*slice("web-c", "IPv4", vec![ready("10.244.2.2", "n2")])).clone();
        s.ports = Some(vec![serde_json::from_value(json!({"name": "metrics", "port": 9090})).expect("port")]);
        Arc::new(s)
    };
    assert!(nodeport(&service(Some("Local")), &[slice("web-b", "IPv4", vec![no_node]), other_port], &nodes).is_empty());
}

#[test]
fn the_node_label_selector_picks_nodes_with_each_operator() {
    let labelled =
        |name: &str, ip: &str, labels: Value| node(name, &[ip], true, json!({"metadata": {"labels": labels}}));
    let nodes = [
        labelled("a", "10.0.0.1", json!({"zone": "a", "lb": ""})),
        labelled("b", "10.0.0.2", json!({"zone": "b", "spot": "true"})),
        labelled("c", "10.0.0.3", json!({"zone": "c"})),
        node("none", &["10.0.0.4"], true, json!({})),
    ];
    let select = |text: &str| {
        let selector: Selector = text.parse().expect("valid selector");
        let rules = MemberRules { family: AddressFamily::V4, node_selector: Some(&selector) };
        resolve(PoolMemberType::Nodeport, &service(None), &[], &nodes, &rules)
            .into_iter()
            .map(|m| m.trim_end_matches(":30080").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(select("zone=a"), ["10.0.0.1"]);
    assert_eq!(select("zone==b"), ["10.0.0.2"]);
    assert_eq!(select("zone!=a"), ["10.0.0.2", "10.0.0.3", "10.0.0.4"], "!= also matches nodes without the label");
    assert_eq!(select("zone in (a,c)"), ["10.0.0.1", "10.0.0.3"]);
    assert_eq!(select("zone notin (a,c)"), ["10.0.0.2", "10.0.0.4"]);
    assert_eq!(select("lb"), ["10.0.0.1"]);
    assert_eq!(select("!spot"), ["10.0.0.1", "10.0.0.3", "10.0.0.4"]);
    assert_eq!(select("zone,!spot"), ["10.0.0.1", "10.0.0.3"]);
    assert_eq!(select(""), ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    assert!(select("zone=d").is_empty());
}

#[test]
fn cluster_members_are_ready_endpoints_and_draining_terminating_ones() {
    let slices = [slice(
        "web-a",
        "IPv4",
        vec![
            ready("10.244.0.1", "n1"),
            // Absent conditions: ready (and so active), as the API specifies.
            endpoint("10.244.0.2", "n1", None, None, None),
            // Serving but terminating: drained.
            terminating("10.244.0.3", "n1"),
            // serving absent means serving (the API's default).
            endpoint("10.244.0.4", "n1", Some(false), None, Some(true)),
            // Neither ready nor serving: gone.
            endpoint("10.244.0.5", "n1", Some(false), Some(false), Some(true)),
            // Not ready and not terminating (starting, failing its probe): gone.
            endpoint("10.244.0.6", "n1", Some(false), Some(false), Some(false)),
            endpoint("10.244.0.7", "n1", Some(false), None, None),
            // Ready wins over terminating.
            endpoint("10.244.0.8", "n1", Some(true), Some(true), Some(true)),
        ],
    )];
    assert_eq!(
        cluster(&slices, AddressFamily::V4),
        [
            "10.244.0.1:8080",
            "10.244.0.2:8080",
            "10.244.0.3:8080 draining",
            "10.244.0.4:8080 draining",
            "10.244.0.8:8080"
        ]
    );
}

#[test]
fn an_address_both_active_and_draining_is_one_active_member() {
    let slices = [
        slice("web-a", "IPv4", vec![terminating("10.244.0.1", "n1"), terminating("10.244.0.2", "n1")]),
        slice("web-b", "IPv4", vec![ready("10.244.0.1", "n1"), terminating("10.244.0.2", "n1")]),
    ];
    assert_eq!(cluster(&slices, AddressFamily::V4), ["10.244.0.1:8080", "10.244.0.2:8080 draining"]);
}

#[test]
fn cluster_members_follow_the_virtual_address_family_and_fall_back_to_the_other() {
    let dual = [
        slice("web-v4", "IPv4", vec![ready("10.244.0.1", "n1"), terminating("10.244.0.2", "n2")]),
        slice("web-v6", "IPv6", vec![ready("fd00::1", "n1"), terminating("fd00::2", "n2")]),
    ];
    assert_eq!(cluster(&dual, AddressFamily::V4), ["10.244.0.1:8080", "10.244.0.2:8080 draining"]);
    assert_eq!(cluster(&dual, AddressFamily::V6), ["[fd00::1]:8080", "[fd00::2]:8080 draining"]);

    // An IPv6 virtual in front of an IPv4-only Service, and the reverse, still get members.
    assert_eq!(cluster(&dual[..1], AddressFamily::V6), ["10.244.0.1:8080", "10.244.0.2:8080 draining"]);
    assert_eq!(cluster(&dual[1..], AddressFamily::V4), ["[fd00::1]:8080", "[fd00::2]:8080 draining"]);

    // A draining member of the preferred family is a member of that family: no fallback.
    let draining_v6 = [
        slice("web-v4", "IPv4", vec![ready("10.244.0.1", "n1")]),
        slice("web-v6", "IPv6", vec![terminating("fd00::2", "n2")]),
    ];
    assert_eq!(cluster(&draining_v6, AddressFamily::V6), ["[fd00::2]:8080 draining"]);
    assert!(cluster(&[], AddressFamily::V6).is_empty());
}

#[test]
fn nodeport_members_follow_the_virtual_address_family_and_fall_back_to_the_other() {
    let nodes = [
        node("dual", &["10.0.0.1", "fd00::1"], true, json!({})),
        node("dual-v6-first", &["fd00::2", "10.0.0.2", "fd00::22"], true, json!({})),
        node("v4-only", &["10.0.0.3"], true, json!({})),
    ];
    let np =
        |family, nodes: &[Arc<Node>]| resolve(PoolMemberType::Nodeport, &service(None), &[], nodes, &rules(family));
    assert_eq!(np(AddressFamily::V4, &nodes), ["10.0.0.1:30080", "10.0.0.2:30080", "10.0.0.3:30080"]);
    // The first InternalIP of the family per node; a node without one is left out.
    assert_eq!(np(AddressFamily::V6, &nodes), ["[fd00::1]:30080", "[fd00::2]:30080"]);
    // No node has an IPv6 address: the IPv4 ones serve an IPv6 virtual.
    assert_eq!(np(AddressFamily::V6, &nodes[2..]), ["10.0.0.3:30080"]);
    let v6_only = [node("v6", &["fd00::9"], true, json!({}))];
    assert_eq!(np(AddressFamily::V4, &v6_only), ["[fd00::9]:30080"]);
}

#[test]
fn members_are_sorted_and_unique_per_address_and_port() {
    let nodes = [
        node("b", &["10.0.0.2"], true, json!({})),
        node("a", &["10.0.0.1"], true, json!({})),
        node("a-again", &["10.0.0.1"], true, json!({})),
    ];
    assert_eq!(nodeport(&service(None), &[], &nodes), ["10.0.0.1:30080", "10.0.0.2:30080"]);
}
