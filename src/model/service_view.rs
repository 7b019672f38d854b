//! What the operator reads of a core/v1 Service, and all its watch keeps of one: its ports,
//! type and external traffic policy. The full type (cluster IPs, families, selector, session
//! affinity, status, ...) is ~1.6 KB per Service as deserialised; this view is a typed `Api`
//! resource of its own (same group, version and kind), so the watch deserialises straight into
//! it.

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[derive(kube::Resource, Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[resource(inherit = "Service")]
pub struct ServiceView {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ServiceSpecView>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpecView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<ServicePort>>,
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// `Cluster` or `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<String>,
}

impl ServiceView {
    /// Gives back the spare capacity deserialisation leaves in the port list.
    pub fn shrink(&mut self) {
        if let Some(ports) = self.spec.as_mut().and_then(|spec| spec.ports.as_mut()) {
            ports.shrink_to_fit();
        }
    }
}

impl From<Service> for ServiceView {
    fn from(service: Service) -> Self {
        Self {
            metadata: service.metadata,
            spec: service.spec.map(|spec| ServiceSpecView {
                ports: spec.ports,
                type_: spec.type_,
                external_traffic_policy: spec.external_traffic_policy,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_ports_type_and_traffic_policy() {
        let document = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "NodePort", "externalTrafficPolicy": "Local", "clusterIP": "10.96.0.1",
                "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}});
        let view: ServiceView = serde_json::from_value(document.clone()).expect("a Service");
        let full: Service = serde_json::from_value(document).expect("a Service");
        assert_eq!(view, ServiceView::from(full), "the watch and the conversion agree");
        let spec = view.spec.as_ref().expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        assert_eq!(spec.ports.as_ref().and_then(|p| p[0].node_port), Some(30080));
        assert_eq!(<ServiceView as kube::Resource>::kind(&()), "Service");
        assert_eq!(<ServiceView as kube::Resource>::api_version(&()), "v1");
    }
}
