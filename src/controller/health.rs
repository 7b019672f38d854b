//! The operator's HTTP endpoint: Prometheus metrics and liveness/readiness probes.
//!
//! * `/healthz` (liveness) fails when the operator stopped making progress and a restart may
//!   help: a watch or the leader-election loop failing for longer than the stall bound, a
//!   controller loop that ended while the process runs on, or the async runtime not running a
//!   timer for [`RUNTIME_STALL`]. The endpoint is served from its own thread and runtime, so a
//!   wedged main runtime is reported rather than merely timing out. A BIG-IP that is down never
//!   fails it: that is reported by metrics, conditions and Events, and a restart cannot fix it.
//! * `/readyz` (readiness) is ready when this replica does its job: the leader once every
//!   watch cache has completed its first list (and again after each new term's lists), a
//!   standby once it has read the Lease (it is a working candidate; standbys hold no caches,
//!   the leader lists afresh when it takes over). Before that, 503 saying what is missing.
//!
//! Both answer `ok` or a 503 whose body lists the reasons, one per line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// The main runtime must run its heartbeat timer at least this often.
pub const RUNTIME_STALL: Duration = Duration::from_secs(30);

/// What this replica is doing, as far as readiness cares.
#[derive(Debug, Clone)]
enum Role {
    /// Not yet a candidate nor a leader.
    Starting,
    /// Waiting for the Lease; `lease_read` once an attempt got an answer from the apiserver.
    Standby { lease_read: bool },
    /// Leading: the controllers run; ready once their caches are complete.
    Leader { caches_ready: Option<tokio::sync::watch::Receiver<bool>> },
    /// Shutting down after a termination signal.
    Stopping,
}

#[derive(Debug, Clone)]
enum LoopState {
    Running,
    /// Failing since `since`; the last failure at `last`.
    Failing {
        since: Instant,
        last: Instant,
        error: String,
    },
    Stopped,
}

/// A failing loop that has not failed again for this long has recovered: a failing watch
/// retries at least every 5 s (watches.rs) and one attempt gives up after kube's 30 s connect
/// timeout. (A watch resumed after an error yields no event until an object changes, so
/// silence is the only sign of its recovery.)
pub const RECOVERED_AFTER: Duration = Duration::from_secs(40);

impl LoopState {
    /// Failing at `now` for how long, with what error (None: running).
    fn failing_at(&self, now: Instant) -> Option<(Duration, &str)> {
        match self {
            Self::Failing { since, last, error } if now.saturating_duration_since(*last) < RECOVERED_AFTER => {
                Some((now.saturating_duration_since(*since), error))
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
struct State {
    role: Role,
    /// Watches, the lease loop and the controller loops, by name.
    loops: BTreeMap<&'static str, LoopState>,
}

/// What the probes report, fed by the watches, the leader election and the controller loops.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// How long a loop may fail before liveness fails.
    stall_bound: Duration,
    /// Milliseconds since `started` at the last heartbeat of the main runtime.
    heartbeat_ms: AtomicU64,
    state: Mutex<State>,
    /// True once a termination signal arrived (whoever waits for it later still sees it).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Health {
    pub fn new(stall_bound: Duration) -> Self {
        Self {
            started: Instant::now(),
            stall_bound,
            heartbeat_ms: AtomicU64::new(0),
            state: Mutex::new(State { role: Role::Starting, loops: BTreeMap::new() }),
            stop: tokio::sync::watch::channel(false).0,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loop `name` made progress (a watch event, a Lease answer).
    pub fn progressed(&self, name: &'static str) {
        let mut state = self.state();
        if !matches!(state.loops.get(name), Some(LoopState::Running)) {
            state.loops.insert(name, LoopState::Running);
        }
    }

    /// The loop `name` failed; it counts as failing from its first failure until it
    /// progresses again.
    pub fn failed(&self, name: &'static str, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut state = self.state();
        match state.loops.get_mut(name) {
            Some(LoopState::Failing { last, error: last_error, .. })
                if now.saturating_duration_since(*last) < RECOVERED_AFTER =>
            {
                *last = now;
                *last_error = error.to_string();
            }
            _ => {
                state.loops.insert(name, LoopState::Failing { since: now, last: now, error: error.to_string() });
            }
        }
    }

    /// The loop `name` ended although the process goes on.
    pub fn stopped(&self, name: &'static str) {
        self.state().loops.insert(name, LoopState::Stopped);
    }

    /// This replica waits for the Lease (again); the loops of its last term are forgotten.
    pub fn standby(&self) {
        let mut state = self.state();
        state.loops.retain(|name, _| *name == LEASE_LOOP);
        state.role = Role::Standby { lease_read: false };
    }

    /// A leader-election attempt got an answer (held by another replica, or taken).
    pub fn lease_read(&self) {
        let mut state = self.state();
        if let Role::Standby { lease_read } = &mut state.role {
            *lease_read = true;
        }
        if !matches!(state.loops.get(LEASE_LOOP), Some(LoopState::Running)) {
            state.loops.insert(LEASE_LOOP, LoopState::Running);
        }
    }

    /// This replica leads; ready once `caches_ready` says true.
    pub fn leading(&self, caches_ready: tokio::sync::watch::Receiver<bool>) {
        self.state().role = Role::Leader { caches_ready: Some(caches_ready) };
    }

    /// A leader whose controllers have not started their watches yet.
    pub fn leading_starting(&self) {
        self.state().role = Role::Leader { caches_ready: None };
    }

    /// After a termination signal: not ready (no new traffic), still alive.
    pub fn stopping(&self) {
        self.state().role = Role::Stopping;
        self.stop.send_replace(true);
    }

    /// Resolves once [`stopping`](Self::stopping) was called, also when that was earlier.
    pub async fn stop_requested(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    /// The main runtime ran its heartbeat timer.
    fn beat(&self) {
        self.heartbeat_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Ok, or why the operator should be restarted.
    pub fn liveness(&self) -> Result<(), Vec<String>> {
        let now = Instant::now();
        let problems: Vec<String> = self.runtime_problem(now).into_iter().chain(self.loop_problems(now)).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether the main runtime's heartbeat is older than [`RUNTIME_STALL`] at `now`.
    fn runtime_problem(&self, now: Instant) -> Option<String> {
        let since_start = now.saturating_duration_since(self.started);
        let beat = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        let silent = since_start.saturating_sub(beat);
        (silent > RUNTIME_STALL)
            .then(|| format!("the async runtime has not run its heartbeat for {} s", silent.as_secs()))
    }

    /// The loops that stopped, or have been failing for longer than the bound at `now`.
    fn loop_problems(&self, now: Instant) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, loop_state) in &self.state().loops {
            match loop_state {
                LoopState::Running => {}
                LoopState::Failing { .. } => {
                    let Some((failing, error)) = loop_state.failing_at(now) else { continue };
                    if failing > self.stall_bound {
                        problems.push(format!(
                            "{name}: failing for {} s (bound {} s): {error}",
                            failing.as_secs(),
                            self.stall_bound.as_secs()
                        ));
                    }
                }
                LoopState::Stopped => problems.push(format!("{name}: stopped")),
            }
        }
        problems
    }

    /// Ok, or what this replica still waits for before it can do its job.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let state = self.state();
        let problem = match &state.role {
            Role::Starting => "starting".to_string(),
            Role::Stopping => "shutting down".to_string(),
            Role::Standby { lease_read: false } => "standby: the Lease has not been read yet".to_string(),
            Role::Standby { lease_read: true } => return Ok(()),
            Role::Leader { caches_ready: Some(ready) } if *ready.borrow() => return Ok(()),
            Role::Leader { .. } => {
                let pending: Vec<&str> = state
                    .loops
                    .iter()
                    .filter(|(name, s)| **name != LEASE_LOOP && s.failing_at(Instant::now()).is_some())
                    .map(|(name, _)| *name)
                    .collect();
                if pending.is_empty() {
                    "leader: the watch caches have not completed their first list".to_string()
                } else {
                    format!(
                        "leader: the watch caches have not completed their first list (failing: {})",
                        pending.join(", ")
                    )
                }
            }
        };
        Err(vec![problem])
    }
}

/// The name under which the leader election reports to [`Health`].
pub const LEASE_LOOP: &str = "leader-election";

/// A controller loop reported to `health`: when `run` ends, the loop counts as stopped (a
/// liveness failure) unless the process is shutting down.
pub async fn supervised<F: std::future::Future<Output = ()>>(health: &Health, name: &'static str, run: F) {
    health.progressed(name);
    run.await;
    let shutting_down = matches!(health.state().role, Role::Stopping);
    if !shutting_down {
        tracing::error!(controller = name, "controller loop ended");
        health.stopped(name);
    }
}

fn answer(result: Result<(), Vec<String>>) -> (StatusCode, String) {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(problems) => (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n"),
    }
}

/// Starts serving on `addr` from a thread and runtime of its own, and a heartbeat task on the
/// calling (main) runtime; returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let beating = health.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            beating.beat();
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (live, ready) = (health.clone(), health);
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.encode() }))
        .route("/healthz", get(move || async move { answer(live.liveness()) }))
        .route("/readyz", get(move || async move { answer(ready.readiness()) }));
    std::thread::Builder::new().name("health-endpoint".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!(error = %e, "metrics endpoint could not start");
                    return;
                }
            };
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        })
    })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive_at(health: &Health, after: Duration) -> Result<(), Vec<String>> {
        let problems = health.loop_problems(Instant::now() + after);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    #[test]
    fn a_failing_watch_fails_liveness_only_after_the_bound() {
        let health = Health::new(Duration::from_secs(20));
        health.progressed("services");
        health.failed("services", &"connection refused");
        assert!(alive_at(&health, Duration::from_secs(19)).is_ok());
        let problems = alive_at(&health, Duration::from_secs(21)).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("services: failing for 21 s (bound 20 s): connection refused"), "{problems:?}");
        health.progressed("services");
        assert!(alive_at(&health, Duration::from_secs(21)).is_ok());
    }

    #[test]
    fn a_loop_that_stopped_failing_has_recovered() {
        let health = Health::new(Duration::from_secs(10));
        health.failed("secrets", &"connection refused");
        assert!(alive_at(&health, Duration::from_secs(11)).is_err());
        // Resumed without a new event: no failure for RECOVERED_AFTER means it recovered.
        assert!(alive_at(&health, RECOVERED_AFTER + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn repeated_failures_count_from_the_first() {
        let health = Health::new(Duration::from_secs(10));
        health.failed("nodes", &"first");
        std::thread::sleep(Duration::from_millis(20));
        health.failed("nodes", &"second");
        let problems = alive_at(&health, Duration::from_millis(9_990)).unwrap_err();
        assert!(problems[0].contains("second"), "{problems:?}");
    }

    #[test]
    fn a_stopped_controller_loop_fails_liveness_but_not_after_a_termination_signal() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
        let health = Health::new(Duration::from_secs(60));
        runtime.block_on(supervised(&health, "virtualservers-controller", async {}));
        assert_eq!(health.liveness().unwrap_err(), vec!["virtualservers-controller: stopped".to_string()]);

        let health = Health::new(Duration::from_secs(60));
        health.stopping();
        runtime.block_on(supervised(&health, "virtualservers-controller", async {}));
        assert!(health.liveness().is_ok());
    }

    #[test]
    fn a_termination_signal_before_anyone_waits_is_kept() {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap_or_else(|e| panic!("{e}"));
        let health = Health::new(Duration::from_secs(60));
        health.stopping();
        let waited =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(1), health.stop_requested()).await });
        assert!(waited.is_ok(), "a stop requested before the wait was lost");
    }

    #[test]
    fn a_silent_runtime_fails_liveness() {
        let health = Health::new(Duration::from_secs(600));
        health.beat();
        assert_eq!(health.runtime_problem(Instant::now() + Duration::from_secs(5)), None);
        let problem = health.runtime_problem(Instant::now() + RUNTIME_STALL + Duration::from_secs(2));
        assert!(problem.is_some_and(|p| p.starts_with("the async runtime has not run its heartbeat")));
    }

    #[test]
    fn readiness_follows_the_role() {
        let health = Health::new(Duration::from_secs(60));
        assert_eq!(health.readiness().unwrap_err(), vec!["starting".to_string()]);
        health.standby();
        assert!(health.readiness().is_err());
        health.lease_read();
        assert!(health.readiness().is_ok(), "a standby that read the Lease is ready");

        let (caches, receiver) = tokio::sync::watch::channel(false);
        health.leading(receiver);
        health.failed("nodes", &"403");
        let waiting = health.readiness().unwrap_err();
        assert!(waiting[0].contains("failing: nodes"), "{waiting:?}");
        caches.send_replace(true);
        assert!(health.readiness().is_ok());

        // Leadership lost: a standby again, not ready until it reads the Lease again; the
        // watches of the old term no longer count.
        health.standby();
        assert!(health.readiness().is_err());
        assert!(health.liveness().is_ok());
        health.stopping();
        assert_eq!(health.readiness().unwrap_err(), vec!["shutting down".to_string()]);
    }
}
