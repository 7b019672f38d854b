//! Gateway API's `ReferenceGrant` (gateway.networking.k8s.io/v1beta1), read-only: the
//! standard object by which a namespace allows objects of other namespaces to refer to its
//! own. Only the fields this operator reads; its CRD belongs to Gateway API (never generated
//! by `crdgen`).

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Allows references from the objects `from` lists to the objects `to` lists, in the
/// ReferenceGrant's namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[kube(group = "gateway.networking.k8s.io", version = "v1beta1", kind = "ReferenceGrant", namespaced)]
pub struct ReferenceGrantSpec {
    pub from: Vec<ReferenceGrantFrom>,
    pub to: Vec<ReferenceGrantTo>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct ReferenceGrantFrom {
    pub group: String,
    pub kind: String,
    pub namespace: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct ReferenceGrantTo {
    /// `""` for the core group (Services).
    #[serde(default)]
    pub group: String,
    pub kind: String,
    /// One object; all of the kind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ReferenceGrant {
    /// Whether this grant lets a `from_kind` (of this operator's API group) in `from_namespace`
    /// refer to the Service `service` in the grant's namespace.
    pub fn permits_service(&self, from_kind: &str, from_namespace: &str, service: &str) -> bool {
        let from = self
            .spec
            .from
            .iter()
            .any(|f| f.group == super::API_GROUP && f.kind == from_kind && f.namespace == from_namespace);
        let to = self
            .spec
            .to
            .iter()
            .any(|t| t.group.is_empty() && t.kind == "Service" && t.name.as_deref().is_none_or(|n| n == service));
        from && to
    }
}
