//! The end-to-end scenarios. Each uses its own namespace and virtual addresses, so they run
//! concurrently against one control plane, operator and simulator.

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use bigip_operator::crd::VirtualServer;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams};
use kube::Api;
use serde_json::json;

use crate::harness::{eventually, Env, BIGIP_PASSWORD, DEFAULT_PARTITION};

const WAIT: Duration = Duration::from_secs(90);

fn namespace_manifest(ns: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
}

pub(crate) fn workload(name: &str, replicas: u32, node_port: Option<u16>) -> String {
    let (svc_type, node_port_line) = match node_port {
        Some(p) => ("NodePort", format!("\n      nodePort: {p}")),
        None => ("ClusterIP", String::new()),
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: {svc_type}
  selector: {{app: {name}}}
  ports:
    - name: http
      port: 80
      targetPort: http{node_port_line}
"#
    )
}

pub(crate) fn virtual_server(name: &str, address: &str, service: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: VirtualServer
metadata:
  name: {name}
spec:
  virtualAddress: {address}
  port: 80
  pools:
    - name: web
      service: {service}
      servicePort: 80
      monitors:
        - {{type: http, send: "GET /healthz HTTP/1.0\r\n\r\n", receive: "200", interval: 5, timeout: 16}}
{extra_spec}"#
    )
}

pub(crate) async fn setup_namespace(env: &Env, ns: &str) -> Result<()> {
    env.kubectl_apply("default", &namespace_manifest(ns))
}

pub(crate) async fn get_vs(env: &Env, ns: &str, name: &str) -> Result<VirtualServer> {
    Ok(Api::<VirtualServer>::namespaced(env.client.clone(), ns).get(name).await?)
}

pub(crate) fn condition<'a>(vs: &'a VirtualServer, type_: &str) -> Option<&'a bigip_operator::crd::Condition> {
    vs.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// Ok when condition `type_` has `status` and `reason`, and its message contains `needle`.
pub(crate) fn condition_is(
    vs: &VirtualServer,
    type_: &str,
    status: &str,
    reason: &str,
    needle: &str,
) -> std::result::Result<(), String> {
    match condition(vs, type_) {
        Some(c) if c.status == status && c.reason == reason && c.message.contains(needle) => Ok(()),
        other => Err(format!("{type_}: {other:?}")),
    }
}

/// Ok when every condition is True for the current generation.
pub(crate) fn all_true(vs: &VirtualServer) -> std::result::Result<(), String> {
    status_all_true(vs.status.as_ref(), vs.metadata.generation)
}

/// Ok when every condition of a VirtualServer's or TransportServer's status is True for
/// `generation`.
pub(crate) fn status_all_true(
    status: Option<&bigip_operator::crd::VirtualServerStatus>,
    generation: Option<i64>,
) -> std::result::Result<(), String> {
    let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    for type_ in ["Accepted", "ResolvedRefs", "Programmed", "Ready"] {
        match conditions.iter().find(|c| c.type_ == type_) {
            Some(c) if c.status == "True" && c.observed_generation == generation => {}
            Some(c) => {
                return Err(format!(
                    "{type_}={} ({}: {}) gen {:?}/{generation:?}",
                    c.status, c.reason, c.message, c.observed_generation
                ))
            }
            None => return Err(format!("no {type_} condition yet")),
        }
    }
    Ok(())
}

pub(crate) fn app_name(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

/// Pool members on the simulator as sorted "address:port".
pub(crate) fn simulator_members(env: &Env, partition: &str, app: &str) -> std::result::Result<Vec<String>, String> {
    let members = env
        .simulator()
        .state()
        .pool_members(partition, app, "pool_web")
        .ok_or_else(|| format!("no pool /{partition}/{app}/pool_web on the simulator"))?;
    let mut list: Vec<String> = members.iter().map(|m| format!("{}:{}", m.address, m.port)).collect();
    list.sort();
    Ok(list)
}

/// Ok when the simulator's members of the application's pool are exactly `expected`.
pub(crate) fn members_are(
    env: &Env,
    partition: &str,
    app: &str,
    expected: &[String],
) -> std::result::Result<(), String> {
    simulator_members(env, partition, app).and_then(|m| {
        if m == expected {
            Ok(())
        } else {
            Err(format!("{m:?} != {expected:?}"))
        }
    })
}

pub(crate) async fn ready_endpoints(env: &Env, ns: &str, service: &str) -> Result<Vec<String>> {
    let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut out = Vec::new();
    for slice in slices.list(&lp).await?.items {
        let port = slice.ports.iter().flatten().find_map(|p| p.port).unwrap_or(0);
        for endpoint in slice.endpoints.iter().flatten() {
            if endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                out.extend(endpoint.addresses.iter().map(|a| format!("{a}:{port}")));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// 1. helm-installed operator programs a VirtualServer: all conditions True with
///    observedGeneration, Events, and the simulator holds the virtual and nodeport members.
pub async fn programmed_end_to_end(env: &Env) -> Result<()> {
    let ns = "e2e-programmed";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 2, Some(30101)))?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.1.10", "web", ""))?;
    let vs = eventually("VirtualServer Ready", WAIT, || async {
        let vs = get_vs(env, ns, "web").await?;
        Ok(all_true(&vs).map(|_| vs))
    })
    .await?;
    let status = vs.status.clone().context("status")?;
    ensure!(status.partition.as_deref() == Some(DEFAULT_PARTITION), "partition {:?}", status.partition);
    ensure!(vs.metadata.finalizers.iter().flatten().any(|f| f == "bigip.operator.dev/cleanup"), "finalizer missing");

    let virtuals = env.simulator().state().virtual_servers();
    let virtual_ =
        virtuals.iter().find(|v| v.application == app_name(ns, "web")).context("virtual on the simulator")?;
    ensure!(virtual_.destination_address == "10.10.1.10" && virtual_.destination_port == 80, "{virtual_:?}");
    ensure!(virtual_.partition == DEFAULT_PARTITION, "{virtual_:?}");
    let nodes = env.ready_node_ips().await?;
    let expected: Vec<String> = nodes.iter().map(|ip| format!("{ip}:30101")).collect();
    eventually("nodeport members", WAIT, || async {
        Ok(members_are(env, DEFAULT_PARTITION, &app_name(ns, "web"), &expected))
    })
    .await?;
    ensure!(status.members == Some(expected.len() as i32), "status.members {:?}", status.members);

    eventually("a Programmed Event", WAIT, || async {
        let events: Api<Event> = Api::namespaced(env.client.clone(), ns);
        let list = events.list(&ListParams::default()).await?;
        Ok(
            if list.items.iter().any(|e| {
                e.reason.as_deref() == Some("Programmed")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
            }) {
                Ok(())
            } else {
                Err(format!("{} events, none Programmed", list.items.len()))
            },
        )
    })
    .await?;
    Ok(())
}

/// 2. Cluster mode: a Deployment scaled 1 → 3 → 1; pool members follow the ready endpoints.
pub async fn cluster_mode_follows_scaling(env: &Env) -> Result<()> {
    let ns = "e2e-scale";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, None))?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.2.10", "web", "  poolMemberType: cluster\n"))?;
    let app = app_name(ns, "web");
    for replicas in [1usize, 3, 1] {
        env.kubectl(&["scale", "deployment", "web", "-n", ns, &format!("--replicas={replicas}")])?;
        eventually(&format!("{replicas} pod members"), WAIT, || async {
            let endpoints = ready_endpoints(env, ns, "web").await?;
            if endpoints.len() != replicas {
                return Ok(Err(format!("{} ready endpoints", endpoints.len())));
            }
            let members = match simulator_members(env, DEFAULT_PARTITION, &app) {
                Ok(m) => m,
                Err(e) => return Ok(Err(e)),
            };
            let vs = get_vs(env, ns, "web").await?;
            let status_members = vs.status.as_ref().and_then(|s| s.members);
            Ok(
                if members == endpoints
                    && endpoints.iter().all(|e| e.ends_with(":8080"))
                    && status_members == Some(replicas as i32)
                {
                    Ok(())
                } else {
                    Err(format!("simulator {members:?}, endpoints {endpoints:?}, status.members {status_members:?}"))
                },
            )
        })
        .await?;
    }
    Ok(())
}

/// 4. A VirtualServer whose Service does not exist: ResolvedRefs False (ServiceNotFound), not
///    Ready; creating the Service makes it Ready with members.
pub async fn missing_service_then_created(env: &Env) -> Result<()> {
    let ns = "e2e-missing";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.4.10", "later", ""))?;
    eventually("ResolvedRefs False with ServiceNotFound", WAIT, || async {
        let vs = get_vs(env, ns, "web").await?;
        let resolved = condition(&vs, "ResolvedRefs").map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
        let ready = condition(&vs, "Ready").map(|c| c.status.clone());
        Ok(match (resolved, ready) {
            (Some((s, r, m)), Some(ready))
                if s == "False" && r == "ServiceNotFound" && m.contains("later") && ready == "False" =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    env.kubectl_apply(ns, &workload("later", 1, Some(30104)))?;
    eventually("Ready after the Service appears", WAIT, || async {
        let vs = get_vs(env, ns, "web").await?;
        Ok(all_true(&vs).and_then(|_| simulator_members(env, DEFAULT_PARTITION, &app_name(ns, "web"))).and_then(|m| {
            if m.is_empty() {
                Err("no members".into())
            } else {
                Ok(())
            }
        }))
    })
    .await?;
    Ok(())
}

/// 5. Invalid VirtualServers are refused by the CRD's validation with clear messages.
pub async fn crd_validation_rejects_invalid(env: &Env) -> Result<()> {
    let ns = "e2e-invalid";
    setup_namespace(env, ns).await?;
    let cases = [
        ("bad-address", "10.1.1", 80, "virtualAddress must be an IPv4 or IPv6 address"),
        ("bad-port", "10.10.5.10", 70000, "spec.port"),
    ];
    for (name, address, port, expected) in cases {
        let manifest = format!(
            "apiVersion: bigip.operator.dev/v1alpha1\nkind: VirtualServer\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  virtualAddress: \"{address}\"\n  port: {port}\n  pools: [{{name: web, service: web, servicePort: 80}}]\n"
        );
        let stderr = env.kubectl_fails(&["apply", "-f", "-"], &manifest)?;
        ensure!(stderr.contains(expected), "kubectl error for {name} lacks {expected:?}: {stderr}");
    }
    let duplicate = format!(
        "apiVersion: bigip.operator.dev/v1alpha1\nkind: VirtualServer\nmetadata: {{name: dup, namespace: {ns}}}\nspec:\n  virtualAddress: 10.10.5.11\n  port: 80\n  pools: [{{name: a, service: web, servicePort: 80}}, {{name: a, service: web, servicePort: 81}}]\n"
    );
    let stderr = env.kubectl_fails(&["apply", "-f", "-"], &duplicate)?;
    ensure!(stderr.contains("pool names must be unique"), "{stderr}");
    // The feature fields' own rules (CEL in the CRD), each with its message.
    let feature_cases = [
        ("tls: {secretName: a, clientSslProfile: /Common/clientssl}", "exactly one of secretName and clientSslProfile"),
        ("tls: {mode: passthrough, secretName: a}", "passthrough takes neither"),
        ("tls: {secretName: a, serverSslProfile: /Common/serverssl}", "apply to mode reencrypt only"),
        ("rules: [{host: a.example.com, pool: nope}]", "every rule's pool must name one of the pools"),
        ("rules: [{pool: web}]", "a rule needs a host, a path or both"),
        ("allowSourceRanges: [10.0.0.0/33]", "allowSourceRanges must hold CIDRs"),
        ("snat: none\n  snatPool: /Common/snatpool", "snatPool replaces automap"),
        ("iRules: [{bigip: /Common/a, name: b, text: c}]", "an iRule is either"),
        ("tls: {secretName: a, httpRedirect: false, httpPort: 8080}", "httpPort is the port httpRedirect or allowHttp"),
        ("tls: {mode: passthrough, httpPort: 8080}", "httpPort is the port httpRedirect or allowHttp"),
        (
            "rules: [{host: a.example.com, pool: web, persistence: {method: source-address, cookieName: x}}]",
            "cookieName goes with method cookie",
        ),
    ];
    for (index, (extra, expected)) in feature_cases.iter().enumerate() {
        let manifest = format!(
            "apiVersion: bigip.operator.dev/v1alpha1\nkind: VirtualServer\nmetadata: {{name: feature-{index}, namespace: {ns}}}\nspec:\n  virtualAddress: 10.10.5.12\n  port: 443\n  pools: [{{name: web, service: web, servicePort: 80}}]\n  {extra}\n"
        );
        let stderr = env.kubectl_fails(&["apply", "-f", "-"], &manifest)?;
        ensure!(stderr.contains(expected), "kubectl error for {extra} lacks {expected:?}: {stderr}");
    }
    let udp_cookie = format!(
        "apiVersion: bigip.operator.dev/v1alpha1\nkind: TransportServer\nmetadata: {{name: cookie, namespace: {ns}}}\nspec:\n  virtualAddress: 10.10.5.13\n  port: 53\n  protocol: udp\n  persistence: cookie\n  pool: {{name: dns, service: dns, servicePort: 53}}\n"
    );
    let stderr = env.kubectl_fails(&["apply", "-f", "-"], &udp_cookie)?;
    ensure!(stderr.contains("cookie persistence needs HTTP"), "{stderr}");
    // BigIpTunnel (cluster-scoped): the section must match the mode; the addresses are checked.
    let tunnel = |spec: &str| {
        format!("apiVersion: bigip.operator.dev/v1alpha1\nkind: BigIpTunnel\nmetadata: {{name: e2e-invalid}}\nspec:\n{spec}")
    };
    let stderr =
        env.kubectl_fails(&["apply", "-f", "-"], &tunnel("  mode: vxlan\n  bgp: {localAs: 64512, peerAs: 64512}\n"))?;
    ensure!(stderr.contains("mode vxlan needs the vxlan section"), "{stderr}");
    let stderr = env.kubectl_fails(
        &["apply", "-f", "-"],
        &tunnel(
            "  mode: vxlan\n  vxlan: {localAddress: 192.168.1.254, selfIp: 10.244.200.1, podSubnet: 10.244.200.0/24}\n",
        ),
    )?;
    ensure!(stderr.contains("selfIp must be an address with the pod network's mask"), "{stderr}");
    let listed = env.kubectl(&["get", "bvs", "-n", ns, "-o", "name"])?;
    ensure!(listed.trim().is_empty(), "rejected objects exist: {listed}");
    Ok(())
}

/// 6. Deleting a VirtualServer removes its Application; the other one in the same partition
///    is never removed.
pub async fn delete_removes_only_its_application(env: &Env) -> Result<()> {
    let ns = "e2e-delete";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30106)))?;
    env.kubectl_apply(ns, &virtual_server("keep", "10.10.6.10", "web", ""))?;
    env.kubectl_apply(ns, &virtual_server("drop", "10.10.6.11", "web", ""))?;
    for name in ["keep", "drop"] {
        eventually(&format!("{name} Ready"), WAIT, || async { Ok(all_true(&get_vs(env, ns, name).await?)) }).await?;
    }
    let api: Api<VirtualServer> = Api::namespaced(env.client.clone(), ns);
    api.delete("drop", &DeleteParams::default()).await?;
    eventually("drop gone from Kubernetes and the BIG-IP", WAIT, || async {
        let exists = api.get_opt("drop").await?.is_some();
        let tenant = env.simulator().state().tenants().get(DEFAULT_PARTITION).cloned().unwrap_or_default();
        Ok(if !exists && tenant.get(app_name(ns, "drop")).is_none() {
            Ok(())
        } else {
            Err(format!("object exists: {exists}"))
        })
    })
    .await?;
    let tenant = env.simulator().state().tenants().get(DEFAULT_PARTITION).cloned().unwrap_or_default();
    ensure!(tenant.get(app_name(ns, "keep")).is_some(), "keep was removed");
    // Since keep first appeared, every change to the partition kept it.
    let keep = app_name(ns, "keep");
    let history = env.simulator().state().history();
    let first = history.iter().position(|r| r.applications_after.contains(&keep)).context("keep was never deployed")?;
    if let Some(bad) =
        history[first..].iter().find(|r| r.tenant == DEFAULT_PARTITION && !r.applications_after.contains(&keep))
    {
        bail!("a change removed {keep}: {bad:?}");
    }
    Ok(())
}

/// 7. `kubectl get bvs` shows address, port, partition, programmed and members.
pub async fn printer_columns(env: &Env) -> Result<()> {
    let ns = "e2e-columns";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30107)))?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.7.10", "web", "  poolMemberType: cluster\n"))?;
    eventually("Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "web").await?)) }).await?;
    let table = env.kubectl(&["get", "bvs", "-n", ns])?;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().context("header")?.split_whitespace().collect();
    ensure!(header == ["NAME", "ADDRESS", "PORT", "PARTITION", "PROGRAMMED", "MEMBERS", "AGE"], "header {header:?}");
    let row: Vec<&str> = lines.next().context("row")?.split_whitespace().collect();
    ensure!(row[..6] == ["web", "10.10.7.10", "80", DEFAULT_PARTITION, "True", "1"], "row {row:?}");
    // The category and short name work too.
    ensure!(env.kubectl(&["get", "bigip", "-n", ns, "-o", "name"])?.contains("virtualserver"), "category bigip");
    Ok(())
}

/// 3. Nodeport mode: members are every Ready node's IP and the nodePort; a node added → a
///    member added; the node deleted → the member removed. Runs alone: it changes the nodes
///    every nodeport-mode scenario sees.
pub async fn nodeport_follows_nodes(env: &Env) -> Result<()> {
    let ns = "e2e-nodes";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30103)))?;
    env.kubectl_apply(ns, &virtual_server("web", "10.10.3.10", "web", ""))?;
    let app = app_name(ns, "web");
    let expect_nodes = |ips: Vec<String>| ips.into_iter().map(|ip| format!("{ip}:30103")).collect::<Vec<_>>();
    let before = expect_nodes(env.ready_node_ips().await?);
    eventually("members = nodes", WAIT, || async { Ok(members_are(env, DEFAULT_PARTITION, &app, &before)) }).await?;

    let node = r#"apiVersion: v1
kind: Node
metadata:
  name: e2e-extra-node
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
    e2e.bigip-operator.dev/internal-ip: 172.31.9.99
  labels:
    type: kwok
spec:
  taints:
    - {key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}
"#;
    env.kubectl_apply("default", node)?;
    let mut with_node = before.clone();
    with_node.push("172.31.9.99:30103".into());
    with_node.sort();
    eventually("member for the new node", WAIT, || async { Ok(members_are(env, DEFAULT_PARTITION, &app, &with_node)) })
        .await?;
    env.kubectl(&["delete", "node", "e2e-extra-node"])?;
    eventually("member removed with the node", WAIT, || async {
        Ok(members_are(env, DEFAULT_PARTITION, &app, &before))
    })
    .await?;
    Ok(())
}

/// 8. Isolation: a VirtualServer the BIG-IP rejects (its address belongs to a tenant this
///    operator does not own) gets Programmed False with the BIG-IP's reason, while another
///    VirtualServer in the same partition is programmed; fixing it programs it.
pub async fn rejected_object_does_not_break_its_partition(env: &Env) -> Result<()> {
    use bigip_operator::bigip::As3Api;
    let ns = "e2e-isolation";
    setup_namespace(env, ns).await?;
    let foreign = std::collections::BTreeMap::from([(
        "foreign".to_string(),
        json!({"class": "Tenant", "legacy": {"class": "Application",
            "vs": {"class": "Service_HTTP", "virtualAddresses": ["10.10.8.10"], "virtualPort": 80}}}),
    )]);
    // Set-up through the test's own client; under the load of every scenario starting at once
    // a TLS handshake with the simulator can fail, so the set-up is retried.
    eventually("the foreign tenant deployed", WAIT, || async {
        Ok(env.bigip.client()?.deploy_tenants(&foreign).await.map(|_| ()).map_err(|e| e.to_string()))
    })
    .await?;

    env.kubectl_apply(ns, &workload("web", 1, Some(30108)))?;
    env.kubectl_apply(ns, &virtual_server("clash", "10.10.8.10", "web", ""))?;
    env.kubectl_apply(ns, &virtual_server("fine", "10.10.8.11", "web", ""))?;
    eventually("fine Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "fine").await?)) }).await?;
    eventually("clash rejected with the BIG-IP's reason", WAIT, || async {
        let vs = get_vs(env, ns, "clash").await?;
        let accepted = condition(&vs, "Accepted").map(|c| c.status.clone());
        Ok(match condition(&vs, "Programmed") {
            Some(c)
                if c.status == "False"
                    && c.reason == "DeclarationFailed"
                    && c.message.contains("illegally shares")
                    && accepted.as_deref() == Some("True") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let tenant = env.simulator().state().tenants().get(DEFAULT_PARTITION).cloned().unwrap_or_default();
    ensure!(tenant.get(app_name(ns, "fine")).is_some() && tenant.get(app_name(ns, "clash")).is_none(), "{tenant}");
    ensure!(env.simulator().state().tenants().contains_key("foreign"), "the foreign tenant was touched");

    // Another port on the foreign tenant's address is refused too: BIG-IP keeps an address in
    // one partition. The BIG-IP's message names no application; isolation singles clash out.
    env.kubectl(&["patch", "bvs", "clash", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8080}}"#])?;
    eventually("clash refused on another port of the foreign address", WAIT, || async {
        let vs = get_vs(env, ns, "clash").await?;
        Ok(match condition(&vs, "Programmed") {
            Some(c)
                if c.status == "False"
                    && c.message.contains("0107176c")
                    && c.observed_generation == vs.metadata.generation =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    eventually("fine still Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "fine").await?)) }).await?;
    env.kubectl(&[
        "patch",
        "bvs",
        "clash",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"virtualAddress":"10.10.8.12"}}"#,
    ])?;
    eventually("clash Ready on a free address", WAIT, || async { Ok(all_true(&get_vs(env, ns, "clash").await?)) })
        .await?;
    Ok(())
}

/// The last change to `partition` by someone other than an operator (the test's own client
/// sends no replica identity) was followed by the operator's repair.
fn repaired_after_edit(env: &Env, partition: &str) -> Result<()> {
    let history: Vec<_> = env.simulator().state().history().into_iter().filter(|r| r.tenant == partition).collect();
    let by_operator =
        |r: &bigip_operator::simulator::ChangeRecord| r.client.as_deref().is_some_and(|c| c.ends_with("(main)"));
    let edit = history.iter().rposition(|r| !by_operator(r)).context("the out-of-band edit is not in the history")?;
    ensure!(history[edit + 1..].iter().any(by_operator), "no repair by the operator after the edit: {history:?}");
    Ok(())
}

/// 9. Drift: the tenant is changed and then deleted behind the operator's back on the BIG-IP;
///    the operator puts it back (the harness runs it with --drift-check-seconds 2).
pub async fn out_of_band_changes_are_repaired(env: &Env) -> Result<()> {
    let ns = "e2e-drift";
    let partition = "e2e-drift";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 2, None))?;
    env.kubectl_apply(
        ns,
        &virtual_server("web", "10.10.9.10", "web", &format!("  partition: {partition}\n  poolMemberType: cluster\n")),
    )?;
    let app = app_name(ns, "web");
    let expected = eventually("2 members", WAIT, || async {
        Ok(simulator_members(env, partition, &app)
            .and_then(|m| if m.len() == 2 { Ok(m) } else { Err(format!("{m:?}")) }))
    })
    .await?;

    let client = env.bigip.client()?;
    let mut tenant = env.simulator().state().tenants().get(partition).cloned().context("tenant")?;
    tenant[&app]["pool_web"]["members"] = json!([]);
    let edit = post_out_of_band(&client, partition, tenant).await?;
    ensure!(edit.tenants[partition].succeeded(), "the edit was refused: {edit:?}");
    eventually("members restored", WAIT, || async { Ok(members_are(env, partition, &app, &expected)) }).await?;
    repaired_after_edit(env, partition)?;

    let delete = post_out_of_band(&client, partition, json!({"class": "Tenant"})).await?;
    ensure!(delete.tenants[partition].succeeded(), "the deletion was refused: {delete:?}");
    eventually("tenant re-created", WAIT, || async { Ok(members_are(env, partition, &app, &expected)) }).await?;
    repaired_after_edit(env, partition)?;

    // An edit on the device itself (tmsh or the GUI; here iControl REST) changes what the
    // BIG-IP serves but not AS3's stored declaration: the live check sees it, and the
    // application is posted again, which puts its member back.
    let stored = env.simulator().state().tenants().get(partition).cloned().context("tenant")?;
    let members_path = format!("/mgmt/tm/ltm/pool/~{partition}~{app}~pool_web/members");
    let members = simulator_rest(env, reqwest::Method::GET, &members_path, None).await?;
    let first = members["items"][0]["fullPath"].as_str().context("a member")?.replace('/', "~");
    simulator_rest(env, reqwest::Method::DELETE, &format!("{members_path}/{first}"), None).await?;
    ensure!(simulator_members(env, partition, &app).map(|m| m.len()) == Ok(1), "the member was not removed");
    eventually("member put back on the device", WAIT, || async { Ok(members_are(env, partition, &app, &expected)) })
        .await?;
    let now = env.simulator().state().tenants().get(partition).cloned().context("tenant")?;
    ensure!(now == stored, "the stored declaration changed: {now} != {stored}");
    Ok(())
}

/// Posts `tenant` as someone other than the operator would. The scenarios run side by side, so
/// AS3 may drop this task's record before it is read (`TaskLost`, outcome unknown): posted again
/// then, as the operator does.
async fn post_out_of_band(
    client: &bigip_operator::bigip::BigIpClient,
    partition: &str,
    tenant: serde_json::Value,
) -> Result<bigip_operator::bigip::DeployReport> {
    use bigip_operator::bigip::{As3Api, BigIpError};
    let declared = std::collections::BTreeMap::from([(partition.to_string(), tenant)]);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.deploy_tenants(&declared).await {
            Err(BigIpError::TaskLost { .. }) if attempts < 5 => continue,
            other => return Ok(other?),
        }
    }
}

/// A request to the simulator's iControl REST API as an administrator; the answer's JSON.
pub(crate) async fn simulator_rest(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    let mut request = client
        .request(method.clone(), format!("{}{path}", env.simulator().base_url()))
        .basic_auth("admin", Some(BIGIP_PASSWORD));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "{method} {path}: {status} {text}");
    Ok(if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text)? })
}

/// The operator's Event recorder on the real apiserver: the same Event about the same object,
/// published three times, is one events.k8s.io/v1 Event whose series counts 3 (the repeat path
/// patches `series`, which the apiserver validates).
pub async fn repeated_events_become_one_series(env: &Env) -> Result<()> {
    use bigip_operator::controller::report::{publish_event_to, EventRecorder};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::events::{EventType, Reporter};
    use kube::Resource;

    let ns = "e2e-event-series";
    setup_namespace(env, ns).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
    let object: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "subject"}}))?;
    let object = config_maps.create(&Default::default(), &object).await?;
    let reference = object.object_ref(&());
    let recorder = EventRecorder::new(env.client.clone(), Reporter { controller: "e2e-series".into(), instance: None });
    for _ in 0..3 {
        publish_event_to(&recorder, &reference, EventType::Normal, "Programmed", "Reconcile", "again".into()).await;
    }
    let events: Api<Event> = Api::namespaced(env.client.clone(), ns);
    let published: Vec<Event> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|event| event.reporting_controller.as_deref() == Some("e2e-series"))
        .collect();
    ensure!(published.len() == 1, "one Event, not {}: {published:?}", published.len());
    let count = published[0].series.as_ref().map(|series| series.count);
    ensure!(count == Some(3), "series count {count:?}");
    Ok(())
}

/// 12. A `bigip:` reference to an object the BIG-IP lacks (a typo'd WAF policy) leaves only its
///     VirtualServer out (ResolvedRefs=False, BigIpObjectNotFound): AS3 would refuse the whole
///     partition. A pool-member change of another VirtualServer in the same partition is
///     programmed meanwhile; once the policy exists on the BIG-IP, the object is programmed.
pub async fn missing_bigip_object_leaves_only_its_object_out(env: &Env) -> Result<()> {
    let ns = "e2e-bigip-refs";
    let partition = "e2e-refs";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, None))?;
    let extra = format!("  partition: {partition}\n  poolMemberType: cluster\n");
    env.kubectl_apply(ns, &virtual_server("good", "10.10.12.10", "web", &extra))?;
    env.kubectl_apply(
        ns,
        &virtual_server("typo", "10.10.12.11", "web", &format!("{extra}  wafPolicy: /Common/linux-hihg\n")),
    )?;
    eventually("typo refused for its WAF policy alone", WAIT, || async {
        let vs = get_vs(env, ns, "typo").await?;
        let status =
            |type_: &str| condition(&vs, type_).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
        Ok(match (status("Accepted"), status("ResolvedRefs"), status("Programmed")) {
            (Some((accepted, _, _)), Some((resolved, reason, message)), Some((programmed, _, _)))
                if accepted == "True"
                    && resolved == "False"
                    && reason == "BigIpObjectNotFound"
                    && message.contains("spec.wafPolicy")
                    && message.contains("/Common/linux-hihg")
                    && programmed == "False" =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    eventually("good Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "good").await?)) }).await?;
    let (good, typo) = (app_name(ns, "good"), app_name(ns, "typo"));

    // A member change of the good VirtualServer is programmed while typo stays out.
    env.kubectl(&["scale", "deployment", "web", "-n", ns, "--replicas=2"])?;
    eventually("good has both pods as members", WAIT, || async {
        let endpoints = ready_endpoints(env, ns, "web").await?;
        Ok(match simulator_members(env, partition, &good) {
            Ok(members) if endpoints.len() == 2 && members == endpoints => Ok(()),
            other => Err(format!("{other:?} vs endpoints {endpoints:?}")),
        })
    })
    .await?;
    let tenant = env.simulator().state().tenants().get(partition).cloned().unwrap_or_default();
    ensure!(tenant.get(&typo).is_none(), "typo was posted: {tenant}");

    // The administrator creates the policy (iControl REST); the object is programmed.
    let policy = json!({"name": "linux-hihg", "partition": "Common"});
    simulator_rest(env, reqwest::Method::POST, "/mgmt/tm/asm/policies", Some(policy)).await?;
    eventually("typo programmed once the policy exists", WAIT, || async {
        Ok(all_true(&get_vs(env, ns, "typo").await?))
    })
    .await?;
    let tenant = env.simulator().state().tenants().get(partition).cloned().unwrap_or_default();
    ensure!(
        tenant[&typo]["vs"]["policyWAF"] == json!({"bigip": "/Common/linux-hihg"}),
        "typo's WAF policy on the BIG-IP: {}",
        tenant[&typo]
    );
    Ok(())
}
