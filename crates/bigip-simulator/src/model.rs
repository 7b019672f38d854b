//! The BIG-IP LTM objects AS3 creates from tenants: virtual servers from `Service_*` classes,
//! pools and their members, and monitors. Naming and defaults follow AS3's own mapping
//! (`map_as3.js`), with defaults read from the AS3 schema.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use serde_json::{Map, Value};

use super::pointer;
use super::schema_defaults::{default_bool, default_str, default_u64};

pub(super) type Object = Map<String, Value>;

/// A virtual server as BIG-IP lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualServerView {
    pub partition: String,
    pub application: String,
    pub name: String,
    /// IP address with any route domain, e.g. `10.1.2.3`, `10.1.2.3%2`, `2001:db8::1`.
    pub destination_address: String,
    pub destination_port: u16,
    /// Full path of the pool, `/Tenant/App/pool`.
    pub pool: Option<String>,
}

/// A pool member as BIG-IP lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolMemberView {
    pub address: String,
    pub port: u16,
    /// False when the member's `adminState` is `disable` or `offline`.
    pub enabled: bool,
}

pub(super) use super::tenant::{Tenant, Tenants};

/// Tenants as seen while a change is planned: a tenant map, optionally with one tenant
/// replaced by a candidate.
#[derive(Clone, Copy)]
pub(super) struct TenantSet<'a> {
    base: &'a Tenants,
    replaced: Option<(&'a str, &'a Tenant)>,
}

impl<'a> TenantSet<'a> {
    pub(super) fn new(base: &'a Tenants) -> Self {
        Self { base, replaced: None }
    }

    pub(super) fn replacing(base: &'a Tenants, name: &'a str, tenant: &'a Tenant) -> Self {
        Self { base, replaced: Some((name, tenant)) }
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a Tenant> {
        match self.replaced {
            Some((replaced, tenant)) if replaced == name => Some(tenant),
            _ => self.base.get(name).map(AsRef::as_ref),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Tenant)> + 'a {
        let replaced = self.replaced;
        self.base
            .iter()
            .filter(move |(name, _)| replaced.is_none_or(|(r, _)| r != name.as_str()))
            .map(|(name, tenant)| (name.as_str(), tenant.as_ref()))
            .chain(replaced)
    }
}

pub(super) fn class_of(object: &Object) -> Option<&str> {
    object.get("class").and_then(Value::as_str)
}

/// The Applications of a declared tenant object, by name.
pub(super) fn applications(tenant: &Value) -> impl Iterator<Item = (&str, &Object)> {
    tenant.as_object().into_iter().flatten().filter_map(|(name, value)| {
        let object = value.as_object()?;
        (class_of(object) == Some("Application")).then_some((name.as_str(), object))
    })
}

/// The declared objects of an Application (properties whose value has a `class`).
pub(super) fn declared_objects(application: &Object) -> impl Iterator<Item = (&str, &Object, &str)> {
    application.iter().filter_map(|(name, value)| {
        let object = value.as_object()?;
        Some((name.as_str(), object, class_of(object)?))
    })
}

pub(super) fn is_service_class(class: &str) -> bool {
    class.starts_with("Service_") && class != "Service_Address" && class != "Service_Discovery"
}

fn bool_property(object: &Object, class: &str, property: &str, fallback: bool) -> bool {
    object.get(property).and_then(Value::as_bool).or_else(|| default_bool(class, property)).unwrap_or(fallback)
}

fn str_property<'a>(object: &'a Object, class: &str, property: &str, fallback: &'a str) -> &'a str {
    object.get(property).and_then(Value::as_str).or_else(|| default_str(class, property)).unwrap_or(fallback)
}

fn u64_property(object: &Object, class: &str, property: &str, fallback: u64) -> u64 {
    object.get(property).and_then(Value::as_u64).or_else(|| default_u64(class, property)).unwrap_or(fallback)
}

// ---------------------------------------------------------------------------------------------
// Virtual servers

/// What BIG-IP compares when it refuses a second virtual on the same destination.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Listener {
    pub(super) address: String,
    pub(super) mask: String,
    pub(super) port: u16,
}

#[derive(Clone, Debug)]
pub(super) struct LtmVirtual {
    pub(super) view: VirtualServerView,
    /// `/T/10.1.2.3:80`, `/T/2001:db8::1.443`, `/T/any:0`.
    pub(super) destination: String,
    pub(super) mask: String,
    /// `tcp`, `udp`, `sctp` or `any`.
    pub(super) ip_protocol: String,
    pub(super) enabled: bool,
    /// `None` when the virtual has no fixed destination (internal virtuals, address or port
    /// lists), which BIG-IP does not check for conflicts.
    pub(super) listener: Option<Listener>,
}

impl LtmVirtual {
    pub(super) fn full_path(&self) -> String {
        format!("/{}/{}/{}", self.view.partition, self.view.application, self.view.name)
    }

    pub(super) fn source(&self) -> &'static str {
        if self
            .destination
            .rsplit('/')
            .next()
            .is_some_and(|last| last.matches(':').count() > 1 || last.starts_with("any6"))
        {
            "::/0"
        } else {
            "0.0.0.0/0"
        }
    }
}

/// A parsed AS3 address (`f5ip`): `10.0.0.1`, `10.0.0.1%2`, `10.0.0.0/24`, `2001:db8::1%3/64`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Address {
    ip: Option<IpAddr>,
    /// The address text without route domain and prefix, used when it is not an IP.
    text: String,
    route_domain: Option<String>,
    prefix: Option<u8>,
}

impl Address {
    fn parse(raw: &str) -> Self {
        let (rest, prefix) = match raw.rsplit_once('/') {
            Some((rest, prefix)) => (rest, prefix.parse().ok()),
            None => (raw, None),
        };
        let (text, route_domain) = match rest.split_once('%') {
            Some((text, rd)) => (text, Some(rd.to_owned())),
            None => (rest, None),
        };
        Self { ip: text.parse().ok(), text: text.to_owned(), route_domain, prefix }
    }

    fn is_ipv6(&self) -> bool {
        self.ip.map_or_else(|| self.text.contains(':'), |ip| ip.is_ipv6())
    }

    /// Minimized address (IPv6 compressed) plus route domain, without the prefix.
    fn with_route_domain(&self, default_route_domain: Option<&str>) -> String {
        let ip = self.ip.map_or_else(|| self.text.clone(), |ip| ip.to_string());
        format!("{ip}{}", route_domain_suffix(self.route_domain.as_deref().or(default_route_domain)))
    }

    /// The address as it appears in a virtual's destination (`any`/`any6` for wildcards).
    fn destination_text(&self, default_route_domain: Option<&str>) -> String {
        let ip = match self.ip {
            Some(ip) if ip.is_unspecified() && ip.is_ipv4() => "any".to_owned(),
            Some(ip) if ip.is_unspecified() => "any6".to_owned(),
            Some(ip) => ip.to_string(),
            None => self.text.clone(),
        };
        format!("{ip}{}", route_domain_suffix(self.route_domain.as_deref().or(default_route_domain)))
    }

    fn mask(&self) -> String {
        match (self.ip, self.prefix) {
            (Some(ip), None) if ip.is_unspecified() => "any".to_owned(),
            (Some(IpAddr::V4(_)), Some(prefix)) => {
                let bits = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
                Ipv4Addr::from(bits).to_string()
            }
            (Some(IpAddr::V6(_)), Some(prefix)) => {
                let bits = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
                Ipv6Addr::from(bits).to_string()
            }
            (Some(IpAddr::V6(_)), None) => Ipv6Addr::from(u128::MAX).to_string(),
            _ => Ipv4Addr::BROADCAST.to_string(),
        }
    }
}

/// `%2`, or nothing for no route domain or route domain 0.
fn route_domain_suffix(route_domain: Option<&str>) -> String {
    match route_domain {
        Some(rd) if !rd.is_empty() && rd != "0" => format!("%{rd}"),
        _ => String::new(),
    }
}

/// Where one entry of `virtualAddresses` makes a virtual listen.
struct Destination {
    /// `/T/10.0.0.1%2`, the part of the destination before the port delimiter.
    prefix: String,
    address: String,
    mask: String,
    ipv6: bool,
}

pub(super) fn tenant_default_route_domain(tenant: &Tenant) -> Option<String> {
    match tenant.property("defaultRouteDomain") {
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn destination(
    entry: &Value,
    partition: &str,
    tenant: &str,
    application: &str,
    default_route_domain: Option<&str>,
    tenants: TenantSet<'_>,
) -> Option<Destination> {
    let from_address = |raw: &str| {
        let address = Address::parse(raw);
        Destination {
            prefix: format!("/{partition}/{}", address.destination_text(default_route_domain)),
            address: address.with_route_domain(default_route_domain),
            mask: address.mask(),
            ipv6: address.is_ipv6(),
        }
    };
    match entry {
        Value::String(raw) => Some(from_address(raw)),
        // [destination, accepted source]
        Value::Array(pair) => destination(pair.first()?, partition, tenant, application, default_route_domain, tenants),
        Value::Object(reference) => {
            if let Some(path) = reference.get("use").and_then(Value::as_str) {
                let target = pointer::resolve(path, tenant, application, tenants).ok().flatten()?;
                let raw = target.get("virtualAddress").and_then(Value::as_str)?;
                Some(from_address(raw))
            } else {
                // An existing BIG-IP virtual address: /Partition/name.
                let path = reference.get("bigip").and_then(Value::as_str)?;
                let name = path.rsplit('/').next().unwrap_or(path);
                let address = Address::parse(name);
                let owner = path.split('/').nth(1).unwrap_or("Common");
                Some(Destination {
                    prefix: format!("/{owner}/{name}"),
                    address: address.with_route_domain(None),
                    mask: address.mask(),
                    ipv6: address.is_ipv6(),
                })
            }
        }
        _ => None,
    }
}

/// The pool a Service points to, as a full path.
fn pool_path(service: &Object, tenant: &str, application: &str) -> Option<String> {
    match service.get("pool")? {
        Value::String(pointer) if !pointer.is_empty() => Some(pointer::absolute(pointer, tenant, application)),
        Value::Object(reference) => {
            if let Some(pointer) = reference.get("use").and_then(Value::as_str) {
                Some(pointer::absolute(pointer, tenant, application))
            } else {
                reference.get("bigip").and_then(Value::as_str).map(str::to_owned)
            }
        }
        _ => None,
    }
}

/// Everything needed to emit the virtuals of one Service.
struct ServiceSpec<'a> {
    tenant: &'a str,
    application: &'a str,
    name: String,
    /// `None` for a port list.
    port: Option<u16>,
    /// Whether BIG-IP checks the destination for conflicts.
    fixed_destination: bool,
    ip_protocol: &'a str,
    pool: Option<String>,
    enabled: bool,
}

/// The tenant a Service is declared in, with what its virtuals need from around it.
struct TenantScope<'a> {
    name: &'a str,
    default_route_domain: Option<String>,
    tenants: TenantSet<'a>,
}

/// The virtual servers AS3 creates for one `Service_*` object: one per virtual address (the
/// first named after the service, the others `<name>-<index>-`), plus for `Service_HTTPS` with
/// `redirect80` the `<name>-Redirect-` virtuals on port 80.
fn service_virtuals(
    scope: &TenantScope<'_>,
    application: &str,
    name: &str,
    service: &Object,
    class: &str,
    out: &mut Vec<LtmVirtual>,
) {
    if !bool_property(service, class, "enable", true) {
        return; // AS3 creates nothing for a disabled Service.
    }
    let tenant = scope.name;
    let partition = if bool_property(service, class, "shareAddresses", false) { "Common" } else { tenant };
    let port = match service.get("virtualPort") {
        Some(Value::Number(port)) => port.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(_) => None, // a port list: BIG-IP matches traffic with a traffic-matching-criteria object
        None => default_u64(class, "virtualPort").and_then(|p| u16::try_from(p).ok()).or(Some(0)),
    };
    let internal = str_property(service, class, "virtualType", "standard") == "internal";
    let resolve = |entry: &Value, route_domain: Option<&str>| {
        destination(entry, partition, tenant, application, route_domain, scope.tenants)
    };
    let wildcard = Value::String("0.0.0.0".to_owned());
    let mut fixed_destination = !internal;
    let destinations: Vec<Destination> = match service.get("virtualAddresses") {
        // Internal virtuals always listen on 0.0.0.0:any.
        _ if internal => resolve(&wildcard, None).into_iter().collect(),
        Some(Value::Array(entries)) => {
            entries.iter().filter_map(|entry| resolve(entry, scope.default_route_domain.as_deref())).collect()
        }
        // An Address_List reference: matched by a traffic-matching-criteria object instead.
        _ => {
            fixed_destination = false;
            resolve(&wildcard, None).into_iter().collect()
        }
    };
    let spec = ServiceSpec {
        tenant,
        application,
        name: name.to_owned(),
        port: if internal { Some(0) } else { port },
        fixed_destination: fixed_destination && port.is_some(),
        ip_protocol: str_property(service, class, "layer4", "tcp"),
        pool: pool_path(service, tenant, application),
        enabled: service.get("adminState").and_then(Value::as_str).unwrap_or("enable") == "enable",
    };
    push_virtuals(&spec, &destinations, out);

    if class == "Service_HTTPS" && bool_property(service, class, "redirect80", true) {
        let redirect = ServiceSpec {
            name: format!("{name}-Redirect-"),
            port: Some(80),
            fixed_destination,
            ip_protocol: "tcp",
            pool: None,
            ..spec
        };
        push_virtuals(&redirect, &destinations, out);
    }
}

fn push_virtuals(spec: &ServiceSpec<'_>, destinations: &[Destination], out: &mut Vec<LtmVirtual>) {
    for (index, destination) in destinations.iter().enumerate() {
        let name = if index == 0 { spec.name.clone() } else { format!("{}-{index}-", spec.name) };
        let port = spec.port.unwrap_or(0);
        let delimiter = if destination.ipv6 { '.' } else { ':' };
        out.push(LtmVirtual {
            view: VirtualServerView {
                partition: spec.tenant.to_owned(),
                application: spec.application.to_owned(),
                name,
                destination_address: destination.address.clone(),
                destination_port: port,
                pool: spec.pool.clone(),
            },
            destination: format!("{}{delimiter}{port}", destination.prefix),
            mask: destination.mask.clone(),
            ip_protocol: spec.ip_protocol.to_owned(),
            enabled: spec.enabled,
            listener: spec.fixed_destination.then(|| Listener {
                address: destination.address.clone(),
                mask: destination.mask.clone(),
                port,
            }),
        });
    }
}

/// The virtual servers of one tenant; `tenants` resolves `Service_Address` references.
pub(super) fn tenant_virtuals(tenant: &str, tenant_value: &Tenant, tenants: TenantSet<'_>) -> Vec<LtmVirtual> {
    let mut virtuals = Vec::new();
    for (application, _) in tenant_value.applications() {
        virtuals.extend(application_virtuals(tenant, tenant_value, application, tenants));
    }
    virtuals
}

/// The virtual servers of one Application of `tenant_value` (none when it has no such
/// Application).
pub(super) fn application_virtuals(
    tenant: &str,
    tenant_value: &Tenant,
    application: &str,
    tenants: TenantSet<'_>,
) -> Vec<LtmVirtual> {
    let scope = TenantScope { name: tenant, default_route_domain: tenant_default_route_domain(tenant_value), tenants };
    let mut virtuals = Vec::new();
    if let Some(app) = tenant_value.application(application).and_then(Value::as_object) {
        for (name, object, class) in declared_objects(app) {
            if is_service_class(class) {
                service_virtuals(&scope, application, name, object, class, &mut virtuals);
            }
        }
    }
    virtuals
}

pub(super) fn all_virtuals(tenants: &Tenants) -> Vec<LtmVirtual> {
    let set = TenantSet::new(tenants);
    tenants.iter().flat_map(|(name, tenant)| tenant_virtuals(name, tenant, set)).collect()
}

// ---------------------------------------------------------------------------------------------
// Pools and members

#[derive(Clone, Debug)]
pub(super) struct LtmPool {
    pub(super) partition: String,
    pub(super) application: String,
    pub(super) name: String,
    pub(super) load_balancing_mode: String,
    /// `/Common/http`, `min 1 of /T/A/m1 /T/A/m2` or `/T/A/m1 and /T/A/m2`.
    pub(super) monitor: Option<String>,
    pub(super) min_active_members: u64,
    pub(super) members: Vec<LtmPoolMember>,
}

impl LtmPool {
    pub(super) fn full_path(&self) -> String {
        format!("/{}/{}/{}", self.partition, self.application, self.name)
    }
}

#[derive(Clone, Debug)]
pub(super) struct LtmPoolMember {
    /// `10.0.0.1:80`, `2001:db8::1.80`, or `<server name>:80`.
    pub(super) name: String,
    /// Partition of the member's node: `Common` with `shareNodes`, else the tenant.
    pub(super) partition: String,
    pub(super) address: String,
    pub(super) port: u16,
    pub(super) admin_state: String,
}

impl LtmPoolMember {
    pub(super) fn full_path(&self) -> String {
        format!("/{}/{}", self.partition, self.name)
    }

    /// BIG-IP `session`, as AS3 sets it from `adminState`.
    pub(super) fn session(&self) -> &'static str {
        if self.admin_state == "enable" {
            "user-enabled"
        } else {
            "user-disabled"
        }
    }

    /// BIG-IP `state`; the simulator has no health checks, so members it does not force down are up.
    pub(super) fn state(&self) -> &'static str {
        if self.admin_state == "offline" {
            "user-down"
        } else {
            "up"
        }
    }

    pub(super) fn view(&self) -> PoolMemberView {
        PoolMemberView { address: self.address.clone(), port: self.port, enabled: self.admin_state == "enable" }
    }
}

/// A member address as AS3 names nodes: minimized, with a non-zero route domain.
fn member_address(raw: &str, member_route_domain: Option<&str>) -> String {
    let address = Address::parse(raw);
    address.with_route_domain(member_route_domain)
}

fn member_name(node: &str, port: u16) -> String {
    let delimiter = if node.contains(':') { '.' } else { ':' };
    format!("{node}{delimiter}{port}")
}

/// One AS3 `members` entry expands to one BIG-IP member per server address.
fn expand_member(tenant: &str, member: &Object, out: &mut Vec<LtmPoolMember>) {
    if !bool_property(member, "Pool_Member", "enable", true) {
        return; // AS3 leaves disabled member entries out of the pool.
    }
    let port = member.get("servicePort").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
    let admin_state = str_property(member, "Pool_Member", "adminState", "enable").to_owned();
    let partition =
        if bool_property(member, "Pool_Member", "shareNodes", false) { "Common" } else { tenant }.to_owned();
    let route_domain = member.get("routeDomain").and_then(Value::as_u64).map(|rd| rd.to_string());
    let mut push = |node: String, address: String| {
        out.push(LtmPoolMember {
            name: member_name(&node, port),
            partition: partition.clone(),
            address,
            port,
            admin_state: admin_state.clone(),
        });
    };

    if let Some(existing) = member.get("bigip").and_then(Value::as_str) {
        let node = existing.rsplit('/').next().unwrap_or(existing).to_owned();
        push(node.clone(), node);
        return;
    }
    match member.get("addressDiscovery").and_then(Value::as_str).unwrap_or("static") {
        "static" => {
            let plain = member.get("serverAddresses").and_then(Value::as_array).into_iter().flatten();
            for raw in plain.filter_map(Value::as_str) {
                let address = member_address(raw, route_domain.as_deref());
                push(address.clone(), address);
            }
            let named = member.get("servers").and_then(Value::as_array).into_iter().flatten();
            for server in named.filter_map(Value::as_object) {
                let Some(raw) = server.get("address").and_then(Value::as_str) else { continue };
                let address = member_address(raw, route_domain.as_deref());
                let node = server.get("name").and_then(Value::as_str).map_or_else(|| address.clone(), str::to_owned);
                push(node, address);
            }
        }
        "fqdn" => {
            if let Some(hostname) = member.get("hostname").and_then(Value::as_str) {
                push(hostname.to_owned(), hostname.to_owned());
            }
        }
        // Service discovery (event, consul, cloud providers) fills members at run time.
        _ => {}
    }
}

/// BIG-IP's full path for one entry of a pool's `monitors`.
fn monitor_path(monitor: &Value, tenant: &str, application: &str) -> Option<String> {
    match monitor {
        // Built-in monitors live in /Common, with AS3's renaming of icmp and hyphens.
        Value::String(builtin) => {
            let builtin = if builtin == "icmp" { "gateway_icmp" } else { builtin };
            Some(format!("/Common/{}", builtin.replace('-', "_")))
        }
        Value::Object(reference) => {
            if let Some(pointer) = reference.get("use").and_then(Value::as_str) {
                Some(pointer::absolute(pointer, tenant, application))
            } else {
                reference.get("bigip").and_then(Value::as_str).map(str::to_owned)
            }
        }
        _ => None,
    }
}

fn monitor_expression(pool: &Object, tenant: &str, application: &str) -> Option<String> {
    let paths: Vec<String> = pool
        .get("monitors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|monitor| monitor_path(monitor, tenant, application))
        .collect();
    match paths.as_slice() {
        [] => None,
        [only] => Some(only.clone()),
        _ => match pool.get("minimumMonitors") {
            Some(Value::String(all)) if all == "all" => Some(paths.join(" and ")),
            Some(Value::Number(minimum)) => Some(format!("min {minimum} of {}", paths.join(" "))),
            _ => Some(format!("min 1 of {}", paths.join(" "))),
        },
    }
}

pub(super) fn tenant_pools(tenant: &str, tenant_value: &Tenant) -> Vec<LtmPool> {
    let mut pools = Vec::new();
    for (application, app) in tenant_value.applications() {
        for (name, pool, class) in declared_objects(app) {
            if class != "Pool" {
                continue;
            }
            let mut members = Vec::new();
            for member in pool.get("members").and_then(Value::as_array).into_iter().flatten() {
                if let Some(member) = member.as_object() {
                    expand_member(tenant, member, &mut members);
                }
            }
            pools.push(LtmPool {
                partition: tenant.to_owned(),
                application: application.to_owned(),
                name: name.to_owned(),
                load_balancing_mode: str_property(pool, "Pool", "loadBalancingMode", "round-robin").to_owned(),
                monitor: monitor_expression(pool, tenant, application),
                min_active_members: u64_property(pool, "Pool", "minimumMembersActive", 1),
                members,
            });
        }
    }
    pools
}

pub(super) fn all_pools(tenants: &Tenants) -> Vec<LtmPool> {
    tenants.iter().flat_map(|(name, tenant)| tenant_pools(name, tenant)).collect()
}

// ---------------------------------------------------------------------------------------------
// Monitors

#[derive(Clone, Debug)]
pub(super) struct LtmMonitor {
    pub(super) partition: String,
    pub(super) application: String,
    pub(super) name: String,
    /// The tmsh monitor type: `http`, `https`, `tcp`, `udp`, `gateway-icmp`, ...
    pub(super) monitor_type: String,
    pub(super) send: Option<String>,
    pub(super) recv: Option<String>,
    pub(super) interval: u64,
    pub(super) timeout: u64,
}

impl LtmMonitor {
    pub(super) fn full_path(&self) -> String {
        format!("/{}/{}/{}", self.partition, self.application, self.name)
    }
}

/// AS3 monitor types that become a differently named tmsh type.
pub(super) fn tmsh_monitor_type(as3_type: &str) -> &str {
    if as3_type == "icmp" {
        "gateway-icmp"
    } else {
        as3_type
    }
}

/// The schema definition holding a monitor type's properties and defaults.
fn monitor_definition(as3_type: &str) -> Option<&'static str> {
    Some(match as3_type {
        "dns" => "Monitor_DNS",
        "external" => "Monitor_External",
        "ftp" => "Monitor_FTP",
        "http" => "Monitor_HTTP",
        "https" => "Monitor_HTTPS",
        "http2" => "Monitor_HTTP2",
        "icmp" => "Monitor_ICMP",
        "inband" => "Monitor_Inband",
        "ldap" => "Monitor_LDAP",
        "mysql" => "Monitor_MySQL",
        "postgresql" => "Monitor_PostgreSQL",
        "radius" => "Monitor_RADIUS",
        "sip" => "Monitor_SIP",
        "smtp" => "Monitor_SMTP",
        "tcp" => "Monitor_TCP",
        "tcp-half-open" => "Monitor_TCP_Half_Open",
        "udp" => "Monitor_UDP",
        _ => return None,
    })
}

pub(super) fn tenant_monitors(tenant: &str, tenant_value: &Tenant) -> Vec<LtmMonitor> {
    let mut monitors = Vec::new();
    for (application, app) in tenant_value.applications() {
        for (name, monitor, class) in declared_objects(app) {
            if class != "Monitor" {
                continue;
            }
            let as3_type = monitor.get("monitorType").and_then(Value::as_str).unwrap_or("http");
            let definition = monitor_definition(as3_type).unwrap_or("Monitor");
            let has_strings = matches!(as3_type, "http" | "https" | "http2" | "tcp" | "udp");
            let text = |property: &str| {
                let value = str_property(monitor, definition, property, "none");
                (has_strings && value != "none").then(|| value.to_owned())
            };
            monitors.push(LtmMonitor {
                partition: tenant.to_owned(),
                application: application.to_owned(),
                name: name.to_owned(),
                monitor_type: tmsh_monitor_type(as3_type).to_owned(),
                send: text("send"),
                recv: text("receive"),
                interval: u64_property(monitor, definition, "interval", 5),
                timeout: u64_property(monitor, definition, "timeout", 16),
            });
        }
    }
    monitors
}

pub(super) fn all_monitors(tenants: &Tenants) -> Vec<LtmMonitor> {
    tenants.iter().flat_map(|(name, tenant)| tenant_monitors(name, tenant)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    fn one_tenant(tenant: Value) -> Tenants {
        BTreeMap::from([("T".to_owned(), Arc::new(Tenant::from_value(&tenant)))])
    }

    #[test]
    fn addresses_parse_like_f5ip() {
        let plain = Address::parse("10.0.0.1");
        assert_eq!(plain.with_route_domain(None), "10.0.0.1");
        assert_eq!(plain.mask(), "255.255.255.255");
        let routed = Address::parse("10.0.0.0%2/24");
        assert_eq!(routed.with_route_domain(None), "10.0.0.0%2");
        assert_eq!(routed.mask(), "255.255.255.0");
        let v6 = Address::parse("2001:0db8:0:0::1");
        assert_eq!(v6.with_route_domain(Some("0")), "2001:db8::1");
        assert!(v6.is_ipv6());
        assert_eq!(Address::parse("0.0.0.0").destination_text(None), "any");
        assert_eq!(Address::parse("::").destination_text(None), "any6");
    }

    #[test]
    fn http_service_defaults_to_port_80_and_names_extra_addresses() {
        let tenants = one_tenant(json!({"class": "Tenant", "A": {"class": "Application",
            "svc": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1", "2001:db8::1"], "pool": "p"},
            "p": {"class": "Pool"}}}));
        let virtuals = all_virtuals(&tenants);
        assert_eq!(virtuals.len(), 2);
        assert_eq!(virtuals[0].view.name, "svc");
        assert_eq!(virtuals[0].destination, "/T/10.0.0.1:80");
        assert_eq!(virtuals[0].view.pool.as_deref(), Some("/T/A/p"));
        assert_eq!(virtuals[1].view.name, "svc-1-");
        assert_eq!(virtuals[1].destination, "/T/2001:db8::1.80");
        assert_eq!(virtuals[1].source(), "::/0");
    }

    #[test]
    fn https_service_gets_a_redirect_virtual_unless_disabled() {
        let tenants = one_tenant(json!({"class": "Tenant", "A": {"class": "Application",
            "web": {"class": "Service_HTTPS", "virtualAddresses": ["10.0.0.2"], "serverTLS": {"bigip": "/Common/clientssl"}},
            "quiet": {"class": "Service_HTTPS", "virtualAddresses": ["10.0.0.3"], "redirect80": false, "serverTLS": {"bigip": "/Common/clientssl"}}}}));
        let names: Vec<(String, u16)> =
            all_virtuals(&tenants).into_iter().map(|v| (v.view.name, v.view.destination_port)).collect();
        assert!(names.contains(&("web".to_owned(), 443)));
        assert!(names.contains(&("web-Redirect-".to_owned(), 80)));
        assert!(names.contains(&("quiet".to_owned(), 443)));
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn disabled_services_create_no_virtual() {
        let tenants = one_tenant(json!({"class": "Tenant", "A": {"class": "Application",
            "svc": {"class": "Service_TCP", "virtualAddresses": ["10.0.0.1"], "virtualPort": 22, "enable": false}}}));
        assert!(all_virtuals(&tenants).is_empty());
    }

    #[test]
    fn members_expand_per_address_with_states() {
        let tenants = one_tenant(json!({"class": "Tenant", "A": {"class": "Application",
            "p": {"class": "Pool", "monitors": ["http", {"use": "m"}],
                "members": [
                    {"servicePort": 80, "serverAddresses": ["10.1.0.1", "10.1.0.2"], "shareNodes": true},
                    {"servicePort": 8080, "serverAddresses": ["10.1.0.3"], "adminState": "disable"},
                    {"servicePort": 81, "serverAddresses": ["10.1.0.4"], "enable": false}]},
            "m": {"class": "Monitor", "monitorType": "http"}}}));
        let pools = all_pools(&tenants);
        assert_eq!(pools.len(), 1);
        let pool = &pools[0];
        assert_eq!(pool.monitor.as_deref(), Some("min 1 of /Common/http /T/A/m"));
        assert_eq!(pool.load_balancing_mode, "round-robin");
        let members: Vec<(&str, &str, bool)> =
            pool.members.iter().map(|m| (m.name.as_str(), m.partition.as_str(), m.view().enabled)).collect();
        assert_eq!(
            members,
            vec![("10.1.0.1:80", "Common", true), ("10.1.0.2:80", "Common", true), ("10.1.0.3:8080", "T", false)]
        );
    }

    #[test]
    fn monitors_take_schema_defaults() {
        let tenants = one_tenant(json!({"class": "Tenant", "A": {"class": "Application",
            "m": {"class": "Monitor", "monitorType": "http", "interval": 7},
            "t": {"class": "Monitor", "monitorType": "tcp"},
            "i": {"class": "Monitor", "monitorType": "icmp"}}}));
        let monitors = all_monitors(&tenants);
        let http = monitors.iter().find(|m| m.name == "m").expect("http monitor");
        assert_eq!((http.interval, http.timeout), (7, 16));
        assert_eq!(http.recv.as_deref(), Some("HTTP/1."));
        let tcp = monitors.iter().find(|m| m.name == "t").expect("tcp monitor");
        assert_eq!(tcp.send, None);
        let icmp = monitors.iter().find(|m| m.name == "i").expect("icmp monitor");
        assert_eq!(icmp.monitor_type, "gateway-icmp");
    }
}
