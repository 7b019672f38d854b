//! The simulator against F5's own AS3 parser: every declaration of
//! `../shared/reference/as3-verdicts` (read as it is; the corpus grows) is posted to a fresh
//! simulator, which must accept exactly the declarations AS3 3.56 accepts and refuse the others
//! with a 422 whose first error names the same path as AS3's.

use std::path::{Path, PathBuf};

use bigip_operator::simulator::{self, SimulatorConfig};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::Value;

const DECLARE: &str = "/mgmt/shared/appsvcs/declare";

#[derive(Debug, Deserialize)]
struct Verdict {
    case: String,
    valid: bool,
    #[serde(default)]
    errors: Vec<String>,
    #[serde(default)]
    stage: Option<String>,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/as3-verdicts")
}

fn read_verdicts(dir: &Path) -> Vec<Verdict> {
    let path = dir.join("verdicts.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display())))
        .collect()
}

/// What of an AS3 error must match: the path of `"/T1/A1/service/pool: <reason>"` (reasons are
/// worded by F5's JavaScript validator), otherwise the whole message (`Invalid data property:
/// x`, `Unable to find /Common/x for /T/A/svc/profileHTTP`…) up to a `Details:` part, which
/// quotes the library that failed to read a certificate bundle.
fn error_path(error: &str) -> &str {
    let error = error.strip_prefix("Invalid request: ").unwrap_or(error);
    if error.starts_with('/') {
        error.split_once(": ").map_or(error, |(path, _)| path)
    } else {
        error.split_once(" Details: ").map_or(error, |(message, _)| message)
    }
}

/// What the simulator answered, reduced to what a verdict states.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    first_error: Option<String>,
    /// What the BIG-IP itself (mcpd) refused at deploy time, after AS3's parser accepted the
    /// declaration: the `response` of every tenant result with code 422.
    deploy_refusals: Vec<String>,
}

/// Whether `text` is a BIG-IP (mcpd) error, `01020036:3: …`, rather than one of AS3's.
fn is_mcpd_error(text: &str) -> bool {
    let (code, rest) = text.split_at(text.find(':').unwrap_or(0));
    code.len() == 8 && code.chars().all(|c| c.is_ascii_hexdigit()) && rest.starts_with(":3: ")
}

fn first_error(body: &Value) -> Option<String> {
    if let Some(first) = body.get("errors").and_then(Value::as_array).and_then(|errors| errors.first()) {
        return first.as_str().map(str::to_owned);
    }
    let Some(results) = body.get("results").and_then(Value::as_array) else {
        return body.get("message").and_then(Value::as_str).map(str::to_owned);
    };
    results.iter().find_map(|result| {
        let code = result.get("code").and_then(Value::as_u64).unwrap_or(200);
        (code >= 400).then(|| {
            result
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|errors| errors.first())
                .and_then(Value::as_str)
                .or_else(|| result.get("message").and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned()
        })
    })
}

async fn post_case(client: &Client, text: &str) -> Answer {
    let sim = simulator::start(SimulatorConfig::default()).await.expect("simulator starts");
    let response = client
        .post(format!("{}{DECLARE}", sim.base_url()))
        .basic_auth("admin", Some("admin"))
        .header("Content-Type", "application/json")
        .body(text.to_owned())
        .send()
        .await
        .expect("declare request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let deploy_refusals = body
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|result| result.get("code").and_then(Value::as_u64) == Some(422))
        .filter_map(|result| result.get("response").and_then(Value::as_str).map(str::to_owned))
        .collect();
    Answer { status, first_error: first_error(&body), deploy_refusals }
}

#[tokio::test]
async fn simulator_agrees_with_f5_as3_on_every_declaration_of_the_verdict_corpus() {
    let dir = corpus_dir();
    let verdicts = read_verdicts(&dir);
    assert!(!verdicts.is_empty(), "no verdicts in {}", dir.display());
    let client = Client::new();
    let mut disagreements = Vec::new();
    let mut exact = 0;
    let mut refused_at_deploy = Vec::new();
    for verdict in &verdicts {
        let path = dir.join("cases").join(&verdict.case);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let answer = post_case(&client, &text).await;
        let accepted = answer.status.is_success();
        let agrees = match (verdict.valid, accepted) {
            (true, true) => true,
            // The verdicts are the parser's; what mcpd refuses when the tenant is deployed on
            // the verdicts' fresh device (a route domain it lacks) comes after them.
            (true, false)
                if !answer.deploy_refusals.is_empty() && answer.deploy_refusals.iter().all(|e| is_mcpd_error(e)) =>
            {
                refused_at_deploy.push(format!("{}: {}", verdict.case, answer.deploy_refusals.join("; ")));
                true
            }
            (false, false) if answer.status == StatusCode::UNPROCESSABLE_ENTITY => {
                let expected = verdict.errors.first().map(String::as_str).unwrap_or_default();
                let got = answer.first_error.as_deref().unwrap_or_default();
                if expected == got {
                    exact += 1;
                }
                error_path(expected) == error_path(got)
            }
            _ => false,
        };
        if !agrees {
            disagreements.push(format!(
                "{}: AS3 {} ({:?}, stage {:?}); simulator {} {:?}",
                verdict.case,
                if verdict.valid { "accepts" } else { "refuses" },
                verdict.errors.first(),
                verdict.stage,
                answer.status,
                answer.first_error,
            ));
        }
    }
    println!(
        "{} of {} verdicts agree; {} refusals with AS3's exact first error; {} accepted by the parser and refused \
         by the device at deploy time:\n{}",
        verdicts.len() - disagreements.len(),
        verdicts.len(),
        exact,
        refused_at_deploy.len(),
        refused_at_deploy.join("\n")
    );
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}
