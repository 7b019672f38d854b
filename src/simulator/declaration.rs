//! AS3 declare semantics as pure functions: unpacking and validating request bodies, and
//! planning what a request does to the deployed tenants.
//!
//! Only the tenants a request names are touched. A tenant without Applications is deleted;
//! otherwise its content is replaced, after the checks in [`checks`](super::checks). A tenant
//! failing them keeps its previous content while the other tenants of the request are applied.

use serde_json::{json, Map, Value};

use crate::as3::schema::{validate_declaration, SchemaError, AS3_SCHEMA_VERSION};

use super::checks::{self, ListenerIndex};
use super::model::{applications, Tenant, TenantSet, Tenants};
use super::schema_defaults::default_of;
use super::state::{ChangeAction, DeclarationMeta};

/// What a `POST /declare` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Deploy,
    /// Validate and report, change nothing.
    DryRun,
    /// Delete the tenants named in the declaration.
    Remove,
    /// Answer with the current declaration.
    Retrieve,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum RequestError {
    /// Schema violations, as `"<path>: <message>"`.
    #[error("declaration is invalid")]
    Invalid(Vec<String>),
    /// Valid AS3 the simulator does not implement.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// A validated `POST /declare` body.
#[derive(Debug)]
pub(super) struct DeclareRequest {
    pub(super) action: Action,
    /// The ADC declaration (the `declaration` of an AS3 request, or the body itself).
    pub(super) adc: Map<String, Value>,
}

/// At most this many schema violations are reported, most specific first.
const MAX_REPORTED_VIOLATIONS: usize = 10;

/// Validates against the AS3 schema; violations come back with paths rewritten by `rebase`.
fn validate(body: &Value, rebase: impl Fn(&str) -> String) -> Result<(), RequestError> {
    let violations = validate_declaration(body)?;
    if violations.is_empty() {
        return Ok(());
    }
    let mut errors: Vec<String> = Vec::new();
    for violation in violations {
        let path = rebase(&violation.instance_path);
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let error = format!("{path}: {}", violation.message);
        if !errors.contains(&error) {
            errors.push(error);
        }
        if errors.len() == MAX_REPORTED_VIOLATIONS {
            break;
        }
    }
    Err(RequestError::Invalid(errors))
}

/// `"/declaration/T/A"` with prefix `"/declaration"` → `"/T/A"`; other paths are unchanged.
fn strip_path_prefix(path: &str, prefix: &str) -> String {
    match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
        _ => path.to_owned(),
    }
}

/// AS3 validates with AJV's `useDefaults`, which fills a missing property from its schema
/// `default` before `required` is checked; a plain JSON-schema validator reports it missing.
/// These are the required-with-default properties declarations leave out in practice (F5's own
/// examples omit `controls.class`; secrets often omit `protected`).
fn fill_required_defaults(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.contains_key("ciphertext") && !object.contains_key("protected") {
                if let Some(default) = default_of("JWE", "protected") {
                    object.insert("protected".to_owned(), default.clone());
                }
            }
            if let Some(Value::Object(controls)) = object.get_mut("controls") {
                if !controls.contains_key("class") {
                    if let Some(default) = default_of("Controls", "class") {
                        controls.insert("class".to_owned(), default.clone());
                    }
                }
            }
            object.values_mut().for_each(fill_required_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(fill_required_defaults),
        _ => {}
    }
}

/// Validates and unpacks a `POST /declare` body (`class: AS3` wrapper or bare `class: ADC`).
pub(super) fn parse_declare_body(mut body: Value, dry_run_requested: bool) -> Result<DeclareRequest, RequestError> {
    if body.is_array() {
        return Err(RequestError::Unsupported(
            "arrays of declarations (one per target device) are not supported by the BIG-IP simulator".to_owned(),
        ));
    }
    fill_required_defaults(&mut body);
    let wrapped = body.get("class").and_then(Value::as_str) == Some("AS3");
    validate(&body, |path| if wrapped { strip_path_prefix(path, "/declaration") } else { path.to_owned() })?;
    let Value::Object(mut object) = body else {
        return Err(RequestError::Invalid(vec!["/: should be object".to_owned()]));
    };
    let (action, adc) = if wrapped {
        let action = object.get("action").and_then(Value::as_str).unwrap_or("deploy").to_owned();
        let adc = match object.remove("declaration") {
            Some(Value::Object(adc)) => adc,
            _ => Map::new(),
        };
        (action, adc)
    } else {
        ("deploy".to_owned(), object)
    };
    let controls_dry_run = adc.get("controls").and_then(|c| c.get("dryRun")).and_then(Value::as_bool) == Some(true);
    let action = match action.as_str() {
        "deploy" if dry_run_requested || controls_dry_run => Action::DryRun,
        "deploy" => Action::Deploy,
        "dry-run" => Action::DryRun,
        "remove" => Action::Remove,
        "retrieve" => Action::Retrieve,
        other => {
            return Err(RequestError::Unsupported(format!("action '{other}' is not supported by the BIG-IP simulator")))
        }
    };
    Ok(DeclareRequest { action, adc })
}

/// Validates a per-application body (`POST /declare/<tenant>/applications`): Applications by
/// name plus declaration properties such as `schemaVersion`. It is validated as the ADC
/// declaration AS3 builds from it, with error paths mapped back onto the body.
pub(super) fn parse_applications_body(
    tenant: &str,
    body: &Value,
) -> Result<(Map<String, Value>, DeclarationMeta), RequestError> {
    let Some(object) = body.as_object() else {
        return Err(RequestError::Invalid(vec!["/: should be object".to_owned()]));
    };
    let mut adc = Map::new();
    let mut tenant_body = Map::new();
    tenant_body.insert("class".to_owned(), json!("Tenant"));
    for (key, value) in object {
        match key.as_str() {
            "class" => {}
            // Declaration-level properties; everything else belongs to the tenant.
            "schemaVersion" | "id" | "label" | "remark" | "controls" => {
                adc.insert(key.clone(), value.clone());
            }
            _ => {
                tenant_body.insert(key.clone(), value.clone());
            }
        }
    }
    adc.insert("class".to_owned(), json!("ADC"));
    adc.entry("schemaVersion").or_insert_with(|| json!(AS3_SCHEMA_VERSION));
    let tenant_prefix = format!("/{}", tenant.replace('~', "~0").replace('/', "~1"));
    adc.insert(tenant.to_owned(), Value::Object(tenant_body));
    let mut wrapped = Value::Object(adc);
    fill_required_defaults(&mut wrapped);
    validate(&wrapped, |path| strip_path_prefix(path, &tenant_prefix))?;

    let tenant_value = wrapped.get(tenant).cloned().unwrap_or(Value::Null);
    let apps: Map<String, Value> =
        applications(&tenant_value).map(|(name, app)| (name.to_owned(), Value::Object(app.clone()))).collect();
    if apps.is_empty() {
        return Err(RequestError::Invalid(vec!["/: should contain at least one Application".to_owned()]));
    }
    Ok((apps, DeclarationMeta::from_adc(object)))
}

/// The tenants an ADC declaration names, with their declared content.
pub(super) fn declared_tenants(adc: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    adc.iter().filter(|(_, value)| value.get("class").and_then(Value::as_str) == Some("Tenant"))
}

/// How one tenant fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Changed; `line_count` sizes the configuration written.
    Success {
        line_count: usize,
    },
    NoChange,
    /// Rejected with an AS3/BIG-IP error text; the tenant keeps its previous content.
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TenantResult {
    pub(super) tenant: String,
    pub(super) outcome: Outcome,
}

/// A change to record in the history once the plan is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub(super) tenant: String,
    pub(super) action: ChangeAction,
    pub(super) applications_before: Vec<String>,
    pub(super) applications_after: Vec<String>,
}

/// The tenants after a request, with per-tenant results and the changes made.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) tenants: Tenants,
    /// The destinations the virtual servers of `tenants` hold.
    pub(super) listeners: ListenerIndex,
    pub(super) results: Vec<TenantResult>,
    pub(super) changes: Vec<Change>,
}

/// The deployed state a request is planned against: the tenants and the destinations their
/// virtual servers hold. Both are shared, so a copy costs O(1) per tenant.
#[derive(Clone, Debug, Default)]
pub(super) struct Working {
    pub(super) tenants: Tenants,
    pub(super) listeners: ListenerIndex,
}

impl Plan {
    fn starting_from(working: Working) -> Self {
        Self { tenants: working.tenants, listeners: working.listeners, results: Vec::new(), changes: Vec::new() }
    }

    /// The deployed state once this plan is committed.
    #[cfg(test)]
    pub(super) fn working(&self) -> Working {
        Working { tenants: self.tenants.clone(), listeners: self.listeners.clone() }
    }

    fn record(&mut self, tenant: &str, outcome: Outcome) {
        self.results.push(TenantResult { tenant: tenant.to_owned(), outcome });
    }

    /// Deploys `tenant` under `name`; a tenant without Applications deletes it. Only what
    /// differs from the held tenant is checked.
    fn put_tenant(&mut self, name: &str, tenant: Tenant, action: ChangeAction) {
        let held = self.tenants.get(name).cloned();
        let applications_before = held.as_ref().map(|held| held.application_names()).unwrap_or_default();
        if tenant.application_count() == 0 {
            let action = if action == ChangeAction::Deployed { ChangeAction::Deleted } else { action };
            return self.remove_tenant(name, action);
        }
        let diff = Tenant::diff(held.as_deref(), &tenant);
        if diff.is_empty() {
            return self.record(name, Outcome::NoChange);
        }
        match checks::check_change(name, &tenant, &diff, &self.tenants, &self.listeners) {
            Ok(listeners) => self.listeners = listeners,
            Err(message) => return self.record(name, Outcome::Failed(message)),
        }
        let line_count = tenant.line_count(&diff);
        let applications_after = tenant.application_names();
        self.tenants.insert(name.to_owned(), std::sync::Arc::new(tenant));
        self.record(name, Outcome::Success { line_count });
        self.changes.push(Change { tenant: name.to_owned(), action, applications_before, applications_after });
    }

    fn remove_tenant(&mut self, name: &str, action: ChangeAction) {
        match self.tenants.remove(name) {
            Some(removed) => {
                self.listeners.replace_tenant(name, Some(&removed), None, TenantSet::new(&self.tenants));
                self.record(name, Outcome::Success { line_count: 0 });
                self.changes.push(Change {
                    tenant: name.to_owned(),
                    action,
                    applications_before: removed.application_names(),
                    applications_after: Vec::new(),
                });
            }
            None => self.record(name, Outcome::NoChange),
        }
    }

    /// Gives `name` back the content it had in `before` (a tenant refused after planning).
    pub(super) fn restore_tenant(&mut self, name: &str, before: &Tenants) {
        let held = before.get(name);
        let planned = match held {
            Some(content) => self.tenants.insert(name.to_owned(), content.clone()),
            None => self.tenants.remove(name),
        };
        let tenants = TenantSet::new(&self.tenants);
        self.listeners.replace_tenant(name, planned.as_deref(), held.map(AsRef::as_ref), tenants);
    }
}

/// Deploys the tenants of `adc` (only those in `only`, when given). With `updateMode:
/// complete`, tenants the declaration does not name are deleted.
pub(super) fn plan_deploy(current: Working, adc: &Map<String, Value>, only: Option<&[String]>) -> Plan {
    let mut plan = Plan::starting_from(current);
    let selected = |name: &String| only.is_none_or(|only| only.contains(name));
    for (name, tenant) in declared_tenants(adc).filter(|(name, _)| selected(name)) {
        plan.put_tenant(name, Tenant::from_value(tenant), ChangeAction::Deployed);
    }
    if only.is_none() && adc.get("updateMode").and_then(Value::as_str) == Some("complete") {
        let unnamed: Vec<String> = plan.tenants.keys().filter(|name| !adc.contains_key(*name)).cloned().collect();
        for name in unnamed {
            plan.remove_tenant(&name, ChangeAction::Deleted);
        }
    }
    plan
}

/// Deletes the named tenants.
pub(super) fn plan_remove(current: Working, names: &[String]) -> Plan {
    let mut plan = Plan::starting_from(current);
    for name in names {
        plan.remove_tenant(name, ChangeAction::Deleted);
    }
    plan
}

/// Creates or replaces `apps` in `tenant` (creating the tenant), leaving its other
/// Applications as they are.
pub(super) fn plan_put_applications(current: Working, tenant: &str, apps: Map<String, Value>) -> Plan {
    let mut plan = Plan::starting_from(current);
    let content = match plan.tenants.get(tenant) {
        Some(held) => held.with_applications(apps),
        None => Tenant::empty().with_applications(apps),
    };
    plan.put_tenant(tenant, content, ChangeAction::ApplicationsDeployed);
    plan
}

/// Removes one Application; `None` when the tenant has no such Application. Removing the last
/// Application removes the tenant.
pub(super) fn plan_delete_application(current: Working, tenant: &str, application: &str) -> Option<Plan> {
    let content = current.tenants.get(tenant)?.without_application(application)?;
    let mut plan = Plan::starting_from(current);
    plan.put_tenant(tenant, content, ChangeAction::ApplicationDeleted);
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(address: &str) -> Value {
        json!({"class": "Tenant", "A": {"class": "Application",
            "service": {"class": "Service_HTTP", "virtualAddresses": [address], "pool": "web_pool"},
            "web_pool": {"class": "Pool", "members": [{"servicePort": 80, "serverAddresses": ["192.0.2.10"]}]}}})
    }

    fn adc(tenants: &[(&str, Value)]) -> Map<String, Value> {
        let mut adc = Map::new();
        adc.insert("class".to_owned(), json!("ADC"));
        adc.insert("schemaVersion".to_owned(), json!("3.50.0"));
        for (name, content) in tenants {
            adc.insert((*name).to_owned(), content.clone());
        }
        adc
    }

    #[test]
    fn deploy_then_redeploy_is_no_change() {
        let first = plan_deploy(Working::default(), &adc(&[("T1", tenant("10.0.0.1"))]), None);
        assert!(matches!(first.results[0].outcome, Outcome::Success { .. }));
        assert_eq!(first.changes.len(), 1);
        let second = plan_deploy(first.working(), &adc(&[("T1", tenant("10.0.0.1"))]), None);
        assert_eq!(second.results[0].outcome, Outcome::NoChange);
        assert!(second.changes.is_empty());
    }

    #[test]
    fn empty_tenant_deletes_and_complete_mode_deletes_unnamed() {
        let deployed =
            plan_deploy(Working::default(), &adc(&[("T1", tenant("10.0.0.1")), ("T2", tenant("10.0.0.2"))]), None);
        let deleted = plan_deploy(deployed.working(), &adc(&[("T1", json!({"class": "Tenant"}))]), None);
        assert_eq!(deleted.tenants.keys().collect::<Vec<_>>(), vec!["T2"]);
        assert_eq!(deleted.changes[0].action, ChangeAction::Deleted);

        let mut complete = adc(&[("T1", tenant("10.0.0.1"))]);
        complete.insert("updateMode".to_owned(), json!("complete"));
        let replaced = plan_deploy(deployed.working(), &complete, None);
        assert_eq!(replaced.tenants.keys().collect::<Vec<_>>(), vec!["T1"]);
    }

    #[test]
    fn a_failing_tenant_does_not_block_the_others() {
        let mut broken = tenant("10.0.0.1");
        broken["A"]["service"]["pool"] = json!("missing");
        let plan = plan_deploy(Working::default(), &adc(&[("Bad", broken), ("Good", tenant("10.0.0.2"))]), None);
        assert!(matches!(&plan.results[0].outcome, Outcome::Failed(message) if message.contains("missing")));
        assert!(matches!(plan.results[1].outcome, Outcome::Success { .. }));
        assert_eq!(plan.tenants.keys().collect::<Vec<_>>(), vec!["Good"]);
    }

    #[test]
    fn applications_are_replaced_individually() {
        let deployed = plan_deploy(Working::default(), &adc(&[("T", tenant("10.0.0.1"))]), None);
        let mut extra = Map::new();
        extra.insert("B".to_owned(), tenant("10.0.0.2")["A"].clone());
        let added = plan_put_applications(deployed.working(), "T", extra);
        assert_eq!(added.tenants["T"].application_names(), vec!["A", "B"]);
        assert_eq!(added.changes[0].applications_before, vec!["A"]);

        let removed = plan_delete_application(added.working(), "T", "A").expect("A exists");
        assert_eq!(removed.tenants["T"].application_names(), vec!["B"]);
        assert!(plan_delete_application(removed.working(), "T", "A").is_none());
    }

    #[test]
    fn required_properties_with_defaults_are_filled_like_ajv_does() {
        let mut body = json!({"class": "ADC", "controls": {"trace": true},
            "T": {"class": "Tenant", "A": {"class": "Application",
                "c": {"class": "Certificate", "passphrase": {"ciphertext": "ZjVmNQ=="}}}}});
        fill_required_defaults(&mut body);
        assert_eq!(body["controls"]["class"], "Controls");
        assert_eq!(body["T"]["A"]["c"]["passphrase"]["protected"], "eyJhbGciOiJkaXIiLCJlbmMiOiJub25lIn0");
    }

    #[test]
    fn schema_paths_are_rebased() {
        assert_eq!(strip_path_prefix("/declaration/T/A", "/declaration"), "/T/A");
        assert_eq!(strip_path_prefix("/declarationX", "/declaration"), "/declarationX");
        assert_eq!(strip_path_prefix("/action", "/declaration"), "/action");
    }
}
