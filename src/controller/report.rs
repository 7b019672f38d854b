//! What the controllers tell users — Events and status writes — done one way for all of them
//! (VirtualServer, TransportServer, legacy shim, BigIpTunnel): every write carries the
//! controller's field manager, and an Event that cannot be published is logged, never fatal.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tracing::warn;

/// How long a repeat of an Event extends the first one (a series) instead of creating another;
/// what kube's own recorder and client-go use.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How often expired series are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Publishes events.k8s.io/v1 Events as kube's `Recorder` does — the same Event about the same
/// object within six minutes becomes one Event whose series count grows — but remembers each
/// Event by a 64-bit key, its name and count, not as a copy of the whole Event (at 10,000
/// objects, one Event each, those copies were ~40 MB), and forgets expired ones once a minute
/// rather than scanning all of them on every publish. Clones share what they remember.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    series: Arc<Mutex<SeriesMemory>>,
}

struct SeriesMemory {
    by_key: HashMap<u64, Series>,
    pruned: Instant,
}

/// An Event already published.
struct Series {
    namespace: String,
    name: String,
    count: i32,
    last_seen: Instant,
}

impl EventRecorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        let memory = SeriesMemory { by_key: HashMap::new(), pruned: Instant::now() };
        Self { client, reporter, series: Arc::new(Mutex::new(memory)) }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, SeriesMemory> {
        self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Events with the same key are one series: same type, reason, action, object.
    fn key(type_: EventType, reason: &str, action: &str, regarding: &ObjectReference) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        (matches!(type_, EventType::Warning), reason, action).hash(&mut hasher);
        (&regarding.api_version, &regarding.kind, &regarding.namespace, &regarding.name, &regarding.uid)
            .hash(&mut hasher);
        hasher.finish()
    }

    /// The series `key` continues, if its last Event is recent enough; forgets expired ones.
    fn recent(&self, key: u64, now: Instant) -> Option<(String, String, i32)> {
        let mut memory = self.memory();
        if now.duration_since(memory.pruned) >= PRUNE_EVERY {
            memory.by_key.retain(|_, series| now.duration_since(series.last_seen) < SERIES_WINDOW);
            memory.pruned = now;
        }
        memory
            .by_key
            .get(&key)
            .filter(|series| now.duration_since(series.last_seen) < SERIES_WINDOW)
            .map(|series| (series.namespace.clone(), series.name.clone(), series.count))
    }

    fn remember(&self, key: u64, namespace: String, name: String, count: i32, now: Instant) {
        self.memory().by_key.insert(key, Series { namespace, name, count, last_seen: now });
    }

    /// Publishes one Event about `regarding` (kube's `Recorder::publish`, without its copies).
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Instant::now();
        let key = Self::key(event.type_, &event.reason, &event.action, regarding);
        if let Some((namespace, name, count)) = self.recent(key, now) {
            let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
            let series = json!({"series": {"count": count + 1, "lastObservedTime": MicroTime(Timestamp::now())}});
            match events.patch(&name, &PatchParams::default(), &Patch::Merge(&series)).await {
                Ok(_) => {
                    self.remember(key, namespace, name, count + 1, now);
                    return Ok(());
                }
                // Deleted meanwhile (Events expire): start a new one.
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        let new_event = self.new_event(event, regarding);
        let namespace = new_event.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        let created = events.create(&PostParams::default(), &new_event).await?;
        if let Some(name) = created.metadata.name {
            self.remember(key, namespace, name, 1, now);
        }
        Ok(())
    }

    /// The events.k8s.io/v1 Event that starts a series.
    fn new_event(&self, event: &Event, regarding: &ObjectReference) -> KubeEvent {
        let now = Timestamp::now();
        let controller = &self.reporter.controller;
        KubeEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: event.note.clone(),
            related: event.secondary.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{}.{:x}", regarding.name.as_ref().unwrap_or(controller), now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone().unwrap_or_else(|| controller.clone())),
            type_: Some(match event.type_ {
                EventType::Normal => "Normal".to_owned(),
                EventType::Warning => "Warning".to_owned(),
            }),
            ..KubeEvent::default()
        }
    }
}

/// Publishes an Event about `object` (best effort: a failure is logged).
pub async fn publish_event<K: Resource<DynamicType = ()>>(
    recorder: &EventRecorder,
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
    recorder: &EventRecorder,
    reference: &ObjectReference,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("bigip.operator.dev/v1alpha1".into()),
            kind: Some("VirtualServer".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    #[tokio::test]
    async fn a_repeat_within_the_window_continues_the_series_and_expired_ones_are_forgotten() {
        crate::install_crypto_provider();
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
        let client = Client::try_from(config).expect("a client");
        let recorder = EventRecorder::new(client, Reporter { controller: "test".into(), instance: None });
        let key = EventRecorder::key(EventType::Normal, "Programmed", "Reconcile", &reference("a"));
        assert_ne!(key, EventRecorder::key(EventType::Warning, "Programmed", "Reconcile", &reference("a")));
        assert_ne!(key, EventRecorder::key(EventType::Normal, "Programmed", "Reconcile", &reference("b")));

        let start = Instant::now();
        assert_eq!(recorder.recent(key, start), None, "nothing published yet");
        recorder.remember(key, "ns".into(), "a.1".into(), 1, start);
        assert_eq!(recorder.recent(key, start + Duration::from_secs(10)), Some(("ns".into(), "a.1".into(), 1)));
        let clone = recorder.clone();
        assert!(clone.recent(key, start + Duration::from_secs(10)).is_some(), "clones share what they remember");

        let later = start + SERIES_WINDOW + PRUNE_EVERY;
        assert_eq!(recorder.recent(key, later), None, "the window has passed");
        assert!(recorder.memory().by_key.is_empty(), "and the series is forgotten");
    }
}
