//! Posting partitions (AS3 tenants) to the BIG-IP: one tenant per post, only when its rendered
//! content changed, never two posts of the same tenant at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::as3::{render_empty_tenant, render_tenant, tenant_hash, Ownership, TenantOwner};
use crate::bigip::{As3Api, BigIpError};
use crate::metrics::Metrics;
use crate::model::DesiredApplication;
use crate::status::ProgrammingState;

/// The result of syncing one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The tenant as a whole: Programmed when the BIG-IP holds every application not excluded.
    pub state: ProgrammingState,
    /// Applications left out because the BIG-IP rejected them, with why. Everything else in
    /// the partition stays programmed: one bad object never takes its partition down.
    pub excluded: BTreeMap<String, ProgrammingState>,
    /// This sync re-posted a tenant that had been changed on the BIG-IP out of band.
    pub repaired_drift: bool,
}

impl SyncOutcome {
    fn whole(state: ProgrammingState) -> Self {
        Self { state, excluded: BTreeMap::new(), repaired_drift: false }
    }

    /// What happened to one application of the partition.
    pub fn for_application(&self, application: &str) -> ProgrammingState {
        self.excluded.get(application).cloned().unwrap_or_else(|| self.state.clone())
    }

    /// Deterministic outcomes can be reused while the desired tenant does not change;
    /// transport failures (unreachable, busy) must be retried.
    fn is_final(&self) -> bool {
        match &self.state {
            ProgrammingState::Programmed { .. } => true,
            ProgrammingState::Failed { reason, .. } => reason == "DeclarationFailed" || reason == "DeclarationInvalid",
            ProgrammingState::NotAttempted => false,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct PartitionRecord {
    /// Hash of the tenant the BIG-IP is known to hold (posted successfully, or read back).
    deployed_hash: Option<String>,
    /// Names of the applications the BIG-IP is known to hold in the tenant.
    deployed_applications: BTreeSet<String>,
    /// The tenant is this operator's: read back with its label, or posted by it. A tenant
    /// that is not is never posted to unless its partition is adopted.
    owned: bool,
    /// Found changed on the BIG-IP out of band and not yet repaired.
    drifted: bool,
    /// Hash of the last desired tenant, its final outcome and when it was reached, so that an
    /// unchanged tenant (including one with rejected applications) is not posted again on
    /// every reconcile.
    last: Option<(String, SyncOutcome, std::time::Instant)>,
}

/// An unchanged tenant whose applications were rejected is tried again after this long: what
/// the BIG-IP objected to (a foreign virtual on the same address, a missing profile) may have
/// been fixed there.
const REJECTION_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// At most this many posts per sync when the BIG-IP rejects applications one after another.
const MAX_ISOLATION_ROUNDS: usize = 4;

/// Asks the source of truth (a fresh, quorum list from the apiserver) whether applications
/// really are gone, before a post that deletes many of them at once.
pub trait DeletionConfirmation: Send + Sync {
    /// Ok(true) when none of `removed` (application names of `partition`) should exist.
    fn confirm<'a>(&'a self, partition: &'a str, removed: &'a BTreeSet<String>) -> BoxFuture<'a, Result<bool, String>>;
}

/// The start-up safety rule: a post that would delete more than `max_share` of a tenant's
/// applications needs confirmation. Pure.
pub fn deletion_needs_confirmation(deployed: usize, removed: usize, max_share: f64) -> bool {
    removed > 0 && deployed > 0 && (removed as f64) > max_share * (deployed as f64)
}

/// Names of the Application objects in a tenant object.
fn application_names(tenant: &Value) -> BTreeSet<String> {
    tenant
        .as_object()
        .map(|objects| {
            objects
                .iter()
                .filter(|(_, v)| v.get("class").and_then(Value::as_str) == Some("Application"))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Applications of `partition` that a BIG-IP/AS3 error message names by path
/// (`/partition/application/...`).
pub fn applications_named_in(partition: &str, message: &str, candidates: &[DesiredApplication]) -> BTreeSet<String> {
    candidates
        .iter()
        .filter(|app| {
            let path = format!("/{partition}/{}/", app.name);
            message.contains(&path)
        })
        .map(|app| app.name.clone())
        .collect()
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
    metrics: Arc<Metrics>,
}

impl<B: As3Api> PartitionSyncer<B> {
    /// A syncer that owns the tenants labelled for `owner`, adopts none and deletes without
    /// confirmation (see [`Self::with_deletion_guard`] and [`Self::adopting`]).
    pub fn new(bigip: Arc<B>, bigip_url: impl Into<String>, owner: Ownership, metrics: Arc<Metrics>) -> Self {
        Self {
            bigip,
            bigip_url: bigip_url.into(),
            owner,
            adopt: BTreeSet::new(),
            max_deletion_share: 1.0,
            confirmation: None,
            records: Mutex::new(BTreeMap::new()),
            locks: Mutex::new(HashMap::new()),
            metrics,
        }
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

    /// Learns which tenants the BIG-IP already holds, so that an operator restart does not
    /// re-post unchanged tenants, and knows which partitions it manages. Only tenants with this
    /// operator's label are recorded as its own; other tenants are never touched.
    pub async fn learn_deployed_tenants(&self) -> Result<usize, BigIpError> {
        let tenants = self.bigip.current_tenants().await?;
        let mut records = self.records.lock().await;
        let mut learned = 0;
        for (name, tenant) in tenants {
            match self.owner.owner_of(&tenant) {
                TenantOwner::Us => {}
                TenantOwner::OtherCluster(id) => {
                    info!(partition = %name, cluster = %id, "tenant belongs to bigip-operator of another cluster; leaving it alone");
                    continue;
                }
                TenantOwner::Foreign => continue,
            }
            let record = records.entry(name).or_default();
            record.deployed_hash = Some(tenant_hash(&tenant));
            record.deployed_applications = application_names(&tenant);
            record.owned = true;
            learned += 1;
        }
        Ok(learned)
    }

    /// Whether this operator may post `partition`: its own tenant, no tenant at all, or an
    /// adopted one. Reads the BIG-IP when the partition is not known to be ours.
    async fn may_write(&self, partition: &str) -> Result<(), ProgrammingState> {
        let owned = self.records.lock().await.get(partition).is_some_and(|r| r.owned);
        if owned {
            return Ok(());
        }
        let tenants = self
            .bigip
            .current_tenants()
            .await
            .map_err(|e| ProgrammingState::Failed { reason: e.reason().into(), message: e.to_string() })?;
        let Some(existing) = tenants.get(partition) else { return Ok(()) };
        let owner = self.owner.owner_of(existing);
        if owner == TenantOwner::Us {
            return Ok(());
        }
        if self.adopt.contains(partition) {
            warn!(partition, ?owner, "adopting the existing tenant as asked (--adopt-partition)");
            return Ok(());
        }
        let whose = match owner {
            TenantOwner::OtherCluster(id) => format!("by bigip-operator of cluster {id:?}"),
            _ => "by someone else".to_string(),
        };
        Err(ProgrammingState::Failed {
            reason: "PartitionNotOwned".into(),
            message: format!(
                "partition {partition} already holds a tenant created {whose}; it is left untouched \
                 (to take it over, run the operator with --adopt-partition {partition})"
            ),
        })
    }

    /// Reads the BIG-IP's tenants back and returns the managed partitions whose content
    /// differs from what this operator deployed (changed or deleted out of band). Their
    /// records are forgotten, so the next sync posts them again. (A sync that lands between
    /// the read and the comparison can look like drift; that costs one redundant post.)
    pub async fn detect_drift(&self) -> Result<Vec<String>, BigIpError> {
        let on_bigip = self.bigip.current_tenants().await?;
        let mut records = self.records.lock().await;
        let mut drifted = Vec::new();
        for (partition, record) in records.iter_mut() {
            let Some(deployed) = record.deployed_hash.as_deref() else { continue };
            let actual = on_bigip.get(partition).map(tenant_hash);
            if actual.as_deref() != Some(deployed) {
                warn!(partition, "the BIG-IP's tenant differs from what was deployed; repairing");
                self.metrics.drift_repairs.inc();
                record.deployed_hash = None;
                record.deployed_applications = on_bigip.get(partition).map(application_names).unwrap_or_default();
                record.drifted = true;
                record.last = None;
                drifted.push(partition.clone());
            }
        }
        Ok(drifted)
    }

    /// Partitions this operator has programmed (or found with its remark).
    pub async fn managed_partitions(&self) -> BTreeSet<String> {
        self.records
            .lock()
            .await
            .iter()
            .filter(|(_, r)| r.deployed_hash.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    async fn partition_lock(&self, partition: &str) -> Arc<Mutex<()>> {
        self.locks.lock().await.entry(partition.to_string()).or_default().clone()
    }

    /// Makes the BIG-IP's tenant `partition` hold exactly `applications`.
    ///
    /// Posts nothing when the rendered tenant equals the one last deployed; an empty list
    /// removes the tenant, but only one this operator deployed. When AS3 rejects the tenant
    /// and names the offending applications, the tenant is posted again without them.
    pub async fn sync(&self, partition: &str, applications: &[DesiredApplication]) -> SyncOutcome {
        let lock = self.partition_lock(partition).await;
        let _serialised = lock.lock().await;

        let desired_hash = tenant_hash(&render_partition(applications, &self.owner));
        let programmed = ProgrammingState::Programmed { partition: partition.to_string(), bigip: self.bigip_url.clone() };
        let (mut deployed_hash, deployed_applications, drifted) = {
            let records = self.records.lock().await;
            let record = records.get(partition);
            let deployed = record.and_then(|r| r.deployed_hash.clone());
            let owned = record.is_some_and(|r| r.owned);
            if applications.is_empty() && (deployed.is_none() || !owned) && !record.is_some_and(|r| r.drifted) {
                // Never deployed by us (or already removed): nothing to remove.
                return SyncOutcome::whole(programmed);
            }
            if let Some((hash, outcome, at)) = record.and_then(|r| r.last.as_ref()) {
                let clean = outcome.excluded.is_empty() && matches!(outcome.state, ProgrammingState::Programmed { .. });
                if *hash == desired_hash && (clean || at.elapsed() < REJECTION_RETRY) {
                    self.metrics.as3_posts_skipped.inc();
                    return outcome.clone();
                }
            }
            (
                deployed,
                record.map(|r| r.deployed_applications.clone()).unwrap_or_default(),
                record.is_some_and(|r| r.drifted),
            )
        };

        if let Err(refused) = self.may_write(partition).await {
            warn!(partition, "not posting: {refused:?}");
            return SyncOutcome::whole(refused);
        }
        if let Err(held) = self.check_deletions(partition, &deployed_applications, applications).await {
            return SyncOutcome::whole(held);
        }

        let mut candidates: Vec<DesiredApplication> = applications.to_vec();
        let mut excluded = BTreeMap::new();
        let mut outcome = SyncOutcome::whole(ProgrammingState::NotAttempted);
        for _round in 0..MAX_ISOLATION_ROUNDS {
            let tenant = render_partition(&candidates, &self.owner);
            let hash = tenant_hash(&tenant);
            if deployed_hash.as_deref() == Some(hash.as_str()) {
                self.metrics.as3_posts_skipped.inc();
                outcome = SyncOutcome { state: programmed.clone(), excluded: excluded.clone(), repaired_drift: false };
                break;
            }
            match self.post(partition, tenant, candidates.len()).await {
                Ok(()) => {
                    deployed_hash = if candidates.is_empty() { None } else { Some(hash) };
                    outcome = SyncOutcome { state: programmed.clone(), excluded: excluded.clone(), repaired_drift: drifted };
                    break;
                }
                Err(failure) => {
                    let message = match &failure {
                        ProgrammingState::Failed { reason, message } if reason == "DeclarationFailed" => message.clone(),
                        _ => {
                            outcome = SyncOutcome { state: failure, excluded: excluded.clone(), repaired_drift: false };
                            break;
                        }
                    };
                    let culprits = applications_named_in(partition, &message, &candidates);
                    if culprits.is_empty() || culprits.len() == candidates.len() {
                        // AS3 named no single application, or all of them: the tenant fails.
                        outcome = SyncOutcome { state: failure, excluded: excluded.clone(), repaired_drift: false };
                        break;
                    }
                    warn!(partition, excluded = ?culprits, "leaving rejected applications out of the tenant");
                    for name in culprits {
                        excluded.insert(name, failure.clone());
                    }
                    candidates.retain(|app| !excluded.contains_key(&app.name));
                }
            }
        }

        if drifted {
            if let ProgrammingState::Failed { message, .. } = &outcome.state {
                outcome.state = ProgrammingState::Failed {
                    reason: "Drifted".into(),
                    message: format!("the tenant was changed on the BIG-IP out of band and repairing it failed: {message}"),
                };
            }
        }
        let posted = matches!(outcome.state, ProgrammingState::Programmed { .. });
        let mut records = self.records.lock().await;
        let record = records.entry(partition.to_string()).or_default();
        if posted {
            record.owned = deployed_hash.is_some();
            record.drifted = false;
            record.deployed_applications = if deployed_hash.is_some() {
                candidates.iter().map(|app| app.name.clone()).collect()
            } else {
                BTreeSet::new()
            };
        }
        record.deployed_hash = deployed_hash;
        record.last = outcome.is_final().then(|| (desired_hash, outcome.clone(), std::time::Instant::now()));
        outcome
    }

    /// The deletion guard: Err(DeletionHeld) when the post would delete more than the allowed
    /// share of the tenant's applications and a fresh list does not confirm they are gone.
    async fn check_deletions(
        &self,
        partition: &str,
        deployed: &BTreeSet<String>,
        desired: &[DesiredApplication],
    ) -> Result<(), ProgrammingState> {
        let Some(confirmation) = &self.confirmation else { return Ok(()) };
        let wanted: BTreeSet<&str> = desired.iter().map(|app| app.name.as_str()).collect();
        let removed: BTreeSet<String> = deployed.iter().filter(|name| !wanted.contains(name.as_str())).cloned().collect();
        if !deletion_needs_confirmation(deployed.len(), removed.len(), self.max_deletion_share) {
            return Ok(());
        }
        let held = |why: String| {
            warn!(partition, removed = removed.len(), deployed = deployed.len(), %why, "holding back a post that would delete applications");
            self.metrics.deletions_held.inc();
            Err(ProgrammingState::Failed {
                reason: "DeletionHeld".into(),
                message: format!(
                    "not deleting {} of the {} applications in partition {partition} ({}): {why}",
                    removed.len(),
                    deployed.len(),
                    removed.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                ),
            })
        };
        match confirmation.confirm(partition, &removed).await {
            Ok(true) => {
                info!(partition, removed = removed.len(), "a fresh list confirms the deletions");
                Ok(())
            }
            Ok(false) => held("a fresh list from the apiserver still has them; the watch cache may be stale".into()),
            Err(e) => held(format!("could not confirm with a fresh list: {e}")),
        }
    }

    /// Posts one tenant; a rejection or transport failure comes back as the Failed state.
    async fn post(&self, partition: &str, tenant: Value, applications: usize) -> Result<(), ProgrammingState> {
        let tenants = BTreeMap::from([(partition.to_string(), tenant)]);
        let started = std::time::Instant::now();
        let outcome = self.bigip.deploy_tenants(&tenants).await;
        self.metrics.as3_post_duration.observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(report) => match report.tenants.get(partition) {
                Some(result) if result.succeeded() => {
                    info!(partition, applications, message = %result.message, "tenant deployed");
                    self.metrics.as3_posts.with_label_values(&["success"]).inc();
                    Ok(())
                }
                Some(result) => {
                    warn!(partition, code = result.code, detail = %result.detail(), "tenant rejected by AS3");
                    self.metrics.as3_posts.with_label_values(&["rejected"]).inc();
                    Err(ProgrammingState::Failed {
                        reason: "DeclarationFailed".into(),
                        message: format!("AS3 rejected tenant {partition}: {}", result.detail()),
                    })
                }
                None => {
                    self.metrics.as3_posts.with_label_values(&["error"]).inc();
                    Err(ProgrammingState::Failed {
                        reason: "BigIpInvalidResponse".into(),
                        message: format!("AS3 reported no result for tenant {partition}"),
                    })
                }
            },
            Err(BigIpError::InvalidDeclaration { errors }) => {
                self.metrics.as3_posts.with_label_values(&["rejected"]).inc();
                Err(ProgrammingState::Failed {
                    reason: "DeclarationInvalid".into(),
                    message: format!("AS3 refused the declaration of tenant {partition}: {}", errors.join("; ")),
                })
            }
            Err(error) => {
                warn!(partition, %error, "posting tenant failed");
                self.metrics.as3_posts.with_label_values(&["error"]).inc();
                Err(ProgrammingState::Failed { reason: error.reason().into(), message: error.to_string() })
            }
        }
    }
}

/// The Tenant object for a partition: its applications, or the empty tenant that removes it.
fn render_partition(applications: &[DesiredApplication], owner: &Ownership) -> Value {
    if applications.is_empty() {
        render_empty_tenant()
    } else {
        render_tenant(applications, owner)
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
        let apps = [app("a"), app("ab"), app("b")];
        let message = "01070333:3: Virtual Server /k8s/ns_a/vs illegally shares both address and vlan with Virtual Server /other/ns_b/vs.";
        assert_eq!(applications_named_in("k8s", message, &apps), BTreeSet::from(["ns_a".to_string()]));
        assert!(applications_named_in("k8s", "declaration failed", &apps).is_empty());
    }
}
