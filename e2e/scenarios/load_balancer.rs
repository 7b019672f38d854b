//! Services of `type: LoadBalancer` with addresses from a BigIpAddressPool (#19): allocation,
//! `status.loadBalancer.ingress`, exhaustion reported, allocations kept across an operator
//! restart, an address released on delete and handed out again, and a pool kept while
//! Services hold its addresses.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use bigip_operator::crd::{BigIpAddressPool, TransportServer};
use k8s_openapi::api::core::v1::Service;
use kube::api::DeleteParams;
use kube::Api;

use crate::faults::setup_operator_namespace;
use crate::harness::{eventually, Env, OperatorOptions, OWN_OPERATOR_LABEL};
use crate::scenarios::workload;

const WAIT: Duration = Duration::from_secs(90);
const POOL: &str = "e2e-lb-pools";

fn pool_manifest(ns: &str) -> String {
    format!(
        r#"apiVersion: bigip.operator.dev/v1alpha1
kind: BigIpAddressPool
metadata: {{name: {POOL}}}
spec:
  addresses: ["10.20.40.1-10.20.40.2"]
  autoAssign: false
  allowedNamespaces: [{ns}]
"#
    )
}

/// A LoadBalancer Service of the operator's class over the `echo` pods, asking for an address
/// from the pool; `udp` adds a UDP port 53.
fn lb_service(name: &str, ns: &str, udp: bool) -> String {
    let udp_port = if udp { "\n    - {name: dns, port: 53, protocol: UDP, targetPort: 53}" } else { "" };
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{{OWN_OPERATOR_LABEL}: {ns}}}
  annotations: {{bigip.operator.dev/address-pool: {POOL}}}
spec:
  type: LoadBalancer
  loadBalancerClass: bigip.operator.dev/bigip
  selector: {{app: echo}}
  ports:
    - {{name: http, port: 80, targetPort: http}}{udp_port}
"#
    )
}

async fn ingress_ip(env: &Env, ns: &str, name: &str) -> Result<Option<String>> {
    let api: Api<Service> = Api::namespaced(env.client.clone(), ns);
    let svc = api.get_opt(name).await?;
    Ok(svc
        .and_then(|s| s.status)
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .and_then(|i| i.first().and_then(|i| i.ip.clone())))
}

async fn wait_for_ingress(env: &Env, ns: &str, name: &str, want: &str) -> Result<()> {
    eventually(&format!("Service {ns}/{name} gets {want}"), WAIT, || async {
        let got = ingress_ip(env, ns, name).await?;
        Ok(if got.as_deref() == Some(want) { Ok(()) } else { Err(format!("ingress {got:?}")) })
    })
    .await
}

/// The pool's records: address → Service.
async fn pool_records(env: &Env) -> Result<BTreeMap<String, String>> {
    let api: Api<BigIpAddressPool> = Api::all(env.client.clone());
    let pool = api.get(POOL).await?;
    Ok(pool.status.map(|s| s.allocations).unwrap_or_default().into_iter().map(|a| (a.address, a.service)).collect())
}

fn annotation(svc: &Service, key: &str) -> Option<String> {
    svc.metadata.annotations.as_ref().and_then(|a| a.get(key).cloned())
}

pub async fn load_balancer_services_get_pool_addresses(env: &Env) -> Result<()> {
    let ns = "lb-pools";
    setup_operator_namespace(env, ns).await?;
    let bigip = env.start_bigip(ns).await?;
    env.kubectl_apply(ns, &workload("echo", 1, None))?;
    env.kubectl_apply(ns, &pool_manifest(ns))?;
    let options = |identity| OperatorOptions::own(identity, ns, &bigip);
    let mut first = env.start_operator(&options("lb-a"))?;

    // Two Services: the pool's two addresses, in order; one virtual per port and protocol.
    env.kubectl_apply(ns, &lb_service("svc-a", ns, true))?;
    wait_for_ingress(env, ns, "svc-a", "10.20.40.1").await?;
    env.kubectl_apply(ns, &lb_service("svc-b", ns, false))?;
    wait_for_ingress(env, ns, "svc-b", "10.20.40.2").await?;
    let transport_servers: Api<TransportServer> = Api::namespaced(env.client.clone(), ns);
    let mut names: Vec<String> =
        transport_servers.list(&Default::default()).await?.items.into_iter().filter_map(|t| t.metadata.name).collect();
    names.sort();
    ensure!(names == ["svc-a-tcp-80", "svc-a-udp-53", "svc-b-tcp-80"], "generated TransportServers: {names:?}");
    let tenant = serde_json::to_string(&bigip.simulator.state().tenants().get(ns).cloned().unwrap_or_default())?;
    for address in ["10.20.40.1", "10.20.40.2"] {
        ensure!(tenant.contains(address), "the BIG-IP's tenant {ns} has no virtual on {address}: {tenant:.400}");
    }

    // The pool runs out: the third Service says so (annotation, Event) and the pool too.
    env.kubectl_apply(ns, &lb_service("svc-c", ns, false))?;
    let services: Api<Service> = Api::namespaced(env.client.clone(), ns);
    eventually("svc-c reports the exhausted pool", WAIT, || async {
        let svc = services.get("svc-c").await?;
        let (state, message) =
            (annotation(&svc, "bigip.operator.dev/status"), annotation(&svc, "bigip.operator.dev/status-message"));
        Ok(match (state.as_deref(), message) {
            (Some("AddressPoolExhausted"), Some(m)) if m.contains("has all 2 addresses in use") => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let events = env.events(ns, "involvedObject.name=svc-c", "jsonpath={.items[*].reason}")?;
    ensure!(events.contains("AddressPoolExhausted"), "no AddressPoolExhausted Event on svc-c: {events}");
    ensure!(ingress_ip(env, ns, "svc-c").await?.is_none(), "svc-c got an address from an exhausted pool");
    eventually("the pool says it is exhausted", WAIT, || async {
        let columns = env.kubectl(&["get", "bap", POOL, "--no-headers"])?;
        let fields: Vec<&str> = columns.split_whitespace().collect();
        // NAME ADDRESSES USED FREE AUTO EXHAUSTED AGE
        Ok(if fields.get(1..6) == Some(&["2", "2", "0", "false", "True"][..]) { Ok(()) } else { Err(columns) })
    })
    .await?;
    let before_restart = pool_records(env).await?;
    ensure!(
        before_restart
            == BTreeMap::from([
                ("10.20.40.1".into(), format!("{ns}/svc-a")),
                ("10.20.40.2".into(), format!("{ns}/svc-b"))
            ]),
        "pool records: {before_restart:?}"
    );

    // A new operator process (the old one stopped): the allocations stand as recorded.
    let stopped = first.process.terminate(Duration::from_secs(30));
    ensure!(stopped.is_some_and(|s| s.success()), "lb-a did not stop cleanly: {stopped:?}");
    let second = env.start_operator(&options("lb-b"))?;
    eventually("lb-b leads and reconciles", WAIT, || async {
        Ok(if second.log().contains("starting the LoadBalancer Service controller") {
            Ok(())
        } else {
            Err("not yet".to_string())
        })
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        pool_records(env).await? == before_restart,
        "the restart changed the allocations: {:?}",
        pool_records(env).await?
    );
    wait_for_ingress(env, ns, "svc-a", "10.20.40.1").await?;
    wait_for_ingress(env, ns, "svc-b", "10.20.40.2").await?;

    // svc-a deleted: its virtuals go, and its address goes to the waiting svc-c.
    services.delete("svc-a", &DeleteParams::default()).await?;
    wait_for_ingress(env, ns, "svc-c", "10.20.40.1").await?;
    eventually("svc-a and its TransportServers are gone", WAIT, || async {
        let left: Vec<String> = transport_servers
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter_map(|t| t.metadata.name)
            .filter(|n| n.starts_with("svc-a"))
            .collect();
        let svc = services.get_opt("svc-a").await?;
        Ok(if left.is_empty() && svc.is_none() {
            Ok(())
        } else {
            Err(format!("left {left:?}, service {}", svc.is_some()))
        })
    })
    .await?;
    let after = pool_records(env).await?;
    ensure!(
        after
            == BTreeMap::from([
                ("10.20.40.1".into(), format!("{ns}/svc-c")),
                ("10.20.40.2".into(), format!("{ns}/svc-b"))
            ]),
        "pool records after the release: {after:?}"
    );
    let history = bigip.simulator.state().history();
    println!("    {} AS3 changes; the address moved from svc-a to svc-c", history.len());

    // Deleting the pool while Services hold addresses: it waits, and hands out nothing new.
    let pools: Api<BigIpAddressPool> = Api::all(env.client.clone());
    pools.delete(POOL, &DeleteParams::default()).await?;
    env.kubectl_apply(ns, &lb_service("svc-d", ns, false))?;
    eventually("svc-d is refused by the pool being deleted", WAIT, || async {
        let svc = services.get("svc-d").await?;
        let message = annotation(&svc, "bigip.operator.dev/status-message").unwrap_or_default();
        Ok(if message.contains("is being deleted") { Ok(()) } else { Err(message) })
    })
    .await?;
    let terminating = pools.get_opt(POOL).await?;
    ensure!(
        terminating.as_ref().is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
        "the pool went while Services held its addresses"
    );
    ensure!(pool_records(env).await?.len() == 2, "the records changed while the pool was deleted");

    // The Services go (their finalizers release the addresses), and then the pool.
    services.delete_collection(&DeleteParams::default(), &Default::default()).await?;
    eventually("the Services and then the pool are gone", WAIT, || async {
        let left = services.list(&Default::default()).await?.items.len();
        let pool = pools.get_opt(POOL).await?;
        Ok(if left == 0 && pool.is_none() {
            Ok(())
        } else {
            Err(format!("{left} Services left, pool {}", pool.is_some()))
        })
    })
    .await?;
    Ok(())
}

/// VirtualServers with `spec.addressPool` instead of an address: the first gets the pool's
/// only address, the second reports `Accepted=False` with `AddressPoolExhausted`, and gets the
/// address once the first is deleted.
pub async fn virtual_servers_take_addresses_from_a_pool(env: &Env) -> Result<()> {
    let ns = "vs-pools";
    let pool = "e2e-vs-pool";
    crate::scenarios::setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30212)))?;
    env.kubectl_apply(
        ns,
        &format!(
            "apiVersion: bigip.operator.dev/v1alpha1\nkind: BigIpAddressPool\nmetadata: {{name: {pool}}}\nspec: {{addresses: [10.20.41.1], autoAssign: false, allowedNamespaces: [{ns}]}}\n"
        ),
    )?;
    let pooled = |name: &str| {
        format!(
            "apiVersion: bigip.operator.dev/v1alpha1\nkind: VirtualServer\nmetadata: {{name: {name}}}\nspec:\n  addressPool: {pool}\n  port: 80\n  pools: [{{name: web, service: web, servicePort: 80}}]\n"
        )
    };
    let virtuals: Api<bigip_operator::crd::VirtualServer> = Api::namespaced(env.client.clone(), ns);
    env.kubectl_apply(ns, &pooled("first"))?;
    ready_on_the_address(&virtuals, "first").await?;
    let tenant =
        serde_json::to_string(&env.simulator().state().tenants().get("kubernetes").cloned().unwrap_or_default())?;
    ensure!(tenant.contains("10.20.41.1"), "the BIG-IP has no virtual on 10.20.41.1");

    env.kubectl_apply(ns, &pooled("second"))?;
    eventually("second reports the exhausted pool", WAIT, || async {
        let vs = virtuals.get("second").await?;
        Ok(crate::scenarios::condition_is(
            &vs,
            "Accepted",
            "False",
            "AddressPoolExhausted",
            "has all 1 addresses in use",
        ))
    })
    .await?;

    virtuals.delete("first", &DeleteParams::default()).await?;
    // Retried every 30 s: the second gets the released address.
    ready_on_the_address(&virtuals, "second").await?;
    virtuals.delete("second", &DeleteParams::default()).await?;
    let pools: Api<BigIpAddressPool> = Api::all(env.client.clone());
    eventually("the records are released", WAIT, || async {
        let records = pools.get(pool).await?.status.map(|s| s.allocations).unwrap_or_default();
        Ok(if records.is_empty() { Ok(()) } else { Err(format!("{records:?}")) })
    })
    .await?;
    pools.delete(pool, &DeleteParams::default()).await?;
    Ok(())
}

/// Waits until the VirtualServer `name` is Ready on 10.20.41.1, the pool's only address.
async fn ready_on_the_address(virtuals: &Api<bigip_operator::crd::VirtualServer>, name: &str) -> Result<()> {
    eventually(&format!("{name} is Ready on the pool's address"), WAIT, || async {
        let vs = virtuals.get(name).await?;
        let address =
            vs.metadata.annotations.as_ref().and_then(|a| a.get("bigip.operator.dev/allocated-address").cloned());
        Ok(match (crate::scenarios::all_true(&vs), address.as_deref()) {
            (Ok(()), Some("10.20.41.1")) => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await
}
