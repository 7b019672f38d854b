//! AS3's parser-level checks that need the device and the deployed tenants: `bigip:`
//! references looked up among the device's objects ([`DeviceCatalog`]), modules that must be
//! provisioned, pointers resolved among the tenants as they will be after the request, and
//! BIG-IP's limit on object path lengths. A failure refuses the whole request (HTTP 422)
//! before anything is deployed, as AS3 does.

use serde_json::{Map, Value};

use as3_rules::digest::{self, DigestError};
use as3_rules::formats::is_valid_pointer_syntax;
use as3_rules::schema::{post_process_sites, PostProcessSite, AS3_SCHEMA_VERSION};

use super::catalog::DeviceCatalog;
use super::declaration::{DeclarationContext, RequestError};
use super::model::{class_of, TenantSet};
use super::pointer;
use super::tenant::{Tenant, Tenants};

/// Checks the `sites` of `declaration` (an ADC declaration; site paths point into it) against
/// `device` and the tenants `after` the request.
pub(super) fn digest_with_device(
    declaration: &Map<String, Value>,
    sites: &[PostProcessSite],
    after: &Tenants,
    device: &DeviceCatalog,
) -> Result<(), RequestError> {
    let context = DeclarationContext::of(declaration);
    let tenants = TenantSet::new(after);
    digest::check_sites(declaration, sites, device, str::to_owned, |path, text, data| {
        check_pointer(declaration, tenants, path, text, data)
    })
    .and_then(|()| digest::check_path_lengths(declaration))
    .map_err(|error: DigestError| context.refuse(error))
}

/// The checks of a per-application request: the posted Applications (`declaration`, with its
/// `sites`); when it replaces the tenant's `Shared` Application, which every Application may
/// point into, the whole tenant as it will be (`content`).
pub(super) fn digest_applications(
    tenant: &str,
    declaration: &Map<String, Value>,
    sites: &[PostProcessSite],
    content: &Tenant,
    after: &Tenants,
    device: &DeviceCatalog,
) -> Result<(), RequestError> {
    let touches_shared = declaration.get(tenant).and_then(|posted| posted.get("Shared")).is_some();
    if !touches_shared {
        return digest_with_device(declaration, sites, after, device);
    }
    let mut whole = Map::new();
    whole.insert("class".to_owned(), Value::String("ADC".to_owned()));
    whole.insert("schemaVersion".to_owned(), Value::String(AS3_SCHEMA_VERSION.to_owned()));
    whole.insert(tenant.to_owned(), content.to_value());
    let whole_sites = post_process_sites(&Value::Object(whole.clone()))?;
    digest_with_device(&whole, &whole_sites, after, device)
}

/// AS3's pointer rules for the pointer `text` held at `path` (`/T/A/object/property`).
fn check_pointer(
    declaration: &Map<String, Value>,
    tenants: TenantSet<'_>,
    path: &str,
    text: &str,
    data: &Value,
) -> Result<(), String> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let parent = path.rsplit_once('/').map(|(parent, _)| parent).unwrap_or_default();
    let in_constants =
        digest::value_at(declaration, parent).and_then(|parent| parent.get("class")).and_then(Value::as_str)
            == Some("Constants");
    if !is_valid_pointer_syntax(text, segments.len() >= 4 && !in_constants) {
        return Err("contains an invalid path (invalid character)".to_owned());
    }
    let (Some(tenant), Some(application)) = (segments.first(), segments.get(1)) else { return Ok(()) };
    let target = pointer::resolve(text, tenant, application, tenants).map_err(|error| error.to_string())?;
    let classes = digest::pointer_classes(data);
    match target {
        Some(target) if !classes.is_empty() => {
            let class = target.as_object().and_then(class_of);
            if class.is_some_and(|class| classes.iter().any(|allowed| allowed == class)) {
                Ok(())
            } else {
                Err(format!("AS3 pointer {text} does not point to required object type"))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn refusal(result: Result<(), RequestError>) -> String {
        match result {
            Err(RequestError::Declaration { error, .. }) => error.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Runs the device checks on a whole-tenant declaration of `tenant` next to `deployed`.
    fn digest_tenant(tenant: Value, deployed: &Tenants) -> Result<(), RequestError> {
        let declaration = json!({"class": "ADC", "schemaVersion": "3.56.0", "id": "t", "T": tenant});
        let sites = post_process_sites(&declaration).expect("schema");
        let declaration = declaration.as_object().cloned().unwrap_or_default();
        let mut after = deployed.clone();
        after.insert("T".to_owned(), Arc::new(Tenant::from_value(&declaration["T"])));
        digest_with_device(&declaration, &sites, &after, &DeviceCatalog::standard())
    }

    fn http_tenant(pool_pointer: &str) -> Value {
        json!({"class": "Tenant", "A": {"class": "Application",
            "service": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1"], "pool": pool_pointer},
            "web_pool": {"class": "Pool", "monitors": [{"use": "mon"}]},
            "mon": {"class": "Monitor", "monitorType": "http"}}})
    }

    #[test]
    fn pointers_must_reach_an_object_of_the_right_class() {
        assert!(digest_tenant(http_tenant("web_pool"), &BTreeMap::new()).is_ok());
        assert_eq!(
            refusal(digest_tenant(http_tenant("missing_pool"), &BTreeMap::new())),
            "declaration is invalid: /T/A/service/pool: contains path to non-existent object missing_pool"
        );
        assert_eq!(
            refusal(digest_tenant(http_tenant("mon"), &BTreeMap::new())),
            "declaration is invalid: /T/A/service/pool: AS3 pointer mon does not point to required object type"
        );
        let mut missing_monitor = http_tenant("web_pool");
        missing_monitor["A"]["web_pool"]["monitors"] = json!([{"use": "nomon"}]);
        assert_eq!(
            refusal(digest_tenant(missing_monitor, &BTreeMap::new())),
            "declaration is invalid: /T/A/web_pool/monitors/0/use: contains path to non-existent object nomon"
        );
        assert_eq!(
            refusal(digest_tenant(http_tenant("p"), &BTreeMap::new())),
            "declaration is invalid: /T/A/service/pool: contains an invalid path (invalid character)"
        );
    }

    #[test]
    fn bigip_references_are_looked_up_among_the_device_objects() {
        let mut tenant = http_tenant("web_pool");
        tenant["A"]["service"]["profileHTTP"] = json!({"bigip": "/Common/http"});
        assert!(digest_tenant(tenant.clone(), &BTreeMap::new()).is_ok());
        tenant["A"]["service"]["profileHTTP"] = json!({"bigip": "/Common/tcp"});
        assert_eq!(
            refusal(digest_tenant(tenant.clone(), &BTreeMap::new())),
            "Unable to find /Common/tcp for /T/A/service/profileHTTP"
        );
        tenant["A"]["service"]["profileHTTP"] = json!({"bigip": "/Common/http"});
        tenant["A"]["service"]["policyWAF"] = json!({"bigip": "/Common/linux-high"});
        assert_eq!(
            refusal(digest_tenant(tenant.clone(), &BTreeMap::new())),
            "Unable to find specified WAF policy /Common/linux-high for /T/A/service/policyWAF"
        );
    }

    #[test]
    fn replacing_shared_through_the_per_application_api_checks_every_pointer_into_it() {
        let tenant = json!({"class": "Tenant",
            "Shared": {"class": "Application", "template": "shared", "pool_p": {"class": "Pool"}},
            "A": {"class": "Application", "svc": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1"], "pool": "/T/Shared/pool_p"}}});
        let held = Tenant::from_value(&tenant);
        let shared = json!({"class": "Application", "template": "shared", "pool_q": {"class": "Pool"}});
        let content = held.with_applications([("Shared".to_owned(), shared.clone())]);
        let declaration =
            json!({"class": "ADC", "schemaVersion": "3.56.0", "T": {"class": "Tenant", "Shared": shared}});
        let sites = post_process_sites(&declaration).expect("schema");
        let declaration = declaration.as_object().cloned().unwrap_or_default();
        let after: Tenants = BTreeMap::from([("T".to_owned(), Arc::new(content.clone()))]);
        let result = digest_applications("T", &declaration, &sites, &content, &after, &DeviceCatalog::standard());
        assert_eq!(
            refusal(result),
            "declaration is invalid: /T/A/svc/pool: contains path to non-existent object pool_p"
        );
    }
}

#[cfg(test)]
mod timing {
    use std::time::Instant;

    use serde_json::json;

    /// `cargo test --release -p bigip-simulator digest_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing measurement, not a check"]
    fn digest_timing_of_a_tenant_of_10000_applications() {
        let mut tenant = serde_json::Map::new();
        tenant.insert("class".into(), json!("Tenant"));
        for i in 0..10_000 {
            tenant.insert(format!("ns_app{i}"), json!({"class": "Application", "template": "generic",
                "vs": {"class": "Service_HTTP", "virtualAddresses": [format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)],
                    "virtualPort": 80, "pool": "pool_web", "snat": "auto", "persistenceMethods": []},
                "pool_web": {"class": "Pool", "loadBalancingMode": "round-robin", "monitors": [{"use": "monitor_web_0"}],
                    "members": [{"servicePort": 30080, "serverAddresses": ["172.31.0.1", "172.31.0.2"], "shareNodes": true, "enable": true}]},
                "monitor_web_0": {"class": "Monitor", "monitorType": "http", "interval": 5, "timeout": 16, "send": "GET / HTTP/1.0\r\n\r\n", "receive": "200"}}));
        }
        let adc = json!({"class": "ADC", "schemaVersion": "3.56.0", "id": "t", "k8s": tenant});
        let started = Instant::now();
        let violations = as3_rules::schema::validate_declaration(&adc).expect("schema");
        let validated = started.elapsed();
        let started = Instant::now();
        let words = as3_rules::schema::schema_words().expect("words");
        let unknown = as3_rules::digest::unknown_property(&adc, words);
        let keys = started.elapsed();
        let started = Instant::now();
        let object = adc.as_object().cloned().unwrap_or_default();
        let _ = as3_rules::digest::check_duplicate_values(&object);
        let _ = as3_rules::digest::check_duplicate_node_names(&object);
        let _ = as3_rules::digest::check_path_lengths(&object);
        let checks = started.elapsed();
        let started = Instant::now();
        let sites = as3_rules::schema::post_process_sites(&adc).expect("sites");
        let evaluated = started.elapsed();
        println!(
            "10,000 applications: schema {validated:?} ({} violations), property check {keys:?} ({unknown:?}), other checks {checks:?}, post-process sites {evaluated:?} ({} sites)",
            violations.len(),
            sites.len()
        );
    }
}
