//! One VirtualServer → one [`DesiredApplication`], and the parts every kind of source shares
//! (pools, SNAT, iRules, source ranges).

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::Selector;
use super::members::{find_service_port, resolve_members, AddressFamily, MemberRules};
use super::tls::{ca_bundle, server_certificate};
use super::{
    BackendTls, ClusterView, DesiredApplication, DesiredIRule, DesiredMonitor, DesiredPool, DesiredRedirect,
    DesiredRoute, DesiredSnat, Frontend, HostMatch, InvalidSpec, ModelDefaults, ObjectKey, PathMatch, RoutePersistence,
    RouteRewrite, SourceKind, TlsTermination, UnresolvedRef,
};
use super::{Ciphers, ClientAuthentication, DesiredProfiles, PoolMember, PoolOptions, TcpProfiles, TlsOptions};
use crate::crd::{ClientCertificateMode, Profiles, TlsVersion};
use crate::crd::{
    HeaderValue, HealthMonitor, IRule, LoadBalancingMode, PathType, Persistence, Pool, PoolMemberType, Redirect,
    RoutingRule, ServiceDownAction, SnatMode, Tls, TlsMode, VirtualServer,
};

/// AS3 object names: a letter first, then letters, digits, `_`, `.` or `-`, at most 190 chars.
const AS3_NAME_MAX: usize = 190;

/// An application built from a VirtualServer or TransportServer, with the references that did
/// not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltApplication {
    pub application: DesiredApplication,
    pub unresolved: Vec<UnresolvedRef>,
}

/// Validates a VirtualServer and resolves its pools and Secrets against the cluster.
pub fn build_application(
    vs: &VirtualServer,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
) -> Result<BuiltApplication, InvalidSpec> {
    if let Some(group) = vs.spec.listener_group.as_deref() {
        return super::listener_group::build_member(vs, group, cluster, defaults);
    }
    let source = ObjectKey::of(&vs.metadata);
    let (merged, missing_policy) = with_policy(vs.spec.policy.as_deref(), &source, cluster, |policy| {
        super::policy::merge_virtual(&vs.spec, policy)
    });
    let spec = merged.as_ref().unwrap_or(&vs.spec);
    let name = application_name(&source)?;
    let pools_only = spec.virtual_address.is_empty() && spec.address_pool.is_none();
    let (virtual_address, route_domain, port) = if pools_only {
        refuse_without_virtual(&[
            ("port", spec.port != 0),
            ("rules", !spec.rules.is_empty()),
            ("defaultPool", spec.default_pool.is_some()),
            ("bigipDefaultPool", spec.bigip_default_pool.is_some()),
            ("tls", spec.tls.is_some()),
            ("snatPool", spec.snat_pool.is_some()),
            ("persistence", spec.persistence.is_some()),
            ("iRules", !spec.i_rules.is_empty()),
            ("allowSourceRanges", !spec.allow_source_ranges.is_empty()),
            ("wafPolicy", spec.waf_policy.is_some()),
            ("xForwardedFor", spec.x_forwarded_for),
            ("virtualAddressOptions", spec.virtual_address_options.is_some()),
            ("profiles", spec.profiles.is_some()),
            ("allowVlans", !spec.allow_vlans.is_empty()),
            ("connectionMirroring", spec.connection_mirroring),
            ("appRoot", spec.app_root.is_some()),
            ("redirects", !spec.redirects.is_empty()),
            ("ltmPolicies", !spec.ltm_policies.is_empty()),
        ])?;
        (IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), None, 0)
    } else {
        let address = super::object_address(&spec.virtual_address, spec.address_pool.as_deref(), &vs.metadata)?;
        listener(&address, spec.port, defaults.default_route_domain)?
    };
    let partition = partition_of(spec.partition.as_deref(), defaults)?;
    if spec.pools.is_empty() {
        return Err(InvalidSpec::NoPools);
    }
    let mode = spec.pool_member_type.unwrap_or(defaults.pool_member_type);
    let mut unresolved: Vec<UnresolvedRef> = missing_policy.into_iter().collect();
    let rules =
        MemberRules { family: AddressFamily::of(virtual_address), node_selector: defaults.node_selector.as_ref() };
    let pools = build_pools(&spec.pools, SourceKind::VirtualServer, &source, mode, &rules, cluster, &mut unresolved)?;

    let default_pool = match (&spec.default_pool, &spec.bigip_default_pool) {
        (Some(_), Some(_)) => {
            return Err(InvalidSpec::Field {
                field: "bigipDefaultPool",
                reason: "use defaultPool or bigipDefaultPool, not both".into(),
            })
        }
        (None, Some(path)) => bigip_path("bigipDefaultPool", path)?,
        (Some(wanted), None) if pools.iter().any(|p| &p.name == wanted) => wanted.clone(),
        (Some(wanted), None) => return Err(InvalidSpec::DefaultPool { value: wanted.clone() }),
        (None, None) => pools[0].name.clone(),
    };
    let routes = build_routes(&spec.rules, &pools, &source, virtual_address)?;
    let redirects = build_redirects(spec.app_root.as_deref(), &spec.redirects)?;
    let persistence = spec.persistence.unwrap_or_default();
    if persistence == Persistence::DestinationAddress {
        return Err(InvalidSpec::Field {
            field: "persistence",
            reason: "destination-address persistence is for TransportServers; use cookie or source-address".into(),
        });
    }
    let profiles = build_profiles(
        ProfileUse::Virtual {
            tls: spec.tls.as_ref().map(|t| t.mode),
            x_forwarded_for: spec.x_forwarded_for,
            persistence,
        },
        spec.profiles.as_ref(),
        &spec.allow_vlans,
        spec.connection_mirroring,
    )?;
    let mut profiles = profiles;
    for path in &spec.ltm_policies {
        let path = bigip_path("ltmPolicies[]", path)?;
        if !profiles.ltm_policies.contains(&path) {
            profiles.ltm_policies.push(path);
        }
    }
    if !profiles.ltm_policies.is_empty() && spec.tls.as_ref().is_some_and(|t| t.mode == TlsMode::Passthrough) {
        return Err(InvalidSpec::Field {
            field: "ltmPolicies",
            reason: "passthrough forwards encrypted traffic: LTM policies need HTTP".into(),
        });
    }
    let frontend = match spec.tls.as_ref() {
        Some(tls) if tls.mode == TlsMode::Passthrough => {
            if spec.x_forwarded_for || spec.waf_policy.is_some() || persistence == Persistence::Cookie {
                return Err(InvalidSpec::Tls {
                    reason: "passthrough forwards encrypted traffic: xForwardedFor, wafPolicy and cookie persistence need HTTP".into(),
                });
            }
            if let Some(index) = spec.rules.iter().position(|r| r.path.is_some()) {
                return Err(InvalidSpec::Rule {
                    index,
                    reason: "with TLS passthrough only host rules (matched on the SNI name) are possible".into(),
                });
            }
            if let Some(index) = routes.iter().position(|r| r.persistence.is_some()) {
                return Err(InvalidSpec::Rule {
                    index,
                    reason: "with TLS passthrough a rule cannot set persistence (the BIG-IP sees no requests)".into(),
                });
            }
            if let Some(index) = routes.iter().position(|r| !r.rewrite.is_empty()) {
                return Err(InvalidSpec::Rule {
                    index,
                    reason: "with TLS passthrough requests cannot be rewritten (rewrites and headers need HTTP)".into(),
                });
            }
            if !redirects.is_empty() {
                return Err(InvalidSpec::Tls {
                    reason: "passthrough forwards encrypted traffic: redirects and appRoot need HTTP".into(),
                });
            }
            Frontend::TlsPassthrough { routes }
        }
        tls => Frontend::Http {
            routes,
            redirects,
            tls: match tls {
                Some(tls) if tls.http_port == Some(spec.port) => {
                    return Err(InvalidSpec::Tls { reason: format!("httpPort {} is the HTTPS port", spec.port) })
                }
                Some(tls) => resolve_tls(tls, &source, cluster, &mut unresolved)?,
                None => None,
            },
            x_forwarded_for: spec.x_forwarded_for,
            waf_policy: spec.waf_policy.as_deref().map(|policy| bigip_path("wafPolicy", policy)).transpose()?,
        },
    };

    Ok(BuiltApplication {
        application: DesiredApplication {
            source,
            kind: SourceKind::VirtualServer,
            name,
            partition,
            virtual_address,
            route_domain,
            port,
            frontend,
            snat: desired_snat(spec.snat, spec.snat_pool.as_deref())?,
            persistence,
            irules: build_irules(&spec.i_rules)?,
            source_ranges: build_source_ranges(&spec.allow_source_ranges)?,
            address_options: spec.virtual_address_options.clone(),
            pools,
            default_pool,
            profiles,
            pools_only,
            group: None,
        },
        unresolved,
    })
}

/// The object's spec merged with its BigIpPolicy (`merge`), or None without one; and the
/// policy it names when that does not exist (it then blocks programming the object).
pub(super) fn with_policy<T>(
    policy: Option<&str>,
    source: &ObjectKey,
    cluster: &dyn ClusterView,
    merge: impl FnOnce(&crate::crd::BigIpPolicySpec) -> T,
) -> (Option<T>, Option<UnresolvedRef>) {
    let Some(name) = policy else { return (None, None) };
    match cluster.policy(&source.namespace, name) {
        Some(found) => (Some(merge(&found.spec)), None),
        None => (None, Some(UnresolvedRef::PolicyNotFound { policy: name.to_string() })),
    }
}

/// A pool-only object (no address) may not set what only a virtual server has: the first
/// such field set is refused.
pub(super) fn refuse_without_virtual(fields: &[(&'static str, bool)]) -> Result<(), InvalidSpec> {
    match fields.iter().find(|(_, set)| *set) {
        None => Ok(()),
        Some((field, _)) => Err(InvalidSpec::Field {
            field,
            reason: "this object has no virtual address (it programs only its pools): give it virtualAddress or \
                     addressPool, or leave this out"
                .into(),
        }),
    }
}

/// The virtual address and port of a spec.
/// The virtual address, its route domain (`10.1.10.80%2`; `%0`, the default, is no route
/// domain) and the port of a spec.
/// The address, route domain and port of a virtual server. An address without `%<id>` is in
/// the partition's default route domain (`default_route_domain`, `--default-route-domain`),
/// which is then written out: `None` stands for route domain 0.
pub(super) fn listener(
    address: &str,
    port: i32,
    default_route_domain: u16,
) -> Result<(IpAddr, Option<u16>, u16), InvalidSpec> {
    let invalid = || InvalidSpec::VirtualAddress { value: address.to_string() };
    let (ip, route_domain) = match address.split_once('%') {
        None => (address, None),
        Some((ip, domain)) if !domain.is_empty() && domain.chars().all(|c| c.is_ascii_digit()) => {
            (ip, Some(domain.parse::<u16>().map_err(|_| invalid())?))
        }
        Some(_) => return Err(invalid()),
    };
    let virtual_address: IpAddr = ip.parse().map_err(|_| invalid())?;
    let port = u16::try_from(port).ok().filter(|p| *p != 0).ok_or(InvalidSpec::Port { value: port })?;
    if route_domain == Some(0) && default_route_domain != 0 {
        // AS3 drops a %0 in a tenant whose default route domain is not 0 and puts the address
        // in the default one (F5 AS3 issue 829): refused rather than programmed elsewhere.
        return Err(InvalidSpec::Field {
            field: "virtualAddress",
            reason: format!(
                "{address}: route domain 0 in a partition whose default route domain is {default_route_domain} \
                 (--default-route-domain); AS3 would place the address in route domain {default_route_domain}"
            ),
        });
    }
    Ok((virtual_address, Some(route_domain.unwrap_or(default_route_domain)).filter(|domain| *domain != 0), port))
}

/// Validates the pools and resolves their members; unresolved Services leave a pool empty.
pub(super) fn build_pools(
    specs: &[Pool],
    kind: SourceKind,
    source: &ObjectKey,
    mode: PoolMemberType,
    rules: &MemberRules<'_>,
    cluster: &dyn ClusterView,
    unresolved: &mut Vec<UnresolvedRef>,
) -> Result<Vec<DesiredPool>, InvalidSpec> {
    let mut pools = Vec::with_capacity(specs.len());
    for (index, pool) in specs.iter().enumerate() {
        validate_pool_name(index, &pool.name, &specs[..index])?;
        let monitors = pool
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| desired_monitor(index, i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let namespace = pool.namespace.as_deref().unwrap_or(&source.namespace);
        // The pool's node selector, with the operator's (both must match).
        let combined: Option<Selector> = match &pool.node_label_selector {
            None => None,
            Some(text) => {
                let joined = match rules.node_selector {
                    Some(operator) => format!("{operator},{text}"),
                    None => text.clone(),
                };
                Some(joined.parse().map_err(|e| InvalidSpec::Field {
                    field: "pools[].nodeLabelSelector",
                    reason: format!("pool {:?}: {text:?} is not a label selector: {e}", pool.name),
                })?)
            }
        };
        let pool_rules = MemberRules { node_selector: combined.as_ref().or(rules.node_selector), ..*rules };
        let resolve = |service: &str, port: &IntOrString, unresolved: &mut Vec<UnresolvedRef>| {
            let lookup = ServiceLookup { kind, source, namespace, pool: &pool.name, mode, rules: &pool_rules };
            lookup.members(service, port, cluster, unresolved)
        };
        let mut load_balancing_mode = pool.load_balancing_mode;
        let members = if pool.alternate_backends.is_empty() {
            resolve(&pool.service, &pool.service_port, unresolved)
        } else {
            let invalid = |reason: String| InvalidSpec::Field {
                field: "pools[].alternateBackends",
                reason: format!("pool {:?}: {reason}", pool.name),
            };
            if !matches!(
                load_balancing_mode,
                LoadBalancingMode::RoundRobin
                    | LoadBalancingMode::RatioMember
                    | LoadBalancingMode::RatioLeastConnectionsMember
            ) {
                return Err(invalid(format!(
                    "weights are member ratios: use loadBalancingMode ratio-member (the default with weights) or ratio-least-connections-member, not {}",
                    load_balancing_mode.as3_name()
                )));
            }
            if load_balancing_mode == LoadBalancingMode::RoundRobin {
                load_balancing_mode = LoadBalancingMode::RatioMember;
            }
            let mut backends: Vec<(i32, Vec<PoolMember>)> = Vec::with_capacity(pool.alternate_backends.len() + 1);
            let mut seen: Vec<&str> = vec![pool.service.as_str()];
            let primary = pool.weight.unwrap_or(100);
            backends.push((primary, resolve(&pool.service, &pool.service_port, unresolved)));
            for backend in &pool.alternate_backends {
                if seen.contains(&backend.service.as_str()) {
                    return Err(invalid(format!("Service {:?} is named twice", backend.service)));
                }
                seen.push(&backend.service);
                backends.push((backend.weight, resolve(&backend.service, &backend.service_port, unresolved)));
            }
            if let Some((weight, _)) = backends.iter().find(|(weight, _)| !(0..=100).contains(weight)) {
                return Err(invalid(format!("weight {weight} is outside 0-100")));
            }
            if backends.iter().all(|(weight, _)| *weight == 0) {
                return Err(invalid("every weight is 0: the pool would take no connections".into()));
            }
            weighted_members(backends)
        };
        let bounded = |field: &'static str, value: Option<i32>, max: i32| -> Result<Option<u32>, InvalidSpec> {
            match value {
                None => Ok(None),
                Some(v) if (0..=max).contains(&v) => Ok(u32::try_from(v).ok()),
                Some(v) => {
                    Err(InvalidSpec::Field { field, reason: format!("pool {:?}: {v} is outside 0-{max}", pool.name) })
                }
            }
        };
        pools.push(DesiredPool {
            name: pool.name.clone(),
            load_balancing_mode,
            monitors,
            monitor_match: pool.monitor_match,
            minimum_members_active: bounded("pools[].minimumMembersActive", pool.minimum_members_active, 65535)?,
            connection_limit: bounded("pools[].connectionLimit", pool.connection_limit, 65535)?.filter(|l| *l > 0),
            slow_ramp_time: bounded("pools[].slowRampTime", pool.slow_ramp_time, 900)?,
            members: with_static_members(members, pool, rules.family)?,
            options: PoolOptions {
                bigip_monitors: {
                    let mut paths = Vec::with_capacity(pool.bigip_monitors.len());
                    for path in &pool.bigip_monitors {
                        paths.push(bigip_path("pools[].bigipMonitors", path)?);
                    }
                    paths.dedup();
                    paths
                },
                service_down_action: pool.service_down_action.map(|action| match action {
                    ServiceDownAction::None => "none",
                    ServiceDownAction::Reset => "reset",
                    ServiceDownAction::Drop => "drop",
                    ServiceDownAction::Reselect => "reselect",
                }),
                reselect_tries: match (pool.reselect_tries, pool.service_down_action) {
                    (None, _) => None,
                    (Some(_), action) if action != Some(ServiceDownAction::Reselect) => {
                        return Err(InvalidSpec::Field {
                            field: "pools[].reselectTries",
                            reason: format!(
                                "pool {:?}: reselectTries goes with serviceDownAction: reselect",
                                pool.name
                            ),
                        })
                    }
                    (tries, _) => bounded("pools[].reselectTries", tries, 65535)?,
                },
            },
        });
    }
    Ok(pools)
}

/// The pool's members with its static (non-Kubernetes) members added (taking new connections,
/// unweighted), checked: an address of the virtual address's family, a port 1-65535.
fn with_static_members(
    mut members: Vec<PoolMember>,
    pool: &Pool,
    family: AddressFamily,
) -> Result<Vec<PoolMember>, InvalidSpec> {
    for (index, member) in pool.static_members.iter().enumerate() {
        let invalid = |reason: String| InvalidSpec::Field {
            field: "pools[].staticMembers",
            reason: format!("pool {:?}, member {index}: {reason}", pool.name),
        };
        let address: std::net::IpAddr =
            member.address.parse().map_err(|_| invalid(format!("{:?} is not an IP address", member.address)))?;
        if AddressFamily::of(address) != family {
            return Err(invalid(format!("{address} is not of the virtual address's family")));
        }
        let port = u16::try_from(member.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid(format!("port {} is outside 1-65535", member.port)))?;
        members.push(PoolMember { address, port, state: super::MemberState::Active, ratio: 0 });
    }
    members.sort();
    members.dedup();
    Ok(members)
}

/// How a pool's Services are looked up.
struct ServiceLookup<'a> {
    kind: SourceKind,
    source: &'a ObjectKey,
    /// The namespace of the pool's Services.
    namespace: &'a str,
    pool: &'a str,
    mode: PoolMemberType,
    rules: &'a MemberRules<'a>,
}

impl ServiceLookup<'_> {
    /// The members of one Service of the pool; a reference that does not resolve is reported in
    /// `unresolved` and gives none.
    fn members(
        &self,
        service: &str,
        port: &IntOrString,
        cluster: &dyn ClusterView,
        unresolved: &mut Vec<UnresolvedRef>,
    ) -> Vec<PoolMember> {
        let (namespace, source) = (self.namespace, self.source);
        let foreign = namespace != source.namespace;
        // How the Service is named in messages: with its namespace when it is another one.
        let service_name = if foreign { format!("{namespace}/{service}") } else { service.to_string() };
        let permitted = !foreign
            || cluster
                .reference_grants(namespace)
                .iter()
                .any(|grant| grant.permits_service(self.kind.as_str(), &source.namespace, service));
        let pool = self.pool.to_string();
        let Some(found) = permitted.then(|| cluster.service(namespace, service)).flatten() else {
            unresolved.push(if permitted {
                UnresolvedRef::ServiceNotFound { pool, service: service_name }
            } else {
                UnresolvedRef::RefNotPermitted {
                    pool,
                    service: service_name,
                    kind: self.kind.as_str(),
                    namespace: source.namespace.clone(),
                }
            });
            return Vec::new();
        };
        let Some(service_port) = find_service_port(&found, port) else {
            unresolved.push(UnresolvedRef::ServicePortNotFound {
                pool,
                service: service_name,
                port: int_or_string_text(port),
            });
            return Vec::new();
        };
        let slices = cluster.endpoint_slices(namespace, service);
        // Only nodeport members are nodes: a cluster-mode pool must not depend on them.
        let nodes = if self.mode == PoolMemberType::Nodeport { cluster.nodes() } else { Vec::new() };
        resolve_members(self.mode, &found, service_port, &slices, &nodes, self.rules).unwrap_or_else(|e| {
            unresolved.push(e);
            Vec::new()
        })
    }
}

/// The members of several weighted Services as one pool: each member's ratio (1-100) is its
/// Service's weight divided among the Service's members, scaled so the largest share is 100,
/// so each Service gets its weight's share of new connections (exactly while the shares fit
/// ratios of 1-100; a Service with many members and a small weight gets at least ratio 1 per
/// member). Services of weight 0 give no members.
pub(super) fn weighted_members(backends: Vec<(i32, Vec<PoolMember>)>) -> Vec<PoolMember> {
    let share = |weight: i32, count: usize| f64::from(weight) / count.max(1) as f64;
    let largest = backends.iter().map(|(w, members)| share(*w, members.len())).fold(0.0_f64, f64::max);
    let mut members = Vec::new();
    for (weight, own) in backends {
        if weight == 0 || largest <= 0.0 {
            continue;
        }
        let scaled = (100.0 * share(weight, own.len()) / largest).round();
        // Within 1..=100 by construction; clamped against rounding.
        let ratio = scaled.clamp(1.0, 100.0) as u8;
        members.extend(own.into_iter().map(|member| PoolMember { ratio, ..member }));
    }
    members.sort();
    members.dedup();
    members
}

/// Rules in evaluation order: exact hosts, then wildcard hosts (longer suffix first), then no
/// host; within each, exact paths, then longer prefixes, then no path. Spec order breaks ties,
/// so the most specific rule wins whatever the order in the spec.
pub(super) fn build_routes(
    rules: &[RoutingRule],
    pools: &[DesiredPool],
    source: &ObjectKey,
    virtual_address: IpAddr,
) -> Result<Vec<DesiredRoute>, InvalidSpec> {
    let mut routes = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let invalid = |reason: String| InvalidSpec::Rule { index, reason };
        if !pools.iter().any(|p| p.name == rule.pool) {
            return Err(invalid(format!("pool {:?} is not one of spec.pools", rule.pool)));
        }
        let host = match rule.host.as_deref() {
            None => None,
            Some(host) => Some(host_match(host).map_err(invalid)?),
        };
        let path = match rule.path.as_deref() {
            None => None,
            Some(path) if !path.starts_with('/') => return Err(invalid(format!("path {path:?} must start with '/'"))),
            Some(path) if path.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\') => {
                return Err(invalid(format!("path {path:?} holds whitespace, quotes or backslashes")))
            }
            Some(path) => match rule.path_type {
                PathType::Exact => Some(PathMatch::Exact(path.to_string())),
                PathType::Prefix => {
                    let trimmed = path.trim_end_matches('/');
                    (!trimmed.is_empty()).then(|| PathMatch::Prefix(trimmed.to_string()))
                }
            },
        };
        if host.is_none() && path.is_none() {
            // `/` as a prefix matches everything: what the default pool is for.
            return Err(invalid(
                "a rule for every request is what defaultPool is for; give it a host or a longer path".into(),
            ));
        }
        let rewrite = build_rewrite(rule, path.as_ref()).map_err(invalid)?;
        let persistence = rule.persistence.as_ref().map(|p| route_persistence(p, source, &rule.pool, virtual_address));
        let route = DesiredRoute { host, path, pool: rule.pool.clone(), rewrite, persistence };
        if let Some(earlier) = routes.iter().position(|r: &DesiredRoute| r.host == route.host && r.path == route.path) {
            return Err(invalid(format!("matches the same requests as spec.rules[{earlier}]")));
        }
        routes.push(route);
    }
    sort_routes(&mut routes);
    Ok(routes)
}

/// A rule's persistence as the BIG-IP's policy action takes it: the cookie named and aged,
/// the address records for the whole address of the virtual's family.
fn route_persistence(
    spec: &crate::crd::RulePersistence,
    source: &ObjectKey,
    pool: &str,
    virtual_address: IpAddr,
) -> RoutePersistence {
    use crate::crd::RulePersistenceMethod as Method;
    let netmask = if virtual_address.is_ipv6() { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" } else { "255.255.255.255" };
    let seconds = spec.timeout.and_then(|t| u32::try_from(t).ok());
    match spec.method {
        Method::None => RoutePersistence::Disabled,
        Method::Cookie => RoutePersistence::Cookie {
            name: spec
                .cookie_name
                .clone()
                .unwrap_or_else(|| format!("BIGipServer_{}_{}_{pool}", source.namespace, source.name)),
            expiry: cookie_expiry(seconds.unwrap_or(0)),
        },
        Method::SourceAddress => RoutePersistence::SourceAddress {
            netmask: netmask.to_owned(),
            timeout: seconds.unwrap_or(ADDRESS_PERSISTENCE_TIMEOUT),
        },
        Method::DestinationAddress => RoutePersistence::DestinationAddress {
            netmask: netmask.to_owned(),
            timeout: seconds.unwrap_or(ADDRESS_PERSISTENCE_TIMEOUT),
        },
    }
}

/// BIG-IP's idle timeout of address persistence records (`/Common/source_addr`), in seconds.
const ADDRESS_PERSISTENCE_TIMEOUT: u32 = 180;

/// A cookie lifetime as the policy action writes it, `[Nd]HH:MM:SS`; 0 is a session cookie.
fn cookie_expiry(seconds: u32) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    if days == 0 {
        clock
    } else {
        format!("{days}d{clock}")
    }
}

/// Sorts routes into evaluation order (see [`build_routes`]); the sort is stable.
pub(super) fn sort_routes(routes: &mut [DesiredRoute]) {
    routes.sort_by_key(|r| specificity(&r.host, &r.path));
}

/// The evaluation rank of a host and path match: lower goes first.
fn specificity(host: &Option<HostMatch>, path: &Option<PathMatch>) -> ((u8, usize), (u8, usize)) {
    let rank = |(host, path): (&Option<HostMatch>, &Option<PathMatch>)| {
        let host = match host {
            Some(HostMatch::Exact(_)) => (0, 0),
            Some(HostMatch::Suffix(s)) => (1, usize::MAX - s.len()),
            None => (2, 0),
        };
        let path = match path {
            Some(PathMatch::Exact(_)) => (0, 0),
            Some(PathMatch::Prefix(p)) => (1, usize::MAX - p.len()),
            None => (2, 0),
        };
        (host, path)
    };
    rank((host, path))
}

/// Characters a rewritten path may hold: none that Tcl, AS3's `tcl:` values, would read.
fn rewritten_path_ok(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 1024
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "._~!&'()*+,=:@%/-".contains(c))
}

/// A rule's rewrites and headers, checked.
fn build_rewrite(rule: &RoutingRule, path: Option<&PathMatch>) -> Result<RouteRewrite, String> {
    if let Some(rewritten) = &rule.rewrite_path {
        if path.is_none() {
            return Err("rewritePath replaces the matched path: the rule needs a path".into());
        }
        if !rewritten_path_ok(rewritten) {
            return Err(format!(
                "rewritePath {rewritten:?} must start with '/' and hold only letters, digits and ._~!&'()*+,=:@%/-"
            ));
        }
    }
    if let Some(host) = &rule.rewrite_host {
        let (name, port) = host.split_once(':').map_or((host.as_str(), None), |(n, p)| (n, Some(p)));
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
        if host_match(name).is_err() || name.starts_with("*.") || !port_ok {
            return Err(format!("rewriteHost {host:?} is not a DNS name (with an optional :port)"));
        }
    }
    let headers = |field: &str, list: &[HeaderValue]| -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(list.len());
        for header in list {
            let name_ok = !header.name.is_empty()
                && header.name.len() <= 128
                && header.name.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
            if !name_ok {
                return Err(format!("{field}: {:?} is not an HTTP header name", header.name));
            }
            if header.value.len() > 1024
                || header.value.chars().any(|c| c.is_control() || c == '[' || c == ']')
                || header.value.to_ascii_lowercase().starts_with("tcl:")
            {
                return Err(format!(
                    "{field}: the value of {} must be printable, without brackets, and not start with tcl:",
                    header.name
                ));
            }
            if out.iter().any(|(name, _)| name.eq_ignore_ascii_case(&header.name)) {
                return Err(format!("{field}: {} is set twice", header.name));
            }
            out.push((header.name.clone(), header.value.clone()));
        }
        Ok(out)
    };
    Ok(RouteRewrite {
        path: rule.rewrite_path.clone(),
        host: rule.rewrite_host.clone(),
        request_headers: headers("requestHeaders", &rule.request_headers)?,
        response_headers: headers("responseHeaders", &rule.response_headers)?,
    })
}

/// `appRoot` and `redirects`, checked, in evaluation order (most specific first, `appRoot`
/// by its exact path `/`).
fn build_redirects(app_root: Option<&str>, specs: &[Redirect]) -> Result<Vec<DesiredRedirect>, InvalidSpec> {
    let mut redirects = Vec::with_capacity(specs.len() + 1);
    if let Some(root) = app_root {
        if !rewritten_path_ok(root) || root == "/" {
            return Err(InvalidSpec::Field {
                field: "appRoot",
                reason: format!(
                    "{root:?} must be a path other than / holding only letters, digits and ._~!&'()*+,=:@%/-"
                ),
            });
        }
        redirects.push(DesiredRedirect {
            host: None,
            path: Some(PathMatch::Exact("/".into())),
            location: root.to_string(),
            code: 302,
        });
    }
    for (index, spec) in specs.iter().enumerate() {
        let invalid =
            |reason: String| InvalidSpec::Field { field: "redirects", reason: format!("[{index}]: {reason}") };
        let host = spec.host.as_deref().map(host_match).transpose().map_err(invalid)?;
        let path = match spec.path.as_deref() {
            None => None,
            Some(path)
                if !path.starts_with('/')
                    || path.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\') =>
            {
                return Err(invalid(format!(
                    "path {path:?} must start with '/' and hold no whitespace, quotes or backslashes"
                )))
            }
            Some(path) => Some(match spec.path_type {
                PathType::Exact => PathMatch::Exact(path.to_string()),
                PathType::Prefix => PathMatch::Prefix(path.trim_end_matches('/').to_string()),
            }),
        };
        if host.is_none() && path.is_none() {
            return Err(invalid("a redirect needs a host, a path or both".into()));
        }
        let location_ok = !spec.location.is_empty()
            && spec.location.len() <= 2048
            && !spec.location.chars().any(|c| c.is_whitespace() || c.is_control() || "[]\"\\".contains(c))
            && !spec.location.to_ascii_lowercase().starts_with("tcl:");
        if !location_ok {
            return Err(invalid(format!(
                "location {:?} must be a URL or path without spaces, quotes or brackets",
                spec.location
            )));
        }
        let code = u16::try_from(spec.code).ok().filter(|c| [301, 302, 303, 307, 308].contains(c));
        let Some(code) = code else {
            return Err(invalid(format!("code {} is not 301, 302, 303, 307 or 308", spec.code)));
        };
        redirects.push(DesiredRedirect { host, path, location: spec.location.clone(), code });
    }
    redirects.sort_by_key(|r| specificity(&r.host, &r.path));
    Ok(redirects)
}

fn host_match(host: &str) -> Result<HostMatch, String> {
    let lower = host.to_ascii_lowercase();
    let (wildcard, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("host {host:?} is not a DNS name (or *.<DNS name>)"));
    }
    Ok(if wildcard { HostMatch::Suffix(format!(".{name}")) } else { HostMatch::Exact(name.to_string()) })
}

pub(super) fn resolve_tls(
    tls: &Tls,
    source: &ObjectKey,
    cluster: &dyn ClusterView,
    unresolved: &mut Vec<UnresolvedRef>,
) -> Result<Option<TlsTermination>, InvalidSpec> {
    let invalid = |reason: &str| InvalidSpec::Tls { reason: reason.to_string() };
    let server = match (&tls.secret_name, &tls.client_ssl_profile) {
        (Some(secret), None) => {
            const FIELD: &str = "spec.tls.secretName";
            match cluster.secret(&source.namespace, secret) {
                None => {
                    unresolved.push(UnresolvedRef::SecretNotFound { field: FIELD, secret: secret.clone() });
                    return Ok(None);
                }
                Some(found) => match server_certificate(FIELD, &found) {
                    Ok(server) => server,
                    Err(e) => {
                        unresolved.push(e);
                        return Ok(None);
                    }
                },
            }
        }
        (None, Some(profile)) => super::ServerTls::Profile(bigip_path("tls.clientSslProfile", profile)?),
        _ => return Err(invalid("needs exactly one of secretName and clientSslProfile")),
    };
    let backend = match tls.mode {
        TlsMode::Terminate => {
            if tls.server_ssl_profile.is_some() || tls.backend_ca_secret_name.is_some() {
                return Err(invalid("serverSslProfile and backendCaSecretName apply to mode reencrypt only"));
            }
            None
        }
        TlsMode::Reencrypt => Some(match (&tls.server_ssl_profile, &tls.backend_ca_secret_name) {
            (None, None) => BackendTls::Unverified,
            (Some(profile), None) => BackendTls::Profile(bigip_path("tls.serverSslProfile", profile)?),
            (None, Some(secret)) => {
                const FIELD: &str = "spec.tls.backendCaSecretName";
                match cluster.secret(&source.namespace, secret) {
                    None => {
                        unresolved.push(UnresolvedRef::SecretNotFound { field: FIELD, secret: secret.clone() });
                        return Ok(None);
                    }
                    Some(found) => match ca_bundle(FIELD, &found) {
                        Ok(ca_bundle) => BackendTls::VerifiedBy { ca_bundle },
                        Err(e) => {
                            unresolved.push(e);
                            return Ok(None);
                        }
                    },
                }
            }
            (Some(_), Some(_)) => return Err(invalid("use serverSslProfile or backendCaSecretName, not both")),
        }),
        TlsMode::Passthrough => return Err(invalid("passthrough takes no certificate")),
    };
    let options = match server {
        super::ServerTls::Certificate { .. } => match tls_options(tls, source, cluster, unresolved)? {
            Some(options) => options,
            None => return Ok(None),
        },
        _ => TlsOptions::default(),
    };
    if tls.allow_http && tls.http_redirect {
        return Err(invalid("allowHttp serves plain HTTP on port 80: set httpRedirect: false"));
    }
    let http_port = match tls.http_port {
        None => 80,
        Some(port) => u16::try_from(port)
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| invalid("httpPort must be between 1 and 65535"))?,
    };
    if tls.http_port.is_some() && !tls.http_redirect && !tls.allow_http {
        return Err(invalid("httpPort is the port httpRedirect or allowHttp listens on: set one of them"));
    }
    Ok(Some(TlsTermination {
        server,
        backend,
        http_redirect: tls.http_redirect,
        serve_http: tls.allow_http,
        http_port,
        options: Box::new(options),
    }))
}

/// Versions, ciphers and client certificates of a certificate from a Secret. None: the client
/// CA Secret does not resolve (reported in `unresolved`; the object is not programmed).
fn tls_options(
    tls: &Tls,
    source: &ObjectKey,
    cluster: &dyn ClusterView,
    unresolved: &mut Vec<UnresolvedRef>,
) -> Result<Option<TlsOptions>, InvalidSpec> {
    let invalid = |reason: &str| InvalidSpec::Tls { reason: reason.to_string() };
    let versions = match (tls.min_version, tls.max_version) {
        (None, None) => None,
        (min, max) => {
            let min = min.unwrap_or(TlsVersion::V1_0);
            let max = max.unwrap_or(TlsVersion::V1_2.max(min));
            if min > max {
                return Err(invalid("minVersion is newer than maxVersion"));
            }
            let all = [TlsVersion::V1_0, TlsVersion::V1_1, TlsVersion::V1_2, TlsVersion::V1_3];
            Some(all.map(|v| min <= v && v <= max))
        }
    };
    let ciphers = match (&tls.ciphers, &tls.cipher_group) {
        (Some(_), Some(_)) => return Err(invalid("use ciphers or cipherGroup, not both")),
        (Some(text), None) => {
            let ok = !text.is_empty()
                && text.len() <= 1024
                && text.chars().all(|c| c.is_ascii_alphanumeric() || "!+:@_.,=-".contains(c));
            if !ok {
                return Err(invalid(
                    "ciphers holds characters a cipher string does not (letters, digits, !+:@_.,=- only)",
                ));
            }
            Some(Ciphers::String(text.clone()))
        }
        (None, Some(group)) => Some(Ciphers::Group(bigip_path("tls.cipherGroup", group)?)),
        (None, None) => None,
    };
    if versions.is_some_and(|v| v[3]) && !matches!(ciphers, Some(Ciphers::Group(_))) {
        return Err(invalid(
            "TLS 1.3 on the BIG-IP needs a cipher group: set cipherGroup (for example /Common/f5-default)",
        ));
    }
    let client_certificates = match &tls.client_certificates {
        None => None,
        Some(spec) => {
            const FIELD: &str = "spec.tls.clientCertificates.caSecretName";
            let found = cluster.secret(&source.namespace, &spec.ca_secret_name);
            let bundle = match found.as_deref().map(|secret| ca_bundle(FIELD, secret)) {
                None => Err(UnresolvedRef::SecretNotFound { field: FIELD, secret: spec.ca_secret_name.clone() }),
                Some(result) => result,
            };
            match bundle {
                Ok(ca_bundle) => {
                    Some(ClientAuthentication { required: spec.mode == ClientCertificateMode::Require, ca_bundle })
                }
                Err(e) => {
                    unresolved.push(e);
                    return Ok(None);
                }
            }
        }
    };
    Ok(Some(TlsOptions { versions, ciphers, client_certificates }))
}

/// What kind of virtual server profiles are checked for.
pub(super) enum ProfileUse {
    /// A VirtualServer: its TLS mode, whether it inserts X-Forwarded-For, its persistence.
    Virtual { tls: Option<TlsMode>, x_forwarded_for: bool, persistence: Persistence },
    /// A TransportServer: UDP or not, its persistence.
    Transport { udp: bool, persistence: Persistence },
}

/// `spec.profiles`, `allowVlans` and `connectionMirroring`, checked against what the virtual
/// server is (the BIG-IP refuses an HTTP profile on a TCP virtual, a UDP profile on a TCP one).
pub(super) fn build_profiles(
    usage: ProfileUse,
    spec: Option<&Profiles>,
    allow_vlans: &[String],
    mirroring: bool,
) -> Result<DesiredProfiles, InvalidSpec> {
    let mut vlans = Vec::with_capacity(allow_vlans.len());
    for vlan in allow_vlans {
        vlans.push(bigip_path("allowVlans[]", vlan)?);
    }
    vlans.sort();
    vlans.dedup();
    let Some(spec) = spec else { return Ok(DesiredProfiles { allow_vlans: vlans, mirroring, ..Default::default() }) };
    let path = |field: &'static str, value: &Option<String>| value.as_deref().map(|v| bigip_path(field, v)).transpose();
    let refuse = |field: &'static str, reason: &str| InvalidSpec::Field { field, reason: reason.to_string() };
    let profiles = DesiredProfiles {
        http: path("profiles.http", &spec.http)?,
        http2: path("profiles.http2", &spec.http2)?,
        tcp: match (&spec.tcp, &spec.tcp_client, &spec.tcp_server) {
            (Some(both), None, None) => Some(TcpProfiles::Both(bigip_path("profiles.tcp", both)?)),
            (None, None, None) => None,
            (None, client, server) => {
                Some(TcpProfiles::Sides(path("profiles.tcpClient", client)?, path("profiles.tcpServer", server)?))
            }
            (Some(_), _, _) => {
                return Err(refuse("profiles.tcp", "use tcp for both sides, or tcpClient/tcpServer, not both"))
            }
        },
        udp: path("profiles.udp", &spec.udp)?,
        fast_l4: path("profiles.fastL4", &spec.fast_l4)?,
        one_connect: path("profiles.oneConnect", &spec.one_connect)?,
        http_compression: path("profiles.httpCompression", &spec.http_compression)?,
        web_socket: path("profiles.webSocket", &spec.web_socket)?,
        analytics: path("profiles.analytics", &spec.analytics)?,
        request_logging: path("profiles.requestLogging", &spec.request_logging)?,
        persistence: path("profiles.persistence", &spec.persistence)?,
        allow_vlans: vlans,
        mirroring,
        ltm_policies: Vec::new(),
    };
    let http_only: [(&'static str, bool); 7] = [
        ("profiles.http", profiles.http.is_some()),
        ("profiles.http2", profiles.http2.is_some()),
        ("profiles.oneConnect", profiles.one_connect.is_some()),
        ("profiles.httpCompression", profiles.http_compression.is_some()),
        ("profiles.webSocket", profiles.web_socket.is_some()),
        ("profiles.analytics", profiles.analytics.is_some()),
        ("profiles.requestLogging", profiles.request_logging.is_some()),
    ];
    let first_http_only = http_only.iter().find(|(_, set)| *set).map(|(field, _)| *field);
    let persistence = match usage {
        ProfileUse::Virtual { tls, x_forwarded_for, persistence } => {
            if let Some(field) = first_http_only.filter(|_| tls == Some(TlsMode::Passthrough)) {
                return Err(refuse(
                    field,
                    "passthrough forwards encrypted traffic: HTTP profiles need TLS to end on the BIG-IP",
                ));
            }
            if profiles.http2.is_some() && !matches!(tls, Some(TlsMode::Terminate | TlsMode::Reencrypt)) {
                return Err(refuse(
                    "profiles.http2",
                    "HTTP/2 is offered to clients through TLS (ALPN): it needs spec.tls terminate or reencrypt",
                ));
            }
            if profiles.http.is_some() && x_forwarded_for {
                return Err(refuse(
                    "profiles.http",
                    "xForwardedFor is a setting of the HTTP profile: set it in yours, or drop profiles.http",
                ));
            }
            if profiles.udp.is_some() {
                return Err(refuse(
                    "profiles.udp",
                    "a VirtualServer is TCP; UDP profiles are for TransportServers with protocol udp",
                ));
            }
            if profiles.fast_l4.is_some() {
                return Err(refuse(
                    "profiles.fastL4",
                    "FastL4 forwards packets without HTTP: it is for TransportServers",
                ));
            }
            persistence
        }
        ProfileUse::Transport { udp, persistence } => {
            if let Some(field) = first_http_only {
                return Err(refuse(field, "a TransportServer is L4: HTTP profiles are for VirtualServers"));
            }
            if udp && profiles.tcp.is_some() {
                return Err(refuse("profiles.tcp", "a UDP TransportServer takes profiles.udp, not TCP profiles"));
            }
            if profiles.fast_l4.is_some() && (profiles.tcp.is_some() || profiles.udp.is_some()) {
                return Err(refuse(
                    "profiles.fastL4",
                    "FastL4 replaces the TCP/UDP proxy: not with tcp, tcpClient, tcpServer or udp",
                ));
            }
            if !udp && profiles.udp.is_some() {
                return Err(refuse("profiles.udp", "a TCP TransportServer takes TCP profiles, not profiles.udp"));
            }
            persistence
        }
    };
    if profiles.persistence.is_some() && persistence != Persistence::None {
        return Err(refuse(
            "profiles.persistence",
            "a persistence profile replaces spec.persistence: leave that unset",
        ));
    }
    Ok(profiles)
}

/// Source address translation from the spec's `snat` and `snatPool`.
pub(super) fn desired_snat(snat: SnatMode, pool: Option<&str>) -> Result<DesiredSnat, InvalidSpec> {
    match (snat, pool) {
        (SnatMode::Automap, None) => Ok(DesiredSnat::Automap),
        (SnatMode::None, None) => Ok(DesiredSnat::None),
        (SnatMode::Automap, Some(pool)) => Ok(DesiredSnat::Pool(bigip_path("snatPool", pool)?)),
        (SnatMode::None, Some(_)) => Err(InvalidSpec::Field {
            field: "snatPool",
            reason: "snatPool replaces automap; it cannot be combined with snat: none".into(),
        }),
    }
}

/// iRules: existing ones by path, or declared ones by name and text.
pub(super) fn build_irules(specs: &[IRule]) -> Result<Vec<DesiredIRule>, InvalidSpec> {
    let mut irules: Vec<DesiredIRule> = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let invalid = |reason: String| InvalidSpec::IRule { index, reason };
        let irule = match (&spec.bigip, &spec.name, &spec.text) {
            (Some(path), None, None) => DesiredIRule::Existing(bigip_path("iRules[].bigip", path)?),
            (None, Some(name), Some(text)) => {
                if name.is_empty()
                    || name.len() > 63
                    || !name.starts_with(|c: char| c.is_ascii_lowercase())
                    || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return Err(invalid(format!(
                        "name {name:?} must be a lower-case letter, then lower-case letters, digits and '-'"
                    )));
                }
                if text.trim().is_empty() {
                    return Err(invalid("text is empty".into()));
                }
                if irules.iter().any(|r| matches!(r, DesiredIRule::Inline { name: n, .. } if n == name)) {
                    return Err(invalid(format!("name {name:?} is used by an earlier iRule")));
                }
                DesiredIRule::Inline { name: name.clone(), text: text.clone() }
            }
            _ => return Err(invalid("an iRule is either `bigip` or `name` and `text`".into())),
        };
        irules.push(irule);
    }
    Ok(irules)
}

/// Allowed client CIDRs, normalised and without duplicates.
pub(super) fn build_source_ranges(specs: &[String]) -> Result<Vec<ipnet::IpNet>, InvalidSpec> {
    let mut ranges = Vec::with_capacity(specs.len());
    for (index, value) in specs.iter().enumerate() {
        let net: ipnet::IpNet = value.parse().map_err(|_| InvalidSpec::SourceRange { index, value: value.clone() })?;
        ranges.push(net.trunc());
    }
    ranges.sort();
    ranges.dedup();
    Ok(ranges)
}

/// A full BIG-IP object path such as `/Common/clientssl`.
pub(super) fn bigip_path(field: &'static str, value: &str) -> Result<String, InvalidSpec> {
    let segments: Vec<&str> = value.strip_prefix('/').map(|rest| rest.split('/').collect()).unwrap_or_default();
    let ok = segments.len() >= 2
        && value.len() <= 255
        && segments
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
    if ok {
        Ok(value.to_string())
    } else {
        Err(InvalidSpec::Field { field, reason: format!("{value:?} is not a full BIG-IP path such as /Common/name") })
    }
}

/// `<namespace>_<name>`, checked against AS3's naming rules.
///
/// The name is only unique while neither part holds a `_` (`a_b`/`c` and `a`/`b_c` would
/// share `a_b_c`) or is empty. Kubernetes names never do; manifests read by the offline
/// `render` can.
pub fn application_name(key: &ObjectKey) -> Result<String, InvalidSpec> {
    let value = format!("{}_{}", key.namespace, key.name);
    if key.namespace.is_empty() || key.name.is_empty() {
        return Err(InvalidSpec::ApplicationName { value, reason: "the namespace and name must not be empty" });
    }
    if key.namespace.contains('_') || key.name.contains('_') {
        return Err(InvalidSpec::ApplicationName {
            value,
            reason: "Kubernetes namespaces and names hold no '_', which separates them",
        });
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(InvalidSpec::ApplicationName { value, reason: "AS3 names must start with a letter" });
    }
    if value.len() > AS3_NAME_MAX {
        return Err(InvalidSpec::ApplicationName { value, reason: "longer than AS3's 190 characters" });
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(InvalidSpec::ApplicationName {
            value,
            reason: "only letters, digits, '_', '.' and '-' are allowed",
        });
    }
    Ok(value)
}

/// Properties of an AS3 declaration (`ADC` in the AS3 3.56 schema). Tenants share the
/// declaration's namespace with them, so a partition of one of these names would replace the
/// property and make the declaration invalid.
const ADC_PROPERTIES: &[&str] =
    &["class", "constants", "controls", "id", "label", "remark", "schemaVersion", "scratch", "target", "updateMode"];

/// The partition an object's application goes to: its `spec.partition`, or the operator's
/// default, validated. The one rule the renderer, the reconcile and the cleanup on delete share.
pub fn partition_of(spec_partition: Option<&str>, defaults: &ModelDefaults) -> Result<String, InvalidSpec> {
    let partition = spec_partition.map_or_else(|| defaults.partition.clone(), str::to_string);
    validate_partition(&partition)?;
    Ok(partition)
}

pub(super) fn validate_partition(partition: &str) -> Result<(), InvalidSpec> {
    let invalid = |reason| Err(InvalidSpec::Partition { value: partition.to_string(), reason });
    if partition == "Common" {
        return invalid("the Common partition is reserved");
    }
    if ADC_PROPERTIES.contains(&partition) {
        return invalid("it is the name of an AS3 declaration property");
    }
    if partition.is_empty() || partition.len() > 64 {
        return invalid("must be 1-64 characters");
    }
    if !partition.starts_with(|c: char| c.is_ascii_alphabetic())
        || !partition.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return invalid("must start with a letter and hold only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn validate_pool_name(index: usize, name: &str, earlier: &[Pool]) -> Result<(), InvalidSpec> {
    let invalid = |reason| Err(InvalidSpec::PoolName { index, value: name.to_string(), reason });
    if name.is_empty() || name.len() > 63 {
        return invalid("must be 1-63 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return invalid("must start with a lower-case letter and hold only lower-case letters, digits and '-'");
    }
    if earlier.iter().any(|p| p.name == name) {
        return invalid("is used by an earlier pool");
    }
    Ok(())
}

/// AS3's limits on monitor timing (3.56 schema: `interval` 0-3600, `timeout` 0-900), tighter
/// than the CRD's 86400: a spec beyond them would only fail later as an invalid declaration.
const MONITOR_INTERVAL_MAX: u32 = 3600;
const MONITOR_TIMEOUT_MAX: u32 = 900;

fn desired_monitor(pool: usize, index: usize, monitor: &HealthMonitor) -> Result<DesiredMonitor, InvalidSpec> {
    let invalid = |reason: String| InvalidSpec::Monitor { pool, index, reason };
    let interval = u32::try_from(monitor.interval)
        .ok()
        .filter(|i| (1..=MONITOR_INTERVAL_MAX).contains(i))
        .ok_or_else(|| invalid(format!("interval {} is outside 1-{MONITOR_INTERVAL_MAX}", monitor.interval)))?;
    let timeout = u32::try_from(monitor.timeout)
        .ok()
        .filter(|t| (2..=MONITOR_TIMEOUT_MAX).contains(t))
        .ok_or_else(|| invalid(format!("timeout {} is outside 2-{MONITOR_TIMEOUT_MAX}", monitor.timeout)))?;
    if timeout <= interval {
        return Err(invalid(format!("timeout {timeout} must be greater than interval {interval}")));
    }
    if monitor.monitor_type == crate::crd::MonitorType::Icmp && (monitor.send.is_some() || monitor.receive.is_some()) {
        return Err(invalid("icmp monitors take no send or receive".into()));
    }
    let is = |t: crate::crd::MonitorType| monitor.monitor_type == t;
    if monitor.target_port.is_some() && is(crate::crd::MonitorType::Icmp) {
        return Err(invalid("icmp monitors probe no port".into()));
    }
    if monitor.ssl_profile.is_some() && !is(crate::crd::MonitorType::Https) {
        return Err(invalid("sslProfile is for https monitors".into()));
    }
    let target_port = match monitor.target_port {
        None => None,
        Some(port) => Some(
            u16::try_from(port)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid(format!("targetPort {port} is outside 1-65535")))?,
        ),
    };
    let time_until_up = match monitor.time_until_up {
        None => None,
        Some(seconds) => Some(
            u32::try_from(seconds)
                .ok()
                .filter(|s| *s <= 1800)
                .ok_or_else(|| invalid(format!("timeUntilUp {seconds} is outside 0-1800")))?,
        ),
    };
    let ssl_profile = match &monitor.ssl_profile {
        None => None,
        Some(path) => Some(bigip_path("pools[].monitors[].sslProfile", path)?),
    };
    Ok(DesiredMonitor {
        monitor_type: monitor.monitor_type,
        send: monitor.send.clone(),
        receive: monitor.receive.clone(),
        interval,
        timeout,
        target_port,
        time_until_up,
        ssl_profile,
    })
}

fn int_or_string_text(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}
