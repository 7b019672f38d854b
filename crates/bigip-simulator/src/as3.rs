//! The AS3 REST API under `/mgmt/shared/appsvcs`: declarations (sync and `?async=true`),
//! per-application deployment, tasks, `info` and `settings`.
//!
//! One declaration is processed at a time, as on a BIG-IP: while one runs (including the
//! configured processing delay) every other declare POST or DELETE is answered 503. Work is
//! done on a spawned task, so a client hanging up does not abort a change half-way.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use as3_rules::schema::AS3_SCHEMA_VERSION;

use as3_rules::digest::DigestError;

use super::catalog::DeviceCatalog;
use super::declaration::{
    self, declared_tenants, Action, DeclarationContext, Outcome, Plan, RequestError, TenantResult, Working,
};
use super::digest::{digest_applications, digest_with_device};
use super::faults;
use super::reply::{as3_error, parse_json_body, respond, InvalidJson};
use super::state::{lock, DeclarationMeta, DeclareGuard, SimulatorState};
use super::tasks::{pending_result, self_link};

const BUSY_MESSAGE: &str = "Configuration operation in progress on device, please try again in 2 minutes";

pub(super) fn routes() -> Router<SimulatorState> {
    Router::new()
        .route("/mgmt/shared/appsvcs/info", get(info))
        .route("/mgmt/shared/appsvcs/settings", get(settings))
        .route("/mgmt/shared/appsvcs/declare", get(get_declaration).post(post_declaration).delete(delete_all_tenants))
        .route(
            "/mgmt/shared/appsvcs/declare/{tenants}",
            get(get_tenants).post(post_declaration_for_tenants).delete(delete_tenants),
        )
        .route("/mgmt/shared/appsvcs/declare/{tenant}/applications", get(get_applications).post(post_applications))
        .route(
            "/mgmt/shared/appsvcs/declare/{tenant}/applications/{application}",
            get(get_application).delete(delete_application),
        )
        .route("/mgmt/shared/appsvcs/task", get(list_tasks))
        .route("/mgmt/shared/appsvcs/task/{id}", get(get_task))
}

async fn info(State(sim): State<SimulatorState>) -> Response {
    respond(
        StatusCode::OK,
        json!({
            "version": sim.shared().settings.as3_version,
            "release": "10",
            "schemaCurrent": AS3_SCHEMA_VERSION,
            "schemaMinimum": "3.0.0",
        }),
    )
}

async fn settings(State(sim): State<SimulatorState>) -> Response {
    respond(
        StatusCode::OK,
        json!({
            "asyncTaskStorage": "data-group",
            "burstHandlingEnabled": false,
            "performanceTracingEnabled": false,
            "performanceTracingEndpoint": "",
            "serviceDiscoveryEnabled": true,
            "serializeFileUploads": false,
            "perAppDeploymentAllowed": sim.shared().settings.per_application_api,
            "webhook": "",
        }),
    )
}

/// The `User-Agent` of a request, recorded with the changes it makes: operator replicas share
/// one BIG-IP user, and this is how the history tells them apart.
struct RequestClient(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestClient {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let agent = parts.headers.get(USER_AGENT).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        Ok(Self(agent))
    }
}

/// One unit of AS3 work.
enum Job {
    Declare {
        body: Value,
        only: Option<Vec<String>>,
        dry_run: bool,
    },
    /// `None` deletes every tenant.
    DeleteTenants {
        names: Option<Vec<String>>,
    },
    PutApplications {
        tenant: String,
        body: Value,
    },
    DeleteApplication {
        tenant: String,
        application: String,
    },
}

impl Job {
    /// Application objects in the request (what AS3 builds and checks one by one).
    fn application_count(&self) -> usize {
        let applications_in = |tenant: &Value| {
            tenant.as_object().map_or(0, |objects| {
                objects.values().filter(|v| v.get("class").and_then(Value::as_str) == Some("Application")).count()
            })
        };
        match self {
            Self::Declare { body, .. } => {
                let adc = if body.get("class").and_then(Value::as_str) == Some("AS3") {
                    body.get("declaration").unwrap_or(body)
                } else {
                    body
                };
                adc.as_object().map_or(0, |objects| objects.values().map(applications_in).sum())
            }
            Self::PutApplications { body, .. } => applications_in(body),
            Self::DeleteTenants { .. } => 0,
            Self::DeleteApplication { .. } => 1,
        }
    }
}

/// How long AS3 takes for a plan: the fixed time, plus the time per Application in the
/// request, plus the time per Application in each tenant it touches (the larger of before and
/// after), as AS3 re-reads a tenant's live configuration also for a per-application request.
fn simulated_run_time(
    settings: &super::state::Settings,
    request_applications: usize,
    plan: &Plan,
) -> std::time::Duration {
    let tenant_applications: usize =
        plan.changes.iter().map(|change| change.applications_before.len().max(change.applications_after.len())).sum();
    let times = |per: std::time::Duration, n: usize| per.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    settings
        .as3_processing_delay
        .saturating_add(times(settings.as3_delay_per_request_application, request_applications))
        .saturating_add(times(settings.as3_delay_per_tenant_application, tenant_applications))
}

/// What a job produced, convertible to a sync response or a task record.
enum JobOutcome {
    /// Per-tenant results; the HTTP status follows from their codes.
    Results { results: Vec<Value>, declaration: Value },
    /// One document: an error, or a retrieved declaration.
    Document { status: StatusCode, body: Value },
}

impl JobOutcome {
    fn into_response(self) -> Response {
        match self {
            Self::Results { results, declaration } => {
                let status = results_status(&results);
                respond(status, json!({"results": results, "declaration": declaration}))
            }
            Self::Document { status, body } => respond(status, body),
        }
    }

    fn into_task_record(self) -> (Vec<Value>, Value) {
        match self {
            Self::Results { results, declaration } => (results, declaration),
            Self::Document { body, .. } => (vec![body], json!({})),
        }
    }
}

/// 200 when every tenant succeeded, the shared error code when all failed, 207 when mixed.
fn results_status(results: &[Value]) -> StatusCode {
    let codes: Vec<u16> = results
        .iter()
        .map(|result| result.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(200))
        .collect();
    if codes.iter().all(|code| *code == 200) {
        StatusCode::OK
    } else if codes.iter().all(|code| *code != 200) {
        codes.first().and_then(|code| StatusCode::from_u16(*code).ok()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        StatusCode::MULTI_STATUS
    }
}

fn tenant_list(segment: &str) -> Vec<String> {
    segment.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

/// Whether `name=true` is in the query string.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.into_iter().flat_map(|query| query.split('&')).any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        key == name && value.eq_ignore_ascii_case("true")
    })
}

#[derive(Clone, Copy)]
enum Verb {
    Post,
    Delete,
}

/// Common path of every declare request: count it, apply injected faults, build the job,
/// claim the declare slot, then run it synchronously or as a task.
async fn submit(
    sim: SimulatorState,
    verb: Verb,
    query: Option<String>,
    RequestClient(client): RequestClient,
    build: impl FnOnce() -> Result<Job, InvalidJson>,
) -> Response {
    match verb {
        Verb::Post => sim.count_declare_post(),
        Verb::Delete => sim.count_declare_delete(),
    }
    match sim.shared().faults.take_declare_failure() {
        Some(StatusCode::SERVICE_UNAVAILABLE) => return as3_error(StatusCode::SERVICE_UNAVAILABLE, BUSY_MESSAGE),
        Some(status) => return as3_error(status, "Internal Server Error (injected by the BIG-IP simulator)"),
        None => {}
    }
    let job = match build() {
        Ok(job) => job,
        Err(invalid) => return invalid.into_response(),
    };
    let Some(guard) = sim.try_begin_declare() else {
        return as3_error(StatusCode::SERVICE_UNAVAILABLE, BUSY_MESSAGE);
    };

    if query_flag(query.as_deref(), "async") {
        let id = lock(&sim.shared().tasks).start();
        let task_id = id.clone();
        let record_lost = sim.shared().faults.take_task_record_loss();
        tokio::spawn(async move {
            let (results, declaration) = run(&sim, &guard, job, client.as_deref()).await.into_task_record();
            let mut tasks = lock(&sim.shared().tasks);
            if record_lost {
                tasks.forget(&task_id);
            } else {
                tasks.finish(&task_id, results, declaration);
            }
            drop(tasks);
            drop(guard);
        });
        return respond(
            StatusCode::ACCEPTED,
            json!({
                "id": id,
                "results": [pending_result("Declaration successfully submitted")],
                "declaration": {},
                "selfLink": self_link(&id),
            }),
        );
    }

    let worker = tokio::spawn(async move {
        let outcome = run(&sim, &guard, job, client.as_deref()).await;
        drop(guard);
        outcome
    });
    match worker.await {
        Ok(outcome) => outcome.into_response(),
        Err(error) => {
            tracing::error!(%error, "declaration processing failed");
            as3_error(StatusCode::INTERNAL_SERVER_ERROR, "declaration processing failed")
        }
    }
}

/// What to echo as `declaration` in the results.
enum Echo {
    Submitted(Value),
    /// The declaration-level properties after the change (deletes).
    Header,
}

/// A job after the CPU-bound part (validation, checks, planning).
enum Computed {
    /// `touched`: the Applications the request deploys or removes, whose device-side edits AS3
    /// repairs even when their declaration is unchanged.
    Plan {
        plan: Box<Plan>,
        meta: DeclarationMeta,
        dry_run: bool,
        echo: Echo,
        touched: Vec<(String, String)>,
    },
    Retrieve,
    Document {
        status: StatusCode,
        body: Value,
    },
}

/// Runs `job` for the client with User-Agent `client`. An array of declarations (one per
/// target device) runs item by item, the simulator standing in for every target.
async fn run(sim: &SimulatorState, guard: &DeclareGuard, job: Job, client: Option<&str>) -> JobOutcome {
    let Job::Declare { body: Value::Array(items), only, dry_run } = job else {
        return run_one(sim, guard, job, client).await;
    };
    if items.is_empty() {
        return JobOutcome::Document {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({"code": 422, "message": "Invalid request: /: should NOT have fewer than 1 items"}),
        };
    }
    let mut documents = Vec::with_capacity(items.len());
    let mut statuses = Vec::with_capacity(items.len());
    for body in items {
        let item = Job::Declare { body, only: only.clone(), dry_run };
        let (status, document) = match Box::pin(run_one(sim, guard, item, client)).await {
            JobOutcome::Results { results, declaration } => {
                (results_status(&results), json!({"results": results, "declaration": declaration}))
            }
            JobOutcome::Document { status, body } => (status, body),
        };
        statuses.push(status);
        documents.push(document);
    }
    let status = if statuses.iter().all(StatusCode::is_success) {
        StatusCode::OK
    } else if statuses.iter().any(StatusCode::is_success) {
        StatusCode::MULTI_STATUS
    } else {
        statuses.first().copied().unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    };
    JobOutcome::Document { status, body: json!({"items": documents}) }
}

async fn run_one(sim: &SimulatorState, guard: &DeclareGuard, job: Job, client: Option<&str>) -> JobOutcome {
    let started = Instant::now();
    let request_applications = job.application_count();
    let current = sim.working();
    let device = sim.device();
    let rejected_application = sim.shared().faults.rejected_application();
    let computed = match tokio::task::spawn_blocking(move || compute(job, current, &device, rejected_application)).await
    {
        Ok(computed) => computed,
        Err(error) => {
            tracing::error!(%error, "declaration processing panicked");
            return JobOutcome::Document {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({"code": 500, "message": "declaration processing failed"}),
            };
        }
    };
    match computed {
        Computed::Document { status, body } => JobOutcome::Document { status, body },
        Computed::Retrieve => JobOutcome::Document {
            status: StatusCode::OK,
            body: sim.with_deployed(|deployed| deployed.declaration(|_| true)),
        },
        Computed::Plan { plan, meta, dry_run, echo, touched } => {
            // The simulated AS3 run time, during which the declare slot stays taken.
            let delay = simulated_run_time(&sim.shared().settings, request_applications, &plan);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let Plan { tenants, listeners, route_domains, mut results, changes } = *plan;
            if !dry_run {
                let repaired = sim.repair_live(&touched);
                for result in results.iter_mut().filter(|result| repaired.contains(&result.tenant)) {
                    if result.outcome == Outcome::NoChange {
                        tracing::info!(tenant = %result.tenant, client, "objects changed on the device put back as declared");
                        result.outcome = Outcome::Success { line_count: 0 };
                    }
                }
            }
            let working = Working { tenants, listeners, route_domains };
            if !dry_run && !changes.is_empty() {
                for change in &changes {
                    tracing::info!(tenant = %change.tenant, action = ?change.action, client, "tenant changed");
                }
                sim.commit(guard, working, changes, meta, client);
                sim.persist(guard).await;
            }
            let run_time = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let declaration = match echo {
                Echo::Submitted(declaration) => declaration,
                Echo::Header => Value::Object(sim.with_deployed(|deployed| deployed.declaration_header())),
            };
            let declaration_id = declaration.get("id").and_then(Value::as_str);
            let results = result_documents(&results, run_time, dry_run, declaration_id);
            JobOutcome::Results { results, declaration }
        }
    }
}

/// Plans `job` against the `current` tenants; `rejected_application` is the fault
/// [`reject_tenants_with_application`](super::faults::Faults::reject_tenants_with_application).
fn compute(job: Job, current: Working, device: &DeviceCatalog, rejected_application: Option<String>) -> Computed {
    let Some(needle) = rejected_application else { return plan_job(job, current, device) };
    let before = current.tenants.clone();
    let mut computed = plan_job(job, current, device);
    if let Computed::Plan { plan, .. } = &mut computed {
        faults::reject_matching_tenants(plan, &before, &needle);
    }
    computed
}

fn plan_job(job: Job, current: Working, device: &DeviceCatalog) -> Computed {
    match job {
        Job::Declare { body, only, dry_run } => {
            let request = match declaration::parse_declare_body(body, dry_run) {
                Ok(request) => request,
                Err(error) => return request_error(error),
            };
            let selected = |name: &String| only.as_ref().is_none_or(|only| only.contains(name));
            match request.action {
                Action::Retrieve => Computed::Retrieve,
                Action::Remove => {
                    let names: Vec<String> =
                        declared_tenants(&request.adc).map(|(name, _)| name.clone()).filter(selected).collect();
                    let touched = applications_of(&current, &names);
                    Computed::Plan {
                        plan: Box::new(declaration::plan_remove(current, &names)),
                        meta: DeclarationMeta::default(),
                        dry_run: false,
                        echo: Echo::Submitted(Value::Object(request.adc)),
                        touched,
                    }
                }
                Action::Deploy | Action::DryRun => {
                    let declared = declaration::declared_contents(&request.adc, only.as_deref());
                    let after = declaration::tenants_after(&current.tenants, &declared);
                    if let Err(error) = digest_with_device(&request.adc, &request.sites, &after, device) {
                        return request_error(error);
                    }
                    drop(after);
                    let names: Vec<String> = declared.iter().map(|(name, _)| name.clone()).collect();
                    let mut touched = applications_of(&current, &names);
                    for (name, tenant) in &declared {
                        touched.extend(tenant.application_names().into_iter().map(|app| (name.clone(), app)));
                    }
                    Computed::Plan {
                        touched,
                        plan: Box::new(declaration::plan_deploy(current, &request.adc, declared, only.is_none())),
                        meta: DeclarationMeta::from_adc(&request.adc),
                        dry_run: request.action == Action::DryRun,
                        echo: Echo::Submitted(Value::Object(request.adc)),
                    }
                }
            }
        }
        Job::DeleteTenants { names } => {
            let names = names.unwrap_or_else(|| current.tenants.keys().cloned().collect());
            let touched = applications_of(&current, &names);
            Computed::Plan {
                touched,
                plan: Box::new(declaration::plan_remove(current, &names)),
                meta: DeclarationMeta::default(),
                dry_run: false,
                echo: Echo::Header,
            }
        }
        Job::PutApplications { tenant, body } => match declaration::parse_applications_body(&tenant, &body) {
            Ok(request) => {
                let touched: Vec<(String, String)> =
                    request.applications.keys().map(|app| (tenant.clone(), app.clone())).collect();
                let content = declaration::tenant_with_applications(&current, &tenant, request.applications);
                let after = declaration::tenants_after(&current.tenants, &[(tenant.clone(), content.clone())]);
                let declaration = request.declaration.as_object().cloned().unwrap_or_default();
                if let Err(error) = digest_applications(&tenant, &declaration, &request.sites, &content, &after, device)
                {
                    return request_error(error);
                }
                drop(after);
                Computed::Plan {
                    touched,
                    plan: Box::new(declaration::plan_put_applications(current, &tenant, content)),
                    meta: request.meta,
                    dry_run: false,
                    echo: Echo::Submitted(body),
                }
            }
            Err(error) => request_error(error),
        },
        Job::DeleteApplication { tenant, application } => {
            match declaration::plan_delete_application(current, &tenant, &application) {
                Some(plan) => Computed::Plan {
                    touched: vec![(tenant.clone(), application.clone())],
                    plan: Box::new(plan),
                    meta: DeclarationMeta::default(),
                    dry_run: false,
                    echo: Echo::Header,
                },
                None => Computed::Document {
                    status: StatusCode::NOT_FOUND,
                    body: json!({"code": 404, "message": format!("Application {application} not found in tenant {tenant}")}),
                },
            }
        }
    }
}

/// `(tenant, application)` for every Application the named deployed tenants hold.
fn applications_of(current: &Working, tenants: &[String]) -> Vec<(String, String)> {
    tenants
        .iter()
        .filter_map(|name| current.tenants.get(name).map(|tenant| (name, tenant)))
        .flat_map(|(name, tenant)| tenant.application_names().into_iter().map(move |app| (name.clone(), app)))
        .collect()
}

fn request_error(error: RequestError) -> Computed {
    let (status, body) = match error {
        RequestError::InvalidRequest(_) | RequestError::UnknownProperty(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, json!({"code": 422, "message": error.to_string()}))
        }
        RequestError::Declaration { error, context } => declaration_refusal(&error, &context),
        RequestError::Unsupported(message) => {
            (StatusCode::UNPROCESSABLE_ENTITY, json!({"code": 422, "message": message}))
        }
        RequestError::Schema(error) => {
            tracing::error!(%error, "AS3 schema unavailable");
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"code": 500, "message": error.to_string()}))
        }
    };
    Computed::Document { status, body }
}

/// AS3 3.56's answer to a declaration its parser refuses: `errors` (one) for validator-style
/// failures, `host`, the `tenant` list and the declaration's id.
fn declaration_refusal(error: &DigestError, context: &DeclarationContext) -> (StatusCode, Value) {
    let (status, message, errors) = match error {
        DigestError::Invalid(detail) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "declaration is invalid".to_owned(), Some(detail))
        }
        DigestError::Refused(message) => (StatusCode::UNPROCESSABLE_ENTITY, message.clone(), None),
        DigestError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone(), None),
    };
    let mut body = Map::new();
    body.insert("code".to_owned(), json!(status.as_u16()));
    if let Some(detail) = errors {
        body.insert("errors".to_owned(), json!([detail]));
    }
    body.insert("message".to_owned(), json!(message));
    body.insert("host".to_owned(), json!("localhost"));
    let tenants: Vec<String> = match (context.tenants.len(), errors) {
        (1, _) => context.tenants.clone(),
        (_, Some(detail)) => detail
            .strip_prefix('/')
            .and_then(|rest| rest.split('/').next())
            .filter(|tenant| context.tenants.iter().any(|known| known == tenant))
            .map(|tenant| vec![tenant.to_owned()])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if !tenants.is_empty() {
        body.insert("tenant".to_owned(), json!(tenants));
    }
    if let Some(id) = &context.declaration_id {
        body.insert("declarationId".to_owned(), json!(id));
    }
    (status, Value::Object(body))
}

/// Per-tenant result objects as AS3 3.51+ reports them: `tenant` as a list (F5's own tests read
/// `results[0].tenant[0]`), `host` and `declarationId`.
fn result_documents(
    results: &[TenantResult],
    run_time: u64,
    dry_run: bool,
    declaration_id: Option<&str>,
) -> Vec<Value> {
    if results.is_empty() {
        return vec![json!({"code": 200, "message": "no change", "host": "localhost", "runTime": run_time})];
    }
    results
        .iter()
        .map(|result| {
            let mut document = match &result.outcome {
                Outcome::Success { line_count } => json!({"code": 200, "message": "success", "lineCount": line_count}),
                Outcome::NoChange => json!({"code": 200, "message": "no change"}),
                Outcome::Failed(detail) => json!({"code": 422, "message": "declaration failed", "response": detail}),
            };
            if let Some(fields) = document.as_object_mut() {
                fields.insert("host".to_owned(), json!("localhost"));
                fields.insert("tenant".to_owned(), json!([result.tenant]));
                fields.insert("runTime".to_owned(), json!(run_time));
                if let Some(id) = declaration_id {
                    fields.insert("declarationId".to_owned(), json!(id));
                }
                if dry_run {
                    fields.insert("dryRun".to_owned(), json!(true));
                }
            }
            document
        })
        .collect()
}

async fn post_declaration(
    State(sim): State<SimulatorState>,
    client: RequestClient,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    sim.count_declare_bytes(body.len());
    let dry_run = query_flag(query.as_deref(), "controls.dryRun");
    submit(sim, Verb::Post, query, client, move || {
        Ok(Job::Declare { body: parse_json_body(&body)?, only: None, dry_run })
    })
    .await
}

async fn post_declaration_for_tenants(
    State(sim): State<SimulatorState>,
    client: RequestClient,
    Path(tenants): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    sim.count_declare_bytes(body.len());
    let dry_run = query_flag(query.as_deref(), "controls.dryRun");
    let only = Some(tenant_list(&tenants));
    submit(sim, Verb::Post, query, client, move || Ok(Job::Declare { body: parse_json_body(&body)?, only, dry_run }))
        .await
}

async fn delete_all_tenants(
    State(sim): State<SimulatorState>,
    client: RequestClient,
    RawQuery(query): RawQuery,
) -> Response {
    submit(sim, Verb::Delete, query, client, || Ok(Job::DeleteTenants { names: None })).await
}

async fn delete_tenants(
    State(sim): State<SimulatorState>,
    client: RequestClient,
    Path(tenants): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let names = tenant_list(&tenants);
    submit(sim, Verb::Delete, query, client, move || Ok(Job::DeleteTenants { names: Some(names) })).await
}

async fn post_applications(
    State(sim): State<SimulatorState>,
    client: RequestClient,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    sim.count_declare_bytes(body.len());
    if let Some(refused) = per_application_refusal(&sim) {
        return refused;
    }
    submit(sim, Verb::Post, query, client, move || Ok(Job::PutApplications { tenant, body: parse_json_body(&body)? }))
        .await
}

async fn delete_application(
    State(sim): State<SimulatorState>,
    client: RequestClient,
    Path((tenant, application)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refused) = per_application_refusal(&sim) {
        return refused;
    }
    submit(sim, Verb::Delete, query, client, move || Ok(Job::DeleteApplication { tenant, application })).await
}

/// The answer to a per-application request where the API is not available: AS3 before 3.50,
/// or `perAppDeploymentAllowed` off.
fn per_application_refusal(sim: &SimulatorState) -> Option<Response> {
    let settings = &sim.shared().settings;
    let mut version = settings.as3_version.split('.').map(|part| part.trim().parse::<u32>().unwrap_or(0));
    let recent = (version.next().unwrap_or(0), version.next().unwrap_or(0)) >= (3, 50);
    if recent && settings.per_application_api {
        return None;
    }
    let why = if recent { "perAppDeploymentAllowed is false" } else { "it needs AS3 3.50 or later" };
    Some(as3_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("per-application deployment is not available: {why} (answer of the BIG-IP simulator)"),
    ))
}

async fn get_declaration(State(sim): State<SimulatorState>) -> Response {
    let declaration =
        sim.with_deployed(|deployed| (!deployed.tenants.is_empty()).then(|| deployed.declaration(|_| true)));
    match declaration {
        Some(declaration) => respond(StatusCode::OK, declaration),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

fn tenant_not_found(names: &[&str]) -> Response {
    as3_error(StatusCode::NOT_FOUND, format!("specified Tenant(s) '{}' not found in declaration", names.join(",")))
}

async fn get_tenants(State(sim): State<SimulatorState>, Path(tenants): Path<String>) -> Response {
    let names = tenant_list(&tenants);
    sim.with_deployed(|deployed| {
        let missing: Vec<&str> =
            names.iter().filter(|name| !deployed.tenants.contains_key(*name)).map(String::as_str).collect();
        if missing.is_empty() {
            respond(StatusCode::OK, deployed.declaration(|name| names.iter().any(|wanted| wanted == name)))
        } else {
            tenant_not_found(&missing)
        }
    })
}

async fn get_applications(State(sim): State<SimulatorState>, Path(tenant): Path<String>) -> Response {
    sim.with_deployed(|deployed| match deployed.tenants.get(&tenant) {
        Some(content) => {
            let apps: Map<String, Value> =
                content.applications().map(|(name, app)| (name.to_owned(), Value::Object(app.clone()))).collect();
            respond(StatusCode::OK, Value::Object(apps))
        }
        None => tenant_not_found(&[&tenant]),
    })
}

async fn get_application(
    State(sim): State<SimulatorState>,
    Path((tenant, application)): Path<(String, String)>,
) -> Response {
    sim.with_deployed(|deployed| {
        let Some(content) = deployed.tenants.get(&tenant) else {
            return tenant_not_found(&[&tenant]);
        };
        match content.application(&application) {
            Some(app) => respond(StatusCode::OK, json!({ application: app })),
            None => as3_error(StatusCode::NOT_FOUND, format!("Application {application} not found in tenant {tenant}")),
        }
    })
}

async fn list_tasks(State(sim): State<SimulatorState>) -> Response {
    respond(StatusCode::OK, lock(&sim.shared().tasks).list())
}

async fn get_task(State(sim): State<SimulatorState>, Path(id): Path<String>) -> Response {
    sim.shared().counts.task_polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    match lock(&sim.shared().tasks).get(&id) {
        Some(task) => respond(StatusCode::OK, task),
        None => as3_error(StatusCode::NOT_FOUND, format!("No record found with ID of {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::collections::BTreeMap;

    #[test]
    fn status_follows_result_codes() {
        let ok = json!({"code": 200});
        let failed = json!({"code": 422});
        assert_eq!(results_status(&[ok.clone(), ok.clone()]), StatusCode::OK);
        assert_eq!(results_status(&[ok, failed.clone()]), StatusCode::MULTI_STATUS);
        assert_eq!(results_status(&[failed]), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn query_flags() {
        assert!(query_flag(Some("async=true"), "async"));
        assert!(query_flag(Some("show=full&async=TRUE"), "async"));
        assert!(!query_flag(Some("async=false"), "async"));
        assert!(!query_flag(None, "async"));
        assert!(query_flag(Some("controls.dryRun=true"), "controls.dryRun"));
    }
}
