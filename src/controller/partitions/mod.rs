//! Posting partitions (AS3 tenants) to the BIG-IP: one tenant per post, only when its rendered
//! content changed, never two posts of the same tenant at once.
//!
//! Isolation — one bad application never breaks its partition: before posting, each application
//! is validated alone against the AS3 schema and left out when invalid (pre-flight); when the
//! BIG-IP rejects the tenant and names applications, they are left out and the rest re-posted;
//! when it names none, the culprits are found by posting parts of the partition ([`Bisection`]).
//!
//! This module holds the syncer and a partition's sync; its concerns each have a file:
//! `writer.rs` (every post and how AS3's answer is judged), `preflight.rs`, `isolation.rs`,
//! `deletion_guard.rs` and `ownership.rs` (whose tenants these are, and drift).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::app_set::{AppChanges, AppSet, TenantDigest};
use crate::as3::schema::validate_declaration;

use crate::as3::{
    render_empty_tenant, render_request, render_tenant, tenant_hash, Ownership, RenderedApplication, TenantOwner,
};
use crate::bigip::{As3Api, BigIpError, TenantSummary};
use crate::metrics::Metrics;
use crate::model::DesiredApplication;
use crate::status::{FailureReason, ProgrammingState};

mod deletion_guard;
mod isolation;
mod live;
mod ownership;
mod preflight;
mod writer;

pub use deletion_guard::{deletion_needs_confirmation, DeletionConfirmation};
pub use isolation::applications_named_in;
use isolation::{rejection_message, MAX_ISOLATION_ROUNDS};
use preflight::Preflight;
use writer::PerApplicationResult;
#[cfg(test)]
use {
    ownership::{summary_applications, summary_digest},
    preflight::{preflight_check, PreflightVerdicts},
};

pub use super::bisection::{
    bisection_posts_per_culprit, Bisection, BisectionStep, BisectionVerdict, MAX_BISECTION_POSTS,
};

/// The result of syncing one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The tenant as a whole: Programmed when the BIG-IP holds every application not excluded.
    pub state: ProgrammingState,
    /// Applications whose desired version the BIG-IP does not hold, with why: invalid before
    /// posting, rejected by the BIG-IP, or not isolated. Everything else in the partition stays
    /// programmed: one bad object never takes its partition down.
    pub excluded: BTreeMap<String, ProgrammingState>,
    /// This sync re-posted a tenant that had been changed on the BIG-IP out of band.
    pub repaired_drift: bool,
    /// The BIG-IP accepted at least one post of this sync (it did not hold the desired state).
    pub posted: bool,
}

impl SyncOutcome {
    fn whole(state: ProgrammingState) -> Self {
        Self { state, excluded: BTreeMap::new(), repaired_drift: false, posted: false }
    }

    /// What happened to one application of the partition.
    pub fn for_application(&self, application: &str) -> ProgrammingState {
        self.excluded.get(application).cloned().unwrap_or_else(|| self.state.clone())
    }

    /// Deterministic outcomes can be reused while the desired tenant does not change;
    /// transport failures (unreachable, busy), also of single applications, must be retried.
    fn is_final(&self) -> bool {
        let settled = |state: &ProgrammingState| match state {
            ProgrammingState::Programmed { .. } => true,
            ProgrammingState::Failed { reason, .. } => reason.is_rejection(),
            ProgrammingState::NotAttempted => false,
        };
        settled(&self.state) && self.excluded.values().all(settled)
    }
}

#[derive(Debug, Default, Clone)]
struct PartitionRecord {
    /// Digest of the tenant the BIG-IP is known to hold (posted successfully, or read back).
    deployed_hash: Option<TenantDigest>,
    /// The applications the BIG-IP is known to hold in the tenant (read back: hashes only).
    deployed_applications: AppSet,
    /// The tenant is this operator's: read back with its label, or posted by it. A tenant
    /// that is not is never posted to unless its partition is adopted.
    owned: bool,
    /// Found changed on the BIG-IP out of band and not yet repaired.
    drifted: bool,
    /// Posts to this partition the BIG-IP accepted so far (see [`PartitionSyncer::detect_drift`]).
    accepted: u64,
    /// The last sync with a final outcome, so that an unchanged tenant (including one with
    /// rejected applications) is not posted again on every reconcile.
    last: Option<LastSync>,
    /// What pre-flight checked last, so that only new or changed applications are validated
    /// again.
    preflight: Preflight,
    /// The last desired list and its set: the next list's set is derived from it, touching
    /// only the applications that differ (see [`AppSet::follow_list`]).
    desired: Option<(PartitionApps, AppSet)>,
}

/// A sync whose outcome holds while the desired applications stay the same.
#[derive(Debug, Clone)]
struct LastSync {
    /// [`tenant_digest`] of the desired tenant.
    digest: TenantDigest,
    outcome: SyncOutcome,
    at: Instant,
    /// The very list of applications it was computed from, when no application of an
    /// unreadable object was added: the same list (one snapshot of the desired state serves
    /// many reconciles) is recognised without hashing anything.
    list: Option<PartitionApps>,
}

/// What the BIG-IP's tenant is known to hold while a sync runs.
#[derive(Debug, Default)]
struct Held {
    /// Digest of the tenant ([`tenant_digest`]); None when absent, or unknown after drift.
    hash: Option<TenantDigest>,
    /// Its applications (read back: hashes only).
    apps: AppSet,
    /// Posts of this sync the BIG-IP accepted.
    accepted_posts: usize,
}

/// An unchanged tenant whose applications were rejected is tried again after this long: what
/// the BIG-IP objected to (a foreign virtual on the same address, a missing profile) may have
/// been fixed there.
const REJECTION_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Rendered applications by name.
pub type Apps = AppSet;

/// The rendered applications of a partition, sorted by name, shared by everyone who reads the
/// same desired state.
pub type PartitionApps = Arc<Vec<Arc<RenderedApplication>>>;

/// A digest of a tenant object from the content hashes of its entries (its Applications and
/// its tenant-level properties), so that it can also be kept from hashes already known
/// without serialising the tenant (see `PartitionSyncer::digest_of`).
pub fn tenant_digest(tenant: &Value) -> TenantDigest {
    let entries: Vec<(&str, String)> = tenant
        .as_object()
        .map(|objects| objects.iter().map(|(key, value)| (key.as_str(), tenant_hash(value))).collect())
        .unwrap_or_default();
    TenantDigest::of(entries.iter().map(|(key, hash)| (*key, hash.as_str())))
}

/// The digest of a tenant's own properties (class, label, …) without its applications.
fn header_digest(owner: &Ownership) -> TenantDigest {
    tenant_digest(&render_tenant::<DesiredApplication>(&[], owner))
}

/// [`tenant_digest`] of the tenant [`tenant_of`] makes of these applications with `owner`'s
/// label, from the applications' digest: O(1).
fn digest_with_header(header: TenantDigest, empty: TenantDigest, apps: &AppSet) -> TenantDigest {
    if apps.is_empty() {
        empty
    } else {
        header.combined(apps.digest())
    }
}

/// The Application objects of a tenant object as rendered applications (hashed here).
fn rendered_objects(tenant: &Value) -> Apps {
    application_objects(tenant)
        .into_iter()
        .map(|(name, value)| Arc::new(RenderedApplication::from_value(name, &value)))
        .collect()
}

/// The Application objects of a tenant object, by name.
fn application_objects(tenant: &Value) -> BTreeMap<String, Value> {
    tenant
        .as_object()
        .map(|objects| {
            objects
                .iter()
                .filter(|(_, v)| v.get("class").and_then(Value::as_str) == Some("Application"))
                .map(|(name, app)| (name.clone(), app.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The Tenant object holding these rendered applications, labelled with its owner: what
/// [`render_tenant`] makes of the applications they were rendered from. Without applications,
/// the empty tenant that removes the partition. Serialising it writes each application's
/// JSON text as it is kept: no second copy of the tenant as a JSON tree.
fn tenant_of<'a>(applications: &'a Apps, owner: &Ownership) -> TenantJson<'a> {
    let header =
        if applications.is_empty() { render_empty_tenant() } else { render_tenant::<DesiredApplication>(&[], owner) };
    TenantJson { header, applications }
}

/// See [`tenant_of`].
pub(super) struct TenantJson<'a> {
    /// The tenant's own properties (`class`, owner `label`, `remark`).
    header: Value,
    applications: &'a Apps,
}

impl serde::Serialize for TenantJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.header.as_object().into_iter().flatten() {
            map.serialize_entry(key, value)?;
        }
        for (name, application) in self.applications.iter() {
            map.serialize_entry(name, application.json())?;
        }
        map.end()
    }
}

/// The operator's knowledge of what each partition on the BIG-IP holds.
pub struct PartitionSyncer<B: As3Api> {
    bigip: Arc<B>,
    bigip_url: String,
    owner: Ownership,
    /// Partitions whose existing tenant may be taken over although another owner made it.
    adopt: BTreeSet<String>,
    /// Posts deleting more than this share of a tenant's applications need confirmation.
    max_deletion_share: f64,
    confirmation: Option<Arc<dyn DeletionConfirmation>>,
    records: Mutex<BTreeMap<String, PartitionRecord>>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Held for every write to the BIG-IP: AS3 runs one declaration at a time and answers 503
    /// to a second one, so this operator never sends two at once.
    writer: Mutex<()>,
    /// Use AS3's per-application API where the BIG-IP offers it (None: not asked yet).
    per_application: PerApplication,
    /// [`tenant_digest`] of the tenant's own properties, and of the empty tenant.
    header_digest: TenantDigest,
    empty_digest: TenantDigest,
    metrics: Arc<Metrics>,
    /// What the BIG-IP said about objects `bigip:` references name.
    device_objects: preflight::DeviceObjectCache,
}

/// Whether changes go out through AS3's per-application API.
#[derive(Debug)]
enum PerApplication {
    Off,
    /// When the BIG-IP offers it; `known` caches its answer.
    WhenOffered {
        known: std::sync::Mutex<Option<bool>>,
    },
}

/// A change of at most this many applications (created or replaced) goes out through the
/// per-application API; more go in one whole-tenant post.
pub const PER_APPLICATION_MAX_CHANGED: usize = 100;
/// A change removing at most this many applications deletes them one by one through the
/// per-application API; more go in one whole-tenant post.
pub const PER_APPLICATION_MAX_REMOVED: usize = 10;

impl<B: As3Api> PartitionSyncer<B> {
    /// A syncer that owns the tenants labelled for `owner`, adopts none and deletes without
    /// confirmation (see [`Self::with_deletion_guard`] and [`Self::adopting`]).
    pub fn new(bigip: Arc<B>, bigip_url: impl Into<String>, owner: Ownership, metrics: Arc<Metrics>) -> Self {
        Self {
            bigip,
            bigip_url: bigip_url.into(),
            header_digest: header_digest(&owner),
            empty_digest: tenant_digest(&render_empty_tenant()),
            owner,
            adopt: BTreeSet::new(),
            max_deletion_share: 1.0,
            confirmation: None,
            records: Mutex::new(BTreeMap::new()),
            device_objects: Default::default(),
            locks: Mutex::new(HashMap::new()),
            writer: Mutex::new(()),
            per_application: PerApplication::WhenOffered { known: std::sync::Mutex::new(None) },
            metrics,
        }
    }

    /// Whether to send small changes through AS3's per-application API when the BIG-IP offers
    /// it (the default), or always post whole tenants.
    pub fn per_application_posts(mut self, enabled: bool) -> Self {
        self.per_application = if enabled {
            PerApplication::WhenOffered { known: std::sync::Mutex::new(None) }
        } else {
            PerApplication::Off
        };
        self
    }

    /// Lets these partitions' existing tenants be taken over on the first post.
    pub fn adopting(mut self, partitions: impl IntoIterator<Item = String>) -> Self {
        self.adopt = partitions.into_iter().collect();
        self
    }

    /// Holds back posts that would delete more than `max_share` (0.0–1.0) of a tenant's
    /// applications until `confirmation` says they really are gone.
    pub fn with_deletion_guard(mut self, max_share: f64, confirmation: Arc<dyn DeletionConfirmation>) -> Self {
        self.max_deletion_share = max_share.clamp(0.0, 1.0);
        self.confirmation = Some(confirmation);
        self
    }

    async fn partition_lock(&self, partition: &str) -> Arc<Mutex<()>> {
        self.locks.lock().await.entry(partition.to_string()).or_default().clone()
    }

    /// [`tenant_digest`] of the tenant these applications make: O(1).
    fn digest_of(&self, applications: &Apps) -> TenantDigest {
        digest_with_header(self.header_digest, self.empty_digest, applications)
    }

    /// The set of a desired list, derived from the last one of the partition (see
    /// [`AppSet::follow_list`]).
    async fn apps_of_list(&self, partition: &str, list: &PartitionApps) -> Apps {
        let mut records = self.records.lock().await;
        let previous = records.get(partition).and_then(|record| record.desired.as_ref());
        let set = match previous {
            Some((previous_list, previous)) if Arc::ptr_eq(previous_list, list) => return previous.clone(),
            Some((previous_list, previous)) => AppSet::follow_list(previous, previous_list, list),
            None => list.iter().cloned().collect(),
        };
        if !set.is_empty() || records.contains_key(partition) {
            records.entry(partition.to_string()).or_default().desired = Some((list.clone(), set.clone()));
        }
        set
    }

    fn programmed(&self, partition: &str) -> ProgrammingState {
        ProgrammingState::Programmed { partition: partition.to_string(), bigip: self.bigip_url.clone() }
    }

    /// Makes the BIG-IP's tenant `partition` hold exactly `applications`, or as many of them as
    /// it accepts.
    ///
    /// Posts nothing when the rendered tenant equals the one last deployed; an empty list
    /// removes the tenant, but only one this operator deployed. Applications that fail the
    /// pre-flight schema check are never posted. When AS3 rejects the tenant and names the
    /// offending applications, the tenant is posted again without them; when it names none,
    /// they are found by [`Bisection`]. Every post passes the deletion guard with what that post
    /// really removes.
    pub async fn sync(&self, partition: &str, applications: &[DesiredApplication]) -> SyncOutcome {
        self.sync_current(partition, || applications.to_vec(), &BTreeSet::new()).await
    }

    /// [`Self::sync`] with the applications that `desired` returns once this sync holds the
    /// partition: the desired state is read at post time, never before. A snapshot taken
    /// before waiting for the partition could be older than the one a concurrent sync just
    /// posted, and posting it would revert the BIG-IP until the next resync (and drift checks,
    /// which compare with what was posted, would not notice).
    ///
    /// `kept_as_deployed` names applications whose source object cannot be read (see
    /// controller/unreadable.rs): one the BIG-IP holds in this partition and `desired` lacks is
    /// posted again exactly as the BIG-IP has it, never removed.
    pub async fn sync_current(
        &self,
        partition: &str,
        desired: impl FnOnce() -> Vec<DesiredApplication> + Send,
        kept_as_deployed: &BTreeSet<String>,
    ) -> SyncOutcome {
        let rendered = || {
            let mut apps: Vec<Arc<RenderedApplication>> =
                desired().iter().map(|app| Arc::new(RenderedApplication::of(app))).collect();
            apps.sort_by(|a, b| a.name.cmp(&b.name));
            Arc::new(apps)
        };
        self.sync_rendered(partition, rendered, kept_as_deployed).await
    }

    /// [`Self::sync_current`] with applications already rendered (the controller renders each
    /// version of an application once, see controller/desired.rs). When the applications are
    /// those of the last sync — compared by their content hashes, without building the tenant
    /// — and that sync's outcome still stands, nothing is done at all.
    pub async fn sync_rendered(
        &self,
        partition: &str,
        desired: impl FnOnce() -> PartitionApps + Send,
        kept_as_deployed: &BTreeSet<String>,
    ) -> SyncOutcome {
        let lock = self.partition_lock(partition).await;
        let _serialised = lock.lock().await;
        let applications = desired();

        let kept_missing = self.kept_missing(partition, kept_as_deployed, &applications).await;
        let list = kept_missing.is_empty().then(|| applications.clone());
        if let Some(list) = &list {
            if let Some(outcome) =
                self.last_outcome_if(partition, |last| last.list.as_ref().is_some_and(|l| Arc::ptr_eq(l, list))).await
            {
                self.metrics.as3_posts_skipped.inc();
                return outcome;
            }
        }
        let mut rendered: Apps = self.apps_of_list(partition, &applications).await;
        if let Err(failure) = self.keep_as_deployed(partition, &kept_missing, &mut rendered).await {
            return SyncOutcome::whole(failure);
        }
        let digest = self.digest_of(&rendered);
        if let Some(outcome) = self.last_outcome_if(partition, |last| last.digest == digest).await {
            if let Some(last) = self.records.lock().await.get_mut(partition).and_then(|r| r.last.as_mut()) {
                last.list = list;
            }
            self.metrics.as3_posts_skipped.inc();
            return outcome;
        }
        let programmed = self.programmed(partition);
        let (mut held, drifted) = {
            let records = self.records.lock().await;
            let record = records.get(partition);
            let deployed = record.and_then(|r| r.deployed_hash);
            let owned = record.is_some_and(|r| r.owned);
            if rendered.is_empty() && (deployed.is_none() || !owned) && !record.is_some_and(|r| r.drifted) {
                // Never deployed by us (or already removed): nothing to remove.
                return SyncOutcome::whole(programmed);
            }
            let held = Held {
                hash: deployed,
                apps: record.map(|r| r.deployed_applications.clone()).unwrap_or_default(),
                accepted_posts: 0,
            };
            (held, record.is_some_and(|r| r.drifted))
        };

        if let Err(refused) = self.may_write(partition).await {
            warn!(partition, "not posting: {refused:?}");
            return SyncOutcome::whole(refused);
        }

        // A tenant the BIG-IP holds exactly as desired was accepted as it is: nothing to check.
        let invalid =
            if held.hash == Some(digest) { BTreeMap::new() } else { self.preflight(partition, &rendered).await };
        let mut candidates = rendered;
        let mut excluded = BTreeMap::new();
        for (name, failure) in invalid {
            candidates.remove(&name);
            warn!(partition, application = %name, ?failure, "not posting an application pre-flight refused");
            excluded.insert(name, failure);
        }

        let mut state = ProgrammingState::NotAttempted;
        for round in 0..MAX_ISOLATION_ROUNDS {
            // First through the per-application API where it applies; a rejection there is
            // narrowed down like one of the whole tenant (the culprits are among the
            // applications sent).
            let per_application = if round == 0 && !drifted {
                self.post_applications(partition, &candidates, &mut held).await
            } else {
                PerApplicationResult::NotApplicable
            };
            let posted = match per_application {
                PerApplicationResult::Done => Ok(()),
                PerApplicationResult::Failed(failure) => Err(failure),
                PerApplicationResult::NotApplicable => self.post_guarded(partition, &candidates, &mut held).await,
            };
            let failure = match posted {
                Ok(()) => {
                    state = programmed.clone();
                    break;
                }
                Err(failure) => failure,
            };
            let Some(message) = rejection_message(&failure) else {
                state = failure;
                break;
            };
            let named = applications_named_in(partition, message, candidates.names().map(String::as_str));
            if named.is_empty() || named.len() == candidates.len() {
                // AS3 named no single application, or all of them.
                let (isolated_state, isolated) = self.isolate(partition, &candidates, message, &mut held).await;
                excluded.extend(isolated);
                state = isolated_state;
                break;
            }
            warn!(partition, excluded = ?named, "leaving rejected applications out of the tenant");
            for name in named {
                candidates.remove(&name);
                excluded.insert(name, failure.clone());
            }
            state = failure;
        }

        let posted = held.accepted_posts > 0;
        let repaired_drift = drifted && posted && matches!(state, ProgrammingState::Programmed { .. });
        let mut outcome = SyncOutcome { state, excluded, repaired_drift, posted };
        if drifted {
            if let ProgrammingState::Failed { message, .. } = &outcome.state {
                outcome.state = ProgrammingState::Failed {
                    reason: FailureReason::Drifted,
                    message: format!(
                        "the tenant was changed on the BIG-IP out of band and repairing it failed: {message}"
                    ),
                };
            }
        }
        let mut records = self.records.lock().await;
        let record = records.entry(partition.to_string()).or_default();
        if posted || matches!(outcome.state, ProgrammingState::Programmed { .. }) {
            record.owned = held.hash.is_some();
            record.drifted = false;
        }
        record.deployed_hash = held.hash;
        record.deployed_applications = held.apps;
        record.accepted += held.accepted_posts as u64;
        record.last =
            outcome.is_final().then(|| LastSync { digest, outcome: outcome.clone(), at: Instant::now(), list });
        outcome
    }

    /// The outcome of the last sync of `partition` when `same` says it was of the same desired
    /// content and it still stands: it was clean, or it rejected applications less than
    /// [`REJECTION_RETRY`] ago.
    async fn last_outcome_if(&self, partition: &str, same: impl FnOnce(&LastSync) -> bool) -> Option<SyncOutcome> {
        let records = self.records.lock().await;
        let last = records.get(partition)?.last.as_ref()?;
        let outcome = &last.outcome;
        let clean = outcome.excluded.is_empty() && matches!(outcome.state, ProgrammingState::Programmed { .. });
        // Nothing is posted this time.
        (same(last) && (clean || last.at.elapsed() < REJECTION_RETRY)).then(|| SyncOutcome {
            posted: false,
            repaired_drift: false,
            ..outcome.clone()
        })
    }

    /// The applications of `kept` (their objects cannot be read) that the BIG-IP is known to
    /// hold in `partition` and `desired` lacks.
    async fn kept_missing(
        &self,
        partition: &str,
        kept: &BTreeSet<String>,
        desired: &[Arc<RenderedApplication>],
    ) -> BTreeSet<String> {
        if kept.is_empty() {
            return BTreeSet::new();
        }
        let desired: BTreeSet<&str> = desired.iter().map(|app| app.name.as_str()).collect();
        let records = self.records.lock().await;
        let deployed = records.get(partition).map(|r| &r.deployed_applications);
        kept.iter()
            .filter(|name| !desired.contains(name.as_str()) && deployed.is_some_and(|d| d.contains(name)))
            .cloned()
            .collect()
    }

    /// Adds to `rendered` the applications named in `missing` as the BIG-IP holds them (read
    /// back once here): their objects cannot be read, so they are kept, never removed.
    async fn keep_as_deployed(
        &self,
        partition: &str,
        missing: &BTreeSet<String>,
        rendered: &mut Apps,
    ) -> Result<(), ProgrammingState> {
        if missing.is_empty() {
            return Ok(());
        }
        let tenant = self.bigip.current_tenant(partition).await.map_err(|e| ProgrammingState::Failed {
            reason: FailureReason::from(&e),
            message: format!("reading the applications of unreadable objects back from the BIG-IP: {e}"),
        })?;
        let held = tenant.as_ref().map(rendered_objects).unwrap_or_default();
        for name in missing {
            if let Some(application) = held.get(name) {
                info!(partition, application = %name, "its object cannot be read: keeping the application as the BIG-IP holds it");
                rendered.insert(application.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectKey;

    fn app(name: &str) -> DesiredApplication {
        DesiredApplication::plain_http(
            ObjectKey { namespace: "ns".into(), name: name.into() },
            format!("ns_{name}"),
            "k8s",
            "10.0.0.1".parse().expect("ip"),
            80,
            vec![],
        )
    }

    #[test]
    fn deletions_beyond_the_share_need_confirmation() {
        assert!(!deletion_needs_confirmation(10, 0, 0.5), "nothing removed");
        assert!(!deletion_needs_confirmation(10, 5, 0.5), "exactly half is allowed");
        assert!(deletion_needs_confirmation(10, 6, 0.5));
        assert!(deletion_needs_confirmation(1, 1, 0.5), "the last application of a tenant");
        assert!(!deletion_needs_confirmation(3, 3, 1.0), "a share of 1 never asks");
        assert!(!deletion_needs_confirmation(0, 0, 0.0));
    }

    #[test]
    fn finds_applications_by_path_in_the_partition_only() {
        let apps = ["ns_a", "ns_ab", "ns_b"];
        let message = "01070333:3: Virtual Server /k8s/ns_a/vs illegally shares both address and vlan with Virtual Server /other/ns_b/vs.";
        assert_eq!(applications_named_in("k8s", message, apps), BTreeSet::from(["ns_a".to_string()]));
        assert!(applications_named_in("k8s", "declaration failed", apps).is_empty());
    }

    fn rendered(apps: &[DesiredApplication]) -> Apps {
        apps.iter().map(|app| Arc::new(RenderedApplication::of(app))).collect()
    }

    fn owner() -> Ownership {
        Ownership::new("test-cluster").expect("valid cluster id")
    }

    /// The digest the syncer keeps for these applications under `owner` (header + entries).
    fn partition_digest(owner: &Ownership, applications: &[Arc<RenderedApplication>]) -> TenantDigest {
        let apps: AppSet = applications.iter().cloned().collect();
        digest_with_header(header_digest(owner), tenant_digest(&render_empty_tenant()), &apps)
    }

    #[test]
    fn the_digest_from_hashes_is_the_digest_of_the_tenant() {
        let apps = [app("b"), app("a"), monitored("c", 5)];
        let rendered = rendered(&apps);
        let tenant = render_tenant(&apps, &owner());
        let from_hashes: Vec<Arc<RenderedApplication>> = rendered.iter().map(|(_, app)| app.clone()).collect();
        assert_eq!(partition_digest(&owner(), &from_hashes), tenant_digest(&tenant));
        assert_eq!(partition_digest(&owner(), &[]), tenant_digest(&render_empty_tenant()));
        // Any change of an application, or of the owner label, changes it.
        let changed = render_tenant(&[app("b"), app("a"), monitored("c", 6)], &owner());
        assert_ne!(tenant_digest(&changed), tenant_digest(&tenant));
        let other_owner = Ownership::new("other-cluster").expect("valid cluster id");
        assert_ne!(partition_digest(&other_owner, &from_hashes), tenant_digest(&tenant));
    }

    #[test]
    fn a_tenant_read_back_as_a_summary_has_the_digest_of_the_tenant() {
        let tenant = render_tenant(&[app("b"), app("a"), monitored("c", 5)], &owner());
        let summary = TenantSummary::parse(&tenant.to_string()).expect("parses");
        assert_eq!(summary, TenantSummary::of(&tenant));
        assert_eq!(summary_digest(&summary), tenant_digest(&tenant));
        assert_eq!(summary.applications.len(), 3);
        assert_eq!(owner().owner_of(&summary.header()), TenantOwner::Us);
        let rendered = rendered(&[app("b"), app("a"), monitored("c", 5)]);
        assert!(summary_applications(&summary) == rendered, "the same names and content hashes");
    }

    #[test]
    fn a_tenant_assembled_from_rendered_applications_is_the_rendered_tenant() {
        let apps = [app("b"), app("a")];
        let as_value = |apps: &Apps| serde_json::to_value(tenant_of(apps, &owner())).expect("serialises");
        assert_eq!(as_value(&rendered(&apps)), render_tenant(&apps, &owner()));
        assert_eq!(as_value(&AppSet::default()), render_empty_tenant());
    }

    /// An application with one pool whose monitor probes every `interval` seconds.
    fn monitored(name: &str, interval: u32) -> DesiredApplication {
        let mut app = app(name);
        let mut pool = crate::model::DesiredPool::plain("web", vec![]);
        pool.monitors = vec![crate::model::DesiredMonitor {
            monitor_type: crate::crd::MonitorType::Http,
            send: None,
            receive: None,
            interval,
            timeout: 16,
            target_port: None,
            time_until_up: None,
            ssl_profile: None,
        }];
        app.pools = vec![pool];
        app
    }

    #[test]
    fn preflight_names_the_invalid_field_and_validates_only_changed_applications() {
        let apps = [monitored("good", 5), monitored("bad", 5000)];
        let (verdicts, validated) = preflight_check(&PreflightVerdicts::new(), "k8s", &owner(), &rendered(&apps));
        assert_eq!(validated, 2);
        assert_eq!(verdicts["ns_good"].1, None);
        let problem = verdicts["ns_bad"].1.as_deref().expect("the interval is beyond AS3's 3600");
        assert!(problem.starts_with("the rendered AS3 application is invalid (checked before posting): "), "{problem}");
        assert!(problem.contains("/declaration/k8s/ns_bad/monitor_web_0/interval: "), "{problem}");

        // Unchanged: nothing validated again. One changed, one gone: only the changed one.
        let (again, validated) = preflight_check(&verdicts, "k8s", &owner(), &rendered(&apps));
        assert_eq!((validated, &again), (0, &verdicts));
        let fixed = [monitored("bad", 30)];
        let (after_fix, validated) = preflight_check(&verdicts, "k8s", &owner(), &rendered(&fixed));
        assert_eq!(validated, 1);
        assert_eq!(after_fix.keys().collect::<Vec<_>>(), ["ns_bad"], "verdicts of removed applications are dropped");
        assert_eq!(after_fix["ns_bad"].1, None);
    }

    #[test]
    fn preflight_finds_the_bigip_references_and_names_their_fields() {
        let mut waf = monitored("waf", 5);
        waf.frontend = crate::model::Frontend::Http {
            routes: Vec::new(),
            redirects: Vec::new(),
            tls: None,
            x_forwarded_for: false,
            waf_policy: Some("/Common/linux-hihg".into()),
        };
        let (verdicts, _) = preflight_check(&PreflightVerdicts::new(), "k8s", &owner(), &rendered(&[waf]));
        let (_, problem, references) = &verdicts["ns_waf"];
        assert_eq!(problem, &None);
        let names: Vec<(&str, &str)> = references.iter().map(|r| (r.name.as_str(), r.instance_path.as_str())).collect();
        assert_eq!(names, [("/Common/linux-hihg", "/k8s/ns_waf/vs/policyWAF")]);
        assert_eq!(references[0].kinds, ["asm/policies"]);
        let message = preflight::missing_object_message(&references[0]);
        assert!(
            message.starts_with("spec.wafPolicy names /Common/linux-hihg, and the BIG-IP has no such WAF policy"),
            "{message}"
        );
        assert!(
            message.ends_with("Unable to find specified WAF policy /Common/linux-hihg for /k8s/ns_waf/vs/policyWAF)"),
            "{message}"
        );
    }

    /// Pre-flight cost: prints the time to validate 1000 new applications, then a resync in
    /// which one changed. `cargo test --release --lib preflight_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing measurement, not a check"]
    fn preflight_timing_of_1000_applications() {
        let apps: Vec<DesiredApplication> = (0..1000).map(|i| monitored(&format!("app{i}"), 5)).collect();
        let all = rendered(&apps);
        // Compiling the schema happens once per process; keep it out of the measurement.
        preflight_check(&PreflightVerdicts::new(), "k8s", &owner(), &rendered(&[monitored("warm-up", 5)]));
        let started = Instant::now();
        let (verdicts, validated) = preflight_check(&PreflightVerdicts::new(), "k8s", &owner(), &all);
        let first = started.elapsed();
        assert_eq!(validated, 1000);
        let mut changed = apps.clone();
        changed[7] = monitored("app7", 6);
        let started = Instant::now();
        let (_, validated) = preflight_check(&verdicts, "k8s", &owner(), &rendered(&changed));
        let resync = started.elapsed();
        assert_eq!(validated, 1);
        println!(
            "pre-flight: 1000 applications in {first:?} ({:?} each); resync with one changed: {resync:?}",
            first / 1000
        );
    }
}
