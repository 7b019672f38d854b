//! Which VirtualServers to reconcile when a Service, EndpointSlice or Node changes.

use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::VirtualServer;
use crate::model::cluster::slice_service_name;
use crate::model::members::{node_internal_ip, node_is_ready};

/// VirtualServers in `namespace` with a pool on Service `service`.
pub fn virtual_servers_using(store: &Store<VirtualServer>, namespace: &str, service: &str) -> Vec<ObjectRef<VirtualServer>> {
    store
        .state()
        .iter()
        .filter(|vs| vs.metadata.namespace.as_deref() == Some(namespace))
        .filter(|vs| vs.spec.pools.iter().any(|p| p.service == service))
        .map(|vs| ObjectRef::from(vs.as_ref()))
        .collect()
}

pub fn for_service(store: &Store<VirtualServer>, service: &Service) -> Vec<ObjectRef<VirtualServer>> {
    match (&service.metadata.namespace, &service.metadata.name) {
        (Some(ns), Some(name)) => virtual_servers_using(store, ns, name),
        _ => Vec::new(),
    }
}

pub fn for_endpoint_slice(store: &Store<VirtualServer>, slice: &EndpointSlice) -> Vec<ObjectRef<VirtualServer>> {
    match (&slice.metadata.namespace, slice_service_name(slice)) {
        (Some(ns), Some(service)) => virtual_servers_using(store, ns, service),
        _ => Vec::new(),
    }
}

/// Nodes are members of every nodeport-mode pool, so a node change concerns every
/// VirtualServer; the reconcile posts nothing where the rendered tenant did not change.
pub fn for_node(store: &Store<VirtualServer>, _node: &Node) -> Vec<ObjectRef<VirtualServer>> {
    store.state().iter().map(|vs| ObjectRef::from(vs.as_ref())).collect()
}

/// A hash of what the model reads from a Node, so heartbeats that change nothing else
/// trigger no reconciles.
pub fn node_relevance(node: &Node) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    node_is_ready(node).hash(&mut hasher);
    node_internal_ip(node).hash(&mut hasher);
    node.metadata.labels.hash(&mut hasher);
    node.spec.as_ref().and_then(|s| s.unschedulable).hash(&mut hasher);
    Some(hasher.finish())
}
