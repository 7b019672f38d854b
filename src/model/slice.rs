//! What the operator reads of a `discovery.k8s.io/v1` EndpointSlice, and all its watch keeps of
//! one. The full k8s-openapi type spends ~350 bytes on every endpoint (its object reference,
//! hints, zone, hostname and topology, all unread here) and ~8 KB on a slice of 10 endpoints
//! as deserialised; this view keeps the addresses, conditions and node of each endpoint, about a
//! quarter of that. It is a typed `Api` resource of its own (same group, version and kind), so
//! the watch deserialises straight into it.

use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[derive(kube::Resource, Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[resource(inherit = "EndpointSlice")]
#[serde(rename_all = "camelCase")]
pub struct EndpointSliceView {
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<SliceEndpoint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<EndpointPort>>,
}

/// One endpoint of a slice: what pool members and ARP entries are made of.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<EndpointConditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
}

impl EndpointSliceView {
    /// Gives back the spare capacity deserialisation leaves in the lists (a list of 10 grows to
    /// room for 16, each one-address list to room for 4): the cached slice is never extended.
    pub fn shrink(&mut self) {
        if let Some(endpoints) = self.endpoints.as_mut() {
            endpoints.shrink_to_fit();
            for endpoint in endpoints.iter_mut() {
                endpoint.addresses.shrink_to_fit();
            }
        }
        if let Some(ports) = self.ports.as_mut() {
            ports.shrink_to_fit();
        }
    }
}

impl From<EndpointSlice> for EndpointSliceView {
    fn from(slice: EndpointSlice) -> Self {
        Self {
            metadata: slice.metadata,
            address_type: slice.address_type,
            endpoints: slice.endpoints.map(|endpoints| {
                endpoints
                    .into_iter()
                    .map(|endpoint| SliceEndpoint {
                        addresses: endpoint.addresses,
                        conditions: endpoint.conditions,
                        node_name: endpoint.node_name,
                    })
                    .collect()
            }),
            ports: slice.ports,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_what_the_model_uses_and_drops_the_rest() {
        let document = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "nodeName": "n1",
                "targetRef": {"kind": "Pod", "name": "web-1"}, "zone": "a", "hints": {"forZones": [{"name": "a"}]}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]});
        let view: EndpointSliceView = serde_json::from_value(document.clone()).expect("a slice");
        let full: EndpointSlice = serde_json::from_value(document).expect("a slice");
        assert_eq!(view, EndpointSliceView::from(full), "the watch and the conversion agree");
        let endpoint = &view.endpoints.as_ref().expect("endpoints")[0];
        assert_eq!(endpoint.addresses, vec!["10.0.0.1"]);
        assert_eq!(endpoint.node_name.as_deref(), Some("n1"));
        assert_eq!(endpoint.conditions.as_ref().and_then(|c| c.ready), Some(true));
        assert_eq!(view.ports.as_ref().and_then(|p| p[0].port), Some(8080));
        assert_eq!(<EndpointSliceView as kube::Resource>::kind(&()), "EndpointSlice");
        assert_eq!(<EndpointSliceView as kube::Resource>::api_version(&()), "discovery.k8s.io/v1");
    }

    #[test]
    fn shrinking_keeps_the_content() {
        let mut view: EndpointSliceView = serde_json::from_value(json!({"metadata": {}, "addressType": "IPv4",
            "endpoints": (0..10).map(|i| json!({"addresses": [format!("10.0.0.{i}")]})).collect::<Vec<_>>()}))
        .expect("a slice");
        let before = view.clone();
        view.shrink();
        assert_eq!(view, before);
        let endpoints = view.endpoints.as_ref().expect("endpoints");
        assert_eq!(endpoints.capacity(), 10);
        assert!(endpoints.iter().all(|endpoint| endpoint.addresses.capacity() == 1));
    }
}
