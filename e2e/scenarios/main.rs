//! End-to-end scenarios on a real kube-apiserver with the BIG-IP simulator.
//!
//! `cargo test --test e2e [FILTER]` — needs the control plane tools built by
//! `make controlplane` (`make test` does it). Prints one line per scenario and a closing
//! `N passed, N failed` line; exits non-zero when any failed.

mod faults;
mod features;
mod harness;
mod legacy;
mod proxy;
mod scenarios;
mod tunnel;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use harness::Env;

type ScenarioFn = for<'a> fn(&'a Env) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

macro_rules! scenario {
    ($name:ident) => {
        (stringify!($name), (|env| Box::pin(scenarios::$name(env))) as ScenarioFn)
    };
    ($module:ident::$name:ident) => {
        (stringify!($name), (|env| Box::pin($module::$name(env))) as ScenarioFn)
    };
}

/// Scenarios that run concurrently.
const CONCURRENT: &[(&str, ScenarioFn)] = &[
    scenario!(programmed_end_to_end),
    scenario!(cluster_mode_follows_scaling),
    scenario!(missing_service_then_created),
    scenario!(crd_validation_rejects_invalid),
    scenario!(delete_removes_only_its_application),
    scenario!(printer_columns),
    scenario!(rejected_object_does_not_break_its_partition),
    scenario!(out_of_band_changes_are_repaired),
    scenario!(faults::killed_mid_sync_then_restarted_with_slow_apiserver),
    scenario!(faults::bigip_unreachable_then_converges),
    scenario!(faults::busy_storms_and_token_expiry_converge),
    scenario!(faults::leader_failover),
    scenario!(faults::deleting_a_whole_partition_is_confirmed_and_done),
    scenario!(features::tls_from_secret_with_routing),
    scenario!(features::transport_servers_tcp_and_udp),
    scenario!(features::external_traffic_policy_local),
    scenario!(faults::anonymous_rejection_is_bisected),
    scenario!(legacy::legacy_config_maps_and_ingress),
];

/// Scenarios that change what every other scenario sees (nodes); they run alone, afterwards.
/// The kube-apiserver restart interrupts every client, so it runs alone too.
const EXCLUSIVE: &[(&str, ScenarioFn)] = &[
    scenario!(nodeport_follows_nodes),
    scenario!(tunnel::bigip_tunnel_flannel),
    scenario!(tunnel::bigip_tunnel_flannel_etcd),
    scenario!(faults::apiserver_restart_causes_no_spurious_changes),
];

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);

async fn run_one(env: &Env, name: &str, f: ScenarioFn) -> (String, Result<Duration, String>) {
    let started = Instant::now();
    let result = match tokio::time::timeout(SCENARIO_TIMEOUT, f(env)).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("timed out after {SCENARIO_TIMEOUT:?}")),
    };
    match &result {
        Ok(d) => println!("test e2e::{name} ... ok ({:.1}s)", d.as_secs_f64()),
        Err(e) => println!("test e2e::{name} ... FAILED\n    {e}"),
    }
    (name.to_string(), result)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bigip_operator::install_crypto_provider();
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let selected = |list: &'static [(&'static str, ScenarioFn)]| {
        // FILTER: comma-separated substrings of scenario names.
        list.iter()
            .filter(|(n, _)| filter.as_deref().is_none_or(|f| f.split(',').any(|f| n.contains(f))))
            .collect::<Vec<_>>()
    };
    let (concurrent, exclusive) = (selected(CONCURRENT), selected(EXCLUSIVE));
    if concurrent.is_empty() && exclusive.is_empty() {
        println!("0 passed, 0 failed (no scenario matches {filter:?})");
        return std::process::ExitCode::FAILURE;
    }
    let started = Instant::now();
    let env = match Env::start().await {
        Ok(env) => env,
        Err(e) => {
            println!("e2e environment failed to start: {e:#}");
            println!("0 passed, {} failed", concurrent.len() + exclusive.len());
            return std::process::ExitCode::FAILURE;
        }
    };
    eprintln!(
        "e2e: environment up in {:.1}s (logs in {})",
        started.elapsed().as_secs_f64(),
        env.work_dir.path().display()
    );

    let mut results = futures::future::join_all(concurrent.iter().map(|(n, f)| run_one(&env, n, *f))).await;
    for (name, f) in exclusive {
        results.push(run_one(&env, name, *f).await);
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let passed = results.len() - failed;
    if failed > 0 {
        eprintln!("--- operator log (last 60 lines) ---\n{}", harness::tail(&env.operator_log(), 60));
    }
    if env.all_operator_logs().contains(harness::BIGIP_PASSWORD) {
        println!("test e2e::password_never_logged ... FAILED\n    an operator log contains the BIG-IP password");
        println!("{passed} passed, {} failed", failed + 1);
        return std::process::ExitCode::FAILURE;
    }
    println!("test e2e::password_never_logged ... ok");
    println!(
        "e2e: {:.1}s in all; the simulator received {} declarations",
        started.elapsed().as_secs_f64(),
        env.simulator().state().declare_count()
    );
    if std::env::var_os("BIGIP_E2E_KEEP_LOGS").is_some() {
        let kept = std::env::temp_dir().join("bigip-e2e-logs");
        let _ = std::fs::create_dir_all(&kept);
        for entry in std::fs::read_dir(env.work_dir.path()).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".log") {
                let _ = std::fs::copy(entry.path(), kept.join(entry.file_name()));
            }
        }
        eprintln!("e2e: logs kept in {}", kept.display());
    }
    println!("{} passed, {failed} failed", passed + 1);
    drop(env);
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
