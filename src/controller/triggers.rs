//! Which VirtualServers and TransportServers to reconcile when a Service, EndpointSliceView,
//! Secret or Node changes.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::runtime::reflector::{ObjectRef, Store};

use super::object::{objects_in, ManagedObject};
use crate::crd::{PoolMemberType, VirtualServer};
use crate::model::cluster::slice_service_name;
use crate::model::members::{node_internal_ips, node_is_ready};

/// Objects in `namespace` with a pool on Service `service`.
/// The objects whose pools use the Service `namespace/service` (from any namespace: a pool may
/// name a Service of another namespace).
pub fn using_service<K: ManagedObject>(store: &Store<K>, namespace: &str, service: &str) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|obj| obj.uses_service(namespace, service))
        .map(|obj| ObjectRef::from(obj.as_ref()))
        .collect()
}

/// The objects whose pools name a Service in `namespace`, another one than their own (a
/// ReferenceGrant there changed).
pub fn referring_to_namespace<K: ManagedObject>(store: &Store<K>, namespace: &str) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|obj| obj.refers_to_namespace(namespace))
        .map(|obj| ObjectRef::from(obj.as_ref()))
        .collect()
}

pub fn for_service<K: ManagedObject>(store: &Store<K>, service: &ServiceView) -> Vec<ObjectRef<K>> {
    match (&service.metadata.namespace, &service.metadata.name) {
        (Some(ns), Some(name)) => using_service(store, ns, name),
        _ => Vec::new(),
    }
}

pub fn for_endpoint_slice<K: ManagedObject>(store: &Store<K>, slice: &EndpointSliceView) -> Vec<ObjectRef<K>> {
    match (&slice.metadata.namespace, slice_service_name(slice)) {
        (Some(ns), Some(service)) => using_service(store, ns, service),
        _ => Vec::new(),
    }
}

pub fn for_secret<K: ManagedObject>(store: &Store<K>, secret: &Secret) -> Vec<ObjectRef<K>> {
    match (&secret.metadata.namespace, &secret.metadata.name) {
        (Some(ns), Some(name)) => objects_in(store, ns, |obj| obj.uses_secret(name)),
        _ => Vec::new(),
    }
}

/// Nodes are the members of nodeport-mode pools: a node change concerns the objects in that
/// mode only (cluster-mode members are pod IPs and do not depend on nodes).
pub fn for_node<K: ManagedObject>(store: &Store<K>, _node: &Node, default: PoolMemberType) -> Vec<ObjectRef<K>> {
    store.state().iter().filter(|obj| obj.uses_nodes(default)).map(|obj| ObjectRef::from(obj.as_ref())).collect()
}

/// A hash of what the model reads from a Node, so heartbeats that change nothing else
/// trigger no reconciles.
pub fn node_relevance(node: &Node) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    node_is_ready(node).hash(&mut hasher);
    node_internal_ips(node).hash(&mut hasher);
    node.metadata.labels.hash(&mut hasher);
    node.spec.as_ref().and_then(|s| s.unschedulable).hash(&mut hasher);
    Some(hasher.finish())
}

/// Passes on Node events that matter to the model: every deletion, and an addition or update
/// only when [`node_relevance`] changed. (kube-runtime's `predicate_filter` would also swallow
/// deletions, whose object looks unchanged.)
#[derive(Default)]
pub struct NodeChangeFilter {
    seen: std::collections::HashMap<String, u64>,
}

impl NodeChangeFilter {
    pub fn relevant(&mut self, event: kube::runtime::watcher::Event<Node>) -> Option<Node> {
        use kube::runtime::watcher::Event;
        match event {
            Event::Delete(node) => {
                self.seen.remove(&node.metadata.name.clone().unwrap_or_default());
                Some(node)
            }
            Event::Apply(node) | Event::InitApply(node) => {
                let hash = node_relevance(&node)?;
                let name = node.metadata.name.clone().unwrap_or_default();
                (self.seen.insert(name, hash) != Some(hash)).then_some(node)
            }
            Event::Init | Event::InitDone => None,
        }
    }
}

/// The objects of `namespace` that name the BigIpPolicy `name`.
pub fn using_policy<K: ManagedObject>(store: &Store<K>, namespace: &str, name: &str) -> Vec<ObjectRef<K>> {
    objects_in(store, namespace, |obj| obj.policy() == Some(name))
}

/// The VirtualServers that join the listener group `group`.
pub fn in_listener_group(store: &Store<VirtualServer>, group: &str) -> Vec<ObjectRef<VirtualServer>> {
    store
        .state()
        .iter()
        .filter(|vs| vs.spec.listener_group.as_deref() == Some(group))
        .map(|vs| ObjectRef::from(vs.as_ref()))
        .collect()
}

/// The VirtualServers of every listener group whose default certificate is `secret`.
pub fn for_group_certificate(
    groups: &Store<crate::crd::BigIpListenerGroup>,
    store: &Store<VirtualServer>,
    secret: &Secret,
) -> Vec<ObjectRef<VirtualServer>> {
    let (Some(namespace), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) else { return Vec::new() };
    groups
        .state()
        .iter()
        .filter(|group| {
            group
                .spec
                .tls
                .as_ref()
                .and_then(|tls| tls.default_certificate.as_ref())
                .is_some_and(|reference| reference.namespace == *namespace && reference.name == *name)
        })
        .flat_map(|group| in_listener_group(store, group.metadata.name.as_deref().unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn node(ip: &str, ready: bool, heartbeat: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": ip}],
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastHeartbeatTime": heartbeat}],
            },
        }))
        .expect("node")
    }

    #[test]
    fn heartbeats_are_filtered_but_changes_and_deletions_pass() {
        let mut filter = NodeChangeFilter::default();
        assert!(filter.relevant(Event::InitApply(node("10.0.0.1", true, "2026-01-01T00:00:00Z"))).is_some());
        assert!(filter.relevant(Event::Apply(node("10.0.0.1", true, "2026-01-01T00:00:10Z"))).is_none());
        assert!(filter.relevant(Event::Apply(node("10.0.0.1", false, "2026-01-01T00:00:20Z"))).is_some());
        assert!(filter.relevant(Event::Apply(node("10.0.0.2", false, "2026-01-01T00:00:30Z"))).is_some());
        assert!(filter.relevant(Event::Delete(node("10.0.0.2", false, "2026-01-01T00:00:30Z"))).is_some());
        assert!(filter.relevant(Event::Apply(node("10.0.0.2", false, "2026-01-01T00:00:40Z"))).is_some(), "re-created");
    }

    #[test]
    fn a_change_of_a_dual_stack_nodes_second_address_is_relevant() {
        let mut dual = node("10.0.0.1", true, "2026-01-01T00:00:00Z");
        let with_v6 = |n: &mut Node, v6: &str| {
            let addresses = n.status.as_mut().and_then(|s| s.addresses.as_mut()).expect("addresses");
            addresses.truncate(1);
            addresses.push(serde_json::from_value(json!({"type": "InternalIP", "address": v6})).expect("address"));
        };
        with_v6(&mut dual, "fd00::1");
        let before = node_relevance(&dual);
        with_v6(&mut dual, "fd00::2");
        assert_ne!(node_relevance(&dual), before);
    }

    #[test]
    fn every_secret_and_service_a_virtual_server_reads_triggers_it() {
        let vs: VirtualServer = serde_json::from_value(json!({
            "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
            "metadata": {"name": "shop", "namespace": "shop"},
            "spec": {"virtualAddress": "10.0.0.1", "port": 443, "policy": "standard",
                     "tls": {"secretName": "cert", "clientCertificates": {"caSecretName": "clients"}},
                     "pools": [{"name": "web", "service": "v1", "servicePort": 80,
                                "alternateBackends": [{"service": "v2", "servicePort": 80, "weight": 10}]}]},
        }))
        .expect("vs");
        let (store, mut writer) = kube::runtime::reflector::store::<VirtualServer>();
        writer.apply_watcher_event(&Event::Apply(vs));
        let secret = |name: &str| Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        for name in ["cert", "clients"] {
            assert_eq!(for_secret(&store, &secret(name)).len(), 1, "Secret {name}");
        }
        assert!(for_secret(&store, &secret("other")).is_empty());
        // A TransportServer offloading TLS reads its Secrets the same way.
        let ts: crate::crd::TransportServer = serde_json::from_value(json!({
            "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "TransportServer",
            "metadata": {"name": "mqtt", "namespace": "shop"},
            "spec": {"virtualAddress": "10.0.0.2", "port": 8883,
                     "tls": {"secretName": "cert", "clientCertificates": {"caSecretName": "clients"}},
                     "pool": {"name": "broker", "service": "v1", "servicePort": 80}},
        }))
        .expect("ts");
        let (transport_store, mut transport_writer) = kube::runtime::reflector::store::<crate::crd::TransportServer>();
        transport_writer.apply_watcher_event(&Event::Apply(ts));
        for name in ["cert", "clients"] {
            assert_eq!(for_secret(&transport_store, &secret(name)).len(), 1, "Secret {name} for the TransportServer");
        }
        assert!(for_secret(&transport_store, &secret("other")).is_empty());
        assert_eq!(using_service(&store, "shop", "v2").len(), 1, "the alternate backend's Service");
        assert_eq!(using_policy(&store, "shop", "standard").len(), 1);
        assert!(using_policy(&store, "other", "standard").is_empty());
    }
}
