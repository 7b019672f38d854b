//! The VirtualServer controller: watches, reconcile, status.
//!
//! Every reconcile rebuilds the desired state of the object's partition from the reflector
//! stores (never from partial caches: nothing is posted before every store has synced), posts
//! the tenant only when its rendering changed, and writes status only when it changed.

pub mod address_allocator;
pub mod app_set;
pub mod bisection;
pub mod cluster_view;
pub mod desired;
pub mod health;
pub mod leader;
pub mod legacy;
pub mod listener_group;
pub mod load_balancer;
pub mod object;
pub mod partitions;
pub mod reconcile;
pub mod report;
pub mod small_set;
pub mod triggers;
pub mod tunnel;
pub mod unreadable;
pub mod watches;

use std::sync::Arc;
use std::time::Duration;

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::watcher::Config as WatcherConfig;
use kube::runtime::{reflector, WatchStreamExt};
use kube::{Api, Client};
use tracing::{info, warn};

use crate::as3::Ownership;
use crate::bigip::{As3Api, NetApi};
use crate::crd::{TransportServer, VirtualServer};
use crate::metrics::Metrics;
use crate::model::ModelDefaults;

pub use cluster_view::StoreView;
pub use leader::{LeaderElectionError, LeaderElector, LeaseSettings};
pub use partitions::PartitionSyncer;
pub use reconcile::{Context, ReconcileError, FIELD_MANAGER, FINALIZER};

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub defaults: ModelDefaults,
    /// Watch only this namespace (None: all namespaces).
    pub namespace: Option<String>,
    /// Handle only VirtualServers matching this label selector (None: all), so that several
    /// operators, each with its own BIG-IP, can share a cluster.
    pub selector: Option<String>,
    /// Every object is reconciled at least this often.
    pub resync_period: Duration,
    /// How often the managed tenants are read back from the BIG-IP to repair out-of-band
    /// changes.
    pub drift_check_period: Duration,
    /// Bursts of changes within this window are reconciled once.
    pub debounce: Duration,
    pub concurrency: u16,
    /// Written into every tenant's label; only tenants with it are changed or deleted.
    pub owner: Ownership,
    /// Partitions whose existing (foreign) tenants may be taken over.
    pub adopt_partitions: Vec<String>,
    /// A post deleting more than this share of a tenant's applications must be confirmed by a
    /// fresh list from the apiserver first.
    pub max_deletion_share: f64,
    /// Translate k8s-bigip-ctlr ConfigMaps and Ingresses into VirtualServers/TransportServers.
    pub legacy_shim: bool,
    /// Program LoadBalancer Services of this class (None: leave every Service alone).
    pub load_balancer: Option<crate::model::load_balancer::LoadBalancerClass>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("leader election: {0}")]
    LeaderElection(#[from] LeaderElectionError),
}

/// An Api for `K` in `namespace`, or in all namespaces.
pub(crate) fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the controller while this replica leads, until a termination signal.
///
/// A standby waits for the Lease; the leader runs the controller and renews the Lease. When
/// leadership is lost, the controller is stopped at once (an in-flight post is abandoned: the
/// new leader re-posts what differs) and this replica becomes a standby again. On SIGTERM the
/// controller finishes its in-flight reconciles and the Lease is released, so a standby takes
/// over within a second. Without `lease`, the controller simply runs.
pub async fn run_elected<B: As3Api + NetApi>(
    client: Client,
    bigip: Arc<B>,
    bigip_url: String,
    settings: ControllerSettings,
    metrics: Arc<Metrics>,
    lease: Option<LeaseSettings>,
) -> Result<(), RunError> {
    let health = metrics.health.clone();
    tokio::spawn(async move {
        termination_signal().await;
        health.stopping();
    });
    let Some(lease) = lease else {
        metrics.leader.set(1);
        metrics.health.leading_starting();
        return Ok(run(client, bigip, bigip_url, settings, metrics).await?);
    };
    metrics.health.standby();
    let mut elector = LeaderElector::new(client.clone(), lease.clone())?.reporting_to(metrics.health.clone());
    info!(identity = elector.identity(), lease = %format!("{}/{}", lease.namespace, lease.name), "waiting to become the leader");
    loop {
        tokio::select! {
            _ = termination_signal() => {
                info!("stopping while standby");
                return Ok(());
            }
            _ = elector.acquire() => {}
        }
        metrics.leader.set(1);
        metrics.leader_transitions.inc();
        metrics.health.leading_starting();
        let stopped = tokio::select! {
            result = run(client.clone(), bigip.clone(), bigip_url.clone(), settings.clone(), metrics.clone()) => Some(result),
            _ = elector.hold() => None,
        };
        metrics.leader.set(0);
        metrics.objects.clear();
        metrics.health.standby();
        match stopped {
            Some(result) => {
                if let Err(e) = elector.release().await {
                    warn!(error = %e, "could not release the Lease; a standby takes over when it expires");
                }
                return Ok(result?);
            }
            None => warn!("leadership lost: stopped writing to the BIG-IP; waiting to lead again"),
        }
    }
}

/// Runs the controller until a termination signal.
pub async fn run<B: As3Api + NetApi>(
    client: Client,
    bigip: Arc<B>,
    bigip_url: String,
    settings: ControllerSettings,
    metrics: Arc<Metrics>,
) -> Result<(), kube::Error> {
    let namespace = settings.namespace.as_deref();
    let vs_api: Api<VirtualServer> = scoped_api(&client, namespace);
    let ts_api: Api<TransportServer> = scoped_api(&client, namespace);
    let svc_api: Api<ServiceView> = scoped_api(&client, namespace);
    let slice_api: Api<EndpointSliceView> = scoped_api(&client, namespace);
    let secret_api: Api<Secret> = scoped_api(&client, namespace);
    let node_api: Api<Node> = Api::all(client.clone());

    let (services, services_writer) = reflector::store();
    let (endpoint_slices, slices_writer) = reflector::store();
    let (nodes, nodes_writer) = reflector::store();
    let (secrets, secrets_writer) = reflector::store();
    // Every watch heals itself and never hands an error to a Controller (see watches.rs:
    // an error there paused every watch of the controller).
    // Only TLS Secrets: never every Secret of the cluster (Helm releases, tokens) in memory.
    let secret_watch = WatcherConfig::default().fields(&format!("type={}", crate::model::tls::TLS_SECRET_TYPE));
    // Every event that changes what the model reads marks the desired state out of date, once
    // the event is in the cache (see desired.rs).
    let desired = Arc::new(desired::DesiredState::default());
    // Each watch reports its first complete list; reconciles wait for all of them.
    let (ready, listed) = cluster_view::CachesReady::of_watches(&[
        "virtualservers",
        "transportservers",
        "services",
        "endpointslices",
        "secrets",
        "nodes",
        "referencegrants",
        "bigiplistenergroups",
        "bigippolicies",
    ]);
    metrics.health.leading(ready.receiver());
    let secret_events = watches::events(secret_api, secret_watch, "secrets", metrics.clone())
        .modify(trim::<Secret>)
        .reflect(secrets_writer)
        .inspect_ok(listed.reporter("secrets"))
        .inspect_ok(changes_desired(&desired, true, secret_dependency))
        .touched_objects();
    let service_events = watches::events(svc_api, WatcherConfig::default(), "services", metrics.clone())
        .modify(trim_service)
        .reflect(services_writer)
        .inspect_ok(listed.reporter("services"))
        .inspect_ok(changes_desired(&desired, true, service_dependency))
        .touched_objects();
    let slice_index = Arc::new(cluster_view::SliceIndex::default());
    let indexing = slice_index.clone();
    let moved_from = desired.clone();
    let slice_events = watches::events(slice_api, WatcherConfig::default(), "endpointslices", metrics.clone())
        .modify(trim_slice)
        .inspect_ok(move |event| {
            // A slice moved to another Service also changes the slices of the one it left (the
            // index no longer lists it there, so reporting it before the cache update is safe).
            if let Some(left) = indexing.observe(event) {
                moved_from.changed_dependency(desired::Dependency::Slices(left));
            }
        })
        .reflect(slices_writer)
        .inspect_ok(listed.reporter("endpointslices"))
        .inspect_ok(changes_desired(&desired, true, slice_dependency))
        .touched_objects();
    let mut node_filter = triggers::NodeChangeFilter::default();
    let node_events = watches::events(node_api, WatcherConfig::default(), "nodes", metrics.clone())
        .modify(trim_node)
        .reflect(nodes_writer)
        .inspect_ok(listed.reporter("nodes"))
        .inspect_ok(changes_desired(&desired, false, node_dependency))
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(event) => node_filter.relevant(event).map(Ok),
                Err(e) => Some(Err(e)),
            })
        })
        .inspect_ok({
            let desired = desired.clone();
            move |_| desired.changed_dependency(desired::Dependency::Nodes)
        });
    // Gateway API ReferenceGrants (pool members in other namespaces), when the CRD is installed.
    let grants_api: Api<crate::crd::ReferenceGrant> = Api::all(client.clone());
    let grants_installed = match grants_api.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            info!("Gateway API ReferenceGrants are not installed: pools may use Services of their own namespace only");
            false
        }
        Err(e) => {
            warn!(error = %e, "cannot tell whether ReferenceGrants are installed; not watching them");
            false
        }
    };
    let (reference_grants, grant_events) = if grants_installed {
        let (store, writer) = reflector::store();
        let events = watches::events(grants_api, WatcherConfig::default(), "referencegrants", metrics.clone())
            .modify(trim::<crate::crd::ReferenceGrant>)
            .reflect(writer)
            .inspect_ok(listed.reporter("referencegrants"))
            .inspect_ok(changes_desired(&desired, true, grant_dependency))
            .touched_objects()
            .boxed();
        (Some(store), events)
    } else {
        listed.listed("referencegrants");
        (None, futures::stream::empty().boxed())
    };
    // BigIpListenerGroups (shared listeners), when their CRD is installed.
    let groups_api: Api<crate::crd::BigIpListenerGroup> = Api::all(client.clone());
    let groups_installed = match groups_api.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(e) => {
            warn!(error = %e, "cannot list BigIpListenerGroups (CRD not installed, or no RBAC): VirtualServers with spec.listenerGroup stay unprogrammed; install the CRDs of this version");
            false
        }
    };
    let (listener_groups, group_events) = if groups_installed {
        let (store, writer) = reflector::store();
        let events =
            watches::events(groups_api.clone(), WatcherConfig::default(), "bigiplistenergroups", metrics.clone())
                .modify(trim::<crate::crd::BigIpListenerGroup>)
                .reflect(writer)
                .inspect_ok(listed.reporter("bigiplistenergroups"))
                .inspect_ok(changes_desired(&desired, true, group_dependency))
                .touched_objects()
                .boxed();
        (Some(store), events)
    } else {
        listed.listed("bigiplistenergroups");
        (None, futures::stream::empty().boxed())
    };
    // BigIpPolicies (shared settings), when their CRD is installed.
    let policies_api: Api<crate::crd::BigIpPolicy> = scoped_api(&client, namespace);
    let (policies, policy_events) = match policies_api.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => {
            let (store, writer) = reflector::store();
            let events = watches::events(policies_api, WatcherConfig::default(), "bigippolicies", metrics.clone())
                .modify(trim::<crate::crd::BigIpPolicy>)
                .reflect(writer)
                .inspect_ok(listed.reporter("bigippolicies"))
                .inspect_ok(changes_desired(&desired, true, policy_dependency))
                .touched_objects()
                .boxed();
            (Some(store), events)
        }
        Err(e) => {
            warn!(error = %e, "cannot list BigIpPolicies (CRD not installed, or no RBAC): objects with spec.policy stay unprogrammed; install the CRDs of this version");
            listed.listed("bigippolicies");
            (None, futures::stream::empty().boxed())
        }
    };
    let cluster = StoreView {
        policies,
        services,
        endpoint_slices,
        slice_index,
        nodes,
        secrets,
        reference_grants,
        listener_groups: listener_groups.clone(),
    };

    let confirmation = Arc::new(cluster_view::FreshListConfirmation {
        virtual_servers: vs_api.clone(),
        transport_servers: ts_api.clone(),
        selector: settings.selector.clone(),
        cluster: cluster.clone(),
        defaults: settings.defaults.clone(),
    });
    let syncer = Arc::new(
        PartitionSyncer::new(bigip.clone(), bigip_url.clone(), settings.owner.clone(), metrics.clone())
            .adopting(settings.adopt_partitions.iter().cloned())
            .with_deletion_guard(settings.max_deletion_share, confirmation),
    );
    match syncer.learn_deployed_tenants().await {
        Ok(n) => info!(tenants = n, "learned the tenants this operator manages on the BIG-IP"),
        Err(e) => {
            warn!(error = %e, "could not read the BIG-IP's tenants at start; unchanged tenants will be re-posted once")
        }
    }

    // Consistent lists (the default semantic), never "any" from the watch cache: a new leader's
    // first posts must come from the apiserver's current state, not from a cache that may lag.
    let vs_watch = match &settings.selector {
        Some(selector) => WatcherConfig::default().labels(selector),
        None => WatcherConfig::default(),
    };
    let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: std::env::var("POD_NAME").ok() };
    // One recorder for every controller: a repeated Event becomes a series wherever it is sent.
    let events = report::EventRecorder::new(client.clone(), reporter.clone());
    let unreadable_objects = Arc::new(unreadable::UnreadableObjects::default());
    let guarded = GuardedWatch {
        client: &client,
        namespace,
        config: &vs_watch,
        metrics: &metrics,
        unreadable: &unreadable_objects,
        desired: &desired,
        listed: &listed,
        recorder: events.clone(),
        controller: ControllerConfig::default().debounce(settings.debounce).concurrency(settings.concurrency),
    };
    let (controller, vs_store) = guarded.controller::<VirtualServer>("virtualservers");
    let (ts_controller, ts_store) = guarded.controller::<TransportServer>("transportservers");
    // One allocator for LoadBalancer Services and objects with spec.addressPool.
    let allocator = Arc::new(address_allocator::AddressAllocator::new(client.clone()));
    let lb_allocator = allocator.clone();
    let context = Arc::new(Context {
        client: client.clone(),
        virtual_servers: vs_store.clone(),
        transport_servers: ts_store.clone(),
        cluster,
        ready: ready.clone(),
        unreadable: unreadable_objects.clone(),
        syncer,
        desired: desired.clone(),
        settings: settings.clone(),
        recorder: events.clone(),
        metrics,
        allocator,
        listener_groups_changed: Arc::new(tokio::sync::Notify::new()),
    });

    let legacy_recorder = events.clone();
    let legacy_metrics = context.metrics.clone();
    let lb_metrics = context.metrics.clone();
    let load_balancer_client = client.clone();
    // The Service, EndpointSliceView and Node watches are shared: the VirtualServer controller
    // consumes them, and forwards the TransportServers they concern to the TransportServer
    // controller through this channel.
    let (ts_triggers, ts_trigger_stream) = futures::channel::mpsc::unbounded();
    let forward = move |refs: Vec<kube::runtime::reflector::ObjectRef<TransportServer>>| {
        for r in refs {
            // Fails only when the TransportServer controller has stopped (shutdown).
            let _ = ts_triggers.unbounded_send(r);
        }
    };
    let (f1, f2, f3, f4, f5, f6) =
        (forward.clone(), forward.clone(), forward.clone(), forward.clone(), forward.clone(), forward);
    // Node and EndpointSliceView changes also concern the BigIpTunnel controller (FDB, ARP).
    let (tunnel_nodes, tunnel_changes) = futures::channel::mpsc::unbounded();
    let tunnel_slices = tunnel_nodes.clone();
    let tunnel_context = Arc::new(tunnel::TunnelContext {
        client: client.clone(),
        bigip: bigip.clone(),
        cluster: context.cluster.clone(),
        virtual_servers: vs_store.clone(),
        transport_servers: ts_store.clone(),
        desired: desired.clone(),
        ready: ready.clone(),
        defaults: settings.defaults.clone(),
        recorder: events.clone(),
        metrics: context.metrics.clone(),
    });
    let (t1, t2, t3, t4, t5, t6) =
        (ts_store.clone(), ts_store.clone(), ts_store.clone(), ts_store.clone(), ts_store.clone(), ts_store.clone());
    // One drift check for both controllers: each detected drift reconciles every object.
    let (ts_drift, ts_drift_triggers) = futures::channel::mpsc::unbounded();
    let drift_triggers = futures::stream::select(
        drift_checks(context.syncer.clone(), ready.clone(), settings.drift_check_period),
        consistency_checks(context.clone(), settings.resync_period),
    )
    .inspect(move |_| {
        let _ = ts_drift.unbounded_send(());
    });
    let member_default = settings.defaults.pool_member_type;
    let (s1, s2, s3, s4, s5, s6) =
        (vs_store.clone(), vs_store.clone(), vs_store.clone(), vs_store.clone(), vs_store.clone(), vs_store.clone());
    let certificate_groups = listener_groups.clone();
    let s7 = vs_store.clone();
    info!(bigip = %bigip_url, namespace = ?settings.namespace, partition = %settings.defaults.partition, "starting VirtualServer and TransportServer controllers");
    let virtual_servers = controller
        .watches_stream(service_events, move |svc| {
            f1(triggers::for_service(&t1, &svc));
            triggers::for_service(&s1, &svc)
        })
        .watches_stream(slice_events, move |slice| {
            f2(triggers::for_endpoint_slice(&t2, &slice));
            let _ = tunnel_slices.unbounded_send(());
            triggers::for_endpoint_slice(&s2, &slice)
        })
        .watches_stream(node_events, move |node| {
            f3(triggers::for_node(&t3, &node, member_default));
            let _ = tunnel_nodes.unbounded_send(());
            triggers::for_node(&s3, &node, member_default)
        })
        .watches_stream(secret_events, move |secret| {
            f6(triggers::for_secret(&t6, &secret));
            let mut refs = triggers::for_secret(&s4, &secret);
            if let Some(groups) = &certificate_groups {
                refs.extend(triggers::for_group_certificate(groups, &s4, &secret));
            }
            refs
        })
        .watches_stream(policy_events, move |policy| {
            let namespace = policy.metadata.namespace.clone().unwrap_or_default();
            let name = policy.metadata.name.clone().unwrap_or_default();
            f5(triggers::using_policy(&t5, &namespace, &name));
            triggers::using_policy(&s7, &namespace, &name)
        })
        .watches_stream(group_events, move |group| {
            triggers::in_listener_group(&s6, group.metadata.name.as_deref().unwrap_or_default())
        })
        .watches_stream(grant_events, move |grant| {
            let namespace = grant.metadata.namespace.clone().unwrap_or_default();
            f4(triggers::referring_to_namespace(&t4, &namespace));
            triggers::referring_to_namespace(&s5, &namespace)
        })
        .reconcile_all_on(drift_triggers)
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, context.clone())
        .for_each(|result| async move { log_failure(result.map(|_| ())) });
    let group_context = context.clone();
    let transport_servers = ts_controller
        .reconcile_on(ts_trigger_stream)
        .reconcile_all_on(ts_drift_triggers)
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| async move { log_failure(result.map(|_| ())) });
    let health = legacy_metrics.health.clone();
    let legacy_shim = async {
        if settings.legacy_shim {
            let shim = legacy::run(client, settings.namespace.clone(), legacy_recorder, legacy_metrics);
            health::supervised(&health, "legacy-controllers", shim).await;
        }
    };
    let load_balancers = async {
        if let Some(class) = settings.load_balancer.clone() {
            let run = load_balancer::run(
                load_balancer_client,
                settings.namespace.clone(),
                settings.selector.clone(),
                class,
                lb_allocator,
                events.clone(),
                lb_metrics,
            );
            health::supervised(&health, "loadbalancer-controller", run).await;
        }
    };
    let tunnels = health::supervised(&health, "bigiptunnel-controller", tunnel::run(tunnel_context, tunnel_changes));
    let group_statuses = async {
        if let Some(groups) = listener_groups {
            listener_group::run(group_context, groups, groups_api).await;
        }
    };
    let controllers = async {
        futures::join!(
            health::supervised(&health, "virtualserver-controller", virtual_servers),
            health::supervised(&health, "transportserver-controller", transport_servers),
            legacy_shim,
            load_balancers,
            tunnels,
            group_statuses
        )
    };
    tokio::select! {
        _ = controllers => info!("controllers stopped"),
        _ = stop_deadline(ready.receiver(), &health) => {}
    }
    Ok(())
}

/// How long the controllers may take to finish their in-flight reconciles after a termination
/// signal (the chart gives the pod 60 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(45);

/// Resolves when the controllers must be abandoned after a termination signal: at once when
/// the caches never became ready (nothing can be in flight, and kube-runtime's controllers wait
/// for their stores before they stop: with the apiserver unreachable they never would), else
/// after [`SHUTDOWN_GRACE`].
async fn stop_deadline(caches_ready: tokio::sync::watch::Receiver<bool>, health: &health::Health) {
    // The signal may have come before this point (during start-up): the health keeps it.
    health.stop_requested().await;
    if !*caches_ready.borrow() {
        info!("termination signal before the watch caches were ready: nothing in flight; stopping");
        return;
    }
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    warn!(grace = ?SHUTDOWN_GRACE, "the controllers did not stop in time after the termination signal; stopping anyway");
}

/// How the VirtualServer and TransportServer controllers watch their own kind: consistent
/// lists, self-healing (watches.rs), and objects that cannot be read reported and kept
/// (unreadable.rs).
struct GuardedWatch<'a> {
    client: &'a Client,
    namespace: Option<&'a str>,
    config: &'a WatcherConfig,
    metrics: &'a Arc<Metrics>,
    unreadable: &'a Arc<unreadable::UnreadableObjects>,
    desired: &'a Arc<desired::DesiredState>,
    listed: &'a Arc<cluster_view::WatchesListed>,
    recorder: report::EventRecorder,
    controller: ControllerConfig,
}

impl GuardedWatch<'_> {
    fn controller<K: object::ManagedObject>(&self, watch: &'static str) -> (Controller<K>, reflector::Store<K>) {
        let (store, writer) = reflector::store::<K>();
        let reporter =
            unreadable::UnreadableReporter::<K>::new(K::KIND, self.unreadable.clone(), self.recorder.clone());
        let events = watches::guarded_events(
            scoped_api(self.client, self.namespace),
            self.config.clone(),
            watch,
            self.metrics.clone(),
            store.clone(),
            Arc::new(reporter),
        )
        // kubectl's last-applied copy and the managed fields are often larger than the object.
        .modify(trim::<K>)
        .reflect(writer)
        .inspect_ok(self.listed.reporter(watch))
        .inspect_ok(object_changes_desired::<K>(self.desired))
        .touched_objects()
        // Status-only updates (our own status writes) do not trigger a reconcile.
        .predicate_filter(reconcile_relevance::<K>, Default::default());
        (Controller::for_stream(events, store.clone()).with_config(self.controller.clone()), store)
    }
}

fn log_failure<E, Q>(result: Result<(), kube::runtime::controller::Error<Q, E>>)
where
    Q: std::error::Error + 'static,
    E: std::error::Error + 'static,
{
    if let Err(e) = result {
        match e {
            kube::runtime::controller::Error::ObjectNotFound(_) => {}
            other => warn!(error = %other, "reconcile failed"),
        }
    }
}

/// Every `period`, syncs each partition once from the watch caches (one desired state for all,
/// O(N) per period rather than a reconcile of every object); when one of them had to post —
/// the BIG-IP did not hold what the objects ask for — emits a trigger that reconciles every
/// object, so their statuses follow.
fn consistency_checks<B: As3Api>(
    context: Arc<reconcile::Context<B>>,
    period: Duration,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(context, move |context| async move {
        loop {
            tokio::time::sleep(period).await;
            if context.caches_ready().await.is_err() {
                return None;
            }
            // Checks every object against the caches once per period, whatever the watches
            // reported: a change they failed to name is picked up here.
            context.desired.changed();
            let mut partitions: std::collections::BTreeSet<String> = context.syncer.managed_partitions().await;
            partitions.extend(context.snapshot().partitions().cloned());
            let kept = context.unreadable.application_names();
            let mut posted = Vec::new();
            for partition in partitions {
                let desired = || context.snapshot().rendered_partition(&partition);
                if context.syncer.sync_rendered(&partition, desired, &kept).await.posted {
                    posted.push(partition);
                }
            }
            if !posted.is_empty() {
                info!(partitions = ?posted, "the periodic check re-posted partitions; refreshing every object's status");
                return Some(((), context));
            }
        }
    })
}

/// Every `period`, once the caches are ready, reads the managed tenants back from the BIG-IP;
/// when one drifted, emits a trigger that reconciles every VirtualServer (which re-posts the
/// drifted tenants).
fn drift_checks<B: As3Api>(
    syncer: Arc<PartitionSyncer<B>>,
    ready: cluster_view::CachesReady,
    period: Duration,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold((syncer, ready), move |(syncer, ready)| async move {
        loop {
            tokio::time::sleep(period).await;
            if ready.wait().await.is_err() {
                return None;
            }
            match syncer.detect_drift().await {
                Ok(drifted) if !drifted.is_empty() => {
                    info!(partitions = ?drifted, "repairing drifted tenants");
                    return Some(((), (syncer, ready)));
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "drift check could not read the BIG-IP"),
            }
        }
    })
}

/// Reports each event of a watch to the desired state (after the cache took it in), as the
/// [`Dependency`](desired::Dependency) key `dependency` names for the object; the events of
/// a (re-)list as "everything". With `updates: false`, updates are not reported here (they are
/// filtered first, and only those that matter are reported).
fn changes_desired<K: 'static>(
    desired: &Arc<desired::DesiredState>,
    updates: bool,
    dependency: fn(&K) -> Option<desired::Dependency>,
) -> impl FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static {
    use kube::runtime::watcher::Event;
    let desired = desired.clone();
    move |event| match event {
        Event::Apply(object) if updates => dependency(object).into_iter().for_each(|d| desired.changed_dependency(d)),
        Event::Apply(_) => {}
        Event::Delete(object) => dependency(object).into_iter().for_each(|d| desired.changed_dependency(d)),
        Event::Init | Event::InitApply(_) | Event::InitDone => desired.changed(),
    }
}

fn service_dependency(service: &ServiceView) -> Option<desired::Dependency> {
    Some(desired::Dependency::Service(crate::model::ObjectKey::of(&service.metadata)))
}

fn secret_dependency(secret: &Secret) -> Option<desired::Dependency> {
    Some(desired::Dependency::Secret(crate::model::ObjectKey::of(&secret.metadata)))
}

/// A slice concerns the Service it names (one whose slice moved to another Service is
/// reported by the slice index, see [`cluster_view::SliceIndex::observe`]).
fn slice_dependency(slice: &EndpointSliceView) -> Option<desired::Dependency> {
    let service = crate::model::cluster::slice_service_name(slice)?;
    let key = crate::model::ObjectKey { name: service.to_string(), ..crate::model::ObjectKey::of(&slice.metadata) };
    Some(desired::Dependency::Slices(key))
}

fn grant_dependency(grant: &crate::crd::ReferenceGrant) -> Option<desired::Dependency> {
    Some(desired::Dependency::ReferenceGrants(grant.metadata.namespace.clone().unwrap_or_default()))
}

fn policy_dependency(policy: &crate::crd::BigIpPolicy) -> Option<desired::Dependency> {
    Some(desired::Dependency::Policy(crate::model::ObjectKey::of(&policy.metadata)))
}

fn group_dependency(group: &crate::crd::BigIpListenerGroup) -> Option<desired::Dependency> {
    Some(desired::Dependency::ListenerGroup(group.metadata.name.clone().unwrap_or_default()))
}

fn node_dependency(_node: &Node) -> Option<desired::Dependency> {
    Some(desired::Dependency::Nodes)
}

/// Marks the desired state out of date on the VirtualServer or TransportServer events that can
/// change it: lists, deletions, new objects, and updates of what a build or the claim order
/// reads (generation — the spec —, deletion, creation time). Finalizer and status updates,
/// one or two per object at start-up, do not: each would have made the next reconcile
/// rebuild the desired state.
fn object_changes_desired<K: object::ManagedObject>(
    desired: &Arc<desired::DesiredState>,
) -> impl FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static {
    let dependency = |meta: &kube::api::ObjectMeta| {
        desired::Dependency::Object(crate::model::SourceId { kind: K::KIND, key: crate::model::ObjectKey::of(meta) })
    };
    use kube::runtime::watcher::Event;
    use std::hash::{Hash, Hasher};
    let desired = desired.clone();
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let relevance = |meta: &kube::api::ObjectMeta| {
        let mut hasher = std::hash::DefaultHasher::new();
        meta.generation.hash(&mut hasher);
        meta.deletion_timestamp.is_some().hash(&mut hasher);
        meta.creation_timestamp.as_ref().map(|t| t.0.as_nanosecond()).hash(&mut hasher);
        // The address allocated from spec.addressPool, or why there is none, is read from
        // annotations.
        for annotation in
            [crate::model::load_balancer::ALLOCATED_ANNOTATION, crate::model::load_balancer::ADDRESS_PROBLEM_ANNOTATION]
        {
            meta.annotations.as_ref().and_then(|a| a.get(annotation)).hash(&mut hasher);
        }
        (meta.uid.clone().unwrap_or_default(), hasher.finish())
    };
    move |event| match event {
        Event::Apply(object) => {
            let (uid, hash) = relevance(object.meta());
            // Objects without a generation (none from the apiserver) always count.
            if object.meta().generation.is_none() || seen.insert(uid, hash) != Some(hash) {
                desired.changed_dependency(dependency(object.meta()));
            }
        }
        Event::InitApply(object) => {
            let (uid, hash) = relevance(object.meta());
            seen.insert(uid, hash);
            desired.changed();
        }
        Event::Delete(object) => {
            seen.remove(object.meta().uid.as_deref().unwrap_or_default());
            desired.changed_dependency(dependency(object.meta()));
        }
        Event::Init => {
            seen.clear();
            desired.changed();
        }
        Event::InitDone => desired.changed(),
    }
}

/// What a reconcile of a VirtualServer or TransportServer acts on: everything but its status.
/// The operator's own status writes change only the status (and resourceVersion), so they no
/// longer trigger a second, idle reconcile of the object they were written to.
fn reconcile_relevance<K: kube::Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::hash::DefaultHasher::new();
    meta.uid.hash(&mut hasher);
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    Some(hasher.finish())
}

/// The annotation `kubectl apply` keeps a copy of the whole object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what the model never reads from a cached object: its managed fields and kubectl's
/// last-applied copy (together often larger than the object itself).
pub(crate) fn trim<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// [`trim`], and the spare capacity of the Service's port list.
fn trim_service(service: &mut ServiceView) {
    trim(service);
    service.shrink();
}

/// [`trim`], the slice's annotations and owner, and the spare capacity of its lists. (The
/// endpoints' object references, hints, zones and hostnames are not even deserialised: see
/// [`EndpointSliceView`].)
fn trim_slice(slice: &mut EndpointSliceView) {
    trim(slice);
    slice.metadata.annotations = None;
    slice.metadata.owner_references = None;
    slice.shrink();
}

/// [`trim`], and a Node's image list (hundreds of entries on a busy node) and volume lists.
fn trim_node(node: &mut Node) {
    trim(node);
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.volumes_attached = None;
        status.volumes_in_use = None;
    }
}
