//! End-to-end scenarios of the VirtualServer and TransportServer features: TLS from Secrets
//! with host/path routing, and TCP + UDP TransportServers.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use bigip_operator::crd::{TransportServer, VirtualServer};
use kube::api::DeleteParams;
use kube::Api;
use serde_json::Value;

use crate::harness::{eventually, Env, DEFAULT_PARTITION};
use crate::scenarios::{
    all_true, app_name, condition, get_vs, members_are, setup_namespace, status_all_true, virtual_server, workload,
};

const WAIT: Duration = Duration::from_secs(90);

/// A `kubernetes.io/tls` Secret holding a fresh self-signed certificate for `host`; returns
/// the manifest and the certificate PEM.
pub(crate) fn tls_secret(name: &str, host: &str) -> Result<(String, String)> {
    let generated = rcgen::generate_simple_self_signed(vec![host.to_string()])?;
    let certificate = generated.cert.pem();
    let manifest = secret_manifest(name, &certificate, &generated.signing_key.serialize_pem());
    Ok((manifest, certificate))
}

fn secret_manifest(name: &str, certificate: &str, key: &str) -> String {
    let indent = |text: &str| text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n");
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}\n  tls.key: |\n{}\n",
        indent(certificate),
        indent(key)
    )
}

/// The application object `app` of the default partition on the simulator.
pub(crate) fn simulator_application(env: &Env, app: &str) -> Option<Value> {
    env.simulator().state().tenants().get(DEFAULT_PARTITION).and_then(|t| t.get(app)).cloned()
}

/// TLS from a Secret with host/path routing:
/// - the Secret is missing: ResolvedRefs and Programmed False (SecretNotFound), nothing on the
///   BIG-IP for it, while a plain VirtualServer in the namespace is programmed;
/// - the Secret is created: programmed as Service_HTTPS with the Secret's certificate, an
///   Endpoint_Policy sending shop.example.com/api to the api pool, and the port-80 redirect;
///   a newer VirtualServer on port 80 of the address gets AddressConflict;
/// - the Secret is rotated: the new certificate reaches the BIG-IP;
/// - the Secret is broken: InvalidSecret, the application leaves the BIG-IP, the plain one stays.
pub async fn tls_from_secret_with_routing(env: &Env) -> Result<()> {
    let ns = "e2e-tls";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30111)))?;
    env.kubectl_apply(ns, &workload("api", 1, Some(30112)))?;
    env.kubectl_apply(
        ns,
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: VirtualServer
metadata: {name: shop}
spec:
  virtualAddress: 10.10.20.10
  port: 443
  tls: {secretName: shop-tls}
  rules:
    - {host: shop.example.com, path: /api, pool: api}
  pools:
    - {name: web, service: web, servicePort: 80}
    - {name: api, service: api, servicePort: 80}
---
apiVersion: bigip.operator.dev/v1alpha1
kind: VirtualServer
metadata: {name: plain}
spec:
  virtualAddress: 10.10.20.11
  port: 80
  pools:
    - {name: web, service: web, servicePort: 80}
"#,
    )?;
    let shop = app_name(ns, "shop");
    eventually("SecretNotFound", WAIT, || async {
        let vs = get_vs(env, ns, "shop").await?;
        let reasons = (
            condition(&vs, "ResolvedRefs").map(|c| c.reason.clone()),
            condition(&vs, "Programmed").map(|c| c.reason.clone()),
        );
        Ok(match reasons {
            (Some(r), Some(p)) if r == "SecretNotFound" && p == "SecretNotFound" => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    eventually("the plain VirtualServer Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "plain").await?)) })
        .await?;
    ensure!(simulator_application(env, &shop).is_none(), "an application without its certificate reached the BIG-IP");

    let (secret, first_certificate) = tls_secret("shop-tls", "shop.example.com")?;
    env.kubectl_apply(ns, &secret)?;
    eventually("Ready with the certificate", WAIT, || async { Ok(all_true(&get_vs(env, ns, "shop").await?)) }).await?;
    let app = simulator_application(env, &shop).context("application on the simulator")?;
    ensure!(app["vs"]["class"] == "Service_HTTPS" && app["vs"]["redirect80"] == true, "{}", app["vs"]);
    ensure!(
        app["tls_certificate"]["certificate"].as_str() == Some(first_certificate.trim_end()),
        "certificate differs"
    );
    let rules = app["routes"]["rules"].as_array().context("routing rules")?;
    ensure!(
        rules.iter().all(|r| r["actions"][0]["select"]["pool"]["use"] == "pool_api")
            && rules.iter().any(|r| r["conditions"][0]["host"]["values"][0] == "shop.example.com"),
        "{rules:?}"
    );
    let virtuals = env.simulator().state().virtual_servers();
    ensure!(virtuals.iter().any(|v| v.application == shop && v.destination_port == 443), "{virtuals:?}");

    // Port 80 of the address is the HTTPS redirect's: a newer VirtualServer asking for it is
    // refused and the older one keeps working.
    env.kubectl_apply(
        ns,
        "apiVersion: bigip.operator.dev/v1alpha1\nkind: VirtualServer\nmetadata: {name: intruder}\nspec:\n  virtualAddress: 10.10.20.10\n  port: 80\n  pools: [{name: web, service: web, servicePort: 80}]\n",
    )?;
    eventually("AddressConflict on port 80", WAIT, || async {
        let vs = get_vs(env, ns, "intruder").await?;
        Ok(match condition(&vs, "Accepted") {
            Some(c)
                if c.reason == "AddressConflict"
                    && c.message.contains("10.10.20.10:80 (tcp)")
                    && c.message.contains("VirtualServer e2e-tls/shop") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    ensure!(all_true(&get_vs(env, ns, "shop").await?).is_ok(), "the holder was affected");
    ensure!(simulator_application(env, &app_name(ns, "intruder")).is_none(), "the intruder reached the BIG-IP");

    let (rotated, second_certificate) = tls_secret("shop-tls", "shop.example.com")?;
    env.kubectl_apply(ns, &rotated)?;
    eventually("the rotated certificate on the BIG-IP", WAIT, || async {
        let current = simulator_application(env, &shop)
            .and_then(|a| a["tls_certificate"]["certificate"].as_str().map(str::to_string));
        Ok(if current.as_deref() == Some(second_certificate.trim_end()) {
            Ok(())
        } else {
            Err("old certificate".to_string())
        })
    })
    .await?;

    env.kubectl_apply(ns, &secret_manifest("shop-tls", "not a certificate", "not a key"))?;
    eventually("InvalidSecret and removed from the BIG-IP", WAIT, || async {
        let vs = get_vs(env, ns, "shop").await?;
        let reason = condition(&vs, "ResolvedRefs").map(|c| c.reason.clone()).unwrap_or_default();
        Ok(if reason == "InvalidSecret" && simulator_application(env, &shop).is_none() { Ok(()) } else { Err(reason) })
    })
    .await?;
    ensure!(all_true(&get_vs(env, ns, "plain").await?).is_ok(), "the plain VirtualServer was affected");
    ensure!(simulator_application(env, &app_name(ns, "plain")).is_some(), "the plain application left the BIG-IP");
    Ok(())
}

/// TCP and UDP TransportServers on one address and port: both programmed (Service_TCP and
/// Service_UDP with their nodePorts), a second TCP one on the same listener refused with
/// AddressConflict, `kubectl get bts` columns, and deleting one leaves the other.
pub async fn transport_servers_tcp_and_udp(env: &Env) -> Result<()> {
    let ns = "e2e-l4";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(
        ns,
        r#"apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  type: NodePort
  selector: {app: dns}
  ports:
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 5353, nodePort: 30121}
    - {name: dns-udp, port: 53, protocol: UDP, targetPort: 5353, nodePort: 30122}
---
apiVersion: bigip.operator.dev/v1alpha1
kind: TransportServer
metadata: {name: dns-tcp}
spec:
  virtualAddress: 10.10.21.10
  port: 53
  protocol: tcp
  persistence: source-address
  pool:
    name: dns
    service: dns
    servicePort: dns-tcp
    monitors: [{type: tcp}]
---
apiVersion: bigip.operator.dev/v1alpha1
kind: TransportServer
metadata: {name: dns-udp}
spec:
  virtualAddress: 10.10.21.10
  port: 53
  protocol: udp
  pool:
    name: dns
    service: dns
    servicePort: dns-udp
    monitors: [{type: udp}]
"#,
    )?;
    let api: Api<TransportServer> = Api::namespaced(env.client.clone(), ns);
    for name in ["dns-tcp", "dns-udp"] {
        eventually(&format!("TransportServer {name} Ready"), WAIT, || async {
            let ts = api.get(name).await?;
            Ok(status_all_true(ts.status.as_ref(), ts.metadata.generation))
        })
        .await?;
    }
    let nodes = env.ready_node_ips().await?;
    for (name, class, node_port) in [("dns-tcp", "Service_TCP", 30121), ("dns-udp", "Service_UDP", 30122)] {
        let app = format!("{ns}_ts_{name}");
        let object = simulator_application(env, &app).with_context(|| format!("{app} on the simulator"))?;
        ensure!(object["vs"]["class"] == class && object["vs"]["virtualPort"] == 53, "{}", object["vs"]);
        let members = env.simulator().state().pool_members(DEFAULT_PARTITION, &app, "pool_dns").context("pool")?;
        let mut got: Vec<String> = members.iter().map(|m| format!("{}:{}", m.address, m.port)).collect();
        got.sort();
        let mut want: Vec<String> = nodes.iter().map(|ip| format!("{ip}:{node_port}")).collect();
        want.sort();
        ensure!(got == want, "{app}: {got:?} != {want:?}");
    }

    env.kubectl_apply(
        ns,
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: TransportServer
metadata: {name: late}
spec:
  virtualAddress: 10.10.21.10
  port: 53
  pool: {name: dns, service: dns, servicePort: dns-tcp}
"#,
    )?;
    eventually("AddressConflict", WAIT, || async {
        let ts = api.get("late").await?;
        let accepted = ts.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Accepted")).cloned();
        Ok(match accepted {
            Some(c) if c.reason == "AddressConflict" && c.message.contains("TransportServer e2e-l4/dns-tcp") => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let table = env.kubectl(&["get", "bts", "-n", ns, "dns-udp"])?;
    let header: Vec<&str> = table.lines().next().context("header")?.split_whitespace().collect();
    ensure!(
        header == ["NAME", "ADDRESS", "PORT", "PROTOCOL", "PARTITION", "PROGRAMMED", "MEMBERS", "AGE"],
        "{header:?}"
    );
    ensure!(table.lines().nth(1).is_some_and(|row| row.contains("udp") && row.contains("True")), "{table}");

    api.delete("dns-tcp", &DeleteParams::default()).await?;
    eventually("dns-tcp removed, dns-udp kept", WAIT, || async {
        let tcp = simulator_application(env, &format!("{ns}_ts_dns-tcp"));
        let udp = simulator_application(env, &format!("{ns}_ts_dns-udp"));
        Ok(if tcp.is_none() && udp.is_some() {
            Ok(())
        } else {
            Err(format!("tcp {} udp {}", tcp.is_some(), udp.is_some()))
        })
    })
    .await?;
    // The conflict is gone with its holder: the late one takes the listener.
    eventually("the late TransportServer Ready", WAIT, || async {
        let ts = api.get("late").await?;
        Ok(status_all_true(ts.status.as_ref(), ts.metadata.generation))
    })
    .await?;
    Ok(())
}

/// `externalTrafficPolicy: Local` in nodeport mode: only the nodes hosting a ready endpoint of
/// the Service are members (a node without one would drop the traffic); switched to
/// `Cluster`, every Ready node is a member again.
pub async fn external_traffic_policy_local(env: &Env) -> Result<()> {
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::ListParams;

    let ns = "e2e-etp";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30131)))?;
    env.kubectl(&[
        "patch",
        "service",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
    ])?;
    env.kubectl_apply(ns, &crate::scenarios::virtual_server("web", "10.10.22.10", "web", ""))?;
    let app = app_name(ns, "web");

    // The node(s) hosting the ready endpoint, from the EndpointSlices, as member addresses.
    let hosting = || async {
        let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), ns);
        let lp = ListParams::default().labels("kubernetes.io/service-name=web");
        let mut names: Vec<String> = Vec::new();
        for slice in slices.list(&lp).await?.items {
            for endpoint in slice.endpoints.iter().flatten() {
                if endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    names.extend(endpoint.node_name.clone());
                }
            }
        }
        let nodes: Api<Node> = Api::all(env.client.clone());
        let mut members = Vec::new();
        for name in names {
            let node = nodes.get(&name).await?;
            if let Some(ip) = bigip_operator::model::members::node_internal_ip(&node) {
                members.push(format!("{ip}:30131"));
            }
        }
        members.sort();
        members.dedup();
        anyhow::Ok(members)
    };
    let local = eventually("an endpoint on a node", WAIT, || async {
        let members = hosting().await?;
        Ok(if members.is_empty() { Err("no ready endpoint with a nodeName yet".to_string()) } else { Ok(members) })
    })
    .await?;
    let all: Vec<String> = env.ready_node_ips().await?.iter().map(|ip| format!("{ip}:30131")).collect();
    ensure!(
        local.len() < all.len(),
        "the control plane has a single Ready node; Local cannot be told from Cluster ({all:?})"
    );
    eventually("members are the hosting node only", WAIT, || async {
        Ok(crate::scenarios::members_are(env, DEFAULT_PARTITION, &app, &local))
    })
    .await?;
    eventually("Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "web").await?)) }).await?;
    let vs = get_vs(env, ns, "web").await?;
    ensure!(
        vs.status.as_ref().and_then(|s| s.members) == Some(local.len() as i32),
        "status.members {:?}",
        vs.status.map(|s| s.members)
    );

    env.kubectl(&[
        "patch",
        "service",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"externalTrafficPolicy":"Cluster"}}"#,
    ])?;
    eventually("members are every Ready node", WAIT, || async {
        Ok(crate::scenarios::members_are(env, DEFAULT_PARTITION, &app, &all))
    })
    .await?;
    Ok(())
}

/// A pool naming a Service of another namespace: refused (`RefNotPermitted`) until a Gateway
/// API ReferenceGrant in that namespace allows VirtualServers from this one, programmed with
/// its members then, and refused again when the grant goes.
pub async fn cross_namespace_pool_needs_a_reference_grant(env: &Env) -> Result<()> {
    let (app_ns, backend_ns) = ("xns-app", "xns-backend");
    setup_namespace(env, app_ns).await?;
    setup_namespace(env, backend_ns).await?;
    env.kubectl_apply(backend_ns, &workload("api", 1, Some(30211)))?;
    let manifest = virtual_server("cross", "10.20.11.10", "api", "")
        .replace("      service: api\n", &format!("      service: api\n      namespace: {backend_ns}\n"));
    env.kubectl_apply(app_ns, &manifest)?;
    let refused = |vs: &VirtualServer| -> std::result::Result<String, String> {
        match condition(vs, "ResolvedRefs") {
            Some(c) if c.status == "False" && c.reason == "RefNotPermitted" => Ok(c.message.clone()),
            other => Err(format!("ResolvedRefs {other:?}")),
        }
    };
    let message = eventually("RefNotPermitted without a grant", WAIT, || async {
        Ok(refused(&get_vs(env, app_ns, "cross").await?))
    })
    .await?;
    ensure!(
        message.contains("xns-backend/api")
            && message.contains("no ReferenceGrant there allows VirtualServers from namespace xns-app"),
        "message: {message}"
    );

    let grant = format!(
        r#"apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: vs-from-app}}
spec:
  from: [{{group: bigip.operator.dev, kind: VirtualServer, namespace: {app_ns}}}]
  to: [{{group: "", kind: Service, name: api}}]
"#
    );
    env.kubectl_apply(backend_ns, &grant)?;
    eventually("Ready once the grant allows it", WAIT, || async { Ok(all_true(&get_vs(env, app_ns, "cross").await?)) })
        .await?;
    let app = app_name(app_ns, "cross");
    let nodes: Vec<String> = env.ready_node_ips().await?.iter().map(|ip| format!("{ip}:30211")).collect();
    eventually("the backend's nodes are the members", WAIT, || async {
        Ok(members_are(env, DEFAULT_PARTITION, &app, &nodes))
    })
    .await?;

    env.kubectl(&["delete", "referencegrant", "vs-from-app", "-n", backend_ns])?;
    eventually("RefNotPermitted again without the grant", WAIT, || async {
        Ok(refused(&get_vs(env, app_ns, "cross").await?).map(|_| ()))
    })
    .await?;
    eventually("no members without the grant", WAIT, || async { Ok(members_are(env, DEFAULT_PARTITION, &app, &[])) })
        .await?;
    Ok(())
}

/// Request handling and BIG-IP profiles (#20):
/// - rewrites, headers and redirects reach the BIG-IP as the virtual server's policy: the
///   prefix rewrite (`/api/...` → `/v2/...`), the Host rewrite, a response header, the app
///   root redirect; the API server refuses `rewritePath` on a rule without a path (CEL);
/// - a profile the BIG-IP lacks (`profiles.http: /Common/http-xff`) leaves the object out with
///   `BigIpObjectNotFound` naming `spec.profiles.http`; created over iControl REST, it is
///   programmed with the reference.
pub async fn rewrites_and_profile_references(env: &Env) -> Result<()> {
    let ns = "e2e-rewrites";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30421)))?;
    let refused = env.kubectl_apply(
        ns,
        &virtual_server(
            "nopath",
            "10.20.12.9",
            "web",
            "  rules:\n    - {host: a.example.com, pool: web, rewritePath: /x}\n",
        ),
    );
    let message = format!("{refused:?}");
    ensure!(refused.is_err() && message.contains("the rule needs a path"), "CEL did not refuse: {message}");

    let extra = r#"  appRoot: /shop
  profiles: {http: /Common/http-xff, oneConnect: /Common/oneconnect}
  rules:
    - host: shop.example.com
      path: /api
      pool: web
      rewritePath: /v2
      rewriteHost: api.internal
      responseHeaders: [{name: Cache-Control, value: no-store}]
"#;
    env.kubectl_apply(ns, &virtual_server("shop", "10.20.12.10", "web", extra))?;
    let message = left_out_for_a_missing_object(env, ns, "shop", "the missing HTTP profile").await?;
    ensure!(message.contains("spec.profiles.http") && message.contains("/Common/http-xff"), "message: {message}");
    let app = app_name(ns, "shop");
    ensure!(simulator_application(env, &app).is_none(), "posted without its profile");

    let profile = serde_json::json!({"name": "http-xff", "partition": "Common", "insertXforwardedFor": "enabled"});
    crate::scenarios::simulator_rest(env, reqwest::Method::POST, "/mgmt/tm/ltm/profile/http", Some(profile)).await?;
    eventually("programmed once the profile exists", WAIT, || async { Ok(all_true(&get_vs(env, ns, "shop").await?)) })
        .await?;
    let app = simulator_application(env, &app).context("application on the BIG-IP")?;
    ensure!(app["vs"]["profileHTTP"] == serde_json::json!({"bigip": "/Common/http-xff"}), "vs: {}", app["vs"]);
    ensure!(app["vs"]["profileMultiplex"] == serde_json::json!({"bigip": "/Common/oneconnect"}), "vs: {}", app["vs"]);
    let rules = app["routes"]["rules"].as_array().cloned().unwrap_or_default();
    let rule = |name: &str| rules.iter().find(|r| r["name"] == name).cloned().unwrap_or_default();
    ensure!(rule("redirect_0")["actions"][0]["location"] == "/shop", "app root redirect: {}", rule("redirect_0"));
    let below = rule("route_0_below")["actions"].clone();
    ensure!(
        below[0]["replace"] == serde_json::json!({"name": "Host", "value": "api.internal"})
            && below[1]["replace"]["path"] == "tcl:/v2/[string range [HTTP::path] 5 end]"
            && below[2]["event"] == "response"
            && below[3]["type"] == "forward",
        "actions below /api: {below}"
    );

    // A route domain in the address: accepted by the API server (CEL); while the BIG-IP has
    // no route domain 12 the object is left out naming spec.virtualAddress (AS3 creates no
    // route domains, the BIG-IP would refuse the partition); once an administrator creates
    // it, programmed as is.
    env.kubectl_apply(ns, &virtual_server("rd", "10.20.12.20%12", "web", ""))?;
    let message = left_out_for_a_missing_object(env, ns, "rd", "the missing route domain").await?;
    ensure!(message.contains("spec.virtualAddress names route domain 12"), "message: {message}");
    ensure!(all_true(&get_vs(env, ns, "shop").await?).is_ok(), "the partition's other objects stay programmed");
    let route_domain = serde_json::json!({"name": "12", "partition": "Common", "id": 12});
    crate::scenarios::simulator_rest(env, reqwest::Method::POST, "/mgmt/tm/net/route-domain", Some(route_domain))
        .await?;
    eventually("the route-domain VirtualServer Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "rd").await?)) })
        .await?;
    let rd = simulator_application(env, &app_name(ns, "rd")).context("route-domain application")?;
    ensure!(rd["vs"]["virtualAddresses"] == serde_json::json!(["10.20.12.20%12"]), "vs: {}", rd["vs"]);
    let refused = env.kubectl_apply(ns, &virtual_server("badrd", "10.20.12.21%x", "web", ""));
    ensure!(format!("{refused:?}").contains("optionally with a route domain"), "CEL: {refused:?}");
    Ok(())
}

/// Waits until VirtualServer `name` is left out for a BIG-IP object it names that the BIG-IP
/// lacks (`ResolvedRefs=False`, `BigIpObjectNotFound`); the condition's message.
async fn left_out_for_a_missing_object(env: &Env, ns: &str, name: &str, what: &str) -> Result<String> {
    eventually(&format!("{name} left out for {what}"), WAIT, || async {
        let vs = get_vs(env, ns, name).await?;
        Ok(match condition(&vs, "ResolvedRefs") {
            Some(c) if c.status == "False" && c.reason == "BigIpObjectNotFound" => Ok(c.message.clone()),
            other => Err(format!("{other:?}")),
        })
    })
    .await
}

/// The ratio of each member of pool `pool` of application `app`: (address, ratio).
fn member_ratios(app: &Value, pool: &str) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = app[pool]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|group| {
            let ratio = group["ratio"].as_i64().unwrap_or(0);
            group["serverAddresses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(move |a| Some((a.as_str()?.to_string(), ratio)))
        })
        .collect();
    out.sort();
    out
}

/// Weighted Services and TLS options from Secrets (#20):
/// - a pool of shop-v1 (weight 80) and shop-v2 (weight 20), one pod each, becomes one
///   `ratio-member` pool with ratios 100 and 25; v1 scaled to two pods: 100, 100 and 50 (each
///   Service keeps its share);
/// - TLS 1.2-1.3 with a cipher group and required client certificates from a CA Secret reach
///   the TLS_Server with the CA's certificate; the CA Secret deleted: `SecretNotFound` naming
///   `spec.tls.clientCertificates.caSecretName` and the application leaves the BIG-IP (never
///   served without client verification); restored: back;
/// - a TransportServer offloading TLS with the same Secrets (Service_TCP with the TLS_Server)
///   leaves and comes back with the CA Secret too.
pub async fn weights_and_tls_options(env: &Env) -> Result<()> {
    let ns = "e2e-weights";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("shop-v1", 1, None))?;
    env.kubectl_apply(ns, &workload("shop-v2", 1, None))?;
    let (secret, _) = tls_secret("shop-tls", "shop.example.com")?;
    env.kubectl_apply(ns, &secret)?;
    let (ca_secret, ca_certificate) = tls_secret("clients-ca", "clients-ca")?;
    let indented: String = ca_certificate.lines().map(|l| format!("    {l}\n")).collect();
    let ca_secret = format!("{}\n  ca.crt: |\n{indented}", ca_secret.trim_end());
    env.kubectl_apply(ns, &ca_secret)?;
    env.kubectl_apply(
        ns,
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: VirtualServer
metadata: {name: shop}
spec:
  virtualAddress: 10.20.13.10
  port: 443
  poolMemberType: cluster
  tls:
    secretName: shop-tls
    minVersion: "1.2"
    maxVersion: "1.3"
    cipherGroup: /Common/f5-secure
    clientCertificates: {caSecretName: clients-ca}
  pools:
    - name: web
      service: shop-v1
      servicePort: 80
      weight: 80
      alternateBackends: [{service: shop-v2, servicePort: 80, weight: 20}]
"#,
    )?;
    eventually("shop Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "shop").await?)) }).await?;
    // TLS offload on a TransportServer with the same Secrets (#20).
    env.kubectl_apply(
        ns,
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: TransportServer
metadata: {name: mqtt}
spec:
  virtualAddress: 10.20.13.11
  port: 8883
  poolMemberType: cluster
  tls:
    secretName: shop-tls
    minVersion: "1.2"
    clientCertificates: {caSecretName: clients-ca}
  pool: {name: broker, service: shop-v1, servicePort: 80}
"#,
    )?;
    let transport_servers: Api<TransportServer> = Api::namespaced(env.client.clone(), ns);
    let ts_ready = || async {
        let ts = transport_servers.get("mqtt").await?;
        Ok(status_all_true(ts.status.as_ref(), ts.metadata.generation))
    };
    eventually("TransportServer mqtt Ready", WAIT, ts_ready).await?;
    let ts_app = format!("{ns}_ts_mqtt");
    let offload = simulator_application(env, &ts_app).context("the TransportServer's application")?;
    ensure!(
        offload["vs"]["class"] == "Service_TCP"
            && offload["vs"]["serverTLS"] == "tls_server"
            && offload["tls_server"]["authenticationMode"] == "require"
            && offload["tls_server"]["tls1_1Enabled"] == false,
        "TLS offload: {offload}"
    );
    let app = app_name(ns, "shop");
    let ips = |endpoints: Vec<String>| -> Vec<String> {
        endpoints.iter().filter_map(|e| e.rsplit_once(':').map(|(ip, _)| ip.to_string())).collect()
    };
    let expect_ratios = |v1: Vec<String>, v2: Vec<String>, r1: i64, r2: i64| {
        let mut wanted: Vec<(String, i64)> =
            v1.into_iter().map(|ip| (ip, r1)).chain(v2.into_iter().map(|ip| (ip, r2))).collect();
        wanted.sort();
        wanted
    };
    let v2 = ips(crate::scenarios::ready_endpoints(env, ns, "shop-v2").await?);
    eventually("one pod each: ratios 100 and 25", WAIT, || async {
        let v1 = ips(crate::scenarios::ready_endpoints(env, ns, "shop-v1").await?);
        let wanted = expect_ratios(v1, v2.clone(), 100, 25);
        let app = simulator_application(env, &app).unwrap_or_default();
        let got = member_ratios(&app, "pool_web");
        Ok(if app["pool_web"]["loadBalancingMode"] == "ratio-member" && got == wanted && wanted.len() == 2 {
            Ok(())
        } else {
            Err(format!("{got:?}, wanted {wanted:?}"))
        })
    })
    .await?;
    env.kubectl(&["scale", "deployment", "shop-v1", "-n", ns, "--replicas=2"])?;
    eventually("v1 scaled to two pods: 100, 100 and 50", WAIT, || async {
        let v1 = ips(crate::scenarios::ready_endpoints(env, ns, "shop-v1").await?);
        let wanted = expect_ratios(v1, v2.clone(), 100, 50);
        let got = member_ratios(&simulator_application(env, &app).unwrap_or_default(), "pool_web");
        Ok(if got == wanted && wanted.len() == 3 { Ok(()) } else { Err(format!("{got:?}, wanted {wanted:?}")) })
    })
    .await?;

    let on_bigip = simulator_application(env, &app).context("application")?;
    let server = &on_bigip["tls_server"];
    ensure!(
        server["tls1_1Enabled"] == false
            && server["tls1_2Enabled"] == true
            && server["tls1_3Enabled"] == true
            && server["cipherGroup"] == serde_json::json!({"bigip": "/Common/f5-secure"})
            && server["authenticationMode"] == "require",
        "TLS_Server: {server}"
    );
    let bundle = on_bigip["tls_client_ca"]["bundle"].as_str().unwrap_or_default();
    ensure!(bundle.trim() == ca_certificate.trim(), "client CA bundle: {bundle}");

    env.kubectl(&["delete", "secret", "clients-ca", "-n", ns])?;
    eventually("SecretNotFound for the client CA", WAIT, || async {
        Ok(crate::scenarios::condition_is(
            &get_vs(env, ns, "shop").await?,
            "ResolvedRefs",
            "False",
            "SecretNotFound",
            "spec.tls.clientCertificates.caSecretName",
        ))
    })
    .await?;
    eventually("off the BIG-IP without its client CA (both objects)", WAIT, || async {
        Ok(if simulator_application(env, &app).is_none() && simulator_application(env, &ts_app).is_none() {
            Ok(())
        } else {
            Err("still on the BIG-IP".to_string())
        })
    })
    .await?;
    env.kubectl_apply(ns, &ca_secret)?;
    eventually("back with the CA", WAIT, || async { Ok(all_true(&get_vs(env, ns, "shop").await?)) }).await?;
    eventually("the TransportServer back with the CA", WAIT, ts_ready).await?;
    Ok(())
}

/// A BigIpPolicy shared by two VirtualServers (#20): both get its source ranges and HTTP
/// profile on the BIG-IP; a change of the policy re-programs both and leaves a third
/// VirtualServer without the policy as it was (the same declared application); the policy
/// deleted: its users say `PolicyNotFound` and leave the BIG-IP (never served without their
/// settings), the third stays.
pub async fn policies_are_shared_and_reprogram_their_users(env: &Env) -> Result<()> {
    let ns = "e2e-policies";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30431)))?;
    let policy = |ranges: &str| {
        format!(
            "apiVersion: bigip.operator.dev/v1alpha1\nkind: BigIpPolicy\nmetadata: {{name: standard}}\nspec:\n  profiles: {{http: /Common/http}}\n  allowSourceRanges: [{ranges}]\n"
        )
    };
    env.kubectl_apply(ns, &policy("10.0.0.0/8"))?;
    env.kubectl_apply(ns, &virtual_server("one", "10.20.14.10", "web", "  policy: standard\n"))?;
    env.kubectl_apply(ns, &virtual_server("two", "10.20.14.11", "web", "  policy: standard\n"))?;
    env.kubectl_apply(ns, &virtual_server("plain", "10.20.14.12", "web", ""))?;
    for name in ["one", "two", "plain"] {
        eventually(&format!("{name} Ready"), WAIT, || async { Ok(all_true(&get_vs(env, ns, name).await?)) }).await?;
    }
    let ranges_of = |name: &str| {
        simulator_application(env, &app_name(ns, name)).map(|app| app["source_ranges"]["addresses"].clone())
    };
    for name in ["one", "two"] {
        let app = simulator_application(env, &app_name(ns, name)).context("application")?;
        ensure!(app["vs"]["profileHTTP"] == serde_json::json!({"bigip": "/Common/http"}), "{name}: {}", app["vs"]);
        ensure!(ranges_of(name) == Some(serde_json::json!(["10.0.0.0/8"])), "{name}: {:?}", ranges_of(name));
    }
    let plain_before = simulator_application(env, &app_name(ns, "plain")).context("plain")?;

    env.kubectl_apply(ns, &policy("192.168.0.0/16"))?;
    eventually("both users re-programmed with the new ranges", WAIT, || async {
        let wanted = Some(serde_json::json!(["192.168.0.0/16"]));
        Ok(if ranges_of("one") == wanted && ranges_of("two") == wanted {
            Ok(())
        } else {
            Err(format!("{:?} {:?}", ranges_of("one"), ranges_of("two")))
        })
    })
    .await?;
    ensure!(
        simulator_application(env, &app_name(ns, "plain")) == Some(plain_before),
        "the VirtualServer without the policy changed"
    );

    env.kubectl(&["delete", "bigippolicy", "standard", "-n", ns])?;
    for name in ["one", "two"] {
        eventually(&format!("{name} says PolicyNotFound"), WAIT, || async {
            Ok(crate::scenarios::condition_is(
                &get_vs(env, ns, name).await?,
                "ResolvedRefs",
                "False",
                "PolicyNotFound",
                "standard",
            ))
        })
        .await?;
    }
    eventually("the users leave the BIG-IP", WAIT, || async {
        Ok(if ranges_of("one").is_none() && ranges_of("two").is_none() {
            Ok(())
        } else {
            Err("still there".to_string())
        })
    })
    .await?;
    all_true(&get_vs(env, ns, "plain").await?).map_err(anyhow::Error::msg).context("plain after the deletion")?;
    Ok(())
}
