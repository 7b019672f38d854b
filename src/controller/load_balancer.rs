//! Services of `type: LoadBalancer` (with this operator's `loadBalancerClass`, or without a
//! class when `--load-balancer-class-less`): each becomes one TransportServer per port and
//! protocol, owned by the Service, so the whole TransportServer path (pool members, conditions,
//! isolation, drift repair) programs it. The address is the one the Service names, or one
//! allocated from a BigIpAddressPool and recorded in the Service's annotations (so allocations
//! survive restarts and leader changes). `status.loadBalancer.ingress` is written once every
//! TransportServer is programmed; problems go to Events and the `bigip.operator.dev/status`
//! annotations. A finalizer removes the TransportServers (and so the BIG-IP's virtuals) before
//! the Service goes and its address can be handed out again.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Config as WatcherConfig;
use kube::runtime::{reflector, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::legacy::{MESSAGE_ANNOTATION, STATUS_ANNOTATION};
use super::report::EventRecorder;
use super::watches;
use crate::crd::{AddressAllocation, BigIpAddressPool, TransportServer};
use crate::metrics::{ControllerName, Metrics};
use crate::model::address_pool::AllocationError;
use crate::model::load_balancer::{
    allocated, requested_address, requested_pool, transport_servers, LoadBalancerClass, ServiceRequestError,
    ALLOCATED_ANNOTATION, ALLOCATED_FROM_ANNOTATION, GENERATED_FOR_LABEL,
};
use crate::model::ObjectKey;

/// Finalizer on handled Services: their TransportServers are removed before they go.
pub const LB_FINALIZER: &str = "bigip.operator.dev/load-balancer";
/// Field manager of what this controller writes.
pub const LB_FIELD_MANAGER: &str = "bigip-operator-load-balancer";

#[derive(Debug, thiserror::Error)]
pub enum LoadBalancerError {
    #[error("{what}: {source}")]
    Write { what: String, source: kube::Error },
    #[error("the BigIpAddressPool cache never became ready")]
    CachesNotReady,
    #[error(transparent)]
    Allocation(#[from] super::address_allocator::AllocatorError),
}

impl LoadBalancerError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Write { .. } => "write",
            Self::CachesNotReady => "caches_not_ready",
            Self::Allocation(_) => "allocation",
        }
    }
}

struct LoadBalancerContext {
    client: Client,
    recorder: EventRecorder,
    metrics: Arc<Metrics>,
    class: LoadBalancerClass,
    services: Store<Service>,
    pools: Store<BigIpAddressPool>,
    /// Set once the pools and the Services have been listed.
    caches_ready: super::cluster_view::CachesReady,
    /// Records allocations in the pools (shared with the VirtualServer/TransportServer controllers).
    allocator: Arc<super::address_allocator::AddressAllocator>,
    /// Wakes the pool status writer.
    pools_changed: tokio::sync::Notify,
}

/// Why a Service is not programmed (its status annotation and Event reason, and message).
struct Problem {
    reason: &'static str,
    message: String,
}

impl From<AllocationError> for Problem {
    fn from(e: AllocationError) -> Self {
        Self { reason: e.reason(), message: e.to_string() }
    }
}

impl From<ServiceRequestError> for Problem {
    fn from(e: ServiceRequestError) -> Self {
        Self { reason: e.reason(), message: e.to_string() }
    }
}

/// Runs the LoadBalancer Service controller and the BigIpAddressPool status writer until
/// shutdown.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    selector: Option<String>,
    class: LoadBalancerClass,
    allocator: Arc<super::address_allocator::AddressAllocator>,
    recorder: EventRecorder,
    metrics: Arc<Metrics>,
) {
    // Records of Services that no longer exist are dropped only by an operator that sees every
    // Service (no namespace, no label selector).
    let every_namespace = namespace.is_none() && selector.is_none();
    // With --selector, only the Services with those labels (their TransportServers inherit the
    // labels, so the same operator programs them).
    let service_watch = match &selector {
        Some(selector) => WatcherConfig::default().labels(selector),
        None => WatcherConfig::default(),
    };
    let services_api: Api<Service> = super::scoped_api(&client, namespace.as_deref());
    let transport_servers: Api<TransportServer> = super::scoped_api(&client, namespace.as_deref());
    let pools_api: Api<BigIpAddressPool> = Api::all(client.clone());
    info!(class = %class.class, class_less = class.class_less, "starting the LoadBalancer Service controller");

    // Allocations and the clean-up of records wait for both lists.
    let (pools_ready, pools_listed) =
        super::cluster_view::CachesReady::of_watches(&["bigipaddresspools", "loadbalancer-services"]);
    let (services, services_writer) = reflector::store();
    let service_events = watches::events(services_api, service_watch, "loadbalancer-services", metrics.clone())
        .modify(trim_unless_load_balancer)
        .reflect(services_writer)
        .inspect_ok(pools_listed.reporter("loadbalancer-services"))
        .touched_objects();
    let (pools, pools_writer) = reflector::store();
    let pool_events = watches::events(pools_api, WatcherConfig::default(), "bigipaddresspools", metrics.clone())
        .reflect(pools_writer)
        .inspect_ok(pools_listed.reporter("bigipaddresspools"))
        .touched_objects();
    let generated = watches::events(
        transport_servers,
        WatcherConfig::default().labels(GENERATED_FOR_LABEL),
        "loadbalancer-transportservers",
        metrics.clone(),
    )
    .touched_objects();
    let ctx = Arc::new(LoadBalancerContext {
        client,
        recorder,
        metrics,
        class: class.clone(),
        services: services.clone(),
        pools,
        caches_ready: pools_ready,
        allocator,
        pools_changed: tokio::sync::Notify::new(),
    });
    // A pool that appears or changes (a release updates its status) retries the Services
    // still waiting for an address.
    let waiting = services.clone();
    let controller = Controller::for_stream(service_events, services)
        .with_config(ControllerConfig::default().concurrency(4))
        .owns_stream(generated)
        .watches_stream(pool_events, move |_pool| {
            waiting
                .state()
                .into_iter()
                .filter(|s| class.handles(s) && allocated(s).is_none())
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    tokio::select! {
        _ = controller => {}
        _ = write_pool_statuses(ctx, every_namespace) => {}
    }
}

/// What the cache keeps of a Service: everything (but managed fields and kubectl's copy) of a
/// LoadBalancer, only the name, finalizers, labels and this operator's annotations of any other
/// (enough to release one that stopped being a LoadBalancer): most Services of a cluster are
/// not LoadBalancers.
fn trim_unless_load_balancer(service: &mut Service) {
    super::trim(service);
    if service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
        return;
    }
    let type_ = service.spec.as_ref().and_then(|s| s.type_.clone());
    service.spec = Some(k8s_openapi::api::core::v1::ServiceSpec { type_, ..Default::default() });
    service.status = None;
    if let Some(annotations) = service.metadata.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with("bigip.operator.dev/"));
    }
    service.metadata.owner_references = None;
}

fn error_policy(_svc: Arc<Service>, error: &LoadBalancerError, _ctx: Arc<LoadBalancerContext>) -> Action {
    warn!(%error, "LoadBalancer Service reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

#[instrument(skip_all, fields(kind = "Service", object = %format!("{}/{}", svc.namespace().unwrap_or_default(), svc.name_any())))]
async fn reconcile(svc: Arc<Service>, ctx: Arc<LoadBalancerContext>) -> Result<Action, LoadBalancerError> {
    let started = Instant::now();
    let result = reconcile_service(&svc, &ctx).await;
    let outcome = result.as_ref().map(|_| ()).map_err(LoadBalancerError::metric_label);
    ctx.metrics.reconciled(ControllerName::LoadBalancer, started.elapsed(), outcome);
    result
}

fn write_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> LoadBalancerError {
    let what = what.into();
    move |source| LoadBalancerError::Write { what, source }
}

async fn reconcile_service(svc: &Service, ctx: &LoadBalancerContext) -> Result<Action, LoadBalancerError> {
    ctx.caches_ready.wait().await.map_err(|_| LoadBalancerError::CachesNotReady)?;
    let key = ObjectKey::of(&svc.metadata);
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let has_finalizer = svc.finalizers().iter().any(|f| f == LB_FINALIZER);
    let wanted = ctx.class.handles(svc) && svc.metadata.deletion_timestamp.is_none();
    if !wanted {
        return if has_finalizer { release(svc, ctx, &api).await } else { Ok(Action::await_change()) };
    }
    if !has_finalizer {
        let mut finalizers = svc.finalizers().to_vec();
        finalizers.push(LB_FINALIZER.to_string());
        let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": svc.resource_version() } });
        super::report::merge_object(&api, &key.name, LB_FIELD_MANAGER, &patch)
            .await
            .map_err(write_error(format!("adding the finalizer to Service {key}")))?;
    }
    let address = match choose_address(svc, ctx, &api).await? {
        Ok(address) => address,
        Err(problem) => {
            report(svc, ctx, &api, problem.reason, &problem.message, None).await?;
            // Retried when a pool changes (a release updates its status), and every 30 s.
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };

    let (desired, skipped) = transport_servers(svc, address);
    let ts_api: Api<TransportServer> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let params = PatchParams::apply(LB_FIELD_MANAGER).force();
    let mut applied = Vec::new();
    for ts in &desired {
        let name = ts.name_any();
        let result = ts_api
            .patch(&name, &params, &Patch::Apply(ts))
            .await
            .map_err(write_error(format!("applying TransportServer {}/{name}", key.namespace)))?;
        applied.push(result);
    }
    let keep: BTreeSet<String> = desired.iter().map(|ts| ts.name_any()).collect();
    delete_generated(svc, ctx, &keep).await?;

    // Programmed when every TransportServer is; else the first one's reason.
    let not_programmed = applied.iter().find_map(|ts| {
        let ready = ts.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        match ready {
            // True for the TransportServer's current generation (not a status left from before).
            Some(c) if c.status == "True" && c.observed_generation == ts.metadata.generation => None,
            Some(c) => Some((c.reason.clone(), format!("TransportServer {}: {}", ts.name_any(), c.message))),
            None => Some(("Pending".to_string(), format!("TransportServer {} is not programmed yet", ts.name_any()))),
        }
    });
    let (state, message, ingress) = match (not_programmed, skipped.first()) {
        _ if desired.is_empty() => {
            ("NoPorts".to_string(), skipped.iter().map(|s| s.reason.clone()).collect::<Vec<_>>().join("; "), None)
        }
        (Some((reason, message)), _) => (reason, message, None),
        (None, Some(skip)) => {
            ("Programmed".to_string(), format!("{address}: programmed; {}", skip.reason), Some(address))
        }
        (None, None) => (
            "Programmed".to_string(),
            format!(
                "{address}: programmed as TransportServers {}",
                keep.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Some(address),
        ),
    };
    report(svc, ctx, &api, &state, &message, ingress).await?;
    Ok(Action::await_change())
}

/// The Service's address: the one it names, or the one the pools' records give it (recorded
/// earlier, or allocated and recorded now, see address_allocator.rs), which its annotations
/// then repeat. Err(problem) when there is none.
async fn choose_address(
    svc: &Service,
    ctx: &LoadBalancerContext,
    api: &Api<Service>,
) -> Result<Result<IpAddr, Problem>, LoadBalancerError> {
    match requested_address(svc) {
        Ok(Some(address)) => return Ok(Ok(address)),
        Ok(None) => {}
        Err(e) => return Ok(Err(e.into())),
    }
    let key = ObjectKey::of(&svc.metadata);
    // Addresses other Services of this class name themselves are not handed out.
    let named_elsewhere: HashSet<IpAddr> = ctx
        .services
        .state()
        .iter()
        .filter(|other| ObjectKey::of(&other.metadata) != key && ctx.class.handles(other))
        .filter_map(|other| requested_address(other).ok().flatten())
        .collect();
    let held = match ctx
        .allocator
        .claim(&key.to_string(), &key.namespace, requested_pool(svc), allocated(svc), &named_elsewhere)
        .await?
    {
        Ok(held) => held,
        Err(e) => return Ok(Err(e.into())),
    };
    if held.new {
        info!(service = %key, address = %held.address, pool = %held.pool, "allocated an address");
        let note = format!("{} from BigIpAddressPool {}", held.address, held.pool);
        super::report::publish_event(&ctx.recorder, svc, EventType::Normal, "AddressAllocated", "Allocate", note).await;
        ctx.pools_changed.notify_one();
    }
    if allocated(svc) != Some((held.address, Some(held.pool.as_str()))) {
        let patch = json!({ "metadata": { "annotations": {
            ALLOCATED_ANNOTATION: held.address.to_string(), ALLOCATED_FROM_ANNOTATION: held.pool,
        }}});
        super::report::merge_object(api, &key.name, LB_FIELD_MANAGER, &patch)
            .await
            .map_err(write_error(format!("annotating Service {key} with its address")))?;
    }
    Ok(Ok(held.address))
}

/// Writes the Service's status annotations (with an Event when the state changes) and its
/// `status.loadBalancer.ingress`.
async fn report(
    svc: &Service,
    ctx: &LoadBalancerContext,
    api: &Api<Service>,
    state: &str,
    message: &str,
    ingress: Option<IpAddr>,
) -> Result<(), LoadBalancerError> {
    let key = ObjectKey::of(&svc.metadata);
    let annotations = svc.annotations();
    let before = annotations.get(STATUS_ANNOTATION).map(String::as_str);
    if before != Some(state) || annotations.get(MESSAGE_ANNOTATION).map(String::as_str) != Some(message) {
        let patch = json!({ "metadata": { "annotations": { STATUS_ANNOTATION: state, MESSAGE_ANNOTATION: message } } });
        super::report::merge_object(api, &key.name, LB_FIELD_MANAGER, &patch)
            .await
            .map_err(write_error(format!("annotating Service {key}")))?;
        if before != Some(state) {
            let type_ = if state == "Programmed" { EventType::Normal } else { EventType::Warning };
            super::report::publish_event(&ctx.recorder, svc, type_, state, "Reconcile", message.to_string()).await;
        }
    }
    let wanted = match ingress {
        Some(address) => json!([{ "ip": address.to_string(), "ipMode": "VIP" }]),
        None => json!([]),
    };
    let current = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
    let current_ips: Vec<String> = current.into_iter().flatten().filter_map(|i| i.ip.clone()).collect();
    let wanted_ips: Vec<String> = ingress.map(|a| a.to_string()).into_iter().collect();
    if current_ips != wanted_ips {
        let patch = json!({ "status": { "loadBalancer": { "ingress": wanted } } });
        super::report::merge_status(api, &key.name, LB_FIELD_MANAGER, &patch)
            .await
            .map_err(write_error(format!("writing the load-balancer status of Service {key}")))?;
    }
    Ok(())
}

/// Deletes the TransportServers generated for `svc` that are not in `keep`; returns how many
/// still exist (deleting ones wait for their finalizer: the BIG-IP's virtual goes first).
async fn delete_generated(
    svc: &Service,
    ctx: &LoadBalancerContext,
    keep: &BTreeSet<String>,
) -> Result<usize, LoadBalancerError> {
    let key = ObjectKey::of(&svc.metadata);
    let api: Api<TransportServer> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let selector = format!("{GENERATED_FOR_LABEL}={}", key.name);
    let listed = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(write_error(format!("listing the TransportServers of Service {key}")))?;
    let uid = svc.uid().unwrap_or_default();
    let mut remaining = 0;
    for ts in listed.items {
        let owned = ts.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true));
        if !owned || keep.contains(&ts.name_any()) {
            continue;
        }
        remaining += 1;
        if ts.metadata.deletion_timestamp.is_none() {
            info!(service = %key, transport_server = %ts.name_any(), "deleting a TransportServer the Service no longer needs");
            api.delete(&ts.name_any(), &DeleteParams::default()).await.map_err(write_error(format!(
                "deleting TransportServer {}/{}",
                key.namespace,
                ts.name_any()
            )))?;
        }
    }
    Ok(remaining)
}

/// The Service is deleted, or no longer of this operator's class: its TransportServers are
/// removed (the BIG-IP's virtuals with them), then its allocation, status and finalizer.
async fn release(svc: &Service, ctx: &LoadBalancerContext, api: &Api<Service>) -> Result<Action, LoadBalancerError> {
    let key = ObjectKey::of(&svc.metadata);
    let remaining = delete_generated(svc, ctx, &BTreeSet::new()).await?;
    if remaining > 0 {
        // Their finalizers remove the virtuals from the BIG-IP first; look again shortly.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    // The virtuals are gone from the BIG-IP: the address may be handed out again.
    for released in ctx.allocator.release(&key.to_string()).await? {
        info!(service = %key, address = %released, "released the address");
        let note = format!("released {released}");
        super::report::publish_event(&ctx.recorder, svc, EventType::Normal, "AddressReleased", "Release", note).await;
    }
    let finalizers: Vec<String> = svc.finalizers().iter().filter(|f| *f != LB_FINALIZER).cloned().collect();
    let mut metadata = json!({ "finalizers": finalizers, "resourceVersion": svc.resource_version() });
    if svc.metadata.deletion_timestamp.is_none() {
        // Still there, but no longer ours: forget the allocation and what was reported.
        metadata["annotations"] = json!({
            ALLOCATED_ANNOTATION: null, ALLOCATED_FROM_ANNOTATION: null, STATUS_ANNOTATION: null, MESSAGE_ANNOTATION: null,
        });
        let status = json!({ "status": { "loadBalancer": { "ingress": [] } } });
        super::report::merge_status(api, &key.name, LB_FIELD_MANAGER, &status)
            .await
            .map_err(write_error(format!("clearing the load-balancer status of Service {key}")))?;
    }
    super::report::merge_object(api, &key.name, LB_FIELD_MANAGER, &json!({ "metadata": metadata }))
        .await
        .map_err(write_error(format!("removing the finalizer of Service {key}")))?;
    ctx.pools_changed.notify_one();
    Ok(Action::await_change())
}

/// Keeps each BigIpAddressPool's status (total, used, free, Valid, Exhausted) in step with
/// its spec and records, after each allocation or release and every 10 s; drops the records of
/// Services that no longer exist (a finalizer removed by hand), when this operator watches
/// every namespace.
async fn write_pool_statuses(ctx: Arc<LoadBalancerContext>, every_namespace: bool) {
    let api: Api<BigIpAddressPool> = Api::all(ctx.client.clone());
    if ctx.caches_ready.wait().await.is_err() {
        return;
    }
    loop {
        for mut pool in ctx.pools.state().iter().map(|p| p.as_ref().clone()) {
            let allocations = pool.status.as_ref().map(|s| s.allocations.clone()).unwrap_or_default();
            let kept: Vec<AddressAllocation> = if every_namespace {
                allocations
                    .into_iter()
                    .filter(|a| {
                        // Records of VirtualServers and TransportServers (`Kind:ns/name`) are theirs.
                        if a.service.contains(':') {
                            return true;
                        }
                        let (namespace, name) = a.service.split_once('/').unwrap_or(("", a.service.as_str()));
                        ctx.services.get(&ObjectRef::new(name).within(namespace)).is_some()
                    })
                    .collect()
            } else {
                allocations
            };
            protect_pool(&api, &pool, !kept.is_empty()).await;
            let status = super::address_allocator::pool_status(&pool, kept);
            if pool.status.as_ref() == Some(&status) {
                continue;
            }
            pool.status = Some(status);
            // With the pool's resourceVersion: a concurrent allocation wins, and the next round
            // recomputes.
            if let Err(e) = api.replace_status(&pool.name_any(), &PostParams::default(), &pool).await {
                warn!(pool = %pool.name_any(), error = %e, "writing the pool status failed; retrying");
            }
        }
        tokio::select! {
            _ = ctx.pools_changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

/// Finalizer on a BigIpAddressPool while Services hold addresses from it: deleting the pool
/// waits until they are released (and no new address is taken from a pool being deleted).
pub const POOL_FINALIZER: &str = "bigip.operator.dev/allocations";

/// Adds [`POOL_FINALIZER`] to a pool that holds allocations, and removes it once a pool being
/// deleted holds none (with the pool's resourceVersion; the next round retries).
async fn protect_pool(api: &Api<BigIpAddressPool>, pool: &BigIpAddressPool, holds_allocations: bool) {
    let has = pool.finalizers().iter().any(|f| f == POOL_FINALIZER);
    let deleting = pool.metadata.deletion_timestamp.is_some();
    let finalizers: Vec<String> = if holds_allocations && !has && !deleting {
        pool.finalizers().iter().cloned().chain([POOL_FINALIZER.to_string()]).collect()
    } else if !holds_allocations && has && deleting {
        pool.finalizers().iter().filter(|f| *f != POOL_FINALIZER).cloned().collect()
    } else {
        return;
    };
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": pool.resource_version() } });
    if let Err(e) = super::report::merge_object(api, &pool.name_any(), LB_FIELD_MANAGER, &patch).await {
        warn!(pool = %pool.name_any(), error = %e, "updating the pool's finalizer failed; retrying");
    }
}
