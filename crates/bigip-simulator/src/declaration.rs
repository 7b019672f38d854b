//! AS3 declare semantics as pure functions: unpacking and validating request bodies, and
//! planning what a request does to the deployed tenants.
//!
//! Only the tenants a request names are touched. A tenant without Applications is deleted;
//! otherwise its content is replaced, after the checks in [`checks`](super::checks). A tenant
//! failing them keeps its previous content while the other tenants of the request are applied.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use as3_rules::digest::{self, DigestError};
use as3_rules::schema::{
    post_process_sites, schema_words, validate_declaration, PostProcessSite, SchemaError, AS3_SCHEMA_VERSION,
};

use super::checks::{self, ListenerIndex, RouteDomains};
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
    /// The request wrapper is invalid (`Invalid request: <path>: <reason>`).
    #[error("Invalid request: {0}")]
    InvalidRequest(String),
    /// A key or class name AS3's schema does not know.
    #[error("Invalid data property: {0}")]
    UnknownProperty(String),
    /// The declaration is refused at AS3's parser level; the whole request fails.
    #[error("{error}")]
    Declaration { error: DigestError, context: DeclarationContext },
    /// Valid AS3 the simulator does not implement.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// What AS3's error answers say about the declaration they refuse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct DeclarationContext {
    pub(super) tenants: Vec<String>,
    pub(super) declaration_id: Option<String>,
}

impl DeclarationContext {
    pub(super) fn of(adc: &Map<String, Value>) -> Self {
        Self {
            tenants: declared_tenants(adc).map(|(name, _)| name.clone()).collect(),
            declaration_id: adc.get("id").and_then(Value::as_str).map(str::to_owned),
        }
    }

    pub(super) fn refuse(&self, error: DigestError) -> RequestError {
        RequestError::Declaration { error, context: self.clone() }
    }
}

/// A validated `POST /declare` body.
#[derive(Debug)]
pub(super) struct DeclareRequest {
    pub(super) action: Action,
    /// The ADC declaration (the `declaration` of an AS3 request, or the body itself).
    pub(super) adc: Map<String, Value>,
    /// Where the schema asks for further checks (paths into `adc`), run once the tenants the
    /// pointers may reach are known.
    pub(super) sites: Vec<PostProcessSite>,
}

/// Validates against the AS3 schema: the first violation, as AS3 reports it
/// (`"<path>: <reason>"`, paths rewritten by `rebase`).
fn first_violation(body: &Value, rebase: impl Fn(&str) -> String) -> Result<Option<String>, SchemaError> {
    let violations = validate_declaration(body)?;
    Ok(violations.into_iter().next().map(|violation| {
        let path = rebase(&violation.instance_path);
        let path = if path.is_empty() { "/".to_owned() } else { path };
        format!("{path}: {}", violation.message)
    }))
}

/// AS3's checks of an ADC declaration before anything is deployed, up to the ones that need
/// the device and the deployed tenants ([`digest_with_device`](super::digest)): the property
/// check, the `id` (whole declarations only), the schema, path lengths, duplicate node names and
/// values, PKCS#12 contents. Returns where the schema asks for further checks.
fn digest_offline(
    adc: &Value,
    check_id: bool,
    rebase: impl Fn(&str) -> String,
) -> Result<Vec<PostProcessSite>, RequestError> {
    let object = adc.as_object().cloned().unwrap_or_default();
    let context = DeclarationContext::of(&object);
    if let Some(word) = digest::unknown_property(adc, schema_words()?) {
        return Err(RequestError::UnknownProperty(word));
    }
    if check_id {
        digest::check_id(&object).map_err(|error| context.refuse(error))?;
    }
    if let Some(violation) = first_violation(adc, &rebase)? {
        return Err(context.refuse(DigestError::Invalid(violation)));
    }
    digest::check_structure(&object).map_err(|error| context.refuse(error))?;
    Ok(post_process_sites(adc)?)
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
    fill_required_defaults(&mut body);
    let Value::Object(mut object) = body else {
        return Err(RequestError::InvalidRequest("/: should be object".to_owned()));
    };
    // Like AS3, a bare declaration (class ADC or none) is a deploy request for it.
    let wrapped = object.get("class").and_then(Value::as_str) == Some("AS3") || object.contains_key("declaration");
    let (action, mut adc) = if wrapped {
        let declaration = object.remove("declaration");
        if let Some(Value::Object(declaration)) = &declaration {
            // The wrapper is checked with a minimal declaration in place of the real one, which
            // is checked on its own below.
            let mut wrapper = object.clone();
            let stub = json!({"class": declaration.get("class").cloned().unwrap_or(json!("ADC")), "schemaVersion": AS3_SCHEMA_VERSION});
            wrapper.insert("declaration".to_owned(), stub);
            if let Some(violation) = first_violation(&Value::Object(wrapper), |path| path.to_owned())? {
                return Err(RequestError::InvalidRequest(violation));
            }
        }
        let action = object.get("action").and_then(Value::as_str).unwrap_or("deploy").to_owned();
        let adc = match declaration {
            Some(Value::Object(adc)) => adc,
            Some(_) => return Err(RequestError::InvalidRequest("/declaration: should be object".to_owned())),
            None if matches!(action.as_str(), "retrieve" | "remove" | "redeploy") => Map::new(),
            None => {
                return Err(RequestError::InvalidRequest("/: should have required property 'declaration'".to_owned()))
            }
        };
        (action, adc)
    } else {
        ("deploy".to_owned(), object)
    };
    if !matches!(action.as_str(), "retrieve" | "redeploy") && !adc.contains_key("class") {
        return Err(RequestError::InvalidRequest("/declaration: should have required property 'class'".to_owned()));
    }
    let controls_dry_run = adc.get("controls").and_then(|c| c.get("dryRun")).and_then(Value::as_bool) == Some(true);
    let action = match action.as_str() {
        "deploy" if dry_run_requested || controls_dry_run => Action::DryRun,
        "deploy" => Action::Deploy,
        "dry-run" => Action::DryRun,
        "remove" => Action::Remove,
        "retrieve" => Action::Retrieve,
        "redeploy" => {
            return Err(RequestError::Unsupported(
                "action 'redeploy': the BIG-IP simulator keeps only the current declaration, no earlier ones"
                    .to_owned(),
            ))
        }
        other => {
            return Err(RequestError::Unsupported(format!("action '{other}' is not supported by the BIG-IP simulator")))
        }
    };
    let sites = match action {
        Action::Deploy | Action::DryRun => {
            // AS3 gives a declaration without an id (or with `generate`) one of its own.
            let generated = match adc.get("id") {
                None | Some(Value::Null) => true,
                Some(Value::String(id)) => id.is_empty() || id == "generate",
                Some(_) => false,
            };
            if generated {
                adc.insert("id".to_owned(), json!(generated_id()));
            }
            let value = Value::Object(std::mem::take(&mut adc));
            let sites = digest_offline(&value, true, |path| path.to_owned())?;
            adc = match value {
                Value::Object(adc) => adc,
                _ => Map::new(),
            };
            sites
        }
        Action::Remove | Action::Retrieve => Vec::new(),
    };
    Ok(DeclareRequest { action, adc, sites })
}

/// An id for a declaration that has none, like AS3's `autogen_<uuid>`.
fn generated_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("autogen_{:016x}-{:04x}", nanos & 0xffff_ffff_ffff_ffff, NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff)
}

/// Validates a per-application body (`POST /declare/<tenant>/applications`): Applications by
/// name plus declaration properties such as `schemaVersion`. It is validated as the ADC
/// declaration AS3 builds from it, with error paths mapped back onto the body.
pub(super) fn parse_applications_body(tenant: &str, body: &Value) -> Result<ApplicationsRequest, RequestError> {
    let Some(object) = body.as_object() else {
        return Err(RequestError::InvalidRequest("/: should be object".to_owned()));
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
    adc.insert(tenant.to_owned(), Value::Object(tenant_body));
    let mut wrapped = Value::Object(adc);
    fill_required_defaults(&mut wrapped);
    let tenant_value = wrapped.get(tenant).cloned().unwrap_or(Value::Null);
    if applications(&tenant_value).next().is_none() {
        return Err(RequestError::UnknownProperty(
            "Per-app declaration must contain at least one application".to_owned(),
        ));
    }
    // Errors name paths in the tenant, as AS3 shows them (`/T/A/service/pool`).
    let sites = digest_offline(&wrapped, false, |path| path.to_owned())?;
    let apps: Map<String, Value> =
        applications(&tenant_value).map(|(name, app)| (name.to_owned(), Value::Object(app.clone()))).collect();
    Ok(ApplicationsRequest { applications: apps, meta: DeclarationMeta::from_adc(object), declaration: wrapped, sites })
}

/// A validated per-application request.
#[derive(Debug)]
pub(super) struct ApplicationsRequest {
    pub(super) applications: Map<String, Value>,
    pub(super) meta: DeclarationMeta,
    /// The ADC declaration AS3 builds from the request (the tenant with these Applications).
    pub(super) declaration: Value,
    pub(super) sites: Vec<PostProcessSite>,
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
    /// The device's route domains (not changed by AS3).
    pub(super) route_domains: RouteDomains,
    pub(super) results: Vec<TenantResult>,
    pub(super) changes: Vec<Change>,
}

/// The deployed state a request is planned against: the tenants and the destinations their
/// virtual servers hold. Both are shared, so a copy costs O(1) per tenant.
#[derive(Clone, Debug, Default)]
pub(super) struct Working {
    pub(super) tenants: Tenants,
    pub(super) listeners: ListenerIndex,
    pub(super) route_domains: RouteDomains,
}

impl Plan {
    fn starting_from(working: Working) -> Self {
        Self {
            tenants: working.tenants,
            listeners: working.listeners,
            route_domains: working.route_domains,
            results: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// The deployed state once this plan is committed.
    #[cfg(test)]
    pub(super) fn working(&self) -> Working {
        Working {
            tenants: self.tenants.clone(),
            listeners: self.listeners.clone(),
            route_domains: self.route_domains.clone(),
        }
    }

    fn record(&mut self, tenant: &str, outcome: Outcome) {
        self.results.push(TenantResult { tenant: tenant.to_owned(), outcome });
    }

    /// Deploys `tenant` under `name`; a tenant without Applications deletes it. Only what
    /// differs from the held tenant is checked.
    fn put_tenant(&mut self, name: &str, tenant: Arc<Tenant>, action: ChangeAction) {
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
        match checks::check_change(name, &tenant, &diff, &self.tenants, &self.listeners, &self.route_domains) {
            Ok(listeners) => self.listeners = listeners,
            Err(message) => return self.record(name, Outcome::Failed(message)),
        }
        let line_count = tenant.line_count(&diff);
        let applications_after = tenant.application_names();
        self.tenants.insert(name.to_owned(), tenant);
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

/// The tenants `adc` declares (only those in `only`, when given), each built once.
pub(super) fn declared_contents(adc: &Map<String, Value>, only: Option<&[String]>) -> Vec<(String, Arc<Tenant>)> {
    let selected = |name: &String| only.is_none_or(|only| only.contains(name));
    declared_tenants(adc)
        .filter(|(name, _)| selected(name))
        .map(|(name, tenant)| (name.clone(), Arc::new(Tenant::from_value(tenant))))
        .collect()
}

/// `current` with `declared` in place: what pointers of the request may reach.
pub(super) fn tenants_after(current: &Tenants, declared: &[(String, Arc<Tenant>)]) -> Tenants {
    let mut after = current.clone();
    for (name, tenant) in declared {
        after.insert(name.clone(), tenant.clone());
    }
    after
}

/// Deploys the `declared` tenants of `adc`. With `updateMode: complete` (and no tenant
/// filter, `whole`), tenants the declaration does not name are deleted.
pub(super) fn plan_deploy(
    current: Working,
    adc: &Map<String, Value>,
    declared: Vec<(String, Arc<Tenant>)>,
    whole: bool,
) -> Plan {
    let mut plan = Plan::starting_from(current);
    for (name, tenant) in declared {
        plan.put_tenant(&name, tenant, ChangeAction::Deployed);
    }
    if whole && adc.get("updateMode").and_then(Value::as_str) == Some("complete") {
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

/// `tenant` as it is with `apps` created or replaced (created when missing).
pub(super) fn tenant_with_applications(current: &Working, tenant: &str, apps: Map<String, Value>) -> Arc<Tenant> {
    Arc::new(match current.tenants.get(tenant) {
        Some(held) => held.with_applications(apps),
        None => Tenant::empty().with_applications(apps),
    })
}

/// Deploys `content` (from [`tenant_with_applications`]) as `tenant`, leaving its other
/// Applications as they are.
pub(super) fn plan_put_applications(current: Working, tenant: &str, content: Arc<Tenant>) -> Plan {
    let mut plan = Plan::starting_from(current);
    plan.put_tenant(tenant, content, ChangeAction::ApplicationsDeployed);
    plan
}

/// Removes one Application; `None` when the tenant has no such Application. Removing the last
/// Application removes the tenant.
pub(super) fn plan_delete_application(current: Working, tenant: &str, application: &str) -> Option<Plan> {
    let content = current.tenants.get(tenant)?.without_application(application)?;
    let mut plan = Plan::starting_from(current);
    plan.put_tenant(tenant, Arc::new(content), ChangeAction::ApplicationDeleted);
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

    fn deploy(current: Working, adc: &Map<String, Value>) -> Plan {
        plan_deploy(current, adc, declared_contents(adc, None), true)
    }

    #[test]
    fn deploy_then_redeploy_is_no_change() {
        let first = deploy(Working::default(), &adc(&[("T1", tenant("10.0.0.1"))]));
        assert!(matches!(first.results[0].outcome, Outcome::Success { .. }));
        assert_eq!(first.changes.len(), 1);
        let second = deploy(first.working(), &adc(&[("T1", tenant("10.0.0.1"))]));
        assert_eq!(second.results[0].outcome, Outcome::NoChange);
        assert!(second.changes.is_empty());
    }

    #[test]
    fn empty_tenant_deletes_and_complete_mode_deletes_unnamed() {
        let deployed = deploy(Working::default(), &adc(&[("T1", tenant("10.0.0.1")), ("T2", tenant("10.0.0.2"))]));
        let deleted = deploy(deployed.working(), &adc(&[("T1", json!({"class": "Tenant"}))]));
        assert_eq!(deleted.tenants.keys().collect::<Vec<_>>(), vec!["T2"]);
        assert_eq!(deleted.changes[0].action, ChangeAction::Deleted);

        let mut complete = adc(&[("T1", tenant("10.0.0.1"))]);
        complete.insert("updateMode".to_owned(), json!("complete"));
        let replaced = deploy(deployed.working(), &complete);
        assert_eq!(replaced.tenants.keys().collect::<Vec<_>>(), vec!["T1"]);
    }

    #[test]
    fn a_failing_tenant_does_not_block_the_others() {
        let held = deploy(Working::default(), &adc(&[("Held", tenant("10.0.0.1"))]));
        // BIG-IP refuses a second virtual on a held destination when it deploys the tenant.
        let plan = deploy(held.working(), &adc(&[("Bad", tenant("10.0.0.1")), ("Good", tenant("10.0.0.2"))]));
        assert!(matches!(&plan.results[0].outcome, Outcome::Failed(message) if message.contains("/Held/A/service")));
        assert!(matches!(plan.results[1].outcome, Outcome::Success { .. }));
        assert_eq!(plan.tenants.keys().collect::<Vec<_>>(), vec!["Good", "Held"]);
    }

    #[test]
    fn applications_are_replaced_individually() {
        let deployed = deploy(Working::default(), &adc(&[("T", tenant("10.0.0.1"))]));
        let mut extra = Map::new();
        extra.insert("B".to_owned(), tenant("10.0.0.2")["A"].clone());
        let content = tenant_with_applications(&deployed.working(), "T", extra);
        let added = plan_put_applications(deployed.working(), "T", content);
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
}
