//! Parsing of AS3 responses: per-tenant results of a declaration.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The outcome for one tenant of a declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantResult {
    /// HTTP-like code AS3 reports for the tenant: 200 success, 422 declaration failed, ...
    pub code: u16,
    /// `success`, `no change`, `declaration failed`, ...
    pub message: String,
    /// Details AS3 gave for a failure.
    pub errors: Vec<String>,
}

impl TenantResult {
    pub fn succeeded(&self) -> bool {
        self.code == 200
    }

    pub fn detail(&self) -> String {
        if self.errors.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.message, self.errors.join("; "))
        }
    }
}

/// Per-tenant results of one declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployReport {
    pub tenants: BTreeMap<String, TenantResult>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
    #[serde(default)]
    response: Option<Value>,
}

#[derive(Deserialize)]
struct RawBody {
    #[serde(default)]
    results: Vec<RawResult>,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
    #[serde(default)]
    message: Option<String>,
}

/// What an AS3 declare or task response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum As3Answer {
    /// The task is still running.
    InProgress,
    /// Per-tenant results.
    Done(DeployReport),
    /// The whole declaration was refused before any tenant was processed.
    Invalid(Vec<String>),
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Interprets a declare response or task record body.
pub fn parse_as3_answer(body: &Value) -> Result<As3Answer, String> {
    let raw = RawBody::deserialize(body).map_err(|e| format!("not an AS3 result: {e}"))?;
    interpret(raw)
}

/// [`parse_as3_answer`] of the answer's text. Only the results are read: the declaration AS3
/// echoes beside them (as large as the request: megabytes for a whole tenant of thousands of
/// applications) is skipped, never built.
pub fn parse_as3_answer_text(text: &str) -> Result<As3Answer, String> {
    let raw: RawBody = serde_json::from_str(text).map_err(|e| format!("not an AS3 result: {e}"))?;
    interpret(raw)
}

fn interpret(raw: RawBody) -> Result<As3Answer, String> {
    if raw.results.is_empty() {
        if raw.code == Some(422) || raw.errors.is_some() {
            let mut errors: Vec<String> = raw.errors.unwrap_or_default().iter().map(value_text).collect();
            // AS3 answers some refusals (an unsupported action, an array body) with only a
            // message: keep it, or the user would see an empty reason.
            if errors.is_empty() {
                errors.push(raw.message.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| "no reason given".into()));
            }
            return Ok(As3Answer::Invalid(errors));
        }
        return Err("AS3 result has no results".into());
    }
    if raw.results.iter().any(|r| r.message.as_deref() == Some("in progress")) {
        return Ok(As3Answer::InProgress);
    }
    let mut report = DeployReport::default();
    let mut untenanted_errors = Vec::new();
    for result in raw.results {
        let code = result.code.unwrap_or(0);
        let mut errors: Vec<String> = result.errors.unwrap_or_default().iter().map(value_text).collect();
        if let Some(response) = result.response.filter(|_| code != 200) {
            errors.push(value_text(&response));
        }
        let message = result.message.unwrap_or_default();
        match result.tenant.filter(|t| !t.is_empty()) {
            Some(tenant) => {
                report.tenants.insert(tenant, TenantResult { code, message, errors });
            }
            None if code == 422 => untenanted_errors.extend(errors.into_iter().chain([message])),
            None => {}
        }
    }
    if report.tenants.is_empty() && !untenanted_errors.is_empty() {
        return Ok(As3Answer::Invalid(untenanted_errors));
    }
    Ok(As3Answer::Done(report))
}
