//! [`ClusterView`] over the controller's reflector stores.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::model::cluster::slice_service_name;
use crate::model::ClusterView;

#[derive(Clone)]
pub struct StoreView {
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
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
}
