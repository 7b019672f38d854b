//! [`ClusterView`] over the controller's reflector stores.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::model::cluster::slice_service_name;
use crate::model::ClusterView;

#[derive(Clone)]
pub struct StoreView {
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
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
        self.endpoint_slices.state_filter(|slice| {
            slice.metadata.namespace.as_deref() == Some(namespace) && slice_service_name(slice) == Some(service)
        })
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
