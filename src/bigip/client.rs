//! The HTTP client for iControl REST and AS3.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::config::{BigIpConfig, TlsVerification};
use super::error::BigIpError;
use super::response::{parse_as3_answer_text, As3Answer, DeployReport};
use super::As3Api;

const LOGIN_PATH: &str = "/mgmt/shared/authn/login";
const DECLARE_PATH: &str = "/mgmt/shared/appsvcs/declare";
const TASK_PATH: &str = "/mgmt/shared/appsvcs/task";
/// The iControl REST type of route domains, looked up by id (see `device_object_exists`).
pub const ROUTE_DOMAIN_KIND: &str = "net/route-domain";
const TOKEN_HEADER: &str = "X-F5-Auth-Token";
/// A token is renewed this long before the BIG-IP would expire it.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

/// A BIG-IP client: logs in for a token, renews it before expiry and after a 401, retries
/// 503 answers with exponential back-off and jitter, and runs declarations as async AS3 tasks.
pub struct BigIpClient {
    http: reqwest::Client,
    config: BigIpConfig,
    token: Mutex<Option<Token>>,
    observer: Option<std::sync::Arc<dyn ClientObserver>>,
}

/// Told about every request of a [`BigIpClient`] (the operator's metrics).
pub trait ClientObserver: Send + Sync {
    /// An AS3 declaration of `bytes` bytes is being posted.
    fn as3_request(&self, bytes: usize);
    /// The BIG-IP answered (`true`, whatever the answer), or could not be reached (`false`).
    fn reachable(&self, reachable: bool);
}

impl std::fmt::Debug for BigIpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigIpClient").field("url", &self.config.url).finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    /// JSON already serialised (sent as it is on every attempt).
    Serialized(bytes::Bytes),
}

impl BigIpClient {
    pub fn new(config: BigIpConfig) -> Result<Self, BigIpError> {
        let mut builder =
            reqwest::Client::builder().timeout(config.request_timeout).user_agent(config.user_agent.clone());
        match &config.tls {
            TlsVerification::System => {}
            TlsVerification::CaBundle(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| BigIpError::Tls(format!("reading CA bundle {}: {e}", path.display())))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| BigIpError::Tls(format!("CA bundle {}: {e}", path.display())))?;
                builder = builder.tls_certs_only(certs);
            }
            TlsVerification::Insecure => {
                warn!("TLS verification of the BIG-IP is disabled: credentials can be intercepted");
                builder = builder.danger_accept_invalid_certs(true);
            }
        }
        let http = builder.build().map_err(|e| BigIpError::Tls(e.to_string()))?;
        Ok(Self { http, config, token: Mutex::new(None), observer: None })
    }

    /// Reports every request to `observer`.
    pub fn observed_by(mut self, observer: std::sync::Arc<dyn ClientObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// A valid token, logging in when there is none or it is about to expire.
    async fn token(&self) -> Result<String, BigIpError> {
        let mut guard = self.token.lock().await;
        if let Some(token) = guard.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = self.login().await?;
        let value = token.value.clone();
        *guard = Some(token);
        Ok(value)
    }

    async fn forget_token(&self, rejected: &str) {
        let mut guard = self.token.lock().await;
        if guard.as_ref().is_some_and(|t| t.value == rejected) {
            *guard = None;
        }
    }

    async fn login(&self) -> Result<Token, BigIpError> {
        let url = format!("{}{LOGIN_PATH}", self.config.url);
        let body = json!({
            "username": self.config.credentials.username,
            "password": self.config.credentials.password(),
            "loginProviderName": "tmos",
        });
        let started = Instant::now();
        let response = self.http.post(&url).json(&body).send().await.map_err(|e| self.unreachable(e))?;
        if let Some(observer) = &self.observer {
            observer.reachable(true);
        }
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| truncate(&text));
            return Err(BigIpError::Login {
                username: self.config.credentials.username.clone(),
                status: status.as_u16(),
                message,
            });
        }
        let parsed: Value = serde_json::from_str(&text).map_err(|e| BigIpError::InvalidResponse {
            path: LOGIN_PATH.into(),
            detail: format!("login answer is not JSON: {e}"),
        })?;
        let token = parsed.pointer("/token/token").and_then(Value::as_str).ok_or_else(|| {
            BigIpError::InvalidResponse { path: LOGIN_PATH.into(), detail: "login answer has no token.token".into() }
        })?;
        let lifetime = Duration::from_secs(parsed.pointer("/token/timeout").and_then(Value::as_u64).unwrap_or(1200));
        // Renew a minute early, or at half-life for very short tokens.
        let renew_after =
            lifetime.checked_sub(TOKEN_RENEW_MARGIN).filter(|d| *d > lifetime / 2).unwrap_or(lifetime / 2);
        info!(username = %self.config.credentials.username, lifetime_s = lifetime.as_secs(), "logged in to BIG-IP");
        Ok(Token { value: token.to_string(), renew_at: started + renew_after })
    }

    fn unreachable(&self, e: reqwest::Error) -> BigIpError {
        if let Some(observer) = &self.observer {
            observer.reachable(false);
        }
        // reqwest errors carry the URL, never the body, so they hold no credentials.
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        BigIpError::Unreachable { url: self.config.url.clone(), detail }
    }

    /// One authenticated request; a 401 triggers one fresh login and a retry.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
    ) -> Result<(StatusCode, String), BigIpError> {
        let url = format!("{}{path}", self.config.url);
        let declaring = method == Method::POST && path.starts_with(DECLARE_PATH);
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self.http.request(method.clone(), &url).header(TOKEN_HEADER, &token);
            let mut body_bytes = 0;
            match &body {
                Body::None => {}
                Body::Json(value) => {
                    let bytes = serde_json::to_vec(value).map_err(|e| BigIpError::InvalidResponse {
                        path: path.to_string(),
                        detail: format!("the request cannot be serialised: {e}"),
                    })?;
                    body_bytes = bytes.len();
                    request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes)
                }
                Body::Serialized(bytes) => {
                    body_bytes = bytes.len();
                    request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes.clone())
                }
            }
            if let (Some(observer), true) = (&self.observer, declaring) {
                observer.as3_request(body_bytes);
            }
            let response = request.send().await.map_err(|e| self.unreachable(e))?;
            if let Some(observer) = &self.observer {
                observer.reachable(true);
            }
            let status = response.status();
            let text = response.text().await.map_err(|e| self.unreachable(e))?;
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                debug!(path, "token rejected, logging in again");
                self.forget_token(&token).await;
                continue;
            }
            return Ok((status, text));
        }
        Err(BigIpError::Login {
            username: self.config.credentials.username.clone(),
            status: 401,
            message: format!("{path} refused a freshly issued token"),
        })
    }

    /// A request that AS3 may refuse with 503 while it is busy: retried with back-off.
    async fn send_busy_aware(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
    ) -> Result<(StatusCode, String), BigIpError> {
        let policy = &self.config.retry;
        let mut backoff = policy.initial_backoff;
        for attempt in 1..=policy.max_attempts.max(1) {
            let (status, text) = self.send(method.clone(), path, body.clone()).await?;
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return Ok((status, text));
            }
            if attempt == policy.max_attempts.max(1) {
                break;
            }
            let jittered = jitter(backoff);
            warn!(path, attempt, wait_ms = jittered.as_millis() as u64, "BIG-IP busy (503), backing off");
            tokio::time::sleep(jittered).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        Err(BigIpError::Busy { attempts: policy.max_attempts.max(1) })
    }

    /// Posts a declaration as an async AS3 task and waits for its per-tenant results.
    pub async fn declare(&self, request_body: &Value) -> Result<DeployReport, BigIpError> {
        self.run_as3_task(Method::POST, DECLARE_PATH, Body::Json(request_body)).await
    }

    /// Creates or replaces these Applications of `tenant` (AS3's per-application API, AS3 ≥
    /// 3.50 with `perAppDeploymentAllowed`), leaving the tenant's other Applications alone.
    pub async fn declare_applications<T: serde::Serialize>(
        &self,
        tenant: &str,
        applications: &BTreeMap<String, T>,
    ) -> Result<DeployReport, BigIpError> {
        let path = format!("{DECLARE_PATH}/{tenant}/applications");
        let body = serde_json::to_vec(applications).map_err(|e| BigIpError::InvalidResponse {
            path: path.clone(),
            detail: format!("the applications cannot be serialised: {e}"),
        })?;
        self.run_as3_task(Method::POST, &path, Body::Serialized(body.into())).await
    }

    /// Deletes one Application of `tenant` through the per-application API.
    pub async fn delete_application(&self, tenant: &str, application: &str) -> Result<DeployReport, BigIpError> {
        self.run_as3_task(Method::DELETE, &format!("{DECLARE_PATH}/{tenant}/applications/{application}"), Body::None)
            .await
    }

    /// Whether the BIG-IP offers AS3's per-application API: AS3 3.50 or later with
    /// `perAppDeploymentAllowed` set.
    pub async fn per_application_api(&self) -> Result<bool, BigIpError> {
        let info_path = "/mgmt/shared/appsvcs/info";
        let (status, text) = self.send_busy_aware(Method::GET, info_path, Body::None).await?;
        if !status.is_success() {
            return Err(BigIpError::Http {
                method: "GET",
                path: info_path.into(),
                status: status.as_u16(),
                body: truncate(&text),
            });
        }
        let version = parse_json(info_path, &text)?.get("version").and_then(Value::as_str).map(str::to_string);
        let recent = version.as_deref().and_then(parse_as3_version).is_some_and(|v| v >= (3, 50));
        if !recent {
            return Ok(false);
        }
        let settings_path = "/mgmt/shared/appsvcs/settings";
        let (status, text) = self.send_busy_aware(Method::GET, settings_path, Body::None).await?;
        if !status.is_success() {
            // AS3 versions without /settings have no per-application API either.
            return Ok(false);
        }
        let settings = parse_json(settings_path, &text)?;
        Ok(settings.get("perAppDeploymentAllowed").and_then(Value::as_bool).unwrap_or(false))
    }

    /// Runs an AS3 request as an async task (`?async=true`) and waits for its results.
    async fn run_as3_task(&self, method: Method, path: &str, body: Body<'_>) -> Result<DeployReport, BigIpError> {
        let method_name = if method == Method::DELETE { "DELETE" } else { "POST" };
        let path = format!("{path}?async=true");
        let (status, text) = self.send_busy_aware(method, &path, body).await?;
        match status.as_u16() {
            202 => {
                #[derive(serde::Deserialize)]
                struct Accepted {
                    id: Option<String>,
                }
                let accepted: Accepted = serde_json::from_str(&text).map_err(|e| BigIpError::InvalidResponse {
                    path: path.clone(),
                    detail: format!("not JSON ({e}): {}", truncate(&text)),
                })?;
                let task_id = accepted.id.ok_or_else(|| BigIpError::InvalidResponse {
                    path: path.clone(),
                    detail: "async declare answer has no task id".into(),
                })?;
                self.wait_for_task(&task_id).await
            }
            200 | 207 | 422 => answer_to_report(&path, &text),
            other => Err(BigIpError::Http { method: method_name, path, status: other, body: truncate(&text) }),
        }
    }

    async fn wait_for_task(&self, task_id: &str) -> Result<DeployReport, BigIpError> {
        let path = format!("{TASK_PATH}/{task_id}");
        let deadline = Instant::now() + self.config.task_timeout;
        let mut wait = super::config::FIRST_TASK_POLL.min(self.config.task_poll_interval);
        loop {
            let (status, text) = self.send_busy_aware(Method::GET, &path, Body::None).await?;
            if status == StatusCode::NOT_FOUND {
                return Err(BigIpError::TaskLost { task_id: task_id.to_string() });
            }
            if !status.is_success() {
                return Err(BigIpError::Http { method: "GET", path, status: status.as_u16(), body: truncate(&text) });
            }
            match parse_as3_answer_text(&text)
                .map_err(|detail| BigIpError::InvalidResponse { path: path.clone(), detail })?
            {
                As3Answer::InProgress => {}
                As3Answer::Done(report) => return Ok(report),
                As3Answer::Invalid(errors) => return Err(BigIpError::InvalidDeclaration { errors }),
            }
            if Instant::now() >= deadline {
                return Err(BigIpError::TaskTimeout {
                    task_id: task_id.to_string(),
                    timeout: self.config.task_timeout,
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.config.task_poll_interval);
        }
    }
}

impl As3Api for BigIpClient {
    async fn deploy_tenants<T: serde::Serialize + Sync>(
        &self,
        tenants: &BTreeMap<String, T>,
    ) -> Result<DeployReport, BigIpError> {
        let request = crate::as3::serialize_request(tenants).map_err(|e| BigIpError::InvalidResponse {
            path: DECLARE_PATH.into(),
            detail: format!("the declaration cannot be serialised: {e}"),
        })?;
        self.run_as3_task(Method::POST, DECLARE_PATH, Body::Serialized(request.into())).await
    }

    async fn deploy_applications<T: serde::Serialize + Sync>(
        &self,
        tenant: &str,
        applications: &BTreeMap<String, T>,
    ) -> Result<DeployReport, BigIpError> {
        self.declare_applications(tenant, applications).await
    }

    async fn delete_application(&self, tenant: &str, application: &str) -> Result<DeployReport, BigIpError> {
        BigIpClient::delete_application(self, tenant, application).await
    }

    async fn per_application_api(&self) -> Result<bool, BigIpError> {
        BigIpClient::per_application_api(self).await
    }

    async fn tenant_summaries(&self) -> Result<BTreeMap<String, super::TenantSummary>, BigIpError> {
        use serde_json::value::RawValue;
        let (status, text) = self.send_busy_aware(Method::GET, DECLARE_PATH, Body::None).await?;
        let invalid = |e: serde_json::Error| BigIpError::InvalidResponse {
            path: DECLARE_PATH.into(),
            detail: format!("the declaration read back is not valid JSON: {e}"),
        };
        match status.as_u16() {
            204 => Ok(BTreeMap::new()),
            200 => {
                let body: BTreeMap<String, &RawValue> = serde_json::from_str(&text).map_err(invalid)?;
                let declaration: BTreeMap<String, &RawValue> = match body.get("declaration") {
                    Some(inner) => serde_json::from_str(inner.get()).map_err(invalid)?,
                    None => body,
                };
                let mut tenants = BTreeMap::new();
                for (name, raw) in declaration {
                    // Only objects can be tenants; a tenant is an object of class Tenant.
                    if !raw.get().trim_start().starts_with('{') {
                        continue;
                    }
                    let summary = super::TenantSummary::parse(raw.get()).map_err(invalid)?;
                    if summary.properties.get("class").and_then(Value::as_str) == Some("Tenant") {
                        tenants.insert(name, summary);
                    }
                }
                Ok(tenants)
            }
            other => {
                Err(BigIpError::Http { method: "GET", path: DECLARE_PATH.into(), status: other, body: truncate(&text) })
            }
        }
    }

    async fn live_partition(&self, partition: &str) -> Result<super::LiveConfig, BigIpError> {
        // Read into the few fields compared, never into a JSON tree: a partition of 10,000 pools
        // with their members is tens of megabytes of JSON.
        let filter = format!("$filter=partition+eq+{partition}");
        let path = format!("/mgmt/tm/ltm/virtual?{filter}&$select=fullPath,enabled,disabled");
        let virtuals: live::Collection<live::Virtual> = self.get_typed(&path).await?;
        let path = format!("/mgmt/tm/ltm/pool?{filter}&expandSubcollections=true&$select=fullPath,membersReference");
        let pools: live::Collection<live::Pool> = self.get_typed(&path).await?;
        Ok(live::config(virtuals, pools))
    }

    async fn device_object_exists(&self, kind: &str, full_path: &str) -> Result<bool, BigIpError> {
        if kind == "asm/policies" {
            // WAF policies are listed with their full paths (their URIs hold generated ids).
            let path = "/mgmt/tm/asm/policies?$select=fullPath";
            let (status, text) = self.send(Method::GET, path, Body::None).await?;
            return match status.as_u16() {
                200 => {
                    let body = parse_json(path, &text)?;
                    let items = body.get("items").and_then(Value::as_array).into_iter().flatten();
                    Ok(items.filter_map(|item| item.get("fullPath").and_then(Value::as_str)).any(|p| p == full_path))
                }
                // No ASM on the box: no policy exists.
                404 => Ok(false),
                other => {
                    Err(BigIpError::Http { method: "GET", path: path.into(), status: other, body: truncate(&text) })
                }
            };
        }
        if kind == ROUTE_DOMAIN_KIND {
            // Route domains are looked up by id (`/Common/2` → route domain 2), whatever their
            // names (an administrator may call route domain 2 `rd-tenants`).
            let wanted = full_path.rsplit('/').next().and_then(|id| id.parse::<u64>().ok());
            let path = "/mgmt/tm/net/route-domain?$select=id,fullPath";
            let (status, text) = self.send(Method::GET, path, Body::None).await?;
            return match status.as_u16() {
                200 => {
                    let body = parse_json(path, &text)?;
                    let items = body.get("items").and_then(Value::as_array).into_iter().flatten();
                    Ok(items.filter_map(|item| item.get("id").and_then(Value::as_u64)).any(|id| Some(id) == wanted))
                }
                other => {
                    Err(BigIpError::Http { method: "GET", path: path.into(), status: other, body: truncate(&text) })
                }
            };
        }
        // `/Common/10.0.0.1%1` → `~Common~10.0.0.1%251` (the route domain's % escaped).
        let name = full_path.replace('/', "~").replace('%', "%25");
        let path = format!("/mgmt/tm/{kind}/{name}?$select=fullPath");
        let (status, text) = self.send(Method::GET, &path, Body::None).await?;
        match status.as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            other => Err(BigIpError::Http { method: "GET", path, status: other, body: truncate(&text) }),
        }
    }

    async fn current_tenant(&self, tenant: &str) -> Result<Option<Value>, BigIpError> {
        let path = format!("{DECLARE_PATH}/{tenant}");
        let (status, text) = self.send_busy_aware(Method::GET, &path, Body::None).await?;
        match status.as_u16() {
            // AS3 answers 404 ("specified Tenant(s) … not found") for a tenant it does not hold.
            204 | 404 => Ok(None),
            200 => {
                let mut body = parse_json(&path, &text)?;
                let declaration = match body.get_mut("declaration") {
                    Some(declaration) => declaration.take(),
                    None => body,
                };
                Ok(declaration
                    .get(tenant)
                    .filter(|v| v.get("class").and_then(Value::as_str) == Some("Tenant"))
                    .cloned())
            }
            other => Err(BigIpError::Http { method: "GET", path, status: other, body: truncate(&text) }),
        }
    }
}

impl BigIpClient {
    /// `GET path`, its JSON read straight into `T`.
    async fn get_typed<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, BigIpError> {
        let (status, text) = self.send(Method::GET, path, Body::None).await?;
        match status.as_u16() {
            200 => serde_json::from_str(&text).map_err(|e| BigIpError::InvalidResponse {
                path: path.to_owned(),
                detail: format!("{e}: {}", truncate(&text)),
            }),
            other => {
                Err(BigIpError::Http { method: "GET", path: path.to_owned(), status: other, body: truncate(&text) })
            }
        }
    }
}

/// The fields of the live configuration the drift check compares.
mod live {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Collection<T> {
        #[serde(default = "Vec::new")]
        pub(super) items: Vec<T>,
    }

    #[derive(Deserialize)]
    pub(super) struct Virtual {
        #[serde(rename = "fullPath")]
        full_path: String,
        #[serde(default)]
        disabled: bool,
    }

    #[derive(Deserialize)]
    pub(super) struct Pool {
        #[serde(rename = "fullPath")]
        full_path: String,
        #[serde(rename = "membersReference", default)]
        members: Option<Collection<Member>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Member {
        name: String,
        address: String,
        #[serde(default)]
        session: Option<String>,
    }

    pub(super) fn config(virtuals: Collection<Virtual>, pools: Collection<Pool>) -> super::super::LiveConfig {
        let mut live = super::super::LiveConfig::default();
        for virtual_server in virtuals.items {
            live.virtuals.insert(virtual_server.full_path, !virtual_server.disabled);
        }
        for pool in pools.items {
            let members = pool.members.map(|members| members.items).unwrap_or_default();
            let members = members
                .into_iter()
                .filter_map(|member| {
                    // `10.0.0.1:80`, `2001:db8::1.80`: the port follows the last `:` or `.`.
                    let port = member.name.rsplit([':', '.']).next()?;
                    let address = member.address.split('%').next().unwrap_or(&member.address);
                    let enabled = member.session.as_deref() != Some("user-disabled");
                    Some((format!("{address}:{port}"), enabled))
                })
                .collect();
            live.pools.insert(pool.full_path, members);
        }
        live
    }
}

/// `3.56.0` → (3, 56).
fn parse_as3_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    Some((parts.next()?.trim().parse().ok()?, parts.next()?.trim().parse().ok()?))
}

fn answer_to_report(path: &str, text: &str) -> Result<DeployReport, BigIpError> {
    match parse_as3_answer_text(text).map_err(|detail| BigIpError::InvalidResponse { path: path.into(), detail })? {
        As3Answer::Done(report) => Ok(report),
        As3Answer::Invalid(errors) => Err(BigIpError::InvalidDeclaration { errors }),
        As3Answer::InProgress => Err(BigIpError::InvalidResponse {
            path: path.into(),
            detail: "a synchronous declare answered 'in progress'".into(),
        }),
    }
}

fn parse_json(path: &str, text: &str) -> Result<Value, BigIpError> {
    serde_json::from_str(text).map_err(|e| BigIpError::InvalidResponse {
        path: path.into(),
        detail: format!("not JSON ({e}): {}", truncate(text)),
    })
}

/// Full jitter between half and all of the back-off, so that many clients do not retry in step.
fn jitter(backoff: Duration) -> Duration {
    let millis = backoff.as_millis().max(2) as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

fn truncate(text: &str) -> String {
    const MAX: usize = 512;
    if text.len() <= MAX {
        return text.to_string();
    }
    let cut = (0..=MAX).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}…", &text[..cut])
}
