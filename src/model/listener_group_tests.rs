//! Unit tests of listener groups: membership rules, route conflicts, the merged application and
//! its rendering.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use serde_json::json;

use super::listener_group::group_application_name;
use super::*;
use crate::crd::{BigIpListenerGroup, VirtualServer};

fn defaults() -> ModelDefaults {
    ModelDefaults {
        partition: "k8s".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    }
}

fn group(allowed: &[&str], tls: serde_json::Value) -> BigIpListenerGroup {
    let mut spec = json!({"virtualAddress": "10.1.10.50", "port": 443, "allowedNamespaces": allowed});
    if !tls.is_null() {
        spec["tls"] = tls;
    }
    serde_json::from_value(json!({
        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "BigIpListenerGroup",
        "metadata": {"name": "public"}, "spec": spec,
    }))
    .expect("group")
}

fn member(
    namespace: &str,
    name: &str,
    created: u32,
    hosts: &[(&str, Option<&str>)],
    tls: Option<&str>,
) -> VirtualServer {
    let rules: Vec<serde_json::Value> = hosts
        .iter()
        .map(|(host, path)| match path {
            Some(path) => json!({"host": host, "path": path, "pool": "web"}),
            None => json!({"host": host, "pool": "web"}),
        })
        .collect();
    let mut spec = json!({
        "listenerGroup": "public", "port": 443, "rules": rules,
        "pools": [{"name": "web", "service": "web", "servicePort": 80}],
    });
    if let Some(secret) = tls {
        spec["tls"] = json!({"secretName": secret});
    }
    serde_json::from_value(json!({
        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": format!("2026-01-01T00:00:{created:02}Z")},
        "spec": spec,
    }))
    .expect("vs")
}

fn tls_secret(namespace: &str, name: &str, host: &str) -> Secret {
    let generated = rcgen::generate_simple_self_signed(vec![host.into()]).expect("cert");
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some(tls::TLS_SECRET_TYPE.into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(generated.cert.pem().into_bytes())),
            ("tls.key".to_string(), ByteString(generated.signing_key.serialize_pem().into_bytes())),
        ])),
        ..Default::default()
    }
}

fn cluster(group: BigIpListenerGroup) -> ClusterObjects {
    let mut cluster = ClusterObjects::default();
    for namespace in ["team-a", "team-b", "team-c"] {
        let service: ServiceView = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
        }))
        .expect("service");
        cluster.add_service(service);
    }
    cluster.add_secret(tls_secret("team-a", "a-tls", "a.example.com"));
    cluster.add_secret(tls_secret("team-b", "b-tls", "b.example.com"));
    cluster.add_listener_group(group);
    cluster
}

fn key(namespace: &str, name: &str) -> SourceId {
    SourceId { kind: SourceKind::VirtualServer, key: ObjectKey { namespace: namespace.into(), name: name.into() } }
}

fn certificates(app: &DesiredApplication) -> Vec<Option<String>> {
    match &app.frontend {
        Frontend::Http { tls: Some(TlsTermination { server: ServerTls::Sni(certs), .. }), .. } => {
            certs.iter().map(|c| c.server_name.clone()).collect()
        }
        other => panic!("no SNI certificates: {other:?}"),
    }
}

#[test]
fn two_namespaces_share_one_virtual_server_with_a_certificate_per_host() {
    let cluster = cluster(group(&["team-a", "team-b"], json!({})));
    let a = member("team-a", "shop", 1, &[("a.example.com", None)], Some("a-tls"));
    let b = member("team-b", "blog", 2, &[("b.example.com", None), ("b.example.com", Some("/api"))], Some("b-tls"));
    let fleet = build_fleet([&a, &b], [], &cluster, &defaults());
    let apps = &fleet.partitions["k8s"];
    assert_eq!(apps.len(), 1, "one application for the group: {apps:?}");
    let app = &apps[0];
    assert_eq!(app.name, group_application_name("public"));
    assert_eq!((app.virtual_address.to_string().as_str(), app.port), ("10.1.10.50", 443));
    let pools: Vec<&str> = app.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pools, ["team-a_shop_web", "team-b_blog_web"]);
    // The oldest member's certificate is the default, then one per host.
    assert_eq!(certificates(app), [None, Some("a.example.com".into()), Some("b.example.com".into())]);
    for id in [key("team-a", "shop"), key("team-b", "blog")] {
        assert!(
            matches!(&fleet.outcomes[&id], AppOutcome::Included { application, .. } if *application == app.name),
            "{id}: {:?}",
            fleet.outcomes[&id]
        );
    }
    // Rendered: one Service_HTTPS, a TLS_Server with two certificates and SNI entries, no default pool.
    let rendered = crate::as3::render_application(app);
    assert_eq!(rendered["vs"]["class"], "Service_HTTPS");
    assert!(rendered["vs"].get("pool").is_none());
    assert_eq!(rendered["vs"]["redirect80"], true);
    let entries = rendered["tls_server"]["certificates"].as_array().expect("certificates");
    assert_eq!(entries[0]["sniDefault"], true);
    assert_eq!(entries[2]["matchToSNI"], "b.example.com");
    assert_eq!(entries[0]["certificate"], entries[1]["certificate"], "one object for one certificate");
    assert_ne!(entries[1]["certificate"], entries[2]["certificate"]);
    // The more specific /api rule comes before b.example.com's catch-all.
    let rules = rendered["routes"]["rules"].as_array().expect("rules");
    let pools_in_order: Vec<&str> =
        rules.iter().map(|r| r["actions"][0]["select"]["pool"]["use"].as_str().unwrap_or_default()).collect();
    assert_eq!(pools_in_order.len(), 4);
}

#[test]
fn the_older_object_keeps_a_host_and_path_and_one_bad_member_leaves_the_others_alone() {
    let mut cluster = cluster(group(&["*"], json!({})));
    let a = member("team-a", "shop", 1, &[("a.example.com", None)], Some("a-tls"));
    let thief = member("team-c", "thief", 2, &[("a.example.com", None)], Some("a-tls"));
    let broken = member("team-b", "blog", 3, &[("b.example.com", None)], Some("missing"));
    cluster.add_secret(tls_secret("team-c", "a-tls", "a.example.com"));
    let fleet = build_fleet([&thief, &broken, &a], [], &cluster, &defaults());
    match &fleet.outcomes[&key("team-c", "thief")] {
        AppOutcome::RouteConflict { route, holder } => {
            assert_eq!(holder, &key("team-a", "shop"));
            assert_eq!(route.to_string(), "host a.example.com every path in BigIpListenerGroup public");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&fleet.outcomes[&key("team-b", "blog")], AppOutcome::Blocked { .. }));
    let app = &fleet.partitions["k8s"][0];
    assert_eq!(app.pools.len(), 1, "only team-a's pool: {:?}", app.pools);
    assert_eq!(certificates(app), [None, Some("a.example.com".into())]);
    // A path on a host another member serves is not a conflict: they split the host.
    let split = member("team-c", "split", 4, &[("a.example.com", Some("/blog"))], Some("a-tls"));
    let fleet = build_fleet([&a, &split], [], &cluster, &defaults());
    assert!(matches!(&fleet.outcomes[&key("team-c", "split")], AppOutcome::Included { .. }));
}

#[test]
fn membership_is_checked_against_the_group() {
    let cluster = cluster(group(&["team-a"], json!({})));
    let outcome = |vs: &VirtualServer| {
        build_fleet([vs], [], &cluster, &defaults()).outcomes[&key(
            vs.metadata.namespace.as_deref().unwrap_or_default(),
            vs.metadata.name.as_deref().unwrap_or_default(),
        )]
            .clone()
    };
    let reason = |vs: &VirtualServer| match outcome(vs) {
        AppOutcome::Invalid(e) => (e.reason().to_string(), e.to_string()),
        other => panic!("{other:?}"),
    };
    let outsider = member("team-b", "blog", 1, &[("b.example.com", None)], Some("b-tls"));
    let (r, message) = reason(&outsider);
    assert_eq!(r, "NotAllowedByListenerGroup");
    assert!(message.contains("namespace team-b is not in the group's allowedNamespaces"), "{message}");

    let mut other_port = member("team-a", "shop", 1, &[("a.example.com", None)], Some("a-tls"));
    other_port.spec.port = 8443;
    assert_eq!(reason(&other_port).0, "ListenerGroupMismatch");

    let mut no_group = member("team-a", "shop", 1, &[("a.example.com", None)], Some("a-tls"));
    no_group.spec.listener_group = Some("private".into());
    assert_eq!(reason(&no_group).0, "ListenerGroupNotFound");

    let mut hostless = member("team-a", "shop", 1, &[("a.example.com", None)], Some("a-tls"));
    hostless.spec.rules[0].host = None;
    hostless.spec.rules[0].path = Some("/x".into());
    assert!(reason(&hostless).1.contains("every rule needs a host"));

    let mut irules = member("team-a", "shop", 1, &[("a.example.com", None)], Some("a-tls"));
    irules.spec.x_forwarded_for = true;
    assert!(reason(&irules).1.contains("not possible in a listener group"));

    // No certificate of its own and no default certificate in the group.
    let bare = member("team-a", "shop", 1, &[("a.example.com", None)], None);
    assert!(reason(&bare).1.contains("no default certificate"));
}

#[test]
fn a_default_certificate_comes_first_and_plain_http_can_be_served_beside_https() {
    let mut cluster =
        cluster(group(&["*"], json!({"defaultCertificate": {"namespace": "ingress", "name": "wildcard"}})));
    cluster.add_secret(tls_secret("ingress", "wildcard", "*.example.com"));
    let mut with_http = group(&["*"], json!({"defaultCertificate": {"namespace": "ingress", "name": "wildcard"}}));
    with_http.spec.http_traffic = Some(crate::crd::HttpTraffic::Allow);
    let bare = member("team-a", "shop", 1, &[("a.example.com", None)], None);
    let b = member("team-b", "blog", 2, &[("b.example.com", None)], Some("b-tls"));
    let fleet = build_fleet([&bare, &b], [], &cluster, &defaults());
    let app = &fleet.partitions["k8s"][0];
    assert_eq!(certificates(app), [None, Some("b.example.com".into())], "a.example.com uses the default");

    cluster.add_listener_group(with_http);
    let fleet = build_fleet([&bare, &b], [], &cluster, &defaults());
    let app = &fleet.partitions["k8s"][0];
    let rendered = crate::as3::render_application(app);
    assert_eq!(rendered["vs"]["redirect80"], false);
    assert_eq!(rendered["vs_http"]["class"], "Service_HTTP");
    assert_eq!(rendered["vs_http"]["virtualPort"], 80);
    assert_eq!(rendered["vs_http"]["policyEndpoint"], "routes");
    let ports: Vec<u16> = app.listeners().iter().map(|l| l.port).collect();
    assert_eq!(ports, [443, 80]);

    // The default certificate missing blocks the members until it is there.
    cluster.remove_secret("ingress", "wildcard");
    let fleet = build_fleet([&bare], [], &cluster, &defaults());
    match &fleet.outcomes[&key("team-a", "shop")] {
        AppOutcome::Blocked { unresolved, .. } => {
            assert!(unresolved[0].to_string().contains("BigIpListenerGroup spec.tls.defaultCertificate"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_group_shares_its_listener_only_with_its_members() {
    let cluster = cluster(group(&["*"], json!({})));
    let a = member("team-a", "shop", 2, &[("a.example.com", None)], Some("a-tls"));
    // An older standalone VirtualServer on the group's address and port keeps it.
    let standalone: VirtualServer = serde_json::from_value(json!({
        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
        "metadata": {"name": "old", "namespace": "team-c", "creationTimestamp": "2026-01-01T00:00:01Z"},
        "spec": {"virtualAddress": "10.1.10.50", "port": 443, "pools": [{"name": "web", "service": "web", "servicePort": 80}]},
    }))
    .expect("vs");
    let fleet = build_fleet([&a, &standalone], [], &cluster, &defaults());
    assert!(
        matches!(&fleet.outcomes[&key("team-a", "shop")], AppOutcome::AddressConflict { holder, .. } if *holder == key("team-c", "old"))
    );
}
