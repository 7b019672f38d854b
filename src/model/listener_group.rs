//! Listener groups: VirtualServers of several namespaces behind one virtual address and port
//! (a `BigIpListenerGroup`). Each member is built on its own, like any VirtualServer, into an
//! application named after the group; the fleet then merges the members that hold their
//! routes into the group's one application: their pools, their host and path rules, and one
//! certificate per host (SNI).

use std::net::IpAddr;
use std::sync::Arc;

use super::application::{
    application_name, build_pools, build_routes, partition_of, resolve_tls, sort_routes, BuiltApplication,
};
use super::members::{AddressFamily, MemberRules};
use super::tls::server_certificate;
use super::{
    ClusterView, DesiredApplication, Frontend, HostMatch, InvalidSpec, Listener, ListenerProtocol, ModelDefaults,
    ObjectKey, ServerTls, SniCertificate, SourceKind, TlsTermination, UnresolvedRef,
};
use crate::crd::{BigIpListenerGroup, HttpTraffic, Persistence, SnatMode, TlsMode, VirtualServer};

/// Prefix of a group's AS3 application name. `<namespace>_<name>` never holds two `_` in a
/// row, so no VirtualServer's application can take a group's name.
pub const GROUP_APPLICATION_PREFIX: &str = "lg__";

/// `allowedNamespaces` entry that allows every namespace.
pub const EVERY_NAMESPACE: &str = "*";

/// The AS3 application name of a listener group.
pub fn group_application_name(group: &str) -> String {
    format!("{GROUP_APPLICATION_PREFIX}{group}")
}

/// A listener group as its members are built against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    pub name: String,
    /// The AS3 application name ([`group_application_name`]).
    pub application: String,
    pub partition: String,
    pub address: IpAddr,
    /// The partition's default route domain, written out when not 0 (`--default-route-domain`).
    pub route_domain: Option<u16>,
    pub port: u16,
    /// HTTPS (certificates by server name) rather than plain HTTP.
    pub tls: bool,
    /// The certificate for clients whose server name no member serves.
    pub default_certificate: Option<SniCertificate>,
    pub http_traffic: HttpTraffic,
}

impl GroupSettings {
    /// Whether plain HTTP on port 80 redirects to HTTPS.
    pub fn redirects_http(&self) -> bool {
        self.tls && self.port != 80 && self.http_traffic == HttpTraffic::Redirect
    }

    /// Whether the group also serves its routes over plain HTTP on port 80.
    pub fn serves_http(&self) -> bool {
        self.tls && self.port != 80 && self.http_traffic == HttpTraffic::Allow
    }

    /// The listeners of the group's virtual server: its port, and port 80 when it redirects
    /// or serves plain HTTP there.
    pub fn listeners(&self) -> Vec<Listener> {
        let route_domain = self.route_domain.unwrap_or(0);
        let mut listeners =
            vec![Listener { address: self.address, route_domain, port: self.port, protocol: ListenerProtocol::Tcp }];
        if self.redirects_http() || self.serves_http() {
            listeners.push(Listener { address: self.address, route_domain, port: 80, protocol: ListenerProtocol::Tcp });
        }
        listeners
    }
}

fn group_error(group: &str, reason: &'static str, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec::ListenerGroup { group: group.to_string(), reason, message: message.into() }
}

/// The settings of a group, checked; a default certificate that does not resolve is reported
/// in `unresolved` (it blocks programming the member).
fn group_settings(
    group: &BigIpListenerGroup,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
    unresolved: &mut Vec<UnresolvedRef>,
) -> Result<GroupSettings, InvalidSpec> {
    let name = group.metadata.name.clone().unwrap_or_default();
    let invalid = |message: String| group_error(&name, "ListenerGroupInvalid", message);
    let spec = &group.spec;
    let address: IpAddr = spec
        .virtual_address
        .parse()
        .map_err(|_| invalid(format!("its virtualAddress {:?} is not an IP address", spec.virtual_address)))?;
    let port = u16::try_from(spec.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid(format!("its port {} is outside 1-65535", spec.port)))?;
    let partition = partition_of(spec.partition.as_deref(), defaults).map_err(|e| invalid(format!("its {e}")))?;
    let application = group_application_name(&name);
    if application.len() > 190
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    {
        return Err(invalid("its name must be lower-case letters, digits, '-' and '.', at most 186 of them".into()));
    }
    let default_certificate = match spec.tls.as_ref().and_then(|tls| tls.default_certificate.as_ref()) {
        None => None,
        Some(reference) => {
            const FIELD: &str = "BigIpListenerGroup spec.tls.defaultCertificate";
            let secret = format!("{}/{}", reference.namespace, reference.name);
            match cluster.secret(&reference.namespace, &reference.name) {
                None => {
                    unresolved.push(UnresolvedRef::SecretNotFound { field: FIELD, secret });
                    None
                }
                Some(found) => match server_certificate(FIELD, &found) {
                    Ok(ServerTls::Certificate { certificate, chain, private_key }) => {
                        Some(SniCertificate { server_name: None, certificate, chain, private_key })
                    }
                    Ok(_) => None,
                    Err(e) => {
                        unresolved.push(e);
                        None
                    }
                },
            }
        }
    };
    Ok(GroupSettings {
        name,
        application,
        partition,
        address,
        route_domain: Some(defaults.default_route_domain).filter(|id| *id != 0),
        port,
        tls: spec.tls.is_some(),
        default_certificate,
        http_traffic: spec.http_traffic.unwrap_or_default(),
    })
}

/// Why a group's spec cannot be used (its address, port, partition or name), if it cannot.
pub fn group_problem(group: &BigIpListenerGroup, defaults: &ModelDefaults) -> Option<String> {
    match group_settings(group, &super::ClusterObjects::default(), defaults, &mut Vec::new()) {
        Ok(_) => None,
        Err(InvalidSpec::ListenerGroup { message, .. }) => Some(message),
        Err(other) => Some(other.to_string()),
    }
}

/// A VirtualServer with `spec.listenerGroup`: validated against its group, with its pools
/// named after it (`<namespace>_<name>_<pool>`) so that the group's merged application holds
/// every member's pools side by side.
pub fn build_member(
    vs: &VirtualServer,
    group_name: &str,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
) -> Result<BuiltApplication, InvalidSpec> {
    let source = ObjectKey::of(&vs.metadata);
    let spec = &vs.spec;
    let own_name = application_name(&source)?;
    let Some(group) = cluster.listener_group(group_name) else {
        return Err(group_error(group_name, "ListenerGroupNotFound", "no BigIpListenerGroup has this name"));
    };
    let mut unresolved = Vec::new();
    let settings = group_settings(&group, cluster, defaults, &mut unresolved)?;
    let allowed = &group.spec.allowed_namespaces;
    if !allowed.iter().any(|n| n == EVERY_NAMESPACE || *n == source.namespace) {
        return Err(group_error(
            group_name,
            "NotAllowedByListenerGroup",
            format!("namespace {} is not in the group's allowedNamespaces", source.namespace),
        ));
    }
    if spec.port != i32::from(settings.port) {
        return Err(group_error(
            group_name,
            "ListenerGroupMismatch",
            format!("spec.port {} is not the group's port {}", spec.port, settings.port),
        ));
    }
    let partition = partition_of(spec.partition.as_deref(), defaults)?;
    if partition != settings.partition {
        return Err(group_error(
            group_name,
            "ListenerGroupMismatch",
            format!("partition {partition} is not the group's partition {}", settings.partition),
        ));
    }
    let refuse = |field: &'static str| InvalidSpec::Field {
        field,
        reason: "not possible in a listener group: the group's virtual server is shared".into(),
    };
    if spec.snat != SnatMode::Automap || spec.snat_pool.is_some() {
        return Err(refuse("snat"));
    }
    if spec.persistence.is_some_and(|p| p != Persistence::None) {
        return Err(refuse("persistence"));
    }
    if !spec.i_rules.is_empty() {
        return Err(refuse("iRules"));
    }
    if !spec.allow_source_ranges.is_empty() {
        return Err(refuse("allowSourceRanges"));
    }
    if spec.waf_policy.is_some() {
        return Err(refuse("wafPolicy"));
    }
    if spec.x_forwarded_for {
        return Err(refuse("xForwardedFor"));
    }
    if spec.virtual_address_options.is_some() {
        return Err(refuse("virtualAddressOptions"));
    }
    if spec.app_root.is_some() {
        return Err(refuse("appRoot"));
    }
    if spec.profiles.is_some() {
        return Err(refuse("profiles"));
    }
    if spec.policy.is_some() {
        return Err(refuse("policy"));
    }
    if !spec.allow_vlans.is_empty() {
        return Err(refuse("allowVlans"));
    }
    if spec.connection_mirroring {
        return Err(refuse("connectionMirroring"));
    }
    if !spec.ltm_policies.is_empty() {
        return Err(refuse("ltmPolicies"));
    }
    if !spec.redirects.is_empty() {
        return Err(refuse("redirects"));
    }
    if spec.default_pool.is_some() || spec.bigip_default_pool.is_some() {
        return Err(InvalidSpec::Field {
            field: "defaultPool",
            reason: "a listener group serves only its members' hosts: give the pool a rule with a host instead".into(),
        });
    }
    if spec.rules.is_empty() {
        return Err(InvalidSpec::Field {
            field: "rules",
            reason: "a VirtualServer in a listener group needs rules with hosts: they say what it serves".into(),
        });
    }
    if let Some(index) = spec.rules.iter().position(|rule| rule.host.is_none()) {
        return Err(InvalidSpec::Rule {
            index,
            reason: "in a listener group every rule needs a host (a rule without one would take other teams' hosts)"
                .into(),
        });
    }
    let tls = match &spec.tls {
        None if settings.tls && settings.default_certificate.is_none() && unresolved.is_empty() => {
            return Err(InvalidSpec::Tls {
                reason: "the listener group has no default certificate: name a Secret in secretName".into(),
            })
        }
        None => None,
        Some(_) if !settings.tls => {
            return Err(InvalidSpec::Tls { reason: "the listener group is plain HTTP (it has no tls)".into() })
        }
        Some(tls)
            if tls.min_version.is_some()
                || tls.max_version.is_some()
                || tls.ciphers.is_some()
                || tls.cipher_group.is_some()
                || tls.client_certificates.is_some()
                || tls.allow_http
                || tls.http_port.is_some() =>
        {
            return Err(InvalidSpec::Tls {
                reason:
                    "versions, ciphers, client certificates and plain HTTP are the listener group's, not one member's"
                        .into(),
            })
        }
        Some(tls) if tls.mode != TlsMode::Terminate || tls.secret_name.is_none() => {
            return Err(InvalidSpec::Tls {
                reason: "in a listener group TLS is terminated with a certificate from secretName (mode terminate)"
                    .into(),
            })
        }
        Some(tls) => resolve_tls(tls, &source, cluster, &mut unresolved)?
            .map(|resolved| TlsTermination { http_redirect: settings.redirects_http(), ..resolved }),
    };
    let mode = spec.pool_member_type.unwrap_or(defaults.pool_member_type);
    let rules =
        MemberRules { family: AddressFamily::of(settings.address), node_selector: defaults.node_selector.as_ref() };
    let mut pools =
        build_pools(&spec.pools, SourceKind::VirtualServer, &source, mode, &rules, cluster, &mut unresolved)?;
    let mut routes = build_routes(&spec.rules, &pools, &source, settings.address)?;
    let member_pool = |pool: &str| format!("{own_name}_{pool}");
    for pool in &mut pools {
        pool.name = member_pool(&pool.name);
    }
    for route in &mut routes {
        route.pool = member_pool(&route.pool);
    }
    let application = group_application(source, Arc::new(settings), routes, tls, pools);
    Ok(BuiltApplication { application, unresolved })
}

/// An application of a listener group: a member's, or the group's merged one. Everything but
/// the routes, certificates and pools is the group's.
fn group_application(
    source: ObjectKey,
    settings: Arc<GroupSettings>,
    routes: Vec<super::DesiredRoute>,
    tls: Option<TlsTermination>,
    pools: Vec<super::DesiredPool>,
) -> DesiredApplication {
    // A plain HTTP application on the group's listener, with the group's routes and TLS and
    // no default pool.
    let mut app = DesiredApplication::plain_http(
        source,
        settings.application.clone(),
        settings.partition.clone(),
        settings.address,
        settings.port,
        pools,
    );
    app.frontend = Frontend::Http { routes, redirects: Vec::new(), tls, x_forwarded_for: false, waf_policy: None };
    app.default_pool = String::new();
    app.route_domain = settings.route_domain;
    app.group = Some(settings);
    app
}

/// The host of a route as a server name for SNI (`*.example.com` for a wildcard).
fn server_name(host: &HostMatch) -> String {
    match host {
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Suffix(s) => format!("*{s}"),
    }
}

/// The group's one application from its members in claim order (each holding its routes):
/// every member's pools and routes, and its certificate for each of its hosts that no older
/// member serves. The first certificate is the default: the group's, else the oldest member's.
pub fn merge_group<A: AsRef<DesiredApplication>>(members: &[A]) -> Option<DesiredApplication> {
    let first = members.first()?.as_ref();
    let settings = first.group.clone()?;
    let mut pools = Vec::new();
    let mut routes = Vec::new();
    let mut certificates: Vec<SniCertificate> = settings.default_certificate.iter().cloned().collect();
    let mut named: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for member in members.iter().map(AsRef::as_ref) {
        pools.extend(member.pools.iter().cloned());
        let Frontend::Http { routes: own, tls, .. } = &member.frontend else { continue };
        routes.extend(own.iter().cloned());
        let Some(TlsTermination { server: ServerTls::Certificate { certificate, chain, private_key }, .. }) = tls
        else {
            continue;
        };
        let of_member = |server_name| SniCertificate {
            server_name,
            certificate: certificate.clone(),
            chain: chain.clone(),
            private_key: private_key.clone(),
        };
        if certificates.is_empty() {
            certificates.push(of_member(None));
        }
        for host in own.iter().filter_map(|route| route.host.as_ref()).map(server_name) {
            if named.insert(host.clone()) {
                certificates.push(of_member(Some(host)));
            }
        }
    }
    sort_routes(&mut routes);
    let tls = (settings.tls && !certificates.is_empty()).then(|| TlsTermination {
        server: ServerTls::Sni(certificates),
        backend: None,
        http_redirect: settings.redirects_http(),
        serve_http: settings.serves_http(),
        http_port: 80,
        options: Box::default(),
    });
    Some(group_application(first.source.clone(), settings, routes, tls, pools))
}

/// A partition's applications (sorted by name, members of a group in claim order) with each
/// group's members replaced by the group's merged application.
pub fn merge_groups(applications: Vec<Arc<DesiredApplication>>) -> Vec<Arc<DesiredApplication>> {
    let mut merged: Vec<Arc<DesiredApplication>> = Vec::with_capacity(applications.len());
    let mut members: Vec<Arc<DesiredApplication>> = Vec::new();
    let flush = |members: &mut Vec<Arc<DesiredApplication>>, merged: &mut Vec<Arc<DesiredApplication>>| {
        if let Some(group) = merge_group(members) {
            merged.push(Arc::new(group));
        }
        members.clear();
    };
    for app in applications {
        if app.group.is_none() {
            flush(&mut members, &mut merged);
            merged.push(app);
            continue;
        }
        if members.first().is_some_and(|m| m.name != app.name) {
            flush(&mut members, &mut merged);
        }
        members.push(app);
    }
    flush(&mut members, &mut merged);
    merged
}
