//! End-to-end scenarios of the legacy shim: k8s-bigip-ctlr ConfigMaps and Ingresses.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use bigip_operator::crd::TransportServer;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams};
use kube::Api;

use crate::harness::{eventually, Env, DEFAULT_PARTITION};
use crate::scenarios::{all_true, app_name, get_vs, setup_namespace, status_all_true, workload};

const WAIT: Duration = Duration::from_secs(90);

fn config_map(name: &str, mode: &str, address: &str, port: &str, service_port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels: {{f5type: virtual-server}}
data:
  schema: "f5schemadb://bigip-virtual-server_v0.1.7.json"
  data: |
    {{"virtualServer": {{
      "backend": {{"serviceName": "web", "servicePort": {service_port},
                   "healthMonitors": [{{"interval": 5, "timeout": 16, "send": "GET /", "protocol": "http"}}]}},
      "frontend": {{"balance": "least-connections-member", "mode": "{mode}", "partition": "{DEFAULT_PARTITION}",
                    "virtualAddress": {{"bindAddr": "{address}", "port": {port}}}}}}}}}
"#
    )
}

/// Legacy ConfigMaps (an http one → VirtualServer, a tcp one → TransportServer, an invalid
/// one) and an `f5` Ingress:
/// - the good ones are programmed, the ConfigMaps annotated `bigip.operator.dev/status:
///   Programmed`, the Ingress gets its address in status.loadBalancer;
/// - the invalid ConfigMap gets a Warning Event with the schema path and `status: Invalid`, and
///   nothing else is affected;
/// - a ConfigMap changed → the BIG-IP follows; deleted → its VirtualServer and application go.
pub async fn legacy_config_maps_and_ingress(env: &Env) -> Result<()> {
    let ns = "e2e-legacy";
    setup_namespace(env, ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30141)))?;
    env.kubectl_apply(ns, &config_map("shop", "http", "10.10.30.10", "80", 80))?;
    env.kubectl_apply(ns, &config_map("db", "tcp", "10.10.30.11", "5432", 80))?;
    env.kubectl_apply(ns, &config_map("broken", "http", "10.10.30.13", "\"eighty\"", 80))?;
    env.kubectl_apply(
        ns,
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
  annotations:
    kubernetes.io/ingress.class: f5
    virtual-server.f5.com/ip: "10.10.30.12"
    virtual-server.f5.com/balance: round-robin
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
    - host: site.example.com
      http:
        paths:
          - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    )?;

    eventually("cm-shop Ready", WAIT, || async { Ok(all_true(&get_vs(env, ns, "cm-shop").await?)) }).await?;
    let transport: Api<TransportServer> = Api::namespaced(env.client.clone(), ns);
    eventually("cm-db Ready", WAIT, || async {
        let ts = transport.get("cm-db").await?;
        Ok(status_all_true(ts.status.as_ref(), ts.metadata.generation))
    })
    .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
    let annotation = |cm: &ConfigMap, key: &str| cm.metadata.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    eventually("ConfigMap shop annotated Programmed", WAIT, || async {
        let cm = config_maps.get("shop").await?;
        Ok(match annotation(&cm, "bigip.operator.dev/status").as_deref() {
            Some("Programmed") => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), ns);
    eventually("the Ingress's status address", WAIT, || async {
        let ing = ingresses.get("site").await?;
        let ip = ing
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .and_then(|i| i.first().and_then(|e| e.ip.clone()));
        Ok(if ip.as_deref() == Some("10.10.30.12") { Ok(()) } else { Err(format!("{ip:?}")) })
    })
    .await?;
    // The status write is recorded under the shim's field manager, like its other writes.
    let ing = ingresses.get("site").await?;
    let managers: Vec<String> = ing
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.as_deref() == Some("status"))
        .filter_map(|entry| entry.manager.clone())
        .collect();
    anyhow::ensure!(
        managers.iter().any(|manager| manager == "bigip-operator-legacy"),
        "the Ingress status was written by {managers:?}, not bigip-operator-legacy"
    );
    eventually("the broken ConfigMap's Event names the field", WAIT, || async {
        let events: Api<Event> = Api::namespaced(env.client.clone(), ns);
        let list = events.list(&ListParams::default()).await?;
        let found = list.items.iter().any(|e| {
            e.reason.as_deref() == Some("TranslationFailed")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken")
                && e.note.as_deref().is_some_and(|n| n.contains("/virtualServer/frontend/virtualAddress/port"))
        });
        Ok(if found { Ok(()) } else { Err(format!("{} events, none for broken", list.items.len())) })
    })
    .await?;
    let broken = config_maps.get("broken").await?;
    ensure!(
        annotation(&broken, "bigip.operator.dev/status").as_deref() == Some("Invalid"),
        "{:?}",
        broken.metadata.annotations
    );
    let tenant = env.simulator().state().tenants().get(DEFAULT_PARTITION).cloned().context("tenant")?;
    for app in [app_name(ns, "cm-shop"), format!("{ns}_ts_cm-db"), app_name(ns, "ing-site")] {
        ensure!(tenant.get(&app).is_some(), "{app} is not on the BIG-IP");
    }
    ensure!(
        tenant["e2e-legacy_cm-shop"]["pool_web"]["loadBalancingMode"] == "least-connections-member",
        "{}",
        tenant["e2e-legacy_cm-shop"]["pool_web"]
    );

    env.kubectl_apply(ns, &config_map("shop", "http", "10.10.30.10", "8080", 80))?;
    eventually("the BIG-IP follows the changed ConfigMap", WAIT, || async {
        let port = env
            .simulator()
            .state()
            .tenants()
            .get(DEFAULT_PARTITION)
            .map(|t| t[app_name(ns, "cm-shop")]["vs"]["virtualPort"].clone());
        Ok(if port == Some(serde_json::json!(8080)) { Ok(()) } else { Err(format!("{port:?}")) })
    })
    .await?;

    config_maps.delete("shop", &DeleteParams::default()).await?;
    eventually("the generated VirtualServer and its application go with the ConfigMap", WAIT, || async {
        let gone = get_vs(env, ns, "cm-shop").await.is_err();
        let on_bigip = env
            .simulator()
            .state()
            .tenants()
            .get(DEFAULT_PARTITION)
            .is_some_and(|t| t.get(app_name(ns, "cm-shop")).is_some());
        Ok(if gone && !on_bigip { Ok(()) } else { Err(format!("VirtualServer gone {gone}, on the BIG-IP {on_bigip}")) })
    })
    .await?;
    ensure!(all_true(&get_vs(env, ns, "ing-site").await?).is_ok(), "the Ingress's VirtualServer was affected");
    Ok(())
}
