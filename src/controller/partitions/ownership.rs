//! Ownership and drift: which tenants are this operator's, and whether the BIG-IP still holds
//! what it deployed.

use super::*;

/// The applications of a tenant read back, by name and content hash, without their content
/// (what is known of a tenant read back; never posted from).
pub(super) fn summary_applications(summary: &TenantSummary) -> AppSet {
    summary
        .applications
        .iter()
        .map(|(name, hash)| Arc::new(RenderedApplication::summarised(name.clone(), hash.clone())))
        .collect()
}

/// [`tenant_digest`] of a tenant read back as a summary.
pub(super) fn summary_digest(summary: &TenantSummary) -> TenantDigest {
    let properties: Vec<(&str, String)> =
        summary.properties.iter().map(|(name, value)| (name.as_str(), tenant_hash(value))).collect();
    let entries = properties.iter().map(|(name, hash)| (*name, hash.as_str()));
    TenantDigest::of(entries.chain(summary.applications.iter().map(|(name, hash)| (name.as_str(), hash.as_str()))))
}

impl<B: As3Api> PartitionSyncer<B> {
    /// Learns which tenants the BIG-IP already holds, so that an operator restart does not
    /// re-post unchanged tenants, and knows which partitions it manages. Only tenants with this
    /// operator's label are recorded as its own; other tenants are never touched.
    pub async fn learn_deployed_tenants(&self) -> Result<usize, BigIpError> {
        let tenants = self.bigip.tenant_summaries().await?;
        let mut records = self.records.lock().await;
        let mut learned = 0;
        for (name, tenant) in tenants {
            match self.owner.owner_of(&tenant.header()) {
                TenantOwner::Us => {}
                TenantOwner::OtherCluster(id) => {
                    info!(partition = %name, cluster = %id, "tenant belongs to bigip-operator of another cluster; leaving it alone");
                    continue;
                }
                TenantOwner::Foreign => continue,
            }
            let record = records.entry(name).or_default();
            record.deployed_hash = Some(summary_digest(&tenant));
            record.deployed_applications = summary_applications(&tenant);
            record.owned = true;
            learned += 1;
        }
        Ok(learned)
    }

    /// Whether this operator may post `partition`: its own tenant, no tenant at all, or an
    /// adopted one. Reads the BIG-IP when the partition is not known to be ours.
    pub(super) async fn may_write(&self, partition: &str) -> Result<(), ProgrammingState> {
        let owned = self.records.lock().await.get(partition).is_some_and(|r| r.owned);
        if owned {
            return Ok(());
        }
        let existing = self
            .bigip
            .current_tenant(partition)
            .await
            .map_err(|e| ProgrammingState::Failed { reason: FailureReason::from(&e), message: e.to_string() })?;
        let Some(existing) = existing else { return Ok(()) };
        let owner = self.owner.owner_of(&existing);
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
            reason: FailureReason::PartitionNotOwned,
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
        // Posts accepted per partition before the read: a partition whose count changed by the
        // time it is compared was posted to meanwhile, and its read-back may predate that post
        // (at 10,000 applications, with a change every few hundred milliseconds, this made
        // every drift check re-post the whole tenant). Such a partition is checked next time.
        let before: BTreeMap<String, u64> =
            self.records.lock().await.iter().map(|(partition, record)| (partition.clone(), record.accepted)).collect();
        let on_bigip = self.bigip.tenant_summaries().await?;
        let mut drifted = Vec::new();
        for (partition, accepted_before) in before {
            // Under the partition's lock no sync is between posting and recording its post.
            let lock = self.partition_lock(&partition).await;
            let _serialised = lock.lock().await;
            let mut records = self.records.lock().await;
            let Some(record) = records.get_mut(&partition) else { continue };
            let Some(deployed) = record.deployed_hash else { continue };
            if record.accepted != accepted_before {
                debug!(partition, "posted to during the drift check; checking it next time");
                continue;
            }
            let actual = on_bigip.get(&partition).map(summary_digest);
            if actual != Some(deployed) {
                warn!(partition, "the BIG-IP's tenant differs from what was deployed; repairing");
                self.metrics.drift_repairs.inc();
                record.deployed_hash = None;
                record.deployed_applications = on_bigip.get(&partition).map(summary_applications).unwrap_or_default();
                record.drifted = true;
                record.last = None;
                drifted.push(partition);
            }
        }
        // The live configuration of the partitions whose stored declaration is as deployed:
        // edits made on the BIG-IP itself (tmsh, GUI, iControl REST) show only there.
        let live_checked: Vec<(String, u64)> = {
            let records = self.records.lock().await;
            records
                .iter()
                .filter(|(partition, r)| r.deployed_hash.is_some() && !r.drifted && !drifted.contains(partition))
                .map(|(partition, r)| (partition.clone(), r.accepted))
                .collect()
        };
        for (partition, accepted_before) in live_checked {
            let live = match self.bigip.live_partition(&partition).await {
                Ok(live) => live,
                Err(error) => {
                    warn!(partition, %error, "cannot read the partition's live configuration; checking it next time");
                    continue;
                }
            };
            let lock = self.partition_lock(&partition).await;
            let _serialised = lock.lock().await;
            let mut records = self.records.lock().await;
            let Some(record) = records.get_mut(&partition) else { continue };
            if record.accepted != accepted_before || record.deployed_hash.is_none() {
                continue;
            }
            let changed = live::applications_drifted_live(&partition, &record.deployed_applications, &live);
            if changed.is_empty() {
                continue;
            }
            warn!(partition, applications = ?changed, "the BIG-IP serves applications other than deployed (changed on the device); repairing them");
            self.metrics.drift_repairs.inc();
            // Posting them again makes AS3 put their objects back: the next sync sends exactly
            // these, as applications the BIG-IP does not hold.
            for name in &changed {
                record.deployed_applications.remove(name);
            }
            record.deployed_hash = Some(self.digest_of(&record.deployed_applications));
            record.last = None;
            drifted.push(partition);
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
}
