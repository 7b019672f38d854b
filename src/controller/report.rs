//! What the controllers tell users — Events and status writes — done one way for all of them
//! (VirtualServer, TransportServer, legacy shim, BigIpTunnel): every write carries the
//! controller's field manager, and an Event that cannot be published is logged, never fatal.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tracing::warn;

/// Publishes an Event about `object` (best effort: a failure is logged).
pub async fn publish_event<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    publish_event_to(recorder, &object.object_ref(&()), type_, reason, action, note).await;
}

/// [`publish_event`] for an object known only by its reference.
pub async fn publish_event_to(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&event, reference).await {
        warn!(error = %e, reason, "publishing event failed");
    }
}

/// Writes the status of one of this operator's own kinds by server-side apply under
/// `field_manager` (the operator owns the whole status).
pub async fn apply_status<K>(api: &Api<K>, name: &str, field_manager: &str, status: &Value) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status });
    api.patch_status(name, &PatchParams::apply(field_manager).force(), &Patch::Apply(&patch)).await
}

/// Merges `patch` into the status of an object others also write (an Ingress's load-balancer
/// status), recorded under `field_manager`.
pub async fn merge_status<K>(api: &Api<K>, name: &str, field_manager: &str, patch: &Value) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(name, &merge_params(field_manager), &Patch::Merge(patch)).await
}

/// Merges `patch` into an object others also write (annotations on a ConfigMap), recorded
/// under `field_manager`.
pub async fn merge_object<K>(api: &Api<K>, name: &str, field_manager: &str, patch: &Value) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &merge_params(field_manager), &Patch::Merge(patch)).await
}

fn merge_params(field_manager: &str) -> PatchParams {
    PatchParams { field_manager: Some(field_manager.to_string()), ..PatchParams::default() }
}
