//! One TransportServer → one [`DesiredApplication`] (an L4 virtual server).

use super::application::{
    build_irules, build_pools, build_profiles, build_source_ranges, desired_snat, listener, resolve_tls,
    BuiltApplication, ProfileUse,
};
use super::members::{AddressFamily, MemberRules};
use super::{ClusterView, DesiredApplication, Frontend, InvalidSpec, ModelDefaults, ObjectKey, SourceKind};
use crate::crd::{Persistence, TransportProtocol, TransportServer};

/// AS3 object names: at most 190 characters.
const AS3_NAME_MAX: usize = 190;

/// Validates a TransportServer and resolves its pool against the cluster.
pub fn build_transport_application(
    ts: &TransportServer,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
) -> Result<BuiltApplication, InvalidSpec> {
    let source = ObjectKey::of(&ts.metadata);
    let (merged, missing_policy) = super::application::with_policy(ts.spec.policy.as_deref(), &source, cluster, |p| {
        super::policy::merge_transport(&ts.spec, p)
    });
    let spec = merged.as_ref().unwrap_or(&ts.spec);
    let name = transport_application_name(&source)?;
    let pools_only = spec.virtual_address.is_empty() && spec.address_pool.is_none();
    let (virtual_address, route_domain, port) = if pools_only {
        super::application::refuse_without_virtual(&[
            ("port", spec.port != 0),
            ("snatPool", spec.snat_pool.is_some()),
            ("persistence", spec.persistence.is_some()),
            ("iRules", !spec.i_rules.is_empty()),
            ("allowSourceRanges", !spec.allow_source_ranges.is_empty()),
            ("virtualAddressOptions", spec.virtual_address_options.is_some()),
            ("profiles", spec.profiles.is_some()),
            ("allowVlans", !spec.allow_vlans.is_empty()),
            ("connectionMirroring", spec.connection_mirroring),
            ("tls", spec.tls.is_some()),
        ])?;
        (std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), None, 0)
    } else {
        let address = super::object_address(&spec.virtual_address, spec.address_pool.as_deref(), &ts.metadata)?;
        listener(&address, spec.port, defaults.default_route_domain)?
    };
    let partition = super::application::partition_of(spec.partition.as_deref(), defaults)?;
    let persistence = spec.persistence.unwrap_or_default();
    if persistence == Persistence::Cookie {
        return Err(InvalidSpec::Field {
            field: "persistence",
            reason: "cookie persistence needs HTTP; use a VirtualServer, or source-address persistence".into(),
        });
    }
    let mode = spec.pool_member_type.unwrap_or(defaults.pool_member_type);
    let mut unresolved: Vec<super::UnresolvedRef> = missing_policy.into_iter().collect();
    let rules =
        MemberRules { family: AddressFamily::of(virtual_address), node_selector: defaults.node_selector.as_ref() };
    let pools = build_pools(
        std::slice::from_ref(&spec.pool),
        SourceKind::TransportServer,
        &source,
        mode,
        &rules,
        cluster,
        &mut unresolved,
    )?;
    let tls = match (&spec.tls, spec.protocol) {
        (None, _) => None,
        (Some(_), TransportProtocol::Udp) => {
            return Err(InvalidSpec::Tls {
                reason: "TLS offload is for TCP; a UDP TransportServer cannot take tls".into(),
            })
        }
        (Some(_), TransportProtocol::Tcp) if spec.profiles.as_ref().is_some_and(|p| p.fast_l4.is_some()) => {
            return Err(InvalidSpec::Field {
                field: "profiles.fastL4",
                reason: "FastL4 forwards packets without decrypting them: not with tls".into(),
            })
        }
        // A Secret that does not resolve is reported in `unresolved`, which holds the object
        // back: never served without its certificate.
        (Some(tls), TransportProtocol::Tcp) => {
            resolve_tls(&tls.as_virtual_server_tls(), &source, cluster, &mut unresolved)?
        }
    };
    Ok(BuiltApplication {
        application: DesiredApplication {
            source,
            kind: SourceKind::TransportServer,
            name,
            partition,
            virtual_address,
            route_domain,
            port,
            frontend: match spec.protocol {
                TransportProtocol::Tcp => Frontend::Tcp { tls },
                TransportProtocol::Udp => Frontend::Udp,
            },
            snat: desired_snat(spec.snat, spec.snat_pool.as_deref())?,
            persistence,
            irules: build_irules(&spec.i_rules)?,
            source_ranges: build_source_ranges(&spec.allow_source_ranges)?,
            address_options: spec.virtual_address_options.clone(),
            default_pool: spec.pool.name.clone(),
            pools,
            profiles: build_profiles(
                ProfileUse::Transport { udp: spec.protocol == TransportProtocol::Udp, persistence },
                spec.profiles.as_ref(),
                &spec.allow_vlans,
                spec.connection_mirroring,
            )?,
            pools_only,
            group: None,
        },
        unresolved,
    })
}

/// `<namespace>_ts_<name>`: Kubernetes names hold no `_`, so it never equals a
/// VirtualServer's `<namespace>_<name>`.
pub fn transport_application_name(key: &ObjectKey) -> Result<String, InvalidSpec> {
    // The VirtualServer rules (letters, digits, no '_' in either part) apply to both parts.
    super::application::application_name(key)?;
    let value = format!("{}_ts_{}", key.namespace, key.name);
    if value.len() > AS3_NAME_MAX {
        return Err(InvalidSpec::ApplicationName { value, reason: "longer than AS3's 190 characters" });
    }
    Ok(value)
}
