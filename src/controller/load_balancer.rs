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
use crate::crd::{AddressAllocation, BigIpAddressPool, BigIpAddressPoolStatus, Condition, TransportServer};
use crate::metrics::{ControllerName, Metrics};
use crate::model::address_pool::{allocate, AllocationError, PoolAddresses, PoolSpecError, PoolView};
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
    #[error("BigIpAddressPool {pool} changed under every one of {attempts} attempts to record an allocation")]
    Contended { pool: String, attempts: usize },
}

impl LoadBalancerError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Write { .. } => "write",
            Self::CachesNotReady => "caches_not_ready",
            Self::Contended { .. } => "contended",
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
    /// Serialises this process's allocations (the pools' resourceVersions serialise them with
    /// other writers).
    allocating: tokio::sync::Mutex<()>,
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
        allocating: Default::default(),
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
            Some(c) if c.status == "True" => None,
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

/// Attempts to record an allocation in a pool whose resourceVersion keeps changing.
const RECORD_ATTEMPTS: usize = 5;

/// The Service's address: the one it names, or the one a pool's record gives it — recorded
/// earlier, or allocated now and recorded in the pool's status (with its resourceVersion, so
/// two writers never record one address twice) before the Service's annotations say it.
/// Err(problem) when there is none.
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
    let holder = key.to_string();
    let pools_api: Api<BigIpAddressPool> = Api::all(ctx.client.clone());
    let _serial = ctx.allocating.lock().await;
    for _ in 0..RECORD_ATTEMPTS {
        // Fresh from the apiserver: the record must not be judged from a cache that lags.
        let pools =
            pools_api.list(&ListParams::default()).await.map_err(write_error("listing BigIpAddressPools"))?.items;
        let recorded = pools.iter().find_map(|pool| {
            let held = pool.status.as_ref()?.allocations.iter().find(|a| a.service == holder)?;
            Some((pool.name_any(), held.address.parse::<IpAddr>().ok()?))
        });
        let (pool_name, address) = match recorded {
            Some(found) => found,
            None => {
                let mut used: HashSet<IpAddr> = pools
                    .iter()
                    .flat_map(|p| p.status.iter().flat_map(|s| s.allocations.iter()))
                    .filter_map(|a| a.address.parse().ok())
                    .collect();
                // Addresses other Services of this class name themselves are not handed out.
                used.extend(
                    ctx.services
                        .state()
                        .iter()
                        .filter(|other| ObjectKey::of(&other.metadata) != key && ctx.class.handles(other))
                        .filter_map(|other| requested_address(other).ok().flatten()),
                );
                let views = pool_views(&pools);
                // An address the annotations still name (its record was lost) is taken back
                // when it is free; otherwise a new one.
                let again = allocated(svc).and_then(|(address, from)| {
                    let pool = views.iter().find(|v| Some(v.name.as_str()) == from)?;
                    let fits =
                        pool.addresses.as_ref().is_ok_and(|a| a.contains(address)) && pool.allows(&key.namespace);
                    (fits && !used.contains(&address)).then(|| (pool.name.clone(), address))
                });
                let choice = match again {
                    Some(choice) => choice,
                    None => match allocate(&views, &key.namespace, requested_pool(svc), &used) {
                        Ok(choice) => choice,
                        Err(e) => return Ok(Err(e.into())),
                    },
                };
                let Some(mut pool) = pools.into_iter().find(|p| p.name_any() == choice.0) else { continue };
                let mut allocations = pool.status.as_ref().map(|s| s.allocations.clone()).unwrap_or_default();
                allocations.push(AddressAllocation { address: choice.1.to_string(), service: holder.clone() });
                pool.status = Some(pool_status(&pool, allocations));
                match pools_api.replace_status(&choice.0, &PostParams::default(), &pool).await {
                    Ok(_) => {}
                    // Another writer changed the pool since it was read: read it again.
                    Err(kube::Error::Api(status)) if status.code == 409 => continue,
                    Err(source) => {
                        return Err(LoadBalancerError::Write {
                            what: format!("recording {} for Service {key} in BigIpAddressPool {}", choice.1, choice.0),
                            source,
                        })
                    }
                }
                info!(service = %key, address = %choice.1, pool = %choice.0, "allocated an address");
                let note = format!("{} from BigIpAddressPool {}", choice.1, choice.0);
                super::report::publish_event(
                    &ctx.recorder,
                    svc,
                    EventType::Normal,
                    "AddressAllocated",
                    "Allocate",
                    note,
                )
                .await;
                choice
            }
        };
        if allocated(svc) != Some((address, Some(pool_name.as_str()))) {
            let patch = json!({ "metadata": { "annotations": {
                ALLOCATED_ANNOTATION: address.to_string(), ALLOCATED_FROM_ANNOTATION: pool_name,
            }}});
            super::report::merge_object(api, &key.name, LB_FIELD_MANAGER, &patch)
                .await
                .map_err(write_error(format!("annotating Service {key} with its address")))?;
        }
        return Ok(Ok(address));
    }
    Err(LoadBalancerError::Contended { pool: "(any)".into(), attempts: RECORD_ATTEMPTS })
}

/// Removes `holder`'s records from every pool (with their resourceVersions; retried on
/// conflict). Returns the released addresses.
async fn forget_allocations(ctx: &LoadBalancerContext, holder: &str) -> Result<Vec<String>, LoadBalancerError> {
    let pools_api: Api<BigIpAddressPool> = Api::all(ctx.client.clone());
    let _serial = ctx.allocating.lock().await;
    let mut released = Vec::new();
    'pools: for _ in 0..RECORD_ATTEMPTS {
        let pools =
            pools_api.list(&ListParams::default()).await.map_err(write_error("listing BigIpAddressPools"))?.items;
        for mut pool in pools {
            let allocations = pool.status.as_ref().map(|s| s.allocations.clone()).unwrap_or_default();
            if !allocations.iter().any(|a| a.service == holder) {
                continue;
            }
            let (gone, kept): (Vec<_>, Vec<_>) = allocations.into_iter().partition(|a| a.service == holder);
            pool.status = Some(pool_status(&pool, kept));
            match pools_api.replace_status(&pool.name_any(), &PostParams::default(), &pool).await {
                Ok(_) => released
                    .extend(gone.into_iter().map(|a| format!("{} (BigIpAddressPool {})", a.address, pool.name_any()))),
                Err(kube::Error::Api(status)) if status.code == 409 => continue 'pools,
                Err(source) => {
                    return Err(LoadBalancerError::Write {
                        what: format!("releasing the address of {holder} in BigIpAddressPool {}", pool.name_any()),
                        source,
                    })
                }
            }
        }
        return Ok(released);
    }
    Err(LoadBalancerError::Contended { pool: "(any)".into(), attempts: RECORD_ATTEMPTS })
}

/// The pools as the allocator sees them; one being deleted hands out nothing.
fn pool_views(pools: &[BigIpAddressPool]) -> Vec<PoolView> {
    pools
        .iter()
        .map(|pool| PoolView {
            name: pool.name_any(),
            addresses: match pool.metadata.deletion_timestamp {
                Some(_) => Err(PoolSpecError::BeingDeleted),
                None => PoolAddresses::parse(&pool.spec.addresses),
            },
            auto_assign: pool.spec.auto_assign,
            allowed_namespaces: pool.spec.allowed_namespaces.clone(),
            order: (pool.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()), pool.name_any()),
        })
        .collect()
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
    for released in forget_allocations(ctx, &key.to_string()).await? {
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
                        let (namespace, name) = a.service.split_once('/').unwrap_or(("", a.service.as_str()));
                        ctx.services.get(&ObjectRef::new(name).within(namespace)).is_some()
                    })
                    .collect()
            } else {
                allocations
            };
            protect_pool(&api, &pool, !kept.is_empty()).await;
            let status = pool_status(&pool, kept);
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

/// A pool's status holding `allocations`. Conditions keep their transition time while their
/// status holds.
fn pool_status(pool: &BigIpAddressPool, allocations: Vec<AddressAllocation>) -> BigIpAddressPoolStatus {
    let previous = pool.status.as_ref();
    let generation = pool.metadata.generation;
    let now = super::reconcile::jiff_now();
    let condition = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_string();
        let since = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_ && c.status == status))
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        }
    };
    let used = allocations.len() as i64;
    match PoolAddresses::parse(&pool.spec.addresses) {
        Err(e) => BigIpAddressPoolStatus {
            conditions: vec![condition("Valid", false, "InvalidAddresses", e.to_string())],
            observed_generation: generation,
            total: None,
            used: Some(used),
            free: None,
            allocations,
        },
        Ok(addresses) => {
            let total = addresses.total();
            let in_pool = addresses.used_of(
                allocations.iter().filter_map(|a| a.address.parse::<IpAddr>().ok()).collect::<Vec<_>>().iter(),
            );
            let free = total.saturating_sub(in_pool);
            let exhausted = free == 0;
            let message = format!("{in_pool} of {total} addresses allocated");
            BigIpAddressPoolStatus {
                conditions: vec![
                    condition("Valid", true, "Valid", format!("{total} addresses")),
                    condition(
                        "Exhausted",
                        exhausted,
                        if exhausted { "AddressPoolExhausted" } else { "AddressesFree" },
                        message,
                    ),
                ],
                observed_generation: generation,
                total: Some(total.to_string()),
                used: Some(used),
                free: Some(free.to_string()),
                allocations,
            }
        }
    }
}
