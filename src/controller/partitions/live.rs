//! Drift in the live configuration: what the BIG-IP serves (its virtual servers and pool
//! members, which tmsh or the GUI may have changed) against what the applications this
//! operator deployed declare. AS3's stored declaration does not show such edits; posting the
//! drifted applications again makes AS3 put their objects back.

use serde_json::Value;

use crate::bigip::LiveConfig;

use super::*;

/// `10.0.0.1%2` → `10.0.0.1` (the live view's member keys leave the route domain out).
fn without_route_domain(address: &str) -> &str {
    address.split('%').next().unwrap_or(address)
}

/// Whether an AS3 object (Service or pool member) is enabled as declared.
fn declared_enabled(object: &Value) -> bool {
    let enabled = object.get("enable").and_then(Value::as_bool) != Some(false);
    let admin = object.get("adminState").and_then(Value::as_str);
    enabled && !matches!(admin, Some("disable" | "offline"))
}

/// Whether the live configuration serves Application `name` of `partition` as `application`
/// (an AS3 Application object) declares it: each Service's virtual exists and is enabled as
/// declared; each Pool exists with exactly the declared members (by address and port),
/// enabled as declared. Members AS3 makes from other sources (FQDN, service discovery) and
/// extra objects are not judged.
pub fn application_serves_as_declared(partition: &str, name: &str, application: &Value, live: &LiveConfig) -> bool {
    let Some(objects) = application.as_object() else { return true };
    for (object_name, object) in objects {
        let Some(class) = object.get("class").and_then(Value::as_str) else { continue };
        let path = format!("/{partition}/{name}/{object_name}");
        if class.starts_with("Service_") && class != "Service_Address" {
            if live.virtuals.get(&path) != Some(&declared_enabled(object)) {
                return false;
            }
        } else if class == "Pool" {
            let Some(served) = live.pools.get(&path) else { return false };
            let mut declared = std::collections::BTreeMap::new();
            for member in object.get("members").and_then(Value::as_array).into_iter().flatten() {
                let Some(port) = member.get("servicePort").and_then(Value::as_u64) else { continue };
                let Some(addresses) = member.get("serverAddresses").and_then(Value::as_array) else {
                    return true;
                };
                for address in addresses.iter().filter_map(Value::as_str) {
                    declared.insert(format!("{}:{port}", without_route_domain(address)), declared_enabled(member));
                }
            }
            if *served != declared {
                return false;
            }
        }
    }
    true
}

/// The applications of `applications` (deployed to `partition`) the BIG-IP does not serve as
/// declared. Applications known only by their hash (read back, not posted) are not judged.
pub fn applications_drifted_live(partition: &str, applications: &AppSet, live: &LiveConfig) -> Vec<String> {
    applications
        .iter()
        .filter_map(|(name, application)| {
            let value = application.value();
            (!value.is_null() && !application_serves_as_declared(partition, name, &value, live)).then(|| name.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn application() -> Value {
        json!({"class": "Application",
            "vs": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1"], "pool": "pool_web"},
            "pool_web": {"class": "Pool", "members": [
                {"servicePort": 30080, "serverAddresses": ["172.31.0.1", "172.31.0.2"], "shareNodes": true},
                {"servicePort": 30080, "serverAddresses": ["172.31.0.3"], "adminState": "disable"}]}})
    }

    fn serving() -> LiveConfig {
        LiveConfig {
            virtuals: BTreeMap::from([("/k8s/ns_web/vs".to_owned(), true), ("/k8s/ns_web/other".to_owned(), true)]),
            pools: BTreeMap::from([(
                "/k8s/ns_web/pool_web".to_owned(),
                BTreeMap::from([
                    ("172.31.0.1:30080".to_owned(), true),
                    ("172.31.0.2:30080".to_owned(), true),
                    ("172.31.0.3:30080".to_owned(), false),
                ]),
            )]),
        }
    }

    #[test]
    fn an_application_served_as_declared_has_not_drifted() {
        assert!(application_serves_as_declared("k8s", "ns_web", &application(), &serving()));
    }

    #[test]
    fn edits_on_the_device_are_drift() {
        let mut disabled = serving();
        disabled.virtuals.insert("/k8s/ns_web/vs".into(), false);
        let mut removed = serving();
        removed.pools.get_mut("/k8s/ns_web/pool_web").map(|members| members.remove("172.31.0.2:30080"));
        let mut member_disabled = serving();
        member_disabled.pools.get_mut("/k8s/ns_web/pool_web").map(|m| m.insert("172.31.0.1:30080".into(), false));
        let mut pool_gone = serving();
        pool_gone.pools.clear();
        let mut virtual_gone = serving();
        virtual_gone.virtuals.remove("/k8s/ns_web/vs");
        for (what, live) in [
            ("virtual disabled", disabled),
            ("member removed", removed),
            ("member disabled", member_disabled),
            ("pool deleted", pool_gone),
            ("virtual deleted", virtual_gone),
        ] {
            assert!(!application_serves_as_declared("k8s", "ns_web", &application(), &live), "{what}");
        }
    }
}
