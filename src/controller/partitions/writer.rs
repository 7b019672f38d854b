//! The one writer: every post to AS3 (whole tenants, or changed applications through the
//! per-application API) and how its answer is judged.

use super::*;

/// What [`PartitionSyncer::post_applications`] did.
pub(super) enum PerApplicationResult {
    /// The BIG-IP holds `applications` now.
    Done,
    /// The per-application API does not apply here: post the whole tenant.
    NotApplicable,
    /// The BIG-IP refused, or could not be reached, or the deletion guard held the change.
    Failed(ProgrammingState),
}

impl<B: As3Api> PartitionSyncer<B> {
    /// Whether the per-application API may be used (asks the BIG-IP once).
    pub(super) async fn per_application_offered(&self) -> bool {
        let PerApplication::WhenOffered { known } = &self.per_application else { return false };
        if let Some(offered) = *known.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return offered;
        }
        match self.bigip.per_application_api().await {
            Ok(offered) => {
                info!(offered, "AS3 per-application API");
                *known.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(offered);
                offered
            }
            Err(error) => {
                // Asked again next time; whole tenants meanwhile.
                debug!(%error, "could not tell whether AS3 offers the per-application API");
                false
            }
        }
    }

    /// Sends the difference between what the BIG-IP holds (`held`) and `applications` through
    /// AS3's per-application API: the new and changed applications in one request, each removed
    /// one in a DELETE. Only for a tenant this operator posted and knows exactly (the tenant
    /// itself is created, relabelled or removed by whole-tenant posts: a per-application post to
    /// a missing tenant would create it without the ownership label), for small changes, and
    /// after the deletion guard approved the removals. `held` follows what the BIG-IP accepted.
    pub(super) async fn post_applications(
        &self,
        partition: &str,
        applications: &Apps,
        held: &mut Held,
    ) -> PerApplicationResult {
        let Some(held_digest) = held.hash else { return PerApplicationResult::NotApplicable };
        if applications.is_empty() || held.apps.is_empty() {
            return PerApplicationResult::NotApplicable;
        }
        let AppChanges { changed, removed } = held.apps.changes_to(applications);
        let small = changed.len() <= PER_APPLICATION_MAX_CHANGED && removed.len() <= PER_APPLICATION_MAX_REMOVED;
        // The tenant must be exactly ours plus the known applications (nothing tenant-level to
        // change), and there must be something to send.
        let exact = self.digest_of(&held.apps) == held_digest;
        if !small || !exact || (changed.is_empty() && removed.is_empty()) || !self.per_application_offered().await {
            return PerApplicationResult::NotApplicable;
        }
        if let Err(held_back) = self.check_deletions(partition, &held.apps, applications).await {
            return PerApplicationResult::Failed(held_back);
        }
        if !changed.is_empty() {
            let objects: BTreeMap<String, &serde_json::value::RawValue> =
                changed.iter().map(|app| (app.name.clone(), app.json())).collect();
            let started = Instant::now();
            let answer = {
                let _writing = self.writer.lock().await;
                self.bigip.deploy_applications(partition, &objects).await
            };
            self.metrics.as3_post_duration.observe(started.elapsed().as_secs_f64());
            if let Err(failure) = self.judge(partition, answer, "applications", changed.len()) {
                return PerApplicationResult::Failed(failure);
            }
            for app in &changed {
                held.apps.insert(app.clone());
            }
            held.accepted_posts += 1;
        }
        for name in &removed {
            let started = Instant::now();
            let answer = {
                let _writing = self.writer.lock().await;
                self.bigip.delete_application(partition, name).await
            };
            self.metrics.as3_post_duration.observe(started.elapsed().as_secs_f64());
            let gone_already = matches!(&answer, Err(BigIpError::Http { status: 404, .. }));
            if !gone_already {
                if let Err(failure) = self.judge(partition, answer, "application deletion", 1) {
                    held.hash = Some(self.digest_of(&held.apps));
                    return PerApplicationResult::Failed(failure);
                }
            }
            held.apps.remove(name);
            held.accepted_posts += 1;
        }
        // The BIG-IP holds exactly `applications` now: keep that very set, so that the next
        // comparison with a set derived from it visits only what differs.
        held.apps = applications.clone();
        held.hash = Some(self.digest_of(&held.apps));
        info!(
            partition,
            changed = changed.len(),
            removed = removed.len(),
            "applications deployed (per-application API)"
        );
        PerApplicationResult::Done
    }

    /// Posts the tenant holding `applications`, unless the BIG-IP already holds exactly that (or
    /// nothing, when nothing is wanted), once the deletion guard approves what this post removes.
    /// `held` follows what the BIG-IP holds.
    pub(super) async fn post_guarded(
        &self,
        partition: &str,
        applications: &Apps,
        held: &mut Held,
    ) -> Result<(), ProgrammingState> {
        let hash = self.digest_of(applications);
        let nothing_either_way = applications.is_empty() && held.hash.is_none() && held.apps.is_empty();
        if held.hash == Some(hash) || nothing_either_way {
            self.metrics.as3_posts_skipped.inc();
            return Ok(());
        }
        self.check_deletions(partition, &held.apps, applications).await?;
        self.post(partition, tenant_of(applications, &self.owner), applications.len()).await?;
        held.hash = (!applications.is_empty()).then_some(hash);
        held.apps = applications.clone();
        held.accepted_posts += 1;
        Ok(())
    }

    /// Posts one tenant; a rejection or transport failure comes back as the Failed state.
    pub(super) async fn post<T: serde::Serialize + Sync>(
        &self,
        partition: &str,
        tenant: T,
        applications: usize,
    ) -> Result<(), ProgrammingState> {
        let tenants = BTreeMap::from([(partition.to_string(), tenant)]);
        let started = std::time::Instant::now();
        let answer = {
            let _writing = self.writer.lock().await;
            self.bigip.deploy_tenants(&tenants).await
        };
        self.metrics.as3_post_duration.observe(started.elapsed().as_secs_f64());
        self.judge(partition, answer, "tenant", applications)
    }

    /// What an AS3 answer about `partition` means: accepted, or the Failed state (a rejection
    /// of the declaration, or a failure to get an answer). `what` and `applications` describe
    /// the request for the logs.
    pub(super) fn judge(
        &self,
        partition: &str,
        answer: Result<crate::bigip::DeployReport, BigIpError>,
        what: &str,
        applications: usize,
    ) -> Result<(), ProgrammingState> {
        let judged = self.judge_answer(partition, answer, what, applications);
        if judged.is_err() {
            self.metrics.partition_programmed.with_label_values(&[partition]).set(0);
        }
        judged
    }

    fn judge_answer(
        &self,
        partition: &str,
        answer: Result<crate::bigip::DeployReport, BigIpError>,
        what: &str,
        applications: usize,
    ) -> Result<(), ProgrammingState> {
        match answer {
            Ok(report) => match report.tenants.get(partition) {
                Some(result) if result.succeeded() => {
                    info!(partition, applications, request = what, message = %result.message, "tenant deployed");
                    self.metrics.as3_posts.with_label_values(&["success"]).inc();
                    if applications == 0 && what == "tenant" {
                        // The tenant is gone: no series for a partition no longer managed.
                        let _ = self.metrics.partition_programmed.remove_label_values(&[partition]);
                    } else {
                        self.metrics.partition_programmed.with_label_values(&[partition]).set(1);
                    }
                    Ok(())
                }
                Some(result) => {
                    warn!(partition, request = what, code = result.code, detail = %result.detail(), "rejected by AS3");
                    self.metrics.as3_posts.with_label_values(&["rejected"]).inc();
                    Err(ProgrammingState::Failed {
                        reason: FailureReason::DeclarationFailed,
                        message: format!("AS3 rejected tenant {partition}: {}", result.detail()),
                    })
                }
                None => {
                    self.metrics.as3_posts.with_label_values(&["error"]).inc();
                    Err(ProgrammingState::Failed {
                        reason: FailureReason::BigIpInvalidResponse,
                        message: format!("AS3 reported no result for tenant {partition}"),
                    })
                }
            },
            Err(BigIpError::InvalidDeclaration { errors }) => {
                self.metrics.as3_posts.with_label_values(&["rejected"]).inc();
                Err(ProgrammingState::Failed {
                    reason: FailureReason::DeclarationInvalid,
                    message: format!("AS3 refused the declaration of tenant {partition}: {}", errors.join("; ")),
                })
            }
            Err(error) => {
                warn!(partition, request = what, %error, "posting to AS3 failed");
                self.metrics.as3_posts.with_label_values(&["error"]).inc();
                Err(ProgrammingState::Failed { reason: FailureReason::from(&error), message: error.to_string() })
            }
        }
    }
}
