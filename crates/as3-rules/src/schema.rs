//! Validation of AS3 declarations against F5's official AS3 JSON schema.
//!
//! The schema (3.56.0) ships inside the binary so that the simulator and the operator's
//! pre-flight checks validate with exactly the rules a BIG-IP running that AS3 version applies:
//! F5's custom formats ([`formats`](super::formats)) are checked, errors are worded and ordered
//! the way AS3's validator reports them (AS3 reports only the first), and the places where the
//! schema asks AS3 for further checks (`f5PostProcess`: pointers, `bigip:` references,
//! modules…) are returned as [`PostProcessSite`]s for the digest to run.

use std::sync::OnceLock;

/// The AS3 schema version embedded in this build.
pub const AS3_SCHEMA_VERSION: &str = "3.56.0";

const AS3_SCHEMA_JSON: &str = include_str!("../schemas/as3/as3-schema-3.56.0.json");

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
#[derive(Clone, Copy, PartialEq, Eq)]
enum Branch {
    /// The root schema as published (used for bodies whose class selects no branch).
    Root,
    As3,
    Adc,
}

/// The schema document validating `branch`: the root's `oneOf` over request kinds is replaced
/// by the one kind.
fn branch_document(branch: Branch) -> Result<&'static serde_json::Value, SchemaError> {
    static ROOT: OnceLock<Result<serde_json::Value, String>> = OnceLock::new();
    static AS3: OnceLock<Result<serde_json::Value, String>> = OnceLock::new();
    static ADC: OnceLock<Result<serde_json::Value, String>> = OnceLock::new();
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
        Ok(schema)
    })
    .as_ref()
    .map_err(|e| SchemaError::Compile(e.clone()))
}

/// The AS3 schema as published (parsed once, shared with every user of the schema).
pub fn schema_document() -> Result<&'static serde_json::Value, SchemaError> {
    branch_document(Branch::Root)
}

fn compiled_schema(branch: Branch) -> Result<&'static jsonschema::Validator, SchemaError> {
    static ROOT: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    static AS3: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    static ADC: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    let cell = match branch {
        Branch::Root => &ROOT,
        Branch::As3 => &AS3,
        Branch::Adc => &ADC,
    };
    cell.get_or_init(|| {
        let schema = branch_document(branch).map_err(|e| e.to_string())?;
        let mut options = jsonschema::options().with_draft(jsonschema::Draft::Draft7).should_validate_formats(true);
        for (name, check) in super::formats::FORMATS {
            options = options.with_format(name, check);
        }
        options.build(schema).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| SchemaError::Compile(e.clone()))
}

fn branch_of(body: &serde_json::Value) -> Branch {
    match body.get("class").and_then(serde_json::Value::as_str) {
        Some("AS3") => Branch::As3,
        Some("ADC") => Branch::Adc,
        _ => Branch::Root,
    }
}

/// Validates a whole AS3 request body (`class: AS3` or a bare `class: ADC`).
///
/// Returns the violations, the one AS3 would report first; an empty list means the body is
/// valid.
pub fn validate_declaration(body: &serde_json::Value) -> Result<Vec<SchemaViolation>, SchemaError> {
    let validator = compiled_schema(branch_of(body))?;
    let mut violations: Vec<SchemaViolation> = Vec::new();
    for error in validator.iter_errors(body) {
        let violation = first_cause(&error);
        if !violations.contains(&violation) {
            violations.push(violation);
        }
    }
    Ok(violations)
}

/// The violation AS3's validator reports for `error`: for a value matching none of the
/// alternatives of an `anyOf`/`oneOf`, the first failure of the first alternative.
fn first_cause(error: &jsonschema::ValidationError<'_>) -> SchemaViolation {
    use jsonschema::error::ValidationErrorKind;
    match error.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            if let Some(first) = context.first().and_then(|branch| branch.first()) {
                return first_cause(first);
            }
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            return SchemaViolation {
                instance_path: error.instance_path().to_string(),
                message: short_message(&format!("propertyName {}", as3_message(inner))),
            };
        }
        _ => {}
    }
    SchemaViolation { instance_path: error.instance_path().to_string(), message: short_message(&as3_message(error)) }
}

/// An error in the words AS3's validator uses (`should match format "f5ip"`, `should have
/// required property 'class'`…), where they differ from this validator's.
fn as3_message(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind;
    let quoted = |value: &serde_json::Value| serde_json::to_string(value).unwrap_or_default();
    match error.kind() {
        ValidationErrorKind::Format { format } => format!("should match format \"{format}\""),
        ValidationErrorKind::Required { property } => {
            format!("should have required property '{}'", property.as_str().unwrap_or_default())
        }
        ValidationErrorKind::Enum { options } => {
            format!("should be equal to one of the allowed values {}", quoted(options))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("should be equal to constant {}", quoted(expected_value))
        }
        ValidationErrorKind::Pattern { pattern } => {
            format!("data {} should match pattern \"{pattern}\"", quoted(error.instance()))
        }
        ValidationErrorKind::AdditionalProperties { .. } => "should NOT have additional properties".to_owned(),
        ValidationErrorKind::Type { kind } => {
            let names: Vec<String> = match kind {
                jsonschema::error::TypeKind::Single(single) => vec![single.to_string()],
                jsonschema::error::TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            format!("should be {}", names.join(","))
        }
        ValidationErrorKind::UniqueItems => "should NOT have duplicate items".to_owned(),
        ValidationErrorKind::MaxLength { limit } => format!("should NOT be longer than {limit} characters"),
        ValidationErrorKind::MinLength { limit } => format!("should NOT be shorter than {limit} characters"),
        ValidationErrorKind::MaxItems { limit } => format!("should NOT have more than {limit} items"),
        ValidationErrorKind::MinItems { limit } => format!("should NOT have fewer than {limit} items"),
        ValidationErrorKind::Maximum { limit } => format!("should be <= {limit}"),
        ValidationErrorKind::Minimum { limit } => format!("should be >= {limit}"),
        _ => error.to_string(),
    }
}

/// A place where the schema asks AS3 to check a value further after validation
/// (`f5PostProcess`), such as a pointer or a `bigip:` reference.
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcessSite {
    /// JSON pointer into the validated body.
    pub instance_path: String,
    /// `pointer`, `bigComponent`, `modules`, `node`, …
    pub tag: String,
    /// The tag's data (the class a pointer must reach, the BIG-IP object kinds, the modules).
    pub data: serde_json::Value,
}

/// The `f5PostProcess` sites of a schema-valid body, in the order AS3 runs them (sites in
/// alternatives that did not match are left out, as AS3 does).
///
/// AS3 runs them in the order its validator reached them: an object's properties not named by
/// its schema (`additionalProperties`, such as tenants) in the instance's order, then those the
/// schema names in the schema's order, then the combinators (`allOf`, `if`…) of the object's
/// own schema; an object's own sites come after everything below it.
pub fn post_process_sites(body: &serde_json::Value) -> Result<Vec<PostProcessSite>, SchemaError> {
    post_process_sites_splitting_above(body, SPLIT_ABOVE_APPLICATIONS)
}

/// Above this many Applications a declaration's sites are found one Application at a time: the
/// validator's annotation output grows faster than linearly with one object's keys (13 s for a
/// tenant of 10,000 Applications at once, about a second one by one).
const SPLIT_ABOVE_APPLICATIONS: usize = 200;

fn is_classed(value: &serde_json::Value, class: &str) -> bool {
    value.get("class").and_then(serde_json::Value::as_str) == Some(class)
}

/// [`post_process_sites`], one Application at a time when the declaration has more than
/// `threshold`. Then the order is: each tenant's Applications in the declaration's order
/// (`Shared` last; `/Common` after the other tenants), each with its sites in AS3's order, then
/// the sites of the tenants' and the declaration's own properties.
fn post_process_sites_splitting_above(
    body: &serde_json::Value,
    threshold: usize,
) -> Result<Vec<PostProcessSite>, SchemaError> {
    let (adc, prefix) = match body.get("class").and_then(serde_json::Value::as_str) {
        Some("AS3") => (body.get("declaration"), "/declaration"),
        _ => (Some(body), ""),
    };
    let Some(adc) = adc
        .and_then(serde_json::Value::as_object)
        .filter(|adc| matches!(adc.get("class").and_then(serde_json::Value::as_str), Some("ADC") | None))
    else {
        return sites_of_whole(body);
    };
    let tenants: Vec<(&String, &serde_json::Map<String, serde_json::Value>)> = adc
        .iter()
        .filter(|(_, value)| is_classed(value, "Tenant"))
        .filter_map(|(name, value)| Some((name, value.as_object()?)))
        .collect();
    let applications: usize =
        tenants.iter().map(|(_, tenant)| tenant.values().filter(|v| is_classed(v, "Application")).count()).sum();
    if applications <= threshold {
        return sites_of_whole(body);
    }
    let mut ordered = tenants.clone();
    ordered.sort_by_key(|(name, _)| name.as_str() == "Common");
    let mut header = serde_json::Map::new();
    for (key, value) in adc {
        if !is_classed(value, "Tenant") {
            header.insert(key.clone(), value.clone());
        }
    }
    let rebase =
        |site: PostProcessSite| PostProcessSite { instance_path: format!("{prefix}{}", site.instance_path), ..site };
    let mut sites = Vec::new();
    let mut headers = header.clone();
    for (tenant_name, tenant) in ordered {
        let own: serde_json::Map<String, serde_json::Value> = tenant
            .iter()
            .filter(|(_, value)| !is_classed(value, "Application"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut names: Vec<&String> =
            tenant.iter().filter(|(_, v)| is_classed(v, "Application")).map(|(k, _)| k).collect();
        names.sort_by_key(|name| name.as_str() == "Shared");
        for name in names {
            let mut wrapped_tenant = own.clone();
            if let Some(application) = tenant.get(name.as_str()) {
                wrapped_tenant.insert(name.clone(), application.clone());
            }
            let mut wrapper = header.clone();
            wrapper.insert(tenant_name.clone(), serde_json::Value::Object(wrapped_tenant));
            let below = format!(
                "/{}/{}/",
                tenant_name.replace('~', "~0").replace('/', "~1"),
                name.replace('~', "~0").replace('/', "~1")
            );
            let exact = below.trim_end_matches('/').to_owned();
            let found = sites_of_whole(&serde_json::Value::Object(wrapper))?;
            sites.extend(
                found
                    .into_iter()
                    .filter(|site| site.instance_path.starts_with(&below) || site.instance_path == exact)
                    .map(&rebase),
            );
        }
        headers.insert(tenant_name.clone(), serde_json::Value::Object(own));
    }
    sites.extend(sites_of_whole(&serde_json::Value::Object(headers))?.into_iter().map(rebase));
    Ok(sites)
}

/// The sites of `body`, evaluated at once, in AS3's order.
fn sites_of_whole(body: &serde_json::Value) -> Result<Vec<PostProcessSite>, SchemaError> {
    let validator = compiled_schema(branch_of(body))?;
    let schema = branch_document(branch_of(body))?;
    let evaluation = validator.evaluate(body);
    let mut found: Vec<(Vec<StepRank>, PostProcessSite)> = Vec::new();
    let mut seen: std::collections::HashSet<(String, String, String)> = std::collections::HashSet::new();
    let mut positions = KeyPositions::default();
    let mut pending = vec![evaluation.root()];
    while let Some(unit) = pending.pop() {
        pending.extend(unit.children());
        let Some(post_process) = unit.annotations().and_then(|a| a.value().get("f5PostProcess")) else { continue };
        let instance_path = unit.instance_location().to_string();
        let site = PostProcessSite {
            instance_path: instance_path.clone(),
            tag: post_process.get("tag").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned(),
            data: post_process.get("data").cloned().unwrap_or(serde_json::Value::Null),
        };
        if !seen.insert((site.instance_path.clone(), site.tag.clone(), site.data.to_string())) {
            continue;
        }
        let rank = validation_order(schema, body, &unit.evaluation_path().to_string(), &instance_path, &mut positions);
        found.push((rank, site));
    }
    found.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(found.into_iter().map(|(_, site)| site).collect())
}

/// Where one step of a validation path falls in the validator's order: (keyword group,
/// keyword, index).
type StepRank = (u8, u8, usize);

/// Positions of keys in the objects of one body, by object (its address): found once per
/// object, not once per site (a tenant of 10,000 Applications has 70,000 sites).
#[derive(Default)]
struct KeyPositions {
    by_object: std::collections::HashMap<usize, std::collections::HashMap<String, usize>>,
}

impl KeyPositions {
    fn of(&mut self, object: &serde_json::Map<String, serde_json::Value>, key: &str) -> usize {
        if object.len() <= 16 {
            return object.keys().position(|k| k == key).unwrap_or(usize::MAX);
        }
        let address = object as *const _ as usize;
        let positions = self
            .by_object
            .entry(address)
            .or_insert_with(|| object.keys().enumerate().map(|(index, k)| (k.clone(), index)).collect());
        positions.get(key).copied().unwrap_or(usize::MAX)
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// The order key of a site reached along `evaluation_path` (keywords, through `$ref`s) at
/// `instance_path`.
fn validation_order(
    schema: &serde_json::Value,
    body: &serde_json::Value,
    evaluation_path: &str,
    instance_path: &str,
    positions: &mut KeyPositions,
) -> Vec<StepRank> {
    let instance: Vec<String> = instance_path.split('/').skip(1).map(unescape).collect();
    let steps: Vec<String> = evaluation_path.split('/').skip(1).map(unescape).collect();
    let mut node = schema;
    let mut value = body;
    let mut depth = 0;
    let mut ranks = Vec::new();
    let mut index = 0;
    // Follows a step into the instance: the next instance segment.
    // Returns the segment and its position in the instance.
    let mut enter = |value: &mut &serde_json::Value, depth: &mut usize| -> (String, usize) {
        let key = instance.get(*depth).cloned().unwrap_or_default();
        let position = match &**value {
            serde_json::Value::Object(object) => positions.of(object, &key),
            serde_json::Value::Array(_) => key.parse().unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        if let Some(next) = match &**value {
            serde_json::Value::Object(object) => object.get(&key),
            serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        } {
            *value = next;
        }
        *depth += 1;
        (key, position)
    };
    while index < steps.len() {
        let step = steps[index].as_str();
        let argument = steps.get(index + 1).map(String::as_str).unwrap_or_default();
        match step {
            "$ref" => {
                let target = node.get("$ref").and_then(serde_json::Value::as_str).unwrap_or_default();
                node = target.strip_prefix('#').and_then(|pointer| schema.pointer(pointer)).unwrap_or(node);
                index += 1;
                continue;
            }
            "properties" => {
                let position = node
                    .get("properties")
                    .and_then(serde_json::Value::as_object)
                    .and_then(|properties| properties.keys().position(|key| key == argument))
                    .unwrap_or(usize::MAX);
                let (_, data_position) = enter(&mut value, &mut depth);
                // Schema order; the instance's order where the schema has none.
                let position =
                    if data_position == usize::MAX || position == usize::MAX { data_position } else { position };
                ranks.push((0, 5, position));
                node = node
                    .pointer(&format!("/properties/{}", argument.replace('~', "~0").replace('/', "~1")))
                    .unwrap_or(node);
                index += 2;
                continue;
            }
            "additionalProperties" | "items" | "additionalItems" | "contains" => {
                let (_, position) = enter(&mut value, &mut depth);
                // AS3's validator checks properties its schema does not name before those it does.
                let keyword = if step == "additionalProperties" { 4 } else { 6 };
                ranks.push((0, keyword, position));
                node = node.get(step).unwrap_or(node);
                // `items` given as an array of schemas names the index.
                if step == "items" && argument.parse::<usize>().is_ok() {
                    node = node.get(argument.parse::<usize>().unwrap_or_default()).unwrap_or(node);
                    index += 1;
                }
                index += 1;
                continue;
            }
            "patternProperties" => {
                let (_, position) = enter(&mut value, &mut depth);
                ranks.push((0, 6, position));
                node = node.get(step).and_then(|patterns| patterns.get(argument)).unwrap_or(node);
                index += 2;
                continue;
            }
            "dependencies" => {
                ranks.push((0, 2, 0));
                node = node.get(step).and_then(|dependencies| dependencies.get(argument)).unwrap_or(node);
                index += 2;
                continue;
            }
            "propertyNames" => {
                ranks.push((0, 3, 0));
                node = node.get(step).unwrap_or(node);
                index += 1;
                continue;
            }
            "not" | "if" | "then" | "else" => {
                let keyword = match step {
                    "not" => 3,
                    "if" => 7,
                    "then" => 8,
                    _ => 9,
                };
                ranks.push((1, keyword, 0));
                node = node.get(step).unwrap_or(node);
                index += 1;
                continue;
            }
            "anyOf" | "oneOf" | "allOf" => {
                let keyword = match step {
                    "anyOf" => 4,
                    "oneOf" => 5,
                    _ => 6,
                };
                let position: usize = argument.parse().unwrap_or(usize::MAX);
                ranks.push((1, keyword, position));
                node = node.get(step).and_then(|branches| branches.get(position)).unwrap_or(node);
                index += 2;
                continue;
            }
            _ => {
                index += 1;
            }
        }
    }
    // The object's own f5PostProcess runs after everything below it.
    ranks.push((2, 0, 0));
    ranks
}

/// The lookups (`query ltm profile http`, `asm policy`…) the schema's `bigip:` references use.
pub fn bigip_lookups() -> Result<Vec<String>, SchemaError> {
    fn walk(node: &serde_json::Value, out: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(object) => {
                if let Some(post_process) = object.get("f5PostProcess") {
                    if post_process.get("tag").and_then(serde_json::Value::as_str) == Some("bigComponent") {
                        let lookups =
                            post_process.get("data").and_then(serde_json::Value::as_array).into_iter().flatten();
                        for lookup in lookups.filter_map(serde_json::Value::as_str) {
                            if !out.iter().any(|seen| seen == lookup) {
                                out.push(lookup.to_owned());
                            }
                        }
                    }
                }
                object.values().for_each(|child| walk(child, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|child| walk(child, out)),
            _ => {}
        }
    }
    let mut lookups = Vec::new();
    walk(branch_document(Branch::Root)?, &mut lookups);
    Ok(lookups)
}

/// Every word AS3's schema knows: property and definition names, `enum` and `const` values
/// (AS3 refuses a declaration with any other key or class name before validating it).
pub fn schema_words() -> Result<&'static SchemaWords, SchemaError> {
    static WORDS: OnceLock<Result<SchemaWords, String>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            let schema: serde_json::Value = branch_document(Branch::Root).map_err(|e| e.to_string())?.clone();
            let mut words = SchemaWords::default();
            // AS3 checks against its ADC schema: leave out the request wrapper's definitions
            // (their `targetTokens` pattern would match any word).
            let mut adc_schema = schema;
            if let Some(definitions) = adc_schema.get_mut("definitions").and_then(serde_json::Value::as_object_mut) {
                definitions.retain(|name, _| !name.starts_with("AS3"));
            }
            words.collect(&adc_schema, false);
            Ok(words)
        })
        .as_ref()
        .map_err(|e| SchemaError::Compile(e.clone()))
}

/// See [`schema_words`].
#[derive(Debug, Default)]
pub struct SchemaWords {
    words: std::collections::HashSet<String>,
    patterns: Vec<regex::Regex>,
}

/// JSON-schema keywords, which are not words of the declaration language.
const SCHEMA_KEYWORDS: &[&str] = &[
    "multipleOf",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minimum",
    "minLength",
    "maxLength",
    "pattern",
    "maxProperties",
    "minProperties",
    "additionalItems",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "dependencies",
    "required",
    "minItems",
    "maxItems",
    "uniqueItems",
    "items",
    "minimumProperties",
    "maximumProperties",
    "enum",
    "default",
    "not",
    "oneOf",
    "anyOf",
    "allOf",
    "if",
    "else",
    "then",
    "$comment",
    "readOnly",
];

impl SchemaWords {
    fn collect(&mut self, node: &serde_json::Value, pattern_keys: bool) {
        let serde_json::Value::Object(object) = node else { return };
        for (key, value) in object {
            if pattern_keys {
                if let Ok(pattern) = regex::Regex::new(key) {
                    self.patterns.push(pattern);
                }
            } else if !SCHEMA_KEYWORDS.contains(&key.as_str()) && key != "class" && key.parse::<f64>().is_err() {
                self.words.insert(key.clone());
            }
            match (key.as_str(), value) {
                ("enum", serde_json::Value::Array(options)) => {
                    self.words.extend(options.iter().filter_map(|option| option.as_str().map(str::to_owned)));
                }
                ("const", serde_json::Value::String(constant)) => {
                    self.words.insert(constant.clone());
                }
                _ => {}
            }
            match value {
                serde_json::Value::Object(_) => self.collect(value, key == "patternProperties"),
                serde_json::Value::Array(items) => items.iter().for_each(|item| self.collect(item, false)),
                _ => {}
            }
        }
    }

    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(word) || self.patterns.iter().any(|pattern| pattern.is_match(word))
    }
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

    #[test]
    fn sites_found_one_application_at_a_time_are_those_of_the_whole() {
        let application = |address: &str| {
            json!({"class": "Application",
                "vs": {"class": "Service_HTTP", "virtualAddresses": [address], "pool": "pool_web",
                    "profileHTTP": {"bigip": "/Common/http"}},
                "pool_web": {"class": "Pool", "monitors": [{"use": "mon"}],
                    "members": [{"servicePort": 80, "serverAddresses": ["192.0.2.1"]}]},
                "mon": {"class": "Monitor", "monitorType": "http"}})
        };
        let body = json!({"class": "AS3", "declaration": {"class": "ADC", "schemaVersion": "3.56.0", "id": "x",
            "T2": {"class": "Tenant", "B": application("10.0.0.2"), "A": application("10.0.0.1")},
            "T1": {"class": "Tenant", "defaultRouteDomain": 0, "C": application("10.0.0.3")}}});
        let whole = post_process_sites_splitting_above(&body, usize::MAX).expect("sites");
        let split = post_process_sites_splitting_above(&body, 0).expect("sites");
        assert!(whole.iter().any(|site| site.instance_path == "/declaration/T2/B/vs/profileHTTP"), "{whole:#?}");
        assert_eq!(split, whole, "the same sites in the same order");
    }

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
