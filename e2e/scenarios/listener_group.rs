//! Listener groups: VirtualServers of two namespaces share one virtual address and port
//! (config/samples/listener-group/shared-vip.yaml).

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use bigip_operator::crd::{BigIpListenerGroup, VirtualServer};
use kube::Api;
use serde_json::Value;

use crate::features::{simulator_application, tls_secret};
use crate::harness::{eventually, repo_root, Env};
use crate::scenarios::{all_true, condition_is, get_vs, setup_namespace, workload};

const WAIT: Duration = Duration::from_secs(90);
const GROUP_APP: &str = "lg__public";

fn group_application(env: &Env) -> Option<Value> {
    simulator_application(env, GROUP_APP)
}

/// The pools of the group's application and its certificate PEM for each server name.
fn pools_and_certificates(app: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let object = app.as_object().cloned().unwrap_or_default();
    let mut pools: Vec<String> = object.keys().filter(|k| k.starts_with("pool_")).cloned().collect();
    pools.sort();
    let entries = app["tls_server"]["certificates"].as_array().cloned().unwrap_or_default();
    let certificates = entries
        .iter()
        .filter_map(|entry| {
            let name = entry["matchToSNI"].as_str()?;
            let object = entry["certificate"].as_str()?;
            Some((name.to_string(), app[object]["certificate"].as_str().unwrap_or_default().to_string()))
        })
        .collect();
    (pools, certificates)
}

async fn group_status(env: &Env) -> Result<(Option<i64>, String)> {
    let group = Api::<BigIpListenerGroup>::all(env.client.clone()).get("public").await?;
    let status = group.status.unwrap_or_default();
    let programmed = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Programmed" && c.observed_generation == group.metadata.generation)
        .map(|c| c.status.clone())
        .unwrap_or_default();
    Ok((status.attached, programmed))
}

/// The sample: two namespaces on 10.1.10.50:443, each with its hosts and certificate.
/// - both are programmed as one Service_HTTPS with both teams' pools, a certificate per host
///   (each the team's own Secret's) and the port-80 redirect; the group says 2 attached,
///   Programmed;
/// - a copy of team-a's host from team-b is refused (RouteConflict naming team-a/shop), a
///   VirtualServer of a namespace the group does not allow is refused
///   (NotAllowedByListenerGroup); neither changes what is served;
/// - team-b's Secret broken: team-b's VirtualServer is not programmed and its hosts leave the
///   virtual server, team-a's stay Ready and served; fixed: back;
/// - team-a's VirtualServer deleted: only team-b's hosts remain.
pub async fn listener_group_shares_one_vip(env: &Env) -> Result<()> {
    for ns in ["team-a", "team-b", "team-c"] {
        setup_namespace(env, ns).await?;
    }
    env.kubectl_apply("team-a", &workload("web", 1, Some(30411)))?;
    env.kubectl_apply("team-a", &workload("api", 1, Some(30412)).replace("      port: 80\n", "      port: 8080\n"))?;
    env.kubectl_apply("team-b", &workload("blog", 1, Some(30413)))?;
    let (shop_secret, shop_certificate) = tls_secret("shop-tls", "shop.example.com")?;
    let (blog_secret, blog_certificate) = tls_secret("blog-tls", "blog.example.com")?;
    env.kubectl_apply("team-a", &shop_secret)?;
    env.kubectl_apply("team-b", &blog_secret)?;
    let sample = repo_root().join("config/samples/listener-group/shared-vip.yaml");
    env.kubectl(&["apply", "-f", &sample.to_string_lossy()])?;

    for (ns, name) in [("team-a", "shop"), ("team-b", "blog")] {
        eventually(&format!("{ns}/{name} Ready"), WAIT, || async { Ok(all_true(&get_vs(env, ns, name).await?)) })
            .await?;
    }
    let both_served = || {
        let app = group_application(env).ok_or("no group application")?;
        ensure_eq(&app["vs"]["class"], "Service_HTTPS")?;
        ensure_eq(&app["vs"]["virtualAddresses"][0], "10.1.10.50")?;
        ensure_eq(&app["vs"]["redirect80"], true)?;
        let (pools, certificates) = pools_and_certificates(&app);
        let wanted = ["pool_team-a_shop_api", "pool_team-a_shop_web", "pool_team-b_blog_blog"];
        if pools != wanted {
            return Err(format!("pools {pools:?}"));
        }
        let by_name = |host: &str| certificates.iter().find(|(name, _)| name == host).map(|(_, pem)| pem.trim());
        if by_name("shop.example.com") != Some(shop_certificate.trim())
            || by_name("blog.example.com") != Some(blog_certificate.trim())
        {
            return Err(format!("certificates for {:?}", certificates.iter().map(|(n, _)| n).collect::<Vec<_>>()));
        }
        Ok(())
    };
    eventually("one virtual server with both teams' hosts and certificates", WAIT, || async { Ok(both_served()) })
        .await?;
    eventually("the group says 2 attached, Programmed", WAIT, || async {
        Ok(match group_status(env).await? {
            (Some(2), programmed) if programmed == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let printed = env.kubectl(&["get", "blg", "public"])?;
    ensure!(printed.contains("10.1.10.50") && printed.contains("True"), "kubectl get blg:\n{printed}");

    // A second claim of shop.example.com, and a namespace the group does not allow.
    let copy = std::fs::read_to_string(&sample)?;
    let copycat = member_manifest(&copy, "shop", "copycat");
    env.kubectl_apply("team-b", &copycat)?;
    env.kubectl_apply("team-c", &member_manifest(&copy, "blog", "outsider"))?;
    eventually("the copy is refused, naming the holder", WAIT, || async {
        Ok(condition_is(&get_vs(env, "team-b", "copycat").await?, "Accepted", "False", "RouteConflict", "team-a/shop"))
    })
    .await?;
    eventually("the outsider is refused", WAIT, || async {
        Ok(condition_is(
            &get_vs(env, "team-c", "outsider").await?,
            "Accepted",
            "False",
            "NotAllowedByListenerGroup",
            "namespace team-c",
        ))
    })
    .await?;
    both_served().map_err(anyhow::Error::msg).context("after the refused objects")?;
    all_true(&get_vs(env, "team-a", "shop").await?).map_err(anyhow::Error::msg)?;

    // One bad member: the others stay.
    env.kubectl_apply("team-b", &blog_secret.replace("BEGIN CERTIFICATE", "BEGIN CERTIFICATX"))?;
    eventually("team-b's VirtualServer says its Secret is unusable", WAIT, || async {
        Ok(condition_is(&get_vs(env, "team-b", "blog").await?, "ResolvedRefs", "False", "InvalidSecret", "blog-tls"))
    })
    .await?;
    eventually("team-b's hosts leave the virtual server, team-a's stay", WAIT, || async {
        let Some(app) = group_application(env) else { return Ok(Err("no group application".to_string())) };
        let (pools, certificates) = pools_and_certificates(&app);
        let names: Vec<&str> = certificates.iter().map(|(n, _)| n.as_str()).collect();
        Ok(if pools == ["pool_team-a_shop_api", "pool_team-a_shop_web"] && names == ["shop.example.com"] {
            Ok(())
        } else {
            Err(format!("pools {pools:?}, certificates {names:?}"))
        })
    })
    .await?;
    all_true(&get_vs(env, "team-a", "shop").await?)
        .map_err(anyhow::Error::msg)
        .context("team-a while team-b is broken")?;
    env.kubectl_apply("team-b", &blog_secret)?;
    eventually("team-b back once its Secret is fixed", WAIT, || async { Ok(both_served()) }).await?;

    // Deleting a member removes only its hosts.
    let vss: Api<VirtualServer> = Api::namespaced(env.client.clone(), "team-a");
    vss.delete("shop", &Default::default()).await?;
    eventually("only team-b's hosts remain", WAIT, || async {
        let Some(app) = group_application(env) else { return Ok(Err("no group application".to_string())) };
        let (pools, _) = pools_and_certificates(&app);
        Ok(if pools == ["pool_team-b_blog_blog"] { Ok(()) } else { Err(format!("pools {pools:?}")) })
    })
    .await?;
    Ok(())
}

fn ensure_eq(value: &Value, wanted: impl Into<Value>) -> std::result::Result<(), String> {
    let wanted = wanted.into();
    if *value == wanted {
        Ok(())
    } else {
        Err(format!("{value} is not {wanted}"))
    }
}

/// The sample's VirtualServer `name` under another name, without its namespace.
fn member_manifest(sample: &str, name: &str, new_name: &str) -> String {
    let document = sample
        .split("\n---\n")
        .find(|doc| doc.contains("kind: VirtualServer") && doc.contains(&format!("name: {name}\n")))
        .unwrap_or_default();
    document
        .replace(&format!("name: {name}\n"), &format!("name: {new_name}\n"))
        .lines()
        .filter(|line| !line.trim_start().starts_with("namespace:"))
        .collect::<Vec<_>>()
        .join("\n")
}
