//! Unit tests of the L7/L4 features: routing rules, TLS from Secrets, iRules, SNAT, source
//! ranges, TransportServers and listener conflicts.

use std::collections::BTreeMap;

use crate::model::ServiceView;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use serde_json::json;

use super::*;
use crate::crd::{TransportServer, VirtualServer};

fn defaults() -> ModelDefaults {
    ModelDefaults {
        partition: "k8s".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    }
}

fn object<T: serde::de::DeserializeOwned>(kind: &str, name: &str, created_second: u32, spec: serde_json::Value) -> T {
    serde_json::from_value(json!({
        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": format!("2026-01-01T00:00:{created_second:02}Z")},
        "spec": spec,
    }))
    .expect("valid object")
}

fn vs(name: &str, created: u32, extra: serde_json::Value) -> VirtualServer {
    let mut spec = json!({
        "virtualAddress": "10.1.10.80",
        "port": 443,
        "pools": [
            {"name": "web", "service": "web", "servicePort": 80},
            {"name": "api", "service": "web", "servicePort": 80},
        ],
    });
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    object("VirtualServer", name, created, spec)
}

fn ts(name: &str, created: u32, protocol: &str, port: i32) -> TransportServer {
    object(
        "TransportServer",
        name,
        created,
        json!({"virtualAddress": "10.1.10.80", "port": port, "protocol": protocol,
               "pool": {"name": "dns", "service": "web", "servicePort": 80}}),
    )
}

fn tls_secret(name: &str, crt: &str, key: &str) -> Secret {
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            ..Default::default()
        },
        type_: Some(tls::TLS_SECRET_TYPE.into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
            ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Default::default()
    }
}

fn cluster() -> ClusterObjects {
    let mut cluster = ClusterObjects::default();
    let service: ServiceView = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
    }))
    .expect("service");
    cluster.add_service(service);
    cluster
}

fn routes_of(app: &DesiredApplication) -> &[DesiredRoute] {
    match &app.frontend {
        Frontend::Http { routes, .. } | Frontend::TlsPassthrough { routes } => routes,
        other => panic!("no routes in {other:?}"),
    }
}

#[test]
fn the_most_specific_rule_comes_first_whatever_the_spec_order() {
    let spec = vs(
        "shop",
        1,
        json!({"rules": [
            {"path": "/static/", "pool": "web"},
            {"host": "*.example.com", "pool": "web"},
            {"host": "*.eu.example.com", "pool": "api"},
            {"host": "Shop.Example.com", "path": "/api", "pool": "api"},
            {"host": "shop.example.com", "path": "/api/v1", "pool": "web"},
            {"host": "shop.example.com", "path": "/login", "pathType": "Exact", "pool": "web"},
        ]}),
    );
    let built = build_application(&spec, &cluster(), &defaults()).expect("valid");
    let order: Vec<(Option<HostMatch>, Option<PathMatch>)> =
        routes_of(&built.application).iter().map(|r| (r.host.clone(), r.path.clone())).collect();
    let exact = || Some(HostMatch::Exact("shop.example.com".into()));
    assert_eq!(
        order,
        vec![
            (exact(), Some(PathMatch::Exact("/login".into()))),
            (exact(), Some(PathMatch::Prefix("/api/v1".into()))),
            (exact(), Some(PathMatch::Prefix("/api".into()))),
            (Some(HostMatch::Suffix(".eu.example.com".into())), None),
            (Some(HostMatch::Suffix(".example.com".into())), None),
            (None, Some(PathMatch::Prefix("/static".into()))),
        ]
    );
}

#[test]
fn bad_rules_are_refused_with_their_index() {
    let cases = [
        (json!([{"host": "a.example.com", "pool": "nope"}]), "spec.rules[0]", "not one of spec.pools"),
        (json!([{"host": "bad host", "pool": "web"}]), "spec.rules[0]", "not a DNS name"),
        (json!([{"path": "/", "pool": "web"}]), "spec.rules[0]", "defaultPool"),
        (
            json!([{"path": "/a", "pool": "web"}, {"path": "/a/", "pool": "api"}]),
            "spec.rules[1]",
            "same requests as spec.rules[0]",
        ),
        (json!([{"path": "no-slash", "pool": "web"}]), "spec.rules[0]", "must start with '/'"),
    ];
    for (rules, field, reason) in cases {
        let err =
            build_application(&vs("shop", 1, json!({"rules": rules})), &cluster(), &defaults()).expect_err(reason);
        let text = err.to_string();
        assert!(text.contains(field) && text.contains(reason), "{text}");
    }
}

#[test]
fn a_missing_tls_secret_blocks_only_its_own_virtual_server() {
    let with_tls = vs("secure", 1, json!({"tls": {"secretName": "shop-tls"}}));
    let mut other = vs("plain", 2, json!({"port": 80}));
    other.spec.virtual_address = "10.1.10.81".into();
    let fleet = build_fleet([&with_tls, &other], std::iter::empty(), &cluster(), &defaults());
    let id = |name: &str| SourceId {
        kind: SourceKind::VirtualServer,
        key: ObjectKey { namespace: "shop".into(), name: name.into() },
    };
    match &fleet.outcomes[&id("secure")] {
        AppOutcome::Blocked { partition, unresolved } => {
            assert_eq!(partition, "k8s");
            assert_eq!(unresolved[0].reason(), "SecretNotFound");
            assert!(unresolved[0].to_string().contains("shop-tls"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(fleet.outcomes[&id("plain")], AppOutcome::Included { .. }));
    let names: Vec<&str> = fleet.partitions["k8s"].iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["shop_plain"]);
}

#[test]
fn a_malformed_tls_secret_is_reported_and_a_good_one_is_used() {
    let spec = vs("secure", 1, json!({"tls": {"secretName": "shop-tls", "httpRedirect": false}}));
    let mut bad = cluster();
    bad.add_secret(tls_secret("shop-tls", "not a certificate", "nor a key"));
    let fleet = build_fleet([&spec], std::iter::empty(), &bad, &defaults());
    let outcome = fleet.outcomes.values().next().expect("outcome");
    assert!(
        matches!(outcome, AppOutcome::Blocked { unresolved, .. } if unresolved[0].reason() == "InvalidSecret"),
        "{outcome:?}"
    );

    let generated = rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("cert");
    let mut good = cluster();
    good.add_secret(tls_secret("shop-tls", &generated.cert.pem(), &generated.signing_key.serialize_pem()));
    let built = build_application(&spec, &good, &defaults()).expect("valid");
    assert!(built.unresolved.is_empty(), "{:?}", built.unresolved);
    let Frontend::Http { tls: Some(tls), .. } = &built.application.frontend else { panic!("no TLS") };
    assert!(matches!(&tls.server, ServerTls::Certificate { chain, .. } if chain.is_empty()));
    assert!(!tls.http_redirect);
    assert_eq!(built.application.listeners().len(), 1, "no port-80 listener without the redirect");
}

#[test]
fn http_port_moves_the_plain_http_listener() {
    let profile = "/Common/clientssl";
    let redirect = vs("shop", 1, json!({"tls": {"clientSslProfile": profile, "httpPort": 8080}}));
    let built = build_application(&redirect, &cluster(), &defaults()).expect("valid");
    let ports: Vec<u16> = built.application.listeners().iter().map(|listener| listener.port).collect();
    assert_eq!(ports, [443, 8080]);
    assert!(built.application.redirects_http_itself() && !built.application.serves_plain_http());

    let served = vs(
        "shop",
        1,
        json!({"tls": {"clientSslProfile": profile, "httpRedirect": false, "allowHttp": true, "httpPort": 8000}}),
    );
    let built = build_application(&served, &cluster(), &defaults()).expect("valid");
    assert!(built.application.serves_plain_http() && !built.application.redirects_http_itself());
    assert_eq!(built.application.plain_http_port(), 8000);

    let default_port = vs("shop", 1, json!({"tls": {"clientSslProfile": profile}}));
    let built = build_application(&default_port, &cluster(), &defaults()).expect("valid");
    assert!(!built.application.redirects_http_itself(), "port 80 is AS3's redirect80");

    let on_https_port = vs("shop", 1, json!({"tls": {"clientSslProfile": profile, "httpPort": 443}}));
    let err = build_application(&on_https_port, &cluster(), &defaults()).expect_err("same port");
    assert!(err.to_string().contains("httpPort 443 is the HTTPS port"), "{err}");
    let unused = vs("shop", 1, json!({"tls": {"clientSslProfile": profile, "httpRedirect": false, "httpPort": 8080}}));
    let err = build_application(&unused, &cluster(), &defaults()).expect_err("nothing listens");
    assert!(err.to_string().contains("httpRedirect or allowHttp"), "{err}");
}

#[test]
fn transport_servers_offload_tls_on_tcp_only() {
    let with_tls = |protocol: &str, tls: serde_json::Value, extra: serde_json::Value| {
        let mut spec = ts("db", 1, protocol, 5432);
        spec.spec.tls = Some(serde_json::from_value(tls).expect("tls"));
        if let Some(profiles) = extra.get("profiles") {
            spec.spec.profiles = Some(serde_json::from_value(profiles.clone()).expect("profiles"));
        }
        spec
    };
    // A missing Secret holds the object back, named by its field (never served without TLS).
    let secret = with_tls("tcp", json!({"secretName": "db-tls"}), json!({}));
    let built = build_transport_application(&secret, &cluster(), &defaults()).expect("valid");
    assert!(
        matches!(built.unresolved.as_slice(), [UnresolvedRef::SecretNotFound { field: "spec.tls.secretName", .. }]),
        "{:?}",
        built.unresolved
    );
    let generated = rcgen::generate_simple_self_signed(vec!["db.example.com".into()]).expect("cert");
    let mut good = cluster();
    good.add_secret(tls_secret("db-tls", &generated.cert.pem(), &generated.signing_key.serialize_pem()));
    let built = build_transport_application(&secret, &good, &defaults()).expect("valid");
    assert!(built.unresolved.is_empty(), "{:?}", built.unresolved);
    let Frontend::Tcp { tls: Some(tls) } = &built.application.frontend else { panic!("no TLS") };
    assert!(matches!(tls.server, ServerTls::Certificate { .. }) && tls.backend.is_none() && !tls.http_redirect);
    assert_eq!(built.application.listeners().len(), 1, "no plain HTTP listener");

    let reencrypt = with_tls(
        "tcp",
        json!({"mode": "reencrypt", "clientSslProfile": "/Common/clientssl", "serverSslProfile": "/Common/serverssl"}),
        json!({}),
    );
    let built = build_transport_application(&reencrypt, &cluster(), &defaults()).expect("valid");
    let Frontend::Tcp { tls: Some(tls) } = &built.application.frontend else { panic!("no TLS") };
    assert_eq!(tls.backend, Some(BackendTls::Profile("/Common/serverssl".into())));

    let udp = with_tls("udp", json!({"clientSslProfile": "/Common/clientssl"}), json!({}));
    let err = build_transport_application(&udp, &cluster(), &defaults()).expect_err("udp");
    assert!(err.to_string().contains("TLS offload is for TCP"), "{err}");
    let fast = with_tls(
        "tcp",
        json!({"clientSslProfile": "/Common/clientssl"}),
        json!({"profiles": {"fastL4": "/Common/fastL4"}}),
    );
    let err = build_transport_application(&fast, &cluster(), &defaults()).expect_err("fastL4");
    assert!(err.to_string().contains("FastL4 forwards packets without decrypting"), "{err}");
}

#[test]
fn rule_persistence_is_resolved_per_rule_and_refused_with_passthrough() {
    let rules = json!([
        {"host": "a.example.com", "pool": "web", "persistence": {"method": "cookie", "timeout": 90061}},
        {"host": "b.example.com", "pool": "api"},
    ]);
    let built =
        build_application(&vs("shop", 1, json!({"port": 80, "rules": rules})), &cluster(), &defaults()).expect("valid");
    let routes = routes_of(&built.application);
    assert_eq!(
        routes[0].persistence,
        Some(RoutePersistence::Cookie { name: "BIGipServer_shop_shop_web".into(), expiry: "1d01:01:01".into() })
    );
    assert_eq!(routes[1].persistence, None, "the VirtualServer's persistence applies");
    let passthrough = vs(
        "pt",
        1,
        json!({"tls": {"mode": "passthrough"},
               "rules": [{"host": "a.example.com", "pool": "web", "persistence": {"method": "source-address"}}]}),
    );
    let err = build_application(&passthrough, &cluster(), &defaults()).expect_err("passthrough");
    assert!(err.to_string().contains("spec.rules[0]") && err.to_string().contains("persistence"), "{err}");
}

#[test]
fn passthrough_allows_host_rules_only() {
    let ok = vs("pt", 1, json!({"tls": {"mode": "passthrough"}, "rules": [{"host": "a.example.com", "pool": "api"}]}));
    let built = build_application(&ok, &cluster(), &defaults()).expect("valid");
    assert!(matches!(built.application.frontend, Frontend::TlsPassthrough { .. }));
    let with_path = vs("pt", 1, json!({"tls": {"mode": "passthrough"}, "rules": [{"path": "/a", "pool": "api"}]}));
    let err = build_application(&with_path, &cluster(), &defaults()).expect_err("path");
    assert!(err.to_string().contains("only host rules"), "{err}");
    let with_xff = vs("pt", 1, json!({"tls": {"mode": "passthrough"}, "xForwardedFor": true}));
    let err = build_application(&with_xff, &cluster(), &defaults()).expect_err("xForwardedFor");
    assert!(err.to_string().contains("xForwardedFor"), "{err}");
}

#[test]
fn snat_irules_and_source_ranges_are_validated_and_normalised() {
    let spec = vs(
        "shop",
        1,
        json!({
            "snatPool": "/Common/snat",
            "iRules": [{"bigip": "/Common/rule"}, {"name": "log", "text": "when HTTP_REQUEST {}"}],
            "allowSourceRanges": ["192.168.1.7/24", "10.0.0.0/8", "192.168.1.0/24"],
        }),
    );
    let app = build_application(&spec, &cluster(), &defaults()).expect("valid").application;
    assert_eq!(app.snat, DesiredSnat::Pool("/Common/snat".into()));
    assert_eq!(app.irules.len(), 2);
    let ranges: Vec<String> = app.source_ranges.iter().map(ToString::to_string).collect();
    assert_eq!(ranges, ["10.0.0.0/8", "192.168.1.0/24"]);

    let bad = [
        (json!({"snatPool": "Common/snat"}), "not a full BIG-IP path"),
        (json!({"wafPolicy": ""}), "spec.wafPolicy"),
        (json!({"wafPolicy": "linux-high"}), "not a full BIG-IP path"),
        (json!({"snat": "none", "snatPool": "/Common/snat"}), "cannot be combined"),
        (json!({"iRules": [{"name": "a", "text": "x"}, {"name": "a", "text": "y"}]}), "spec.iRules[1]"),
        (json!({"iRules": [{"bigip": "/Common/x", "name": "a", "text": "y"}]}), "spec.iRules[0]"),
        (json!({"allowSourceRanges": ["10.0.0.0/33"]}), "spec.allowSourceRanges[0]"),
        (json!({"persistence": "destination-address"}), "TransportServers"),
        (
            json!({"pools": [{"name": "web", "service": "web", "servicePort": 80, "monitors": [{"type": "icmp", "send": "x"}]}]}),
            "icmp",
        ),
    ];
    for (extra, expected) in bad {
        let err = build_application(&vs("shop", 1, extra), &cluster(), &defaults()).expect_err(expected);
        assert!(err.to_string().contains(expected), "{err} lacks {expected:?}");
    }
}

#[test]
fn transport_servers_share_an_address_across_protocols_but_not_within_one() {
    let tcp = ts("dns-tcp", 1, "tcp", 53);
    let udp = ts("dns-udp", 2, "udp", 53);
    let late_udp = ts("late", 3, "udp", 53);
    let fleet = build_fleet(std::iter::empty(), [&late_udp, &udp, &tcp], &cluster(), &defaults());
    let id = |name: &str| SourceId {
        kind: SourceKind::TransportServer,
        key: ObjectKey { namespace: "shop".into(), name: name.into() },
    };
    assert!(matches!(fleet.outcomes[&id("dns-tcp")], AppOutcome::Included { .. }));
    assert!(matches!(fleet.outcomes[&id("dns-udp")], AppOutcome::Included { .. }));
    assert!(
        matches!(&fleet.outcomes[&id("late")], AppOutcome::AddressConflict { holder, listener } if *holder == id("dns-udp") && listener.protocol == ListenerProtocol::Udp),
        "{:?}",
        fleet.outcomes[&id("late")]
    );
    let names: Vec<&str> = fleet.partitions["k8s"].iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["shop_ts_dns-tcp", "shop_ts_dns-udp"]);
    let cookie: TransportServer = object(
        "TransportServer",
        "c",
        1,
        json!({"virtualAddress": "10.1.10.80", "port": 5, "persistence": "cookie", "pool": {"name": "p", "service": "web", "servicePort": 80}}),
    );
    let err = build_transport_application(&cookie, &cluster(), &defaults()).expect_err("cookie");
    assert!(err.to_string().contains("persistence") && err.to_string().contains("cookie"), "{err}");
}

#[test]
fn an_https_redirect_claims_port_80_against_newer_objects_of_either_kind() {
    let generated = rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("cert");
    let mut with_secret = cluster();
    with_secret.add_secret(tls_secret("shop-tls", &generated.cert.pem(), &generated.signing_key.serialize_pem()));
    let https = vs("https", 1, json!({"tls": {"secretName": "shop-tls"}}));
    let http = vs("http", 2, json!({"port": 80}));
    let tcp80 = ts("tcp80", 3, "tcp", 80);
    let udp80 = ts("udp80", 4, "udp", 80);
    let fleet = build_fleet([&http, &https], [&tcp80, &udp80], &with_secret, &defaults());
    let outcome = |kind, name: &str| {
        &fleet.outcomes[&SourceId { kind, key: ObjectKey { namespace: "shop".into(), name: name.into() } }]
    };
    assert!(matches!(outcome(SourceKind::VirtualServer, "https"), AppOutcome::Included { .. }));
    for (kind, name) in [(SourceKind::VirtualServer, "http"), (SourceKind::TransportServer, "tcp80")] {
        assert!(
            matches!(outcome(kind, name), AppOutcome::AddressConflict { listener, .. } if listener.port == 80),
            "{name}: {:?}",
            outcome(kind, name)
        );
    }
    assert!(matches!(outcome(SourceKind::TransportServer, "udp80"), AppOutcome::Included { .. }));
}

#[test]
fn rewrites_headers_and_redirects_are_checked_and_never_carry_tcl() {
    let refused = [
        (json!({"rules": [{"host": "a.example.com", "pool": "web", "rewritePath": "/x"}]}), "needs a path"),
        (json!({"rules": [{"path": "/a", "pool": "web", "rewritePath": "/[exec]"}]}), "rewritePath"),
        (json!({"rules": [{"path": "/a", "pool": "web", "rewriteHost": "*.example.com"}]}), "rewriteHost"),
        (
            json!({"rules": [{"path": "/a", "pool": "web", "requestHeaders": [{"name": "X", "value": "tcl:[HTTP::host]"}]}]}),
            "not start with tcl:",
        ),
        (
            json!({"rules": [{"path": "/a", "pool": "web", "responseHeaders": [{"name": "X", "value": "a"}, {"name": "x", "value": "b"}]}]}),
            "set twice",
        ),
        (json!({"appRoot": "/"}), "appRoot"),
        (json!({"redirects": [{"path": "/a", "location": "/b [c]"}]}), "location"),
        (json!({"redirects": [{"path": "/a", "location": "/b", "code": 200}]}), "code 200"),
    ];
    for (extra, reason) in refused {
        let err = build_application(&vs("shop", 1, extra.clone()), &cluster(), &defaults()).expect_err(reason);
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
    let passthrough = json!({"tls": {"mode": "passthrough"}, "appRoot": "/shop"});
    let err = build_application(&vs("shop", 1, passthrough), &cluster(), &defaults()).expect_err("passthrough");
    assert!(err.to_string().contains("redirects and appRoot need HTTP"), "{err}");

    let built = build_application(
        &vs(
            "shop",
            1,
            json!({"appRoot": "/shop", "rules": [{"path": "/api/", "pool": "api", "rewritePath": "/", "rewriteHost": "api:8080",
                   "requestHeaders": [{"name": "X-Team", "value": "shop"}]}]}),
        ),
        &cluster(),
        &defaults(),
    )
    .expect("valid");
    let Frontend::Http { routes, redirects, .. } = &built.application.frontend else { panic!("http") };
    assert_eq!(routes[0].path, Some(PathMatch::Prefix("/api".into())));
    assert_eq!(routes[0].rewrite.path.as_deref(), Some("/"));
    assert_eq!(routes[0].rewrite.host.as_deref(), Some("api:8080"));
    assert_eq!(routes[0].rewrite.request_headers, [("X-Team".to_string(), "shop".to_string())]);
    assert_eq!(redirects[0].location, "/shop");
    assert_eq!(redirects[0].path, Some(PathMatch::Exact("/".into())));
    // A prefix rewritten to `/`: `/api/v1` becomes `/v1` (one slash).
    let rendered = crate::as3::render_application(&built.application);
    let below = &rendered["routes"]["rules"][2];
    assert_eq!(below["name"], "route_0_below");
    assert_eq!(below["actions"][1]["replace"]["path"], "tcl:/[string range [HTTP::path] 5 end]");
}

#[test]
fn profiles_are_refused_where_the_bigip_would_refuse_them() {
    let refused = [
        (json!({"profiles": {"http2": "/Common/http2"}}), "profiles.http2"),
        (json!({"profiles": {"http": "/Common/http"}, "xForwardedFor": true}), "xForwardedFor is a setting"),
        (json!({"profiles": {"udp": "/Common/udp"}}), "profiles.udp"),
        (json!({"profiles": {"http": "/Common/http"}, "tls": {"mode": "passthrough"}}), "passthrough"),
        (json!({"profiles": {"persistence": "/Common/cookie"}, "persistence": "cookie"}), "replaces spec.persistence"),
        (json!({"profiles": {"tcp": "/Common/tcp", "tcpClient": "/Common/tcp"}}), "not both"),
        (json!({"profiles": {"oneConnect": "oneconnect"}}), "full BIG-IP path"),
        (json!({"allowVlans": ["external"]}), "allowVlans"),
    ];
    for (extra, reason) in refused {
        let err = build_application(&vs("shop", 1, extra.clone()), &cluster(), &defaults()).expect_err(reason);
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
    let mut udp = ts("dns", 1, "udp", 53);
    udp.spec.profiles = Some(crate::crd::Profiles { tcp: Some("/Common/tcp".into()), ..Default::default() });
    let err = build_transport_application(&udp, &cluster(), &defaults()).expect_err("tcp on udp");
    assert!(err.to_string().contains("profiles.udp, not TCP"), "{err}");
    udp.spec.profiles =
        Some(crate::crd::Profiles { web_socket: Some("/Common/websocket".into()), ..Default::default() });
    let err = build_transport_application(&udp, &cluster(), &defaults()).expect_err("http on l4");
    assert!(err.to_string().contains("HTTP profiles are for VirtualServers"), "{err}");
    udp.spec.profiles = Some(crate::crd::Profiles {
        fast_l4: Some("/Common/fastL4".into()),
        udp: Some("/Common/udp".into()),
        ..Default::default()
    });
    let err = build_transport_application(&udp, &cluster(), &defaults()).expect_err("fastL4 with udp");
    assert!(err.to_string().contains("FastL4 replaces the TCP/UDP proxy"), "{err}");
    let on_vs = vs("shop", 1, json!({"profiles": {"fastL4": "/Common/fastL4"}}));
    let err = build_application(&on_vs, &cluster(), &defaults()).expect_err("fastL4 on a VirtualServer");
    assert!(err.to_string().contains("for TransportServers"), "{err}");
}

#[test]
fn tls_options_are_checked_and_a_missing_client_ca_blocks_the_object() {
    let generated = rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("cert");
    let mut with_secret = cluster();
    with_secret.add_secret(tls_secret("shop-tls", &generated.cert.pem(), &generated.signing_key.serialize_pem()));
    let build =
        |tls: serde_json::Value| build_application(&vs("shop", 1, json!({"tls": tls})), &with_secret, &defaults());
    for (tls, reason) in [
        (json!({"secretName": "shop-tls", "maxVersion": "1.3"}), "needs a cipher group"),
        (json!({"secretName": "shop-tls", "maxVersion": "1.3", "ciphers": "DEFAULT"}), "needs a cipher group"),
        (json!({"secretName": "shop-tls", "minVersion": "1.3", "maxVersion": "1.2"}), "newer than maxVersion"),
        (json!({"secretName": "shop-tls", "ciphers": "A", "cipherGroup": "/Common/f5-secure"}), "not both"),
        (json!({"secretName": "shop-tls", "ciphers": "DEFAULT; rm"}), "characters a cipher string does not"),
        (json!({"secretName": "shop-tls", "allowHttp": true}), "set httpRedirect: false"),
    ] {
        let err = build(tls.clone()).expect_err(reason);
        assert!(err.to_string().contains(reason), "{tls}: {err}");
    }
    // Only a minimum: the versions up to the BIG-IP's default maximum, 1.2.
    let built = build(json!({"secretName": "shop-tls", "minVersion": "1.1"})).expect("valid");
    let Frontend::Http { tls: Some(tls), .. } = &built.application.frontend else { panic!("no TLS") };
    assert_eq!(tls.options.versions, Some([false, true, true, false]));
    // The client CA Secret is missing: reported, and nothing is programmed without it.
    let built =
        build(json!({"secretName": "shop-tls", "clientCertificates": {"caSecretName": "clients"}})).expect("valid");
    assert!(matches!(&built.application.frontend, Frontend::Http { tls: None, .. }));
    assert_eq!(built.unresolved.len(), 1);
    assert!(built.unresolved[0].blocks_programming());
    assert!(built.unresolved[0].to_string().contains("spec.tls.clientCertificates.caSecretName"));
}

#[test]
fn weighted_backends_are_member_ratios_and_bad_weights_are_refused() {
    let member = |last: u8| PoolMember {
        address: format!("10.0.0.{last}").parse().expect("ip"),
        port: 80,
        state: MemberState::Active,
        ratio: 0,
    };
    // 3 members share 90, 1 member has 10: 30 vs 10 per member → 100 and 33.
    let members = application::weighted_members(vec![
        (90, vec![member(1), member(2), member(3)]),
        (10, vec![member(4)]),
        (0, vec![member(5)]),
    ]);
    let ratios: Vec<(u8, u8)> = members
        .iter()
        .map(|m| (m.address.to_string().split('.').next_back().and_then(|o| o.parse().ok()).unwrap_or(0), m.ratio))
        .collect();
    assert_eq!(ratios, [(1, 100), (2, 100), (3, 100), (4, 33)]);
    // A Service with no members yet takes no share and breaks nothing.
    let members = application::weighted_members(vec![(50, vec![member(1)]), (50, Vec::new())]);
    assert_eq!(members.len(), 1);

    let pools = |extra: serde_json::Value| {
        let mut pool = json!({"name": "web", "service": "web", "servicePort": 80,
                              "alternateBackends": [{"service": "other", "servicePort": 80, "weight": 10}]});
        for (k, v) in extra.as_object().expect("object") {
            pool[k] = v.clone();
        }
        json!({"pools": [pool]})
    };
    for (extra, reason) in [
        (json!({"loadBalancingMode": "least-connections-member"}), "ratio-member"),
        (
            json!({"weight": 0, "alternateBackends": [{"service": "other", "servicePort": 80, "weight": 0}]}),
            "every weight is 0",
        ),
        (json!({"alternateBackends": [{"service": "web", "servicePort": 80, "weight": 5}]}), "named twice"),
    ] {
        let err = build_application(&vs("shop", 1, pools(extra.clone())), &cluster(), &defaults()).expect_err(reason);
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
    let built = build_application(&vs("shop", 1, pools(json!({}))), &cluster(), &defaults()).expect("valid");
    assert_eq!(built.application.pools[0].load_balancing_mode, LoadBalancingMode::RatioMember);
    assert!(built.unresolved.iter().any(|u| u.to_string().contains("\"other\" not found")), "{:?}", built.unresolved);
}

#[test]
fn pool_options_are_checked() {
    let with_pool = |extra: serde_json::Value| {
        let mut pool = json!({"name": "web", "service": "web", "servicePort": 80});
        for (k, v) in extra.as_object().expect("object") {
            pool[k] = v.clone();
        }
        vs("shop", 1, json!({"pools": [pool]}))
    };
    for (extra, reason) in [
        (json!({"reselectTries": 2}), "goes with serviceDownAction: reselect"),
        (json!({"staticMembers": [{"address": "2001:db8::1", "port": 80}]}), "not of the virtual address's family"),
        (json!({"staticMembers": [{"address": "10.0.0.1", "port": 0}]}), "outside 1-65535"),
        (json!({"monitors": [{"type": "icmp", "targetPort": 80}]}), "probe no port"),
        (json!({"monitors": [{"type": "http", "sslProfile": "/Common/serverssl"}]}), "for https monitors"),
        (json!({"bigipMonitors": ["http"]}), "full BIG-IP path"),
    ] {
        let err = build_application(&with_pool(extra.clone()), &cluster(), &defaults()).expect_err(reason);
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
    let built = build_application(
        &with_pool(json!({"staticMembers": [{"address": "10.0.0.9", "port": 8080}], "serviceDownAction": "reset"})),
        &cluster(),
        &defaults(),
    )
    .expect("valid");
    let pool = &built.application.pools[0];
    assert!(pool.members.iter().any(|m| m.address.to_string() == "10.0.0.9" && m.port == 8080));
    assert_eq!(pool.options.service_down_action, Some("reset"));
}

#[test]
fn pool_only_objects_claim_nothing_and_refuse_virtual_server_fields() {
    let pool_only = |name: &str, created: u32| {
        let mut vs = vs(name, created, json!({}));
        vs.spec.virtual_address = String::new();
        vs.spec.port = 0;
        vs
    };
    let (a, b) = (pool_only("a", 1), pool_only("b", 2));
    let fleet = build_fleet([&a, &b], std::iter::empty(), &cluster(), &defaults());
    assert!(fleet.outcomes.values().all(|o| matches!(o, AppOutcome::Included { .. })), "{:?}", fleet.outcomes);
    assert!(fleet.partitions["k8s"].iter().all(|app| app.pools_only && app.claims().is_empty()));
    let mut with_rules = pool_only("c", 3);
    with_rules.spec.rules =
        vec![crate::crd::RoutingRule { path: Some("/a".into()), pool: "web".into(), ..Default::default() }];
    let err = build_application(&with_rules, &cluster(), &defaults()).expect_err("rules need a virtual server");
    assert!(err.to_string().contains("spec.rules") && err.to_string().contains("no virtual address"), "{err}");
    let mut with_port = pool_only("d", 4);
    with_port.spec.port = 80;
    let err = build_application(&with_port, &cluster(), &defaults()).expect_err("port without an address");
    assert!(err.to_string().contains("spec.port"), "{err}");
}

#[test]
fn a_pools_node_label_selector_narrows_its_nodes_and_adds_to_the_operators() {
    let mut cluster = cluster();
    for (name, ip, zone, tier) in
        [("n1", "192.168.0.1", "a", "web"), ("n2", "192.168.0.2", "b", "web"), ("n3", "192.168.0.3", "a", "db")]
    {
        cluster.add_node(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"zone": zone, "tier": tier}},
                "status": {"addresses": [{"type": "InternalIP", "address": ip}], "conditions": [{"type": "Ready", "status": "True"}]},
            }))
            .expect("node"),
        );
    }
    let spec = json!({"pools": [{"name": "web", "service": "web", "servicePort": 80, "nodeLabelSelector": "zone=a"}]});
    let members = |defaults: &ModelDefaults| -> Vec<String> {
        let built = build_application(&vs("shop", 1, spec.clone()), &cluster, defaults).expect("valid");
        built.application.pools[0].members.iter().map(|m| m.address.to_string()).collect()
    };
    assert_eq!(members(&defaults()), ["192.168.0.1", "192.168.0.3"]);
    let operator = ModelDefaults { node_selector: Some("tier=web".parse().expect("selector")), ..defaults() };
    assert_eq!(members(&operator), ["192.168.0.1"], "both selectors must match");
    let bad =
        json!({"pools": [{"name": "web", "service": "web", "servicePort": 80, "nodeLabelSelector": "zone in (a"}]});
    let err = build_application(&vs("shop", 1, bad), &cluster, &defaults()).expect_err("bad selector");
    assert!(err.to_string().contains("nodeLabelSelector"), "{err}");
}

#[test]
fn route_domains_make_distinct_destinations_and_percent_zero_is_the_default() {
    let at =
        |name: &str, created: u32, address: &str| vs(name, created, json!({"virtualAddress": address, "port": 80}));
    let (a, b, c, d) = (
        at("a", 1, "10.1.10.80%2"),
        at("b", 2, "10.1.10.80%3"),
        at("c", 3, "10.1.10.80%2"),
        at("d", 4, "10.1.10.81%0"),
    );
    let e = at("e", 5, "10.1.10.81");
    let fleet = build_fleet([&a, &b, &c, &d, &e], std::iter::empty(), &cluster(), &defaults());
    let outcome = |name: &str| {
        &fleet.outcomes[&SourceId {
            kind: SourceKind::VirtualServer,
            key: ObjectKey { namespace: "shop".into(), name: name.into() },
        }]
    };
    assert!(matches!(outcome("a"), AppOutcome::Included { .. }));
    assert!(matches!(outcome("b"), AppOutcome::Included { .. }), "another route domain: {:?}", outcome("b"));
    assert!(
        matches!(outcome("c"), AppOutcome::AddressConflict { listener, .. } if listener.to_string() == "10.1.10.80%2:80 (tcp)"),
        "{:?}",
        outcome("c")
    );
    assert!(
        matches!(outcome("e"), AppOutcome::AddressConflict { .. }),
        "%0 is the default route domain: {:?}",
        outcome("e")
    );
    for bad in ["10.1.10.80%", "10.1.10.80%x", "10.1.10.80%70000"] {
        let err = build_application(&at("bad", 6, bad), &cluster(), &defaults()).expect_err(bad);
        assert!(err.to_string().contains("spec.virtualAddress"), "{bad}: {err}");
    }
}

#[test]
fn the_partition_default_route_domain_holds_addresses_without_one() {
    let in_rd2 = ModelDefaults { default_route_domain: 2, ..defaults() };
    let at =
        |name: &str, created: u32, address: &str| vs(name, created, json!({"virtualAddress": address, "port": 80}));
    // Without %: route domain 2, written out; %2 is the same destination, %3 another.
    let plain = build_application(&at("a", 1, "10.1.10.80"), &cluster(), &in_rd2).expect("valid");
    assert_eq!(plain.application.route_domain, Some(2));
    let fleet = build_fleet(
        [&at("a", 1, "10.1.10.80"), &at("b", 2, "10.1.10.80%2"), &at("c", 3, "10.1.10.80%3")],
        std::iter::empty(),
        &cluster(),
        &in_rd2,
    );
    let outcome = |name: &str| {
        &fleet.outcomes[&SourceId {
            kind: SourceKind::VirtualServer,
            key: ObjectKey { namespace: "shop".into(), name: name.into() },
        }]
    };
    assert!(matches!(outcome("a"), AppOutcome::Included { .. }));
    assert!(
        matches!(outcome("b"), AppOutcome::AddressConflict { listener, .. } if listener.to_string() == "10.1.10.80%2:80 (tcp)"),
        "{:?}",
        outcome("b")
    );
    assert!(matches!(outcome("c"), AppOutcome::Included { .. }), "{:?}", outcome("c"));
    // %0 would land in route domain 2 (AS3 drops it there): refused, naming the field.
    let err = build_application(&at("d", 4, "10.1.10.81%0"), &cluster(), &in_rd2).expect_err("%0");
    assert!(err.to_string().contains("spec.virtualAddress: 10.1.10.81%0: route domain 0"), "{err}");
    // TransportServers alike.
    let mut transport = ts("db", 5, "tcp", 5432);
    transport.spec.virtual_address = "10.1.10.82".into();
    let built = build_transport_application(&transport, &cluster(), &in_rd2).expect("valid");
    assert_eq!(built.application.route_domain, Some(2));
}

#[test]
fn a_bigip_default_pool_replaces_the_default_pool() {
    let built =
        build_application(&vs("shop", 1, json!({"bigipDefaultPool": "/Common/fallback"})), &cluster(), &defaults())
            .expect("valid");
    assert_eq!(built.application.default_pool, "/Common/fallback");
    let both = vs("shop", 1, json!({"bigipDefaultPool": "/Common/fallback", "defaultPool": "web"}));
    let err = build_application(&both, &cluster(), &defaults()).expect_err("both");
    assert!(err.to_string().contains("not both"), "{err}");
    let relative = vs("shop", 1, json!({"bigipDefaultPool": "fallback"}));
    let err = build_application(&relative, &cluster(), &defaults()).expect_err("not a path");
    assert!(err.to_string().contains("spec.bigipDefaultPool"), "{err}");
}

#[test]
fn ltm_policies_are_paths_and_need_http() {
    let built = build_application(
        &vs("shop", 1, json!({"ltmPolicies": ["/Common/a", "/Common/a", "/Common/b"]})),
        &cluster(),
        &defaults(),
    )
    .expect("valid");
    assert_eq!(built.application.profiles.ltm_policies, ["/Common/a", "/Common/b"]);
    let rendered = crate::as3::render_application(&built.application);
    assert_eq!(rendered["vs"]["policyEndpoint"], json!([{"bigip": "/Common/a"}, {"bigip": "/Common/b"}]));
    for (extra, reason) in [
        (json!({"ltmPolicies": ["a"]}), "full BIG-IP path"),
        (json!({"ltmPolicies": ["/Common/a"], "tls": {"mode": "passthrough"}}), "LTM policies need HTTP"),
    ] {
        let err = build_application(&vs("shop", 1, extra.clone()), &cluster(), &defaults()).expect_err(reason);
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
}
