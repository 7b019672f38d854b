//! Pre-flight: each new or changed application validated alone against the AS3 schema before
//! it is posted, so that an invalid one is left out instead of failing its partition.

use super::*;

/// Schema violations quoted in a pre-flight DeclarationInvalid message.
pub(super) const PREFLIGHT_VIOLATIONS_SHOWN: usize = 3;

/// Pre-flight verdicts by application name: the content hash of the rendered application and,
/// when the schema refuses it, the DeclarationInvalid message. Holds only the applications of
/// the latest sync, so it is as large as the partition.
pub(super) type PreflightVerdicts = HashMap<String, (String, Option<String>)>;

/// The applications pre-flight last checked, and those of them it found invalid (name →
/// content hash and message).
#[derive(Debug, Default, Clone)]
pub(super) struct Preflight {
    checked: AppSet,
    invalid: BTreeMap<String, (String, String)>,
}

/// The AS3 request that pre-flight validates for one application: the application alone in
/// its tenant, with the real partition name and owner label.
pub(super) fn preflight_request(partition: &str, owner: &Ownership, application: &Arc<RenderedApplication>) -> Value {
    let applications = AppSet::from_iter([application.clone()]);
    let tenant = serde_json::to_value(tenant_of(&applications, owner)).unwrap_or(Value::Null);
    render_request(&BTreeMap::from([(partition.to_string(), tenant)]))
}

/// Validates each rendered application of `partition` alone against the embedded AS3 schema.
/// An application whose content is unchanged since `previous` keeps its verdict without being
/// validated again. Returns the verdicts of exactly the applications in `rendered`, and how
/// many were validated now. Pure, but CPU-bound: run it off the async workers.
pub(super) fn preflight_check(
    previous: &PreflightVerdicts,
    partition: &str,
    owner: &Ownership,
    rendered: &Apps,
) -> (PreflightVerdicts, usize) {
    let mut verdicts = PreflightVerdicts::with_capacity(rendered.len());
    let mut validated = 0;
    let mut schema_usable = true;
    for (name, application) in rendered {
        let hash = application.hash.clone();
        if let Some((known, problem)) = previous.get(name).filter(|(known, _)| *known == hash) {
            verdicts.insert(name.clone(), (known.clone(), problem.clone()));
            continue;
        }
        let mut problem = None;
        if schema_usable {
            validated += 1;
            match validate_declaration(&preflight_request(partition, owner, application)) {
                Ok(violations) if violations.is_empty() => {}
                Ok(violations) => {
                    let mut shown: Vec<String> =
                        violations.iter().take(PREFLIGHT_VIOLATIONS_SHOWN).map(ToString::to_string).collect();
                    if violations.len() > PREFLIGHT_VIOLATIONS_SHOWN {
                        shown.push(format!("and {} more", violations.len() - PREFLIGHT_VIOLATIONS_SHOWN));
                    }
                    problem = Some(format!(
                        "the rendered AS3 application is invalid (checked before posting): {}",
                        shown.join("; ")
                    ));
                }
                Err(error) => {
                    // Nothing to check with; the BIG-IP validates what is posted.
                    warn!(%error, "pre-flight validation is unavailable");
                    schema_usable = false;
                }
            }
        }
        verdicts.insert(name.clone(), (hash, problem));
    }
    (verdicts, validated)
}

impl<B: As3Api> PartitionSyncer<B> {
    /// Pre-flight: validates the applications whose rendering changed since the last sync (off
    /// the async workers) and returns the invalid ones with the DeclarationInvalid message.
    pub(super) async fn preflight(&self, partition: &str, rendered: &Apps) -> BTreeMap<String, String> {
        if rendered.is_empty() {
            return BTreeMap::new();
        }
        let Preflight { checked, mut invalid } = {
            let mut records = self.records.lock().await;
            records.get_mut(partition).map(|r| std::mem::take(&mut r.preflight)).unwrap_or_default()
        };
        // Only new and changed applications are validated (found without visiting what the
        // two sets share); verdicts of removed ones are dropped.
        let AppChanges { changed, removed } = checked.changes_to(rendered);
        for name in &removed {
            invalid.remove(name);
        }
        if !changed.is_empty() {
            let started = Instant::now();
            let validated = changed.len();
            let check = {
                let (partition, owner) = (partition.to_string(), self.owner.clone());
                let changed: Apps = changed.into_iter().collect();
                tokio::task::spawn_blocking(move || {
                    preflight_check(&PreflightVerdicts::new(), &partition, &owner, &changed)
                })
            };
            match check.await {
                Ok((verdicts, _)) => {
                    debug!(
                        partition,
                        applications = rendered.len(),
                        validated,
                        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                        "pre-flight schema validation"
                    );
                    for (name, (hash, problem)) in verdicts {
                        match problem {
                            Some(message) => invalid.insert(name, (hash, message)),
                            None => invalid.remove(&name),
                        };
                    }
                }
                Err(error) => {
                    // The BIG-IP validates what is posted anyway; checked again next time.
                    warn!(partition, %error, "pre-flight validation failed to run");
                    return BTreeMap::new();
                }
            }
        }
        let found = invalid.iter().map(|(name, (_, message))| (name.clone(), message.clone())).collect();
        let preflight = Preflight { checked: rendered.clone(), invalid };
        self.records.lock().await.entry(partition.to_string()).or_default().preflight = preflight;
        found
    }
}
