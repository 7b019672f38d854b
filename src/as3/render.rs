//! Desired applications → AS3 Tenant, Application, Service, Pool and Monitor objects.
//!
//! Defaults that matter are written out explicitly (`updateMode`, `loadBalancingMode`, `snat`,
//! monitor `send`/`receive`, member `enable`), so that the declaration says what the BIG-IP
//! will do instead of relying on AS3's defaults, which change between AS3 versions.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::ownership::Ownership;
use crate::crd::{MonitorMatch, MonitorType};
use crate::model::{
    BackendTls, Ciphers, DesiredApplication, DesiredIRule, DesiredMonitor, DesiredPool, DesiredProfiles,
    DesiredRedirect, DesiredRoute, DesiredSnat, Frontend, HostMatch, MemberState, PathMatch, RoutePersistence,
    RouteRewrite, ServerTls, SourceKind, TcpProfiles, TlsOptions, TlsTermination,
};

/// The AS3 schema version the declarations are written for. 3.50 is the first AS3 with the
/// per-application API; every newer AS3 accepts it.
pub const DECLARATION_SCHEMA_VERSION: &str = "3.50.0";

/// Declaration id, shown by AS3 in its task and declaration history.
pub const DECLARATION_ID: &str = "bigip-operator";

/// Remark on every tenant and application, telling BIG-IP administrators who owns them.
pub const MANAGED_REMARK: &str = "managed by bigip-operator";

/// Name of the virtual server object inside each application.
pub const SERVICE_OBJECT_NAME: &str = "vs";

/// Name of a listener group's plain-HTTP virtual server (`httpTraffic: allow`).
pub const PLAIN_HTTP_SERVICE_OBJECT_NAME: &str = "vs_http";

/// The default http/https monitor request when a VirtualServer names none.
pub const DEFAULT_HTTP_SEND: &str = "GET / HTTP/1.0\r\n\r\n";

/// The BIG-IP's own default UDP monitor request.
pub const DEFAULT_UDP_SEND: &str = "default send string";

/// The AS3 object name of a pool.
pub fn pool_object_name(pool: &str) -> String {
    format!("pool_{pool}")
}

/// The AS3 object name of a pool's n-th monitor.
pub fn monitor_object_name(pool: &str, index: usize) -> String {
    format!("monitor_{pool}_{index}")
}

/// One partition's Tenant object, with its applications in name order, labelled with its owner.
pub fn render_tenant<A: AsRef<DesiredApplication>>(applications: &[A], owner: &Ownership) -> Value {
    let mut tenant = Map::new();
    tenant.insert("class".into(), json!("Tenant"));
    tenant.insert("label".into(), json!(owner.label()));
    tenant.insert("remark".into(), json!(MANAGED_REMARK));
    if owner.default_route_domain() != 0 {
        tenant.insert("defaultRouteDomain".into(), json!(owner.default_route_domain()));
    }
    let mut sorted: Vec<&DesiredApplication> = applications.iter().map(AsRef::as_ref).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for app in sorted {
        tenant.insert(app.name.clone(), render_application(app));
    }
    Value::Object(tenant)
}

/// The Tenant object that makes AS3 delete a partition's applications: a tenant with none.
pub fn render_empty_tenant() -> Value {
    json!({ "class": "Tenant" })
}

/// Names of the objects an application may hold besides its pools and monitors.
pub mod object_names {
    pub const ROUTING_POLICY: &str = "routes";
    pub const TLS_SERVER: &str = "tls_server";
    pub const TLS_CERTIFICATE: &str = "tls_certificate";
    pub const TLS_CLIENT: &str = "tls_client";
    pub const TLS_BACKEND_CA: &str = "tls_backend_ca";
    pub const TLS_CLIENT_CA: &str = "tls_client_ca";
    pub const HTTP_PROFILE: &str = "http_profile";
    pub const SOURCE_RANGES: &str = "source_ranges";
    pub const VIRTUAL_ADDRESS: &str = "virtual_address";
    /// The redirect of plain HTTP on a port other than 80 (user iRules are `irule_<name>`).
    pub const HTTPS_REDIRECT_IRULE: &str = "https_redirect";
}

/// The AS3 object name of an iRule declared with an application.
pub fn irule_object_name(name: &str) -> String {
    format!("irule_{}", name.replace('-', "_"))
}

/// One VirtualServer's or TransportServer's Application object.
pub fn render_application(app: &DesiredApplication) -> Value {
    use object_names::*;
    let mut objects = Map::new();
    objects.insert("class".into(), json!("Application"));
    objects.insert("template".into(), json!("generic"));
    let source = match app.kind {
        SourceKind::VirtualServer => app.source.to_string(),
        SourceKind::TransportServer => format!("ts {}", app.source),
    };
    objects.insert("remark".into(), json!(truncate_remark(&format!("{MANAGED_REMARK} {source}"))));

    let mut service = Map::new();
    let class = match &app.frontend {
        Frontend::Http { tls: Some(_), .. } => "Service_HTTPS",
        Frontend::Http { tls: None, .. } => "Service_HTTP",
        Frontend::TlsPassthrough { .. } | Frontend::Tcp { .. } => "Service_TCP",
        Frontend::Udp => "Service_UDP",
    };
    service.insert("class".into(), json!(class));
    // The route domain, when the address names one: `10.1.10.80%2` (AS3's f5ip format).
    let address_text = match app.route_domain {
        Some(domain) => format!("{}%{domain}", app.virtual_address),
        None => app.virtual_address.to_string(),
    };
    let address = match &app.address_options {
        Some(options) => {
            let mut object = json!({ "class": "Service_Address", "virtualAddress": address_text });
            if let Some(arp) = options.arp {
                object["arpEnabled"] = json!(arp);
            }
            if let Some(icmp) = options.icmp_echo {
                object["icmpEcho"] = json!(icmp.as3_name());
            }
            if let Some(route) = options.route_advertisement {
                object["routeAdvertisement"] = json!(route.as3_name());
            }
            objects.insert(VIRTUAL_ADDRESS.into(), object);
            json!({ "use": VIRTUAL_ADDRESS })
        }
        None => json!(address_text),
    };
    service.insert("virtualAddresses".into(), json!([address]));
    service.insert("virtualPort".into(), json!(app.port));
    // A listener group's virtual server has no default pool: requests no rule matches are
    // refused (the BIG-IP resets them).
    if app.default_pool.starts_with('/') {
        // An existing BIG-IP pool (`bigipDefaultPool`).
        service.insert("pool".into(), json!({ "bigip": app.default_pool }));
    } else if !app.default_pool.is_empty() {
        service.insert("pool".into(), json!(pool_object_name(&app.default_pool)));
    }
    service.insert(
        "snat".into(),
        match &app.snat {
            DesiredSnat::Automap => json!("auto"),
            DesiredSnat::None => json!("none"),
            DesiredSnat::Pool(path) => json!({ "bigip": path }),
        },
    );
    // Written out even when empty: AS3's default for HTTP services is cookie persistence and
    // for TCP services source-address persistence.
    service.insert("persistenceMethods".into(), json!(app.persistence.as3_name().into_iter().collect::<Vec<_>>()));
    if !app.irules.is_empty() {
        let references: Vec<Value> = app
            .irules
            .iter()
            .map(|rule| match rule {
                DesiredIRule::Existing(path) => json!({ "bigip": path }),
                DesiredIRule::Inline { name, text } => {
                    objects
                        .insert(irule_object_name(name), json!({ "class": "iRule", "expand": false, "iRule": text }));
                    json!(irule_object_name(name))
                }
            })
            .collect();
        service.insert("iRules".into(), Value::Array(references));
    }
    if !app.source_ranges.is_empty() {
        let ranges: Vec<String> = app.source_ranges.iter().map(ToString::to_string).collect();
        objects.insert(SOURCE_RANGES.into(), json!({ "class": "Net_Address_List", "addresses": ranges }));
        service.insert("sourceAddress".into(), json!({ "use": SOURCE_RANGES }));
    }
    match &app.frontend {
        Frontend::Http { routes, redirects, tls, x_forwarded_for, waf_policy } => {
            if !routes.is_empty() || !redirects.is_empty() {
                objects
                    .insert(ROUTING_POLICY.into(), render_routing_policy(redirects, routes, RouteEvent::HttpRequest));
                service.insert("policyEndpoint".into(), json!(ROUTING_POLICY));
            }
            if *x_forwarded_for {
                objects.insert(HTTP_PROFILE.into(), json!({ "class": "HTTP_Profile", "xForwardedFor": true }));
                service.insert("profileHTTP".into(), json!({ "use": HTTP_PROFILE }));
            }
            if let Some(path) = waf_policy {
                service.insert("policyWAF".into(), json!({ "bigip": path }));
            }
            if let Some(tls) = tls {
                render_tls(tls, &mut objects, &mut service);
                // AS3's own redirect listens on port 80 only; another HTTP port gets its own
                // Service_HTTP with a redirect iRule (below).
                service.insert("redirect80".into(), json!(tls.http_redirect && tls.http_port == 80));
            }
        }
        Frontend::TlsPassthrough { routes } => {
            if !routes.is_empty() {
                objects.insert(ROUTING_POLICY.into(), render_routing_policy(&[], routes, RouteEvent::TlsClientHello));
                service.insert("policyEndpoint".into(), json!(ROUTING_POLICY));
            }
            service.insert("profileTCP".into(), json!("normal"));
        }
        Frontend::Tcp { tls } => {
            service.insert("profileTCP".into(), json!("normal"));
            if let Some(tls) = tls {
                render_tls(tls, &mut objects, &mut service);
            }
        }
        Frontend::Udp => {
            service.insert("profileUDP".into(), json!("normal"));
        }
    }
    render_profiles(&app.profiles, &mut service);
    // Plain HTTP beside HTTPS: the same routes (allowHttp), or a redirect to HTTPS on a port
    // other than 80 (AS3's redirect80 covers 80).
    let redirects = app.redirects_http_itself();
    if app.serves_plain_http() || redirects {
        let copied: &[&str] = if redirects {
            &["virtualAddresses", "snat"]
        } else {
            &["virtualAddresses", "snat", "persistenceMethods", "policyEndpoint"]
        };
        let mut plain = Map::new();
        plain.insert("class".into(), json!("Service_HTTP"));
        for key in copied {
            if let Some(value) = service.get(*key) {
                plain.insert((*key).into(), value.clone());
            }
        }
        plain.insert("virtualPort".into(), json!(app.plain_http_port()));
        if redirects {
            objects.insert(
                HTTPS_REDIRECT_IRULE.into(),
                json!({ "class": "iRule", "expand": false, "iRule": https_redirect_irule(app.port) }),
            );
            plain.insert("persistenceMethods".into(), json!([]));
            plain.insert("iRules".into(), json!([HTTPS_REDIRECT_IRULE]));
        }
        objects.insert(PLAIN_HTTP_SERVICE_OBJECT_NAME.into(), Value::Object(plain));
    }
    // A pool-only application has no virtual server (one managed outside Kubernetes uses its
    // pools).
    if !app.pools_only {
        objects.insert(SERVICE_OBJECT_NAME.into(), Value::Object(service));
    }
    for pool in &app.pools {
        objects.insert(pool_object_name(&pool.name), render_pool(pool));
        for (index, monitor) in pool.monitors.iter().enumerate() {
            objects.insert(monitor_object_name(&pool.name, index), render_monitor(monitor));
        }
    }
    Value::Object(objects)
}

/// Existing BIG-IP profiles, VLANs and mirroring: each replaces what the rendering above chose
/// for that property (a `bigip:` reference AS3 looks up on the BIG-IP).
fn render_profiles(profiles: &DesiredProfiles, service: &mut Map<String, Value>) {
    let reference = |path: &String| json!({ "bigip": path });
    let mut set = |key: &str, value: &Option<String>| {
        if let Some(path) = value {
            service.insert(key.into(), reference(path));
        }
    };
    set("profileHTTP", &profiles.http);
    set("profileHTTP2", &profiles.http2);
    set("profileUDP", &profiles.udp);
    set("profileMultiplex", &profiles.one_connect);
    set("profileHTTPCompression", &profiles.http_compression);
    set("profileWebSocket", &profiles.web_socket);
    set("profileAnalytics", &profiles.analytics);
    set("profileTrafficLog", &profiles.request_logging);
    match &profiles.tcp {
        None => {}
        Some(TcpProfiles::Both(path)) => {
            service.insert("profileTCP".into(), reference(path));
        }
        Some(TcpProfiles::Sides(client, server)) => {
            let side = |path: &Option<String>| path.as_ref().map_or_else(|| json!("normal"), reference);
            service.insert("profileTCP".into(), json!({ "ingress": side(client), "egress": side(server) }));
        }
    }
    if let Some(path) = &profiles.persistence {
        service.insert("persistenceMethods".into(), json!([reference(path)]));
    }
    if !profiles.allow_vlans.is_empty() {
        let vlans: Vec<Value> = profiles.allow_vlans.iter().map(reference).collect();
        service.insert("allowVlans".into(), Value::Array(vlans));
    }
    if profiles.mirroring {
        service.insert("mirroring".into(), json!("L4"));
    }
    if !profiles.ltm_policies.is_empty() {
        // After the virtual server's own routing policy, when it has one.
        let mut policies: Vec<Value> = service.remove("policyEndpoint").into_iter().collect();
        policies.extend(profiles.ltm_policies.iter().map(reference));
        service.insert("policyEndpoint".into(), Value::Array(policies));
    }
    if let Some(path) = &profiles.fast_l4 {
        // Packet-level forwarding: a Service_L4 of the same protocol instead of the proxy.
        let udp = service.remove("profileUDP").is_some();
        service.remove("profileTCP");
        service.insert("class".into(), json!("Service_L4"));
        service.insert("layer4".into(), json!(if udp { "udp" } else { "tcp" }));
        service.insert("profileL4".into(), reference(path));
    }
}

fn render_tls(tls: &TlsTermination, objects: &mut Map<String, Value>, service: &mut Map<String, Value>) {
    use object_names::*;
    match &tls.server {
        ServerTls::Certificate { certificate, chain, private_key } => {
            let mut object = json!({ "class": "Certificate", "certificate": certificate, "privateKey": private_key });
            if !chain.is_empty() {
                object["chainCA"] = json!(chain);
            }
            objects.insert(TLS_CERTIFICATE.into(), object);
            let mut server = json!({ "class": "TLS_Server", "certificates": [{ "certificate": TLS_CERTIFICATE }] });
            render_tls_options(&tls.options, &mut server, objects);
            objects.insert(TLS_SERVER.into(), server);
            service.insert("serverTLS".into(), json!(TLS_SERVER));
        }
        ServerTls::Profile(path) => {
            service.insert("serverTLS".into(), json!({ "bigip": path }));
        }
        ServerTls::Sni(certificates) => {
            // One Certificate object per distinct certificate; one TLS_Server entry per host
            // (matchToSNI), the first entry the default for unknown or absent server names.
            let mut objects_by_text: Vec<&str> = Vec::new();
            let mut entries = Vec::with_capacity(certificates.len());
            for sni in certificates {
                let index = match objects_by_text.iter().position(|text| *text == sni.certificate) {
                    Some(index) => index,
                    None => {
                        objects_by_text.push(&sni.certificate);
                        let index = objects_by_text.len() - 1;
                        let mut object = json!({ "class": "Certificate", "certificate": sni.certificate, "privateKey": sni.private_key });
                        if !sni.chain.is_empty() {
                            object["chainCA"] = json!(sni.chain);
                        }
                        objects.insert(format!("{TLS_CERTIFICATE}_{index}"), object);
                        index
                    }
                };
                let mut entry = json!({ "certificate": format!("{TLS_CERTIFICATE}_{index}") });
                match &sni.server_name {
                    Some(name) => entry["matchToSNI"] = json!(name),
                    None => entry["sniDefault"] = json!(true),
                }
                entries.push(entry);
            }
            objects.insert(TLS_SERVER.into(), json!({ "class": "TLS_Server", "certificates": entries }));
            service.insert("serverTLS".into(), json!(TLS_SERVER));
        }
    }
    match &tls.backend {
        None => {}
        Some(BackendTls::Unverified) => {
            objects.insert(TLS_CLIENT.into(), json!({ "class": "TLS_Client", "validateCertificate": false }));
            service.insert("clientTLS".into(), json!(TLS_CLIENT));
        }
        Some(BackendTls::Profile(path)) => {
            service.insert("clientTLS".into(), json!({ "bigip": path }));
        }
        Some(BackendTls::VerifiedBy { ca_bundle }) => {
            objects.insert(TLS_BACKEND_CA.into(), json!({ "class": "CA_Bundle", "bundle": ca_bundle }));
            objects.insert(
                TLS_CLIENT.into(),
                json!({ "class": "TLS_Client", "validateCertificate": true, "trustCA": { "use": TLS_BACKEND_CA } }),
            );
            service.insert("clientTLS".into(), json!(TLS_CLIENT));
        }
    }
}

/// The iRule redirecting plain HTTP to `https_port` of the same host, path and query.
fn https_redirect_irule(https_port: u16) -> String {
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    format!(
        "when HTTP_REQUEST {{\n    HTTP::redirect \"https://[getfield [HTTP::host] \":\" 1]{port}[HTTP::uri]\"\n}}\n"
    )
}

/// Versions, ciphers and client certificates on a TLS_Server (nothing for the defaults).
fn render_tls_options(options: &TlsOptions, server: &mut Value, objects: &mut Map<String, Value>) {
    if let Some(versions) = options.versions {
        for (key, allowed) in ["tls1_0Enabled", "tls1_1Enabled", "tls1_2Enabled", "tls1_3Enabled"].iter().zip(versions)
        {
            server[*key] = json!(allowed);
        }
    }
    match &options.ciphers {
        None => {}
        Some(Ciphers::String(text)) => server["ciphers"] = json!(text),
        Some(Ciphers::Group(path)) => server["cipherGroup"] = json!({ "bigip": path }),
    }
    if let Some(client) = &options.client_certificates {
        objects.insert(object_names::TLS_CLIENT_CA.into(), json!({ "class": "CA_Bundle", "bundle": client.ca_bundle }));
        server["authenticationMode"] = json!(if client.required { "require" } else { "request" });
        server["authenticationTrustCA"] = json!(object_names::TLS_CLIENT_CA);
    }
}

#[derive(Clone, Copy)]
enum RouteEvent {
    /// Match on the HTTP request (host header, URI path).
    HttpRequest,
    /// Match on the TLS ClientHello's SNI name.
    TlsClientHello,
}

/// The Endpoint_Policy of a virtual server's redirects and routes, first match wins (the model
/// orders each most specific first; redirects come before routes). A prefix match becomes two
/// rules: the path itself, and everything below it (`/api` matches `/api` and `/api/...` but
/// not `/apis`).
fn render_routing_policy(redirects: &[DesiredRedirect], routes: &[DesiredRoute], event: RouteEvent) -> Value {
    let mut rules = Vec::new();
    for (index, redirect) in redirects.iter().enumerate() {
        let action = json!({
            "type": "httpRedirect", "event": "request", "location": redirect.location, "code": redirect.code
        });
        for (suffix, conditions, _) in match_variants(redirect.host.as_ref(), redirect.path.as_ref(), event) {
            rules.push(json!({
                "name": format!("redirect_{index}{suffix}"),
                "conditions": conditions,
                "actions": [action.clone()],
            }));
        }
    }
    let action_event = match event {
        RouteEvent::HttpRequest => "request",
        RouteEvent::TlsClientHello => "ssl-client-hello",
    };
    for (index, route) in routes.iter().enumerate() {
        for (suffix, conditions, below) in match_variants(route.host.as_ref(), route.path.as_ref(), event) {
            let mut actions = rewrite_actions(&route.rewrite, route.path.as_ref(), below);
            if let Some(persistence) = &route.persistence {
                actions.push(persist_action(persistence));
            }
            actions.push(json!({
                "type": "forward",
                "event": action_event,
                "select": { "pool": { "use": pool_object_name(&route.pool) } }
            }));
            rules.push(
                json!({ "name": format!("route_{index}{suffix}"), "conditions": conditions, "actions": actions }),
            );
        }
    }
    json!({ "class": "Endpoint_Policy", "strategy": "first-match", "rules": rules })
}

/// The policy action of a route's own persistence (on the request, before the forward).
fn persist_action(persistence: &RoutePersistence) -> Value {
    let method = match persistence {
        RoutePersistence::Disabled => ("disable", json!({})),
        RoutePersistence::Cookie { name, expiry } => ("cookieInsert", json!({ "name": name, "expiry": expiry })),
        RoutePersistence::SourceAddress { netmask, timeout } => {
            ("sourceAddress", json!({ "netmask": netmask, "timeout": timeout }))
        }
        RoutePersistence::DestinationAddress { netmask, timeout } => {
            ("destinationAddress", json!({ "netmask": netmask, "timeout": timeout }))
        }
    };
    let mut action = json!({ "type": "persist", "event": "request" });
    action[method.0] = method.1;
    action
}

/// The policy rules one host and path match becomes: (name suffix, conditions, whether it is
/// the "below the prefix" half of a prefix match).
fn match_variants(
    host: Option<&HostMatch>,
    path: Option<&PathMatch>,
    event: RouteEvent,
) -> Vec<(&'static str, Vec<Value>, bool)> {
    let host_condition = host.map(|host| {
        let (operand, value) = match host {
            HostMatch::Exact(h) => ("equals", h.as_str()),
            HostMatch::Suffix(s) => ("ends-with", s.as_str()),
        };
        match event {
            RouteEvent::HttpRequest => {
                json!({ "type": "httpHost", "event": "request", "host": { "operand": operand, "values": [value] } })
            }
            RouteEvent::TlsClientHello => json!({
                "type": "sslExtension", "event": "ssl-client-hello",
                "serverName": { "operand": operand, "values": [value] }
            }),
        }
    });
    let path_condition = |operand: &str, value: String| json!({ "type": "httpUri", "event": "request", "path": { "operand": operand, "values": [value] } });
    let variants: Vec<(&'static str, Option<Value>, bool)> = match path {
        None => vec![("", None, false)],
        Some(PathMatch::Exact(p)) => vec![("", Some(path_condition("equals", p.clone())), false)],
        Some(PathMatch::Prefix(p)) => vec![
            ("", Some(path_condition("equals", p.clone())), false),
            ("_below", Some(path_condition("starts-with", format!("{p}/"))), true),
        ],
    };
    variants
        .into_iter()
        .map(|(suffix, path, below)| (suffix, host_condition.iter().cloned().chain(path).collect(), below))
        .collect()
}

/// The policy actions of a route's rewrites, before its forward action. A prefix route's path
/// rewrite replaces the prefix: the path itself becomes the new path, and below it the new
/// path (with one `/`) is followed by the rest of the request's path (`tcl:`, as AS3 allows in
/// these values; the model lets no Tcl-special character into the text).
fn rewrite_actions(rewrite: &RouteRewrite, path: Option<&PathMatch>, below: bool) -> Vec<Value> {
    let mut actions = Vec::new();
    if let Some(host) = &rewrite.host {
        actions.push(json!({ "type": "httpHeader", "event": "request", "replace": { "name": "Host", "value": host } }));
    }
    if let (Some(new_path), Some(matched)) = (&rewrite.path, path) {
        let value = match matched {
            PathMatch::Prefix(prefix) if below => {
                let kept_from = prefix.chars().count() + 1;
                format!("tcl:{}/[string range [HTTP::path] {kept_from} end]", new_path.trim_end_matches('/'))
            }
            _ => new_path.clone(),
        };
        actions.push(json!({ "type": "httpUri", "event": "request", "replace": { "path": value } }));
    }
    for (event, headers) in [("request", &rewrite.request_headers), ("response", &rewrite.response_headers)] {
        for (name, value) in headers {
            actions.push(json!({ "type": "httpHeader", "event": event, "replace": { "name": name, "value": value } }));
        }
    }
    actions
}

fn render_pool(pool: &DesiredPool) -> Value {
    // AS3 groups member addresses by service port; node objects are shared in /Common so two
    // partitions can use the same node without fighting over it. Draining members get entries
    // of their own with `adminState: disable`: BIG-IP then sends them no new connections
    // (except persisted ones) and lets the existing ones finish. Active entries leave
    // `adminState` at its default, `enable`.
    let mut groups: BTreeMap<(u16, MemberState, u8), Vec<String>> = BTreeMap::new();
    for member in &pool.members {
        groups.entry((member.port, member.state, member.ratio)).or_default().push(member.address.to_string());
    }
    let members: Vec<Value> = groups
        .into_iter()
        .map(|((port, state, ratio), addresses)| {
            let mut entry = json!({
                "servicePort": port,
                "serverAddresses": addresses,
                "shareNodes": true,
                "enable": true,
            });
            if state == MemberState::Draining {
                entry["adminState"] = json!("disable");
            }
            // Weighted Services (alternateBackends): the member's share.
            if ratio > 0 {
                entry["ratio"] = json!(ratio);
            }
            entry
        })
        .collect();
    let monitors: Vec<Value> = (0..pool.monitors.len())
        .map(|i| json!({ "use": monitor_object_name(&pool.name, i) }))
        .chain(pool.options.bigip_monitors.iter().map(|path| json!({ "bigip": path })))
        .collect();
    let monitor_count = monitors.len();
    let mut object = json!({
        "class": "Pool",
        "loadBalancingMode": pool.load_balancing_mode.as3_name(),
        "members": members,
    });
    if !monitors.is_empty() {
        object["monitors"] = Value::Array(monitors);
    }
    if monitor_count > 1 {
        // AS3's default is 1 (any monitor), whatever the number of monitors.
        object["minimumMonitors"] = match pool.monitor_match {
            MonitorMatch::All => json!("all"),
            MonitorMatch::Any => json!(1),
        };
    }
    if let Some(minimum) = pool.minimum_members_active {
        object["minimumMembersActive"] = json!(minimum);
    }
    if let Some(seconds) = pool.slow_ramp_time {
        object["slowRampTime"] = json!(seconds);
    }
    if let Some(action) = pool.options.service_down_action {
        object["serviceDownAction"] = json!(action);
    }
    if let Some(tries) = pool.options.reselect_tries {
        object["reselectTries"] = json!(tries);
    }
    if let (Some(limit), Some(members)) = (pool.connection_limit, object["members"].as_array_mut()) {
        for member in members {
            member["connectionLimit"] = json!(limit);
        }
    }
    object
}

fn render_monitor(monitor: &DesiredMonitor) -> Value {
    let mut object = json!({
        "class": "Monitor",
        "monitorType": monitor.monitor_type.as3_name(),
        "interval": monitor.interval,
        "timeout": monitor.timeout,
    });
    if let Some(port) = monitor.target_port {
        object["targetPort"] = json!(port);
    }
    if let Some(seconds) = monitor.time_until_up {
        object["timeUntilUp"] = json!(seconds);
    }
    if let Some(path) = &monitor.ssl_profile {
        object["clientTLS"] = json!({ "bigip": path });
    }
    let default_send = match monitor.monitor_type {
        MonitorType::Http | MonitorType::Https => DEFAULT_HTTP_SEND,
        MonitorType::Udp => DEFAULT_UDP_SEND,
        MonitorType::Tcp => "",
        MonitorType::Icmp => return object,
    };
    object["send"] = json!(monitor.send.as_deref().unwrap_or(default_send));
    object["receive"] = json!(monitor.receive.as_deref().unwrap_or(""));
    object
}

fn truncate_remark(text: &str) -> String {
    // AS3 remarks: at most 64 characters, no control characters, quotes or backslashes.
    text.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').take(64).collect()
}

/// An ADC declaration holding the given tenants, wrapped in an AS3 request.
/// [`render_request`] serialised straight from the tenants, without copying them into a new
/// JSON tree first (a whole tenant of 10,000 applications is ~30 MB as a tree).
pub fn serialize_request<T: serde::Serialize>(tenants: &BTreeMap<String, T>) -> Result<Vec<u8>, serde_json::Error> {
    struct Adc<'a, T>(&'a BTreeMap<String, T>);
    impl<T: serde::Serialize> serde::Serialize for Adc<'_, T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(self.0.len() + 4))?;
            map.serialize_entry("class", "ADC")?;
            map.serialize_entry("schemaVersion", DECLARATION_SCHEMA_VERSION)?;
            map.serialize_entry("id", DECLARATION_ID)?;
            map.serialize_entry("updateMode", "selective")?;
            for (name, tenant) in self.0 {
                map.serialize_entry(name, tenant)?;
            }
            map.end()
        }
    }
    #[derive(serde::Serialize)]
    struct Request<'a, T: serde::Serialize> {
        class: &'static str,
        action: &'static str,
        persist: bool,
        declaration: Adc<'a, T>,
    }
    serde_json::to_vec(&Request { class: "AS3", action: "deploy", persist: true, declaration: Adc(tenants) })
}

pub fn render_request(tenants: &BTreeMap<String, Value>) -> Value {
    let mut adc = Map::new();
    adc.insert("class".into(), json!("ADC"));
    adc.insert("schemaVersion".into(), json!(DECLARATION_SCHEMA_VERSION));
    adc.insert("id".into(), json!(DECLARATION_ID));
    // Only the tenants named in the declaration are touched; never let a default of
    // "complete" remove the partitions this declaration does not mention.
    adc.insert("updateMode".into(), json!("selective"));
    for (name, tenant) in tenants {
        adc.insert(name.clone(), tenant.clone());
    }
    json!({
        "class": "AS3",
        "action": "deploy",
        "persist": true,
        "declaration": Value::Object(adc),
    })
}

/// An application rendered once, kept as compact JSON text (a fifth of the size of the same
/// application as a `Value` tree), with the content hash that tells its versions apart.
#[derive(Debug, Clone)]
pub struct RenderedApplication {
    /// The AS3 Application name.
    pub name: String,
    /// The AS3 Application object as JSON text; `null` for an application known only by its
    /// hash (read back from the BIG-IP, never posted from).
    json: Box<RawValue>,
    /// SHA-256 of `json`, in hex: [`tenant_hash`] of the Application object.
    pub hash: String,
}

impl PartialEq for RenderedApplication {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.hash == other.hash && self.json.get() == other.json.get()
    }
}

impl Eq for RenderedApplication {}

impl RenderedApplication {
    pub fn of(app: &DesiredApplication) -> Self {
        Self::from_value(app.name.clone(), &render_application(app))
    }

    /// An application from its AS3 Application object.
    pub fn from_value(name: String, value: &Value) -> Self {
        let text = value.to_string();
        let hash = text_hash(&text);
        // The text of a Value is valid JSON; `null` stands in should it ever not be.
        let json = RawValue::from_string(text).unwrap_or_else(|_| null_json());
        Self { name, json, hash }
    }

    /// An application known by its name and content hash alone.
    pub fn summarised(name: String, hash: String) -> Self {
        Self { name, json: null_json(), hash }
    }

    /// The AS3 Application object as JSON text.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// The AS3 Application object as a `Value` (parsed on each call).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.json.get()).unwrap_or(Value::Null)
    }
}

fn null_json() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// A content hash of a tenant object: equal hashes mean an identical declaration.
///
/// `serde_json::Value` keeps object keys sorted, so the serialisation is canonical.
pub fn tenant_hash(tenant: &Value) -> String {
    text_hash(&tenant.to_string())
}

/// SHA-256 of compact JSON text, in hex: [`tenant_hash`] of the value it is the text of.
fn text_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_serialised_from_the_tenants_is_the_rendered_request() {
        let tenants = BTreeMap::from([
            ("k8s".to_string(), json!({"class": "Tenant", "app": {"class": "Application", "x": [1, 2]}})),
            ("team".to_string(), json!({"class": "Tenant"})),
        ]);
        let bytes = serialize_request(&tenants).expect("serialises");
        let parsed: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(parsed, render_request(&tenants));
    }
}
