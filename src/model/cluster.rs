//! Read access to the Kubernetes objects the model resolves references against.
//!
//! The controller implements [`ClusterView`] over its reflector stores; the offline `render`
//! command and the tests use [`ClusterObjects`], an in-memory set.

use crate::crd::{BigIpListenerGroup, BigIpPolicy, ReferenceGrant};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use k8s_openapi::api::core::v1::{Node, Secret};

/// The label EndpointSliceView controllers put on a slice to name its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub trait ClusterView {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServiceView>>;
    /// Every EndpointSliceView of the Service `namespace/service`.
    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSliceView>>;
    fn nodes(&self) -> Vec<Arc<Node>>;
    /// A Secret of type `kubernetes.io/tls` (the only type the operator reads).
    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>>;
    /// The Gateway API ReferenceGrants of `namespace` (none when Gateway API is not installed).
    fn reference_grants(&self, namespace: &str) -> Vec<Arc<ReferenceGrant>>;
    /// The BigIpListenerGroup of that name (cluster-scoped).
    fn listener_group(&self, name: &str) -> Option<Arc<BigIpListenerGroup>>;
    /// The BigIpPolicy `namespace/name`.
    fn policy(&self, namespace: &str, name: &str) -> Option<Arc<BigIpPolicy>>;
}

/// An in-memory set of cluster objects, keyed by namespace and name.
#[derive(Debug, Default, Clone)]
pub struct ClusterObjects {
    services: BTreeMap<(String, String), Arc<ServiceView>>,
    endpoint_slices: BTreeMap<(String, String), Arc<EndpointSliceView>>,
    nodes: BTreeMap<String, Arc<Node>>,
    secrets: BTreeMap<(String, String), Arc<Secret>>,
    reference_grants: BTreeMap<(String, String), Arc<ReferenceGrant>>,
    listener_groups: BTreeMap<String, Arc<BigIpListenerGroup>>,
    policies: BTreeMap<(String, String), Arc<BigIpPolicy>>,
}

impl ClusterObjects {
    /// Adds a Service (a full k8s-openapi one or the view the watch keeps).
    pub fn add_service(&mut self, service: impl Into<ServiceView>) {
        let service = service.into();
        self.services.insert(namespaced_key(&service.metadata), Arc::new(service));
    }

    /// Adds an EndpointSlice (a full k8s-openapi one or the view the watch keeps).
    pub fn add_endpoint_slice(&mut self, slice: impl Into<EndpointSliceView>) {
        let slice = slice.into();
        self.endpoint_slices.insert(namespaced_key(&slice.metadata), Arc::new(slice));
    }

    pub fn add_secret(&mut self, secret: Secret) {
        self.secrets.insert(namespaced_key(&secret.metadata), Arc::new(secret));
    }

    pub fn remove_secret(&mut self, namespace: &str, name: &str) {
        self.secrets.remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        self.services.remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn remove_endpoint_slice(&mut self, namespace: &str, name: &str) {
        self.endpoint_slices.remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn remove_node(&mut self, name: &str) {
        self.nodes.remove(name);
    }

    pub fn add_reference_grant(&mut self, grant: ReferenceGrant) {
        self.reference_grants.insert(namespaced_key(&grant.metadata), Arc::new(grant));
    }

    pub fn remove_reference_grant(&mut self, namespace: &str, name: &str) {
        self.reference_grants.remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn add_listener_group(&mut self, group: BigIpListenerGroup) {
        self.listener_groups.insert(group.metadata.name.clone().unwrap_or_default(), Arc::new(group));
    }

    pub fn add_policy(&mut self, policy: BigIpPolicy) {
        self.policies.insert(namespaced_key(&policy.metadata), Arc::new(policy));
    }

    pub fn remove_policy(&mut self, namespace: &str, name: &str) {
        self.policies.remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn remove_listener_group(&mut self, name: &str) {
        self.listener_groups.remove(name);
    }

    pub fn add_node(&mut self, node: Node) {
        self.nodes.insert(node.metadata.name.clone().unwrap_or_default(), Arc::new(node));
    }
}

impl ClusterView for ClusterObjects {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServiceView>> {
        self.services.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSliceView>> {
        self.endpoint_slices
            .iter()
            .filter(|((ns, _), slice)| ns == namespace && slice_service_name(slice) == Some(service))
            .map(|(_, slice)| slice.clone())
            .collect()
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.values().cloned().collect()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets
            .get(&(namespace.to_string(), name.to_string()))
            .filter(|s| s.type_.as_deref() == Some(super::tls::TLS_SECRET_TYPE))
            .cloned()
    }

    fn reference_grants(&self, namespace: &str) -> Vec<Arc<ReferenceGrant>> {
        self.reference_grants.iter().filter(|((ns, _), _)| ns == namespace).map(|(_, g)| g.clone()).collect()
    }

    fn listener_group(&self, name: &str) -> Option<Arc<BigIpListenerGroup>> {
        self.listener_groups.get(name).cloned()
    }

    fn policy(&self, namespace: &str, name: &str) -> Option<Arc<BigIpPolicy>> {
        self.policies.get(&(namespace.to_string(), name.to_string())).cloned()
    }
}

fn namespaced_key(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    let key = super::ObjectKey::of(metadata);
    (key.namespace, key.name)
}

/// The Service an EndpointSliceView belongs to, from its `kubernetes.io/service-name` label.
pub fn slice_service_name(slice: &EndpointSliceView) -> Option<&str> {
    slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL).map(String::as_str)
}
