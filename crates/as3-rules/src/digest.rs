//! The checks AS3 3.56 runs on a declaration besides its JSON schema ("digest"), in AS3's
//! order, as pure functions: the property-name check, the `id` check, path lengths, duplicate
//! node names and duplicate array values, PKCS#12 contents, and the `f5PostProcess` sites of
//! the schema (`bigip:` references looked up on the device, modules that must be provisioned,
//! pointers). AS3 stops at the first failure and reports only that one.
//!
//! The simulator runs all of them against its simulated device; the operator runs the same
//! rules before it posts, so one bad object never reaches AS3 (where it would fail the whole
//! declaration).

use base64::Engine;
use serde_json::{Map, Value};

use crate::schema::{PostProcessSite, SchemaWords};

/// How AS3 refuses a declaration (HTTP 422 unless stated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// A validator-style error: `message: "declaration is invalid"`, `errors: ["<path>: <reason>"]`.
    #[error("declaration is invalid: {0}")]
    Invalid(String),
    /// Refused with a message only.
    #[error("{0}")]
    Refused(String),
    /// HTTP 400 with a message.
    #[error("{0}")]
    BadRequest(String),
}

/// What AS3 needs from the device: its objects by iControl REST type (`ltm/profile/http`) and
/// its provisioned modules.
pub trait Device {
    fn has_object(&self, kind: &str, full_path: &str) -> bool;
    fn is_provisioned(&self, module: &str) -> bool;
}

/// The first word of `declaration` AS3 does not know (`Invalid data property: <word>`): every
/// key, and the values of `class`, `template` and `logLevel`, except names of objects that
/// carry a `class`, numbers, and the free-form contents of `constants`, `metadata` and the like.
pub fn unknown_property(declaration: &Value, words: &SchemaWords) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    declared_words(declaration, &mut seen);
    seen.into_iter().find(|word| !words.contains(word))
}

fn free_form(key: &str) -> bool {
    matches!(key, "metadata" | "localZones" | "forwardZones" | "environmentVariables")
}

fn remove_word(seen: &mut Vec<String>, word: &str) {
    if let Some(index) = seen.iter().position(|seen| seen == word) {
        seen.remove(index);
    }
}

fn declared_words(node: &Value, seen: &mut Vec<String>) {
    let items: Vec<(&str, &Value)> = match node {
        Value::Object(object) => object.iter().map(|(key, value)| (key.as_str(), value)).collect(),
        Value::Array(items) => {
            items.iter().for_each(|item| declared_words(item, seen));
            return;
        }
        _ => return,
    };
    for (key, value) in items {
        if free_form(key) {
            seen.push(key.to_owned());
            continue;
        }
        if !seen.iter().any(|seen| seen == key) {
            seen.push(key.to_owned());
        }
        if matches!(key, "class" | "template" | "logLevel") {
            if let Some(word) = value.as_str() {
                if !seen.iter().any(|seen| seen == word) {
                    seen.push(word.to_owned());
                }
            }
        }
        let classed = value.get("class").is_some_and(|class| !matches!(class, Value::Null | Value::Bool(false)));
        if classed
            || key == "class"
            || key.trim().parse::<f64>().is_ok()
            || key.trim().is_empty()
            || key == "constants"
            || key == "$value"
        {
            remove_word(seen, key);
        }
        if let Some(word @ ("ADC" | "AS3")) = value.as_str() {
            remove_word(seen, word);
        }
        if key != "constants" && key != "verifiers" {
            declared_words(value, seen);
        }
    }
}

/// The characters and length AS3 allows in a declaration `id`.
pub fn check_id(adc: &Map<String, Value>) -> Result<(), DigestError> {
    let valid = match adc.get("id") {
        Some(Value::String(id)) => {
            id.chars().count() <= 255
                && !id.chars().any(|c| (c as u32) <= 0x20 || c == '\x7f' || "\"'<>\\^`|".contains(c))
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(DigestError::Refused("declaration lacks valid 'id' property".to_owned()))
    }
}

fn is_class(value: &Value, class: &str) -> bool {
    value.get("class").and_then(Value::as_str) == Some(class)
}

/// `(tenant, application, object name, object)` for every member of every Application.
fn application_members(adc: &Map<String, Value>) -> impl Iterator<Item = (&str, &str, &str, &Value)> {
    adc.iter().filter(|(_, tenant)| is_class(tenant, "Tenant")).flat_map(|(tenant_name, tenant)| {
        tenant.as_object().into_iter().flatten().filter(|(_, app)| is_class(app, "Application")).flat_map(
            move |(app_name, app)| {
                app.as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(name, object)| (tenant_name.as_str(), app_name.as_str(), name.as_str(), object))
            },
        )
    })
}

/// AS3's checks right after the schema, in its order: 255-character paths, duplicate node
/// names, duplicate array values, PKCS#12 contents.
pub fn check_structure(adc: &Map<String, Value>) -> Result<(), DigestError> {
    check_long_keys(adc)
        .and_then(|()| check_duplicate_node_names(adc))
        .and_then(|()| check_duplicate_values(adc))
        .and_then(|()| check_pkcs12(adc))
}

/// Any key of an Application whose full path exceeds 255 characters: HTTP 400.
pub fn check_long_keys(adc: &Map<String, Value>) -> Result<(), DigestError> {
    for (tenant, application, name, _) in application_members(adc) {
        let path = format!("/{tenant}/{application}/{name}");
        if path.chars().count() > 255 {
            return Err(DigestError::BadRequest(format!("The path {path} exceeds the 255 full path character limit")));
        }
    }
    Ok(())
}

/// Objects whose full path BIG-IP cannot hold (over 195 characters); AS3 names the last one.
pub fn check_path_lengths(adc: &Map<String, Value>) -> Result<(), DigestError> {
    let mut too_long = None;
    for (tenant, application, name, object) in application_members(adc) {
        let path = format!("/{tenant}/{application}/{name}");
        if object.get("class").is_some() && path.chars().count() > 195 {
            too_long = Some(path);
        }
    }
    match too_long {
        Some(path) => Err(DigestError::Refused(format!("Path {path} is longer than 195 characters"))),
        None => Ok(()),
    }
}

/// A node name may stand for one address only, throughout the declaration (unnamed `servers`
/// share the empty name).
pub fn check_duplicate_node_names(adc: &Map<String, Value>) -> Result<(), DigestError> {
    let mut addresses: Vec<(String, Value)> = Vec::new();
    let mut duplicates: Vec<String> = Vec::new();
    let pools = application_members(adc).filter(|(_, _, _, object)| is_class(object, "Pool"));
    for (_, _, _, pool) in pools {
        let members = pool.get("members").and_then(Value::as_array).into_iter().flatten();
        let servers = members.flat_map(|member| member.get("servers").and_then(Value::as_array).into_iter().flatten());
        for server in servers {
            let name = server.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let address = server.get("address").cloned().unwrap_or(Value::Null);
            match addresses.iter().find(|(seen, _)| *seen == name) {
                Some((_, first)) if *first != address && !is_falsy(first) => duplicates.push(name),
                Some(_) => {}
                None => addresses.push((name, address)),
            }
        }
    }
    if duplicates.is_empty() {
        Ok(())
    } else {
        Err(DigestError::Refused(format!(
            "The node name must be unique throughout the declaration. Duplicate node name '{}' found.",
            duplicates.join(",")
        )))
    }
}

fn is_falsy(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false)) || value.as_str() == Some("") || value.as_f64() == Some(0.0)
}

/// The array properties AS3 checks for repeated values, in the order it checks them.
const NO_REPEATS: [&str; 8] =
    ["rules", "doNotProxyHosts", "members", "certificates", "tcpOptions", "monitors", "persistenceMethods", "iRules"];

/// No array under one of [`NO_REPEATS`] may hold the same value twice. As in AS3, once any of
/// these properties has been seen, only the first element of each array is searched further.
pub fn check_duplicate_values(adc: &Map<String, Value>) -> Result<(), DigestError> {
    let declaration = Value::Object(adc.clone());
    let mut found_any = false;
    for property in NO_REPEATS {
        let mut arrays: Vec<&Value> = Vec::new();
        collect_property(&declaration, property, &mut arrays, &mut found_any);
        let repeated = arrays.iter().filter_map(|value| value.as_array()).any(|items| {
            items.iter().enumerate().any(|(index, item)| items[..index].iter().any(|earlier| earlier == item))
        });
        if repeated {
            return Err(DigestError::Refused(format!("declaration has duplicate values in {property}")));
        }
    }
    Ok(())
}

fn collect_property<'a>(node: &'a Value, property: &str, out: &mut Vec<&'a Value>, found_any: &mut bool) {
    match node {
        Value::Array(items) => {
            for item in items {
                collect_property(item, property, out, found_any);
                if *found_any {
                    break;
                }
            }
        }
        Value::Object(object) => {
            for (key, value) in object {
                if key == property {
                    out.push(value);
                    *found_any = true;
                }
                collect_property(value, property, out, found_any);
            }
        }
        _ => {}
    }
}

/// PKCS#12 bundles given inline (base64) must open with their passphrase and hold a
/// certificate, as AS3 extracts the certificate and key from them before deploying.
pub fn check_pkcs12(adc: &Map<String, Value>) -> Result<(), DigestError> {
    for (_, _, _, object) in application_members(adc).filter(|(_, _, _, object)| is_class(object, "Certificate")) {
        let encoded = match object.get("pkcs12") {
            Some(Value::String(text)) => Some(text.as_str()),
            Some(Value::Object(source)) => source.get("base64").and_then(Value::as_str),
            _ => None,
        };
        let Some(encoded) = encoded else { continue };
        if object.pointer("/pkcs12Options/internalOnly").is_some() {
            continue;
        }
        let passphrase = pkcs12_passphrase(object.get("passphrase"));
        let problem = match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
            Err(error) => Some(format!("Invalid base64 encoding ({error}).")),
            Ok(bytes) => pkcs12_problem(&bytes, &passphrase),
        };
        if let Some(problem) = problem {
            return Err(DigestError::Refused(format!(
                "Unable to fetch value. Unable to extract pkcs12 contents. Details: {problem}"
            )));
        }
    }
    Ok(())
}

/// The passphrase of a PKCS#12 bundle: a secret whose `ciphertext` is base64 of the plain text
/// when it is not encrypted for the device; a single space stands for none (as in AS3).
fn pkcs12_passphrase(secret: Option<&Value>) -> String {
    let plain = secret
        .and_then(|secret| secret.get("ciphertext"))
        .and_then(Value::as_str)
        .and_then(|ciphertext| base64::engine::general_purpose::STANDARD.decode(ciphertext).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default();
    if plain == " " {
        String::new()
    } else {
        plain
    }
}

/// Why `bytes` does not give a certificate with `passphrase`, if it does not.
fn pkcs12_problem(bytes: &[u8], passphrase: &str) -> Option<String> {
    match p12_keystore::KeyStore::from_pkcs12(bytes, passphrase) {
        Err(error) => Some(format!("{error}.")),
        Ok(store) if store.entries_count() == 0 => {
            Some("no certificate could be read (wrong passphrase or damaged contents).".to_owned())
        }
        Ok(_) => None,
    }
}

/// A `bigip:` reference of a declaration: the device object it names and the iControl REST
/// types it may be of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigIpReference {
    /// Where it is, e.g. `/T/A/service/profileHTTP`.
    pub instance_path: String,
    /// The object's full path, e.g. `/Common/my-http`.
    pub name: String,
    /// iControl REST types (`ltm/profile/http`); WAF policies are `asm/policies`.
    pub kinds: Vec<String>,
}

impl BigIpReference {
    pub fn is_waf_policy(&self) -> bool {
        self.kinds.iter().any(|kind| kind == "asm/policies")
    }

    /// AS3's answer when the object is missing.
    pub fn not_found_message(&self) -> String {
        if self.is_waf_policy() {
            format!("Unable to find specified WAF policy {} for {}", self.name, self.instance_path)
        } else {
            format!("Unable to find {} for {}", self.name, self.instance_path)
        }
    }
}

/// The iControl REST type of one of the schema's lookups (`query ltm profile http` →
/// `ltm/profile/http`, `asm policy` → `asm/policies`).
pub fn icontrol_kind(lookup: &str) -> Option<String> {
    if lookup == "asm policy" || lookup == "query asm policy" {
        return Some("asm/policies".to_owned());
    }
    let words = lookup.strip_prefix("query ").or_else(|| lookup.strip_prefix("probe "))?;
    Some(words.split(' ').collect::<Vec<_>>().join("/"))
}

/// The value at JSON pointer `path` (not the root) of the object `body`.
pub fn value_at<'a>(body: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('/')?;
    let (first, below) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, ""),
    };
    let first = first.replace("~1", "/").replace("~0", "~");
    let value = body.get(&first)?;
    if below.is_empty() {
        Some(value)
    } else {
        value.pointer(below)
    }
}

/// The `bigip:` references among `sites` (as found in `body`), with paths as `rebase` maps them.
pub fn bigip_references(
    body: &Map<String, Value>,
    sites: &[PostProcessSite],
    rebase: impl Fn(&str) -> String,
) -> Vec<BigIpReference> {
    sites
        .iter()
        .filter(|site| site.tag == "bigComponent")
        .filter_map(|site| {
            let name = value_at(body, &site.instance_path)?.get("bigip")?.as_str()?.replace('"', "");
            let kinds = site.data.as_array()?.iter().filter_map(Value::as_str).filter_map(icontrol_kind).collect();
            Some(BigIpReference { instance_path: rebase(&site.instance_path), name, kinds })
        })
        .collect()
}

/// Runs the `bigComponent` and `modules` sites against `device`, and hands every `pointer` site
/// (path, pointer text, the class constraint) to `check_pointer`, one after the other in the
/// order of `sites`, as AS3 does.
pub fn check_sites(
    body: &Map<String, Value>,
    sites: &[PostProcessSite],
    device: &dyn Device,
    rebase: impl Fn(&str) -> String,
    mut check_pointer: impl FnMut(&str, &str, &Value) -> Result<(), String>,
) -> Result<(), DigestError> {
    for site in sites {
        let path = rebase(&site.instance_path);
        match site.tag.as_str() {
            "pointer" => {
                let Some(Value::String(pointer)) = value_at(body, &site.instance_path) else { continue };
                if pointer.is_empty() {
                    continue;
                }
                check_pointer(&path, pointer, &site.data)
                    .map_err(|reason| DigestError::Invalid(format!("{path}: {reason}")))?;
            }
            "bigComponent" => {
                let references = bigip_references(body, std::slice::from_ref(site), &rebase);
                for reference in references {
                    if !reference.kinds.iter().any(|kind| device.has_object(kind, &reference.name)) {
                        return Err(DigestError::Refused(reference.not_found_message()));
                    }
                }
            }
            "modules" => {
                let modules: Vec<&str> = match &site.data {
                    Value::String(module) => vec![module.as_str()],
                    Value::Array(modules) => modules.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                if !modules.is_empty() && !modules.iter().any(|module| device.is_provisioned(module)) {
                    return Err(DigestError::Invalid(format!(
                        "{path}: One of these F5 modules needs to be provisioned: {}",
                        modules.join(", ")
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The classes a pointer's target may have, from a `pointer` site's data (`{properties:
/// {class: {const|enum}}}`); empty when any class will do.
pub fn pointer_classes(data: &Value) -> Vec<String> {
    let class = data.pointer("/properties/class");
    let constant = class.and_then(|class| class.get("const")).and_then(Value::as_str).map(str::to_owned);
    let options = class.and_then(|class| class.get("enum")).and_then(Value::as_array);
    constant.into_iter().chain(options.into_iter().flatten().filter_map(Value::as_str).map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn adc(tenant: Value) -> Map<String, Value> {
        let value = json!({"class": "ADC", "schemaVersion": "3.56.0", "id": "x", "T1": tenant});
        value.as_object().cloned().unwrap_or_default()
    }

    fn app(objects: Value) -> Value {
        let mut app = json!({"class": "Application"});
        if let (Some(app), Some(objects)) = (app.as_object_mut(), objects.as_object()) {
            app.extend(objects.clone());
        }
        json!({"class": "Tenant", "A1": app})
    }

    #[test]
    fn unknown_words_are_found_and_names_of_classed_objects_are_not() {
        let words = crate::schema::schema_words().expect("schema");
        let good = json!({"class": "ADC", "id": "x", "T1": {"class": "Tenant", "A1": {"class": "Application",
            "my_service": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1"]}}}});
        assert_eq!(unknown_property(&good, words), None);
        let typo = json!({"class": "ADC", "T1": {"class": "Tenant", "A1": {"class": "Application",
            "svc": {"class": "Service_HTTP", "virtualAdresses": ["10.0.0.1"]}}}});
        assert_eq!(unknown_property(&typo, words), Some("virtualAdresses".to_owned()));
        let bad_class = json!({"class": "ADC", "T1": {"class": "Tenant", "A1": {"class": "Application",
            "svc": {"class": "Service_HTTTP"}}}});
        assert_eq!(unknown_property(&bad_class, words), Some("Service_HTTTP".to_owned()));
        let classless = json!({"class": "ADC", "T1": {"class": "Tenant", "A1": {"class": "Application",
            "pool1": {"members": []}}}});
        assert_eq!(unknown_property(&classless, words), Some("pool1".to_owned()));
        let free_form = json!({"class": "ADC", "T1": {"class": "Tenant", "A1": {"class": "Application",
            "constants": {"anything_goes": 1}}}});
        assert_eq!(unknown_property(&free_form, words), None);
    }

    #[test]
    fn ids_paths_and_duplicates() {
        let mut declaration = adc(app(json!({})));
        assert_eq!(check_id(&declaration), Ok(()));
        declaration.insert("id".to_owned(), json!("with space"));
        assert!(check_id(&declaration).is_err());

        let long = "x".repeat(190);
        let declaration = adc(app(json!({ long.clone(): {"class": "Pool"} })));
        assert_eq!(
            check_path_lengths(&declaration),
            Err(DigestError::Refused(format!("Path /T1/A1/{long} is longer than 195 characters")))
        );
        assert_eq!(check_long_keys(&declaration), Ok(()));
        let longer = "x".repeat(260);
        assert!(matches!(check_long_keys(&adc(app(json!({ longer: 1 })))), Err(DigestError::BadRequest(_))));

        let nodes = adc(app(json!({
            "p1": {"class": "Pool", "members": [{"servers": [{"name": "node1", "address": "192.0.2.1"}]}]},
            "p2": {"class": "Pool", "members": [{"servers": [{"name": "node1", "address": "192.0.2.2"}]}]}})));
        assert_eq!(
            check_duplicate_node_names(&nodes),
            Err(DigestError::Refused(
                "The node name must be unique throughout the declaration. Duplicate node name 'node1' found."
                    .to_owned()
            ))
        );
        let same_address = adc(app(json!({
            "p1": {"class": "Pool", "members": [{"servers": [{"name": "node1", "address": "192.0.2.1"}]}]},
            "p2": {"class": "Pool", "members": [{"servers": [{"name": "node1", "address": "192.0.2.1"}]}]}})));
        assert_eq!(check_duplicate_node_names(&same_address), Ok(()));

        let monitors = adc(app(json!({"p": {"class": "Pool", "monitors": ["http", "http"]}})));
        assert_eq!(
            check_duplicate_values(&monitors),
            Err(DigestError::Refused("declaration has duplicate values in monitors".to_owned()))
        );
        assert_eq!(
            check_duplicate_values(&adc(app(json!({"p": {"class": "Pool", "monitors": ["http", "tcp"]}})))),
            Ok(())
        );
    }

    #[test]
    fn a_pkcs12_that_gives_no_certificate_is_refused() {
        let cut = base64::engine::general_purpose::STANDARD.encode([0x30, 0x82, 0x04, 0x74, 1, 2, 3]);
        let cert = |pkcs12: &str| adc(app(json!({"c": {"class": "Certificate", "pkcs12": {"base64": pkcs12}}})));
        assert!(matches!(check_pkcs12(&cert(&cut)),
            Err(DigestError::Refused(m)) if m.starts_with("Unable to fetch value. Unable to extract pkcs12 contents. Details: ")));
        assert!(check_pkcs12(&cert("not base64!")).is_err());
        assert_eq!(pkcs12_passphrase(Some(&json!({"ciphertext": "IA=="}))), "");
        assert_eq!(pkcs12_passphrase(Some(&json!({"ciphertext": "c2VjcmV0"}))), "secret");
    }

    struct Box17;
    impl Device for Box17 {
        fn has_object(&self, kind: &str, full_path: &str) -> bool {
            kind == "ltm/profile/http" && full_path == "/Common/http"
        }
        fn is_provisioned(&self, module: &str) -> bool {
            module == "ltm"
        }
    }

    #[test]
    fn references_and_modules_are_checked_against_the_device() {
        let body = json!({"svc": {"profileHTTP": {"bigip": "/Common/tcp"}, "policyWAF": {"bigip": "/Common/waf"}}});
        let body = body.as_object().cloned().unwrap_or_default();
        let site = |path: &str, tag: &str, data: Value| PostProcessSite {
            instance_path: path.to_owned(),
            tag: tag.to_owned(),
            data,
        };
        let http = site("/svc/profileHTTP", "bigComponent", json!(["query ltm profile http"]));
        let refused = check_sites(&body, &[http], &Box17, |p| p.to_owned(), |_, _, _| Ok(()));
        assert_eq!(refused, Err(DigestError::Refused("Unable to find /Common/tcp for /svc/profileHTTP".to_owned())));
        let waf = site("/svc/policyWAF", "bigComponent", json!(["asm policy"]));
        let refused = check_sites(&body, &[waf], &Box17, |p| p.to_owned(), |_, _, _| Ok(()));
        assert_eq!(
            refused,
            Err(DigestError::Refused("Unable to find specified WAF policy /Common/waf for /svc/policyWAF".to_owned()))
        );
        let apm = site("/svc", "modules", json!(["apm", "afm"]));
        let refused = check_sites(&body, &[apm], &Box17, |p| p.to_owned(), |_, _, _| Ok(()));
        assert_eq!(
            refused,
            Err(DigestError::Invalid("/svc: One of these F5 modules needs to be provisioned: apm, afm".to_owned()))
        );
        assert_eq!(pointer_classes(&json!({"properties": {"class": {"enum": ["Pool", "X"]}}})), vec!["Pool", "X"]);
    }
}
