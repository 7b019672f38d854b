//! Resolution of a pool's Service reference into BIG-IP pool members.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{PoolMember, UnresolvedRef};
use crate::crd::PoolMemberType;

/// Finds the Service port a pool refers to, by number or by name.
pub fn find_service_port<'a>(service: &'a Service, wanted: &IntOrString) -> Option<&'a ServicePort> {
    let ports = service.spec.as_ref()?.ports.as_ref()?;
    ports.iter().find(|p| match wanted {
        IntOrString::Int(number) => p.port == *number,
        IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

/// Pool members of one Service port in the given mode, sorted and without duplicates.
pub fn resolve_members(
    mode: PoolMemberType,
    service: &Service,
    service_port: &ServicePort,
    slices: &[std::sync::Arc<EndpointSlice>],
    nodes: &[std::sync::Arc<Node>],
) -> Result<Vec<PoolMember>, UnresolvedRef> {
    let service_name = service.metadata.name.clone().unwrap_or_default();
    let mut members = match mode {
        PoolMemberType::Nodeport => {
            let node_port = service_port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| UnresolvedRef::NoNodePort {
                    service: service_name.clone(),
                    port: service_port.port,
                    service_type: service
                        .spec
                        .as_ref()
                        .and_then(|s| s.type_.clone())
                        .unwrap_or_else(|| "ClusterIP".into()),
                })?;
            nodes
                .iter()
                .filter(|n| node_is_ready(n))
                .filter_map(|n| node_internal_ip(n))
                .map(|address| PoolMember { address, port: node_port })
                .collect::<Vec<_>>()
        }
        PoolMemberType::Cluster => slices
            .iter()
            .flat_map(|slice| ready_slice_members(slice, service_port))
            .collect(),
    };
    members.sort();
    members.dedup();
    Ok(members)
}

/// A node takes traffic when its Ready condition is True.
pub fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| conds.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node's first parseable InternalIP address.
pub fn node_internal_ip(node: &Node) -> Option<IpAddr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// Ready endpoints of a slice for the Service port, with the slice's target port.
///
/// EndpointSlice ports carry the Service port's name (empty for a single unnamed port), so the
/// match is by name; an endpoint whose `ready` condition is absent counts as ready, as the
/// EndpointSlice API specifies.
fn ready_slice_members(slice: &EndpointSlice, service_port: &ServicePort) -> Vec<PoolMember> {
    if slice.address_type == "FQDN" {
        return Vec::new();
    }
    let wanted_name = service_port.name.clone().unwrap_or_default();
    let Some(target_port) = slice
        .ports
        .as_ref()
        .and_then(|ports| ports.iter().find(|p| p.name.clone().unwrap_or_default() == wanted_name))
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
    else {
        return Vec::new();
    };
    slice
        .endpoints
        .iter()
        .flatten()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| e.addresses.iter())
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|address| PoolMember { address, port: target_port })
        .collect()
}
