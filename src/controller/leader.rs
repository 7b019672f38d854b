//! Leader election on a `coordination.k8s.io/v1` Lease: only the leader writes to the BIG-IP
//! and to status.
//!
//! The algorithm is client-go's (`leaderelection`), which every Kubernetes controller uses:
//!
//! * A candidate takes the Lease when it is free, or when the holder's record has not changed
//!   for `lease_duration` **as measured by the candidate's own clock** since it first saw that
//!   record, so clock skew between nodes cannot make two replicas leaders.
//! * Every write is an update with the Lease's resourceVersion, so of two candidates racing
//!   for a free Lease exactly one wins (the other gets 409 Conflict).
//! * The leader renews every `retry_period`; when it has not renewed successfully for
//!   `renew_deadline` (shorter than `lease_duration`) it stops leading *before* anyone else
//!   may take over. That is why this is written here rather than taken from
//!   `kube-lease-manager`: that crate keeps reporting leadership while renewals fail, so a
//!   leader cut off from the apiserver would keep writing to the BIG-IP after another replica
//!   took over.
//! * On shutdown the leader releases the Lease (holder cleared, duration 1 s), so a standby
//!   takes over at once instead of after `lease_duration`.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tracing::{debug, info, warn};

/// Where the Lease lives and how long leadership lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// Unique per replica: the pod name in a cluster.
    pub identity: String,
    /// How long a standby waits after the last renewal it saw before taking over.
    pub lease_duration: Duration,
    /// The leader steps down when it could not renew for this long. Must be shorter than
    /// `lease_duration`.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby retries.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// A leader must step down before a standby may take over.
    pub fn validate(&self) -> Result<(), LeaderElectionError> {
        if self.renew_deadline >= self.lease_duration || self.retry_period >= self.renew_deadline {
            return Err(LeaderElectionError::InvalidTimings {
                renew_deadline: self.renew_deadline,
                lease_duration: self.lease_duration,
            });
        }
        Ok(())
    }

    /// Defaults that fail over in under 15 s after a leader dies without releasing:
    /// at most `lease_duration` (10 s) plus one `retry_period` (2 s).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(10),
            renew_deadline: Duration::from_secs(7),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error("retry period < renew deadline ({renew_deadline:?}) < lease duration ({lease_duration:?}) must hold")]
    InvalidTimings { renew_deadline: Duration, lease_duration: Duration },
    #[error("Lease {namespace}/{name}: {source}")]
    Api { namespace: String, name: String, source: kube::Error },
}

/// What the Lease says, as far as the election cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeaseRecord {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    duration: Duration,
    transitions: i32,
    acquire_time: Option<Timestamp>,
}

impl LeaseRecord {
    fn of(lease: &Lease, default_duration: Duration) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renew_time: spec.renew_time.map(|t| t.0),
            duration: spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .unwrap_or(default_duration),
            transitions: spec.lease_transitions.unwrap_or(0),
            acquire_time: spec.acquire_time.map(|t| t.0),
        }
    }
}

/// Whether a candidate may take a Lease: pure, so that the rule is tested without a cluster.
///
/// `observed_for` is how long the candidate has seen this exact record unchanged.
fn may_take(record_holder: Option<&str>, record_duration: Duration, observed_for: Duration, me: &str) -> bool {
    match record_holder {
        None => true,
        Some(holder) if holder == me => true,
        Some(_) => observed_for >= record_duration,
    }
}

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The last record seen, and when (local monotonic clock) it was first seen.
    observed: Option<(LeaseRecord, Instant)>,
    /// When this replica last renewed successfully while leading.
    last_renewed: Option<Instant>,
    /// Where each attempt's outcome is reported (the liveness and readiness probes).
    health: Option<std::sync::Arc<super::health::Health>>,
}

impl LeaderElector {
    pub fn new(client: Client, settings: LeaseSettings) -> Result<Self, LeaderElectionError> {
        settings.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            last_renewed: None,
            health: None,
        })
    }

    /// Reports every attempt to `health`: an answer makes a standby ready, failures count
    /// against liveness.
    pub fn reporting_to(mut self, health: std::sync::Arc<super::health::Health>) -> Self {
        self.health = Some(health);
        self
    }

    fn report(&self, attempt: &Result<bool, LeaderElectionError>) {
        let Some(health) = &self.health else { return };
        match attempt {
            Ok(_) => health.lease_read(),
            Err(e) => health.failed(super::health::LEASE_LOOP, e),
        }
    }

    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    fn api_error(&self, source: kube::Error) -> LeaderElectionError {
        LeaderElectionError::Api {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            source,
        }
    }

    fn spec_for_me(&self, previous: Option<&LeaseRecord>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let me = self.settings.identity.clone();
        let already_mine = previous.and_then(|r| r.holder.as_deref()) == Some(me.as_str());
        LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: match previous {
                Some(r) if already_mine => r.acquire_time.map(MicroTime),
                _ => Some(now.clone()),
            },
            renew_time: Some(now),
            lease_transitions: Some(match previous {
                None => 0,
                Some(r) if already_mine || r.holder.is_none() => r.transitions,
                Some(r) => r.transitions.saturating_add(1),
            }),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew. Ok(true): this replica leads until at least
    /// `renew_deadline` from now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaderElectionError> {
        let name = self.settings.name.clone();
        let current = match self.api.get_opt(&name).await.map_err(|e| self.api_error(e))? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() },
                    spec: Some(self.spec_for_me(None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.last_renewed = Some(Instant::now());
                        Ok(true)
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(e) => Err(self.api_error(e)),
                };
            }
        };
        let record = LeaseRecord::of(&current, self.settings.lease_duration);
        let first_seen = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                let now = Instant::now();
                self.observed = Some((record.clone(), now));
                now
            }
        };
        if !may_take(record.holder.as_deref(), record.duration, first_seen.elapsed(), &self.settings.identity) {
            debug!(holder = ?record.holder, "the Lease is held by another replica");
            return Ok(false);
        }
        let mut updated = current.clone();
        updated.spec = Some(self.spec_for_me(Some(&record)));
        // `replace` sends the resourceVersion read above: a concurrent write makes this a 409.
        match self.api.replace(&name, &PostParams::default(), &updated).await {
            Ok(_) => {
                self.last_renewed = Some(Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.api_error(e)),
        }
    }

    /// Waits until this replica leads. Errors are logged and retried.
    pub async fn acquire(&mut self) {
        loop {
            let attempt = self.try_acquire_or_renew().await;
            self.report(&attempt);
            match attempt {
                Ok(true) => {
                    info!(identity = %self.settings.identity, lease = %self.settings.name, "became the leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election: acquiring failed; retrying"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// While leading: renews every `retry_period`; returns when leadership is lost (another
    /// replica holds the Lease, or no renewal succeeded for `renew_deadline`).
    pub async fn hold(&mut self) {
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            let deadline = self.settings.renew_deadline;
            let attempt = tokio::time::timeout(deadline, self.try_acquire_or_renew()).await;
            match &attempt {
                Ok(answer) => self.report(answer),
                Err(_) => {
                    if let Some(health) = &self.health {
                        health.failed(super::health::LEASE_LOOP, &"renewing the Lease timed out");
                    }
                }
            }
            match attempt {
                Ok(Ok(true)) => continue,
                Ok(Ok(false)) => {
                    warn!(identity = %self.settings.identity, "lost the Lease to another replica");
                    return;
                }
                Ok(Err(e)) => warn!(error = %e, "leader election: renewing failed"),
                Err(_) => warn!("leader election: renewing timed out"),
            }
            if self.last_renewed.is_none_or(|at| at.elapsed() >= deadline) {
                warn!(identity = %self.settings.identity, ?deadline, "could not renew the Lease in time; stepping down");
                return;
            }
        }
    }

    /// Gives the Lease up if this replica holds it, so a standby takes over at once.
    pub async fn release(&mut self) -> Result<(), LeaderElectionError> {
        let name = self.settings.name.clone();
        let Some(current) = self.api.get_opt(&name).await.map_err(|e| self.api_error(e))? else { return Ok(()) };
        let record = LeaseRecord::of(&current, self.settings.lease_duration);
        if record.holder.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        let mut released = current.clone();
        released.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(Timestamp::now())),
            acquire_time: record.acquire_time.map(MicroTime),
            lease_transitions: Some(record.transitions),
            ..LeaseSpec::default()
        });
        self.api.replace(&name, &PostParams::default(), &released).await.map_err(|e| self.api_error(e))?;
        self.last_renewed = None;
        info!(identity = %self.settings.identity, lease = %name, "released the Lease");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn a_free_lease_may_be_taken_at_once() {
        assert!(may_take(None, TEN, Duration::ZERO, "b"));
    }

    #[test]
    fn the_holder_may_always_renew() {
        assert!(may_take(Some("a"), TEN, Duration::ZERO, "a"));
    }

    #[test]
    fn another_holder_is_respected_until_its_record_is_stale_by_our_clock() {
        assert!(!may_take(Some("a"), TEN, Duration::from_secs(9), "b"));
        assert!(may_take(Some("a"), TEN, TEN, "b"));
    }

    #[test]
    fn timings_must_let_the_leader_step_down_first() {
        let mut settings = LeaseSettings::new("ns", "lease", "me");
        assert!(settings.validate().is_ok());
        settings.renew_deadline = settings.lease_duration;
        assert!(matches!(settings.validate(), Err(LeaderElectionError::InvalidTimings { .. })));
        settings.renew_deadline = settings.retry_period;
        assert!(settings.validate().is_err());
    }
}
