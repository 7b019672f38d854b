//! Prometheus metrics of the operator, served on `/metrics` (all named `bigip_operator_*`;
//! docs/operations.md lists them, the chart's dashboard and alerts use them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::controller::health::Health;

/// How long a watch or the leader election may fail before `/healthz` fails, unless
/// `run --health-stall-seconds` says otherwise.
pub const DEFAULT_STALL_BOUND: Duration = Duration::from_secs(300);

/// The controllers, as the `controller` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerName {
    VirtualServer,
    TransportServer,
    BigIpTunnel,
    LegacyConfigMap,
    LegacyIngress,
    LoadBalancer,
}

impl ControllerName {
    pub fn label(self) -> &'static str {
        match self {
            Self::VirtualServer => "virtualserver",
            Self::TransportServer => "transportserver",
            Self::BigIpTunnel => "bigiptunnel",
            Self::LegacyConfigMap => "legacy-configmap",
            Self::LegacyIngress => "legacy-ingress",
            Self::LoadBalancer => "loadbalancer-service",
        }
    }
}

pub struct Metrics {
    pub registry: Registry,
    /// Reconciles by controller and result (`ok` or `error`).
    pub reconciles: IntCounterVec,
    /// Failed reconciles by controller and reason.
    pub reconcile_errors: IntCounterVec,
    /// Duration of one reconcile, by controller.
    pub reconcile_duration: HistogramVec,
    /// AS3 tenant posts by result: success, rejected (by AS3), error (transport, busy, ...).
    pub as3_posts: IntCounterVec,
    /// Syncs that found the tenant unchanged and posted nothing.
    pub as3_posts_skipped: IntCounter,
    pub as3_post_duration: Histogram,
    /// Size of each AS3 request body (tenant or per-application declaration).
    pub as3_post_bytes: Histogram,
    /// 1 while the BIG-IP answered the last request (any HTTP answer), 0 after a transport
    /// failure (refused, timed out, TLS).
    pub bigip_reachable: IntGauge,
    /// Per managed partition: 1 when its last post was accepted, 0 when refused or failed.
    pub partition_programmed: IntGaugeVec,
    /// The objects by kind and the status of each condition, as last computed by this
    /// replica while leading.
    pub objects: ObjectConditions,
    /// What `/healthz` and `/readyz` report.
    pub health: Arc<Health>,
    pub status_writes: IntCounter,
    /// Managed tenants found changed or deleted on the BIG-IP, and re-posted.
    pub drift_repairs: IntCounter,
    /// 1 while this replica leads (writes to the BIG-IP and to status), else 0.
    pub leader: IntGauge,
    /// Times this replica became the leader.
    pub leader_transitions: IntCounter,
    /// Posts held back because they would have deleted more than the allowed share of a
    /// tenant's applications without confirmation from a fresh list.
    pub deletions_held: IntCounter,
    /// Watch errors by watch and kind (`expired`: a 410 answered by a re-list; `other`).
    pub watch_errors: IntCounterVec,
    /// From a watch's first error to the end of the re-list that followed it, by watch.
    pub watch_recoveries: HistogramVec,
    /// Stored objects that could not be deserialized (and were kept at their last readable
    /// version), by watch.
    pub unreadable_objects: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Self::with_stall_bound(DEFAULT_STALL_BOUND)
    }

    /// Metrics whose [`Health`] fails liveness after a loop failed for `stall_bound`.
    pub fn with_stall_bound(stall_bound: Duration) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("bigip_operator".into()), None)?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconciles_total", "Reconciles by controller and result (ok, error)"),
            &["controller", "result"],
        )?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new("reconcile_errors_total", "Failed reconciles by controller and reason"),
            &["controller", "reason"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Duration of one reconcile, by controller")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
            &["controller"],
        )?;
        let as3_post_bytes = Histogram::with_opts(
            HistogramOpts::new("as3_post_bytes", "Size of each AS3 request body, in bytes")
                .buckets(prometheus::exponential_buckets(1024.0, 4.0, 10)?),
        )?;
        let bigip_reachable =
            IntGauge::new("bigip_reachable", "1 while the BIG-IP answers requests, 0 after a transport failure")?;
        let partition_programmed = IntGaugeVec::new(
            Opts::new("partition_programmed", "1 when the partition's last AS3 post was accepted, else 0"),
            &["partition"],
        )?;
        let objects = ObjectConditions::new()?;
        let as3_posts =
            IntCounterVec::new(Opts::new("as3_posts_total", "AS3 tenant declarations posted, by result"), &["result"])?;
        let as3_posts_skipped =
            IntCounter::new("as3_posts_skipped_total", "Tenant syncs that posted nothing because nothing changed")?;
        let as3_post_duration = Histogram::with_opts(
            HistogramOpts::new("as3_post_duration_seconds", "Duration of one AS3 tenant post, task included")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
        )?;
        let status_writes = IntCounter::new("status_writes_total", "Status patches written")?;
        let drift_repairs =
            IntCounter::new("drift_repairs_total", "Managed tenants found changed on the BIG-IP and re-posted")?;
        let leader = IntGauge::new("leader", "1 while this replica is the leader")?;
        let leader_transitions = IntCounter::new("leader_transitions_total", "Times this replica became the leader")?;
        let deletions_held = IntCounter::new(
            "deletions_held_total",
            "Tenant posts held back because they would delete too many applications unconfirmed",
        )?;
        let watch_errors =
            IntCounterVec::new(Opts::new("watch_errors_total", "Watch errors, by watch and kind"), &["watch", "kind"])?;
        let watch_recoveries = HistogramVec::new(
            HistogramOpts::new("watch_recovery_seconds", "From a watch error to the end of the re-list after it")
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
            &["watch"],
        )?;
        let unreadable_objects = IntCounterVec::new(
            Opts::new("unreadable_objects_total", "Stored objects that could not be deserialized, by watch"),
            &["watch"],
        )?;
        registry.register(Box::new(watch_errors.clone()))?;
        registry.register(Box::new(watch_recoveries.clone()))?;
        registry.register(Box::new(unreadable_objects.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(leader_transitions.clone()))?;
        registry.register(Box::new(deletions_held.clone()))?;
        registry.register(Box::new(drift_repairs.clone()))?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        registry.register(Box::new(as3_post_bytes.clone()))?;
        registry.register(Box::new(bigip_reachable.clone()))?;
        registry.register(Box::new(partition_programmed.clone()))?;
        registry.register(Box::new(objects.gauge.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(as3_posts.clone()))?;
        registry.register(Box::new(as3_posts_skipped.clone()))?;
        registry.register(Box::new(as3_post_duration.clone()))?;
        registry.register(Box::new(status_writes.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            as3_posts,
            as3_posts_skipped,
            as3_post_duration,
            as3_post_bytes,
            bigip_reachable,
            partition_programmed,
            objects,
            health: Arc::new(Health::new(stall_bound)),
            status_writes,
            drift_repairs,
            leader,
            leader_transitions,
            deletions_held,
            watch_errors,
            watch_recoveries,
            unreadable_objects,
        })
    }

    /// Counts one reconcile of `controller`: its duration, and its result (`Err` carries the
    /// error's reason).
    pub fn reconciled(&self, controller: ControllerName, took: Duration, result: Result<(), &str>) {
        let label = controller.label();
        self.reconcile_duration.with_label_values(&[label]).observe(took.as_secs_f64());
        match result {
            Ok(()) => self.reconciles.with_label_values(&[label, "ok"]).inc(),
            Err(reason) => {
                self.reconciles.with_label_values(&[label, "error"]).inc();
                self.reconcile_errors.with_label_values(&[label, reason]).inc();
            }
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        self.objects.publish();
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

impl crate::bigip::ClientObserver for Metrics {
    fn as3_request(&self, bytes: usize) {
        self.as3_post_bytes.observe(bytes as f64);
    }

    fn reachable(&self, reachable: bool) {
        self.bigip_reachable.set(i64::from(reachable));
    }
}

/// An object: its kind and `namespace/name` (or name).
type ObjectId = (&'static str, String);
/// An object's conditions: (type, status).
type ConditionStates = Vec<(String, String)>;

/// Which condition statuses each object has, counted into the `objects` gauge when scraped.
pub struct ObjectConditions {
    gauge: IntGaugeVec,
    by_object: Mutex<HashMap<ObjectId, ConditionStates>>,
}

impl ObjectConditions {
    fn new() -> Result<Self, prometheus::Error> {
        let gauge = IntGaugeVec::new(
            Opts::new("objects", "Objects by kind and the status of each of their conditions"),
            &["kind", "condition", "status"],
        )?;
        Ok(Self { gauge, by_object: Mutex::new(HashMap::new()) })
    }

    /// The conditions `object` of `kind` has now.
    pub fn observe<'a>(
        &self,
        kind: &'static str,
        object: String,
        conditions: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        let conditions = conditions.map(|(t, s)| (t.to_string(), s.to_string())).collect();
        self.by_object.lock().unwrap_or_else(PoisonError::into_inner).insert((kind, object), conditions);
    }

    /// `object` is gone.
    pub fn forget(&self, kind: &'static str, object: &str) {
        self.by_object.lock().unwrap_or_else(PoisonError::into_inner).remove(&(kind, object.to_string()));
    }

    /// This replica no longer leads: it knows nothing about the objects.
    pub fn clear(&self) {
        self.by_object.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Recounts the gauge from the objects' conditions.
    fn publish(&self) {
        let mut counts: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
        let by_object = self.by_object.lock().unwrap_or_else(PoisonError::into_inner);
        for ((kind, _), conditions) in by_object.iter() {
            for (condition, status) in conditions {
                *counts.entry((kind, condition, status)).or_default() += 1;
            }
        }
        self.gauge.reset();
        for ((kind, condition, status), count) in counts {
            self.gauge.with_label_values(&[kind, condition, status]).set(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_counted_by_kind_condition_and_status() -> Result<(), prometheus::Error> {
        let metrics = Metrics::new()?;
        let ready = [("Accepted", "True"), ("Programmed", "True")];
        metrics.objects.observe("VirtualServer", "a/one".into(), ready.into_iter());
        metrics.objects.observe(
            "VirtualServer",
            "a/two".into(),
            [("Accepted", "True"), ("Programmed", "False")].into_iter(),
        );
        metrics.objects.observe("TransportServer", "a/one".into(), ready.into_iter());
        let text = metrics.encode();
        assert!(
            text.contains(r#"bigip_operator_objects{condition="Accepted",kind="VirtualServer",status="True"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"bigip_operator_objects{condition="Programmed",kind="VirtualServer",status="False"} 1"#),
            "{text}"
        );
        metrics.objects.forget("VirtualServer", "a/two");
        let text = metrics.encode();
        assert!(!text.contains(r#"kind="VirtualServer",status="False""#), "a forgotten object still counts:\n{text}");
        assert!(
            text.contains(r#"bigip_operator_objects{condition="Accepted",kind="TransportServer",status="True"} 1"#),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn reconciles_are_counted_per_controller() -> Result<(), prometheus::Error> {
        let metrics = Metrics::new()?;
        metrics.reconciled(ControllerName::BigIpTunnel, Duration::from_millis(3), Ok(()));
        metrics.reconciled(ControllerName::LegacyIngress, Duration::from_millis(3), Err("status_write"));
        let text = metrics.encode();
        assert!(text.contains(r#"bigip_operator_reconciles_total{controller="bigiptunnel",result="ok"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"bigip_operator_reconcile_errors_total{controller="legacy-ingress",reason="status_write"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"bigip_operator_reconcile_duration_seconds_count{controller="bigiptunnel"} 1"#),
            "{text}"
        );
        Ok(())
    }
}
