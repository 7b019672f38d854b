//! The legacy shim's controllers: `f5type: virtual-server` ConfigMaps and `f5` Ingresses are
//! translated into VirtualServers/TransportServers that they own (deleting the legacy object
//! deletes them), and the outcome is reported back on the legacy object: Events, and for
//! Ingresses `status.loadBalancer`, for ConfigMaps the annotation
//! `bigip.operator.dev/status`.
//!
//! A legacy object that cannot be translated gets a Warning Event with the reason and keeps
//! whatever it generated before: bad input never deletes anything.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;

use super::report::EventRecorder;
use kube::runtime::watcher::Config as WatcherConfig;
use kube::runtime::{reflector, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::object::ManagedObject;
use super::watches;
use crate::crd::{TransportServer, VirtualServer, VirtualServerStatus};
use crate::legacy::{configmap, ingress, Translated, GENERATED_FROM_LABEL};
use crate::metrics::{ControllerName, Metrics};

/// Field manager of the generated objects.
pub const LEGACY_FIELD_MANAGER: &str = "bigip-operator-legacy";
/// Annotation on a legacy ConfigMap with the state of what it generated.
pub const STATUS_ANNOTATION: &str = "bigip.operator.dev/status";
/// Annotation on a legacy ConfigMap with the details of that state.
pub const MESSAGE_ANNOTATION: &str = "bigip.operator.dev/status-message";
/// The label k8s-bigip-ctlr selected its ConfigMaps by.
pub const CONFIG_MAP_SELECTOR: &str = "f5type=virtual-server";

#[derive(Debug, thiserror::Error)]
pub enum LegacyReconcileError {
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error("writing {what}: {source}")]
    Write { what: String, source: kube::Error },
}

impl LegacyReconcileError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::NoNamespace(_) => "no_namespace",
            Self::Write { .. } => "write",
        }
    }
}

struct LegacyContext {
    client: Client,
    recorder: EventRecorder,
    metrics: Arc<Metrics>,
}

/// Counts a reconcile of a legacy object as `controller`'s.
fn counted(
    ctx: &LegacyContext,
    controller: ControllerName,
    started: Instant,
    result: &Result<Action, LegacyReconcileError>,
) {
    let outcome = result.as_ref().map(|_| ()).map_err(LegacyReconcileError::metric_label);
    ctx.metrics.reconciled(controller, started.elapsed(), outcome);
}

/// Runs the ConfigMap and Ingress shims until shutdown.
pub async fn run(client: Client, namespace: Option<String>, recorder: EventRecorder, metrics: Arc<Metrics>) {
    let namespace = namespace.as_deref();
    let config_maps: Api<ConfigMap> = super::scoped_api(&client, namespace);
    let ingresses: Api<Ingress> = super::scoped_api(&client, namespace);
    let virtual_servers: Api<VirtualServer> = super::scoped_api(&client, namespace);
    let transport_servers: Api<TransportServer> = super::scoped_api(&client, namespace);
    let context = Arc::new(LegacyContext { client, recorder, metrics: metrics.clone() });
    let generated = WatcherConfig::default().labels(GENERATED_FROM_LABEL);
    let generated_vs =
        |watch| watches::events(virtual_servers.clone(), generated.clone(), watch, metrics.clone()).touched_objects();
    info!("starting the legacy shim (f5type: virtual-server ConfigMaps, f5 Ingresses)");
    let (config_map_store, config_map_writer) = reflector::store();
    let config_map_events = watches::events(
        config_maps,
        WatcherConfig::default().labels(CONFIG_MAP_SELECTOR),
        "legacy-configmaps",
        metrics.clone(),
    )
    .reflect(config_map_writer)
    .touched_objects();
    let config_map_controller = Controller::for_stream(config_map_events, config_map_store)
        .owns_stream(generated_vs("legacy-configmap-virtualservers"))
        .owns_stream(
            watches::events(transport_servers, generated.clone(), "legacy-configmap-transportservers", metrics.clone())
                .touched_objects(),
        )
        .shutdown_on_signal()
        .run(reconcile_config_map, error_policy, context.clone())
        .for_each(|_| async {});
    let (ingress_store, ingress_writer) = reflector::store();
    let ingress_events = watches::events(ingresses, WatcherConfig::default(), "legacy-ingresses", metrics.clone())
        .reflect(ingress_writer)
        .touched_objects();
    let ingress_controller = Controller::for_stream(ingress_events, ingress_store)
        .owns_stream(generated_vs("legacy-ingress-virtualservers"))
        .shutdown_on_signal()
        .run(reconcile_ingress, error_policy, context)
        .for_each(|_| async {});
    futures::join!(config_map_controller, ingress_controller);
}

fn error_policy<K>(_obj: Arc<K>, error: &LegacyReconcileError, _ctx: Arc<LegacyContext>) -> Action {
    warn!(%error, "legacy reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &LegacyContext,
    obj: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    super::report::publish_event(&ctx.recorder, obj, type_, reason, "Translate", note).await;
}

/// What the generated objects say about being programmed: (state, message).
fn programmed_state(statuses: &[Option<VirtualServerStatus>]) -> (String, String) {
    let mut messages = Vec::new();
    let mut first_failure: Option<String> = None;
    for status in statuses {
        match status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Programmed")) {
            Some(c) if c.status == "True" => messages.push(c.message.clone()),
            Some(c) => {
                first_failure.get_or_insert_with(|| c.reason.clone());
                messages.push(format!("{}: {}", c.reason, c.message));
            }
            None => {
                first_failure.get_or_insert_with(|| "Pending".to_string());
                messages.push("Pending: not reconciled yet".into());
            }
        }
    }
    (first_failure.unwrap_or_else(|| "Programmed".to_string()), messages.join("; "))
}

/// Applies the generated objects and deletes those of `owner_uid` that are no longer
/// generated. Returns the statuses of what it applied.
async fn apply_generated(
    ctx: &LegacyContext,
    namespace: &str,
    owner_uid: &str,
    objects: &[Translated],
) -> Result<Vec<Option<VirtualServerStatus>>, LegacyReconcileError> {
    let params = PatchParams::apply(LEGACY_FIELD_MANAGER).force();
    let mut statuses = Vec::new();
    let mut names: BTreeSet<(bool, String)> = BTreeSet::new();
    for object in objects {
        match object {
            Translated::VirtualServer(vs) => {
                let applied = apply_one(ctx, namespace, vs.as_ref(), &params).await?;
                names.insert((false, applied.name_any()));
                statuses.push(applied.status);
            }
            Translated::TransportServer(ts) => {
                let applied = apply_one(ctx, namespace, ts.as_ref(), &params).await?;
                names.insert((true, applied.name_any()));
                statuses.push(applied.status);
            }
        }
    }
    remove_stale::<VirtualServer>(ctx, namespace, owner_uid, &names, false).await?;
    remove_stale::<TransportServer>(ctx, namespace, owner_uid, &names, true).await?;
    Ok(statuses)
}

async fn apply_one<K: ManagedObject>(
    ctx: &LegacyContext,
    namespace: &str,
    object: &K,
    params: &PatchParams,
) -> Result<K, LegacyReconcileError> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let name = object.name_any();
    api.patch(&name, params, &Patch::Apply(object))
        .await
        .map_err(|source| LegacyReconcileError::Write { what: format!("{} {namespace}/{name}", K::kind(&())), source })
}

/// Deletes generated objects owned by `owner_uid` that the translation no longer produces.
async fn remove_stale<K: ManagedObject>(
    ctx: &LegacyContext,
    namespace: &str,
    owner_uid: &str,
    keep: &BTreeSet<(bool, String)>,
    transport: bool,
) -> Result<(), LegacyReconcileError> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let listed = api
        .list(&ListParams::default().labels(GENERATED_FROM_LABEL))
        .await
        .map_err(|source| LegacyReconcileError::Write { what: format!("listing {}", K::plural(&())), source })?;
    for object in listed.items {
        let owned = object.owner_references().iter().any(|o| o.uid == owner_uid && o.controller == Some(true));
        if owned && !keep.contains(&(transport, object.name_any())) {
            info!(name = %object.name_any(), "deleting a generated object its legacy source no longer produces");
            api.delete(&object.name_any(), &DeleteParams::default()).await.map_err(|source| {
                LegacyReconcileError::Write { what: format!("deleting {}", object.name_any()), source }
            })?;
        }
    }
    Ok(())
}

#[instrument(skip_all, fields(kind = "ConfigMap", object = %format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any())))]
async fn reconcile_config_map(cm: Arc<ConfigMap>, ctx: Arc<LegacyContext>) -> Result<Action, LegacyReconcileError> {
    let started = Instant::now();
    let result = translate_config_map(cm, &ctx).await;
    counted(&ctx, ControllerName::LegacyConfigMap, started, &result);
    result
}

#[instrument(skip_all, fields(kind = "Ingress", object = %format!("{}/{}", ing.namespace().unwrap_or_default(), ing.name_any())))]
async fn reconcile_ingress(ing: Arc<Ingress>, ctx: Arc<LegacyContext>) -> Result<Action, LegacyReconcileError> {
    let started = Instant::now();
    let result = translate_ingress(ing, &ctx).await;
    counted(&ctx, ControllerName::LegacyIngress, started, &result);
    result
}

async fn translate_config_map(cm: Arc<ConfigMap>, ctx: &LegacyContext) -> Result<Action, LegacyReconcileError> {
    let key = format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any());
    let namespace = cm.namespace().ok_or_else(|| LegacyReconcileError::NoNamespace(key.clone()))?;
    let (state, message) = match configmap::translate_config_map(&cm) {
        Err(error) => {
            publish(ctx, cm.as_ref(), EventType::Warning, "TranslationFailed", error.to_string()).await;
            ("Invalid".to_string(), error.to_string())
        }
        Ok(translation) => {
            for warning in &translation.warnings {
                publish(ctx, cm.as_ref(), EventType::Warning, "TranslationWarning", warning.clone()).await;
            }
            let uid = cm.uid().unwrap_or_default();
            let statuses = apply_generated(ctx, &namespace, &uid, std::slice::from_ref(&translation.object)).await?;
            programmed_state(&statuses)
        }
    };
    let current = cm.annotations();
    if current.get(STATUS_ANNOTATION) != Some(&state) || current.get(MESSAGE_ANNOTATION) != Some(&message) {
        let patch = json!({ "metadata": { "annotations": { STATUS_ANNOTATION: state, MESSAGE_ANNOTATION: message } } });
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
        super::report::merge_object(&api, &cm.name_any(), LEGACY_FIELD_MANAGER, &patch)
            .await
            .map_err(|source| LegacyReconcileError::Write { what: format!("annotating ConfigMap {key}"), source })?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn translate_ingress(ing: Arc<Ingress>, ctx: &LegacyContext) -> Result<Action, LegacyReconcileError> {
    if !ingress::is_f5_ingress(&ing) {
        return Ok(Action::await_change());
    }
    let key = format!("{}/{}", ing.namespace().unwrap_or_default(), ing.name_any());
    let namespace = ing.namespace().ok_or_else(|| LegacyReconcileError::NoNamespace(key.clone()))?;
    let translation = match ingress::translate_ingress(&ing) {
        Err(error) => {
            publish(ctx, ing.as_ref(), EventType::Warning, "TranslationFailed", error.to_string()).await;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
        Ok(translation) => translation,
    };
    for warning in &translation.warnings {
        publish(ctx, ing.as_ref(), EventType::Warning, "TranslationWarning", warning.clone()).await;
    }
    let objects: Vec<Translated> =
        translation.virtual_servers.iter().cloned().map(|vs| Translated::VirtualServer(Box::new(vs))).collect();
    let uid = ing.uid().unwrap_or_default();
    let statuses = apply_generated(ctx, &namespace, &uid, &objects).await?;
    let (state, _) = programmed_state(&statuses);
    let address = translation.virtual_servers.first().map(|vs| vs.spec.virtual_address.clone());
    let wanted = match (state.as_str(), address) {
        ("Programmed", Some(ip)) => json!([{ "ip": ip }]),
        _ => json!([]),
    };
    let current = ing.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
    let current = serde_json::to_value(current.cloned().unwrap_or_default()).unwrap_or_default();
    if current != wanted {
        let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({ "status": { "loadBalancer": { "ingress": wanted } } });
        super::report::merge_status(&api, &ing.name_any(), LEGACY_FIELD_MANAGER, &patch)
            .await
            .map_err(|source| LegacyReconcileError::Write { what: format!("status of Ingress {key}"), source })?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(programmed: &str, reason: &str, message: &str) -> Option<VirtualServerStatus> {
        Some(VirtualServerStatus {
            conditions: vec![crate::crd::Condition {
                type_: "Programmed".into(),
                status: programmed.into(),
                reason: reason.into(),
                message: message.into(),
                observed_generation: Some(1),
                last_transition_time: "T".into(),
            }],
            ..VirtualServerStatus::default()
        })
    }

    #[test]
    fn the_state_is_the_first_failing_reason_wherever_it_comes() {
        let ok = status("True", "Programmed", "AS3 application /k/a is deployed on https://bigip");
        let failed = status("False", "DeclarationFailed", "AS3 rejected tenant k: boom");
        assert_eq!(programmed_state(&[ok.clone(), ok.clone()]).0, "Programmed");
        let (state, message) = programmed_state(&[ok.clone(), failed]);
        assert_eq!(state, "DeclarationFailed");
        assert!(message.contains("DeclarationFailed: AS3 rejected tenant k: boom"), "{message}");
        assert_eq!(programmed_state(&[ok, None]).0, "Pending");
    }
}
