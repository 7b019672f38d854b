//! Validation of AS3 declarations against F5's official AS3 JSON schema.
//!
//! The schema (3.56.0) ships inside the binary so that the simulator and the operator's
//! pre-flight checks validate with exactly the rules a BIG-IP running that AS3 version applies
//! (apart from F5's custom keywords such as `f5PostProcess`, which only a BIG-IP can check).

use std::sync::OnceLock;

/// The AS3 schema version embedded in this build.
pub const AS3_SCHEMA_VERSION: &str = "3.56.0";

const AS3_SCHEMA_JSON: &str = include_str!("../../schemas/as3/as3-schema-3.56.0.json");

/// One schema violation: where in the declaration, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer into the declaration, e.g. `/declaration/tenant/app/pool/members/0`.
    pub instance_path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.instance_path.is_empty() { "/" } else { &self.instance_path };
        write!(f, "{path}: {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the embedded AS3 schema could not be compiled: {0}")]
    Compile(String),
}

/// The schema's root is a `oneOf` over the request kinds, and a failed `oneOf` reports only
/// "not valid under any of the schemas". So a body is validated against the one branch its
/// `class` selects, whose errors name the offending field.
#[derive(Clone, Copy)]
enum Branch {
    /// The root schema as published (used for bodies whose class selects no branch).
    Root,
    As3,
    Adc,
}

fn compiled_schema(branch: Branch) -> Result<&'static jsonschema::Validator, SchemaError> {
    static ROOT: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    static AS3: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    static ADC: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    let (cell, definition) = match branch {
        Branch::Root => (&ROOT, None),
        Branch::As3 => (&AS3, Some("AS3")),
        Branch::Adc => (&ADC, Some("ADC")),
    };
    cell.get_or_init(|| {
        let mut schema: serde_json::Value = serde_json::from_str(AS3_SCHEMA_JSON).map_err(|e| e.to_string())?;
        if let (Some(definition), Some(root)) = (definition, schema.as_object_mut()) {
            root.remove("oneOf");
            root.insert("allOf".into(), serde_json::json!([{ "$ref": format!("#/definitions/{definition}") }]));
        }
        jsonschema::options().with_draft(jsonschema::Draft::Draft7).build(&schema).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| SchemaError::Compile(e.clone()))
}

/// Validates a whole AS3 request body (`class: AS3` or a bare `class: ADC`).
///
/// Returns the violations, most specific first; an empty list means the body is valid.
pub fn validate_declaration(body: &serde_json::Value) -> Result<Vec<SchemaViolation>, SchemaError> {
    let branch = match body.get("class").and_then(serde_json::Value::as_str) {
        Some("AS3") => Branch::As3,
        Some("ADC") => Branch::Adc,
        _ => Branch::Root,
    };
    let validator = compiled_schema(branch)?;
    let mut violations: Vec<SchemaViolation> = validator
        .iter_errors(body)
        .map(|e| SchemaViolation {
            instance_path: e.instance_path().to_string(),
            message: short_message(&e.to_string()),
        })
        .collect();
    // Deeper paths name the offending field most precisely; report them first.
    violations.sort_by(|a, b| {
        let depth = |v: &SchemaViolation| v.instance_path.matches('/').count();
        depth(b).cmp(&depth(a)).then_with(|| a.instance_path.cmp(&b.instance_path))
    });
    violations.dedup();
    Ok(violations)
}

/// Error messages quote the failing value; keep a huge value (a whole tenant) from flooding
/// status messages and logs.
fn short_message(message: &str) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message.to_string();
    }
    let cut = (0..=MAX).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
    format!("{}…", &message[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declaration(virtual_port: serde_json::Value) -> serde_json::Value {
        json!({"class": "AS3", "action": "deploy", "declaration": {"class": "ADC", "schemaVersion": "3.50.0", "id": "t",
            "T": {"class": "Tenant", "A": {"class": "Application",
                "vs": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1"], "virtualPort": virtual_port, "pool": "p"},
                "p": {"class": "Pool", "members": [{"servicePort": 80, "serverAddresses": ["10.0.0.2"]}]}}}}})
    }

    #[test]
    fn valid_declaration_has_no_violations() {
        assert_eq!(validate_declaration(&declaration(json!(80))).expect("compiles"), vec![]);
    }

    #[test]
    fn violations_name_the_field_in_wrapped_and_bare_declarations() {
        let wrapped = validate_declaration(&declaration(json!("eighty"))).expect("compiles");
        assert!(wrapped.iter().any(|v| v.instance_path == "/declaration/T/A/vs/virtualPort"), "{wrapped:#?}");
        let bare = declaration(json!("eighty"))["declaration"].clone();
        let bare = validate_declaration(&bare).expect("compiles");
        assert!(bare.iter().any(|v| v.instance_path == "/T/A/vs/virtualPort"), "{bare:#?}");
        assert!(bare.iter().all(|v| v.message.chars().count() <= 301));
    }

    #[test]
    fn unknown_bodies_are_invalid() {
        assert!(!validate_declaration(&json!({"class": "Nonsense"})).expect("compiles").is_empty());
        assert!(!validate_declaration(&json!([1, 2])).expect("compiles").is_empty());
    }
}
