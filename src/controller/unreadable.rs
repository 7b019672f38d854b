//! Reporting stored objects that this operator cannot deserialize (see
//! [`super::watches::guarded_events`]): a Warning Event on the object itself, once per
//! resource version, so `kubectl describe` says why it is not reconciled.

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::Resource;
use tracing::warn;

/// Event reason of an object that cannot be read.
pub const REASON: &str = "InvalidObject";

/// The Event's object: the unreadable object, named by its metadata.
pub fn object_reference<K: Resource<DynamicType = ()>>(invalid: &InvalidObject) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: invalid.metadata.name.clone(),
        namespace: invalid.metadata.namespace.clone(),
        uid: invalid.metadata.uid.clone(),
        resource_version: invalid.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The note of the Event: what could not be read, and what the operator does meanwhile.
pub fn note(invalid: &InvalidObject) -> String {
    format!(
        "cannot read this object ({}); it is not reconciled, and what it last programmed stays on the BIG-IP \
         until it can be read again",
        invalid.error
    )
}

/// A reporter for [`super::watches::guarded_events`]: logs every unreadable object and
/// publishes one Event per resource version on it (without waiting for the Event's write).
pub fn reporter<K: Resource<DynamicType = ()>>(recorder: Recorder) -> impl Fn(&InvalidObject) + Send + Sync + 'static {
    let reported: Mutex<HashSet<(String, String)>> = Mutex::new(HashSet::new());
    move |invalid: &InvalidObject| {
        let version = (
            invalid.metadata.uid.clone().unwrap_or_default(),
            invalid.metadata.resource_version.clone().unwrap_or_default(),
        );
        let first = reported.lock().map(|mut seen| seen.insert(version)).unwrap_or(true);
        if !first {
            return;
        }
        let name = invalid.metadata.name.clone().unwrap_or_default();
        let namespace = invalid.metadata.namespace.clone().unwrap_or_default();
        warn!(kind = %K::kind(&()), %namespace, %name, error = %invalid.error, "cannot read a stored object; keeping its last readable version");
        let reference = object_reference::<K>(invalid);
        let event = Event {
            type_: EventType::Warning,
            reason: REASON.into(),
            note: Some(note(invalid)),
            action: "Read".into(),
            secondary: None,
        };
        let recorder = recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                warn!(error = %e, "publishing event failed");
            }
        });
    }
}
