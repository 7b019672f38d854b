//! [`ClusterView`] over the controller's reflector stores.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::model::cluster::slice_service_name;
use crate::model::ClusterView;

/// EndpointSlice names by the Service they belong to, fed by the slice watch, so that finding
/// a Service's slices does not scan every slice in the cluster.
///
/// A re-list is collected aside and swapped in when it completes, as the reflector does with
/// its store; a lookup also checks that the store's object still names the Service.
#[derive(Default)]
pub struct SliceIndex {
    current: RwLock<SliceMap>,
    relisting: std::sync::Mutex<Option<SliceMap>>,
}

/// (namespace, service) → slice names, and (namespace, slice) → its service.
#[derive(Default)]
struct SliceMap {
    by_service: HashMap<(String, String), BTreeSet<String>>,
    service_of: HashMap<(String, String), String>,
}

impl SliceMap {
    fn insert(&mut self, slice: &EndpointSlice) {
        let (Some(namespace), Some(name)) = (slice.metadata.namespace.clone(), slice.metadata.name.clone()) else {
            return;
        };
        self.remove(&namespace, &name);
        if let Some(service) = slice_service_name(slice) {
            self.by_service.entry((namespace.clone(), service.to_string())).or_default().insert(name.clone());
            self.service_of.insert((namespace, name), service.to_string());
        }
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let Some(service) = self.service_of.remove(&(namespace.to_string(), name.to_string())) else { return };
        let key = (namespace.to_string(), service);
        if let Some(names) = self.by_service.get_mut(&key) {
            names.remove(name);
            if names.is_empty() {
                self.by_service.remove(&key);
            }
        }
    }
}

impl SliceIndex {
    /// Follows one event of the slice watch.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<EndpointSlice>) {
        use kube::runtime::watcher::Event;
        let mut relisting = self.relisting.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Init => *relisting = Some(SliceMap::default()),
            Event::InitApply(slice) => {
                if let Some(pending) = relisting.as_mut() {
                    pending.insert(slice);
                }
            }
            Event::InitDone => {
                if let Some(complete) = relisting.take() {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = complete;
                }
            }
            Event::Apply(slice) => self.current.write().unwrap_or_else(PoisonError::into_inner).insert(slice),
            Event::Delete(slice) => {
                let (Some(namespace), Some(name)) = (&slice.metadata.namespace, &slice.metadata.name) else { return };
                self.current.write().unwrap_or_else(PoisonError::into_inner).remove(namespace, name);
            }
        }
    }

    /// Names of the slices of Service `namespace/service`.
    pub fn slices_of(&self, namespace: &str, service: &str) -> Vec<String> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .by_service
            .get(&(namespace.to_string(), service.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct StoreView {
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub slice_index: Arc<SliceIndex>,
    pub nodes: Store<Node>,
    /// Secrets of type kubernetes.io/tls only (the watch selects them by type).
    pub secrets: Store<Secret>,
}

impl StoreView {
    /// Waits until every store holds a complete list: desired state computed from a partial
    /// cache would delete what is not seen yet.
    pub async fn wait_until_ready(&self) -> Result<(), kube::runtime::reflector::store::WriterDropped> {
        self.services.wait_until_ready().await?;
        self.endpoint_slices.wait_until_ready().await?;
        self.secrets.wait_until_ready().await?;
        self.nodes.wait_until_ready().await
    }
}

impl ClusterView for StoreView {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.slice_index
            .slices_of(namespace, service)
            .into_iter()
            .filter_map(|name| self.endpoint_slices.get(&ObjectRef::new(&name).within(namespace)))
            .filter(|slice| slice_service_name(slice) == Some(service))
            .collect()
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.state()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets
            .get(&ObjectRef::new(name).within(namespace))
            .filter(|s| s.type_.as_deref() == Some(crate::model::tls::TLS_SECRET_TYPE))
    }
}

/// Confirms deletions with a fresh (quorum) list of VirtualServers and TransportServers from
/// the apiserver rather
/// than the watch cache: the applications are gone when the fleet built from the fresh list
/// does not have them in the partition either.
pub struct FreshListConfirmation {
    pub virtual_servers: kube::Api<crate::crd::VirtualServer>,
    pub transport_servers: kube::Api<crate::crd::TransportServer>,
    /// The operator's label selector: the same objects as its watch.
    pub selector: Option<String>,
    pub cluster: StoreView,
    pub defaults: crate::model::ModelDefaults,
}

impl crate::controller::partitions::DeletionConfirmation for FreshListConfirmation {
    fn confirm<'a>(
        &'a self,
        partition: &'a str,
        removed: &'a std::collections::BTreeSet<String>,
    ) -> futures::future::BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            // No resourceVersion: a consistent read from etcd, never from a cache.
            let params = match &self.selector {
                Some(selector) => kube::api::ListParams::default().labels(selector),
                None => kube::api::ListParams::default(),
            };
            let fresh = self.virtual_servers.list(&params).await.map_err(|e| e.to_string())?;
            let fresh_transport = self.transport_servers.list(&params).await.map_err(|e| e.to_string())?;
            let fleet = crate::model::build_fleet(
                fresh.items.iter(),
                fresh_transport.items.iter(),
                &self.cluster,
                &self.defaults,
            );
            let still_there =
                fleet.partitions.get(partition).is_some_and(|apps| apps.iter().any(|app| removed.contains(&app.name)));
            Ok(!still_there)
        })
    }
}
