//! Checks AS3 and BIG-IP apply to a tenant beyond the JSON schema: every pointer must resolve
//! to an object of the right class, and no two virtual servers may listen on the same
//! destination. A tenant failing a check is not deployed.

use super::model::Tenants;
use std::collections::HashMap;

use serde_json::Value;

use super::model::{self, applications, class_of, declared_objects, is_service_class, Listener, TenantSet};
use super::pointer::{self, PointerError};

/// Checks `tenant` as it would be deployed under `name` next to the other tenants of `working`.
/// The error text is what AS3 or BIG-IP would report.
pub(super) fn check_tenant(name: &str, tenant: &Value, working: &Tenants) -> Result<(), String> {
    let tenants = TenantSet::replacing(working, name, tenant);
    check_pointers(name, tenant, tenants)?;
    check_listeners(name, tenant, tenants)
}

/// The class a `use` pointer must reach, by the property holding it.
fn required_class(property: &str) -> Option<&'static str> {
    match property {
        "pool" => Some("Pool"),
        "monitors" => Some("Monitor"),
        "virtualAddresses" => Some("Service_Address"),
        _ => None,
    }
}

struct PointerCheck<'a> {
    tenant: &'a str,
    application: &'a str,
    tenants: TenantSet<'a>,
}

impl PointerCheck<'_> {
    fn check(&self, pointer: &str, required: Option<&str>, data_path: &str) -> Result<(), String> {
        let outcome =
            pointer::resolve(pointer, self.tenant, self.application, self.tenants).and_then(|target| {
                match (target, required) {
                    (Some(target), Some(required)) if target.as_object().and_then(class_of) != Some(required) => {
                        Err(PointerError::WrongClass(pointer.to_owned()))
                    }
                    _ => Ok(()),
                }
            });
        outcome.map_err(|error| format!("{data_path}: {error}"))
    }

    /// Pointer-valued strings of a Service (`pool: "web_pool"`, `iRules: ["rule"]`, ...).
    fn check_service_strings(&self, service: &serde_json::Map<String, Value>, path: &str) -> Result<(), String> {
        for property in ["pool", "serverTLS", "clientTLS"] {
            if let Some(Value::String(pointer)) = service.get(property) {
                self.check(pointer, required_class(property), &format!("{path}/{property}"))?;
            }
        }
        for property in ["iRules", "policyEndpoint"] {
            match service.get(property) {
                Some(Value::String(pointer)) => self.check(pointer, None, &format!("{path}/{property}"))?,
                Some(Value::Array(items)) => {
                    for (index, item) in items.iter().enumerate() {
                        if let Value::String(pointer) = item {
                            self.check(pointer, None, &format!("{path}/{property}/{index}"))?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Every `{"use": "..."}` below `value`; `property` is the nearest enclosing property name.
    fn check_use_pointers(&self, value: &Value, path: &str, property: &str) -> Result<(), String> {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(pointer)) = object.get("use") {
                    self.check(pointer, required_class(property), &format!("{path}/use"))?;
                }
                for (key, child) in object {
                    if key != "use" {
                        self.check_use_pointers(child, &format!("{path}/{key}"), key)?;
                    }
                }
                Ok(())
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(index, item)| self.check_use_pointers(item, &format!("{path}/{index}"), property)),
            _ => Ok(()),
        }
    }
}

fn check_pointers(name: &str, tenant: &Value, tenants: TenantSet<'_>) -> Result<(), String> {
    for (application, app) in applications(tenant) {
        let check = PointerCheck { tenant: name, application, tenants };
        // Constants hold free-form user data, not pointers.
        for (object_name, object, class) in declared_objects(app).filter(|(_, _, class)| *class != "Constants") {
            let path = format!("/{name}/{application}/{object_name}");
            if is_service_class(class) {
                check.check_service_strings(object, &path)?;
            }
            for (property, value) in object {
                check.check_use_pointers(value, &format!("{path}/{property}"), property)?;
            }
        }
    }
    Ok(())
}

/// Virtual servers already listening, by destination: `(protocol, full path)`.
type ListenerIndex = HashMap<Listener, Vec<(String, String)>>;

fn protocols_collide(a: &str, b: &str) -> bool {
    a == b || a == "any" || b == "any"
}

fn conflict_message(virtual_path: &str, existing_path: &str) -> String {
    format!(
        "01070333:3: Virtual Server {virtual_path} illegally shares both address and vlan with Virtual Server {existing_path}."
    )
}

fn check_listeners(name: &str, tenant: &Value, tenants: TenantSet<'_>) -> Result<(), String> {
    let mut index = ListenerIndex::new();
    for (other_name, other) in tenants.iter().filter(|(other_name, _)| *other_name != name) {
        for virtual_server in model::tenant_virtuals(other_name, other, tenants) {
            if let Some(listener) = virtual_server.listener.clone() {
                index
                    .entry(listener)
                    .or_default()
                    .push((virtual_server.ip_protocol.clone(), virtual_server.full_path()));
            }
        }
    }
    for virtual_server in model::tenant_virtuals(name, tenant, tenants) {
        let Some(listener) = virtual_server.listener.clone() else { continue };
        let full_path = virtual_server.full_path();
        let existing = index.entry(listener).or_default();
        if let Some((_, holder)) =
            existing.iter().find(|(protocol, _)| protocols_collide(protocol, &virtual_server.ip_protocol))
        {
            return Err(conflict_message(&full_path, holder));
        }
        existing.push((virtual_server.ip_protocol.clone(), full_path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    fn http_tenant(address: &str, pool_pointer: &str) -> Value {
        json!({"class": "Tenant", "A": {"class": "Application",
            "service": {"class": "Service_HTTP", "virtualAddresses": [address], "pool": pool_pointer},
            "web_pool": {"class": "Pool", "monitors": [{"use": "mon"}]},
            "mon": {"class": "Monitor", "monitorType": "http"}}})
    }

    #[test]
    fn accepts_a_consistent_tenant() {
        let working = BTreeMap::new();
        assert_eq!(check_tenant("T", &http_tenant("10.0.0.1", "web_pool"), &working), Ok(()));
    }

    #[test]
    fn names_a_missing_pool() {
        let working = BTreeMap::new();
        let error = check_tenant("T", &http_tenant("10.0.0.1", "missing_pool"), &working).expect_err("must fail");
        assert_eq!(error, "/T/A/service/pool: contains path to non-existent object missing_pool");
    }

    #[test]
    fn rejects_a_pointer_to_the_wrong_class() {
        let working = BTreeMap::new();
        let error = check_tenant("T", &http_tenant("10.0.0.1", "mon"), &working).expect_err("must fail");
        assert_eq!(error, "/T/A/service/pool: AS3 pointer mon does not point to required object type");
    }

    #[test]
    fn names_a_missing_monitor_use() {
        let mut tenant = http_tenant("10.0.0.1", "web_pool");
        tenant["A"]["web_pool"]["monitors"] = json!([{"use": "nomon"}]);
        let error = check_tenant("T", &tenant, &BTreeMap::new()).expect_err("must fail");
        assert_eq!(error, "/T/A/web_pool/monitors/0/use: contains path to non-existent object nomon");
    }

    #[test]
    fn rejects_a_destination_used_by_another_tenant() {
        let working = BTreeMap::from([("T1".to_owned(), Arc::new(http_tenant("10.0.0.1", "web_pool")))]);
        let error = check_tenant("T2", &http_tenant("10.0.0.1", "web_pool"), &working).expect_err("must fail");
        assert_eq!(
            error,
            "01070333:3: Virtual Server /T2/A/service illegally shares both address and vlan with Virtual Server /T1/A/service."
        );
        // Redeploying the tenant that holds the address is not a conflict with itself.
        assert_eq!(check_tenant("T1", &http_tenant("10.0.0.1", "web_pool"), &working), Ok(()));
        // Another address is fine.
        assert_eq!(check_tenant("T2", &http_tenant("10.0.0.2", "web_pool"), &working), Ok(()));
    }

    #[test]
    fn tcp_and_udp_may_share_a_destination() {
        let tcp = json!({"class": "Tenant", "A": {"class": "Application",
            "dns": {"class": "Service_TCP", "virtualAddresses": ["10.0.0.9"], "virtualPort": 53}}});
        let udp = json!({"class": "Tenant", "A": {"class": "Application",
            "dns": {"class": "Service_UDP", "virtualAddresses": ["10.0.0.9"], "virtualPort": 53}}});
        let working = BTreeMap::from([("T1".to_owned(), Arc::new(tcp))]);
        assert_eq!(check_tenant("T2", &udp, &working), Ok(()));
    }
}
