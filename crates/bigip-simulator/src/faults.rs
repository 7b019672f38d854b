//! Fault injection: slow answers, failing declare requests, expired tokens, refused connections,
//! and tenants rejected without naming the offending application.
//!
//! `refuse_connections` works below HTTP: new connections are closed as soon as they are
//! accepted, and every open connection fails its next read or write, so clients see a transport
//! error rather than an HTTP status. Because that also cuts off `/simulator/faults`, it can only be
//! switched on and off through [`RunningSimulator::set_faults`](super::RunningSimulator::set_faults);
//! `PUT /simulator/faults` rejects it.

use super::model::Tenants;
use std::future::{ready, Ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::accept::Accept;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::declaration::{Outcome, Plan};
use super::state::{lock, SimulatorState};

/// Faults the simulator injects until they are cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Delay before every `/mgmt` answer, in milliseconds.
    pub latency_ms: u64,
    /// The next N AS3 declare requests (POST or DELETE on `/declare…`) answer 503.
    pub fail_with_503: u32,
    /// The next N AS3 declare requests answer 500 (after any pending 503s are used up).
    pub fail_with_500: u32,
    /// The records of the next N asynchronous declarations are dropped as soon as they finish
    /// (the declaration is applied; polling its task answers 404), as AS3 drops its oldest
    /// records when many tasks run.
    pub lose_task_records: u32,
    /// One-shot: every token issued so far expires now. Reads back as `false`.
    pub expire_tokens_now: bool,
    /// Close connections without answering until cleared (Rust API only, see module docs).
    pub refuse_connections: bool,
    /// Every tenant in which a declaration would create or change an Application whose name
    /// contains this text fails (code 422 in its result, previous content kept) with
    /// [`ANONYMOUS_REJECTION`], a message that names no application, until cleared. Tenants
    /// keeping such an Application as it is, and the other tenants of the declaration, are
    /// applied as usual.
    pub reject_tenants_with_application: Option<String>,
    /// Claim to be this BIG-IP release in `/mgmt/tm/sys/version` instead of
    /// [`DEFAULT_TMOS_VERSION`]. Below 14.1 `/mgmt/tm/net/routing/...` is not registered, as
    /// on those releases (dynamic routing was configured with imish only).
    pub tmos_version: Option<String>,
}

/// The release the simulator claims to be unless `tmos_version` says otherwise.
pub const DEFAULT_TMOS_VERSION: &str = "17.1.0";

/// The error of a tenant refused by `reject_tenants_with_application`: like the BIG-IP errors
/// that give no object path, it names no application.
pub const ANONYMOUS_REJECTION: &str =
    "01070734:3: Configuration error: the configuration could not be loaded (rejection injected by the BIG-IP simulator)";

/// Applies `reject_tenants_with_application` (`needle`) to a planned declaration: every tenant
/// in which the plan creates or changes a matching Application is failed and gets back its
/// content from `before` (the tenants before the request). Tenants of the same declaration
/// planned after it were checked against its refused content; the operator posts one tenant per
/// declaration.
pub(super) fn reject_matching_tenants(plan: &mut Plan, before: &Tenants, needle: &str) {
    let application = |tenants: &Tenants, tenant: &str, name: &str| {
        tenants.get(tenant).and_then(|content| content.application(name)).cloned()
    };
    let refused: Vec<String> = plan
        .changes
        .iter()
        .filter(|change| {
            change.applications_after.iter().any(|name| {
                name.contains(needle)
                    && application(&plan.tenants, &change.tenant, name) != application(before, &change.tenant, name)
            })
        })
        .map(|change| change.tenant.clone())
        .collect();
    for tenant in &refused {
        plan.restore_tenant(tenant, before);
        plan.changes.retain(|change| &change.tenant != tenant);
        for result in plan.results.iter_mut().filter(|result| &result.tenant == tenant) {
            result.outcome = Outcome::Failed(ANONYMOUS_REJECTION.to_owned());
        }
    }
}

/// The faults in force, shared by the HTTP layer and the connection acceptor.
#[derive(Debug, Default)]
pub(super) struct FaultState {
    current: Mutex<Faults>,
    refusing: Arc<AtomicBool>,
}

impl FaultState {
    pub(super) fn new(initial: Faults) -> Self {
        let state = Self::default();
        state.replace(initial);
        state
    }

    /// Installs `faults`; returns whether tokens must be expired now (the one-shot flag is not kept).
    pub(super) fn replace(&self, mut faults: Faults) -> bool {
        let expire_tokens_now = std::mem::take(&mut faults.expire_tokens_now);
        self.refusing.store(faults.refuse_connections, Ordering::SeqCst);
        *lock(&self.current) = faults;
        expire_tokens_now
    }

    pub(super) fn snapshot(&self) -> Faults {
        lock(&self.current).clone()
    }

    fn latency(&self) -> Duration {
        Duration::from_millis(lock(&self.current).latency_ms)
    }

    /// Consumes one injected declare failure, 503s first.
    pub(super) fn take_declare_failure(&self) -> Option<StatusCode> {
        let mut faults = lock(&self.current);
        if faults.fail_with_503 > 0 {
            faults.fail_with_503 -= 1;
            Some(StatusCode::SERVICE_UNAVAILABLE)
        } else if faults.fail_with_500 > 0 {
            faults.fail_with_500 -= 1;
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        } else {
            None
        }
    }

    /// Consumes one injected loss of a task record.
    pub(super) fn take_task_record_loss(&self) -> bool {
        let mut faults = lock(&self.current);
        let lose = faults.lose_task_records > 0;
        faults.lose_task_records = faults.lose_task_records.saturating_sub(1);
        lose
    }

    /// The text of `reject_tenants_with_application`, when set (an empty text matches nothing).
    pub(super) fn rejected_application(&self) -> Option<String> {
        lock(&self.current).reject_tenants_with_application.clone().filter(|needle| !needle.is_empty())
    }

    pub(super) fn acceptor(&self) -> RefusingAcceptor {
        RefusingAcceptor { refusing: Arc::clone(&self.refusing) }
    }
}

/// Middleware delaying every `/mgmt` answer by the configured latency.
pub(super) async fn delay_answers(State(sim): State<SimulatorState>, request: Request, next: Next) -> Response {
    let latency =
        if request.uri().path().starts_with("/mgmt/") { sim.shared().faults.latency() } else { Duration::ZERO };
    let is_declare = request.method() == axum::http::Method::POST
        && request.uri().path().starts_with("/mgmt/shared/appsvcs/declare");
    let mut in_flight = is_declare.then(|| DeclareInFlight::enter(&sim));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = next.run(request).await;
    if let Some(declare) = in_flight.as_mut() {
        declare.answered = true;
    }
    response
}

/// Counts a declaration POST from its arrival until its answer is ready, or until the client
/// goes away first (the request's future is dropped then: the declaration was abandoned).
struct DeclareInFlight {
    sim: SimulatorState,
    answered: bool,
}

impl DeclareInFlight {
    fn enter(sim: &SimulatorState) -> Self {
        sim.shared().counts.declares_in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self { sim: sim.clone(), answered: false }
    }
}

impl Drop for DeclareInFlight {
    fn drop(&mut self) {
        let counts = &self.sim.shared().counts;
        counts.declares_in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if !self.answered {
            counts.declares_abandoned.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Accepts connections unless `refuse_connections` is on, and wraps them so that an open
/// connection fails once it is switched on.
#[derive(Clone, Debug)]
pub(super) struct RefusingAcceptor {
    refusing: Arc<AtomicBool>,
}

impl<I, S> Accept<I, S> for RefusingAcceptor {
    type Stream = RefusableStream<I>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        if self.refusing.load(Ordering::SeqCst) {
            // Dropping the stream closes the connection before any byte is exchanged.
            return ready(Err(refused()));
        }
        ready(Ok((RefusableStream { inner: stream, refusing: Arc::clone(&self.refusing) }, service)))
    }
}

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection refused by fault injection")
}

/// A connection whose reads and writes fail while `refuse_connections` is on, so the HTTP
/// server drops it without answering.
#[derive(Debug)]
pub(super) struct RefusableStream<I> {
    inner: I,
    refusing: Arc<AtomicBool>,
}

impl<I> RefusableStream<I> {
    fn refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for RefusableStream<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusing() {
            return Poll::Ready(Err(refused()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for RefusableStream<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.refusing() {
            return Poll::Ready(Err(refused()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusing() {
            return Poll::Ready(Err(refused()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::checks::ListenerIndex;
    use super::super::declaration::{declared_contents, plan_deploy, Working};

    fn deploy_all(current: Working, adc: &serde_json::Map<String, serde_json::Value>) -> Plan {
        plan_deploy(current, adc, declared_contents(adc, None), true)
    }
    use super::super::model::Tenant;
    use super::*;
    use serde_json::Value;
    use std::sync::Arc;

    #[test]
    fn declare_failures_are_counted_down_503_first() {
        let faults = FaultState::new(Faults { fail_with_503: 1, fail_with_500: 1, ..Faults::default() });
        assert_eq!(faults.take_declare_failure(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(faults.take_declare_failure(), Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(faults.take_declare_failure(), None);
    }

    #[test]
    fn expire_tokens_now_is_one_shot() {
        let faults = FaultState::default();
        assert!(faults.replace(Faults { expire_tokens_now: true, ..Faults::default() }));
        assert!(!faults.snapshot().expire_tokens_now);
    }

    fn tenant(application: &str, address: &str) -> Value {
        serde_json::json!({"class": "Tenant", application: {"class": "Application",
            "vs": {"class": "Service_HTTP", "virtualAddresses": [address], "pool": "p"},
            "p": {"class": "Pool"}}})
    }

    fn declaration(tenants: &[(&str, Value)]) -> serde_json::Map<String, Value> {
        let mut adc = serde_json::Map::new();
        adc.insert("class".to_owned(), serde_json::json!("ADC"));
        for (name, content) in tenants {
            adc.insert((*name).to_owned(), content.clone());
        }
        adc
    }

    fn deployed(tenants: &[(&str, Value)]) -> Working {
        let tenants: Tenants =
            tenants.iter().map(|(name, value)| ((*name).to_owned(), Arc::new(Tenant::from_value(value)))).collect();
        Working { listeners: ListenerIndex::of(&tenants), tenants, route_domains: Default::default() }
    }

    #[test]
    fn tenants_with_a_matching_application_are_rejected_anonymously_and_keep_their_content() {
        let before = deployed(&[("T1", tenant("old_app", "10.0.0.1"))]);
        let adc = declaration(&[("T1", tenant("bad_app", "10.0.0.1")), ("T2", tenant("good_app", "10.0.0.2"))]);
        let mut plan = deploy_all(before.clone(), &adc);
        reject_matching_tenants(&mut plan, &before.tenants, "bad");

        assert_eq!(plan.tenants["T1"], before.tenants["T1"], "the refused tenant keeps its previous content");
        assert_eq!(plan.tenants["T2"].to_value(), tenant("good_app", "10.0.0.2"), "the other tenant is applied");
        assert_eq!(plan.changes.iter().map(|c| c.tenant.as_str()).collect::<Vec<_>>(), ["T2"]);
        let t1 = plan.results.iter().find(|r| r.tenant == "T1").expect("result for T1");
        assert_eq!(t1.outcome, Outcome::Failed(ANONYMOUS_REJECTION.to_owned()));
        assert!(!ANONYMOUS_REJECTION.contains("bad_app") && !ANONYMOUS_REJECTION.contains("/T1/"));

        // A tenant new to the BIG-IP is not created.
        let mut plan = deploy_all(Working::default(), &declaration(&[("T3", tenant("bad", "10.0.0.3"))]));
        reject_matching_tenants(&mut plan, &Tenants::new(), "bad");
        assert!(plan.tenants.is_empty() && plan.changes.is_empty());

        // A matching Application kept as it is does not fail its tenant.
        let mut kept = tenant("bad_app", "10.0.0.1");
        kept["other"] = tenant("other", "10.0.0.9")["other"].clone();
        let before = deployed(&[("T1", tenant("bad_app", "10.0.0.1"))]);
        let mut plan = deploy_all(before.clone(), &declaration(&[("T1", kept.clone())]));
        reject_matching_tenants(&mut plan, &before.tenants, "bad");
        assert_eq!(plan.tenants["T1"].to_value(), kept);
    }

    #[test]
    fn an_empty_rejection_text_matches_nothing() {
        let faults =
            FaultState::new(Faults { reject_tenants_with_application: Some(String::new()), ..Faults::default() });
        assert_eq!(faults.rejected_application(), None);
        faults.replace(Faults { reject_tenants_with_application: Some("bad".into()), ..Faults::default() });
        assert_eq!(faults.rejected_application().as_deref(), Some("bad"));
    }

    #[test]
    fn faults_json_is_camel_case_and_partial_bodies_are_accepted() {
        let parsed: Faults = serde_json::from_str(r#"{"failWith503": 2}"#).expect("valid faults JSON");
        assert_eq!(parsed.fail_with_503, 2);
        let json = serde_json::to_value(Faults { latency_ms: 5, ..Faults::default() }).expect("serializable");
        assert_eq!(json["latencyMs"], 5);
        assert_eq!(json["refuseConnections"], false);
        let parsed: Faults =
            serde_json::from_str(r#"{"rejectTenantsWithApplication": "bad"}"#).expect("valid faults JSON");
        assert_eq!(parsed.reject_tenants_with_application.as_deref(), Some("bad"));
    }
}
