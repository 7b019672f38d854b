//! Watches that recover on their own and never stall a controller.
//!
//! Why this exists — the cause of the "410 loop" (measured 20–64 s of blindness after a
//! kube-apiserver restart, and e2e scenarios failing on a busy machine):
//! - every watch error was handed on to kube-runtime's `Controller`, which puts *one* back-off
//!   around the merged stream of all its triggers (`Controller::trigger_backoff`): one watch's
//!   error paused every watch of the controller, and each further error (the next watch's 410,
//!   a 403 of a restarting apiserver) paused them all again (tests/watch_recovery.rs: an event
//!   waited 1.36 s behind another watch answering 410, now 2 ms);
//! - each watch also slept its own back-off (0.5 s and more) before the re-list a 410 asks for.
//!
//! Here each watch handles its own errors and none ever reaches a `Controller`: a
//! `410 Expired` is re-listed at once (the apiserver says exactly what to do), a 410 soon after
//! another one and every other error back off for that watch alone.
//!
//! A stored object that cannot be deserialized (say, after a CRD rollback) would make every
//! list of its kind fail, and so the store would never become ready and every controller
//! waiting on it would stall. [`guarded_events`] reads such objects through kube's
//! [`DeserializeGuard`]: the bad object is reported (log, metric, Event, and
//! controller/unreadable.rs, which keeps its application on the BIG-IP) and the last version
//! that could be read stays in the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::core::error_boundary::{DeserializeGuard, InvalidObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, watcher, Event};
use kube::Api;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// The back-off of one watch after errors (see [`ErrorHistory::delay`]): 0.5 s doubling to at
/// most 5 s, with jitter; it starts over after [`ERROR_MEMORY`] without errors.
///
/// kube's default (client-go's) grows to 30 s. After a kube-apiserver restart the new
/// apiserver answers 403 for a few seconds (its RBAC caches are empty); with 30 s steps a
/// watch was measured to miss a change for over 90 s. Five seconds keeps the load on a
/// struggling apiserver modest (a handful of watches) while recovering within seconds.
pub fn watch_backoff() -> impl Backoff {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    kube::runtime::watcher::ExponentialBackoff::from(exponential)
}

/// What a watch error asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchErrorKind {
    /// `410 Gone`/`Expired`: the resource version is too old; the watcher re-lists by itself.
    Expired,
    /// Anything else (apiserver unreachable, 403 while it starts, a 5xx): retried after a
    /// back-off.
    Other,
}

impl WatchErrorKind {
    pub fn of(error: &watcher::Error) -> Self {
        let status_code = match error {
            watcher::Error::WatchError(status) => Some(status.code),
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            | watcher::Error::WatchFailed(kube::Error::Api(status)) => Some(status.code),
            _ => None,
        };
        if status_code == Some(410) {
            Self::Expired
        } else {
            Self::Other
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Other => "other",
        }
    }
}

/// Errors closer together than this count as one run of errors: the back-off keeps growing
/// through it, and a `410 Expired` within it of the previous one is not re-listed at once.
pub const ERROR_MEMORY: Duration = Duration::from_secs(10);

/// When the watch's last errors happened, to tell a run of errors from a fresh one.
#[derive(Debug, Default, Clone, Copy)]
pub struct ErrorHistory {
    last_error: Option<Instant>,
    last_expired: Option<Instant>,
}

impl ErrorHistory {
    /// How long to wait before polling the watch again after an error of `kind` at `now`, and
    /// records it. A `410 Expired` is re-listed at once — the apiserver is up and says exactly
    /// what to do, also right after an outage — unless the previous 410 came less than
    /// [`ERROR_MEMORY`] ago: an apiserver that answers every watch with 410 must not be
    /// re-listed in a hot loop. Other errors back off, 0.5 s doubling to 5 s; the back-off
    /// starts over after [`ERROR_MEMORY`] without errors.
    pub fn delay(&mut self, kind: WatchErrorKind, now: Instant, backoff: &mut impl Backoff) -> Duration {
        let recent = |at: Option<Instant>| at.is_some_and(|at| now.saturating_duration_since(at) < ERROR_MEMORY);
        if !recent(self.last_error) {
            backoff.reset();
        }
        let repeated_expiry = recent(self.last_expired);
        self.last_error = Some(now);
        if kind == WatchErrorKind::Expired {
            self.last_expired = Some(now);
            if !repeated_expiry {
                return Duration::ZERO;
            }
        }
        backoff.next().unwrap_or(Duration::from_secs(5))
    }
}

struct WatchState<S, B> {
    inner: S,
    backoff: B,
    /// When the first error of the current run of errors happened (the apiserver going away,
    /// say), and when the last `410 Expired` of it came: a re-list's InitDone ends the run.
    failing_since: Option<Instant>,
    expired_at: Option<Instant>,
    /// When the current list started (Event::Init) and when its first page was in (the first
    /// InitApply, or InitDone for an empty list): the apiserver's part of a re-list.
    list_started: Option<Instant>,
    list_answered: Option<Instant>,
    errors: ErrorHistory,
}

/// Makes a watcher stream self-healing: errors are logged, counted and retried here, per
/// watch, and never yielded. The stream only ends when the watcher does.
pub fn resilient<K, S>(
    events: S,
    watch: &'static str,
    metrics: Arc<Metrics>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    let state = WatchState {
        inner: events.boxed(),
        backoff: watch_backoff(),
        failing_since: None,
        expired_at: None,
        list_started: None,
        list_answered: None,
        errors: ErrorHistory::default(),
    };
    futures::stream::unfold(state, move |mut state| {
        let metrics = metrics.clone();
        async move {
            loop {
                match state.inner.next().await? {
                    Ok(event) => {
                        metrics.health.progressed(watch);
                        match event {
                            Event::Init => (state.list_started, state.list_answered) = (Some(Instant::now()), None),
                            Event::InitApply(_) | Event::InitDone => {
                                state.list_answered.get_or_insert_with(Instant::now);
                            }
                            _ => {}
                        }
                        if let (Event::InitDone, Some(since)) = (&event, state.failing_since) {
                            // relist_ms: from the 410 to the end of the re-list it asked for;
                            // list_ms: how long the apiserver took to answer that list;
                            // took_ms: from the first error (an outage included).
                            let took = since.elapsed();
                            let relist_ms = state.expired_at.map(|at| at.elapsed().as_millis() as u64);
                            let list_ms = match (state.list_started, state.list_answered) {
                                (Some(started), Some(answered)) => {
                                    Some(answered.duration_since(started).as_millis() as u64)
                                }
                                _ => None,
                            };
                            metrics.watch_recoveries.with_label_values(&[watch]).observe(took.as_secs_f64());
                            info!(watch, took_ms = took.as_millis() as u64, relist_ms, list_ms, "watch re-listed");
                            state.failing_since = None;
                            state.expired_at = None;
                        } else if !matches!(event, Event::Init | Event::InitApply(_)) {
                            // Resumed without a re-list (the apiserver still had the version).
                            state.failing_since = None;
                            state.expired_at = None;
                        }
                        return Some((Ok(event), state));
                    }
                    Err(error) => {
                        let kind = WatchErrorKind::of(&error);
                        metrics.watch_errors.with_label_values(&[watch, kind.label()]).inc();
                        metrics.health.failed(watch, &error);
                        state.failing_since.get_or_insert_with(Instant::now);
                        if kind == WatchErrorKind::Expired {
                            state.expired_at = Some(Instant::now());
                        }
                        let delay = state.errors.delay(kind, Instant::now(), &mut state.backoff);
                        match kind {
                            WatchErrorKind::Expired => {
                                info!(watch, %error, "watch expired; re-listing")
                            }
                            WatchErrorKind::Other => {
                                warn!(watch, %error, retry_in_ms = delay.as_millis() as u64, "watch failed; retrying")
                            }
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    })
}

/// The events of a watch of `api`, self-healing (see [`resilient`]).
pub fn events<K>(
    api: Api<K>,
    config: watcher::Config,
    watch: &'static str,
    metrics: Arc<Metrics>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    resilient(watcher(api, config), watch, metrics)
}

/// Where [`keep_readable`] reports the readability of objects.
pub trait UnreadableSink: Send + Sync + 'static {
    /// An object that cannot be deserialized.
    fn unreadable(&self, invalid: &InvalidObject);
    /// The object `namespace/name` was read, or deleted: it is no longer unreadable.
    fn resolved(&self, namespace: Option<&str>, name: Option<&str>);
    /// A list completed with exactly these objects (readable or not): any other is gone.
    fn listed(&self, present: &[(Option<String>, Option<String>)]);
}

/// Like [`events`], but objects that cannot be deserialized do not fail the watch (see
/// [`keep_readable`]).
pub fn guarded_events<K>(
    api: Api<DeserializeGuard<K>>,
    config: watcher::Config,
    watch: &'static str,
    metrics: Arc<Metrics>,
    store: Store<K>,
    sink: Arc<dyn UnreadableSink>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let counted =
        Arc::new(CountedSink { inner: sink, unreadable: metrics.unreadable_objects.with_label_values(&[watch]) });
    keep_readable(resilient(watcher(api, config), watch, metrics), store, counted)
}

/// Counts unreadable objects in the metrics before passing them on.
struct CountedSink {
    inner: Arc<dyn UnreadableSink>,
    unreadable: prometheus::IntCounter,
}

impl UnreadableSink for CountedSink {
    fn unreadable(&self, invalid: &InvalidObject) {
        self.unreadable.inc();
        self.inner.unreadable(invalid);
    }

    fn resolved(&self, namespace: Option<&str>, name: Option<&str>) {
        self.inner.resolved(namespace, name);
    }

    fn listed(&self, present: &[(Option<String>, Option<String>)]) {
        self.inner.listed(present);
    }
}

/// Events of objects read through [`DeserializeGuard`] as events of `K`: each object that
/// cannot be read is handed to `sink`, and the version of it that `store` holds (the last
/// that could be read), if any, takes its place. Nothing is removed because it became
/// unreadable; a deletion is a deletion whether or not the object could be read.
pub fn keep_readable<K, S>(
    events: S,
    store: Store<K>,
    sink: Arc<dyn UnreadableSink>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<Event<DeserializeGuard<K>>, watcher::Error>> + Send + 'static,
{
    // The objects of the list in progress, readable or not.
    let mut listing: Vec<(Option<String>, Option<String>)> = Vec::new();
    events.filter_map(move |event| {
        let kept = |invalid: &InvalidObject| {
            let mut reference = ObjectRef::<K>::new(invalid.metadata.name.as_deref().unwrap_or_default());
            reference.namespace = invalid.metadata.namespace.clone();
            store.get(&reference).map(|kept| kept.as_ref().clone())
        };
        let identity = |guarded: &DeserializeGuard<K>| {
            let meta = match &guarded.0 {
                Ok(object) => object.meta(),
                Err(invalid) => &invalid.metadata,
            };
            (meta.namespace.clone(), meta.name.clone())
        };
        let readable = |guarded: DeserializeGuard<K>| match guarded.0 {
            Ok(object) => {
                sink.resolved(object.meta().namespace.as_deref(), object.meta().name.as_deref());
                Some(object)
            }
            Err(invalid) => {
                sink.unreadable(&invalid);
                kept(&invalid)
            }
        };
        let out = match event {
            Ok(Event::Apply(guarded)) => readable(guarded).map(|o| Ok(Event::Apply(o))),
            Ok(Event::InitApply(guarded)) => {
                listing.push(identity(&guarded));
                readable(guarded).map(|o| Ok(Event::InitApply(o)))
            }
            Ok(Event::Delete(guarded)) => {
                let (namespace, name) = identity(&guarded);
                sink.resolved(namespace.as_deref(), name.as_deref());
                match guarded.0 {
                    Ok(object) => Some(Ok(Event::Delete(object))),
                    Err(invalid) => kept(&invalid).map(|o| Ok(Event::Delete(o))),
                }
            }
            Ok(Event::Init) => {
                listing.clear();
                Some(Ok(Event::Init))
            }
            Ok(Event::InitDone) => {
                sink.listed(&std::mem::take(&mut listing));
                Some(Ok(Event::InitDone))
            }
            Err(error) => Some(Err(error)),
        };
        futures::future::ready(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn status(code: u16) -> Box<Status> {
        Box::new(Status::failure("too old resource version: 1625 (1686)", "Expired").with_code(code))
    }

    #[test]
    fn a_410_is_expired_whatever_step_it_came_from() {
        assert_eq!(WatchErrorKind::of(&watcher::Error::WatchError(status(410))), WatchErrorKind::Expired);
        assert_eq!(
            WatchErrorKind::of(&watcher::Error::InitialListFailed(kube::Error::Api(status(410)))),
            WatchErrorKind::Expired
        );
        assert_eq!(WatchErrorKind::of(&watcher::Error::WatchError(status(403))), WatchErrorKind::Other);
        assert_eq!(WatchErrorKind::of(&watcher::Error::NoResourceVersion), WatchErrorKind::Other);
    }

    #[test]
    fn an_expired_watch_relists_at_once_but_repeated_expiries_and_other_errors_back_off() {
        let mut backoff = watch_backoff();
        let mut errors = ErrorHistory::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // An outage (refused connections) backs off, growing; the 410 that ends it does not.
        let first = errors.delay(WatchErrorKind::Other, at(0), &mut backoff);
        let second = errors.delay(WatchErrorKind::Other, at(600), &mut backoff);
        assert!(first >= Duration::from_millis(250) && second > first / 2, "{first:?} {second:?}");
        assert_eq!(errors.delay(WatchErrorKind::Expired, at(2000), &mut backoff), Duration::ZERO);
        // A 410 again right after the re-list: back off (an apiserver answering 410 forever
        // must not be hammered).
        assert!(errors.delay(WatchErrorKind::Expired, at(2010), &mut backoff) >= Duration::from_millis(250));
        // Long after: a fresh 410 is re-listed at once, and the back-off started over.
        assert_eq!(errors.delay(WatchErrorKind::Expired, at(60_000), &mut backoff), Duration::ZERO);
        let fresh = errors.delay(WatchErrorKind::Other, at(120_000), &mut backoff);
        assert!(fresh <= Duration::from_millis(1000), "{fresh:?}");
    }

    fn guarded(object: serde_json::Value) -> DeserializeGuard<crate::crd::VirtualServer> {
        serde_json::from_value(object).expect("a DeserializeGuard always deserializes")
    }

    fn virtual_server(name: &str, port: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "resourceVersion": "7"},
            "spec": {"virtualAddress": "10.1.10.80", "port": port, "pools": [{"name": "web", "service": "web", "servicePort": 80}]},
        })
    }

    /// Regression (one undeserialisable object stalled every controller): a list holding an
    /// object this version cannot read (say, after a CRD rollback) still completes, with every
    /// readable object, the unreadable one reported, and its last readable version kept.
    #[tokio::test]
    async fn an_unreadable_object_is_reported_and_its_last_readable_version_kept() {
        use kube::runtime::reflector;
        let (store, mut writer) = reflector::store::<crate::crd::VirtualServer>();
        // What the store held before: "b" as it was last readable.
        let before: crate::crd::VirtualServer =
            serde_json::from_value(virtual_server("b", serde_json::json!(80))).expect("vs");
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(before));
        writer.apply_watcher_event(&Event::InitDone);

        let sink = Arc::new(RecordingSink::default());
        let relist = futures::stream::iter([
            Ok(Event::Init),
            Ok(Event::InitApply(guarded(virtual_server("a", serde_json::json!(80))))),
            Ok(Event::InitApply(guarded(virtual_server("b", serde_json::json!("eighty"))))),
            Ok(Event::InitApply(guarded(virtual_server("c", serde_json::json!({"not": "a port"}))))),
            Ok(Event::InitDone),
            Ok(Event::Delete(guarded(virtual_server("b", serde_json::json!("eighty"))))),
        ]);
        let events: Vec<_> = keep_readable(relist, store, sink.clone()).collect().await;

        let names = |event: &Result<Event<crate::crd::VirtualServer>, watcher::Error>| match event {
            Ok(Event::Init) => "init".to_string(),
            Ok(Event::InitApply(o)) => {
                format!("apply {} port {}", o.metadata.name.clone().unwrap_or_default(), o.spec.port)
            }
            Ok(Event::InitDone) => "done".to_string(),
            Ok(Event::Delete(o)) => format!("delete {}", o.metadata.name.clone().unwrap_or_default()),
            other => format!("{other:?}"),
        };
        assert_eq!(
            events.iter().map(names).collect::<Vec<_>>(),
            ["init", "apply a port 80", "apply b port 80", "done", "delete b"],
            "c was never readable: dropped; b keeps its last readable version until deleted"
        );
        assert_eq!(
            *sink.calls.lock().expect("calls"),
            ["resolved a", "unreadable b", "unreadable c", "listed a,b,c", "resolved b"],
            "a deletion resolves b whether or not it can be read"
        );
    }

    #[derive(Default)]
    struct RecordingSink {
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl UnreadableSink for RecordingSink {
        fn unreadable(&self, invalid: &InvalidObject) {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            self.calls.lock().expect("calls").push(format!("unreadable {name}"));
        }

        fn resolved(&self, _namespace: Option<&str>, name: Option<&str>) {
            self.calls.lock().expect("calls").push(format!("resolved {}", name.unwrap_or_default()));
        }

        fn listed(&self, present: &[(Option<String>, Option<String>)]) {
            let names: Vec<String> = present.iter().map(|(_, n)| n.clone().unwrap_or_default()).collect();
            self.calls.lock().expect("calls").push(format!("listed {}", names.join(",")));
        }
    }
}
