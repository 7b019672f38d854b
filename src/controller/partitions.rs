//! Posting partitions (AS3 tenants) to the BIG-IP: one tenant per post, only when its rendered
//! content changed, never two posts of the same tenant at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::as3::render::MANAGED_REMARK;
use crate::as3::{render_empty_tenant, render_tenant, tenant_hash};
use crate::bigip::{As3Api, BigIpError};
use crate::metrics::Metrics;
use crate::model::DesiredApplication;
use crate::status::ProgrammingState;

#[derive(Debug, Default, Clone)]
struct PartitionRecord {
    /// Hash of the tenant the BIG-IP is known to hold (posted successfully, or read back).
    deployed_hash: Option<String>,
    /// The last rejected tenant: hash and the failure, so an unchanged invalid tenant is not
    /// re-posted on every reconcile.
    rejected: Option<(String, ProgrammingState)>,
}

/// The operator's knowledge of what each partition on the BIG-IP holds.
pub struct PartitionSyncer<B: As3Api> {
    bigip: Arc<B>,
    bigip_url: String,
    records: Mutex<BTreeMap<String, PartitionRecord>>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    metrics: Arc<Metrics>,
}

impl<B: As3Api> PartitionSyncer<B> {
    pub fn new(bigip: Arc<B>, bigip_url: impl Into<String>, metrics: Arc<Metrics>) -> Self {
        Self {
            bigip,
            bigip_url: bigip_url.into(),
            records: Mutex::new(BTreeMap::new()),
            locks: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Learns which tenants the BIG-IP already holds, so that an operator restart does not
    /// re-post unchanged tenants, and knows which partitions it manages. Only tenants carrying
    /// this operator's remark are recorded; other tenants are never touched.
    pub async fn learn_deployed_tenants(&self) -> Result<usize, BigIpError> {
        let tenants = self.bigip.current_tenants().await?;
        let mut records = self.records.lock().await;
        let mut learned = 0;
        for (name, tenant) in tenants {
            if tenant.get("remark").and_then(Value::as_str) != Some(MANAGED_REMARK) {
                continue;
            }
            records.entry(name).or_default().deployed_hash = Some(tenant_hash(&tenant));
            learned += 1;
        }
        Ok(learned)
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
    /// removes the tenant, but only one this operator deployed.
    pub async fn sync(&self, partition: &str, applications: &[DesiredApplication]) -> ProgrammingState {
        let lock = self.partition_lock(partition).await;
        let _serialised = lock.lock().await;

        let tenant = if applications.is_empty() { render_empty_tenant() } else { render_tenant(applications) };
        let hash = tenant_hash(&tenant);
        let programmed = ProgrammingState::Programmed { partition: partition.to_string(), bigip: self.bigip_url.clone() };
        {
            let records = self.records.lock().await;
            let record = records.get(partition);
            if applications.is_empty() && record.and_then(|r| r.deployed_hash.as_ref()).is_none() {
                // Never deployed by us (or already removed): nothing to remove.
                return programmed;
            }
            if record.and_then(|r| r.deployed_hash.as_deref()) == Some(hash.as_str()) {
                self.metrics.as3_posts_skipped.inc();
                return programmed;
            }
            if let Some((rejected_hash, failure)) = record.and_then(|r| r.rejected.as_ref()) {
                if rejected_hash == &hash {
                    return failure.clone();
                }
            }
        }

        let tenants = BTreeMap::from([(partition.to_string(), tenant)]);
        let started = std::time::Instant::now();
        let outcome = self.bigip.deploy_tenants(&tenants).await;
        self.metrics.as3_post_duration.observe(started.elapsed().as_secs_f64());
        let mut records = self.records.lock().await;
        let record = records.entry(partition.to_string()).or_default();
        match outcome {
            Ok(report) => match report.tenants.get(partition) {
                Some(result) if result.succeeded() => {
                    info!(partition, applications = applications.len(), message = %result.message, "tenant deployed");
                    self.metrics.as3_posts.with_label_values(&["success"]).inc();
                    record.deployed_hash = if applications.is_empty() { None } else { Some(hash) };
                    record.rejected = None;
                    programmed
                }
                Some(result) => {
                    warn!(partition, code = result.code, detail = %result.detail(), "tenant rejected by AS3");
                    self.metrics.as3_posts.with_label_values(&["rejected"]).inc();
                    let failure = ProgrammingState::Failed {
                        reason: "DeclarationFailed".into(),
                        message: format!("AS3 rejected tenant {partition}: {}", result.detail()),
                    };
                    record.rejected = Some((hash, failure.clone()));
                    failure
                }
                None => {
                    self.metrics.as3_posts.with_label_values(&["error"]).inc();
                    ProgrammingState::Failed {
                        reason: "BigIpInvalidResponse".into(),
                        message: format!("AS3 reported no result for tenant {partition}"),
                    }
                }
            },
            Err(BigIpError::InvalidDeclaration { errors }) => {
                self.metrics.as3_posts.with_label_values(&["rejected"]).inc();
                let failure = ProgrammingState::Failed {
                    reason: "DeclarationInvalid".into(),
                    message: format!("AS3 refused the declaration of tenant {partition}: {}", errors.join("; ")),
                };
                record.rejected = Some((hash, failure.clone()));
                failure
            }
            Err(error) => {
                warn!(partition, %error, "posting tenant failed");
                self.metrics.as3_posts.with_label_values(&["error"]).inc();
                ProgrammingState::Failed { reason: error.reason().into(), message: error.to_string() }
            }
        }
    }
}
