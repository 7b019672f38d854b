//! Property-based ("fuzz") tests with proptest: arbitrary and adversarial input to
//!
//! 1. the CRD types and the model (`VirtualServer` JSON → `build_fleet` → AS3 rendering),
//! 2. the parsing of AS3 answers from the BIG-IP (`parse_as3_answer`),
//! 3. the simulator's declaration handling, through its wire API and its state file (its pure
//!    declaration code is private to it).
//!
//! Every property asserts that nothing panics and that bad input is refused with a typed error
//! whose message names what is wrong. Case counts are small so the file runs in seconds; raise
//! them for a longer hunt with `PROPTEST_CASES=5000 cargo test --test fuzz`. Failures are not
//! persisted to files: a failing run prints the minimal input, which belongs in a unit test
//! next to the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use bigip_operator::as3::schema::{validate_declaration, AS3_SCHEMA_VERSION};
use bigip_operator::as3::{render_request, render_tenant, Ownership, TenantOwner};
use bigip_operator::bigip::response::{parse_as3_answer, parse_as3_answer_text, As3Answer};
use bigip_operator::bigip::TenantResult;
use bigip_operator::crd::{PoolMemberType, VirtualServer};
use bigip_operator::manifests::{render_manifests, Manifests, RenderError};
use bigip_operator::model::{
    build_fleet, AppOutcome, ClusterObjects, DesiredApplication, InvalidSpec, ModelDefaults, ObjectKey, SourceKind,
};
use bigip_operator::simulator::{self, RunningSimulator, SimulatorConfig};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// `cases` cases unless `PROPTEST_CASES` says otherwise; no regression files: failures print
/// their minimal input instead.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// =============================================================================================
// Generators shared by every part

/// Property names of an AS3 declaration (`ADC`) that could be partition names, read from the
/// AS3 schema: a tenant of that name would replace the property.
fn adc_properties() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let path =
            format!("{}/crates/as3-rules/schemas/as3/as3-schema-{AS3_SCHEMA_VERSION}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("the AS3 schema is in crates/as3-rules/schemas/as3");
        let schema: Value = serde_json::from_str(&text).expect("the AS3 schema is JSON");
        let properties = schema["definitions"]["ADC"]["properties"].as_object().expect("ADC has properties");
        let names: Vec<String> = properties.keys().filter(|name| is_as3_name(name)).cloned().collect();
        assert!(names.iter().any(|n| n == "class") && names.iter().any(|n| n == "id"), "{names:?}");
        names
    })
}

fn adc_property() -> BoxedStrategy<String> {
    prop::sample::select(adc_properties().to_vec()).boxed()
}

/// Strings that trip parsers: empty, reserved words, control characters, non-ASCII, long.
fn nasty_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", " ", "Common", "Shared", "class", "id", "label", "remark", "updateMode", "constants",
            "-", "_", ".", "a-", "a_b", "A", "1a", "é", "ß", "İ", "🦀", "\u{0}", "\n", "\t", "\u{7f}",
            "\u{202e}abc", "\"", "\\", "/", "%", "~", "a/b", "..", "0", "-1", "null", "true", "{}",
            "\u{feff}", "a\u{0}b", "\u{10ffff}",
        ])
        .prop_map(str::to_owned),
        2 => "[a-zA-Z0-9_.-]{1,12}",
        2 => "\\PC{0,12}",
        1 => any::<String>(),
        1 => "[a-z]{1,3}".prop_map(|s| s.repeat(70)),
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-70_000i64..70_000).prop_map(Value::from),
        nasty_string().prop_map(Value::String),
    ]
    .boxed()
}

/// Keys of the documents under test, so random objects hit real fields now and then.
const KNOWN_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "spec",
    "virtualAddress",
    "port",
    "partition",
    "pools",
    "service",
    "servicePort",
    "loadBalancingMode",
    "monitors",
    "type",
    "send",
    "receive",
    "interval",
    "timeout",
    "defaultPool",
    "snat",
    "poolMemberType",
    "results",
    "tenant",
    "code",
    "message",
    "errors",
    "response",
    "declaration",
    "class",
    "action",
    "use",
    "bigip",
    "virtualAddresses",
    "virtualPort",
    "pool",
    "members",
    "serverAddresses",
    "label",
];

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![3 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_owned), 1 => nasty_string()].boxed()
}

/// Any JSON value, nested a few levels.
fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(json_key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A field that is usually well-typed (weight `valid`), sometimes missing (`missing`) and
/// sometimes a random JSON value of any type (1).
fn field(valid_weight: u32, missing_weight: u32, valid: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        valid_weight => valid.prop_map(Some),
        missing_weight => Just(None),
        1 => json_leaf().prop_map(Some),
    ]
    .boxed()
}

/// An object of the fields present.
fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    Value::Object(fields.into_iter().filter_map(|(key, value)| Some((key.to_owned(), value?))).collect())
}

fn string_value(strategy: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    strategy.prop_map(Value::String).boxed()
}

fn one_of(items: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(items).prop_map(str::to_owned).boxed()
}

fn ip_text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
        one_of(&["0.0.0.0", "::", "::1", "::ffff:10.0.0.1", "255.255.255.255", "10.1.10.80", "2001:db8::80"]),
    ]
    .boxed()
}

/// Virtual addresses, about half of them not IP addresses.
fn virtual_address() -> BoxedStrategy<String> {
    prop_oneof![
        3 => ip_text(),
        1 => one_of(&[
            "10.0.0.256", "10.0.0", "1.2.3.4.5", "fe80::1%eth0", "10.0.0.1%2", "10.0.0.1/32", " 10.0.0.1",
            "10.0.0.1 ", "localhost", "", "０.０.０.０", "::ffff:999.0.0.1", "1::2::3", "0x7f.1",
        ]),
        1 => nasty_string(),
    ]
    .boxed()
}

// =============================================================================================
// Part 1: CRD → model → AS3

const LB_MODES: &[&str] = &[
    "dynamic-ratio-member",
    "least-connections-member",
    "ratio-session",
    "round-robin",
    "weighted-least-connections-node",
    "fastest-node",
];

/// Pool names: valid ones from a small set (so duplicates and `defaultPool` hits happen), and
/// invalid ones.
fn pool_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => one_of(&["web", "api", "a", "b-1"]),
        2 => "[a-z][-a-z0-9]{0,8}",
        1 => one_of(&["", "Web", "a_b", "1a", "-a", "a-", "é", "pool.x"]),
        1 => Just("a".repeat(63)),
        1 => Just("a".repeat(64)),
        1 => nasty_string(),
    ]
    .boxed()
}

fn fuzzy_monitor() -> BoxedStrategy<Value> {
    let seconds = || -> BoxedStrategy<Value> {
        prop_oneof![
            3 => (1i64..30).prop_map(Value::from),
            2 => (-5i64..100_000).prop_map(Value::from),
            1 => one_of(&["5", "5s"]).prop_map(Value::String),
            1 => (i64::from(i32::MAX) - 2..i64::from(i32::MAX) + 3).prop_map(Value::from),
        ]
        .boxed()
    };
    (
        field(
            8,
            1,
            string_value(prop_oneof![4 => one_of(&["http", "https", "tcp", "udp", "icmp"]), 1 => nasty_string()]),
        ),
        field(2, 3, string_value(nasty_string())),
        field(2, 3, string_value(nasty_string())),
        field(4, 2, seconds()),
        field(4, 2, seconds()),
    )
        .prop_map(|(kind, send, receive, interval, timeout)| {
            object([("type", kind), ("send", send), ("receive", receive), ("interval", interval), ("timeout", timeout)])
        })
        .boxed()
}

fn fuzzy_pool() -> BoxedStrategy<Value> {
    (
        field(8, 1, string_value(pool_name())),
        field(8, 1, string_value(prop_oneof![4 => one_of(&["web", "api", "missing"]), 1 => nasty_string()])),
        field(
            8,
            1,
            prop_oneof![
                3 => (-5i64..70_000).prop_map(Value::from),
                2 => one_of(&["http", "metrics", "", "80"]).prop_map(Value::String),
                1 => nasty_string().prop_map(Value::String),
            ]
            .boxed(),
        ),
        field(3, 3, string_value(prop_oneof![4 => one_of(LB_MODES), 1 => nasty_string()])),
        field(3, 3, prop::collection::vec(fuzzy_monitor(), 0..3).prop_map(Value::Array).boxed()),
        (
            field(2, 3, string_value(prop_oneof![4 => one_of(&["all", "any"]), 1 => nasty_string()])),
            field(2, 3, (-3i64..70_000).prop_map(Value::from).boxed()),
            field(2, 3, (-3i64..70_000).prop_map(Value::from).boxed()),
            field(2, 3, (-3i64..1_000).prop_map(Value::from).boxed()),
        ),
    )
        .prop_map(|(name, service, service_port, mode, monitors, (monitor_match, min_active, limit, ramp))| {
            object([
                ("name", name),
                ("service", service),
                ("servicePort", service_port),
                ("loadBalancingMode", mode),
                ("monitors", monitors),
                ("monitorMatch", monitor_match),
                ("minimumMembersActive", min_active),
                ("connectionLimit", limit),
                ("slowRampTime", ramp),
            ])
        })
        .boxed()
}

fn partition() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[A-Za-z][0-9A-Za-z_.-]{0,10}",
        1 => Just("Common".to_owned()),
        1 => adc_property(),
        1 => "[A-Za-z][0-9A-Za-z_.-]{60,70}",
        1 => nasty_string(),
    ]
    .boxed()
}

fn fuzzy_spec() -> BoxedStrategy<Value> {
    (
        field(8, 1, string_value(virtual_address())),
        field(
            8,
            1,
            prop_oneof![
                4 => (0i64..70_000).prop_map(Value::from),
                1 => (-100i64..0).prop_map(Value::from),
                1 => any::<i64>().prop_map(Value::from),
            ]
            .boxed(),
        ),
        field(3, 3, string_value(partition())),
        field(8, 1, prop::collection::vec(fuzzy_pool(), 0..4).prop_map(Value::Array).boxed()),
        field(2, 3, string_value(pool_name())),
        field(2, 3, string_value(prop_oneof![4 => one_of(&["automap", "none"]), 1 => nasty_string()])),
        field(2, 3, string_value(prop_oneof![4 => one_of(&["nodeport", "cluster"]), 1 => nasty_string()])),
        fuzzy_features(),
    )
        .prop_map(|(address, port, partition, pools, default_pool, snat, member_type, features)| {
            let mut spec = object([
                ("virtualAddress", address),
                ("port", port),
                ("partition", partition),
                ("pools", pools),
                ("defaultPool", default_pool),
                ("snat", snat),
                ("poolMemberType", member_type),
            ]);
            if let (Some(spec), Value::Object(features)) = (spec.as_object_mut(), features) {
                spec.extend(features);
            }
            spec
        })
        .boxed()
}

fn bigip_path() -> BoxedStrategy<String> {
    prop_oneof![4 => "/Common/[a-z][a-z0-9_.-]{0,12}", 1 => "/[A-Za-z]{1,5}/[a-z]{1,4}/[a-z]{1,4}", 1 => nasty_string()]
        .boxed()
}

fn fuzzy_rule() -> BoxedStrategy<Value> {
    (
        field(
            3,
            2,
            string_value(
                prop_oneof![3 => "[a-z]{1,6}(\\.[a-z]{1,6}){0,2}", 1 => "\\*\\.[a-z]{1,6}\\.com", 1 => nasty_string()],
            ),
        ),
        field(
            3,
            2,
            string_value(prop_oneof![3 => "(/[a-z0-9_.~-]{0,6}){1,3}", 1 => Just("/".to_owned()), 1 => nasty_string()]),
        ),
        field(2, 3, string_value(prop_oneof![4 => one_of(&["Prefix", "Exact"]), 1 => nasty_string()])),
        field(8, 1, string_value(prop_oneof![4 => pool_name(), 1 => nasty_string()])),
    )
        .prop_map(|(host, path, path_type, pool)| {
            object([("host", host), ("path", path), ("pathType", path_type), ("pool", pool)])
        })
        .boxed()
}

fn fuzzy_irule() -> BoxedStrategy<Value> {
    (
        field(2, 3, string_value(bigip_path())),
        field(2, 2, string_value(prop_oneof![4 => pool_name(), 1 => nasty_string()])),
        field(
            2,
            2,
            string_value(
                prop_oneof![3 => Just("when HTTP_REQUEST { log local0. hi }".to_owned()), 1 => nasty_string()],
            ),
        ),
    )
        .prop_map(|(bigip, name, text)| object([("bigip", bigip), ("name", name), ("text", text)]))
        .boxed()
}

/// The L7 feature fields, random; TLS only with BIG-IP profiles (no Secrets in the generated
/// cluster), so a generated object is never blocked.
fn fuzzy_features() -> BoxedStrategy<Value> {
    let tls = (
        field(
            4,
            2,
            string_value(prop_oneof![4 => one_of(&["terminate", "reencrypt", "passthrough"]), 1 => nasty_string()]),
        ),
        field(4, 2, string_value(bigip_path())),
        field(2, 3, string_value(bigip_path())),
        field(2, 3, any::<bool>().prop_map(Value::Bool).boxed()),
    )
        .prop_map(|(mode, client, server, redirect)| {
            object([
                ("mode", mode),
                ("clientSslProfile", client),
                ("serverSslProfile", server),
                ("httpRedirect", redirect),
            ])
        })
        .boxed();
    (
        field(2, 3, prop::collection::vec(fuzzy_rule(), 0..4).prop_map(Value::Array).boxed()),
        field(1, 3, tls),
        field(2, 3, string_value(prop_oneof![4 => one_of(&["none", "cookie", "source-address", "destination-address"]), 1 => nasty_string()])),
        field(1, 3, string_value(bigip_path())),
        field(2, 3, prop::collection::vec(fuzzy_irule(), 0..3).prop_map(Value::Array).boxed()),
        field(
            2,
            3,
            prop::collection::vec(
                string_value(prop_oneof![3 => "(10|192)\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}/[0-9]{1,2}", 1 => "2001:db8::/[0-9]{2,3}", 1 => nasty_string()]),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        field(1, 3, string_value(bigip_path())),
        field(2, 3, any::<bool>().prop_map(Value::Bool).boxed()),
        field(
            1,
            3,
            (any::<bool>(), one_of(&["enable", "disable", "selective"]), one_of(&["disable", "always", "any"]))
                .prop_map(|(arp, icmp, route)| json!({"arp": arp, "icmpEcho": icmp, "routeAdvertisement": route}))
                .boxed(),
        ),
    )
        .prop_map(|(rules, tls, persistence, snat_pool, irules, ranges, waf, xff, address_options)| {
            object([
                ("rules", rules),
                ("tls", tls),
                ("persistence", persistence),
                ("snatPool", snat_pool),
                ("iRules", irules),
                ("allowSourceRanges", ranges),
                ("wafPolicy", waf),
                ("xForwardedFor", xff),
                ("virtualAddressOptions", address_options),
            ])
        })
        .boxed()
}

/// A VirtualServer manifest with random, missing and wrongly typed fields.
fn fuzzy_virtual_server() -> BoxedStrategy<Value> {
    let metadata = (
        field(8, 1, string_value(prop_oneof![4 => one_of(&["web", "shop-front", "a", "b.c"]), 1 => nasty_string()])),
        field(4, 2, string_value(prop_oneof![4 => one_of(&["shop", "default"]), 1 => nasty_string()])),
        field(
            2,
            3,
            string_value(one_of(&[
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:01Z",
                "2025-12-31T23:59:59Z",
                "yesterday",
            ])),
        ),
    )
        .prop_map(|(name, namespace, created)| {
            object([("name", name), ("namespace", namespace), ("creationTimestamp", created)])
        });
    (field(12, 1, string_value(Just("bigip.operator.dev/v1alpha1".to_owned()))), metadata, field(10, 1, fuzzy_spec()))
        .prop_map(|(api_version, metadata, spec)| {
            object([
                ("apiVersion", api_version),
                ("kind", Some(json!("VirtualServer"))),
                ("metadata", Some(metadata)),
                ("spec", spec),
            ])
        })
        .boxed()
}

/// Services `web` and `api` (in `shop` and `default`), their EndpointSlices and some Nodes,
/// with random ports, node ports, addresses and readiness.
fn fuzzy_cluster() -> BoxedStrategy<Value> {
    let service_port = (
        prop::option::of(one_of(&["http", "metrics"])),
        prop_oneof![3 => prop::sample::select(vec![80i32, 443, 8080]), 1 => -5i32..70_000],
        prop::option::weighted(0.8, prop_oneof![1 => 0i32..70_000, 3 => Just(30080)]),
    )
        .prop_map(|(name, port, node_port)| {
            object([
                ("name", name.map(Value::String)),
                ("port", Some(json!(port))),
                ("nodePort", node_port.map(Value::from)),
                ("targetPort", Some(json!(8080))),
            ])
        });
    let addresses = prop::collection::vec(prop_oneof![3 => ip_text(), 1 => nasty_string()], 0..3);
    let condition = || prop::option::of(any::<bool>()).prop_map(|c| c.map(Value::Bool));
    let endpoint = (addresses, condition(), condition(), condition(), prop::option::of(one_of(&["a", "b", "zz"])))
        .prop_map(|(addresses, ready, serving, terminating, node)| {
            let conditions = object([("ready", ready), ("serving", serving), ("terminating", terminating)]);
            object([
                ("addresses", Some(json!(addresses))),
                ("conditions", Some(conditions)),
                ("nodeName", node.map(Value::String)),
            ])
        });
    let slice = (
        one_of(&["IPv4", "IPv6", "FQDN"]),
        prop::collection::vec(
            (
                prop::option::of(one_of(&["http", "metrics"])),
                prop::option::of(prop_oneof![3 => Just(8080i32), 1 => -5i32..70_000]),
            )
                .prop_map(|(name, port)| object([("name", name.map(Value::String)), ("port", port.map(Value::from))])),
            0..3,
        ),
        prop::collection::vec(endpoint, 0..4),
    );
    let service = (
        one_of(&["web", "api"]),
        prop_oneof![3 => Just("shop".to_owned()), 1 => Just("default".to_owned())],
        one_of(&["NodePort", "ClusterIP", "LoadBalancer"]),
        prop::collection::vec(service_port, 0..3),
        prop::collection::vec(slice, 0..2),
        prop::option::of(one_of(&["Local", "Cluster"])),
    )
        .prop_map(|(name, namespace, kind, ports, slices, traffic_policy)| {
            let slices: Vec<Value> = slices
                .into_iter()
                .enumerate()
                .map(|(index, (address_type, ports, endpoints))| {
                    json!({
                        "kind": "EndpointSlice",
                        "metadata": {"name": format!("{name}-{index}"), "namespace": namespace,
                            "labels": {"kubernetes.io/service-name": name}},
                        "addressType": address_type, "ports": ports, "endpoints": endpoints,
                    })
                })
                .collect();
            json!({
                "service": {"kind": "Service", "metadata": {"name": name, "namespace": namespace},
                    "spec": object([("type", Some(json!(kind))), ("ports", Some(json!(ports))),
                    ("externalTrafficPolicy", traffic_policy.map(Value::String))])},
                "slices": slices,
            })
        });
    let node_addresses = prop::collection::vec(prop_oneof![3 => ip_text(), 1 => nasty_string()], 0..3);
    let node = ("[a-z]{1,4}", node_addresses, any::<bool>(), prop::option::of(any::<bool>()), any::<bool>()).prop_map(
        |(name, addresses, ready, unschedulable, excluded)| {
            let addresses: Vec<Value> = addresses.iter().map(|a| json!({"type": "InternalIP", "address": a})).collect();
            let labels = if excluded {
                json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""})
            } else {
                json!({})
            };
            json!({"kind": "Node", "metadata": {"name": name, "labels": labels},
                "spec": object([("unschedulable", unschedulable.map(Value::Bool))]),
                "status": {
                "addresses": addresses,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
        },
    );
    (prop::collection::vec(service, 0..5), prop::collection::vec(node, 0..4))
        .prop_map(|(services, nodes)| json!({"services": services, "nodes": nodes}))
        .boxed()
}

/// The typed cluster objects of a [`fuzzy_cluster`] document.
fn cluster_objects(document: &Value) -> Result<ClusterObjects, TestCaseError> {
    let typed_error =
        |e: serde_json::Error| TestCaseError::fail(format!("generated cluster object does not parse: {e}"));
    let mut cluster = ClusterObjects::default();
    for entry in document["services"].as_array().into_iter().flatten() {
        cluster.add_service(serde_json::from_value::<Service>(entry["service"].clone()).map_err(typed_error)?);
        for slice in entry["slices"].as_array().into_iter().flatten() {
            let slice = serde_json::from_value::<EndpointSlice>(slice.clone()).map_err(typed_error)?;
            cluster.add_endpoint_slice(slice);
        }
    }
    for node in document["nodes"].as_array().into_iter().flatten() {
        cluster.add_node(serde_json::from_value::<Node>(node.clone()).map_err(typed_error)?);
    }
    Ok(cluster)
}

fn defaults(member_type: PoolMemberType) -> ModelDefaults {
    ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: member_type,
        node_selector: None,
        default_route_domain: 0,
    }
}

fn owner() -> Ownership {
    Ownership::new("fuzz-cluster").expect("a valid cluster id")
}

/// Deserialises a manifest as the offline renderer does; a refusal must name the field.
fn deserialize_virtual_server(value: Value) -> Result<Option<VirtualServer>, TestCaseError> {
    match serde_path_to_error::deserialize::<_, VirtualServer>(value) {
        Ok(vs) => Ok(Some(vs)),
        Err(error) => {
            let path = error.path().to_string();
            let message = error.inner().to_string();
            prop_assert!(!message.is_empty(), "empty deserialisation error at {path}");
            prop_assert!(
                path != "." || message.contains("field") || message.contains("expected"),
                "deserialisation error names no field: {message}"
            );
            Ok(None)
        }
    }
}

/// AS3's rule for tenant, application and object names.
fn is_as3_name(name: &str) -> bool {
    name.len() <= 190
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The spec field an [`InvalidSpec`] message must name.
fn named_field(invalid: &InvalidSpec) -> String {
    match invalid {
        InvalidSpec::VirtualAddress { .. } => "spec.virtualAddress".into(),
        InvalidSpec::Port { .. } => "spec.port".into(),
        InvalidSpec::Partition { .. } => "spec.partition".into(),
        InvalidSpec::NoPools => "spec.pools".into(),
        InvalidSpec::PoolName { index, .. } => format!("spec.pools[{index}].name"),
        InvalidSpec::DefaultPool { .. } => "spec.defaultPool".into(),
        InvalidSpec::Monitor { pool, index, .. } => format!("spec.pools[{pool}].monitors[{index}]"),
        InvalidSpec::ApplicationName { .. } => "(<namespace>_<name>)".into(),
        InvalidSpec::Rule { index, .. } => format!("spec.rules[{index}]"),
        InvalidSpec::Tls { .. } => "spec.tls".into(),
        InvalidSpec::IRule { index, .. } => format!("spec.iRules[{index}]"),
        InvalidSpec::SourceRange { index, .. } => format!("spec.allowSourceRanges[{index}]"),
        InvalidSpec::Field { field, .. } => format!("spec.{field}"),
        InvalidSpec::AddressNotAllocated { .. } => "spec.addressPool".into(),
        InvalidSpec::ListenerGroup { .. } => "spec.listenerGroup".into(),
    }
}

/// What must hold of an application the model accepted, checked against its VirtualServer.
fn check_included(app: &DesiredApplication, vs: &VirtualServer, defaults: &ModelDefaults) -> Result<(), TestCaseError> {
    let spec = &vs.spec;
    prop_assert_eq!(Some(app.virtual_address), spec.virtual_address.parse::<IpAddr>().ok());
    prop_assert_eq!(i32::from(app.port), spec.port);
    prop_assert!(app.port != 0);
    prop_assert_eq!(&app.partition, spec.partition.as_ref().unwrap_or(&defaults.partition));
    prop_assert!(is_as3_name(&app.partition) && app.partition.len() <= 64, "partition {:?}", app.partition);
    prop_assert!(app.partition != "Common");
    prop_assert!(!adc_properties().contains(&app.partition), "partition {:?} is an ADC property", app.partition);
    prop_assert!(is_as3_name(&app.name), "application name {:?}", app.name);
    prop_assert_eq!(app.pools.len(), spec.pools.len());
    prop_assert!(!app.pools.is_empty());
    let names: BTreeSet<&str> = app.pools.iter().map(|p| p.name.as_str()).collect();
    prop_assert_eq!(names.len(), app.pools.len(), "pool names must be unique");
    prop_assert!(names.contains(app.default_pool.as_str()));
    if let Some(wanted) = &spec.default_pool {
        prop_assert_eq!(&app.default_pool, wanted);
    }
    for pool in &app.pools {
        prop_assert!(is_as3_name(&format!("pool_{}", pool.name)), "pool name {:?}", pool.name);
        prop_assert!(
            pool.members.windows(2).all(|w| (w[0].address, w[0].port) < (w[1].address, w[1].port)),
            "members sorted and unique per address and port: {:?}",
            pool.members
        );
        let family = |a: &IpAddr| a.is_ipv4();
        prop_assert!(pool.members.windows(2).all(|w| family(&w[0].address) == family(&w[1].address)), "one family");
        for monitor in &pool.monitors {
            // AS3 3.56: interval 0-3600, timeout 0-900.
            prop_assert!((1..=3600).contains(&monitor.interval), "monitor interval {}", monitor.interval);
            prop_assert!((2..=900).contains(&monitor.timeout), "monitor timeout {}", monitor.timeout);
            prop_assert!(monitor.timeout > monitor.interval);
        }
    }
    Ok(())
}

/// Pieces of namespaces and names that could run together in `<namespace>_<name>`.
fn name_piece() -> BoxedStrategy<String> {
    one_of(&["a", "b", "a_b", "b_a", "_", "", "a-b", "a.b", "a_", "_b"])
}

/// One object per namespace/name, as in a cluster: a later manifest of the same object
/// replaces the earlier one, as `kubectl apply` would.
fn distinct_objects(virtual_servers: Vec<VirtualServer>) -> Vec<VirtualServer> {
    let mut by_key: BTreeMap<ObjectKey, VirtualServer> = BTreeMap::new();
    for vs in virtual_servers {
        by_key.insert(ObjectKey::of(&vs.metadata), vs);
    }
    by_key.into_values().collect()
}

/// Runs the model on `virtual_servers` and checks every outcome; then renders what it accepted
/// and requires the declaration to validate against the AS3 schema.
fn check_model(
    virtual_servers: &[VirtualServer],
    cluster: &ClusterObjects,
    defaults: &ModelDefaults,
    validate_schema: bool,
) -> Result<(), TestCaseError> {
    let fleet = build_fleet(virtual_servers.iter(), std::iter::empty(), cluster, defaults);
    let by_key: BTreeMap<ObjectKey, &VirtualServer> =
        virtual_servers.iter().map(|vs| (ObjectKey::of(&vs.metadata), vs)).collect();
    prop_assert_eq!(fleet.outcomes.len(), by_key.len(), "one outcome per object");

    let mut included = 0;
    for (id, outcome) in &fleet.outcomes {
        prop_assert_eq!(id.kind, SourceKind::VirtualServer);
        let key = &id.key;
        let vs = by_key.get(key).ok_or_else(|| TestCaseError::fail(format!("outcome for unknown object {key}")))?;
        match outcome {
            AppOutcome::Invalid(invalid) => {
                let message = invalid.to_string();
                let field = named_field(invalid);
                prop_assert!(message.contains(&field), "{key}: {message:?} does not name {field}");
                if let InvalidSpec::Port { value } = invalid {
                    prop_assert!(!(1..=65535).contains(value));
                }
                if let InvalidSpec::VirtualAddress { value } = invalid {
                    prop_assert!(value.parse::<IpAddr>().is_err());
                }
            }
            AppOutcome::AddressConflict { listener, holder } => {
                prop_assert!(holder != id);
                let held = matches!(fleet.outcomes.get(holder), Some(AppOutcome::Included { .. }));
                prop_assert!(held, "{key}: conflict with {holder}, which is not included");
                prop_assert_eq!(Some(listener.address), vs.spec.virtual_address.parse::<IpAddr>().ok());
                if listener.shared_within_partition() {
                    // The address itself: BIG-IP keeps it in the holder's partition, not this one's.
                    let partition = vs.spec.partition.clone().unwrap_or_else(|| defaults.partition.clone());
                    let holder_partition = match fleet.outcomes.get(holder) {
                        Some(AppOutcome::Included { partition, .. }) => Some(partition.clone()),
                        _ => None,
                    };
                    prop_assert!(
                        holder_partition.is_some_and(|p| p != partition),
                        "{key}: address held in its own partition"
                    );
                } else {
                    prop_assert_eq!(i32::from(listener.port), vs.spec.port);
                }
            }
            AppOutcome::Blocked { .. } => {
                prop_assert!(false, "{key}: blocked, but the generated objects read no Secret");
            }
            AppOutcome::RouteConflict { .. } => {
                prop_assert!(false, "{key}: a route conflict, but the generated objects join no listener group");
            }
            AppOutcome::Included { partition, application, members, unresolved } => {
                included += 1;
                let app = fleet
                    .partitions
                    .get(partition)
                    .and_then(|apps| apps.iter().find(|a| &a.name == application && &a.source == key))
                    .ok_or_else(|| TestCaseError::fail(format!("{key}: included but not in partition {partition}")))?;
                prop_assert_eq!(app.member_count(), *members);
                check_included(app, vs, defaults)?;
                for unresolved in unresolved {
                    let message = unresolved.to_string();
                    prop_assert!(message.contains("Service"), "{key}: unresolved reference message {message:?}");
                    prop_assert!(!unresolved.reason().is_empty());
                }
            }
        }
    }
    prop_assert_eq!(fleet.partitions.values().map(Vec::len).sum::<usize>(), included);
    for (partition, apps) in &fleet.partitions {
        let names: BTreeSet<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        prop_assert_eq!(names.len(), apps.len(), "two objects share an application name in {}", partition);
    }

    if !validate_schema || fleet.partitions.is_empty() {
        return Ok(());
    }
    // Whatever the model accepted must be a declaration AS3 accepts, every application in it.
    let tenants: BTreeMap<String, Value> =
        fleet.partitions.iter().map(|(name, apps)| (name.clone(), render_tenant(apps, &owner()))).collect();
    let declaration = render_request(&tenants);
    for (partition, apps) in &fleet.partitions {
        for app in apps {
            let rendered = declaration["declaration"][partition][&app.name]["class"].as_str();
            prop_assert_eq!(rendered, Some("Application"), "{} lost from tenant {}", app.source, partition);
        }
    }
    let violations = validate_declaration(&declaration).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(violations.is_empty(), "the model accepted what AS3 rejects: {violations:#?}\n{declaration:#}");
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Any JSON at all, as a whole object or as its spec, deserialises or is refused with a
    /// named field, and the model never panics on what deserialises.
    #[test]
    fn arbitrary_json_never_panics_the_crd_or_the_model(value in json_value(), as_spec in any::<bool>()) {
        let value = if as_spec {
            json!({"apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                "metadata": {"name": "web", "namespace": "shop"}, "spec": value})
        } else {
            value
        };
        if let Some(vs) = deserialize_virtual_server(value)? {
            check_model(&[vs], &ClusterObjects::default(), &defaults(PoolMemberType::Nodeport), false)?;
        }
    }

    /// VirtualServer manifests with random, missing and wrongly typed fields, against random
    /// Services, EndpointSlices and Nodes: every object is included, refused with a message
    /// naming its field, or loses its address to an older object.
    #[test]
    fn fuzzy_virtual_servers_are_accepted_or_refused_with_the_field_named(
        manifests in virtual_server_manifests(),
        cluster in fuzzy_cluster(),
        cluster_mode in any::<bool>(),
    ) {
        let cluster = cluster_objects(&cluster)?;
        let mut virtual_servers = Vec::new();
        for manifest in manifests {
            virtual_servers.extend(deserialize_virtual_server(manifest)?);
        }
        let mode = if cluster_mode { PoolMemberType::Cluster } else { PoolMemberType::Nodeport };
        check_model(&distinct_objects(virtual_servers), &cluster, &defaults(mode), false)?;
    }

    /// Distinct objects never share an AS3 application, whatever their namespaces and names:
    /// `<namespace>_<name>` must stay unique.
    #[test]
    fn distinct_objects_get_distinct_applications(
        keys in prop::collection::btree_set((name_piece(), name_piece()), 1..6),
    ) {
        let virtual_servers: Vec<VirtualServer> = keys
            .into_iter()
            .enumerate()
            .map(|(index, (namespace, name))| {
                serde_json::from_value(json!({"apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"virtualAddress": format!("10.0.0.{index}"), "port": 80,
                        "pools": [{"name": "web", "service": "web", "servicePort": 80}]}}))
                .expect("a valid manifest")
            })
            .collect();
        check_model(&virtual_servers, &ClusterObjects::default(), &defaults(PoolMemberType::Nodeport), false)?;
    }
}

proptest! {
    // Schema validation is the slow part; fewer cases.
    #![proptest_config(config(128))]

    /// The same fuzzy manifests, with whatever the model accepted rendered and validated
    /// against the AS3 schema: the model never accepts what AS3 would reject.
    #[test]
    fn accepted_virtual_servers_render_schema_valid_declarations(
        manifests in virtual_server_manifests(),
        cluster in fuzzy_cluster(),
    ) {
        let cluster = cluster_objects(&cluster)?;
        let mut virtual_servers = Vec::new();
        for manifest in manifests {
            virtual_servers.extend(deserialize_virtual_server(manifest)?);
        }
        check_model(&distinct_objects(virtual_servers), &cluster, &defaults(PoolMemberType::Nodeport), true)?;
    }

    /// VirtualServers valid by construction are all accepted (bar address conflicts), survive
    /// a serde round trip, and render through the offline `render` path without error.
    #[test]
    fn valid_virtual_servers_render_through_the_offline_path(
        specs in prop::collection::vec(valid_spec(Limits::As3), 1..4),
        cluster in fuzzy_cluster(),
        cluster_id in prop_oneof!["[A-Za-z0-9._-]{1,48}", nasty_string()],
    ) {
        let cluster = cluster_objects(&cluster)?;
        let mut virtual_servers = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let manifest = json!({"apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                "metadata": {"name": format!("vs-{index}"), "namespace": "shop",
                    "creationTimestamp": format!("2026-01-01T00:00:{index:02}Z")},
                "spec": spec});
            let vs: VirtualServer = serde_json::from_value(manifest.clone())
                .map_err(|e| TestCaseError::fail(format!("a valid manifest is refused: {e}\n{manifest:#}")))?;
            let serialised = serde_json::to_value(&vs).expect("a VirtualServer serialises");
            let round_trip: VirtualServer = serde_json::from_value(serialised.clone())
                .map_err(|e| TestCaseError::fail(format!("serialised VirtualServer does not parse back: {e}")))?;
            prop_assert_eq!(&round_trip.spec, &vs.spec);
            prop_assert_eq!(serde_json::to_value(&round_trip).expect("serialises"), serialised);
            virtual_servers.push(vs);
        }
        let model_defaults = defaults(PoolMemberType::Cluster);
        let fleet = build_fleet(virtual_servers.iter(), std::iter::empty(), &cluster, &model_defaults);
        let mut conflict = false;
        for (key, outcome) in &fleet.outcomes {
            match outcome {
                AppOutcome::Invalid(invalid) => prop_assert!(false, "{key}: valid spec refused: {invalid}"),
                AppOutcome::AddressConflict { .. } => conflict = true,
                AppOutcome::Included { .. } => {}
                AppOutcome::Blocked { .. } => prop_assert!(false, "{key}: blocked without reading a Secret"),
                AppOutcome::RouteConflict { .. } => prop_assert!(false, "{key}: route conflict without a listener group"),
            }
        }
        // Any cluster id the operator accepts must make a label AS3 accepts.
        let ownership = match Ownership::new(cluster_id) {
            Ok(ownership) => ownership,
            Err(invalid) => {
                prop_assert!(invalid.to_string().contains("cluster id"), "{}", invalid);
                owner()
            }
        };
        prop_assert_eq!(ownership.owner_of(&json!({"class": "Tenant", "label": ownership.label()})), TenantOwner::Us);
        let manifests = Manifests { virtual_servers, cluster, ..Manifests::default() };
        match render_manifests(&manifests, &model_defaults, &ownership) {
            Ok(rendered) => {
                prop_assert!(!conflict, "a conflict must refuse the render");
                for warning in &rendered.warnings {
                    prop_assert!(warning.contains("VirtualServer shop/vs-"), "warning names no object: {warning}");
                }
            }
            Err(RenderError::Rejected { key, message }) => {
                prop_assert!(conflict, "{key} refused: {message}");
                prop_assert!(message.contains("already used by VirtualServer shop/vs-"), "{message}");
            }
            Err(other) => prop_assert!(false, "render failed: {other}"),
        }
    }
}

/// Which rules a generated spec keeps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limits {
    /// What the CRD admits: monitor interval and timeout up to 86400, any partition matching
    /// the CRD pattern but `Common`.
    Crd,
    /// What AS3 also accepts: interval at most 3600, timeout at most 900, and no partition
    /// named like an ADC property.
    As3,
}

/// A spec valid under `limits`.
fn valid_spec(limits: Limits) -> BoxedStrategy<Value> {
    let max_timeout: i64 = if limits == Limits::As3 { 900 } else { 86_400 };
    let interval = prop_oneof![6 => 1i64..30, 1 => 1..max_timeout - 1];
    let monitor =
        (one_of(&["http", "https", "tcp", "udp", "icmp"]), interval, 1i64..10, prop::option::of("\\PC{0,20}"))
            .prop_map(move |(kind, interval, extra, send)| {
                object([
                    ("interval", Some(json!(interval))),
                    ("timeout", Some(json!((interval + extra).min(max_timeout)))),
                    ("send", send.filter(|_| kind != "icmp").map(Value::String)),
                    ("type", Some(json!(kind))),
                ])
            });
    let pool = (
        one_of(&["web", "api"]),
        prop_oneof![
            2 => prop::sample::select(vec![80i64, 443, 8080]).prop_map(Value::from),
            1 => (1i64..65536).prop_map(Value::from),
            2 => one_of(&["http", "metrics"]).prop_map(Value::String),
        ],
        one_of(LB_MODES),
        prop::collection::vec(monitor, 0..3),
    );
    let partition = prop_oneof![
        4 => "[A-Za-z][0-9A-Za-z_.-]{0,20}".prop_filter("Common is reserved", |p| p != "Common"),
        1 => adc_property(),
    ]
    .prop_filter("AS3 property names", move |p| limits == Limits::Crd || !adc_properties().contains(p));
    (
        ip_text(),
        1i64..65536,
        prop::option::of(partition),
        prop::collection::btree_map("[a-z]([-a-z0-9]{0,10}[a-z0-9])?", pool, 1..4),
        any::<prop::sample::Index>(),
        prop::option::of(one_of(&["automap", "none"])),
        valid_features(),
    )
        .prop_map(|(address, port, partition, pools, default_index, snat, features)| {
            let default_pool = pools.keys().nth(default_index.index(pools.len())).cloned();
            let pool_names: Vec<String> = pools.keys().cloned().collect();
            let pools: Vec<Value> = pools
                .into_iter()
                .map(|(name, (service, service_port, mode, monitors))| {
                    json!({"name": name, "service": service, "servicePort": service_port,
                        "loadBalancingMode": mode, "monitors": monitors})
                })
                .collect();
            let mut spec = object([
                ("virtualAddress", Some(json!(address))),
                ("port", Some(json!(port))),
                ("partition", partition.map(Value::String)),
                ("pools", Some(Value::Array(pools))),
                ("defaultPool", default_pool.map(Value::String)),
                ("snat", snat.clone().map(Value::String)),
            ]);
            features.apply(&mut spec, &pool_names, snat.as_deref() == Some("none"));
            spec
        })
        .boxed()
}

/// Valid values of the L7 feature fields (TLS only through BIG-IP profiles: the generated
/// cluster holds no Secrets).
#[derive(Debug, Clone)]
struct ValidFeatures {
    /// (wildcard host?, has a path?, exact path?, pool index) per rule; hosts and paths are
    /// made unique by the rule's index.
    rules: Vec<(Option<bool>, bool, bool, prop::sample::Index)>,
    tls: Option<&'static str>,
    persistence: Option<&'static str>,
    snat_pool: bool,
    irules: Vec<bool>,
    ranges: Vec<(u8, u8, u8)>,
    waf: bool,
    xff: bool,
    address_options: Option<(bool, &'static str)>,
}

impl ValidFeatures {
    fn apply(self, spec: &mut Value, pools: &[String], snat_none: bool) {
        let passthrough = self.tls == Some("passthrough");
        let rules: Vec<Value> = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, (wildcard, has_path, exact, pool))| {
                let host =
                    wildcard.map(|w| if w { format!("*.h{i}.example.com") } else { format!("h{i}.example.com") });
                let path = (*has_path && !passthrough).then(|| format!("/p{i}/x"));
                if host.is_none() && path.is_none() {
                    return None;
                }
                let mut rule = json!({"pool": pools[pool.index(pools.len())]});
                if let Some(host) = host {
                    rule["host"] = json!(host);
                }
                if let Some(path) = path {
                    rule["path"] = json!(path);
                    rule["pathType"] = json!(if *exact { "Exact" } else { "Prefix" });
                }
                Some(rule)
            })
            .collect();
        let fields = spec.as_object_mut().expect("spec is an object");
        if !rules.is_empty() {
            fields.insert("rules".into(), Value::Array(rules));
        }
        match self.tls {
            Some("terminate") => fields.insert("tls".into(), json!({"clientSslProfile": "/Common/clientssl"})),
            Some("reencrypt") => fields.insert(
                "tls".into(),
                json!({"mode": "reencrypt", "clientSslProfile": "/Common/clientssl", "serverSslProfile": "/Common/serverssl", "httpRedirect": false}),
            ),
            Some(mode) => fields.insert("tls".into(), json!({"mode": mode})),
            None => None,
        };
        if let Some(persistence) = self.persistence.filter(|p| !(passthrough && *p == "cookie")) {
            fields.insert("persistence".into(), json!(persistence));
        }
        if self.snat_pool && !snat_none {
            fields.insert("snatPool".into(), json!("/Common/snatpool"));
        }
        let irules: Vec<Value> = self
            .irules
            .iter()
            .enumerate()
            .map(|(i, inline)| {
                if *inline {
                    json!({"name": format!("rule-{i}"), "text": "when CLIENT_ACCEPTED { log local0. hi }"})
                } else {
                    json!({"bigip": format!("/Common/rule_{i}")})
                }
            })
            .collect();
        if !irules.is_empty() {
            fields.insert("iRules".into(), Value::Array(irules));
        }
        let ranges: Vec<Value> =
            self.ranges.iter().map(|(a, b, prefix)| json!(format!("10.{a}.{b}.0/{}", prefix % 33))).collect();
        if !ranges.is_empty() {
            fields.insert("allowSourceRanges".into(), Value::Array(ranges));
        }
        if self.waf && !passthrough {
            fields.insert("wafPolicy".into(), json!("/Common/linux-high"));
        }
        if self.xff && !passthrough {
            fields.insert("xForwardedFor".into(), json!(true));
        }
        if let Some((arp, icmp)) = self.address_options {
            fields.insert("virtualAddressOptions".into(), json!({"arp": arp, "icmpEcho": icmp}));
        }
    }
}

fn valid_features() -> BoxedStrategy<ValidFeatures> {
    let rule = (prop::option::of(any::<bool>()), any::<bool>(), any::<bool>(), any::<prop::sample::Index>());
    (
        prop::collection::vec(rule, 0..4),
        prop::option::of(prop::sample::select(vec!["terminate", "reencrypt", "passthrough"])),
        prop::option::of(prop::sample::select(vec!["none", "cookie", "source-address"])),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 0..3),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of((any::<bool>(), prop::sample::select(vec!["enable", "disable", "selective"]))),
    )
        .prop_map(|(rules, tls, persistence, snat_pool, irules, ranges, waf, xff, address_options)| ValidFeatures {
            rules,
            tls,
            persistence,
            snat_pool,
            irules,
            ranges,
            waf,
            xff,
            address_options,
        })
        .boxed()
}

/// JSON pointers to every value inside `value`, the root (`""`) included.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    out.push(prefix.to_owned());
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                pointers(child, &format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, &format!("{prefix}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// Replaces (or, for `None`, removes) the value at the `at`-th pointer of `value`.
fn mutate(value: &mut Value, at: prop::sample::Index, replacement: Option<Value>) {
    let mut all = Vec::new();
    pointers(value, "", &mut all);
    let target = all[at.index(all.len())].clone();
    match replacement {
        Some(new) => {
            if let Some(slot) = value.pointer_mut(&target) {
                *slot = new;
            }
        }
        None => {
            let Some((parent, key)) = target.rsplit_once('/') else { return };
            match value.pointer_mut(parent) {
                Some(Value::Object(fields)) => {
                    fields.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Some(index) = key.parse::<usize>().ok().filter(|i| *i < items.len()) {
                        items.remove(index);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Values that sit on or just past the limits of the fields.
fn mutation() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        2 => json_leaf().prop_map(Some),
        1 => Just(None),
        2 => prop::sample::select(vec![
            0i64, -1, 1, 2, 899, 900, 901, 3600, 3601, 65_535, 65_536, 86_400, 86_401,
            i64::from(i32::MAX), i64::from(i32::MAX) + 1,
        ])
        .prop_map(|n| Some(json!(n))),
        2 => prop_oneof![nasty_string(), adc_property(), pool_name(), virtual_address()].prop_map(|s| Some(json!(s))),
    ]
    .boxed()
}

/// A VirtualServer manifest valid for the CRD, with up to two of its values (anywhere,
/// metadata included) replaced by odd ones or removed.
fn near_valid_virtual_server() -> BoxedStrategy<Value> {
    (
        valid_spec(Limits::Crd),
        // Names Kubernetes would refuse (`_`) are possible in the offline `render` path.
        prop_oneof![4 => one_of(&["web", "shop-front", "a", "b.c"]), 1 => one_of(&["web_a", "a_"])],
        prop_oneof![4 => Just("shop".to_owned()), 1 => one_of(&["shop_web", "shop_"])],
        prop::collection::vec((any::<prop::sample::Index>(), mutation()), 0..3),
    )
        .prop_map(|(spec, name, namespace, mutations)| {
            let mut manifest = json!({"apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec});
            for (at, replacement) in mutations {
                mutate(&mut manifest, at, replacement);
            }
            manifest
        })
        .boxed()
}

/// Manifests from both generators.
fn virtual_server_manifests() -> BoxedStrategy<Vec<Value>> {
    prop::collection::vec(prop_oneof![1 => fuzzy_virtual_server(), 2 => near_valid_virtual_server()], 1..4).boxed()
}

// =============================================================================================
// Part 2: AS3 answers from the BIG-IP

/// One tenant's result as AS3 reports it, with the result the client must read from it.
#[derive(Debug, Clone)]
struct GeneratedResult {
    document: Value,
    tenant: String,
    expected: TenantResult,
}

fn as3_result() -> BoxedStrategy<GeneratedResult> {
    (
        "[A-Za-z][0-9A-Za-z_.-]{0,12}|\\PC{1,8}",
        prop_oneof![3 => Just(200u16), 2 => Just(422u16), 1 => any::<u16>()],
        prop_oneof![
            one_of(&["success", "no change", "declaration failed"]),
            // "declaration is invalid" is AS3's parser refusing the whole declaration, even
            // when its result names a tenant (see the response parser's tests).
            nasty_string().prop_filter("in progress means running; invalid means refused", |m| {
                m != "in progress" && m != "declaration is invalid"
            }),
        ],
        prop::collection::vec(prop_oneof![3 => nasty_string().prop_map(Value::String), 1 => json_value()], 0..3),
        prop::option::of(json_value()),
        any::<bool>(),
    )
        .prop_map(|(tenant, code, message, errors, response, with_errors)| {
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut expected_errors: Vec<String> =
                if with_errors { errors.iter().map(text).collect() } else { Vec::new() };
            // A null `response` reads as none at all.
            if code != 200 {
                expected_errors.extend(response.iter().filter(|r| !r.is_null()).map(text));
            }
            let document = object([
                ("tenant", Some(json!(tenant))),
                ("code", Some(json!(code))),
                ("message", Some(json!(message))),
                ("errors", with_errors.then_some(Value::Array(errors))),
                ("response", response),
                ("host", Some(json!("localhost"))),
                ("runTime", Some(json!(1234))),
            ]);
            GeneratedResult { document, tenant, expected: TenantResult { code, message, errors: expected_errors } }
        })
        .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    /// Any JSON body is read as an answer or refused with a message; never a panic.
    #[test]
    fn arbitrary_json_answers_never_panic(body in json_value()) {
        match parse_as3_answer(&body) {
            Ok(As3Answer::Done(report)) => {
                for (tenant, result) in &report.tenants {
                    prop_assert!(!tenant.is_empty());
                    prop_assert_eq!(result.succeeded(), result.code == 200);
                    prop_assert!(result.detail().starts_with(&result.message));
                }
            }
            Ok(As3Answer::InProgress | As3Answer::Invalid(_)) => {}
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    /// Any bytes, read as the client reads a body (JSON first), never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
            if let Err(message) = parse_as3_answer(&body) {
                prop_assert!(!message.is_empty());
            }
        }
    }

    /// Well-formed AS3 results come back as the same per-tenant codes, messages and errors.
    #[test]
    fn as3_results_round_trip(
        results in prop::collection::btree_map("[A-Za-z][0-9A-Za-z_]{0,8}", (as3_result(), any::<bool>()), 1..5),
        declaration in json_value(),
    ) {
        // Keyed by a unique tenant name: later results for the same tenant would overwrite.
        // AS3 before 3.51 names the tenant; from 3.51 on, it lists it.
        let results: Vec<GeneratedResult> = results
            .into_iter()
            .map(|(tenant, (mut result, as_list))| {
                result.document["tenant"] = if as_list { json!([tenant]) } else { json!(tenant) };
                GeneratedResult { tenant, ..result }
            })
            .collect();
        let body = json!({
            "results": results.iter().map(|r| r.document.clone()).collect::<Vec<_>>(),
            "declaration": declaration,
        });
        let answer = parse_as3_answer(&body).map_err(TestCaseError::fail)?;
        // Read from the text (as the client does, skipping the echoed declaration): the same.
        prop_assert_eq!(parse_as3_answer_text(&body.to_string()), Ok(answer.clone()));
        let As3Answer::Done(report) = answer else {
            return Err(TestCaseError::fail(format!("results read as {answer:?}")));
        };
        prop_assert_eq!(report.tenants.len(), results.len());
        for result in &results {
            let parsed = report.tenants.get(&result.tenant)
                .ok_or_else(|| TestCaseError::fail(format!("tenant {:?} lost", result.tenant)))?;
            prop_assert_eq!(parsed, &result.expected);
            prop_assert_eq!(parsed.succeeded(), result.expected.code == 200);
            for error in &parsed.errors {
                prop_assert!(parsed.detail().contains(error.as_str()));
            }
        }
    }

    /// AS3 3.56's refusal of a whole declaration by its parser — `{code: 422, errors?, message,
    /// host, tenant: [..], declarationId}`, as the answer itself or as an async task's result —
    /// is read as a refusal carrying the validator's errors, or the message when there are none.
    #[test]
    fn parser_refusals_in_every_shape_are_refusals(
        errors in prop::collection::vec(nasty_string(), 0..3),
        message in nasty_string().prop_filter("a message", |m| !m.is_empty() && m != "in progress"),
        tenants in prop::collection::vec("[A-Za-z][0-9A-Za-z_]{0,8}", 0..3),
        as_task in any::<bool>(),
    ) {
        let message = if errors.is_empty() { message } else { "declaration is invalid".to_owned() };
        let mut refusal = json!({"code": 422, "message": message, "host": "localhost", "tenant": tenants, "declarationId": "x"});
        if !errors.is_empty() {
            refusal["errors"] = json!(errors);
        }
        let body = if as_task { json!({"results": [refusal], "declaration": {}}) } else { refusal };
        let answer = parse_as3_answer(&body).map_err(TestCaseError::fail)?;
        let expected = if errors.is_empty() { vec![message] } else { errors };
        // As the answer itself, or as a task result naming no tenant or saying "declaration is
        // invalid", it is a refusal; a task result naming a tenant with another message is that
        // tenant's failure.
        match answer {
            As3Answer::Invalid(read) => prop_assert_eq!(read, expected),
            As3Answer::Done(report) => {
                prop_assert!(as_task && !tenants.is_empty(), "read as a report: {:?}", report);
                for tenant in &tenants {
                    let result = report.tenants.get(tenant).ok_or_else(|| TestCaseError::fail(format!("{tenant} lost")))?;
                    prop_assert_eq!(result.code, 422);
                }
            }
            other => prop_assert!(false, "read as {:?}", other),
        }
    }

    /// A running task anywhere among the results means the whole declaration is running.
    #[test]
    fn in_progress_results_are_running(
        results in prop::collection::vec(as3_result(), 0..4),
        at in any::<prop::sample::Index>(),
    ) {
        let mut documents: Vec<Value> = results.into_iter().map(|r| r.document).collect();
        let position = at.index(documents.len() + 1);
        documents.insert(position, json!({"code": 0, "message": "in progress"}));
        let answer = parse_as3_answer(&json!({"results": documents}));
        prop_assert_eq!(answer, Ok(As3Answer::InProgress));
    }

    /// A declaration refused as a whole (422 with `errors`, no results) reads as invalid with
    /// every error kept.
    #[test]
    fn refused_declarations_keep_their_errors(
        errors in prop::collection::vec(nasty_string(), 1..5),
        message in nasty_string(),
    ) {
        let body = json!({"code": 422, "message": message, "errors": errors});
        prop_assert_eq!(parse_as3_answer(&body), Ok(As3Answer::Invalid(errors)));
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// AS3 answers some refusals (an unsupported `action`, an array body) with a 422 that has
    /// a `message` and no `errors`; that message must reach the user (it once was dropped,
    /// leaving "AS3 rejected the declaration as invalid: " with nothing after it).
    #[test]
    fn refusals_without_errors_keep_their_message(message in "[a-z][a-z ']{4,40}") {
        let body = json!({"code": 422, "message": message});
        match parse_as3_answer(&body) {
            Ok(As3Answer::Invalid(errors)) => prop_assert!(errors.iter().any(|e| e.contains(&message)), "{errors:?}"),
            other => prop_assert!(false, "{other:?}"),
        }
    }
}

// =============================================================================================
// Part 3: the simulator's declaration handling

/// Pointers as AS3 writes them, most of them not resolving.
fn pointer() -> BoxedStrategy<String> {
    prop_oneof![
        4 => one_of(&["p", "m", "sa", "/T1/A/p", "/T1/A/m", "/T2/A/p"]),
        3 => one_of(&[
            "p", "m", "sa", "vs", "/T1/A/p", "/T2/A/p", "/T1/A/m", "/T1/Shared/p", "/Common/Shared/p", "/Common/p",
            "/", "//", "", "#", "p#", "@/x", "0/x", "1#", "/T1", "/T1/A", "/T1/A/p/members", "/T1/A/p/x/y",
            "A/p", "../p", "/Common/Shared", "~1",
        ]),
        1 => nasty_string(),
    ]
    .boxed()
}

/// Addresses as AS3 writes them (`f5ip`: route domains, prefixes), valid or not.
fn f5_address() -> BoxedStrategy<String> {
    prop_oneof![
        // A few addresses come up often, so that virtual servers collide.
        3 => (
            prop_oneof![2 => one_of(&["10.0.0.1", "10.0.0.2", "2001:db8::1", "0.0.0.0", "::"]), 1 => ip_text()],
            prop::option::weighted(0.2, 0u32..70_000),
            prop::option::weighted(0.2, 0u32..200),
        )
            .prop_map(|(ip, rd, prefix)| {
                let rd = rd.map(|rd| format!("%{rd}")).unwrap_or_default();
                let prefix = prefix.map(|p| format!("/{p}")).unwrap_or_default();
                format!("{ip}{rd}{prefix}")
            }),
        1 => one_of(&[
            "any", "any6", "0.0.0.0/0", "::/0", "%", "/", "10.0.0.1%", "10.0.0.1/", "10.0.0.1%a/b", "fqdn.example",
        ]),
        1 => nasty_string(),
    ]
    .boxed()
}

/// A tenant in the shape the operator declares, with random addresses, ports, pointers and
/// members. `loose` also puts randomly typed values in its fields.
fn declared_tenant(loose: bool) -> BoxedStrategy<Value> {
    let wrong = u32::from(loose);
    let f = move |valid: BoxedStrategy<Value>| -> BoxedStrategy<Option<Value>> {
        prop_oneof![8 => valid.prop_map(Some), wrong => json_leaf().prop_map(Some)].boxed()
    };
    // Mostly within the schema's range, so most declarations get past validation to the
    // pointer, address and LTM code behind it.
    let number = |within: std::ops::Range<i64>, beyond: std::ops::Range<i64>| -> BoxedStrategy<Value> {
        prop_oneof![19 => within, 1 => beyond].prop_map(Value::from).boxed()
    };
    let address_entry = prop_oneof![
        6 => f5_address().prop_map(Value::String),
        1 => Just(json!({"use": "sa"})),
        1 => pointer().prop_map(|p| json!({"use": p})),
        1 => "[a-z0-9.:/]{0,12}".prop_map(|b| json!({"bigip": b})),
        1 => (f5_address(), f5_address()).prop_map(|(d, s)| json!([d, s])),
    ];
    let service = (
        f(prop_oneof![
            4 => Just("Service_HTTP".to_owned()),
            1 => one_of(&["Service_TCP", "Service_UDP", "Service_L4", "Service_Generic"]),
        ]
        .prop_map(Value::String)
        .boxed()),
        f(prop::collection::vec(address_entry, 1..3).prop_map(Value::Array).boxed()),
        f(prop_oneof![
            3 => prop::sample::select(vec![80i64, 443]).prop_map(Value::from),
            6 => number(0..65_536, 65_536..70_000),
            1 => Just(json!({"use": "ports"})),
        ]
        .boxed()),
        f(prop_oneof![
            6 => Just(json!("p")),
            1 => Just(json!({"use": "p"})),
            3 => pointer().prop_map(Value::String),
            1 => pointer().prop_map(|p| json!({"use": p})),
        ]
        .boxed()),
        f(one_of(&["auto", "none"]).prop_map(Value::String).boxed()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(class, addresses, port, pool, snat, enable)| {
            object([
                ("class", class),
                ("virtualAddresses", addresses),
                ("virtualPort", port),
                ("pool", pool),
                ("snat", snat),
                ("enable", enable.map(Value::Bool)),
            ])
        });
    let member = (
        f(number(0..65_536, 65_536..70_000)),
        f(prop::collection::vec(f5_address(), 0..3).prop_map(|a| json!(a)).boxed()),
        any::<bool>(),
        prop::option::of(one_of(&["enable", "disable", "offline"])),
        prop::option::of(number(0..65_535, 65_535..70_000)),
    )
        .prop_map(|(port, addresses, share, admin, route_domain)| {
            object([
                ("servicePort", port),
                ("serverAddresses", addresses),
                ("shareNodes", Some(json!(share))),
                ("adminState", admin.map(Value::String)),
                ("routeDomain", route_domain),
            ])
        });
    let monitor_ref = prop_oneof![
        4 => one_of(&["http", "tcp", "icmp", "https", "gateway-icmp"]).prop_map(Value::String),
        3 => Just(json!({"use": "m"})),
        1 => pointer().prop_map(|p| json!({"use": p})),
        1 => Just(json!({"bigip": "/Common/http"})),
    ];
    let pool = (
        f(prop::collection::vec(member, 0..3).prop_map(Value::Array).boxed()),
        f(prop::collection::vec(monitor_ref, 0..3).prop_map(Value::Array).boxed()),
        prop::option::of(prop_oneof![Just(json!("all")), number(1..4, 0..1)]),
        f(one_of(LB_MODES).prop_map(Value::String).boxed()),
    )
        .prop_map(|(members, monitors, minimum, mode)| {
            object([
                ("class", Some(json!("Pool"))),
                ("members", members),
                ("monitors", monitors),
                ("minimumMonitors", minimum),
                ("loadBalancingMode", mode),
            ])
        });
    let monitor = (
        f(one_of(&["http", "https", "tcp", "icmp", "udp"]).prop_map(Value::String).boxed()),
        f(number(0..3_601, 3_601..5_000)),
        f(number(0..901, 901..2_000)),
    )
        .prop_map(|(kind, interval, timeout)| {
            object([
                ("class", Some(json!("Monitor"))),
                ("monitorType", kind),
                ("interval", interval),
                ("timeout", timeout),
            ])
        });
    let application = (service, pool, monitor, prop::option::of(f5_address())).prop_map(
        |(service, pool, monitor, service_address)| {
            object([
                ("class", Some(json!("Application"))),
                ("vs", Some(service)),
                ("p", Some(pool)),
                ("m", Some(monitor)),
                ("sa", service_address.map(|a| json!({"class": "Service_Address", "virtualAddress": a}))),
            ])
        },
    );
    let applications =
        prop::collection::btree_map(one_of(&["A", "B", "Shared"]), application, 1..3).prop_map(|mut apps| {
            // AS3 requires the `shared` template of the Shared application.
            for (name, app) in &mut apps {
                app["template"] = json!(if name == "Shared" { "shared" } else { "generic" });
            }
            apps
        });
    (prop_oneof![9 => applications, 1 => Just(BTreeMap::new())], prop::option::of(0u32..3))
        .prop_map(|(applications, route_domain)| {
            let mut tenant = Map::new();
            tenant.insert("class".to_owned(), json!("Tenant"));
            if let Some(rd) = route_domain {
                tenant.insert("defaultRouteDomain".to_owned(), json!(rd));
            }
            tenant.extend(applications);
            Value::Object(tenant)
        })
        .boxed()
}

fn tenant_name() -> BoxedStrategy<String> {
    prop_oneof![6 => one_of(&["T1", "T2"]), 1 => one_of(&["Common", "Shared"]), 1 => "[A-Za-z][A-Za-z0-9_]{0,5}"]
        .boxed()
}

/// A declaration as the operator posts it (or the bare ADC), with random tenants and action.
fn declaration(loose: bool) -> BoxedStrategy<Value> {
    (
        prop::collection::btree_map(tenant_name(), declared_tenant(loose), 0..3),
        prop_oneof![
            6 => Just("deploy".to_owned()),
            1 => one_of(&["dry-run", "remove", "retrieve", "patch", "redeploy"]),
            1 => nasty_string(),
        ],
        one_of(&["selective", "complete"]),
        any::<bool>(),
    )
        .prop_map(|(tenants, action, update_mode, wrapped)| {
            let mut adc = Map::new();
            adc.insert("class".to_owned(), json!("ADC"));
            adc.insert("schemaVersion".to_owned(), json!("3.50.0"));
            adc.insert("id".to_owned(), json!("fuzz"));
            adc.insert("updateMode".to_owned(), json!(update_mode));
            adc.extend(tenants);
            if wrapped {
                json!({"class": "AS3", "action": action, "persist": true, "declaration": adc})
            } else {
                Value::Object(adc)
            }
        })
        .boxed()
}

/// One request to the simulator's AS3 API.
#[derive(Clone)]
enum Request {
    Declare { path: String, body: Vec<u8> },
    Applications { tenant: String, body: Vec<u8> },
    Delete { path: String },
}

// Bodies shown as text, so a failing case can be replayed with curl.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Declare { path, body } => write!(f, "POST {path} {}", String::from_utf8_lossy(body)),
            Self::Applications { tenant, body } => {
                write!(f, "POST /mgmt/shared/appsvcs/declare/{tenant}/applications {}", String::from_utf8_lossy(body))
            }
            Self::Delete { path } => write!(f, "DELETE {path}"),
        }
    }
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialise")
}

fn request() -> BoxedStrategy<Request> {
    let declare_path = prop_oneof![
        4 => Just("/mgmt/shared/appsvcs/declare".to_owned()),
        1 => Just("/mgmt/shared/appsvcs/declare?controls.dryRun=true".to_owned()),
        1 => (tenant_name(), tenant_name()).prop_map(|(a, b)| format!("/mgmt/shared/appsvcs/declare/{a},{b}")),
    ];
    let body = prop_oneof![
        6 => declaration(false).prop_map(|v| to_bytes(&v)),
        2 => declaration(true).prop_map(|v| to_bytes(&v)),
        1 => json_value().prop_map(|v| to_bytes(&v)),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let applications = (tenant_name(), declared_tenant(false), any::<bool>()).prop_map(|(tenant, content, garble)| {
        let mut body = content;
        if let Some(object) = body.as_object_mut() {
            object.remove("class");
            object.insert("schemaVersion".to_owned(), json!("3.50.0"));
        }
        let mut bytes = to_bytes(&body);
        if garble {
            bytes.truncate(bytes.len() / 2);
        }
        Request::Applications { tenant, body: bytes }
    });
    prop_oneof![
        8 => (declare_path, body).prop_map(|(path, body)| Request::Declare { path, body }),
        2 => applications,
        1 => prop_oneof![
            Just("/mgmt/shared/appsvcs/declare".to_owned()),
            tenant_name().prop_map(|t| format!("/mgmt/shared/appsvcs/declare/{t}")),
            (tenant_name(), one_of(&["A", "B", "Shared"]))
                .prop_map(|(t, a)| format!("/mgmt/shared/appsvcs/declare/{t}/applications/{a}")),
        ]
        .prop_map(|path| Request::Delete { path }),
    ]
    .boxed()
}

/// A simulator on its own runtime, and a client for it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Harness {
    fn new() -> Self {
        bigip_operator::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Self { runtime, client: reqwest::Client::new() }
    }

    fn start(&self, config: SimulatorConfig) -> Result<RunningSimulator, simulator::SimulatorError> {
        self.runtime.block_on(simulator::start(config))
    }

    /// Sends a request; a dropped connection (a panicking handler) is a failure.
    async fn send(
        &self,
        sim: &RunningSimulator,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Value), TestCaseError> {
        let mut builder = self
            .client
            .request(method.clone(), format!("{}{path}", sim.base_url()))
            .basic_auth("admin", Some("admin"))
            .header("Content-Type", "application/json");
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| TestCaseError::fail(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| TestCaseError::fail(format!("{method} {path}: body: {e}")))?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: not JSON ({e}): {text}")))?
        };
        prop_assert!(status != 500, "{} {}: HTTP 500: {}", method, path, body);
        Ok((status, body))
    }

    /// The LTM views and the state accessors work on whatever was deployed.
    async fn check_views(&self, sim: &RunningSimulator) -> Result<(), TestCaseError> {
        for path in
            ["/mgmt/tm/ltm/virtual", "/mgmt/tm/ltm/pool", "/mgmt/tm/ltm/monitor/http", "/mgmt/tm/ltm/monitor/tcp"]
        {
            let (status, _) = self.send(sim, reqwest::Method::GET, path, None).await?;
            prop_assert_eq!(status, 200, "GET {}", path);
        }
        let (_, pools) = self.send(sim, reqwest::Method::GET, "/mgmt/tm/ltm/pool", None).await?;
        for pool in pools["items"].as_array().into_iter().flatten() {
            let full_path = pool["fullPath"].as_str().unwrap_or_default();
            let path = format!("/mgmt/tm/ltm/pool/{}/members", full_path.replace('/', "~"));
            let (status, _) = self.send(sim, reqwest::Method::GET, &path, None).await?;
            prop_assert_eq!(status, 200, "GET {}", path);
        }
        let state = sim.state();
        let _ = state.virtual_servers();
        for (tenant, content) in state.tenants() {
            for (application, objects) in content.as_object().into_iter().flatten() {
                for pool in objects.as_object().into_iter().flatten().map(|(name, _)| name) {
                    let _ = state.pool_members(&tenant, application, pool);
                }
            }
        }
        Ok(())
    }
}

/// What a declare answer must look like: the operator's client reads it without error.
fn check_declare_answer(status: u16, body: &Value) -> Result<(), TestCaseError> {
    // An array of declarations is answered item by item.
    if let Some(items) = body.get("items").and_then(Value::as_array) {
        prop_assert!(matches!(status, 200 | 207 | 400..=599), "HTTP {} for an array", status);
        for item in items {
            let item_status =
                if item.get("results").is_some() { 207 } else { item["code"].as_u64().unwrap_or(0) as u16 };
            if item_status == 207 {
                parse_as3_answer(item).map_err(|e| TestCaseError::fail(format!("item {item}: {e}")))?;
            } else {
                prop_assert!(item_status >= 400 && item.get("message").is_some(), "item {}", item);
            }
        }
        return Ok(());
    }
    match status {
        // `action: retrieve` answers with the declaration itself, which has no results.
        200 if body.get("results").is_none() => prop_assert_eq!(body["class"].as_str(), Some("ADC")),
        200 | 207 => {
            let answer =
                parse_as3_answer(body).map_err(|e| TestCaseError::fail(format!("HTTP {status}: {e}: {body}")))?;
            let As3Answer::Done(report) = answer else {
                return Err(TestCaseError::fail(format!("HTTP {status} read as {answer:?}: {body}")));
            };
            for (tenant, result) in &report.tenants {
                prop_assert!(!result.message.is_empty(), "tenant {tenant}: empty message");
                if !result.succeeded() {
                    prop_assert!(!result.detail().is_empty());
                }
            }
        }
        422 => {
            let answer = parse_as3_answer(body).map_err(|e| TestCaseError::fail(format!("HTTP 422: {e}: {body}")))?;
            if let As3Answer::Invalid(errors) = &answer {
                let message = body["message"].as_str().unwrap_or_default();
                prop_assert!(!errors.is_empty() || !message.is_empty(), "a refusal without any text: {body}");
            }
        }
        400 | 404 => {
            prop_assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "HTTP {status} without a message: {body}"
            );
        }
        other => prop_assert!(false, "unexpected HTTP {other}: {body}"),
    }
    Ok(())
}

/// Random declarations, per-application bodies, deletes and raw bytes against one simulator,
/// in sequence so each meets what the earlier ones deployed: no request fails with HTTP 500
/// (a panic in the declaration code) or a dropped connection (a panicking handler), every
/// answer is one the operator's client can read, and the views still work afterwards.
#[test]
fn simulator_survives_arbitrary_declarations() {
    let harness = Harness::new();
    let sim = harness.start(SimulatorConfig::default()).expect("simulator starts");
    let mut runner = TestRunner::new(config(192));
    let outcome = runner.run(&request(), |request| {
        harness.runtime.block_on(async {
            let (status, body) = match &request {
                Request::Declare { path, body } => {
                    harness.send(&sim, reqwest::Method::POST, path, Some(body.clone())).await?
                }
                Request::Applications { tenant, body } => {
                    let path = format!("/mgmt/shared/appsvcs/declare/{tenant}/applications");
                    harness.send(&sim, reqwest::Method::POST, &path, Some(body.clone())).await?
                }
                Request::Delete { path } => harness.send(&sim, reqwest::Method::DELETE, path, None).await?,
            };
            check_declare_answer(status, &body)?;
            harness.check_views(&sim).await
        })
    });
    harness.runtime.block_on(sim.shutdown());
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

/// A state file is loaded without schema validation, so its tenants can hold anything:
/// loading never panics, and neither do the views and state accessors over what was loaded.
#[test]
fn simulator_loads_arbitrary_state_files() {
    let harness = Harness::new();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let state_file = directory.path().join("state.json");
    let document = prop_oneof![
        3 => prop::collection::btree_map(tenant_name(), declared_tenant(true), 0..3).prop_map(|tenants| {
            let mut adc = Map::new();
            adc.insert("class".to_owned(), json!("ADC"));
            adc.extend(tenants);
            to_bytes(&json!({"class": "AS3", "declaration": adc}))
        }),
        1 => prop::collection::btree_map(tenant_name(), json_value(), 0..3).prop_map(|tenants| {
            let tenants: Map<String, Value> = tenants
                .into_iter()
                .map(|(name, mut value)| {
                    if let Some(object) = value.as_object_mut() {
                        object.insert("class".to_owned(), json!("Tenant"));
                    }
                    (name, value)
                })
                .collect();
            let mut adc = Map::new();
            adc.insert("class".to_owned(), json!("ADC"));
            adc.extend(tenants);
            to_bytes(&Value::Object(adc))
        }),
        1 => json_value().prop_map(|v| to_bytes(&v)),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let mut runner = TestRunner::new(config(48));
    let outcome = runner.run(&document, |bytes| {
        std::fs::write(&state_file, &bytes).expect("write the state file");
        let config = SimulatorConfig { state_file: Some(state_file.clone()), ..SimulatorConfig::default() };
        let sim = match harness.start(config) {
            Ok(sim) => sim,
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.contains("state file"), "{message}");
                return Ok(());
            }
        };
        let checked = harness.runtime.block_on(harness.check_views(&sim));
        harness.runtime.block_on(sim.shutdown());
        checked
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

/// A legacy `data.data` document: mostly the shape k8s-bigip-ctlr documented, with random,
/// missing and wrongly typed values, sometimes any JSON at all.
fn legacy_document() -> BoxedStrategy<Value> {
    let port = || {
        prop_oneof![6 => (1i64..65_536).prop_map(Value::from), 1 => (-5i64..70_000).prop_map(Value::from), 1 => json_leaf()].boxed()
    };
    let frontend = (
        field(8, 1, string_value(prop_oneof![8 => one_of(&["http", "tcp", "udp"]), 1 => nasty_string()])),
        field(4, 2, string_value(prop_oneof![8 => one_of(LB_MODES), 1 => nasty_string()])),
        field(8, 1, string_value(prop_oneof![8 => "[a-z][a-z0-9]{0,8}", 1 => partition()])),
        field(
            8,
            1,
            (string_value(prop_oneof![8 => ip_text(), 1 => virtual_address()]), port())
                .prop_map(|(address, port)| json!({"bindAddr": address, "port": port}))
                .boxed(),
        ),
        field(
            1,
            6,
            prop_oneof![3 => "[a-z]{1,6}/[a-z]{1,6}".prop_map(|p| json!({"f5ProfileName": p})), 1 => json_value()]
                .boxed(),
        ),
    )
        .prop_map(|(mode, balance, partition, address, ssl)| {
            object([
                ("mode", mode),
                ("balance", balance),
                ("partition", partition),
                ("virtualAddress", address),
                ("sslProfile", ssl),
            ])
        });
    let seconds =
        || prop_oneof![6 => (1i64..100).prop_map(Value::from), 1 => (-5i64..5000).prop_map(Value::from)].boxed();
    let monitor = (
        field(8, 1, string_value(prop_oneof![8 => one_of(&["http", "tcp", "udp"]), 1 => nasty_string()])),
        field(4, 1, seconds()),
        field(4, 1, seconds()),
        field(2, 3, string_value("[ -~]{0,20}")),
    )
        .prop_map(|(protocol, interval, timeout, send)| {
            object([("protocol", protocol), ("interval", interval), ("timeout", timeout), ("send", send)])
        });
    let backend = (
        field(8, 1, string_value(prop_oneof![8 => one_of(&["web", "db"]), 1 => nasty_string()])),
        field(8, 1, port()),
        field(2, 3, prop::collection::vec(monitor, 0..10).prop_map(Value::Array).boxed()),
    )
        .prop_map(|(service, port, monitors)| {
            object([("serviceName", service), ("servicePort", port), ("healthMonitors", monitors)])
        });
    prop_oneof![
        8 => (frontend, backend).prop_map(|(f, b)| json!({"virtualServer": {"frontend": f, "backend": b}})),
        1 => json_value(),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    /// The legacy ConfigMap parser never panics; every error names the ConfigMap; whatever it
    /// translates renders to a declaration AS3 accepts (or is refused by the model with the
    /// field named), so no legacy input reaches the BIG-IP unchecked.
    #[test]
    fn legacy_config_maps_translate_or_are_refused_by_name(
        document in legacy_document(),
        version in prop_oneof![8 => 0u8..8, 1 => 8u8..10],
        raw_text in prop_oneof![9 => Just(None), 1 => nasty_string().prop_map(Some)],
    ) {
        use bigip_operator::legacy::configmap::translate_config_map;
        use bigip_operator::legacy::Translated;
        let data = raw_text.unwrap_or_else(|| document.to_string());
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "fuzz", "namespace": "shop", "uid": "3f0c", "labels": {"f5type": "virtual-server"}},
            "data": {"schema": format!("f5schemadb://bigip-virtual-server_v0.1.{version}.json"), "data": data},
        })).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match translate_config_map(&cm) {
            Err(error) => prop_assert!(error.to_string().contains("shop/fuzz"), "{}", error),
            Ok(translation) => {
                let mut manifests = Manifests::default();
                match translation.object {
                    Translated::VirtualServer(vs) => manifests.virtual_servers.push(*vs),
                    Translated::TransportServer(ts) => manifests.transport_servers.push(*ts),
                }
                match render_manifests(&manifests, &defaults(PoolMemberType::Nodeport), &owner()) {
                    Ok(_) => {}
                    Err(RenderError::Rejected { key, .. }) => prop_assert!(key.contains("shop/cm-fuzz"), "{}", key),
                    Err(other) => prop_assert!(false, "translated, then not renderable: {}", other),
                }
            }
        }
    }
}

/// `virtual-server.f5.com/*` annotations: mostly the values k8s-bigip-ctlr documented, with
/// numbers anywhere in i32 and beyond, wrong types and arbitrary text.
fn ingress_annotations() -> BoxedStrategy<BTreeMap<String, String>> {
    let number = || prop_oneof![4 => 1i64..100, 2 => any::<i32>().prop_map(i64::from), 1 => any::<i64>()].boxed();
    let health_entry = (
        prop_oneof![4 => Just("svc1.example.com/app1".to_string()), 1 => Just("/".to_string()), 1 => nasty_string()],
        number(),
        number(),
        prop_oneof![2 => Just(None), 1 => "[ -~]{0,20}".prop_map(Some)],
    )
        .prop_map(|(path, interval, timeout, send)| json!({"path": path, "interval": interval, "timeout": timeout, "send": send}));
    let health = prop_oneof![
        6 => prop::collection::vec(health_entry, 0..4).prop_map(|entries| Value::Array(entries).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => nasty_string(),
    ];
    let port = || prop_oneof![4 => (1i64..65_536).prop_map(|p| p.to_string()), 1 => number().prop_map(|p| p.to_string()), 1 => nasty_string()];
    (
        prop_oneof![6 => ip_text(), 1 => nasty_string()],
        field_text(port()),
        field_text(port()),
        field_text(health),
        field_text(prop_oneof![4 => one_of(LB_MODES), 1 => nasty_string()]),
        field_text(prop_oneof![2 => Just("true".to_string()), 2 => Just("false".to_string()), 1 => nasty_string()]),
        field_text(prop_oneof![4 => Just("10.0.0.0/8, 192.168.1.0/24".to_string()), 1 => nasty_string()]),
    )
        .prop_map(|(ip, http_port, https_port, health, balance, redirect, ranges)| {
            let mut annotations = BTreeMap::from([("virtual-server.f5.com/ip".to_string(), ip)]);
            for (name, value) in [
                ("http-port", http_port),
                ("https-port", https_port),
                ("health", health),
                ("balance", balance),
                ("ssl-redirect", redirect),
                ("whitelist-source-range", ranges),
            ] {
                if let Some(value) = value {
                    annotations.insert(format!("virtual-server.f5.com/{name}"), value);
                }
            }
            annotations
        })
        .boxed()
}

/// An optional annotation value: mostly set.
fn field_text(value: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
    prop_oneof![3 => value.prop_map(Some), 1 => Just(None)].boxed()
}

proptest! {
    #![proptest_config(config(256))]

    /// The Ingress translator never panics on any annotation values (an `interval` of
    /// i32::MAX once overflowed); every refusal names the annotation or field it refuses, and
    /// whatever it translates renders, or is refused by the model naming the generated object.
    #[test]
    fn legacy_ingress_annotations_translate_or_are_refused_by_name(annotations in ingress_annotations()) {
        use bigip_operator::legacy::ingress::translate_ingress;
        let ingress: k8s_openapi::api::networking::v1::Ingress = serde_json::from_value(json!({
            "metadata": {"name": "fuzz", "namespace": "shop", "uid": "3f0c", "annotations": annotations},
            "spec": {"rules": [{"host": "svc1.example.com", "http": {"paths": [
                {"path": "/app1", "pathType": "Prefix", "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}}
            ]}}]},
        })).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match translate_ingress(&ingress) {
            Err(error) => {
                let text = error.to_string();
                prop_assert!(text.contains("virtual-server.f5.com/") || text.starts_with("spec"), "{}", text);
            }
            Ok(translation) => {
                let manifests = Manifests { virtual_servers: translation.virtual_servers, ..Manifests::default() };
                match render_manifests(&manifests, &defaults(PoolMemberType::Nodeport), &owner()) {
                    Ok(_) => {}
                    Err(RenderError::Rejected { key, .. }) => prop_assert!(key.contains("shop/ing-fuzz"), "{}", key),
                    Err(other) => prop_assert!(false, "translated, then not renderable: {}", other),
                }
            }
        }
    }
}
