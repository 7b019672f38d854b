//! End-to-end scenarios on a real kube-apiserver with the BIG-IP simulator.
//!
//! `cargo test --test e2e [-- FILTER | --list | --exact NAME | --skip NAME]` — a standard test
//! harness (libtest-mimic): one trial per scenario, libtest's output and closing
//! `test result:` line. Needs the control plane tools built by `make controlplane`
//! (`make test` does it). The selected scenarios share one control plane: the concurrent ones
//! run together, then the exclusive ones alone; a trial waits for its scenario's outcome.

mod chart;
mod faults;
mod features;
mod harness;
mod legacy;
mod listener_group;
mod load_balancer;
mod proxy;
mod scenarios;
mod tunnel;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use harness::Env;
use libtest_mimic::{Arguments, Failed, Trial};

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
    scenario!(repeated_events_become_one_series),
    scenario!(rejected_object_does_not_break_its_partition),
    scenario!(out_of_band_changes_are_repaired),
    scenario!(missing_bigip_object_leaves_only_its_object_out),
    scenario!(faults::killed_mid_sync_then_restarted_with_slow_apiserver),
    scenario!(faults::bigip_unreachable_then_converges),
    scenario!(faults::busy_storms_and_token_expiry_converge),
    scenario!(faults::leader_failover),
    scenario!(faults::health_probes_follow_the_operator),
    scenario!(faults::deleting_a_whole_partition_is_confirmed_and_done),
    scenario!(features::tls_from_secret_with_routing),
    scenario!(features::transport_servers_tcp_and_udp),
    scenario!(features::external_traffic_policy_local),
    scenario!(features::cross_namespace_pool_needs_a_reference_grant),
    scenario!(faults::anonymous_rejection_is_bisected),
    scenario!(legacy::legacy_config_maps_and_ingress),
    scenario!(load_balancer::load_balancer_services_get_pool_addresses),
    scenario!(load_balancer::virtual_servers_take_addresses_from_a_pool),
    scenario!(listener_group::listener_group_shares_one_vip),
    scenario!(features::rewrites_and_profile_references),
    scenario!(features::weights_and_tls_options),
    scenario!(features::policies_are_shared_and_reprogram_their_users),
];

/// Scenarios that change what every other scenario sees (nodes); they run alone, afterwards.
/// The kube-apiserver restart interrupts every client, and the CRD rollback changes the CRD
/// every scenario uses, so they run alone too.
const EXCLUSIVE: &[(&str, ScenarioFn)] = &[
    scenario!(nodeport_follows_nodes),
    scenario!(tunnel::bigip_tunnel_flannel),
    scenario!(tunnel::bigip_tunnel_flannel_etcd),
    scenario!(faults::unreadable_object_after_crd_rollback),
    scenario!(faults::apiserver_restart_causes_no_spurious_changes),
];

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);

/// Checks that need every scenario to have run, and the registration check.
const PASSWORD_CHECK: &str = "password_never_logged";
const REGISTRATION_CHECK: &str = "every_scenario_is_registered";

/// The outcome of each scenario by name, filled by the runner and awaited by the trials.
#[derive(Default)]
struct Outcomes {
    done: Mutex<HashMap<String, Result<(), String>>>,
    changed: Condvar,
}

impl Outcomes {
    fn put(&self, name: &str, outcome: Result<(), String>) {
        if let Ok(mut done) = self.done.lock() {
            done.insert(name.to_string(), outcome);
        }
        self.changed.notify_all();
    }

    fn wait(&self, name: &str) -> Result<(), Failed> {
        let Ok(mut done) = self.done.lock() else { return Err("outcomes poisoned".into()) };
        loop {
            if let Some(outcome) = done.remove(name) {
                return outcome.map_err(Failed::from);
            }
            done = match self.changed.wait(done) {
                Ok(done) => done,
                Err(_) => return Err("outcomes poisoned".into()),
            };
        }
    }
}

async fn run_one(env: &Env, name: &str, f: ScenarioFn, outcomes: &Outcomes) -> bool {
    let started = Instant::now();
    let result = match tokio::time::timeout(SCENARIO_TIMEOUT, f(env)).await {
        Ok(Ok(())) => {
            println!("    {name}: done in {:.1}s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("timed out after {SCENARIO_TIMEOUT:?}")),
    };
    let ok = result.is_ok();
    outcomes.put(name, result);
    ok
}

/// Runs the selected scenarios on one environment — the concurrent ones together, then the
/// exclusive ones one at a time — and hands each outcome to its trial.
async fn run_selected(
    concurrent: Vec<(&'static str, ScenarioFn)>,
    exclusive: Vec<(&'static str, ScenarioFn)>,
    password_check: bool,
    outcomes: Arc<Outcomes>,
) {
    let started = Instant::now();
    let env = match Env::start().await {
        Ok(env) => env,
        Err(e) => {
            let message = format!("e2e environment failed to start: {e:#}");
            for (name, _) in concurrent.iter().chain(&exclusive) {
                outcomes.put(name, Err(message.clone()));
            }
            outcomes.put(PASSWORD_CHECK, Err(message));
            return;
        }
    };
    eprintln!(
        "e2e: environment up in {:.1}s (logs in {})",
        started.elapsed().as_secs_f64(),
        env.work_dir.path().display()
    );
    let mut all_ok = futures::future::join_all(concurrent.iter().map(|(n, f)| run_one(&env, n, *f, &outcomes)))
        .await
        .iter()
        .all(|ok| *ok);
    for (name, f) in &exclusive {
        all_ok &= run_one(&env, name, *f, &outcomes).await;
    }
    if !all_ok {
        eprintln!("--- operator log (last 60 lines) ---\n{}", harness::tail(&env.operator_log(), 60));
    }
    // Everything printed before the last outcome is handed over: the harness prints its
    // closing `test result:` line as soon as it has them all, and a line of ours written at
    // the same time would be interleaved with it.
    eprintln!(
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
    if password_check {
        let leaked = env.all_operator_logs().contains(harness::BIGIP_PASSWORD);
        outcomes.put(
            PASSWORD_CHECK,
            if leaked { Err("an operator log contains the BIG-IP password".into()) } else { Ok(()) },
        );
    }
}

/// Every `pub async fn NAME(env: &Env) -> Result<()>` in the scenario files is a scenario and
/// must be in CONCURRENT or EXCLUSIVE: a scenario cannot be written and never run.
fn every_scenario_is_registered() -> Result<(), Failed> {
    let dir = harness::repo_root().join("e2e/scenarios");
    let registered: Vec<&str> = CONCURRENT.iter().chain(EXCLUSIVE).map(|(name, _)| *name).collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue; // data/ and the like
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else { continue };
            let Some((name, signature)) = rest.split_once('(') else { continue };
            if signature.starts_with("env: &Env) -> Result<()>") && !registered.contains(&name) {
                missing.push(format!("{}: {name}", path.display()));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("scenarios not in CONCURRENT or EXCLUSIVE (they would never run): {missing:?}").into())
    }
}

fn main() -> std::process::ExitCode {
    bigip_operator::install_crypto_provider();
    let args = Arguments::from_args();
    let outcomes = Arc::new(Outcomes::default());
    let trial = |name: &'static str| {
        let outcomes = outcomes.clone();
        Trial::test(name, move || outcomes.wait(name))
    };
    let mut trials: Vec<Trial> = CONCURRENT.iter().chain(EXCLUSIVE).map(|(name, _)| trial(name)).collect();
    trials.push(trial(PASSWORD_CHECK));
    trials.push(Trial::test(REGISTRATION_CHECK, every_scenario_is_registered));

    let selected = |trial_name: &str| {
        trials.iter().any(|t| t.name() == trial_name && !args.is_filtered_out(t) && !args.is_ignored(t))
    };
    let pick = |list: &'static [(&'static str, ScenarioFn)]| {
        list.iter().filter(|(n, _)| selected(n)).copied().collect::<Vec<_>>()
    };
    let (concurrent, exclusive) = (pick(CONCURRENT), pick(EXCLUSIVE));
    let password_check = selected(PASSWORD_CHECK);
    let runner = (!args.list && (!concurrent.is_empty() || !exclusive.is_empty() || password_check)).then(|| {
        let outcomes = outcomes.clone();
        std::thread::spawn(move || match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(run_selected(concurrent, exclusive, password_check, outcomes)),
            Err(e) => eprintln!("e2e: no tokio runtime: {e}"),
        })
    });
    // The trials only wait for their outcomes: as many threads as trials, so that none waits
    // behind another.
    let args = Arguments { test_threads: Some(args.test_threads.unwrap_or(trials.len())), ..args };
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(runner) = runner {
        // The environment (control plane, operators, simulators) is torn down here.
        let _ = runner.join();
    }
    conclusion.exit_code()
}
