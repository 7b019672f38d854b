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

fn compiled_schema() -> Result<&'static jsonschema::Validator, SchemaError> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: serde_json::Value =
                serde_json::from_str(AS3_SCHEMA_JSON).map_err(|e| e.to_string())?;
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .build(&schema)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| SchemaError::Compile(e.clone()))
}

/// Validates a whole AS3 request body (`class: AS3` or a bare `class: ADC`).
///
/// Returns the violations, most specific first; an empty list means the body is valid.
pub fn validate_declaration(body: &serde_json::Value) -> Result<Vec<SchemaViolation>, SchemaError> {
    let validator = compiled_schema()?;
    let mut violations: Vec<SchemaViolation> = validator
        .iter_errors(body)
        .map(|e| SchemaViolation {
            instance_path: e.instance_path().to_string(),
            message: e.to_string(),
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
