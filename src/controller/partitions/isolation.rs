//! Isolation: a rejection that names no application is narrowed down to its culprits by
//! posting parts of the partition ([`Bisection`]); named applications are left out.

use super::*;

/// At most this many posts per sync when the BIG-IP rejects applications one after another.
pub(super) const MAX_ISOLATION_ROUNDS: usize = 4;

/// Applications among `candidates` (names in `partition`) that a BIG-IP/AS3 error message
/// names by path (`/partition/application/...`).
pub fn applications_named_in<'a>(
    partition: &str,
    message: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    candidates
        .into_iter()
        .filter(|name| message.contains(&format!("/{partition}/{name}/")))
        .map(str::to_string)
        .collect()
}

/// The message of a rejection by AS3, the kind isolation can narrow down: of the tenant while
/// deploying it (`DeclarationFailed`), or of the whole declaration by AS3's parser
/// (`DeclarationInvalid`: a rule pre-flight does not know, or an object missing on the BIG-IP
/// since it was looked up). None for transport failures and the like.
pub(super) fn rejection_message(failure: &ProgrammingState) -> Option<&str> {
    match failure {
        ProgrammingState::Failed {
            reason: FailureReason::DeclarationFailed | FailureReason::DeclarationInvalid,
            message,
        } => Some(message),
        _ => None,
    }
}

/// Whether `held` is the same version of the application as `app`.
pub(super) fn same_version(held: Option<&Arc<RenderedApplication>>, app: &Arc<RenderedApplication>) -> bool {
    held.is_some_and(|held| held.hash == app.hash)
}

impl<B: As3Api> PartitionSyncer<B> {
    /// Narrows down a rejection of `candidates` that names no application (see [`Bisection`]).
    /// Returns the tenant's state (Programmed when it holds no application outside
    /// `candidates`) and the candidates it does not hold in their desired version, with why.
    pub(super) async fn isolate(
        &self,
        partition: &str,
        candidates: &Apps,
        rejection: &str,
        held: &mut Held,
    ) -> (ProgrammingState, BTreeMap<String, ProgrammingState>) {
        let rejected = |message: String| ProgrammingState::Failed { reason: FailureReason::DeclarationFailed, message };
        // A rejected tenant keeps its previous content: read what the BIG-IP serves.
        let tenant = match self.bigip.current_tenant(partition).await {
            Ok(tenant) => tenant,
            Err(error) => {
                warn!(partition, %error, "cannot read the tenant back to isolate the rejection");
                return (rejected(rejection.to_string()), BTreeMap::new());
            }
        };
        let serving = tenant.as_ref().map(rendered_objects).unwrap_or_default();
        held.hash = tenant.as_ref().map(tenant_digest);
        held.apps = serving.clone();
        let suspects: Vec<String> = candidates
            .iter()
            .filter(|(name, app)| !same_version(serving.get(name), app))
            .map(|(name, _)| name.clone())
            .collect();
        if suspects.is_empty() {
            return (rejected(rejection.to_string()), BTreeMap::new());
        }
        info!(partition, suspects = suspects.len(), "AS3 named no application; isolating the rejection by bisection");

        // A trial holds the new version of `with_new` and the served version of the others.
        let compose = |with_new: &BTreeSet<String>| -> Apps {
            candidates
                .iter()
                .filter_map(|(name, app)| {
                    let version = if with_new.contains(name) { Some(app) } else { serving.get(name) };
                    version.cloned()
                })
                .collect()
        };
        let mut holding = serving.clone();
        let mut bisection = Bisection::new(suspects, rejection.to_string());
        let mut stopped = None;
        while let BisectionStep::Post(with_new) = bisection.next_post() {
            let trial = compose(&with_new);
            match self.post_guarded(partition, &trial, held).await {
                Ok(()) => {
                    holding = trial;
                    bisection.record(Ok(()));
                }
                Err(failure) => match rejection_message(&failure) {
                    Some(message) => bisection.record(Err(message.to_string())),
                    None => {
                        stopped = Some(failure);
                        break;
                    }
                },
            }
        }
        let verdict = bisection.verdict();

        // Culprits leave the tenant; suspects not told apart keep the version the BIG-IP serves.
        let mut final_failure = None;
        if stopped.is_none() {
            let target: Apps = candidates
                .iter()
                .filter(|(name, _)| !verdict.culprits.contains_key(*name))
                .filter_map(|(name, app)| {
                    let version = if verdict.undecided.contains(name) { serving.get(name) } else { Some(app) };
                    version.cloned()
                })
                .collect();
            if target != holding {
                match self.post_guarded(partition, &target, held).await {
                    Ok(()) => holding = target,
                    Err(failure) => final_failure = Some(failure),
                }
            }
        }

        let mut excluded = BTreeMap::new();
        for (name, app) in candidates {
            if same_version(holding.get(name), app) {
                continue;
            }
            let kept = if holding.contains(name) { "; the BIG-IP keeps the version it held before" } else { "" };
            let state = match (verdict.culprits.get(name), &stopped) {
                (Some(message), _) => rejected(format!(
                    "{message} (AS3 named no application; this one was singled out by posting parts of the partition{kept})"
                )),
                (None, Some(failure)) => failure.clone(),
                (None, None) => rejected(format!(
                    "{rejection} (AS3 named no application, and {} posts did not single out the culprits{kept})",
                    verdict.posts
                )),
            };
            excluded.insert(name.clone(), state);
        }
        info!(
            partition,
            posts = verdict.posts,
            culprits = ?verdict.culprits.keys().collect::<Vec<_>>(),
            undecided = verdict.undecided.len(),
            "isolated a rejection that named no application"
        );
        let leftovers = holding.names().any(|name| !candidates.contains(name));
        let state = match (leftovers, final_failure.or(stopped)) {
            (false, _) => self.programmed(partition),
            (true, Some(failure)) => failure,
            (true, None) => rejected(rejection.to_string()),
        };
        (state, excluded)
    }
}
