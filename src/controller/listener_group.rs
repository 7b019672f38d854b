//! Writes the status of BigIpListenerGroups: the VirtualServers each one serves and whether its
//! shared virtual server is programmed (from those VirtualServers' own Programmed conditions).
//! Woken after VirtualServer reconciles and group changes, and every few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use tracing::warn;

use super::reconcile::{Context, FIELD_MANAGER};
use crate::bigip::As3Api;
use crate::crd::BigIpListenerGroup;
use crate::model::listener_group::{group_application_name, group_problem, GROUP_APPLICATION_PREFIX};
use crate::model::{AppOutcome, SourceKind};
use crate::status::listener_group::{listener_group_status, AttachedObject};

/// How often the statuses are checked without a wake-up.
const PERIOD: Duration = Duration::from_secs(10);
/// Wake-ups within this time are handled together.
const COALESCE: Duration = Duration::from_millis(500);

/// Runs until a termination signal (as the controllers do).
pub async fn run<B: As3Api>(ctx: Arc<Context<B>>, groups: Store<BigIpListenerGroup>, api: Api<BigIpListenerGroup>) {
    let health = ctx.metrics.health.clone();
    tokio::select! {
        _ = health.stop_requested() => {}
        _ = write_until_stopped(&ctx, &groups, &api) => {}
    }
}

async fn write_until_stopped<B: As3Api>(
    ctx: &Context<B>,
    groups: &Store<BigIpListenerGroup>,
    api: &Api<BigIpListenerGroup>,
) {
    if ctx.caches_ready().await.is_err() {
        return;
    }
    loop {
        let groups_now = groups.state();
        if !groups_now.is_empty() {
            write_statuses(ctx, &groups_now, api).await;
        }
        tokio::select! {
            _ = ctx.listener_groups_changed.notified() => tokio::time::sleep(COALESCE).await,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}

async fn write_statuses<B: As3Api>(
    ctx: &Context<B>,
    groups: &[Arc<BigIpListenerGroup>],
    api: &Api<BigIpListenerGroup>,
) {
    let snapshot = ctx.snapshot();
    let mut attached: BTreeMap<&str, Vec<&crate::model::ObjectKey>> = BTreeMap::new();
    for (id, outcome) in snapshot.outcomes() {
        if let AppOutcome::Included { application, .. } = outcome {
            if id.kind == SourceKind::VirtualServer && application.starts_with(GROUP_APPLICATION_PREFIX) {
                attached.entry(application.as_str()).or_default().push(&id.key);
            }
        }
    }
    let now = super::reconcile::jiff_now();
    for group in groups {
        let name = group.name_any();
        let application = group_application_name(&name);
        let members: Vec<Arc<crate::crd::VirtualServer>> = attached
            .get(application.as_str())
            .into_iter()
            .flatten()
            .filter_map(|key| ctx.virtual_servers.get(&ObjectRef::new(&key.name).within(&key.namespace)))
            .collect();
        let objects = members
            .iter()
            .map(|vs| AttachedObject {
                key: format!("{}/{}", vs.namespace().unwrap_or_default(), vs.name_any()),
                generation: vs.metadata.generation,
                status: vs.status.as_ref(),
            })
            .collect();
        // A group is cluster-scoped, but an operator watching one namespace sees only that
        // namespace's VirtualServers: it writes the status of the groups it serves members of,
        // and leaves the others to the operator that watches every namespace (two writers
        // would overwrite each other's counts).
        if ctx.settings.namespace.is_some() && members.is_empty() {
            continue;
        }
        let problem = group_problem(group, &ctx.settings.defaults);
        let status = listener_group_status(group.metadata.generation, problem, objects, group.status.as_ref(), &now);
        if group.status.as_ref() == Some(&status) {
            continue;
        }
        let value = match serde_json::to_value(&status) {
            Ok(value) => value,
            Err(e) => {
                warn!(group = %name, error = %e, "cannot serialise a listener group status");
                continue;
            }
        };
        if let Err(e) = super::report::apply_status(api, &name, FIELD_MANAGER, &value).await {
            warn!(group = %name, error = %e, "writing the listener group status failed; retried shortly");
        }
    }
}
