//! The deletion guard: a post removing more than the allowed share of a tenant's applications
//! waits until a fresh list from the apiserver confirms they are gone.

use super::*;

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

impl<B: As3Api> PartitionSyncer<B> {
    /// The deletion guard: Err(DeletionHeld) when the post of `posted` would delete more than
    /// the allowed share of the `deployed` applications and a fresh list does not confirm they
    /// are gone. Applications left out because they are invalid or rejected count as deleted:
    /// the fresh list still has them, so a post dropping too many of them is held.
    pub(super) async fn check_deletions(
        &self,
        partition: &str,
        deployed: &AppSet,
        posted: &Apps,
    ) -> Result<(), ProgrammingState> {
        let Some(confirmation) = &self.confirmation else { return Ok(()) };
        let removed: BTreeSet<String> = deployed.changes_to(posted).removed.into_iter().collect();
        if !deletion_needs_confirmation(deployed.len(), removed.len(), self.max_deletion_share) {
            return Ok(());
        }
        let held = |why: String| {
            warn!(partition, removed = removed.len(), deployed = deployed.len(), %why, "holding back a post that would delete applications");
            self.metrics.deletions_held.inc();
            Err(ProgrammingState::Failed {
                reason: FailureReason::DeletionHeld,
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
}
