//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Reconciles by result (`ok`, or the error reason).
    pub reconciles: IntCounterVec,
    pub reconcile_duration: Histogram,
    /// AS3 tenant posts by result: success, rejected (by AS3), error (transport, busy, ...).
    pub as3_posts: IntCounterVec,
    /// Syncs that found the tenant unchanged and posted nothing.
    pub as3_posts_skipped: IntCounter,
    pub as3_post_duration: Histogram,
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
        let registry = Registry::new_custom(Some("bigip_operator".into()), None)?;
        let reconciles = IntCounterVec::new(Opts::new("reconciles_total", "Reconciles by result"), &["result"])?;
        let reconcile_duration =
            Histogram::with_opts(HistogramOpts::new("reconcile_duration_seconds", "Duration of one reconcile"))?;
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
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(as3_posts.clone()))?;
        registry.register(Box::new(as3_posts_skipped.clone()))?;
        registry.register(Box::new(as3_post_duration.clone()))?;
        registry.register(Box::new(status_writes.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            reconcile_duration,
            as3_posts,
            as3_posts_skipped,
            as3_post_duration,
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

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}
