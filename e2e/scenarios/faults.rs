//! Fault injection: each scenario runs its own operator(s) against its own simulated BIG-IP,
//! breaks something, and asserts that no Application that should exist was ever deleted
//! (from the simulator's full change history) and that the BIG-IP ends in the desired state.
//! Measured recovery and failover times are printed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Result};
use bigip_operator::crd::VirtualServer;
use bigip_operator::simulator::{ChangeRecord, Faults};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::DeleteParams;
use kube::Api;

use crate::harness::{eventually, BigIp, Env, OperatorOptions, OperatorProcess, OWN_OPERATOR_LABEL};
use crate::proxy::{SlowProxy, SwitchableProxy};
use crate::scenarios::{
    all_true, app_name, condition, condition_is, get_vs, setup_namespace, virtual_server, workload,
};

const WAIT: Duration = Duration::from_secs(90);

/// Length of the BIG-IP outage (the issue asks for 2 minutes; E2E_OUTAGE_SECONDS shortens it
/// when iterating locally).
fn outage() -> Duration {
    let seconds = std::env::var("E2E_OUTAGE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    Duration::from_secs(seconds)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A VirtualServer for the scenario's own operator (labelled for it) in `partition`, which is
/// also the namespace.
fn vs_in(name: &str, address: &str, partition: &str) -> String {
    let manifest = virtual_server(name, address, "web", &format!("  partition: {partition}\n"));
    manifest.replacen("metadata:\n", &format!("metadata:\n  labels: {{{OWN_OPERATOR_LABEL}: {partition}}}\n"), 1)
}

/// Fails when any change to `tenant` deleted one of `must_keep` while it existed.
fn never_removed(history: &[ChangeRecord], tenant: &str, must_keep: &BTreeSet<String>) -> Result<()> {
    for record in history.iter().filter(|r| r.tenant == tenant) {
        for app in must_keep {
            if record.applications_before.contains(app) && !record.applications_after.contains(app) {
                bail!("change #{} ({:?} by {:?}) deleted {app}", record.seq, record.action, record.client);
            }
        }
    }
    Ok(())
}

/// Ok when the simulator's tenant holds exactly `expected` applications.
fn tenant_holds(bigip: &BigIp, tenant: &str, expected: &BTreeSet<String>) -> std::result::Result<(), String> {
    let actual: BTreeSet<String> = bigip
        .simulator
        .state()
        .tenants()
        .get(tenant)
        .and_then(|t| t.as_object().cloned())
        .map(|objects| {
            objects
                .into_iter()
                .filter(|(_, v)| v.get("class").and_then(|c| c.as_str()) == Some("Application"))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    if &actual == expected {
        Ok(())
    } else {
        Err(format!("tenant {tenant} holds {actual:?}, expected {expected:?}"))
    }
}

/// A namespace for a scenario's own operator, which keeps its Lease there: the chart's
/// ServiceAccount gets the same Lease permissions in it as the chart gives in its own.
pub(crate) async fn setup_operator_namespace(env: &Env, ns: &str) -> Result<()> {
    setup_namespace(env, ns).await?;
    let rbac = format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: bigip-operator-leader-election}}
rules:
  - {{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create]}}
  - {{apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [bigip-operator], verbs: [get, update]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bigip-operator-leader-election}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: bigip-operator-leader-election}}
subjects: [{{kind: ServiceAccount, name: {sa}, namespace: {sa_ns}}}]
"#,
        sa = crate::harness::RELEASE,
        sa_ns = crate::harness::OPERATOR_NAMESPACE
    );
    env.kubectl_apply(ns, &rbac)
}

/// The common start of a fault scenario: its namespace, its own simulated BIG-IP, a NodePort
/// workload, `virtuals` (name, address) in the partition named like the namespace, and its own
/// operator `identity`, waited for until every VirtualServer is Ready.
async fn programmed(
    env: &Env,
    ns: &'static str,
    node_port: u16,
    virtuals: &[(&str, &str)],
    identity: &str,
) -> Result<(BigIp, OperatorProcess)> {
    setup_operator_namespace(env, ns).await?;
    let bigip = env.start_bigip(ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(node_port)))?;
    for (name, address) in virtuals {
        env.kubectl_apply(ns, &vs_in(name, address, ns))?;
    }
    let operator = env.start_operator(&OperatorOptions::own(identity, ns, &bigip))?;
    let names: Vec<&str> = virtuals.iter().map(|(name, _)| *name).collect();
    all_ready(env, ns, &names).await?;
    Ok((bigip, operator))
}

async fn all_ready(env: &Env, ns: &str, names: &[&str]) -> Result<()> {
    for name in names {
        eventually(&format!("{ns}/{name} Ready"), WAIT, || async { Ok(all_true(&get_vs(env, ns, name).await?)) })
            .await?;
    }
    Ok(())
}

fn apps(ns: &str, names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| app_name(ns, n)).collect()
}

/// 1. The operator is SIGKILLed while a post is in flight and restarted behind a slow
///    apiserver (every response chunk delayed): it must not post before its caches are full,
///    so no application is ever deleted, and it converges.
pub async fn killed_mid_sync_then_restarted_with_slow_apiserver(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-kill", "f-kill");
    let virtuals: Vec<(String, String)> = (1..=8).map(|i| (format!("vs{i}"), format!("10.20.1.{}", 10 + i))).collect();
    let virtual_refs: Vec<(&str, &str)> = virtuals.iter().map(|(n, a)| (n.as_str(), a.as_str())).collect();
    let (bigip, mut first) = programmed(env, ns, 30201, &virtual_refs, "kill-1").await?;
    let name_refs: Vec<&str> = virtual_refs.iter().map(|(n, _)| *n).collect();

    // A slow BIG-IP keeps the next post in flight; kill the operator in the middle of it.
    bigip.simulator.set_faults(Faults { latency_ms: 4000, ..Faults::default() });
    env.kubectl_apply(ns, &vs_in("vs9", "10.20.1.30", partition))?;
    eventually("the post adding vs9 in flight", WAIT, || async {
        let in_flight = bigip.simulator.state().declares_in_flight();
        Ok(if in_flight > 0 { Ok(()) } else { Err("no declaration in flight".to_string()) })
    })
    .await?;
    let abandoned_before_kill = bigip.simulator.state().declares_abandoned();
    first.process.kill9();
    // The kill landed mid-post: the simulator saw the client go away before its answer (the
    // BIG-IP's latency is 4 s).
    eventually("the post in flight abandoned by the killed operator", WAIT, || async {
        let abandoned = bigip.simulator.state().declares_abandoned();
        Ok(if abandoned > abandoned_before_kill {
            Ok(())
        } else {
            Err("the post was answered, not abandoned".to_string())
        })
    })
    .await?;
    bigip.simulator.set_faults(Faults::default());

    let proxy = SlowProxy::start(env.apiserver_addr()?, Duration::from_millis(150)).await?;
    let slow = env.operator_kubeconfig_via(proxy.addr, "kill-slow")?;
    let restarted_at = Instant::now();
    let _second = env.start_operator(&OperatorOptions {
        identity: "kill-2",
        namespace: Some(ns),
        partition,
        bigip: &bigip,
        kubeconfig: Some(slow),
        values: &[],
    })?;
    let mut all = name_refs.clone();
    all.push("vs9");
    let expected = apps(ns, &all);
    eventually("all 9 applications on the BIG-IP", WAIT, || async { Ok(tenant_holds(&bigip, partition, &expected)) })
        .await?;
    all_ready(env, ns, &all).await?;
    println!(
        "    measured: converged {:.1}s after the restart behind a slow apiserver",
        restarted_at.elapsed().as_secs_f64()
    );
    never_removed(&bigip.simulator.state().history(), partition, &expected)
}

/// 2. The BIG-IP refuses every connection for two minutes while objects are added, changed
///    and deleted. Conditions say BigIpUnreachable meanwhile; afterwards it converges.
pub async fn bigip_unreachable_then_converges(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-outage", "f-outage");
    let virtuals = [("a", "10.20.2.10"), ("b", "10.20.2.11"), ("c", "10.20.2.12")];
    let (bigip, _operator) = programmed(env, ns, 30202, &virtuals, "outage").await?;

    let outage_started = Instant::now();
    bigip.simulator.set_faults(Faults { refuse_connections: true, ..Faults::default() });
    env.kubectl_apply(ns, &vs_in("d", "10.20.2.13", partition))?;
    env.kubectl(&["patch", "bvs", "a", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8081}}"#])?;
    env.kubectl(&["delete", "bvs", "c", "-n", ns, "--wait=false"])?;
    eventually("d reports the BIG-IP unreachable", WAIT, || async {
        let vs = get_vs(env, ns, "d").await?;
        Ok(match condition(&vs, "Programmed") {
            Some(c) if c.status == "False" && c.reason == "BigIpUnreachable" => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    // The finalizer keeps c while its application cannot be removed.
    let api: Api<VirtualServer> = Api::namespaced(env.client.clone(), ns);
    ensure!(api.get_opt("c").await?.is_some(), "c disappeared while the BIG-IP was unreachable");
    tokio::time::sleep(outage().saturating_sub(outage_started.elapsed())).await;
    ensure!(api.get_opt("c").await?.is_some(), "c disappeared while the BIG-IP was unreachable");

    bigip.simulator.set_faults(Faults::default());
    let recovered = Instant::now();
    let expected = apps(ns, &["a", "b", "d"]);
    eventually("the BIG-IP holds a, b and d", WAIT, || async { Ok(tenant_holds(&bigip, partition, &expected)) })
        .await?;
    all_ready(env, ns, &["a", "b", "d"]).await?;
    eventually("c deleted once its application is gone", WAIT, || async {
        Ok(if api.get_opt("c").await?.is_none() { Ok(()) } else { Err("c still exists".to_string()) })
    })
    .await?;
    let port = bigip.simulator.state().tenants()[partition][app_name(ns, "a")]["vs"]["virtualPort"].clone();
    ensure!(port == 8081, "a's port on the BIG-IP is {port}");
    println!(
        "    measured: outage {:.0}s; converged {:.1}s after the BIG-IP came back",
        (recovered - outage_started).as_secs_f64(),
        recovered.elapsed().as_secs_f64()
    );
    never_removed(&bigip.simulator.state().history(), partition, &apps(ns, &["a", "b", "d"]))
}

/// 3. Storms of 503 (AS3 busy) and every token expiring mid-run: the operator backs off,
///    logs in again and converges.
pub async fn busy_storms_and_token_expiry_converge(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-storm", "f-storm");
    setup_operator_namespace(env, ns).await?;
    let bigip = env.start_bigip(ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30203)))?;
    let _operator = env.start_operator(&OperatorOptions {
        identity: "storm",
        namespace: Some(ns),
        partition,
        bigip: &bigip,
        kubeconfig: None,
        values: &[],
    })?;
    bigip.simulator.set_faults(Faults { fail_with_503: 12, ..Faults::default() });
    for (name, address) in [("a", "10.20.3.10"), ("b", "10.20.3.11"), ("c", "10.20.3.12")] {
        env.kubectl_apply(ns, &vs_in(name, address, partition))?;
    }
    all_ready(env, ns, &["a", "b", "c"]).await?;
    ensure!(bigip.simulator.state().faults().fail_with_503 == 0, "the storm did not reach the operator");

    bigip.simulator.set_faults(Faults { fail_with_503: 6, expire_tokens_now: true, ..Faults::default() });
    env.kubectl_apply(ns, &vs_in("d", "10.20.3.13", partition))?;
    env.kubectl(&["patch", "bvs", "b", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8082}}"#])?;
    let expected = apps(ns, &["a", "b", "c", "d"]);
    eventually("the BIG-IP holds a-d", WAIT, || async { Ok(tenant_holds(&bigip, partition, &expected)) }).await?;
    all_ready(env, ns, &["a", "b", "c", "d"]).await?;
    ensure!(bigip.simulator.state().faults().fail_with_503 == 0, "the second storm did not reach the operator");
    never_removed(&bigip.simulator.state().history(), partition, &expected)
}

/// 4. kube-apiserver restarts: every watch resumes within seconds — a change made right after
///    the apiserver serves again is programmed within [`RESUME_BOUND`] — and the re-lists
///    cause no deletion and no re-post of unchanged tenants (checked once they are done).
pub async fn apiserver_restart_causes_no_spurious_changes(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-restart", "f-restart");
    let virtuals = [("a", "10.20.4.10"), ("b", "10.20.4.11"), ("c", "10.20.4.12")];
    let (bigip, mut operator) = programmed(env, ns, 30204, &virtuals, "restart").await?;
    let changes_before = bigip.simulator.state().history().len();
    let log_before = operator.log().len();

    let took = env.restart_apiserver().await?;
    println!("    measured: kube-apiserver restarted in {:.1}s", took.as_secs_f64());

    // The change right after the restart, not seconds later: the watches have to resume for it.
    let changed_at = Instant::now();
    eventually("patch accepted by the restarted apiserver", WAIT, || async {
        Ok(env
            .kubectl(&["patch", "bvs", "c", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8083}}"#])
            .map_err(|e| e.to_string()))
    })
    .await?;
    eventually("c on port 8083", RESUME_BOUND, || async {
        let port =
            bigip.simulator.state().tenants().get(partition).map(|t| t[app_name(ns, "c")]["vs"]["virtualPort"].clone());
        Ok(if port == Some(serde_json::json!(8083)) { Ok(()) } else { Err(format!("{port:?}")) })
    })
    .await?;
    println!(
        "    measured: a change made right after the restart programmed in {:.1}s",
        changed_at.elapsed().as_secs_f64()
    );
    ensure!(operator.process.is_running(), "the operator exited when kube-apiserver restarted");

    // Every watch that expired has re-listed, within the bound, before the BIG-IP is judged. A
    // watch whose version the new apiserver still serves resumes without a 410 (and without a
    // log line); when no watch has expired a few seconds after the change was programmed,
    // none will.
    let programmed_at = Instant::now();
    let relisted = eventually("every expired watch re-listed", RESUME_BOUND, || async {
        let log = operator.log();
        let since_restart = log.get(log_before..).unwrap_or_default();
        let expired = log_values(since_restart, "watch expired", "watch");
        let relisted = log_values(since_restart, "watch re-listed", "watch");
        let waiting: BTreeSet<&String> =
            expired.iter().map(|(w, _)| w).filter(|w| !relisted.iter().any(|(r, _)| r == *w)).collect();
        Ok(if expired.is_empty() && programmed_at.elapsed() < Duration::from_secs(5) {
            Err("no watch has expired yet".to_string())
        } else if waiting.is_empty() {
            Ok(log_values(since_restart, "watch re-listed", "relist_ms"))
        } else {
            Err(format!("not re-listed yet: {waiting:?}"))
        })
    })
    .await?;
    let slowest_ms = relisted.iter().filter_map(|(ms, _)| ms.parse::<u64>().ok()).max().unwrap_or(0);
    let answered: Vec<u64> = relisted
        .iter()
        .filter_map(|(_, line)| log_values(line, "watch re-listed", "list_ms").pop()?.0.parse().ok())
        .collect();
    println!(
        "    measured: {} watches re-listed after 410 Expired, the slowest {slowest_ms} ms after its 410 (median {} ms); \
         the apiserver answered those lists in median {} ms, at most {} ms",
        relisted.len(),
        median(relisted.iter().filter_map(|(ms, _)| ms.parse::<u64>().ok()).collect()),
        median(answered.clone()),
        answered.iter().max().copied().unwrap_or(0),
    );
    ensure!(slowest_ms <= RESUME_BOUND.as_millis() as u64, "a watch took {slowest_ms} ms to re-list after 410 Expired");
    let history = bigip.simulator.state().history();
    ensure!(
        history.len() == changes_before + 1,
        "expected exactly one change after the restart: {:?}",
        &history[changes_before..]
    );
    never_removed(&history, partition, &apps(ns, &["a", "b", "c"]))
}

/// The test bound for a watch to resume after a kube-apiserver restart: the operator's
/// per-watch back-off tops out at 5 s (controller/watches.rs), so a watch that is not back
/// within three of those steps is stuck.
const RESUME_BOUND: Duration = Duration::from_secs(15);

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// The values of `field` (with the line's own text) on the operator's log lines with
/// `message`, in order. Log lines are tracing's text format: `message field=value ...`.
fn log_values(log: &str, message: &str, field: &str) -> Vec<(String, String)> {
    let key = format!("{field}=");
    log.lines()
        .filter(|line| line.contains(message))
        .filter_map(|line| {
            let value = line.split_whitespace().find_map(|word| word.strip_prefix(&key))?;
            Some((value.trim_matches('"').to_string(), line.to_string()))
        })
        .collect()
}

async fn lease_holder(env: &Env, ns: &str) -> Result<Option<String>> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), ns);
    Ok(leases.get_opt("bigip-operator").await?.and_then(|l| l.spec).and_then(|s| s.holder_identity))
}

/// Changes to `tenant` at or after `since_ms`, by client.
fn changes_since(bigip: &BigIp, tenant: &str, since_ms: u64) -> Vec<ChangeRecord> {
    bigip.simulator.state().history().into_iter().filter(|r| r.tenant == tenant && r.at_unix_ms >= since_ms).collect()
}

/// Waits (up to 60 s) for the first change to `tenant` by replica `identity` at or after
/// `since_ms`; returns how many milliseconds after `since_ms` it was applied.
async fn first_change_by(bigip: &BigIp, tenant: &str, since_ms: u64, identity: &str) -> Result<u64> {
    eventually(&format!("{identity} programs the change"), Duration::from_secs(60), || async {
        let first = changes_since(bigip, tenant, since_ms).into_iter().find(|r| made_by(r, identity));
        Ok(first.map(|r| r.at_unix_ms - since_ms).ok_or_else(|| format!("no change by {identity} yet")))
    })
    .await
}

fn made_by(record: &ChangeRecord, identity: &str) -> bool {
    record.client.as_deref().is_some_and(|c| c.ends_with(&format!("({identity})")))
}

/// 5. Two replicas: only the leader writes. The leader is SIGKILLed → the standby takes over
///    within 15 s; the new leader is stopped with SIGTERM → it releases the Lease and the
///    other replica takes over at once.
pub async fn leader_failover(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-leader", "f-leader");
    setup_operator_namespace(env, ns).await?;
    let bigip = env.start_bigip(ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30205)))?;
    let options = |identity| OperatorOptions::own(identity, ns, &bigip);
    let mut a = env.start_operator(&options("replica-a"))?;
    eventually("replica-a leads", WAIT, || async {
        Ok(match lease_holder(env, ns).await? {
            Some(h) if h == "replica-a" => Ok(()),
            other => Err(format!("holder {other:?}")),
        })
    })
    .await?;
    let mut b = env.start_operator(&options("replica-b"))?;
    for (name, address) in [("vs-x", "10.20.5.10"), ("vs-y", "10.20.5.11")] {
        env.kubectl_apply(ns, &vs_in(name, address, partition))?;
    }
    all_ready(env, ns, &["vs-x", "vs-y"]).await?;
    let history = changes_since(&bigip, partition, 0);
    ensure!(!history.is_empty() && history.iter().all(|r| made_by(r, "replica-a")), "a standby wrote: {history:?}");

    // SIGKILL the leader, then change something: the standby must program it.
    let killed_ms = unix_ms();
    a.process.kill9();
    env.kubectl(&["patch", "bvs", "vs-x", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8084}}"#])?;
    let takeover = first_change_by(&bigip, partition, killed_ms, "replica-b").await?;
    let after_kill = changes_since(&bigip, partition, killed_ms);
    ensure!(
        after_kill.iter().all(|r| made_by(r, "replica-b")),
        "after the kill only replica-b may write: {after_kill:?}"
    );
    println!("    measured: failover after SIGKILL of the leader {:.1}s (lease 10 s)", takeover as f64 / 1000.0);
    // The operator's guarantee: a standby takes over once the Lease (10 s) expires, checking
    // every retry period (2 s); 3 s more for the post.
    ensure!(takeover < 15_000, "failover took {takeover} ms");
    all_ready(env, ns, &["vs-x", "vs-y"]).await?;

    // A new replica joins as standby; the leader is stopped gracefully and hands over.
    let _a2 = env.start_operator(&options("replica-a2"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        changes_since(&bigip, partition, killed_ms).iter().all(|r| made_by(r, "replica-b")),
        "the new standby wrote"
    );
    let stopped_ms = unix_ms();
    let status = b.process.terminate(Duration::from_secs(30));
    ensure!(status.is_some_and(|s| s.success()), "replica-b did not exit cleanly on SIGTERM: {status:?}");
    ensure!(b.log().contains("released the Lease"), "replica-b did not release the Lease");
    env.kubectl(&["patch", "bvs", "vs-y", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8085}}"#])?;
    let handover = first_change_by(&bigip, partition, stopped_ms, "replica-a2").await?;
    println!("    measured: hand-over after SIGTERM of the leader {:.1}s", handover as f64 / 1000.0);
    // A released Lease is taken within one retry period (2 s); 3 s more for the post.
    ensure!(handover < 5_000, "hand-over took {handover} ms");
    all_ready(env, ns, &["vs-x", "vs-y"]).await?;
    never_removed(&bigip.simulator.state().history(), partition, &apps(ns, &["vs-x", "vs-y"]))
}

/// Deleting every VirtualServer of a partition at once trips the deletion guard, which asks
/// the apiserver (a fresh list) and then deletes them: the guard never blocks real deletes.
pub async fn deleting_a_whole_partition_is_confirmed_and_done(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-guard", "f-guard");
    let virtuals = [("a", "10.20.6.10"), ("b", "10.20.6.11"), ("c", "10.20.6.12")];
    let (bigip, operator) = programmed(env, ns, 30206, &virtuals, "guard").await?;
    let api: Api<VirtualServer> = Api::namespaced(env.client.clone(), ns);
    api.delete_collection(&DeleteParams::default(), &Default::default()).await?;
    eventually("the tenant removed and the objects gone", WAIT, || async {
        let left = api.list(&Default::default()).await?.items.len();
        let tenant = bigip.simulator.state().tenants().contains_key(partition);
        Ok(if left == 0 && !tenant { Ok(()) } else { Err(format!("{left} objects left, tenant exists: {tenant}")) })
    })
    .await?;
    ensure!(operator.log().contains("a fresh list confirms the deletions"), "the guard was not consulted");
    Ok(())
}

/// 8. The BIG-IP rejects a tenant without naming the offending application (the simulator's
///    `reject_tenants_with_application` fault). The operator finds it by posting parts of the
///    partition: the other new objects are programmed, the culprit alone is Programmed=False
///    with the BIG-IP's message, no served application is ever dropped, and once the BIG-IP
///    accepts it again (and the object changes) it is programmed too.
pub async fn anonymous_rejection_is_bisected(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-bisect", "f-bisect");
    let served = [("a", "10.20.8.10"), ("b", "10.20.8.11")];
    let (bigip, _operator) = programmed(env, ns, 30208, &served, "bisect").await?;
    bigip.simulator.set_faults(Faults { reject_tenants_with_application: Some("poison".into()), ..Faults::default() });
    let posts_before = bigip.simulator.state().declare_count();
    for (name, address) in [("c", "10.20.8.12"), ("d", "10.20.8.13"), ("poison", "10.20.8.14"), ("e", "10.20.8.15")] {
        env.kubectl_apply(ns, &vs_in(name, address, partition))?;
    }
    all_ready(env, ns, &["a", "b", "c", "d", "e"]).await?;
    eventually("poison singled out with the BIG-IP's message", WAIT, || async {
        let vs = get_vs(env, ns, "poison").await?;
        Ok(condition_is(&vs, "Programmed", "False", "DeclarationFailed", "configuration could not be loaded"))
    })
    .await?;
    let good = apps(ns, &["a", "b", "c", "d", "e"]);
    eventually("the BIG-IP holds every application but poison", WAIT, || async {
        Ok(tenant_holds(&bigip, partition, &good))
    })
    .await?;
    let posts = bigip.simulator.state().declare_count() - posts_before;
    println!("    measured: {posts} declarations to program 4 new applications, one of them rejected anonymously");
    never_removed(&bigip.simulator.state().history(), partition, &apps(ns, &["a", "b"]))?;

    bigip.simulator.set_faults(Faults::default());
    env.kubectl(&["patch", "bvs", "poison", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8080}}"#])?;
    eventually("poison Ready once the BIG-IP takes it", WAIT, || async {
        Ok(all_true(&get_vs(env, ns, "poison").await?))
    })
    .await?;
    never_removed(&bigip.simulator.state().history(), partition, &good)
}

/// The VirtualServer CRD's `spec.snat` enum, as a JSON pointer, and a value a newer CRD might add.
const SNAT_ENUM: &str = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/snat/enum";
const FUTURE_SNAT: &str = "future-mode";

/// 8. A CRD rollback leaves a stored VirtualServer the operator cannot read (a value only the
///    newer CRD allowed). It gets an `InvalidObject` Event, its application stays on the BIG-IP
///    as it was, and everything else keeps working — also for an operator started after the
///    object became unreadable, whose first list holds it. (Before, the typed watch failed on
///    it and every controller waiting for that store stalled.) Changes the shared CRD, so it
///    runs alone.
pub async fn unreadable_object_after_crd_rollback(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-rollback", "f-rollback");
    let virtuals = [("a", "10.20.7.10"), ("b", "10.20.7.11")];
    let (bigip, mut first) = programmed(env, ns, 30209, &virtuals, "rollback-1").await?;
    let crd = "crd/virtualservers.bigip.operator.dev";

    // A newer CRD allows a value, b uses it, and the CRD is rolled back.
    let widen = format!(r#"[{{"op":"add","path":"{SNAT_ENUM}/-","value":"{FUTURE_SNAT}"}}]"#);
    env.kubectl(&["patch", crd, "--type=json", "-p", &widen])?;
    let result = async {
        eventually("b accepted with the newer CRD's value", WAIT, || async {
            let patch = format!(r#"{{"spec":{{"snat":"{FUTURE_SNAT}"}}}}"#);
            Ok(env.kubectl(&["patch", "bvs", "b", "-n", ns, "--type=merge", "-p", &patch]).map_err(|e| e.to_string()))
        })
        .await
    }
    .await;
    let rollback = format!(
        r#"[{{"op":"test","path":"{SNAT_ENUM}/2","value":"{FUTURE_SNAT}"}},{{"op":"remove","path":"{SNAT_ENUM}/2"}}]"#
    );
    env.kubectl(&["patch", crd, "--type=json", "-p", &rollback])?;
    result?;

    eventually("an InvalidObject Event on b", WAIT, || async {
        let events = env.events(ns, "reason=InvalidObject,involvedObject.name=b", "name")?;
        Ok(if events.trim().is_empty() { Err("no Event yet".to_string()) } else { Ok(()) })
    })
    .await?;

    // The running operator: a changes, b stays as it was.
    let port_of = |app: &str| {
        bigip.simulator.state().tenants().get(partition).map(|t| t[app_name(ns, app)]["vs"]["virtualPort"].clone())
    };
    env.kubectl(&["patch", "bvs", "a", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8081}}"#])?;
    eventually("a on port 8081", WAIT, || async {
        Ok(if port_of("a") == Some(serde_json::json!(8081)) { Ok(()) } else { Err(format!("{:?}", port_of("a"))) })
    })
    .await?;

    // An operator that starts now lists b unreadable: it programs a's next change and keeps b.
    ensure!(first.process.terminate(Duration::from_secs(30)).is_some(), "the first operator did not stop on SIGTERM");
    let _second = env.start_operator(&OperatorOptions {
        identity: "rollback-2",
        namespace: Some(ns),
        partition,
        bigip: &bigip,
        kubeconfig: None,
        values: &[],
    })?;
    env.kubectl(&["patch", "bvs", "a", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8082}}"#])?;
    eventually("a on port 8082 by the restarted operator", WAIT, || async {
        Ok(if port_of("a") == Some(serde_json::json!(8082)) { Ok(()) } else { Err(format!("{:?}", port_of("a"))) })
    })
    .await?;
    ensure!(port_of("b") == Some(serde_json::json!(80)), "b's application changed: port {:?}", port_of("b"));
    never_removed(&bigip.simulator.state().history(), partition, &apps(ns, &["a", "b"]))?;

    // b readable again (the value the old CRD knows): reconciled as usual.
    env.kubectl(&["patch", "bvs", "b", "-n", ns, "--type=merge", "-p", r#"{"spec":{"snat":"none","port":8083}}"#])?;
    eventually("b on port 8083 once readable again", WAIT, || async {
        Ok(if port_of("b") == Some(serde_json::json!(8083)) { Ok(()) } else { Err(format!("{:?}", port_of("b"))) })
    })
    .await
}

/// The chart's probes mean something (the operator runs with the chart's command line, with
/// `healthStallSeconds: 3`, reaching the apiserver through a proxy that can be cut):
/// 1. started while the apiserver is unreachable: `/readyz` 503 (the Lease was never read),
///    and `/healthz` 503 once the leader election has failed for longer than the bound;
/// 2. apiserver back: it leads, its caches list, both probes answer 200, the object is Ready,
///    and `/metrics` has the per-controller, per-condition, BIG-IP and AS3 series;
/// 3. the BIG-IP down for longer than the bound: `/healthz` stays 200 (a restart cannot fix a
///    BIG-IP), `bigip_operator_bigip_reachable` says 0;
/// 4. a second replica is a ready standby (`/readyz` 200, `leader 0`);
/// 5. the apiserver cut while leading: `/healthz` 503 naming what fails; back: 200 again.
pub async fn health_probes_follow_the_operator(env: &Env) -> Result<()> {
    let (ns, partition) = ("f-probes", "f-probes");
    setup_operator_namespace(env, ns).await?;
    let bigip = env.start_bigip(ns).await?;
    env.kubectl_apply(ns, &workload("web", 1, Some(30210)))?;
    env.kubectl_apply(ns, &vs_in("vs-p", "10.20.9.10", partition))?;
    let proxy = SwitchableProxy::start(env.apiserver_addr()?, false).await?;
    let via_proxy = env.operator_kubeconfig_via(proxy.addr, "probes")?;
    // The cluster id would be read from the apiserver at start; the chart's value avoids that.
    let values = [("healthStallSeconds", "3"), ("clusterId", "e2e-probes")];
    let a = env.start_operator(&OperatorOptions {
        identity: "probes-a",
        namespace: Some(ns),
        partition,
        bigip: &bigip,
        kubeconfig: Some(via_proxy),
        values: &values,
    })?;
    expect_probe(&a, "/readyz", 503, "the Lease has not been read").await?;
    expect_probe(&a, "/healthz", 503, "leader-election: failing for").await?;

    proxy.restore();
    expect_probe(&a, "/readyz", 200, "ok").await?;
    expect_probe(&a, "/healthz", 200, "ok").await?;
    all_ready(env, ns, &["vs-p"]).await?;
    let metrics = expect_probe(&a, "/metrics", 200, "bigip_operator_objects{").await?;
    for series in [
        r#"bigip_operator_reconciles_total{controller="virtualserver",result="ok"}"#,
        r#"bigip_operator_reconcile_duration_seconds_bucket{controller="virtualserver""#,
        r#"bigip_operator_objects{condition="Ready",kind="VirtualServer",status="True"} 1"#,
        "bigip_operator_bigip_reachable 1",
        "bigip_operator_as3_post_bytes_count",
        &format!(r#"bigip_operator_partition_programmed{{partition="{partition}"}} 1"#),
        "bigip_operator_leader 1",
        "bigip_operator_as3_posts_total{result=\"success\"}",
    ] {
        ensure!(metrics.contains(series), "/metrics lacks {series}:\n{metrics}");
    }

    // The BIG-IP down for longer than the bound: alive all along.
    bigip.simulator.set_faults(Faults { refuse_connections: true, ..Faults::default() });
    env.kubectl(&["patch", "bvs", "vs-p", "-n", ns, "--type=merge", "-p", r#"{"spec":{"port":8086}}"#])?;
    expect_probe(&a, "/metrics", 200, "bigip_operator_bigip_reachable 0").await?;
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(8) {
        let (status, body) = a.get("/healthz").await?;
        ensure!(status == 200, "/healthz failed while only the BIG-IP was down: {status} {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bigip.simulator.set_faults(Faults::default());
    all_ready(env, ns, &["vs-p"]).await?;

    // A second replica: a ready standby.
    let b = env.start_operator(&OperatorOptions {
        identity: "probes-b",
        namespace: Some(ns),
        partition,
        bigip: &bigip,
        kubeconfig: None,
        values: &values,
    })?;
    expect_probe(&b, "/readyz", 200, "ok").await?;
    expect_probe(&b, "/metrics", 200, "bigip_operator_leader 0").await?;

    // The apiserver cut while leading: not alive once the bound passed; alive again after.
    proxy.cut();
    let failing = expect_probe(&a, "/healthz", 503, "failing for").await?;
    println!("    /healthz with the apiserver cut: {}", failing.lines().next().unwrap_or_default());
    proxy.restore();
    expect_probe(&a, "/healthz", 200, "ok").await?;
    expect_probe(&a, "/readyz", 200, "ok").await?;
    expect_probe(&b, "/healthz", 200, "ok").await?;
    all_ready(env, ns, &["vs-p"]).await?;

    // A single replica (no election) whose apiserver is unreachable from the start stops at
    // once on SIGTERM (it used to wait for ever for caches that could not fill).
    proxy.cut();
    let single = [
        ("healthStallSeconds", "3"),
        ("clusterId", "e2e-probes"),
        ("replicaCount", "1"),
        ("leaderElection.enabled", "false"),
    ];
    let mut c = env.start_operator(&OperatorOptions {
        identity: "probes-c",
        namespace: Some(ns),
        partition,
        bigip: &bigip,
        kubeconfig: Some(env.operator_kubeconfig_via(proxy.addr, "probes-c")?),
        values: &single,
    })?;
    expect_probe(&c, "/readyz", 503, "watch caches have not completed their first list").await?;
    let signalled = Instant::now();
    let status = c.process.terminate(Duration::from_secs(20));
    ensure!(
        status.is_some_and(|s| s.success()),
        "probes-c did not exit cleanly on SIGTERM with unready caches: {status:?}\n{}",
        crate::harness::tail(&c.log(), 20)
    );
    println!("    SIGTERM with unready caches: exited in {:.1}s", signalled.elapsed().as_secs_f64());
    proxy.restore();
    Ok(())
}

/// Waits (up to 90 s) until `path` of the operator answers `status` with `needle` in the
/// body; returns the body.
async fn expect_probe(process: &OperatorProcess, path: &str, status: u16, needle: &str) -> Result<String> {
    eventually(&format!("{path} answers {status} with {needle:?}"), Duration::from_secs(90), || async {
        let (got, body) = process.get(path).await?;
        Ok(if got == status && body.contains(needle) {
            Ok(body)
        } else {
            Err(format!("{got} {}", body.chars().take(300).collect::<String>()))
        })
    })
    .await
}
