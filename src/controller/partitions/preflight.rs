//! Pre-flight: each new or changed application checked alone before it is posted, with the
//! rules AS3 applies to a whole declaration (its schema and F5's formats, the property check,
//! path lengths, duplicates, certificate bundles), and its `bigip:` references looked up on the
//! BIG-IP (cached). One that would fail is left out, instead of AS3 refusing its partition.

use std::time::Duration;

use crate::as3::digest::{self, BigIpReference, DigestError};
use crate::as3::schema::post_process_sites;

use super::*;

/// How long a lookup of a BIG-IP object is trusted: objects that exist rarely go away; a missing
/// one is looked up again at the next sync after this (the objects it blocks retry every 10 s).
const FOUND_OBJECT_TTL: Duration = Duration::from_secs(300);
const MISSING_OBJECT_TTL: Duration = Duration::from_secs(5);

/// Answers of the BIG-IP about its objects, by (iControl REST type, full path).
pub(super) type DeviceObjectCache = std::sync::Mutex<HashMap<(String, String), (bool, Instant)>>;

/// Schema violations quoted in a pre-flight DeclarationInvalid message.
pub(super) const PREFLIGHT_VIOLATIONS_SHOWN: usize = 3;

/// Pre-flight verdicts by application name: the content hash of the rendered application, the
/// DeclarationInvalid message when the checks refuse it, and its `bigip:` references. Holds
/// only the applications of the latest sync, so it is as large as the partition.
pub(super) type PreflightVerdicts = HashMap<String, (String, Option<String>, Vec<BigIpReference>)>;

/// The applications pre-flight last checked, those of them it found invalid (name → content
/// hash and message), and the `bigip:` references of the others.
#[derive(Debug, Default, Clone)]
pub(super) struct Preflight {
    checked: AppSet,
    invalid: BTreeMap<String, (String, String)>,
    references: BTreeMap<String, Vec<BigIpReference>>,
}

/// The field of a VirtualServer/TransportServer that makes the `bigip:` reference at AS3 path
/// `/<partition>/<application>/<object>/<property>[/<index>]`.
fn field_of(instance_path: &str) -> String {
    if instance_path.ends_with(&format!("/{DEFAULT_ROUTE_DOMAIN_PROPERTY}")) {
        return "--default-route-domain".to_owned();
    }
    let segments: Vec<&str> = instance_path.split('/').skip(4).collect();
    let object = instance_path.split('/').nth(3).unwrap_or_default();
    match segments.as_slice() {
        ["clientTLS", ..] if object.starts_with("monitor_") => "spec.pools[].monitors[].sslProfile".to_owned(),
        ["policyWAF", ..] => "spec.wafPolicy".to_owned(),
        ["snat", ..] => "spec.snatPool".to_owned(),
        ["iRules", index, ..] => format!("spec.iRules[{index}]"),
        ["serverTLS", ..] => "spec.tls.clientSslProfile".to_owned(),
        ["clientTLS", ..] => "spec.tls.serverSslProfile".to_owned(),
        ["profileHTTP", ..] => "spec.profiles.http".to_owned(),
        ["pool", ..] => "spec.bigipDefaultPool".to_owned(),
        ["policyEndpoint", ..] => "spec.ltmPolicies".to_owned(),
        ["profileHTTP2", ..] => "spec.profiles.http2".to_owned(),
        ["profileTCP", "ingress", ..] => "spec.profiles.tcpClient".to_owned(),
        ["profileTCP", "egress", ..] => "spec.profiles.tcpServer".to_owned(),
        ["profileTCP", ..] => "spec.profiles.tcp".to_owned(),
        ["profileUDP", ..] => "spec.profiles.udp".to_owned(),
        ["profileL4", ..] => "spec.profiles.fastL4".to_owned(),
        ["profileMultiplex", ..] => "spec.profiles.oneConnect".to_owned(),
        ["profileHTTPCompression", ..] => "spec.profiles.httpCompression".to_owned(),
        ["profileWebSocket", ..] => "spec.profiles.webSocket".to_owned(),
        ["profileAnalytics", ..] => "spec.profiles.analytics".to_owned(),
        ["profileTrafficLog", ..] => "spec.profiles.requestLogging".to_owned(),
        ["persistenceMethods", ..] => "spec.profiles.persistence".to_owned(),
        ["allowVlans", index, ..] => format!("spec.allowVlans[{index}]"),
        ["monitors", ..] => "spec.pools[].bigipMonitors".to_owned(),
        ["cipherGroup", ..] => "spec.tls.cipherGroup".to_owned(),
        ["virtualAddresses", ..] | ["virtualAddress"] => "spec.virtualAddress".to_owned(),
        _ => instance_path.to_owned(),
    }
}

/// The tenant property holding the partition's default route domain.
const DEFAULT_ROUTE_DOMAIN_PROPERTY: &str = "defaultRouteDomain";

/// The route domains an application needs (AS3 creates none; the BIG-IP refuses a tenant at
/// deploy time that names a missing one): the partition's default (`--default-route-domain`),
/// and every other one its addresses name. As references of type `net/route-domain` named
/// `/Common/<id>`, looked up by id.
fn route_domain_references(
    partition: &str,
    owner: &Ownership,
    application: &RenderedApplication,
) -> Vec<BigIpReference> {
    let reference = |instance_path: String, id: &str| BigIpReference {
        instance_path,
        name: format!("/Common/{id}"),
        kinds: vec![crate::bigip::client::ROUTE_DOMAIN_KIND.to_owned()],
    };
    let default = owner.default_route_domain();
    let mut references = Vec::new();
    if default != 0 {
        references.push(reference(format!("/{partition}/{DEFAULT_ROUTE_DOMAIN_PROPERTY}"), &default.to_string()));
    }
    let text = application.json().get();
    if !text.contains('%') {
        return references;
    }
    let Ok(Value::Object(objects)) = serde_json::from_str::<Value>(text) else { return references };
    for (object, value) in &objects {
        let addresses: Vec<(String, &str)> = match (value.get("virtualAddresses"), value.get("virtualAddress")) {
            (Some(Value::Array(list)), _) => list
                .iter()
                .enumerate()
                .filter_map(|(index, address)| address.as_str().map(|a| (format!("virtualAddresses/{index}"), a)))
                .collect(),
            (_, Some(Value::String(address))) => vec![("virtualAddress".to_owned(), address.as_str())],
            _ => Vec::new(),
        };
        for (property, address) in addresses {
            let Some((_, id)) = address.split_once('%') else { continue };
            if id != "0" && id != default.to_string() {
                references.push(reference(format!("/{partition}/{}/{object}/{property}", application.name), id));
            }
        }
    }
    references
}

/// The message for an application whose reference names an object the BIG-IP lacks.
pub(super) fn missing_object_message(reference: &BigIpReference) -> String {
    if reference.kinds.iter().any(|kind| kind == crate::bigip::client::ROUTE_DOMAIN_KIND) {
        let id = reference.name.rsplit('/').next().unwrap_or_default();
        return format!(
            "{} names route domain {id}, and the BIG-IP has none with that id: the application is left out of the \
             partition until an administrator creates it (AS3 creates no route domains; the BIG-IP would refuse \
             the partition: 01020036:3: The requested route domain ({}) was not found.)",
            field_of(&reference.instance_path),
            reference.name
        );
    }
    let what = if reference.is_waf_policy() { "WAF policy" } else { "object of that type" };
    format!(
        "{} names {}, and the BIG-IP has no such {what}: the application is left out of the partition until it \
         exists (AS3 would refuse the whole partition: {})",
        field_of(&reference.instance_path),
        reference.name,
        reference.not_found_message()
    )
}

/// AS3's checks besides the schema that need no BIG-IP, on the declaration of `request`.
fn offline_problem(request: &Value) -> Option<String> {
    let declaration = request.get("declaration")?;
    let words = crate::as3::schema::schema_words().ok()?;
    if let Some(word) = digest::unknown_property(declaration, words) {
        return Some(format!("AS3 would refuse it: Invalid data property: {word}"));
    }
    let object = declaration.as_object()?;
    digest::check_structure(object)
        .and_then(|()| digest::check_path_lengths(object))
        .err()
        .map(|error: DigestError| format!("AS3 would refuse it: {error}"))
}

/// The `bigip:` references of `request` (paths without the request's `/declaration`).
fn references_of(request: &Value) -> Vec<BigIpReference> {
    let Some(declaration) = request.get("declaration") else { return Vec::new() };
    let Ok(sites) = post_process_sites(declaration) else { return Vec::new() };
    let object = declaration.as_object().cloned().unwrap_or_default();
    digest::bigip_references(&object, &sites, str::to_owned)
}

/// The AS3 request that pre-flight validates for one application: the application alone in
/// its tenant, with the real partition name and owner label.
pub(super) fn preflight_request(partition: &str, owner: &Ownership, application: &Arc<RenderedApplication>) -> Value {
    let applications = AppSet::from_iter([application.clone()]);
    let tenant = serde_json::to_value(tenant_of(&applications, owner)).unwrap_or(Value::Null);
    render_request(&BTreeMap::from([(partition.to_string(), tenant)]))
}

/// Validates each rendered application of `partition` alone against the embedded AS3 schema.
/// An application whose content is unchanged since `previous` keeps its verdict without being
/// validated again. Returns the verdicts of exactly the applications in `rendered`, and how
/// many were validated now. Pure, but CPU-bound: run it off the async workers.
pub(super) fn preflight_check(
    previous: &PreflightVerdicts,
    partition: &str,
    owner: &Ownership,
    rendered: &Apps,
) -> (PreflightVerdicts, usize) {
    let mut verdicts = PreflightVerdicts::with_capacity(rendered.len());
    let mut validated = 0;
    let mut schema_usable = true;
    for (name, application) in rendered {
        let hash = application.hash.clone();
        if let Some(known) = previous.get(name).filter(|(known, _, _)| *known == hash) {
            verdicts.insert(name.clone(), known.clone());
            continue;
        }
        let mut problem = None;
        let mut references = Vec::new();
        if schema_usable {
            validated += 1;
            let request = preflight_request(partition, owner, application);
            match validate_declaration(&request) {
                Ok(violations) if violations.is_empty() => {
                    problem = offline_problem(&request);
                    // Finding references means evaluating the schema's annotations: only for the
                    // applications that name BIG-IP objects at all.
                    if problem.is_none() && application.json().get().contains("\"bigip\"") {
                        references = references_of(&request);
                    }
                    if problem.is_none() {
                        references.extend(route_domain_references(partition, owner, application));
                    }
                }
                Ok(violations) => {
                    let mut shown: Vec<String> =
                        violations.iter().take(PREFLIGHT_VIOLATIONS_SHOWN).map(ToString::to_string).collect();
                    if violations.len() > PREFLIGHT_VIOLATIONS_SHOWN {
                        shown.push(format!("and {} more", violations.len() - PREFLIGHT_VIOLATIONS_SHOWN));
                    }
                    problem = Some(format!(
                        "the rendered AS3 application is invalid (checked before posting): {}",
                        shown.join("; ")
                    ));
                }
                Err(error) => {
                    // Nothing to check with; the BIG-IP validates what is posted.
                    warn!(%error, "pre-flight validation is unavailable");
                    schema_usable = false;
                }
            }
        }
        verdicts.insert(name.clone(), (hash, problem, references));
    }
    (verdicts, validated)
}

impl<B: As3Api> PartitionSyncer<B> {
    /// Pre-flight: checks the applications whose rendering changed since the last sync (off
    /// the async workers), then looks up the `bigip:` references of all of them on the BIG-IP.
    /// Returns the ones to leave out, with why.
    pub(super) async fn preflight(&self, partition: &str, rendered: &Apps) -> BTreeMap<String, ProgrammingState> {
        if rendered.is_empty() {
            return BTreeMap::new();
        }
        let Preflight { checked, mut invalid, mut references } = {
            let mut records = self.records.lock().await;
            records.get_mut(partition).map(|r| std::mem::take(&mut r.preflight)).unwrap_or_default()
        };
        // Only new and changed applications are validated (found without visiting what the
        // two sets share); verdicts of removed ones are dropped.
        let AppChanges { changed, removed } = checked.changes_to(rendered);
        for name in &removed {
            invalid.remove(name);
            references.remove(name);
        }
        if !changed.is_empty() {
            let started = Instant::now();
            let validated = changed.len();
            let check = {
                let (partition, owner) = (partition.to_string(), self.owner.clone());
                let changed: Apps = changed.into_iter().collect();
                tokio::task::spawn_blocking(move || {
                    preflight_check(&PreflightVerdicts::new(), &partition, &owner, &changed)
                })
            };
            match check.await {
                Ok((verdicts, _)) => {
                    debug!(
                        partition,
                        applications = rendered.len(),
                        validated,
                        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                        "pre-flight schema validation"
                    );
                    for (name, (hash, problem, found)) in verdicts {
                        match problem {
                            Some(message) => invalid.insert(name.clone(), (hash, message)),
                            None => invalid.remove(&name),
                        };
                        if found.is_empty() {
                            references.remove(&name);
                        } else {
                            references.insert(name, found);
                        }
                    }
                }
                Err(error) => {
                    // The BIG-IP validates what is posted anyway; checked again next time.
                    warn!(partition, %error, "pre-flight validation failed to run");
                    return BTreeMap::new();
                }
            }
        }
        let mut found: BTreeMap<String, ProgrammingState> = invalid
            .iter()
            .map(|(name, (_, message))| {
                let state =
                    ProgrammingState::Failed { reason: FailureReason::DeclarationInvalid, message: message.clone() };
                (name.clone(), state)
            })
            .collect();
        for (name, application_references) in &references {
            if found.contains_key(name) {
                continue;
            }
            for reference in application_references {
                if !self.device_object_exists(reference).await {
                    let message = missing_object_message(reference);
                    warn!(partition, application = %name, %message, "not posting an application with a missing BIG-IP object");
                    found.insert(
                        name.clone(),
                        ProgrammingState::Failed { reason: FailureReason::BigIpObjectNotFound, message },
                    );
                    break;
                }
            }
        }
        let preflight = Preflight { checked: rendered.clone(), invalid, references };
        self.records.lock().await.entry(partition.to_string()).or_default().preflight = preflight;
        found
    }

    /// Whether the BIG-IP has an object `reference` may name (of any of its types), from the
    /// cache when fresh. When the BIG-IP cannot say, the reference counts as found: AS3 checks it.
    async fn device_object_exists(&self, reference: &BigIpReference) -> bool {
        for kind in &reference.kinds {
            let key = (kind.clone(), reference.name.clone());
            let cached = self.device_objects.lock().ok().and_then(|cache| cache.get(&key).copied());
            let fresh = cached
                .filter(|(exists, at)| at.elapsed() < if *exists { FOUND_OBJECT_TTL } else { MISSING_OBJECT_TTL });
            let exists = match fresh {
                Some((exists, _)) => exists,
                None => match self.bigip.device_object_exists(kind, &reference.name).await {
                    Ok(exists) => {
                        if let Ok(mut cache) = self.device_objects.lock() {
                            cache.insert(key, (exists, Instant::now()));
                        }
                        exists
                    }
                    Err(error) => {
                        debug!(kind = %kind, name = %reference.name, %error, "cannot look up a BIG-IP object");
                        return true;
                    }
                },
            };
            if exists {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_named_by_the_field_that_makes_them() {
        for (path, field) in [
            ("/k8s/ns_a/vs/policyWAF", "spec.wafPolicy"),
            ("/k8s/ns_a/vs/snat", "spec.snatPool"),
            ("/k8s/ns_a/vs/iRules/1", "spec.iRules[1]"),
            ("/k8s/ns_a/vs/serverTLS", "spec.tls.clientSslProfile"),
            ("/k8s/ns_a/vs/clientTLS", "spec.tls.serverSslProfile"),
            ("/k8s/ns_a/vs/profileHTTP", "spec.profiles.http"),
            ("/k8s/ns_a/vs/profileTCP/egress", "spec.profiles.tcpServer"),
            ("/k8s/ns_a/vs/persistenceMethods/0", "spec.profiles.persistence"),
            ("/k8s/ns_a/pool_web/monitors/1", "spec.pools[].bigipMonitors"),
            ("/k8s/ns_a/monitor_web_0/clientTLS", "spec.pools[].monitors[].sslProfile"),
            ("/k8s/ns_a/tls_server/cipherGroup", "spec.tls.cipherGroup"),
            ("/k8s/ns_a/vs/pool", "spec.bigipDefaultPool"),
            ("/k8s/ns_a/vs/profileFTP", "/k8s/ns_a/vs/profileFTP"),
        ] {
            assert_eq!(field_of(path), field, "{path}");
        }
    }

    #[test]
    fn route_domains_are_references_named_by_their_field() {
        let app = |value: serde_json::Value| RenderedApplication::from_value("ns_web".into(), &value);
        let owner = Ownership::new("c").expect("id");
        let service = serde_json::json!({"class": "Application",
            "vs": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1%3"]},
            "other": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.2%0", "10.0.0.3"]},
            "virtual_address": {"class": "Service_Address", "virtualAddress": "10.0.0.4%5"}});
        let names = |references: Vec<BigIpReference>| {
            references.into_iter().map(|r| (field_of(&r.instance_path), r.name)).collect::<Vec<_>>()
        };
        assert_eq!(
            names(route_domain_references("k8s", &owner, &app(service.clone()))),
            [
                ("spec.virtualAddress".to_owned(), "/Common/3".to_owned()),
                ("spec.virtualAddress".to_owned(), "/Common/5".to_owned())
            ]
        );
        // With a default route domain: the default for every application; %3 as named.
        let in_rd3 = owner.with_default_route_domain(3);
        assert_eq!(
            names(route_domain_references("k8s", &in_rd3, &app(service))),
            [
                ("--default-route-domain".to_owned(), "/Common/3".to_owned()),
                ("spec.virtualAddress".to_owned(), "/Common/5".to_owned())
            ]
        );
        let reference = &route_domain_references("k8s", &in_rd3, &app(serde_json::json!({"class": "Application"})))[0];
        let message = missing_object_message(reference);
        assert!(
            message.starts_with("--default-route-domain names route domain 3, and the BIG-IP has none"),
            "{message}"
        );
        assert!(message.contains("01020036:3: The requested route domain (/Common/3) was not found."), "{message}");
    }

    #[test]
    fn offline_checks_refuse_what_as3_would() {
        let request = |name: &str| {
            serde_json::json!({"class": "AS3", "declaration": {"class": "ADC", "schemaVersion": "3.56.0", "id": "x",
                "k8s": {"class": "Tenant", "A": {"class": "Application", name: {"class": "Pool", "monitors": ["http", "http"]}}}}})
        };
        let problem = offline_problem(&request("pool_web")).expect("repeated monitors");
        assert_eq!(problem, "AS3 would refuse it: declaration has duplicate values in monitors");
    }
}
