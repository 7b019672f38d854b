//! Reconcile of one VirtualServer: fetch → model → sync partition → status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::report::EventRecorder;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tracing::{debug, instrument, warn};

use super::cluster_view::StoreView;
use super::desired::Snapshot;
use super::object::ManagedObject;
use super::partitions::PartitionSyncer;
use super::ControllerSettings;
use crate::bigip::As3Api;
use crate::crd::{TransportServer, VirtualServer, VirtualServerStatus};
use crate::metrics::{ControllerName, Metrics};
use crate::model::{partition_of, AppOutcome, ObjectKey, SourceKind};
use crate::status::{virtual_server_status, ProgrammingState};

/// Field manager of every write, and the Events' reporting controller.
pub const FIELD_MANAGER: &str = "bigip-operator";
/// How soon a failed or conflicting object is reconciled again.
const RETRY_PERIOD: Duration = Duration::from_secs(10);

/// Keeps a VirtualServer or TransportServer until its application is removed from the BIG-IP.
pub const FINALIZER: &str = "bigip.operator.dev/cleanup";

pub struct Context<B: As3Api> {
    /// Addresses from BigIpAddressPools for objects with `spec.addressPool`.
    pub allocator: Arc<super::address_allocator::AddressAllocator>,
    pub client: Client,
    pub virtual_servers: Store<VirtualServer>,
    pub transport_servers: Store<TransportServer>,
    pub cluster: StoreView,
    /// VirtualServers and TransportServers that cannot be read: their applications are kept.
    pub unreadable: Arc<super::unreadable::UnreadableObjects>,
    pub syncer: Arc<PartitionSyncer<B>>,
    /// Every watch cache has completed its first list.
    pub ready: super::cluster_view::CachesReady,
    /// The desired state of every partition, shared by every reconcile.
    pub desired: Arc<super::desired::DesiredState>,
    pub settings: ControllerSettings,
    pub recorder: EventRecorder,
    pub metrics: Arc<Metrics>,
    /// Wakes the BigIpListenerGroup status writer after a VirtualServer's status was decided.
    pub listener_groups_changed: Arc<tokio::sync::Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("object has no namespace")]
    NoNamespace,
    #[error("watch caches never became ready")]
    CachesNotReady,
    #[error("writing status of {key}: {source}")]
    StatusWrite { key: String, source: kube::Error },
    #[error("removing application of {key} from partition {partition}: {message}")]
    Cleanup { key: String, partition: String, message: String },
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("address of {key}: {source}")]
    Address { key: String, source: super::address_allocator::AllocatorError },
    #[error("annotating {key} with its address: {source}")]
    AddressAnnotation { key: String, source: kube::Error },
}

impl ReconcileError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::NoNamespace => "no_namespace",
            Self::CachesNotReady => "caches_not_ready",
            Self::StatusWrite { .. } => "status_write",
            Self::Cleanup { .. } => "cleanup",
            Self::Finalizer(_) => "finalizer",
            Self::Address { .. } => "address",
            Self::AddressAnnotation { .. } => "address_annotation",
        }
    }
}

impl<B: As3Api> Context<B> {
    /// Waits until every store holds a complete list: a partition rendered from a partial
    /// cache would delete the applications not yet seen.
    pub(super) async fn caches_ready(&self) -> Result<(), ReconcileError> {
        self.ready.wait().await.map_err(|_| ReconcileError::CachesNotReady)
    }

    /// The desired state of the current cache contents (reused while nothing changed).
    pub(super) fn snapshot(&self) -> Arc<Snapshot> {
        self.desired.snapshot(&self.virtual_servers, &self.transport_servers, &self.cluster, &self.settings.defaults)
    }
}

#[instrument(skip_all, fields(kind = K::KIND.as_str(), object = %format!("{}/{}", vs.namespace().unwrap_or_default(), vs.name_any())))]
pub async fn reconcile<K: ManagedObject, B: As3Api>(
    vs: Arc<K>,
    ctx: Arc<Context<B>>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(vs, &ctx).await;
    let controller = match K::KIND {
        SourceKind::VirtualServer => ControllerName::VirtualServer,
        SourceKind::TransportServer => ControllerName::TransportServer,
    };
    ctx.metrics.reconciled(controller, started.elapsed(), result.as_ref().map(|_| ()).map_err(|e| e.metric_label()));
    result
}

async fn reconcile_inner<K: ManagedObject, B: As3Api>(
    vs: Arc<K>,
    ctx: &Arc<Context<B>>,
) -> Result<Action, ReconcileError> {
    let namespace = vs.namespace().ok_or(ReconcileError::NoNamespace)?;
    ctx.caches_ready().await?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, vs, |event| async {
        match event {
            FinalizerEvent::Apply(vs) => apply(vs.as_ref(), ctx, &api).await,
            FinalizerEvent::Cleanup(vs) => cleanup(vs.as_ref(), ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(inner) | kube::runtime::finalizer::Error::CleanupFailed(inner) => {
            inner
        }
        other => ReconcileError::Finalizer(other.to_string()),
    })
}

/// The partitions an object's application may be in: the one its spec names now (when valid)
/// and the one its status says it was programmed in (when it moved). Derived from the spec as
/// the renderer does, so that a lost status write never leaves an application behind.
pub fn partitions_of<K: ManagedObject>(obj: &K, defaults: &crate::model::ModelDefaults) -> Vec<String> {
    let current = partition_of(obj.spec_partition(), defaults).ok();
    let previous = obj.status().and_then(|s| s.partition.clone());
    current.into_iter().chain(previous).fold(Vec::new(), |mut partitions, p| {
        if !partitions.contains(&p) {
            partitions.push(p);
        }
        partitions
    })
}

/// For an object with `spec.addressPool`: the pools' record gives it an address (allocated now
/// when it has none), and its annotations say it (or why it has none) for the model to read.
async fn ensure_pool_address<K: ManagedObject, B: As3Api>(
    obj: &K,
    ctx: &Context<B>,
    api: &Api<K>,
) -> Result<PoolAddress, ReconcileError> {
    use crate::model::load_balancer::{ADDRESS_PROBLEM_ANNOTATION, ALLOCATED_ANNOTATION, ALLOCATED_FROM_ANNOTATION};
    let Some(pool) = obj.address_pool() else { return Ok(PoolAddress::NotAsked) };
    let key = ObjectKey::of(obj.meta());
    let holder = format!("{}:{key}", K::KIND.as_str());
    let annotations = obj.meta().annotations.clone().unwrap_or_default();
    let annotated_address = annotations.get(ALLOCATED_ANNOTATION).and_then(|a| a.parse().ok());
    let annotated_pool = annotations.get(ALLOCATED_FROM_ANNOTATION).map(String::as_str);
    let annotated = annotated_address.map(|address| (address, annotated_pool));
    let claim = ctx
        .allocator
        .claim(&holder, &key.namespace, Some(pool), annotated, &Default::default())
        .await
        .map_err(|source| ReconcileError::Address { key: key.to_string(), source })?;
    let (wanted, outcome) = match &claim {
        Ok(held) => (
            serde_json::json!({
                ALLOCATED_ANNOTATION: held.address.to_string(), ALLOCATED_FROM_ANNOTATION: held.pool,
                ADDRESS_PROBLEM_ANNOTATION: null,
            }),
            PoolAddress::Held,
        ),
        Err(problem) => (
            serde_json::json!({ ADDRESS_PROBLEM_ANNOTATION: format!("{}: {problem}", problem.reason()) }),
            PoolAddress::Missing,
        ),
    };
    // Whether any annotation differs from what it should be (null: absent).
    let current = |key: &str| annotations.get(key).map_or(serde_json::Value::Null, |a| serde_json::json!(a));
    let differs = wanted.as_object().into_iter().flatten().any(|(key, value)| current(key) != *value);
    if let Ok(held) = &claim {
        if held.new {
            let note = format!("{} from BigIpAddressPool {}", held.address, held.pool);
            publish(ctx, obj, EventType::Normal, "AddressAllocated", note).await;
        }
    }
    if !differs {
        return Ok(outcome);
    }
    let patch = serde_json::json!({ "metadata": { "annotations": wanted } });
    super::report::merge_object(api, &key.name, FIELD_MANAGER, &patch)
        .await
        .map_err(|source| ReconcileError::AddressAnnotation { key: key.to_string(), source })?;
    // The update of the annotations reconciles the object again, with the model reading them.
    Ok(PoolAddress::Annotated)
}

/// What [`ensure_pool_address`] found.
enum PoolAddress {
    /// The object names its address (no `spec.addressPool`).
    NotAsked,
    /// The pool's record holds its address, and its annotations say so.
    Held,
    /// The annotations were just changed; their update reconciles the object again.
    Annotated,
    /// The pool has no address for it; the annotation says why (retried every 30 s, and when
    /// the object changes).
    Missing,
}

async fn apply<K: ManagedObject, B: As3Api>(vs: &K, ctx: &Context<B>, api: &Api<K>) -> Result<Action, ReconcileError> {
    let retry_address = match ensure_pool_address(vs, ctx, api).await? {
        PoolAddress::Annotated => return Ok(Action::await_change()),
        // No address from the pool: the status says why (the model reads the annotation).
        PoolAddress::Missing => true,
        PoolAddress::NotAsked | PoolAddress::Held => false,
    };
    let key = ObjectKey::of(vs.meta());
    // Each partition is synced with the desired state read while its lock is held (see
    // PartitionSyncer::sync_rendered); the snapshot read under the first one (the current
    // partition) gives this object's outcome.
    let mut first_seen: Option<Arc<Snapshot>> = None;
    let mut programming = ProgrammingState::NotAttempted;
    let kept = ctx.unreadable.application_names();
    for partition in partitions_of(vs, &ctx.settings.defaults) {
        let mut seen: Option<Arc<Snapshot>> = None;
        let desired = || {
            let current = ctx.snapshot();
            let apps = current.rendered_partition(&partition);
            seen = Some(current);
            apps
        };
        let outcome = ctx.syncer.sync_rendered(&partition, desired, &kept).await;
        let seen = seen.unwrap_or_else(|| ctx.snapshot());
        if outcome.repaired_drift {
            let apps = seen.applications(&partition);
            announce_drift_repair(ctx, &partition, apps).await;
        }
        if let Some(AppOutcome::Included { partition: included_in, application, .. }) = seen.outcome(K::KIND, &key) {
            if *included_in == partition {
                programming = outcome.for_application(application);
            }
        }
        first_seen.get_or_insert(seen);
    }
    let snapshot = first_seen.unwrap_or_else(|| ctx.snapshot());
    let Some(outcome_of_vs) = snapshot.outcome(K::KIND, &key) else {
        // Being deleted: the finalizer's cleanup handles it.
        return Ok(Action::await_change());
    };

    let now = jiff_now();
    let status = virtual_server_status(outcome_of_vs, &programming, vs.meta().generation, vs.status(), &now);
    let conditions = status.conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str()));
    ctx.metrics.objects.observe(K::KIND.as_str(), key.to_string(), conditions);
    write_status_if_changed(vs, status, ctx, api).await?;
    if K::KIND == SourceKind::VirtualServer {
        ctx.listener_groups_changed.notify_one();
    }

    Ok(match (programming, outcome_of_vs) {
        _ if retry_address => Action::requeue(Duration::from_secs(30)),
        (ProgrammingState::Failed { .. }, _) => Action::requeue(RETRY_PERIOD),
        // Nothing watched announces that the holder of the listener let it go (it may be of
        // the other kind): look again soon. Posts nothing while the conflict lasts.
        (_, AppOutcome::AddressConflict { .. } | AppOutcome::RouteConflict { .. }) => Action::requeue(RETRY_PERIOD),
        // No periodic per-object resync: the per-partition consistency check
        // (controller::consistency_checks) re-syncs every partition once per period.
        _ => Action::await_change(),
    })
}

/// A Normal Event on every object of a partition whose tenant was repaired.
async fn announce_drift_repair<B: As3Api>(
    ctx: &Context<B>,
    partition: &str,
    apps: &[Arc<crate::model::DesiredApplication>],
) {
    let note = format!("tenant {partition} was changed on the BIG-IP out of band; re-posted the declared state");
    for app in apps {
        let (name, namespace) = (&app.source.name, &app.source.namespace);
        match app.kind {
            SourceKind::VirtualServer => {
                if let Some(obj) =
                    ctx.virtual_servers.get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
                {
                    publish(ctx, obj.as_ref(), EventType::Normal, "DriftRepaired", note.clone()).await;
                }
            }
            SourceKind::TransportServer => {
                if let Some(obj) =
                    ctx.transport_servers.get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
                {
                    publish(ctx, obj.as_ref(), EventType::Normal, "DriftRepaired", note.clone()).await;
                }
            }
        }
    }
}

async fn cleanup<K: ManagedObject, B: As3Api>(vs: &K, ctx: &Context<B>) -> Result<Action, ReconcileError> {
    let key = ObjectKey::of(vs.meta());
    let mut removed_from = Vec::new();
    for partition in partitions_of(vs, &ctx.settings.defaults) {
        // The object is being deleted, so the fleet no longer has it: syncing the partition
        // removes its application, and posts nothing where it never was.
        let desired = || ctx.snapshot().rendered_partition(&partition);
        let outcome = ctx.syncer.sync_rendered(&partition, desired, &ctx.unreadable.application_names()).await;
        if let ProgrammingState::Failed { message, .. } = outcome.state {
            warn!(%partition, %message, "could not remove the application; keeping the finalizer");
            return Err(ReconcileError::Cleanup { key: key.to_string(), partition, message });
        }
        removed_from.push(partition);
    }
    ctx.metrics.objects.forget(K::KIND.as_str(), &key.to_string());
    if vs.address_pool().is_some() {
        let holder = format!("{}:{key}", K::KIND.as_str());
        let released = ctx
            .allocator
            .release(&holder)
            .await
            .map_err(|source| ReconcileError::Address { key: key.to_string(), source })?;
        for address in released {
            publish(ctx, vs, EventType::Normal, "AddressReleased", format!("released {address}")).await;
        }
    }
    if removed_from.is_empty() {
        debug!("no valid partition; nothing to remove");
    } else {
        let note = format!("application removed from partition {}", removed_from.join(", "));
        publish(ctx, vs, EventType::Normal, "Removed", note).await;
    }
    Ok(Action::await_change())
}

async fn write_status_if_changed<K: ManagedObject, B: As3Api>(
    vs: &K,
    status: VirtualServerStatus,
    ctx: &Context<B>,
    api: &Api<K>,
) -> Result<(), ReconcileError> {
    if vs.status() == Some(&status) {
        return Ok(());
    }
    announce_transitions(vs, &status, ctx).await;
    let status = serde_json::to_value(&status).map_err(|e| ReconcileError::StatusWrite {
        key: ObjectKey::of(vs.meta()).to_string(),
        source: kube::Error::SerdeError(e),
    })?;
    super::report::apply_status(api, &vs.name_any(), FIELD_MANAGER, &status)
        .await
        .map_err(|source| ReconcileError::StatusWrite { key: ObjectKey::of(vs.meta()).to_string(), source })?;
    ctx.metrics.status_writes.inc();
    Ok(())
}

/// Events for conditions whose status changed: Programmed and Ready going True, and any
/// condition going False (with its reason and message).
async fn announce_transitions<K: ManagedObject, B: As3Api>(vs: &K, status: &VirtualServerStatus, ctx: &Context<B>) {
    for condition in &status.conditions {
        let before = vs.status().and_then(|s| s.conditions.iter().find(|c| c.type_ == condition.type_));
        if before.is_some_and(|b| b.status == condition.status && b.reason == condition.reason) {
            continue;
        }
        match condition.status.as_str() {
            "False" => {
                publish(
                    ctx,
                    vs,
                    EventType::Warning,
                    &condition.reason,
                    format!("{}: {}", condition.type_, condition.message),
                )
                .await
            }
            "True" if condition.type_ == "Programmed" || condition.type_ == "Ready" => {
                publish(ctx, vs, EventType::Normal, &condition.reason, condition.message.clone()).await
            }
            _ => {}
        }
    }
}

async fn publish<K: ManagedObject, B: As3Api>(ctx: &Context<B>, vs: &K, type_: EventType, reason: &str, note: String) {
    super::report::publish_event(&ctx.recorder, vs, type_, reason, "Reconcile", note).await;
}

pub fn error_policy<K: ManagedObject, B: As3Api>(_vs: Arc<K>, error: &ReconcileError, _ctx: Arc<Context<B>>) -> Action {
    warn!(%error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

pub(super) fn jiff_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PoolMemberType;
    use crate::model::ModelDefaults;
    use serde_json::json;

    fn defaults() -> ModelDefaults {
        ModelDefaults {
            partition: "k8s".into(),
            pool_member_type: PoolMemberType::Nodeport,
            node_selector: None,
            default_route_domain: 0,
        }
    }

    fn vs(spec_partition: Option<&str>, status_partition: Option<&str>) -> VirtualServer {
        let mut spec = json!({"virtualAddress": "10.1.10.80", "port": 80, "pools": [{"name": "web", "service": "web", "servicePort": 80}]});
        if let Some(p) = spec_partition {
            spec["partition"] = json!(p);
        }
        let mut object = json!({"apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer", "metadata": {"name": "web", "namespace": "shop"}, "spec": spec});
        if let Some(p) = status_partition {
            object["status"] = json!({"partition": p});
        }
        serde_json::from_value(object).expect("VirtualServer")
    }

    /// Regression (orphaned application): cleanup used to look only at `status.partition`, so
    /// an object whose status write was lost left its application on the BIG-IP for ever.
    #[test]
    fn the_partitions_of_an_object_come_from_its_spec_even_without_status() {
        assert_eq!(partitions_of(&vs(None, None), &defaults()), ["k8s"]);
        assert_eq!(partitions_of(&vs(Some("team-a"), None), &defaults()), ["team-a"]);
        assert_eq!(partitions_of(&vs(Some("team-a"), Some("team-a")), &defaults()), ["team-a"]);
        // Moved: the new partition first (its outcome is the object's), then the old one.
        assert_eq!(partitions_of(&vs(Some("team-b"), Some("team-a")), &defaults()), ["team-b", "team-a"]);
        // An invalid partition is never synced; the one it was programmed in still is.
        assert_eq!(partitions_of(&vs(Some("Common"), Some("k8s")), &defaults()), ["k8s"]);
        assert!(partitions_of(&vs(Some("Common"), None), &defaults()).is_empty());
    }
}
