//! The BigIpTunnel controller (flannel VXLAN): keeps the BIG-IP's VXLAN profile, tunnel and
//! self IP in place, the Node object that represents the BIG-IP to flannel, the tunnel's FDB
//! records in step with the Nodes and the static ARP entries in step with the cluster-mode
//! pool members, and heals VTEP MAC changes (an ARP entry whose MAC changed is deleted and
//! created again, as BIG-IP cannot change it in place).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;

use super::report::EventRecorder;
use kube::runtime::finalizer::{finalizer, Error as FinalizerError, Event as FinalizerEvent};
use kube::runtime::reflector::Store;
use kube::runtime::watcher::Config as WatcherConfig;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::cluster_view::StoreView;
use super::reconcile::jiff_now;
use crate::bigip::version::{MinimumVersion, MINIMUM_FOR_BGP, MINIMUM_SUPPORTED};
use crate::bigip::{BigIpError, BigIpVersion, NetApi, NetKind, Removal};
use crate::crd::{
    BgpPeering, BigIpTunnel, BigIpTunnelStatus, Condition, FlannelEtcd, TransportServer, TunnelMode, VirtualServer,
    VxlanTunnel,
};
use crate::etcd::{EtcdClient, EtcdError, EtcdTls};
use crate::metrics::ControllerName;
use crate::model::bgp::{neighbor_addresses, prefix_list_entries};
use crate::model::flannel::{arp_entries, bigip_node, fdb_records, plan_arp, ArpEntry, FdbRecord, Mac};
use crate::model::flannel_etcd::{
    arp_entries_from_leases, fdb_records_from_leases, lease_key, lease_value, parse_lease, subnets_directory, Lease,
};
use crate::model::labels::Selector;
use crate::model::{ClusterView, ModelDefaults};

/// Field manager of the BIG-IP's Node object.
pub const TUNNEL_FIELD_MANAGER: &str = "bigip-operator-tunnel";
/// Prefix of the static ARP entries this operator manages; others are never touched.
pub const ARP_NAME_PREFIX: &str = "k8s-";

pub struct TunnelContext<B: NetApi> {
    pub client: Client,
    pub bigip: Arc<B>,
    pub cluster: StoreView,
    pub virtual_servers: Store<VirtualServer>,
    pub transport_servers: Store<TransportServer>,
    /// The VirtualServer and TransportServer controllers' desired state (its pool members).
    pub desired: Arc<super::desired::DesiredState>,
    /// Every watch cache of the VirtualServer controllers has completed its first list.
    pub ready: super::cluster_view::CachesReady,
    pub defaults: ModelDefaults,
    pub recorder: EventRecorder,
    pub metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("writing {what}: {source}")]
    Write { what: String, source: kube::Error },
    #[error("listing BigIpTunnels: {0}")]
    List(kube::Error),
    #[error("removing {what} from the BIG-IP: {source}")]
    Cleanup { what: String, source: BigIpError },
    #[error("deleting the BIG-IP's Node {name}: {source}")]
    NodeCleanup { name: String, source: kube::Error },
    #[error("removing the BIG-IP's lease from flannel's etcd: {0}")]
    Etcd(String),
    #[error("watch caches never became ready")]
    CachesNotReady,
    #[error("finalizer: {0}")]
    Finalizer(String),
}

/// Runs the BigIpTunnel controller until shutdown; `changes` fires on every Node or
/// EndpointSlice change (each reconcile recomputes everything; there are few tunnels).
pub async fn run<B: NetApi>(ctx: Arc<TunnelContext<B>>, changes: impl futures::Stream<Item = ()> + Send + 'static) {
    let api: Api<BigIpTunnel> = Api::all(ctx.client.clone());
    info!("starting the BigIpTunnel controller");
    let (store, writer) = kube::runtime::reflector::store();
    let events = super::watches::events(api, WatcherConfig::default(), "bigiptunnels", ctx.metrics.clone())
        .reflect(writer)
        .touched_objects();
    Controller::for_stream(events, store)
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(500)))
        .reconcile_all_on(changes)
        .shutdown_on_signal()
        .run(
            reconcile,
            |_, error: &TunnelError, _| {
                warn!(%error, "tunnel reconcile failed; retrying");
                Action::requeue(Duration::from_secs(5))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// ARP entry names: `k8s-<address>` (`:` of IPv6 becomes `-`).
pub fn arp_name(address: &IpAddr) -> String {
    format!("{ARP_NAME_PREFIX}{}", address.to_string().replace(':', "-"))
}

/// What one reconcile did, for the status.
#[derive(Debug, Clone, PartialEq)]
enum Programmed {
    Vxlan { vtep_mac: Mac, fdb_entries: usize, arp_entries: usize },
    Bgp { neighbors: usize, route_filters: usize },
}

/// Why a BigIpTunnel is not programmed: the reason and message of its conditions.
#[derive(Debug, Clone, PartialEq)]
enum NotProgrammed {
    /// The spec cannot be programmed as written.
    Invalid(String),
    /// An older BigIpTunnel of the same mode holds the BIG-IP's objects.
    Conflict { holder: String },
    /// The BIG-IP is too old for what the spec asks.
    UnsupportedVersion { version: BigIpVersion, minimum: MinimumVersion, what: &'static str },
    /// Writing the BIG-IP's Node object failed.
    NodeWrite(String),
    /// The BIG-IP failed or refused a request.
    BigIp { reason: &'static str, message: String },
    /// flannel's etcd (etcd mode) failed, or its TLS Secret is missing or unusable.
    Etcd { reason: &'static str, message: String },
}

impl NotProgrammed {
    fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "Invalid",
            Self::Conflict { .. } => "Conflict",
            Self::UnsupportedVersion { .. } => "UnsupportedBigIpVersion",
            Self::NodeWrite(_) => "NodeWriteFailed",
            Self::BigIp { reason, .. } | Self::Etcd { reason, .. } => reason,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Invalid(message)
            | Self::NodeWrite(message)
            | Self::BigIp { message, .. }
            | Self::Etcd { message, .. } => message.clone(),
            Self::Conflict { holder } => format!(
                "BigIpTunnel {holder} (older, same mode) programs the BIG-IP; only one BigIpTunnel per mode is \
                 programmed, this one takes over once {holder} is deleted"
            ),
            Self::UnsupportedVersion { version, minimum, what } => {
                format!("{what} needs BIG-IP {minimum} or later; this BIG-IP runs {version} (see docs/networking.md)")
            }
        }
    }

    /// Whether the spec is refused as such (Accepted=False) rather than failing to program.
    fn refuses_spec(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Conflict { .. } | Self::UnsupportedVersion { .. })
    }

    fn bigip(error: BigIpError) -> Self {
        Self::BigIp { reason: error.reason(), message: error.to_string() }
    }
}

/// One reconcile's result: what the BIG-IP said its version is, and what was programmed.
struct Outcome {
    version: Option<BigIpVersion>,
    result: Result<Programmed, NotProgrammed>,
}

/// The BIG-IP's objects the operator manages on route domain 0 for BGP mode.
pub const BGP_INSTANCE: &str = "bigip-operator";

/// How often etcd mode re-reads flannel's subnet leases.
pub const ETCD_POLL_PERIOD: Duration = Duration::from_secs(10);

/// The prefix list and route map of BGP mode's inbound route filters.
pub const ROUTE_FILTER: &str = "bigip-operator-in";

/// The finalizer that removes a BigIpTunnel's objects from the BIG-IP before it goes away.
pub const TUNNEL_FINALIZER: &str = "bigip.operator.dev/tunnel-cleanup";

fn profile_name(spec: &VxlanTunnel) -> String {
    format!("{}-profile", spec.tunnel_name)
}

fn self_ip_name(spec: &VxlanTunnel) -> String {
    format!("{}-self", spec.tunnel_name)
}

/// The BigIpTunnel of `mode` that programs the BIG-IP: the oldest one (then by name). One being
/// deleted keeps the role until its cleanup is done, so two never program at once.
pub fn holder_of(mode: TunnelMode, tunnels: &[BigIpTunnel]) -> Option<String> {
    tunnels
        .iter()
        .filter(|t| t.spec.mode == mode)
        .min_by_key(|t| (t.metadata.creation_timestamp.clone(), t.name_any()))
        .map(ResourceExt::name_any)
}

impl TunnelError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Write { .. } => "status_write",
            Self::List(_) => "list",
            Self::Cleanup { .. } => "cleanup",
            Self::NodeCleanup { .. } => "node_cleanup",
            Self::Etcd(_) => "etcd",
            Self::CachesNotReady => "caches_not_ready",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

#[instrument(skip_all, fields(kind = "BigIpTunnel", object = %tunnel.name_any()))]
async fn reconcile<B: NetApi>(tunnel: Arc<BigIpTunnel>, ctx: Arc<TunnelContext<B>>) -> Result<Action, TunnelError> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(tunnel, &ctx).await;
    let outcome = result.as_ref().map(|_| ()).map_err(TunnelError::metric_label);
    ctx.metrics.reconciled(ControllerName::BigIpTunnel, started.elapsed(), outcome);
    result
}

async fn reconcile_inner<B: NetApi>(tunnel: Arc<BigIpTunnel>, ctx: &TunnelContext<B>) -> Result<Action, TunnelError> {
    // FDB records and ARP entries computed from a partial cache would remove live ones.
    ctx.ready.wait().await.map_err(|_| TunnelError::CachesNotReady)?;
    let api: Api<BigIpTunnel> = Api::all(ctx.client.clone());
    finalizer(&api, TUNNEL_FINALIZER, tunnel, |event| async {
        match event {
            FinalizerEvent::Apply(tunnel) => apply(&tunnel, ctx, &api).await,
            FinalizerEvent::Cleanup(tunnel) => cleanup(&tunnel, ctx, &api).await,
        }
    })
    .await
    .map_err(|e| match e {
        FinalizerError::ApplyFailed(inner) | FinalizerError::CleanupFailed(inner) => inner,
        other => TunnelError::Finalizer(other.to_string()),
    })
}

async fn apply<B: NetApi>(
    tunnel: &BigIpTunnel,
    ctx: &TunnelContext<B>,
    api: &Api<BigIpTunnel>,
) -> Result<Action, TunnelError> {
    let all = api.list(&ListParams::default()).await.map_err(TunnelError::List)?;
    let outcome = match holder_of(tunnel.spec.mode, &all.items) {
        Some(holder) if holder != tunnel.name_any() => {
            Outcome { version: None, result: Err(NotProgrammed::Conflict { holder }) }
        }
        _ => program(tunnel, ctx).await,
    };
    let status = tunnel_status(tunnel, &outcome);
    let conditions = status.conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str()));
    ctx.metrics.objects.observe("BigIpTunnel", tunnel.name_any(), conditions);
    if tunnel.status.as_ref() != Some(&status) {
        let write_error =
            |source| TunnelError::Write { what: format!("status of BigIpTunnel {}", tunnel.name_any()), source };
        let status = serde_json::to_value(&status).map_err(|e| write_error(kube::Error::SerdeError(e)))?;
        super::report::apply_status(api, &tunnel.name_any(), TUNNEL_FIELD_MANAGER, &status)
            .await
            .map_err(write_error)?;
    }
    // flannel's leases in etcd change without a Kubernetes event: etcd mode polls them.
    let etcd_mode = tunnel.spec.vxlan.as_ref().is_some_and(|v| v.etcd.is_some());
    Ok(match outcome.result {
        Ok(_) if etcd_mode => Action::requeue(ETCD_POLL_PERIOD),
        Ok(_) => Action::requeue(Duration::from_secs(300)),
        Err(_) => Action::requeue(Duration::from_secs(10)),
    })
}

/// Checks the BIG-IP's version, then programs the mode.
async fn program<B: NetApi>(tunnel: &BigIpTunnel, ctx: &TunnelContext<B>) -> Outcome {
    let version = match ctx.bigip.version().await {
        Ok(version) => version,
        Err(error) => return Outcome { version: None, result: Err(NotProgrammed::bigip(error)) },
    };
    let unsupported = |minimum: MinimumVersion, what: &'static str| {
        (!version.at_least(minimum)).then(|| NotProgrammed::UnsupportedVersion {
            version: version.clone(),
            minimum,
            what,
        })
    };
    let too_old = match tunnel.spec.mode {
        TunnelMode::Vxlan => unsupported(MINIMUM_SUPPORTED, "bigip-operator"),
        TunnelMode::Bgp => unsupported(MINIMUM_SUPPORTED, "bigip-operator")
            .or_else(|| unsupported(MINIMUM_FOR_BGP, "BGP mode (iControl REST /mgmt/tm/net/routing)")),
    };
    let result = match (too_old, tunnel.spec.mode) {
        (Some(problem), _) => Err(problem),
        (None, TunnelMode::Vxlan) => match &tunnel.spec.vxlan {
            Some(vxlan) => program_vxlan(tunnel, vxlan, ctx).await,
            None => Err(NotProgrammed::Invalid("mode vxlan needs the vxlan section".into())),
        },
        (None, TunnelMode::Bgp) => match &tunnel.spec.bgp {
            Some(bgp) => program_bgp(bgp, ctx).await,
            None => Err(NotProgrammed::Invalid("mode bgp needs the bgp section".into())),
        },
    };
    Outcome { version: Some(version), result }
}

fn tunnel_status(tunnel: &BigIpTunnel, outcome: &Outcome) -> BigIpTunnelStatus {
    let generation = tunnel.metadata.generation;
    let previous = tunnel.status.as_ref();
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        let since = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone());
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time: since.unwrap_or_else(jiff_now),
        }
    };
    let bigip_version =
        outcome.version.as_ref().map(ToString::to_string).or_else(|| previous.and_then(|p| p.bigip_version.clone()));
    match &outcome.result {
        Ok(Programmed::Vxlan { vtep_mac, fdb_entries, arp_entries }) => BigIpTunnelStatus {
            conditions: vec![
                condition("Accepted", "True", "Accepted", "the spec is valid".into()),
                condition("Programmed", "True", "Programmed", "tunnel, self IP, FDB and ARP entries are on the BIG-IP".into()),
                condition("Ready", "True", "Ready", format!("the BIG-IP reaches pods through VTEP {}", vtep_mac.as_str())),
            ],
            observed_generation: generation,
            fdb_entries: i32::try_from(*fdb_entries).ok(),
            arp_entries: i32::try_from(*arp_entries).ok(),
            vtep_mac: Some(vtep_mac.as_str().to_string()),
            bigip_version,
        },
        Ok(Programmed::Bgp { neighbors, route_filters }) => BigIpTunnelStatus {
            conditions: vec![
                condition("Accepted", "True", "Accepted", "the spec is valid".into()),
                condition(
                    "Programmed",
                    "True",
                    "Programmed",
                    match route_filters {
                        0 => format!("BGP instance {BGP_INSTANCE} peers with {neighbors} nodes, accepting every route"),
                        n => format!("BGP instance {BGP_INSTANCE} peers with {neighbors} nodes through {n} route filters ({ROUTE_FILTER})"),
                    },
                ),
                condition(
                    "Ready",
                    if *neighbors > 0 { "True" } else { "False" },
                    if *neighbors > 0 { "Ready" } else { "NoPeers" },
                    format!("{neighbors} BGP neighbors configured (sessions come up once Calico peers back)"),
                ),
            ],
            observed_generation: generation,
            fdb_entries: None,
            arp_entries: None,
            vtep_mac: None,
            bigip_version,
        },
        Err(problem) => {
            let (reason, message) = (problem.reason(), problem.message());
            let accepted = if problem.refuses_spec() {
                condition("Accepted", "False", reason, message.clone())
            } else {
                condition("Accepted", "True", "Accepted", "the spec is valid".into())
            };
            BigIpTunnelStatus {
                conditions: vec![
                    accepted,
                    condition("Programmed", "False", reason, message.clone()),
                    condition("Ready", "False", reason, message),
                ],
                observed_generation: generation,
                fdb_entries: previous.and_then(|p| p.fdb_entries),
                arp_entries: previous.and_then(|p| p.arp_entries),
                vtep_mac: previous.and_then(|p| p.vtep_mac.clone()),
                bigip_version,
            }
        }
    }
}

/// Removes what the BigIpTunnel put on the BIG-IP (only objects the operator created; see
/// [`MANAGED_DESCRIPTION`](crate::bigip::net::MANAGED_DESCRIPTION)) and the BIG-IP's Node. A
/// BigIpTunnel that never held its mode has nothing to remove.
async fn cleanup<B: NetApi>(
    tunnel: &BigIpTunnel,
    ctx: &TunnelContext<B>,
    api: &Api<BigIpTunnel>,
) -> Result<Action, TunnelError> {
    let all = api.list(&ListParams::default()).await.map_err(TunnelError::List)?;
    if holder_of(tunnel.spec.mode, &all.items).as_deref() != Some(tunnel.name_any().as_str()) {
        info!(tunnel = %tunnel.name_any(), "another BigIpTunnel holds the mode; nothing to remove");
        return Ok(Action::await_change());
    }
    let removed = match (&tunnel.spec.vxlan, &tunnel.spec.bgp) {
        (Some(vxlan), _) if tunnel.spec.mode == TunnelMode::Vxlan => remove_vxlan(tunnel, vxlan, ctx).await,
        (_, Some(_)) if tunnel.spec.mode == TunnelMode::Bgp => remove_bgp(ctx).await,
        _ => Ok(Vec::new()),
    };
    match removed {
        Ok(report) => {
            let note = if report.is_empty() { "nothing to remove".to_string() } else { report.join("; ") };
            info!(tunnel = %tunnel.name_any(), %note, "BigIpTunnel removed from the BIG-IP");
            publish(ctx, tunnel, EventType::Normal, "Removed", note).await;
            Ok(Action::await_change())
        }
        Err(error) => {
            publish(
                ctx,
                tunnel,
                EventType::Warning,
                "CleanupFailed",
                format!("{error}; the finalizer stays until it succeeds"),
            )
            .await;
            Err(error)
        }
    }
}

/// Removes one object if the operator created it.
async fn remove_managed<B: NetApi>(ctx: &TunnelContext<B>, kind: NetKind, name: &str) -> Result<Removal, TunnelError> {
    ctx.bigip
        .remove_managed(kind, name)
        .await
        .map_err(|source| TunnelError::Cleanup { what: format!("{} {name}", kind.what()), source })
}

/// `deleted tunnel flannel_vxlan`, for the Removed event.
fn describe(kind: NetKind, name: &str, removal: Removal) -> String {
    let what = kind.what();
    match removal {
        Removal::Deleted => format!("deleted {what} {name}"),
        Removal::Kept => format!("kept {what} {name} (it existed before the operator)"),
        Removal::Absent => format!("{what} {name} was already gone"),
    }
}

/// etcd mode cleanup: the BIG-IP's lease, if it is still the one the operator wrote (its
/// PublicIP is the tunnel's localAddress), so flannel stops routing to the BIG-IP.
async fn remove_own_lease<B: NetApi>(
    spec: &VxlanTunnel,
    etcd: &FlannelEtcd,
    ctx: &TunnelContext<B>,
) -> Result<String, TunnelError> {
    let etcd_error = |e: NotProgrammed| TunnelError::Etcd(e.message());
    let (own_subnet, public_ip) = own_lease(spec).map_err(etcd_error)?;
    let client = etcd_client(etcd, ctx).await.map_err(etcd_error)?;
    let key = lease_key(&etcd.prefix, &own_subnet);
    let directory = subnets_directory(&etcd.prefix);
    let current = client.get(&key).await.map_err(|e| TunnelError::Etcd(e.to_string()))?;
    let ours = current
        .as_deref()
        .and_then(|value| parse_lease(&directory, &key, value).ok())
        .is_some_and(|l| l.public_ip == public_ip);
    if !ours {
        return Ok(format!("etcd lease {key} not ours or already gone; left"));
    }
    client.delete(&key).await.map_err(|e| TunnelError::Etcd(e.to_string()))?;
    Ok(format!("deleted etcd lease {key}"))
}

/// BGP cleanup: the instance, then the route map and prefix list it used.
async fn remove_bgp<B: NetApi>(ctx: &TunnelContext<B>) -> Result<Vec<String>, TunnelError> {
    let mut report = Vec::new();
    for (kind, name) in
        [(NetKind::Bgp, BGP_INSTANCE), (NetKind::RouteMap, ROUTE_FILTER), (NetKind::PrefixList, ROUTE_FILTER)]
    {
        let removal = remove_managed(ctx, kind, name).await?;
        report.push(describe(kind, name, removal));
    }
    Ok(report)
}

/// flannel VXLAN cleanup, in the order that stops traffic first: the BIG-IP's Node (flannel
/// stops routing to it), the static ARP entries, the self IP, the tunnel (its FDB records go
/// with it; a kept tunnel has them cleared), the profile.
async fn remove_vxlan<B: NetApi>(
    tunnel: &BigIpTunnel,
    spec: &VxlanTunnel,
    ctx: &TunnelContext<B>,
) -> Result<Vec<String>, TunnelError> {
    let mut report = Vec::new();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node_error = |source| TunnelError::NodeCleanup { name: spec.node_name.clone(), source };
    let node = nodes.get_opt(&spec.node_name).await.map_err(node_error)?;
    let owned = node
        .as_ref()
        .is_some_and(|n| n.owner_references().iter().any(|o| Some(&o.uid) == tunnel.metadata.uid.as_ref()));
    if owned {
        nodes.delete(&spec.node_name, &DeleteParams::default()).await.map_err(node_error)?;
        report.push(format!("deleted Node {}", spec.node_name));
    }

    if let Some(etcd) = &spec.etcd {
        report.push(remove_own_lease(spec, etcd, ctx).await?);
    }

    let bigip_error = |what: String| move |source| TunnelError::Cleanup { what, source };
    let arp = ctx.bigip.arp_records().await.map_err(bigip_error("ARP entries".into()))?;
    let managed_arp: Vec<_> = arp.into_iter().filter(|r| r.name.starts_with(ARP_NAME_PREFIX)).collect();
    for record in &managed_arp {
        ctx.bigip.delete_arp(&record.name).await.map_err(bigip_error(format!("ARP entry {}", record.name)))?;
    }
    report.push(format!("deleted {} ARP entries", managed_arp.len()));

    // A kept self IP still uses the tunnel, and a kept tunnel its profile: those stay, and a
    // kept tunnel loses the FDB records the operator wrote.
    let self_ip = remove_managed(ctx, NetKind::SelfIp, &self_ip_name(spec)).await?;
    report.push(describe(NetKind::SelfIp, &self_ip_name(spec), self_ip));
    let tunnel_removal = match self_ip {
        Removal::Kept => Removal::Kept,
        _ => remove_managed(ctx, NetKind::Tunnel, &spec.tunnel_name).await?,
    };
    report.push(describe(NetKind::Tunnel, &spec.tunnel_name, tunnel_removal));
    if tunnel_removal == Removal::Kept {
        ctx.bigip
            .replace_fdb_records(&spec.tunnel_name, &[])
            .await
            .map_err(bigip_error(format!("FDB of {}", spec.tunnel_name)))?;
        report.push(format!("cleared the FDB records of tunnel {}", spec.tunnel_name));
    } else {
        let profile = remove_managed(ctx, NetKind::VxlanProfile, &profile_name(spec)).await?;
        report.push(describe(NetKind::VxlanProfile, &profile_name(spec), profile));
    }
    Ok(report)
}

async fn publish<B: NetApi>(
    ctx: &TunnelContext<B>,
    tunnel: &BigIpTunnel,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let action = if matches!(reason, "Removed" | "CleanupFailed") { "Cleanup" } else { "Program" };
    super::report::publish_event(&ctx.recorder, tunnel, type_, reason, action, note).await;
}

async fn program_vxlan<B: NetApi>(
    tunnel: &BigIpTunnel,
    spec: &VxlanTunnel,
    ctx: &TunnelContext<B>,
) -> Result<Programmed, NotProgrammed> {
    let bigip_failed = NotProgrammed::bigip;
    let port =
        u16::try_from(spec.port).map_err(|_| NotProgrammed::Invalid(format!("port {} is not 1-65535", spec.port)))?;
    let profile = profile_name(spec);
    ctx.bigip.ensure_vxlan_profile(&profile, port).await.map_err(bigip_failed)?;
    ctx.bigip.ensure_tunnel(&spec.tunnel_name, &profile, &spec.local_address).await.map_err(bigip_failed)?;
    ctx.bigip.ensure_self_ip(&self_ip_name(spec), &spec.self_ip, &spec.tunnel_name).await.map_err(bigip_failed)?;
    let mac_text = ctx.bigip.tunnel_mac(&spec.tunnel_name).await.map_err(bigip_failed)?;
    let vtep_mac = Mac::parse(&mac_text).ok_or_else(|| NotProgrammed::BigIp {
        reason: "BigIpInvalidResponse",
        message: format!("the tunnel's MAC {mac_text:?} is not a MAC address"),
    })?;

    // Where the nodes' VTEPs are, and flannel told where the BIG-IP's is.
    let members = pool_member_addresses(ctx);
    let (fdb, desired_arp) = match &spec.etcd {
        None => kube_subnet_manager_vteps(tunnel, spec, &vtep_mac, &members, ctx).await?,
        Some(etcd) => etcd_vteps(tunnel, spec, etcd, &vtep_mac, &members, ctx).await?,
    };

    // FDB: one record per node with a valid VTEP.
    let desired: Vec<(String, String)> =
        fdb.iter().map(|r| (r.mac.as_str().to_string(), r.endpoint.to_string())).collect();
    let mut current = ctx.bigip.fdb_records(&spec.tunnel_name).await.map_err(bigip_failed)?;
    current.sort();
    if current != desired {
        info!(tunnel = %spec.tunnel_name, records = desired.len(), "updating FDB records");
        ctx.bigip.replace_fdb_records(&spec.tunnel_name, &desired).await.map_err(bigip_failed)?;
    }

    // ARP: the pod IPs the operator programs as pool members, each at its node's VTEP MAC.
    let current_arp: Vec<ArpEntry> = ctx
        .bigip
        .arp_records()
        .await
        .map_err(bigip_failed)?
        .into_iter()
        .filter(|r| r.name.starts_with(ARP_NAME_PREFIX))
        .filter_map(|r| Some(ArpEntry { address: r.ip_address.parse().ok()?, mac: Mac::parse(&r.mac_address)? }))
        .collect();
    let plan = plan_arp(&current_arp, &desired_arp);
    if !plan.is_empty() {
        info!(delete = plan.delete.len(), create = plan.create.len(), "updating static ARP entries");
    }
    for entry in &plan.delete {
        ctx.bigip.delete_arp(&arp_name(&entry.address)).await.map_err(bigip_failed)?;
    }
    for entry in &plan.create {
        let name = arp_name(&entry.address);
        ctx.bigip.create_arp(&name, &entry.address.to_string(), entry.mac.as_str()).await.map_err(bigip_failed)?;
    }
    Ok(Programmed::Vxlan { vtep_mac, fdb_entries: desired.len(), arp_entries: desired_arp.len() })
}

/// kube-subnet-manager mode: the Node that makes flannel route the BIG-IP's subnet to its VTEP
/// (owned by the tunnel); the nodes' VTEPs from flannel's annotations, nodes without a valid
/// one reported and skipped; ARP entries for the pods of the nodes with a VTEP.
async fn kube_subnet_manager_vteps<B: NetApi>(
    tunnel: &BigIpTunnel,
    spec: &VxlanTunnel,
    vtep_mac: &Mac,
    members: &BTreeSet<IpAddr>,
    ctx: &TunnelContext<B>,
) -> Result<(Vec<FdbRecord>, Vec<ArpEntry>), NotProgrammed> {
    let mut node = bigip_node(spec, vtep_mac);
    node.metadata.owner_references = tunnel.metadata.uid.clone().map(|uid| {
        vec![OwnerReference {
            api_version: "bigip.operator.dev/v1alpha1".into(),
            kind: "BigIpTunnel".into(),
            name: tunnel.name_any(),
            uid,
            controller: Some(true),
            block_owner_deletion: None,
        }]
    });
    let mut node_value = serde_json::to_value(&node).map_err(|e| NotProgrammed::NodeWrite(e.to_string()))?;
    node_value["apiVersion"] = json!("v1");
    node_value["kind"] = json!("Node");
    let nodes_api: Api<Node> = Api::all(ctx.client.clone());
    nodes_api
        .patch(&spec.node_name, &PatchParams::apply(TUNNEL_FIELD_MANAGER).force(), &Patch::Apply(&node_value))
        .await
        .map_err(|e| NotProgrammed::NodeWrite(format!("writing Node {}: {e}", spec.node_name)))?;

    let nodes = ctx.cluster.nodes();
    let (records, problems) = fdb_records(&nodes);
    for problem in &problems {
        publish(ctx, tunnel, EventType::Warning, "NodeSkipped", problem.to_string()).await;
    }
    let slices = ctx.cluster.endpoint_slices.state();
    Ok((records, arp_entries(members, &slices, &nodes)))
}

/// etcd mode: the BIG-IP's lease written into flannel's etcd (no Node object), the nodes'
/// VTEPs from their leases (malformed ones reported and skipped), ARP entries for the pods
/// inside a lease's subnet.
async fn etcd_vteps<B: NetApi>(
    tunnel: &BigIpTunnel,
    spec: &VxlanTunnel,
    etcd: &FlannelEtcd,
    vtep_mac: &Mac,
    members: &BTreeSet<IpAddr>,
    ctx: &TunnelContext<B>,
) -> Result<(Vec<FdbRecord>, Vec<ArpEntry>), NotProgrammed> {
    let (own_subnet, public_ip) = own_lease(spec)?;
    let client = etcd_client(etcd, ctx).await?;
    let etcd_failed = |e: EtcdError| NotProgrammed::Etcd { reason: "EtcdFailed", message: e.to_string() };
    let key = lease_key(&etcd.prefix, &own_subnet);
    let value = lease_value(public_ip, vtep_mac);
    let directory = subnets_directory(&etcd.prefix);
    let current = client.range_prefix(&directory).await.map_err(etcd_failed)?;
    let mut leases = Vec::new();
    let mut ours_written = None;
    for (lease_key_text, lease_text) in &current {
        match parse_lease(&directory, lease_key_text, lease_text) {
            Ok(lease) => {
                if *lease_key_text == key {
                    ours_written = Some(lease.clone());
                }
                leases.push(lease);
            }
            Err(problem) => publish(ctx, tunnel, EventType::Warning, "LeaseSkipped", problem.to_string()).await,
        }
    }
    let ours = Lease { subnet: own_subnet, public_ip, vtep_mac: vtep_mac.clone() };
    if ours_written.as_ref() != Some(&ours) {
        info!(%key, "writing the BIG-IP's subnet lease into flannel's etcd");
        client.put(&key, &value).await.map_err(etcd_failed)?;
    }
    Ok((fdb_records_from_leases(&leases, &own_subnet), arp_entries_from_leases(members, &leases, &own_subnet)))
}

/// The BIG-IP's lease: its pod subnet and its VTEP address.
fn own_lease(spec: &VxlanTunnel) -> Result<(IpNet, IpAddr), NotProgrammed> {
    let subnet: IpNet = spec
        .pod_subnet
        .parse()
        .map_err(|_| NotProgrammed::Invalid(format!("podSubnet {:?} is not a CIDR", spec.pod_subnet)))?;
    let public_ip: IpAddr = spec
        .local_address
        .parse()
        .map_err(|_| NotProgrammed::Invalid(format!("localAddress {:?} is not an IP address", spec.local_address)))?;
    Ok((subnet.trunc(), public_ip))
}

/// A client for flannel's etcd, with the CA and client certificate of `tlsSecret`.
async fn etcd_client<B: NetApi>(etcd: &FlannelEtcd, ctx: &TunnelContext<B>) -> Result<EtcdClient, NotProgrammed> {
    let mut tls = EtcdTls::default();
    if let Some(reference) = &etcd.tls_secret {
        let secret_problem = |reason: &'static str, message: String| NotProgrammed::Etcd { reason, message };
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &reference.namespace);
        let secret = secrets
            .get_opt(&reference.name)
            .await
            .map_err(|e| {
                secret_problem(
                    "SecretNotFound",
                    format!("reading Secret {}/{}: {e}", reference.namespace, reference.name),
                )
            })?
            .ok_or_else(|| {
                secret_problem(
                    "SecretNotFound",
                    format!("Secret {}/{} (etcd.tlsSecret) does not exist", reference.namespace, reference.name),
                )
            })?;
        let data = secret.data.unwrap_or_default();
        tls.ca_pem = data.get("ca.crt").map(|b| b.0.clone());
        tls.identity_pem = match (data.get("tls.crt"), data.get("tls.key")) {
            (Some(certificate), Some(key)) => Some([certificate.0.as_slice(), b"\n", key.0.as_slice()].concat()),
            (None, None) => None,
            _ => {
                return Err(secret_problem(
                    "InvalidSecret",
                    format!("Secret {}/{} has only one of tls.crt and tls.key", reference.namespace, reference.name),
                ))
            }
        };
    }
    EtcdClient::new(&etcd.endpoints, &tls)
        .map_err(|e| NotProgrammed::Etcd { reason: "InvalidSecret", message: e.to_string() })
}

/// Calico BGP: one neighbor per selected Ready node (its InternalIP) with the nodes' AS, and
/// the inbound route filters as a prefix list and route map (removed when there are none).
async fn program_bgp<B: NetApi>(spec: &BgpPeering, ctx: &TunnelContext<B>) -> Result<Programmed, NotProgrammed> {
    let selector: Option<Selector> = match spec.node_selector.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(text) => {
            Some(text.parse().map_err(|e| NotProgrammed::Invalid(format!("bgp.nodeSelector {text:?}: {e}")))?)
        }
    };
    let entries = prefix_list_entries(&spec.route_filters).map_err(|e| NotProgrammed::Invalid(e.to_string()))?;
    let neighbors: Vec<(String, u32)> =
        neighbor_addresses(&ctx.cluster.nodes(), selector.as_ref()).into_iter().map(|ip| (ip, spec.peer_as)).collect();
    if entries.is_empty() {
        ctx.bigip.ensure_bgp(BGP_INSTANCE, spec.local_as, &neighbors, None).await.map_err(NotProgrammed::bigip)?;
        // Filters removed from the spec: the neighbours no longer use them.
        for kind in [NetKind::RouteMap, NetKind::PrefixList] {
            ctx.bigip.remove_managed(kind, ROUTE_FILTER).await.map_err(NotProgrammed::bigip)?;
        }
    } else {
        ctx.bigip.ensure_prefix_list(ROUTE_FILTER, &entries).await.map_err(NotProgrammed::bigip)?;
        ctx.bigip.ensure_route_map(ROUTE_FILTER, ROUTE_FILTER).await.map_err(NotProgrammed::bigip)?;
        let route_map = format!("/Common/{ROUTE_FILTER}");
        ctx.bigip
            .ensure_bgp(BGP_INSTANCE, spec.local_as, &neighbors, Some(&route_map))
            .await
            .map_err(NotProgrammed::bigip)?;
    }
    Ok(Programmed::Bgp { neighbors: neighbors.len(), route_filters: entries.len() })
}

/// Every pool member address of every VirtualServer and TransportServer the operator programs.
fn pool_member_addresses<B: NetApi>(ctx: &TunnelContext<B>) -> BTreeSet<IpAddr> {
    let snapshot = ctx.desired.snapshot(&ctx.virtual_servers, &ctx.transport_servers, &ctx.cluster, &ctx.defaults);
    snapshot
        .all_applications()
        .flat_map(|app| app.pools.iter())
        .flat_map(|p| p.members.iter())
        .map(|m| m.address)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::BigIpTunnelSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn tunnel(name: &str, mode: TunnelMode, created_second: i64) -> BigIpTunnel {
        let mut tunnel = BigIpTunnel::new(
            name,
            BigIpTunnelSpec {
                mode,
                vxlan: None,
                bgp: (mode == TunnelMode::Bgp).then(|| BgpPeering {
                    local_as: 64512,
                    peer_as: 64513,
                    node_selector: None,
                    route_filters: Vec::new(),
                }),
            },
        );
        let created = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + created_second).expect("timestamp");
        tunnel.metadata.creation_timestamp = Some(Time(created));
        tunnel.metadata.generation = Some(3);
        tunnel
    }

    #[test]
    fn the_oldest_tunnel_of_a_mode_holds_it() {
        let tunnels = vec![
            tunnel("b-newer", TunnelMode::Vxlan, 20),
            tunnel("a-older", TunnelMode::Vxlan, 10),
            tunnel("bgp", TunnelMode::Bgp, 30),
        ];
        assert_eq!(holder_of(TunnelMode::Vxlan, &tunnels).as_deref(), Some("a-older"));
        assert_eq!(holder_of(TunnelMode::Bgp, &tunnels).as_deref(), Some("bgp"), "modes do not compete");
        let same_second = vec![tunnel("zeta", TunnelMode::Vxlan, 10), tunnel("alpha", TunnelMode::Vxlan, 10)];
        assert_eq!(holder_of(TunnelMode::Vxlan, &same_second).as_deref(), Some("alpha"), "then by name");
        assert_eq!(holder_of(TunnelMode::Bgp, &same_second), None);
    }

    fn condition<'a>(status: &'a BigIpTunnelStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).expect(type_)
    }

    #[test]
    fn an_old_bigip_refuses_bgp_with_the_versions_named() {
        let version = BigIpVersion::parse("13.1.3").expect("version");
        let outcome = Outcome {
            version: Some(version.clone()),
            result: Err(NotProgrammed::UnsupportedVersion { version, minimum: MINIMUM_FOR_BGP, what: "BGP mode" }),
        };
        let status = tunnel_status(&tunnel("bgp", TunnelMode::Bgp, 0), &outcome);
        for type_ in ["Accepted", "Programmed", "Ready"] {
            let c = condition(&status, type_);
            assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "UnsupportedBigIpVersion"), "{type_}");
            assert_eq!(c.observed_generation, Some(3));
        }
        let message = &condition(&status, "Programmed").message;
        assert!(message.contains("14.1 or later") && message.contains("runs 13.1.3"), "{message}");
        assert_eq!(status.bigip_version.as_deref(), Some("13.1.3"));
    }

    #[test]
    fn a_bigip_failure_keeps_the_spec_accepted_and_the_last_counts() {
        let mut previous = tunnel("fl", TunnelMode::Vxlan, 0);
        previous.status = Some(BigIpTunnelStatus {
            fdb_entries: Some(4),
            arp_entries: Some(7),
            vtep_mac: Some("02:00:00:00:00:01".into()),
            bigip_version: Some("17.1.0".into()),
            ..BigIpTunnelStatus::default()
        });
        let outcome = Outcome {
            version: None,
            result: Err(NotProgrammed::BigIp { reason: "BigIpUnreachable", message: "connection refused".into() }),
        };
        let status = tunnel_status(&previous, &outcome);
        assert_eq!(condition(&status, "Accepted").status, "True");
        let programmed = condition(&status, "Programmed");
        assert_eq!((programmed.status.as_str(), programmed.reason.as_str()), ("False", "BigIpUnreachable"));
        assert_eq!((status.fdb_entries, status.arp_entries), (Some(4), Some(7)));
        assert_eq!(status.bigip_version.as_deref(), Some("17.1.0"), "the last version seen is kept");
    }

    #[test]
    fn a_second_tunnel_of_a_mode_names_the_holder() {
        let outcome = Outcome { version: None, result: Err(NotProgrammed::Conflict { holder: "first".into() }) };
        let status = tunnel_status(&tunnel("second", TunnelMode::Vxlan, 5), &outcome);
        let accepted = condition(&status, "Accepted");
        assert_eq!((accepted.status.as_str(), accepted.reason.as_str()), ("False", "Conflict"));
        assert!(accepted.message.contains("BigIpTunnel first"), "{}", accepted.message);
    }

    #[test]
    fn removals_are_described_for_the_event() {
        assert_eq!(describe(NetKind::Tunnel, "fl", Removal::Deleted), "deleted tunnel fl");
        assert!(describe(NetKind::SelfIp, "fl-self", Removal::Kept).contains("existed before"));
        assert_eq!(
            describe(NetKind::Bgp, BGP_INSTANCE, Removal::Absent),
            "BGP instance bigip-operator was already gone"
        );
    }
}
