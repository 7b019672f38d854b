//! End-to-end scenario of the BigIpTunnel controller (flannel VXLAN).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use bigip_operator::crd::BigIpTunnel;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams};
use kube::Api;

use bigip_operator::simulator::Faults;

use crate::harness::{eventually, Env};
use crate::scenarios::{setup_namespace, virtual_server, workload};

const WAIT: Duration = Duration::from_secs(90);
const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";

fn vtep(mac: &str) -> String {
    format!("{BACKEND_DATA}={{\"VtepMAC\":\"{mac}\"}}")
}

/// flannel VXLAN: nodes with flannel's annotation → FDB records; cluster-mode pods → ARP
/// entries at their node's VTEP MAC; the BIG-IP Node object with flannel's annotations; a
/// node without the annotation is reported and skipped; a node's VtepMAC changed (reboot) →
/// its FDB record and its pods' ARP entries follow; a node deleted → its entries go; a second
/// BigIpTunnel of a mode waits (Conflict) and takes over when the first is deleted, which
/// removes everything it put on the BIG-IP; BGP mode is refused on BIG-IP 13.1 and peers with
/// every Ready node on 17.1. Runs alone: it annotates the shared nodes and adds one.
pub async fn bigip_tunnel_flannel(env: &Env) -> Result<()> {
    let nodes_api: Api<Node> = Api::all(env.client.clone());
    let mut nodes: Vec<(String, String)> = nodes_api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|n| bigip_operator::model::members::node_is_ready(n))
        .filter_map(|n| {
            Some((n.metadata.name.clone()?, bigip_operator::model::members::node_internal_ip(n)?.to_string()))
        })
        .collect();
    nodes.sort();
    ensure!(nodes.len() >= 2, "needs two Ready nodes, found {nodes:?}");
    let (skipped, flannel_nodes) = nodes.split_last().context("nodes")?;
    let mut macs: BTreeMap<String, String> = BTreeMap::new();
    for (index, (name, _)) in flannel_nodes.iter().enumerate() {
        let mac = format!("0a:58:0a:00:00:{:02x}", index + 1);
        env.kubectl(&["annotate", "--overwrite", "node", name, &vtep(&mac)])?;
        macs.insert(name.clone(), mac);
    }

    let ns = "e2e-tunnel";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 3, None))?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.40.10", "web", "  poolMemberType: cluster\n"))?;
    env.kubectl_apply(
        "default",
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: BigIpTunnel
metadata: {name: e2e-flannel}
spec:
  mode: vxlan
  vxlan: {localAddress: 192.168.1.254, selfIp: 10.244.200.1/16, podSubnet: 10.244.200.0/24, nodeName: e2e-bigip}
"#,
    )?;
    let tunnels: Api<BigIpTunnel> = Api::all(env.client.clone());
    let bigip_mac = bigip_operator::simulator::tunnel_mac("flannel_vxlan");
    eventually("the BigIpTunnel Programmed", WAIT, || async {
        let tunnel = tunnels.get("e2e-flannel").await?;
        let status = tunnel.status.unwrap_or_default();
        let programmed = status.conditions.iter().find(|c| c.type_ == "Programmed").cloned();
        Ok(match programmed {
            Some(c) if c.status == "True" && status.vtep_mac.as_deref() == Some(bigip_mac.as_str()) => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;

    let expected_fdb = |macs: &BTreeMap<String, String>| {
        let mut records: Vec<(String, String)> =
            flannel_nodes.iter().map(|(name, ip)| (macs[name].clone(), ip.clone())).collect();
        records.sort();
        records
    };
    let simulator_fdb = || simulator_fdb(env, "flannel_vxlan");
    eventually("FDB records for the flannel nodes", WAIT, || async {
        let (want, got) = (expected_fdb(&macs), simulator_fdb());
        Ok(if want == got { Ok(()) } else { Err(format!("{got:?} != {want:?}")) })
    })
    .await?;

    // The BIG-IP's Node: flannel's annotations with the tunnel's MAC, the pod subnet, tainted.
    let bigip_node = nodes_api.get("e2e-bigip").await?;
    let annotations = bigip_node.metadata.annotations.clone().unwrap_or_default();
    ensure!(annotations.get(BACKEND_DATA).is_some_and(|d| d.contains(&bigip_mac)), "{annotations:?}");
    ensure!(
        annotations.get("flannel.alpha.coreos.com/public-ip").map(String::as_str) == Some("192.168.1.254"),
        "{annotations:?}"
    );
    let spec = bigip_node.spec.clone().unwrap_or_default();
    ensure!(
        spec.pod_cidr.as_deref() == Some("10.244.200.0/24") && spec.taints.is_some_and(|t| !t.is_empty()),
        "node spec"
    );

    // ARP: every ready pod of web on a flannel node, at that node's MAC.
    let expected_arp = |macs: BTreeMap<String, String>| async move {
        let endpoints = ready_web_endpoints(env, ns).await?;
        let mut entries: Vec<(String, String)> = endpoints
            .into_iter()
            .filter_map(|(address, node)| Some((address, macs.get(node.as_deref()?)?.clone())))
            .collect();
        entries.sort();
        anyhow::Ok(entries)
    };
    let simulator_arp = || simulator_arp(env);
    eventually("ARP entries for the pods on flannel nodes", WAIT, || async {
        let (want, got) = (expected_arp(macs.clone()).await?, simulator_arp());
        Ok(if !want.is_empty() && holds(&got, &want) { Ok(()) } else { Err(format!("{got:?} lacks some of {want:?}")) })
    })
    .await?;

    eventually("the unannotated node reported", WAIT, || async {
        let events: Api<Event> = Api::all(env.client.clone());
        let list = events.list(&ListParams::default()).await?;
        let found = list.items.iter().any(|e| {
            e.reason.as_deref() == Some("NodeSkipped") && e.note.as_deref().is_some_and(|n| n.contains(&skipped.0))
        });
        Ok(if found { Ok(()) } else { Err("no NodeSkipped event".to_string()) })
    })
    .await?;

    // A node reboots: flannel gives it a new VtepMAC.
    let (rebooted, _) = &flannel_nodes[0];
    let changed_at = Instant::now();
    let old_mac = macs.insert(rebooted.clone(), "0a:58:0a:00:00:99".into()).context("mac")?;
    env.kubectl(&["annotate", "--overwrite", "node", rebooted, &vtep("0a:58:0a:00:00:99")])?;
    eventually("FDB and ARP follow the new MAC", WAIT, || async {
        let fdb_ok = simulator_fdb() == expected_fdb(&macs);
        let (want, got) = (expected_arp(macs.clone()).await?, simulator_arp());
        let stale = got.iter().any(|(_, mac)| *mac == old_mac);
        Ok(if fdb_ok && holds(&got, &want) && !stale {
            Ok(())
        } else {
            Err(format!("fdb in step {fdb_ok}; stale entries {stale}; arp {got:?} vs {want:?}"))
        })
    })
    .await?;
    println!("    measured: VtepMAC change healed (FDB + ARP) in {:.1}s", changed_at.elapsed().as_secs_f64());

    node_deleted_entries_removed(env, ns, &expected_fdb(&macs)).await?;

    // A second vxlan BigIpTunnel waits for the first: one programs the BIG-IP per mode.
    env.kubectl_apply(
        "default",
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: BigIpTunnel
metadata: {name: e2e-flannel-2}
spec:
  mode: vxlan
  vxlan: {tunnelName: second_vxlan, localAddress: 192.168.1.253, selfIp: 10.244.201.1/16, podSubnet: 10.244.201.0/24, nodeName: e2e-bigip-2}
"#,
    )?;
    eventually("the second vxlan BigIpTunnel in Conflict", WAIT, || async {
        let accepted = condition_of(&tunnels, "e2e-flannel-2", "Accepted").await?;
        Ok(match accepted {
            Some((status, reason, message))
                if status == "False" && reason == "Conflict" && message.contains("e2e-flannel") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    ensure!(
        env.simulator().state().tunnels().iter().all(|t| t.name != "second_vxlan"),
        "the waiting tunnel programmed nothing"
    );

    bgp_on_old_and_new_bigip(env, &tunnels, &nodes).await?;

    // Deleting the first vxlan BigIpTunnel removes its objects and Node; the second takes over.
    let deleted_at = Instant::now();
    tunnels.delete("e2e-flannel", &DeleteParams::default()).await?;
    eventually("e2e-flannel's objects removed from the BIG-IP", WAIT, || async {
        let state = env.simulator().state();
        let leftovers: Vec<String> = state
            .tunnels()
            .into_iter()
            .map(|t| t.name)
            .chain(state.self_ips().into_iter().map(|s| s.name))
            .chain(state.vxlan_profiles().into_iter().map(|p| p.name))
            .filter(|name| name.starts_with("flannel_vxlan"))
            .collect();
        let gone = tunnels.get_opt("e2e-flannel").await?.is_none() && nodes_api.get_opt("e2e-bigip").await?.is_none();
        Ok(if leftovers.is_empty() && gone {
            Ok(())
        } else {
            Err(format!("left: {leftovers:?}; BigIpTunnel or Node still there: {}", !gone))
        })
    })
    .await?;
    println!(
        "    measured: BigIpTunnel deleted → BIG-IP objects and Node removed in {:.1}s",
        deleted_at.elapsed().as_secs_f64()
    );
    eventually("a Removed event for e2e-flannel", WAIT, || async {
        let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
        let list = events.list(&ListParams::default()).await?;
        let found = list.items.iter().any(|e| {
            e.reason.as_deref() == Some("Removed")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("e2e-flannel")
                && e.note.as_deref().is_some_and(|n| n.contains("deleted tunnel flannel_vxlan"))
        });
        Ok(if found { Ok(()) } else { Err("no Removed event".to_string()) })
    })
    .await?;
    eventually("the second vxlan BigIpTunnel takes over", WAIT, || async {
        let programmed = condition_of(&tunnels, "e2e-flannel-2", "Programmed").await?;
        let tunnel_there = env.simulator().state().tunnels().iter().any(|t| t.name == "second_vxlan");
        Ok(match programmed {
            Some((status, _, _)) if status == "True" && tunnel_there => Ok(()),
            other => Err(format!("{other:?}; tunnel on the BIG-IP: {tunnel_there}")),
        })
    })
    .await?;

    tunnels.delete("e2e-flannel-2", &DeleteParams::default()).await?;
    eventually("nothing of the BigIpTunnels left on the BIG-IP", WAIT, || async {
        let state = env.simulator().state();
        let managed_arp: Vec<_> = state.arp_entries().into_iter().filter(|a| a.name.starts_with("k8s-")).collect();
        let (tunnels_left, self_ips, profiles) = (state.tunnels(), state.self_ips(), state.vxlan_profiles());
        let gone = tunnels.get_opt("e2e-flannel-2").await?.is_none() && nodes_api.get_opt("e2e-bigip-2").await?.is_none();
        Ok(if tunnels_left.is_empty() && self_ips.is_empty() && profiles.is_empty() && managed_arp.is_empty() && gone {
            Ok(())
        } else {
            Err(format!("tunnels {tunnels_left:?}, self IPs {self_ips:?}, profiles {profiles:?}, ARP {managed_arp:?}, objects gone {gone}"))
        })
    })
    .await?;
    for (name, _) in flannel_nodes {
        env.kubectl(&["annotate", "node", name, &format!("{BACKEND_DATA}-")])?;
    }
    Ok(())
}

/// The tunnel's FDB records on the simulator as (MAC, endpoint), sorted.
fn simulator_fdb(env: &Env, tunnel: &str) -> Vec<(String, String)> {
    let records = env.simulator().state().fdb_records(tunnel).unwrap_or_default();
    let mut records: Vec<(String, String)> = records.into_iter().map(|r| (r.name, r.endpoint)).collect();
    records.sort();
    records
}

/// The simulator's static ARP entries as (address, MAC), sorted.
fn simulator_arp(env: &Env) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> =
        env.simulator().state().arp_entries().into_iter().map(|e| (e.ip_address, e.mac_address)).collect();
    entries.sort();
    entries
}

/// Every entry of `want` is in `got`: other scenarios' cluster-mode pods may share the nodes,
/// so their entries are there too.
fn holds(got: &[(String, String)], want: &[(String, String)]) -> bool {
    want.iter().all(|w| got.contains(w))
}

/// The ready addresses of Service `web`'s endpoints in `ns`, with their node names.
async fn ready_web_endpoints(env: &Env, ns: &str) -> Result<Vec<(String, Option<String>)>> {
    let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), ns);
    let mut endpoints = Vec::new();
    for slice in slices.list(&ListParams::default().labels("kubernetes.io/service-name=web")).await?.items {
        for endpoint in slice.endpoints.into_iter().flatten() {
            if endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                endpoints.extend(endpoint.addresses.into_iter().map(|a| (a, endpoint.node_name.clone())));
            }
        }
    }
    Ok(endpoints)
}

/// (status, reason, message) of a BigIpTunnel's condition.
async fn condition_of(tunnels: &Api<BigIpTunnel>, name: &str, type_: &str) -> Result<Option<(String, String, String)>> {
    let tunnel = tunnels.get(name).await?;
    let conditions = tunnel.status.unwrap_or_default().conditions;
    Ok(conditions.into_iter().find(|c| c.type_ == type_).map(|c| (c.status, c.reason, c.message)))
}

/// A node is deleted: its FDB record and the ARP entries of its pods go. The node is a kwok
/// node with flannel's annotation and one cluster-mode pod of `web`, made for this check.
async fn node_deleted_entries_removed(env: &Env, ns: &str, fdb_before: &[(String, String)]) -> Result<()> {
    const NODE: &str = "e2e-extra-node";
    const MAC: &str = "0a:58:0a:00:00:77";
    const IP: &str = "172.31.0.77";
    env.kubectl_apply(
        "default",
        &format!(
            r#"apiVersion: v1
kind: Node
metadata:
  name: {NODE}
  annotations:
    kwok.x-k8s.io/node: fake
    e2e.bigip-operator.dev/internal-ip: "{IP}"
    flannel.alpha.coreos.com/backend-data: '{{"VtepMAC":"{MAC}"}}'
  labels: {{type: kwok, kubernetes.io/hostname: {NODE}}}
spec:
  podCIDR: 10.244.77.0/24
  podCIDRs: [10.244.77.0/24]
"#
        ),
    )?;
    env.kubectl_apply(
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-on-extra, labels: {{app: web}}}}\nspec:\n  nodeName: {NODE}\n  containers: [{{name: web, image: nginx, ports: [{{name: http, containerPort: 8080}}]}}]\n"
        ),
    )?;
    let fdb = |env: &Env| simulator_fdb(env, "flannel_vxlan");
    let arp_at_mac =
        |env: &Env| env.simulator().state().arp_entries().into_iter().filter(|a| a.mac_address == MAC).count();
    let mut with_extra = fdb_before.to_vec();
    with_extra.push((MAC.to_string(), IP.to_string()));
    with_extra.sort();
    eventually("the extra node's FDB record and its pod's ARP entry", WAIT, || async {
        let (records, arp) = (fdb(env), arp_at_mac(env));
        Ok(if records == with_extra && arp == 1 {
            Ok(())
        } else {
            Err(format!("fdb {records:?}, ARP entries at {MAC}: {arp}"))
        })
    })
    .await?;

    let deleted_at = Instant::now();
    env.kubectl(&["delete", "node", NODE])?;
    eventually("the deleted node's FDB record and ARP entry removed", WAIT, || async {
        let (records, arp) = (fdb(env), arp_at_mac(env));
        Ok(if records == fdb_before && arp == 0 {
            Ok(())
        } else {
            Err(format!("fdb {records:?}, ARP entries at {MAC}: {arp}"))
        })
    })
    .await?;
    println!(
        "    measured: node deleted → FDB record and ARP entry removed in {:.1}s",
        deleted_at.elapsed().as_secs_f64()
    );
    env.kubectl(&["delete", "pod", "-n", ns, "web-on-extra", "--force", "--grace-period=0", "--wait=false"])?;
    Ok(())
}

/// BGP mode on a BIG-IP older than 14.1 is refused with both versions named; on a current one
/// it peers with every Ready node (the BIG-IP's Node is not Ready, so it is none of them);
/// route filters come and go with the spec; deleting the BigIpTunnel removes the BGP instance
/// and its filters.
async fn bgp_on_old_and_new_bigip(env: &Env, tunnels: &Api<BigIpTunnel>, nodes: &[(String, String)]) -> Result<()> {
    env.simulator().set_faults(Faults { tmos_version: Some("13.1.3".into()), ..Faults::default() });
    env.kubectl_apply(
        "default",
        "apiVersion: bigip.operator.dev/v1alpha1\nkind: BigIpTunnel\nmetadata: {name: e2e-bgp}\nspec:\n  mode: bgp\n  bgp: {localAs: 64512, peerAs: 64513}\n",
    )?;
    let refused = eventually("BGP refused on BIG-IP 13.1.3", WAIT, || async {
        let programmed = condition_of(tunnels, "e2e-bgp", "Programmed").await?;
        Ok(match programmed {
            Some((status, reason, message))
                if status == "False"
                    && reason == "UnsupportedBigIpVersion"
                    && message.contains("14.1")
                    && message.contains("13.1.3") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await;
    env.simulator().set_faults(Faults::default());
    refused?;

    let mut node_ips: Vec<String> = nodes.iter().map(|(_, ip)| ip.clone()).collect();
    node_ips.sort();
    eventually("a BGP neighbor per node once the BIG-IP is 17.1", WAIT, || async {
        let bgp = env.simulator().state().bgp();
        let instance = bgp.iter().find(|b| b.name == "bigip-operator");
        let mut neighbors: Vec<(String, u32)> =
            instance.map(|b| b.neighbor.iter().map(|n| (n.name.clone(), n.remote_as)).collect()).unwrap_or_default();
        neighbors.sort();
        let want: Vec<(String, u32)> = node_ips.iter().map(|ip| (ip.clone(), 64513)).collect();
        let version = tunnels.get("e2e-bgp").await?.status.and_then(|s| s.bigip_version);
        Ok(
            if instance.is_some_and(|b| b.local_as == 64512)
                && neighbors == want
                && version.as_deref() == Some("17.1.0")
            {
                Ok(())
            } else {
                Err(format!("{bgp:?}, status version {version:?}"))
            },
        )
    })
    .await?;

    // Route filters: a prefix list and route map the neighbours use inbound; the apiserver
    // refuses an IPv6 prefix with the CRD's message.
    let with_filters = |filters: &str| {
        format!(
            "apiVersion: bigip.operator.dev/v1alpha1\nkind: BigIpTunnel\nmetadata: {{name: e2e-bgp}}\nspec:\n  mode: bgp\n  bgp:\n    localAs: 64512\n    peerAs: 64513\n{filters}"
        )
    };
    let refused =
        env.kubectl_fails(&["apply", "-f", "-"], &with_filters("    routeFilters: [{prefix: 'fd00::/8'}]\n"))?;
    ensure!(refused.contains("prefix must be an IPv4 CIDR"), "{refused}");
    env.kubectl_apply(
        "default",
        &with_filters("    routeFilters:\n    - {prefix: 10.244.7.0/24, action: deny}\n    - {prefix: 10.244.0.0/16, maxLength: 26}\n"),
    )?;
    eventually("the route filters on the BIG-IP", WAIT, || async {
        let state = env.simulator().state();
        let entries: Vec<(u32, String, String, Option<String>)> = state
            .prefix_lists()
            .iter()
            .filter(|l| l.name == "bigip-operator-in")
            .flat_map(|l| {
                l.entries.iter().map(|(seq, e)| (*seq, e.action.clone(), e.prefix.clone(), e.prefix_len_range.clone()))
            })
            .collect();
        let want = vec![
            (10, "deny".to_string(), "10.244.7.0/24".to_string(), None),
            (20, "permit".to_string(), "10.244.0.0/16".to_string(), Some("16:26".to_string())),
        ];
        let filtered = state.bgp().iter().flat_map(|b| b.neighbor.clone()).all(|n| {
            n.address_family
                .iter()
                .any(|f| f.route_map.as_ref().and_then(|r| r.inbound.as_deref()) == Some("/Common/bigip-operator-in"))
        });
        Ok(if entries == want && filtered && !state.route_maps().is_empty() {
            Ok(())
        } else {
            Err(format!("{entries:?}; every neighbour filtered: {filtered}"))
        })
    })
    .await?;
    env.kubectl_apply("default", &with_filters(""))?;
    eventually("the route filters removed with the spec's", WAIT, || async {
        let state = env.simulator().state();
        let unfiltered = state.bgp().iter().flat_map(|b| b.neighbor.clone()).all(|n| n.address_family.is_empty());
        let (lists, maps) = (state.prefix_lists(), state.route_maps());
        Ok(if unfiltered && lists.is_empty() && maps.is_empty() { Ok(()) } else { Err(format!("{lists:?} {maps:?}")) })
    })
    .await?;
    env.kubectl_apply("default", &with_filters("    routeFilters: [{prefix: 10.244.0.0/16, maxLength: 26}]\n"))?;
    eventually("the route filter back", WAIT, || async {
        Ok(if env.simulator().state().prefix_lists().len() == 1 { Ok(()) } else { Err("no prefix list".to_string()) })
    })
    .await?;

    tunnels.delete("e2e-bgp", &DeleteParams::default()).await?;
    eventually("the BGP instance, route map and prefix list removed", WAIT, || async {
        let state = env.simulator().state();
        let (left, lists, maps) = (state.bgp(), state.prefix_lists(), state.route_maps());
        let gone = tunnels.get_opt("e2e-bgp").await?.is_none();
        Ok(if left.is_empty() && lists.is_empty() && maps.is_empty() && gone {
            Ok(())
        } else {
            Err(format!("{left:?} {lists:?} {maps:?}, BigIpTunnel gone {gone}"))
        })
    })
    .await
}

/// flannel's etcd mode, against the control plane's real etcd (v3 JSON gateway): the nodes'
/// subnet leases → FDB records and ARP entries for the pods inside them; the BIG-IP's own lease
/// written (no Node object); a malformed lease reported and skipped; a lease's VtepMAC changed
/// → FDB and ARP follow on the next poll; deleting the BigIpTunnel removes its lease and its
/// BIG-IP objects.
pub async fn bigip_tunnel_flannel_etcd(env: &Env) -> Result<()> {
    use bigip_operator::etcd::{EtcdClient, EtcdTls};
    use bigip_operator::model::flannel::Mac;
    use bigip_operator::model::flannel_etcd::{lease_key, lease_value, parse_lease, subnets_directory};

    const PREFIX: &str = "/e2e.bigip-operator.dev/network";
    let endpoint = env.etcd_endpoint()?;
    let etcd = EtcdClient::new(std::slice::from_ref(&endpoint), &EtcdTls::default())?;
    let nodes_api: Api<Node> = Api::all(env.client.clone());
    // Each Ready node's lease: its podCIDR at its InternalIP.
    let mut macs: BTreeMap<String, String> = BTreeMap::new();
    let mut leases: BTreeMap<String, (ipnet::IpNet, std::net::IpAddr)> = BTreeMap::new();
    for node in nodes_api.list(&ListParams::default()).await?.items {
        let (Some(name), Some(ip)) =
            (node.metadata.name.clone(), bigip_operator::model::members::node_internal_ip(&node))
        else {
            continue;
        };
        let Some(cidr) =
            node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).and_then(|c| c.parse::<ipnet::IpNet>().ok())
        else {
            continue;
        };
        if !bigip_operator::model::members::node_is_ready(&node) {
            continue;
        }
        let mac = format!("0a:58:0a:00:01:{:02x}", leases.len() + 1);
        etcd.put(&lease_key(PREFIX, &cidr), &lease_value(ip, &Mac::parse(&mac).context("mac")?)).await?;
        macs.insert(name.clone(), mac);
        leases.insert(name, (cidr, ip));
    }
    ensure!(leases.len() >= 2, "needs two Ready nodes with a podCIDR, found {leases:?}");
    let garbage = format!("{}garbage", subnets_directory(PREFIX));
    etcd.put(&garbage, "not a lease").await?;

    let ns = "e2e-tunnel-etcd";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 3, None))?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.41.10", "web", "  poolMemberType: cluster\n"))?;
    env.kubectl_apply(
        "default",
        &format!(
            r#"apiVersion: bigip.operator.dev/v1alpha1
kind: BigIpTunnel
metadata: {{name: e2e-etcd}}
spec:
  mode: vxlan
  vxlan:
    tunnelName: etcd_vxlan
    localAddress: 192.168.1.250
    selfIp: 10.244.210.1/16
    podSubnet: 10.244.210.0/24
    nodeName: e2e-etcd-bigip
    etcd: {{endpoints: ["{endpoint}"], prefix: "{PREFIX}"}}
"#
        ),
    )?;
    let tunnels: Api<BigIpTunnel> = Api::all(env.client.clone());
    let bigip_mac = bigip_operator::simulator::tunnel_mac("etcd_vxlan");
    let own_key = lease_key(PREFIX, &"10.244.210.0/24".parse()?);
    eventually("the BIG-IP's lease in etcd and the BigIpTunnel Programmed", WAIT, || async {
        let programmed = condition_of(&tunnels, "e2e-etcd", "Programmed").await?;
        let lease = etcd.get(&own_key).await?.and_then(|v| parse_lease(&subnets_directory(PREFIX), &own_key, &v).ok());
        let lease_ok = lease
            .as_ref()
            .is_some_and(|l| l.vtep_mac.as_str() == bigip_mac && l.public_ip.to_string() == "192.168.1.250");
        Ok(match programmed {
            Some((status, _, _)) if status == "True" && lease_ok => Ok(()),
            other => Err(format!("{other:?}; lease {lease:?}")),
        })
    })
    .await?;
    ensure!(nodes_api.get_opt("e2e-etcd-bigip").await?.is_none(), "etcd mode writes no Node object");

    let expected_fdb = |macs: &BTreeMap<String, String>| {
        let mut records: Vec<(String, String)> =
            leases.iter().map(|(name, (_, ip))| (macs[name].clone(), ip.to_string())).collect();
        records.sort();
        records
    };
    let simulator_fdb = || simulator_fdb(env, "etcd_vxlan");
    // ARP: every ready pod of web inside a node's lease, at that lease's MAC.
    let leases_ref = &leases;
    let expected_arp = move |macs: BTreeMap<String, String>| async move {
        let mut entries = Vec::new();
        for (address, _) in ready_web_endpoints(env, ns).await? {
            let ip: std::net::IpAddr = address.parse()?;
            if let Some((name, _)) = leases_ref.iter().find(|(_, (cidr, _))| cidr.contains(&ip)) {
                entries.push((address, macs[name].clone()));
            }
        }
        entries.sort();
        anyhow::Ok(entries)
    };
    let simulator_arp = || simulator_arp(env);
    eventually("FDB records and ARP entries from the leases", WAIT, || async {
        let (fdb_want, fdb_got) = (expected_fdb(&macs), simulator_fdb());
        let (arp_want, arp_got) = (expected_arp(macs.clone()).await?, simulator_arp());
        Ok(if fdb_want == fdb_got && !arp_want.is_empty() && holds(&arp_got, &arp_want) {
            Ok(())
        } else {
            Err(format!("fdb {fdb_got:?} vs {fdb_want:?}; arp {arp_got:?} lacks some of {arp_want:?}"))
        })
    })
    .await?;
    eventually("the malformed lease reported", WAIT, || async {
        let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
        let found = events.list(&ListParams::default()).await?.items.iter().any(|e| {
            e.reason.as_deref() == Some("LeaseSkipped") && e.note.as_deref().is_some_and(|n| n.contains("garbage"))
        });
        Ok(if found { Ok(()) } else { Err("no LeaseSkipped event".to_string()) })
    })
    .await?;

    // A node's flannel restarts with a new VtepMAC: its lease changes in etcd only.
    let (changed, (cidr, ip)) = leases.iter().next().map(|(n, l)| (n.clone(), *l)).context("a lease")?;
    let old_mac = macs.insert(changed.clone(), "0a:58:0a:00:01:99".into()).context("mac")?;
    let changed_at = Instant::now();
    etcd.put(&lease_key(PREFIX, &cidr), &lease_value(ip, &Mac::parse("0a:58:0a:00:01:99").context("mac")?)).await?;
    eventually("FDB and ARP follow the lease's new MAC", WAIT, || async {
        let fdb_ok = simulator_fdb() == expected_fdb(&macs);
        let (want, got) = (expected_arp(macs.clone()).await?, simulator_arp());
        let stale = got.iter().any(|(_, mac)| *mac == old_mac);
        Ok(if fdb_ok && holds(&got, &want) && !stale {
            Ok(())
        } else {
            Err(format!("fdb in step {fdb_ok}; stale {stale}; {got:?} vs {want:?}"))
        })
    })
    .await?;
    println!("    measured: etcd lease VtepMAC change healed (FDB + ARP) in {:.1}s (leases are polled every 10 s; a Node or EndpointSlice event re-reads them sooner)", changed_at.elapsed().as_secs_f64());

    tunnels.delete("e2e-etcd", &DeleteParams::default()).await?;
    eventually("the BIG-IP's lease and objects removed", WAIT, || async {
        let lease = etcd.get(&own_key).await?;
        let tunnel_left = env.simulator().state().tunnels().iter().any(|t| t.name == "etcd_vxlan");
        let gone = tunnels.get_opt("e2e-etcd").await?.is_none();
        Ok(if lease.is_none() && !tunnel_left && gone {
            Ok(())
        } else {
            Err(format!("lease {lease:?}, tunnel left {tunnel_left}, BigIpTunnel gone {gone}"))
        })
    })
    .await?;
    for (cidr, _) in leases.values() {
        etcd.delete(&lease_key(PREFIX, cidr)).await?;
    }
    etcd.delete(&garbage).await?;
    Ok(())
}
