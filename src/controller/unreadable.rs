//! Stored VirtualServers and TransportServers that this operator cannot deserialize (say, a
//! value a newer CRD allowed, after the CRD was rolled back): see
//! [`super::watches::guarded_events`].
//!
//! Such an object gets a Warning Event `InvalidObject` (once per resource version) and is
//! recorded here. While it stays unreadable, its application is kept on the BIG-IP: the
//! version the store last read is reconciled as it was, and when there is none (the operator
//! started after the object became unreadable) the partition syncer posts the application
//! exactly as the BIG-IP holds it. It is removed only when the object is deleted.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::EventType;

use super::report::EventRecorder;
use kube::Resource;
use tracing::{info, warn};

use super::watches::UnreadableSink;
use crate::model::application::application_name;
use crate::model::transport::transport_application_name;
use crate::model::{ObjectKey, SourceKind};

/// Event reason of an object that cannot be read.
pub const REASON: &str = "InvalidObject";

/// The unreadable objects of every kind, by object, with the deserialization error.
#[derive(Debug, Default)]
pub struct UnreadableObjects {
    objects: Mutex<BTreeMap<(SourceKind, ObjectKey), String>>,
}

impl UnreadableObjects {
    fn mark(&self, kind: SourceKind, key: ObjectKey, error: &str) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert((kind, key), error.to_string());
        }
    }

    fn resolve(&self, kind: SourceKind, key: &ObjectKey) -> bool {
        self.objects.lock().map(|mut objects| objects.remove(&(kind, key.clone())).is_some()).unwrap_or(false)
    }

    fn retain(&self, kind: SourceKind, present: &BTreeSet<ObjectKey>) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.retain(|(k, key), _| *k != kind || present.contains(key));
        }
    }

    /// The AS3 application names of the unreadable objects: what the partition syncer keeps as
    /// the BIG-IP holds it.
    pub fn application_names(&self) -> BTreeSet<String> {
        let Ok(objects) = self.objects.lock() else { return BTreeSet::new() };
        objects
            .keys()
            .filter_map(|(kind, key)| match kind {
                SourceKind::VirtualServer => application_name(key).ok(),
                SourceKind::TransportServer => transport_application_name(key).ok(),
            })
            .collect()
    }
}

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
        "cannot read this object ({}); it is not reconciled, and its application stays on the BIG-IP as it is \
         until the object can be read again or is deleted",
        invalid.error
    )
}

fn key_of(namespace: Option<&str>, name: Option<&str>) -> ObjectKey {
    ObjectKey { namespace: namespace.unwrap_or_default().to_string(), name: name.unwrap_or_default().to_string() }
}

/// Records the unreadable objects of kind `K` in [`UnreadableObjects`] and publishes one
/// Warning Event per resource version on each (without waiting for the Event's write).
pub struct UnreadableReporter<K> {
    kind: SourceKind,
    objects: Arc<UnreadableObjects>,
    recorder: EventRecorder,
    reported: Mutex<HashSet<(String, String)>>,
    _kind: std::marker::PhantomData<fn() -> K>,
}

impl<K> UnreadableReporter<K> {
    pub fn new(kind: SourceKind, objects: Arc<UnreadableObjects>, recorder: EventRecorder) -> Self {
        Self { kind, objects, recorder, reported: Mutex::new(HashSet::new()), _kind: std::marker::PhantomData }
    }
}

impl<K: Resource<DynamicType = ()> + 'static> UnreadableSink for UnreadableReporter<K> {
    fn unreadable(&self, invalid: &InvalidObject) {
        let meta = &invalid.metadata;
        let key = key_of(meta.namespace.as_deref(), meta.name.as_deref());
        self.objects.mark(self.kind, key.clone(), &invalid.error);
        let version = (meta.uid.clone().unwrap_or_default(), meta.resource_version.clone().unwrap_or_default());
        if !self.reported.lock().map(|mut seen| seen.insert(version)).unwrap_or(true) {
            return;
        }
        warn!(kind = %K::kind(&()), object = %key, error = %invalid.error, "cannot read a stored object; keeping its application as it is");
        let reference = object_reference::<K>(invalid);
        let note = note(invalid);
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            super::report::publish_event_to(&recorder, &reference, EventType::Warning, REASON, "Read", note).await;
        });
    }

    fn resolved(&self, namespace: Option<&str>, name: Option<&str>) {
        let key = key_of(namespace, name);
        if self.objects.resolve(self.kind, &key) {
            info!(kind = %K::kind(&()), object = %key, "the object can be read again, or is gone");
        }
    }

    fn listed(&self, present: &[(Option<String>, Option<String>)]) {
        let present: BTreeSet<ObjectKey> =
            present.iter().map(|(ns, name)| key_of(ns.as_deref(), name.as_deref())).collect();
        self.objects.retain(self.kind, &present);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_follow_the_kinds_naming() {
        let objects = UnreadableObjects::default();
        let key = |name: &str| ObjectKey { namespace: "shop".into(), name: name.into() };
        objects.mark(SourceKind::VirtualServer, key("web"), "bad");
        objects.mark(SourceKind::TransportServer, key("dns"), "bad");
        let names = objects.application_names();
        assert!(names.contains(&application_name(&key("web")).expect("name")), "{names:?}");
        assert!(names.contains(&transport_application_name(&key("dns")).expect("name")), "{names:?}");
        // A re-list without "web" forgets it (deleted while the watch was down); "dns" stays.
        objects.retain(SourceKind::VirtualServer, &BTreeSet::new());
        assert_eq!(objects.application_names().len(), 1);
        assert!(objects.resolve(SourceKind::TransportServer, &key("dns")));
        assert!(objects.application_names().is_empty());
    }
}
