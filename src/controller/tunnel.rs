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
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::runtime::watcher::Config as WatcherConfig;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::cluster_view::StoreView;
use super::reconcile::jiff_now;
use crate::bigip::{BigIpError, NetApi};
use crate::crd::{BgpPeering, BigIpTunnel, BigIpTunnelStatus, Condition, TransportServer, TunnelMode, VirtualServer, VxlanTunnel};
use crate::model::flannel::{arp_entries, bigip_node, fdb_records, is_bigip_node, plan_arp, ArpEntry, Mac};
use crate::model::labels::Selector;
use crate::model::members::{node_internal_ip, node_is_ready};
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
    pub defaults: ModelDefaults,
    pub recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("writing {what}: {source}")]
    Write { what: String, source: kube::Error },
}

/// Runs the BigIpTunnel controller until shutdown; `changes` fires on every Node or
/// EndpointSlice change (each reconcile recomputes everything; there are few tunnels).
pub async fn run<B: NetApi>(ctx: Arc<TunnelContext<B>>, changes: impl futures::Stream<Item = ()> + Send + 'static) {
    let api: Api<BigIpTunnel> = Api::all(ctx.client.clone());
    info!("starting the BigIpTunnel controller");
    Controller::new(api, WatcherConfig::default())
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(500)))
        .trigger_backoff(super::triggers::watch_backoff())
        .reconcile_all_on(changes)
        .shutdown_on_signal()
        .run(reconcile, |_, error: &TunnelError, _| {
            warn!(%error, "tunnel reconcile failed; retrying");
            Action::requeue(Duration::from_secs(5))
        }, ctx)
        .for_each(|_| async {})
        .await;
}

/// ARP entry names: `k8s-<address>` (`:` of IPv6 becomes `-`).
pub fn arp_name(address: &IpAddr) -> String {
    format!("{ARP_NAME_PREFIX}{}", address.to_string().replace(':', "-"))
}

/// What one reconcile did, for the status.
enum Programmed {
    Vxlan { vtep_mac: Mac, fdb_entries: usize, arp_entries: usize },
    Bgp { neighbors: usize },
}

/// The BGP instance the operator manages on route domain 0.
pub const BGP_INSTANCE: &str = "bigip-operator";

async fn reconcile<B: NetApi>(tunnel: Arc<BigIpTunnel>, ctx: Arc<TunnelContext<B>>) -> Result<Action, TunnelError> {
    let outcome = match tunnel.spec.mode {
        TunnelMode::Vxlan => match &tunnel.spec.vxlan {
            Some(vxlan) => program_vxlan(&tunnel, vxlan, &ctx).await,
            None => Err(("Invalid".to_string(), "mode vxlan needs the vxlan section".to_string())),
        },
        TunnelMode::Bgp => match &tunnel.spec.bgp {
            Some(bgp) => program_bgp(bgp, &ctx).await,
            None => Err(("Invalid".to_string(), "mode bgp needs the bgp section".to_string())),
        },
    };
    let status = tunnel_status(&tunnel, &outcome);
    if tunnel.status.as_ref() != Some(&status) {
        let api: Api<BigIpTunnel> = Api::all(ctx.client.clone());
        let patch = json!({ "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "BigIpTunnel", "status": status });
        api.patch_status(&tunnel.name_any(), &PatchParams::apply(TUNNEL_FIELD_MANAGER).force(), &Patch::Apply(&patch))
            .await
            .map_err(|source| TunnelError::Write { what: format!("status of BigIpTunnel {}", tunnel.name_any()), source })?;
    }
    Ok(match outcome {
        Ok(_) => Action::requeue(Duration::from_secs(300)),
        Err(_) => Action::requeue(Duration::from_secs(10)),
    })
}

fn tunnel_status(tunnel: &BigIpTunnel, outcome: &Result<Programmed, (String, String)>) -> BigIpTunnelStatus {
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
    match outcome {
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
        },
        Ok(Programmed::Bgp { neighbors }) => BigIpTunnelStatus {
            conditions: vec![
                condition("Accepted", "True", "Accepted", "the spec is valid".into()),
                condition("Programmed", "True", "Programmed", format!("BGP instance {BGP_INSTANCE} peers with {neighbors} nodes")),
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
        },
        Err((reason, message)) => {
            let accepted = if reason == "Invalid" { "False" } else { "True" };
            BigIpTunnelStatus {
                conditions: vec![
                    condition("Accepted", accepted, if accepted == "True" { "Accepted" } else { reason }, message.clone()),
                    condition("Programmed", "False", reason, message.clone()),
                    condition("Ready", "False", reason, message.clone()),
                ],
                observed_generation: generation,
                fdb_entries: previous.and_then(|p| p.fdb_entries),
                arp_entries: previous.and_then(|p| p.arp_entries),
                vtep_mac: previous.and_then(|p| p.vtep_mac.clone()),
            }
        }
    }
}

async fn publish<B: NetApi>(ctx: &TunnelContext<B>, tunnel: &BigIpTunnel, reason: &str, note: String) {
    let event = KubeEvent { type_: EventType::Warning, reason: reason.into(), note: Some(note), action: "Program".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &tunnel.object_ref(&())).await {
        warn!(error = %e, "publishing event failed");
    }
}

async fn program_vxlan<B: NetApi>(
    tunnel: &BigIpTunnel,
    spec: &VxlanTunnel,
    ctx: &TunnelContext<B>,
) -> Result<Programmed, (String, String)> {
    let bigip_failed = |e: BigIpError| (e.reason().to_string(), e.to_string());
    let port = u16::try_from(spec.port).map_err(|_| ("Invalid".to_string(), format!("port {} is not 1-65535", spec.port)))?;
    let profile = format!("{}-profile", spec.tunnel_name);
    ctx.bigip.ensure_vxlan_profile(&profile, port).await.map_err(bigip_failed)?;
    ctx.bigip.ensure_tunnel(&spec.tunnel_name, &profile, &spec.local_address).await.map_err(bigip_failed)?;
    ctx.bigip.ensure_self_ip(&format!("{}-self", spec.tunnel_name), &spec.self_ip, &spec.tunnel_name).await.map_err(bigip_failed)?;
    let mac_text = ctx.bigip.tunnel_mac(&spec.tunnel_name).await.map_err(bigip_failed)?;
    let vtep_mac = Mac::parse(&mac_text)
        .ok_or_else(|| ("BigIpInvalidResponse".to_string(), format!("the tunnel's MAC {mac_text:?} is not a MAC address")))?;

    // The Node that makes flannel route the BIG-IP's subnet to its VTEP; owned by the tunnel.
    let mut node = bigip_node(spec, &vtep_mac);
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
    let mut node_value = serde_json::to_value(&node).map_err(|e| ("Invalid".to_string(), e.to_string()))?;
    node_value["apiVersion"] = json!("v1");
    node_value["kind"] = json!("Node");
    let nodes_api: Api<Node> = Api::all(ctx.client.clone());
    nodes_api
        .patch(&spec.node_name, &PatchParams::apply(TUNNEL_FIELD_MANAGER).force(), &Patch::Apply(&node_value))
        .await
        .map_err(|e| ("NodeWriteFailed".to_string(), format!("writing Node {}: {e}", spec.node_name)))?;

    // FDB: one record per node with a valid VTEP; the others are reported and skipped.
    let nodes = ctx.cluster.nodes();
    let (records, problems) = fdb_records(&nodes);
    for problem in &problems {
        publish(ctx, tunnel, "NodeSkipped", problem.to_string()).await;
    }
    let desired: Vec<(String, String)> = records.iter().map(|r| (r.mac.as_str().to_string(), r.endpoint.to_string())).collect();
    let mut current = ctx.bigip.fdb_records(&spec.tunnel_name).await.map_err(bigip_failed)?;
    current.sort();
    if current != desired {
        info!(tunnel = %spec.tunnel_name, records = desired.len(), "updating FDB records");
        ctx.bigip.replace_fdb_records(&spec.tunnel_name, &desired).await.map_err(bigip_failed)?;
    }

    // ARP: the pod IPs the operator programs as pool members, each at its node's VTEP MAC.
    let members = pool_member_addresses(ctx);
    let slices = ctx.cluster.endpoint_slices.state();
    let desired_arp = arp_entries(&members, &slices, &nodes);
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

/// Calico BGP: one neighbor per selected Ready node (its InternalIP) with the nodes' AS.
async fn program_bgp<B: NetApi>(spec: &BgpPeering, ctx: &TunnelContext<B>) -> Result<Programmed, (String, String)> {
    let selector: Option<Selector> = match spec.node_selector.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(text) => Some(text.parse().map_err(|e| ("Invalid".to_string(), format!("bgp.nodeSelector {text:?}: {e}")))?),
    };
    let mut neighbors: Vec<(String, u32)> = ctx
        .cluster
        .nodes()
        .iter()
        .filter(|n| node_is_ready(n) && !is_bigip_node(n))
        .filter(|n| selector.as_ref().is_none_or(|s| s.matches(n.metadata.labels.as_ref())))
        .filter_map(|n| node_internal_ip(n))
        .map(|ip| (ip.to_string(), spec.peer_as))
        .collect();
    neighbors.sort();
    neighbors.dedup();
    ctx.bigip
        .ensure_bgp(BGP_INSTANCE, spec.local_as, &neighbors)
        .await
        .map_err(|e| (e.reason().to_string(), e.to_string()))?;
    Ok(Programmed::Bgp { neighbors: neighbors.len() })
}

/// Every pool member address of every VirtualServer and TransportServer the operator programs.
fn pool_member_addresses<B: NetApi>(ctx: &TunnelContext<B>) -> BTreeSet<IpAddr> {
    let fleet = super::reconcile::fleet_from_stores(&ctx.virtual_servers, &ctx.transport_servers, &ctx.cluster, &ctx.defaults);
    fleet.partitions.values().flatten().flat_map(|app| app.pools.iter()).flat_map(|p| p.members.iter()).map(|m| m.address).collect()
}
