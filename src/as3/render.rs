//! Desired applications → AS3 Tenant, Application, Service, Pool and Monitor objects.
//!
//! Defaults that matter are written out explicitly (`updateMode`, `loadBalancingMode`, `snat`,
//! monitor `send`/`receive`, member `enable`), so that the declaration says what the BIG-IP
//! will do instead of relying on AS3's defaults, which change between AS3 versions.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::ownership::Ownership;
use crate::crd::{MonitorType, SnatMode};
use crate::model::{DesiredApplication, DesiredMonitor, DesiredPool, MemberState};

/// The AS3 schema version the declarations are written for. 3.50 is the first AS3 with the
/// per-application API; every newer AS3 accepts it.
pub const DECLARATION_SCHEMA_VERSION: &str = "3.50.0";

/// Declaration id, shown by AS3 in its task and declaration history.
pub const DECLARATION_ID: &str = "bigip-operator";

/// Remark on every tenant and application, telling BIG-IP administrators who owns them.
pub const MANAGED_REMARK: &str = "managed by bigip-operator";

/// Name of the virtual server object inside each application.
pub const SERVICE_OBJECT_NAME: &str = "vs";

/// The default http/https monitor request when a VirtualServer names none.
pub const DEFAULT_HTTP_SEND: &str = "GET / HTTP/1.0\r\n\r\n";

/// The AS3 object name of a pool.
pub fn pool_object_name(pool: &str) -> String {
    format!("pool_{pool}")
}

/// The AS3 object name of a pool's n-th monitor.
pub fn monitor_object_name(pool: &str, index: usize) -> String {
    format!("monitor_{pool}_{index}")
}

/// One partition's Tenant object, with its applications in name order, labelled with its owner.
pub fn render_tenant(applications: &[DesiredApplication], owner: &Ownership) -> Value {
    let mut tenant = Map::new();
    tenant.insert("class".into(), json!("Tenant"));
    tenant.insert("label".into(), json!(owner.label()));
    tenant.insert("remark".into(), json!(MANAGED_REMARK));
    let mut sorted: Vec<&DesiredApplication> = applications.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for app in sorted {
        tenant.insert(app.name.clone(), render_application(app));
    }
    Value::Object(tenant)
}

/// The Tenant object that makes AS3 delete a partition's applications: a tenant with none.
pub fn render_empty_tenant() -> Value {
    json!({ "class": "Tenant" })
}

/// One VirtualServer's Application object.
pub fn render_application(app: &DesiredApplication) -> Value {
    let mut objects = Map::new();
    objects.insert("class".into(), json!("Application"));
    objects.insert("template".into(), json!("generic"));
    objects.insert("remark".into(), json!(truncate_remark(&format!("{} {}", MANAGED_REMARK, app.source))));
    objects.insert(
        SERVICE_OBJECT_NAME.into(),
        json!({
            "class": "Service_HTTP",
            "virtualAddresses": [app.virtual_address.to_string()],
            "virtualPort": app.port,
            "pool": pool_object_name(&app.default_pool),
            "snat": match app.snat { SnatMode::Automap => "auto", SnatMode::None => "none" },
        }),
    );
    for pool in &app.pools {
        objects.insert(pool_object_name(&pool.name), render_pool(pool));
        for (index, monitor) in pool.monitors.iter().enumerate() {
            objects.insert(monitor_object_name(&pool.name, index), render_monitor(monitor));
        }
    }
    Value::Object(objects)
}

fn render_pool(pool: &DesiredPool) -> Value {
    // AS3 groups member addresses by service port; node objects are shared in /Common so two
    // partitions can use the same node without fighting over it. Draining members get entries
    // of their own with `adminState: disable`: BIG-IP then sends them no new connections
    // (except persisted ones) and lets the existing ones finish. Active entries leave
    // `adminState` at its default, `enable`.
    let mut groups: BTreeMap<(u16, MemberState), Vec<String>> = BTreeMap::new();
    for member in &pool.members {
        groups.entry((member.port, member.state)).or_default().push(member.address.to_string());
    }
    let members: Vec<Value> = groups
        .into_iter()
        .map(|((port, state), addresses)| {
            let mut entry = json!({
                "servicePort": port,
                "serverAddresses": addresses,
                "shareNodes": true,
                "enable": true,
            });
            if state == MemberState::Draining {
                entry["adminState"] = json!("disable");
            }
            entry
        })
        .collect();
    let monitors: Vec<Value> =
        (0..pool.monitors.len()).map(|i| json!({ "use": monitor_object_name(&pool.name, i) })).collect();
    let mut object = json!({
        "class": "Pool",
        "loadBalancingMode": pool.load_balancing_mode.as3_name(),
        "members": members,
    });
    if !monitors.is_empty() {
        object["monitors"] = Value::Array(monitors);
    }
    object
}

fn render_monitor(monitor: &DesiredMonitor) -> Value {
    let mut object = json!({
        "class": "Monitor",
        "monitorType": monitor.monitor_type.as3_name(),
        "interval": monitor.interval,
        "timeout": monitor.timeout,
    });
    let default_send = match monitor.monitor_type {
        MonitorType::Http | MonitorType::Https => DEFAULT_HTTP_SEND,
        MonitorType::Tcp => "",
    };
    object["send"] = json!(monitor.send.as_deref().unwrap_or(default_send));
    object["receive"] = json!(monitor.receive.as_deref().unwrap_or(""));
    object
}

fn truncate_remark(text: &str) -> String {
    // AS3 remarks: at most 64 characters, no control characters, quotes or backslashes.
    text.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').take(64).collect()
}

/// An ADC declaration holding the given tenants, wrapped in an AS3 request.
pub fn render_request(tenants: &BTreeMap<String, Value>) -> Value {
    let mut adc = Map::new();
    adc.insert("class".into(), json!("ADC"));
    adc.insert("schemaVersion".into(), json!(DECLARATION_SCHEMA_VERSION));
    adc.insert("id".into(), json!(DECLARATION_ID));
    // Only the tenants named in the declaration are touched; never let a default of
    // "complete" remove the partitions this declaration does not mention.
    adc.insert("updateMode".into(), json!("selective"));
    for (name, tenant) in tenants {
        adc.insert(name.clone(), tenant.clone());
    }
    json!({
        "class": "AS3",
        "action": "deploy",
        "persist": true,
        "declaration": Value::Object(adc),
    })
}

/// A content hash of a tenant object: equal hashes mean an identical declaration.
///
/// `serde_json::Value` keeps object keys sorted, so the serialisation is canonical.
pub fn tenant_hash(tenant: &Value) -> String {
    hex::encode(Sha256::digest(tenant.to_string().as_bytes()))
}
