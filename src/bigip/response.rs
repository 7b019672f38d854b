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
    tenant: Option<TenantNames>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
    #[serde(default)]
    response: Option<Value>,
}

/// A result's `tenant`: a name, or (AS3 3.51 and later) a list of names.
#[derive(Deserialize)]
#[serde(untagged)]
enum TenantNames {
    One(String),
    Many(Vec<String>),
}

impl TenantNames {
    /// The names, without empty ones.
    fn into_names(self) -> Vec<String> {
        let names = match self {
            Self::One(name) => vec![name],
            Self::Many(names) => names,
        };
        names.into_iter().filter(|name| !name.is_empty()).collect()
    }
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
        let tenants = result.tenant.map(TenantNames::into_names).unwrap_or_default();
        // AS3 3.51+ names the tenant of a declaration refused by its parser too (in an async
        // task's results): it is still a refusal of the whole declaration.
        if code == 422 && message == "declaration is invalid" {
            untenanted_errors.extend(errors);
            if untenanted_errors.is_empty() {
                untenanted_errors.push(message);
            }
            continue;
        }
        if tenants.is_empty() {
            if code == 422 {
                untenanted_errors.extend(errors.into_iter().chain([message]));
            }
            continue;
        }
        for tenant in tenants {
            report.tenants.insert(tenant, TenantResult { code, message: message.clone(), errors: errors.clone() });
        }
    }
    if !untenanted_errors.is_empty() && report.tenants.values().all(|result| !result.succeeded()) {
        return Ok(As3Answer::Invalid(untenanted_errors));
    }
    Ok(As3Answer::Done(report))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// AS3 3.51 and later: each result names its tenants as a list, beside `host` and
    /// `declarationId` (F5's own test reads `results[0].tenant[0]`).
    #[test]
    fn results_naming_their_tenants_as_a_list_are_read() {
        let body = json!({"results": [
            {"code": 200, "message": "success", "host": "localhost", "tenant": ["sample_02"],
                "declarationId": "1693331522375", "runTime": 1322},
            {"code": 422, "message": "declaration failed", "host": "localhost", "tenant": ["t1", "t2"],
                "response": "01020036:3: The requested pool (/t1/app/p) was not found.", "declarationId": "x"}],
            "declaration": {"class": "ADC"}});
        let Ok(As3Answer::Done(report)) = parse_as3_answer(&body) else { panic!("results read") };
        assert!(report.tenants["sample_02"].succeeded());
        for tenant in ["t1", "t2"] {
            assert_eq!(report.tenants[tenant].code, 422, "{tenant}");
            assert!(report.tenants[tenant].detail().contains("was not found"), "{tenant}");
        }
        assert_eq!(parse_as3_answer_text(&body.to_string()), parse_as3_answer(&body));
    }

    /// AS3 3.56's answer to a declaration its parser refuses, as an async task's result:
    /// the tenant is named, the whole declaration is still refused.
    #[test]
    fn a_parser_refusal_naming_its_tenant_is_a_refusal_of_the_declaration() {
        let body = json!({"results": [{"code": 422, "errors": ["/k8s/app/vs/virtualPort: should be integer"],
            "message": "declaration is invalid", "host": "localhost", "tenant": ["k8s"], "declarationId": "x"}]});
        assert_eq!(
            parse_as3_answer(&body),
            Ok(As3Answer::Invalid(vec!["/k8s/app/vs/virtualPort: should be integer".to_owned()]))
        );
        let direct = json!({"code": 422, "message": "Unable to find /Common/waf for /k8s/app/vs/policyWAF",
            "host": "localhost", "tenant": ["k8s"], "declarationId": "x"});
        assert_eq!(
            parse_as3_answer(&direct),
            Ok(As3Answer::Invalid(vec!["Unable to find /Common/waf for /k8s/app/vs/policyWAF".to_owned()]))
        );
    }

    #[test]
    fn a_list_without_names_counts_as_no_tenant() {
        let body = json!({"results": [{"code": 422, "message": "declaration is invalid", "tenant": [],
            "errors": ["/T/A/svc/virtualAddresses/0: should match format \"f5ip\""]}]});
        assert_eq!(
            parse_as3_answer(&body),
            Ok(As3Answer::Invalid(vec!["/T/A/svc/virtualAddresses/0: should match format \"f5ip\"".to_owned()]))
        );
        let wrong_type = json!({"results": [{"code": 200, "message": "success", "tenant": 7}]});
        assert!(parse_as3_answer(&wrong_type).is_err(), "a tenant that is neither a name nor a list is refused");
    }
}
