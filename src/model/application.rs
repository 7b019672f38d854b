//! One VirtualServer → one [`DesiredApplication`].

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::members::{find_service_port, resolve_members, AddressFamily, MemberRules};
use super::{
    ClusterView, DesiredApplication, DesiredMonitor, DesiredPool, InvalidSpec, ModelDefaults, ObjectKey,
    UnresolvedRef,
};
use crate::crd::{HealthMonitor, VirtualServer};

/// AS3 object names: a letter first, then letters, digits, `_`, `.` or `-`, at most 190 chars.
const AS3_NAME_MAX: usize = 190;

/// An application built from a VirtualServer, with the references that did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltApplication {
    pub application: DesiredApplication,
    pub unresolved: Vec<UnresolvedRef>,
}

/// Validates a VirtualServer and resolves its pools against the cluster.
pub fn build_application(
    vs: &VirtualServer,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
) -> Result<BuiltApplication, InvalidSpec> {
    let source = ObjectKey::of(&vs.metadata);
    let spec = &vs.spec;
    let name = application_name(&source)?;
    let virtual_address: IpAddr = spec
        .virtual_address
        .parse()
        .map_err(|_| InvalidSpec::VirtualAddress { value: spec.virtual_address.clone() })?;
    let port = u16::try_from(spec.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(InvalidSpec::Port { value: spec.port })?;
    let partition = spec.partition.clone().unwrap_or_else(|| defaults.partition.clone());
    validate_partition(&partition)?;
    if spec.pools.is_empty() {
        return Err(InvalidSpec::NoPools);
    }
    let mode = spec.pool_member_type.unwrap_or(defaults.pool_member_type);

    let mut pools = Vec::with_capacity(spec.pools.len());
    let mut unresolved = Vec::new();
    for (index, pool) in spec.pools.iter().enumerate() {
        validate_pool_name(index, &pool.name, &spec.pools[..index])?;
        let monitors = pool
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| desired_monitor(index, i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let members = match cluster.service(&source.namespace, &pool.service) {
            None => {
                unresolved.push(UnresolvedRef::ServiceNotFound {
                    pool: pool.name.clone(),
                    service: pool.service.clone(),
                });
                Vec::new()
            }
            Some(service) => match find_service_port(&service, &pool.service_port) {
                None => {
                    unresolved.push(UnresolvedRef::ServicePortNotFound {
                        pool: pool.name.clone(),
                        service: pool.service.clone(),
                        port: int_or_string_text(&pool.service_port),
                    });
                    Vec::new()
                }
                Some(service_port) => {
                    let slices = cluster.endpoint_slices(&source.namespace, &pool.service);
                    let nodes = cluster.nodes();
                    let rules = MemberRules {
                        family: AddressFamily::of(virtual_address),
                        node_selector: defaults.node_selector.as_ref(),
                    };
                    resolve_members(mode, &service, service_port, &slices, &nodes, &rules).unwrap_or_else(|e| {
                        unresolved.push(e);
                        Vec::new()
                    })
                }
            },
        };
        pools.push(DesiredPool {
            name: pool.name.clone(),
            load_balancing_mode: pool.load_balancing_mode,
            monitors,
            members,
        });
    }

    let default_pool = match &spec.default_pool {
        Some(wanted) if pools.iter().any(|p| &p.name == wanted) => wanted.clone(),
        Some(wanted) => return Err(InvalidSpec::DefaultPool { value: wanted.clone() }),
        None => pools[0].name.clone(),
    };

    Ok(BuiltApplication {
        application: DesiredApplication {
            source,
            name,
            partition,
            virtual_address,
            port,
            snat: spec.snat,
            pools,
            default_pool,
        },
        unresolved,
    })
}

/// `<namespace>_<name>`, checked against AS3's naming rules.
///
/// The name is only unique while neither part holds a `_` (`a_b`/`c` and `a`/`b_c` would
/// share `a_b_c`) or is empty. Kubernetes names never do; manifests read by the offline
/// `render` can.
pub fn application_name(key: &ObjectKey) -> Result<String, InvalidSpec> {
    let value = format!("{}_{}", key.namespace, key.name);
    if key.namespace.is_empty() || key.name.is_empty() {
        return Err(InvalidSpec::ApplicationName { value, reason: "the namespace and name must not be empty" });
    }
    if key.namespace.contains('_') || key.name.contains('_') {
        return Err(InvalidSpec::ApplicationName {
            value,
            reason: "Kubernetes namespaces and names hold no '_', which separates them",
        });
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(InvalidSpec::ApplicationName { value, reason: "AS3 names must start with a letter" });
    }
    if value.len() > AS3_NAME_MAX {
        return Err(InvalidSpec::ApplicationName { value, reason: "longer than AS3's 190 characters" });
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(InvalidSpec::ApplicationName { value, reason: "only letters, digits, '_', '.' and '-' are allowed" });
    }
    Ok(value)
}

/// Properties of an AS3 declaration (`ADC` in the AS3 3.56 schema). Tenants share the
/// declaration's namespace with them, so a partition of one of these names would replace the
/// property and make the declaration invalid.
const ADC_PROPERTIES: &[&str] =
    &["class", "constants", "controls", "id", "label", "remark", "schemaVersion", "scratch", "target", "updateMode"];

fn validate_partition(partition: &str) -> Result<(), InvalidSpec> {
    let invalid = |reason| Err(InvalidSpec::Partition { value: partition.to_string(), reason });
    if partition == "Common" {
        return invalid("the Common partition is reserved");
    }
    if ADC_PROPERTIES.contains(&partition) {
        return invalid("it is the name of an AS3 declaration property");
    }
    if partition.is_empty() || partition.len() > 64 {
        return invalid("must be 1-64 characters");
    }
    if !partition.starts_with(|c: char| c.is_ascii_alphabetic())
        || !partition.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return invalid("must start with a letter and hold only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn validate_pool_name(index: usize, name: &str, earlier: &[crate::crd::Pool]) -> Result<(), InvalidSpec> {
    let invalid = |reason| Err(InvalidSpec::PoolName { index, value: name.to_string(), reason });
    if name.is_empty() || name.len() > 63 {
        return invalid("must be 1-63 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return invalid("must start with a lower-case letter and hold only lower-case letters, digits and '-'");
    }
    if earlier.iter().any(|p| p.name == name) {
        return invalid("is used by an earlier pool");
    }
    Ok(())
}

/// AS3's limits on monitor timing (3.56 schema: `interval` 0-3600, `timeout` 0-900), tighter
/// than the CRD's 86400: a spec beyond them would only fail later as an invalid declaration.
const MONITOR_INTERVAL_MAX: u32 = 3600;
const MONITOR_TIMEOUT_MAX: u32 = 900;

fn desired_monitor(pool: usize, index: usize, monitor: &HealthMonitor) -> Result<DesiredMonitor, InvalidSpec> {
    let invalid = |reason: String| InvalidSpec::Monitor { pool, index, reason };
    let interval = u32::try_from(monitor.interval)
        .ok()
        .filter(|i| (1..=MONITOR_INTERVAL_MAX).contains(i))
        .ok_or_else(|| invalid(format!("interval {} is outside 1-{MONITOR_INTERVAL_MAX}", monitor.interval)))?;
    let timeout = u32::try_from(monitor.timeout)
        .ok()
        .filter(|t| (2..=MONITOR_TIMEOUT_MAX).contains(t))
        .ok_or_else(|| invalid(format!("timeout {} is outside 2-{MONITOR_TIMEOUT_MAX}", monitor.timeout)))?;
    if timeout <= interval {
        return Err(invalid(format!("timeout {timeout} must be greater than interval {interval}")));
    }
    Ok(DesiredMonitor {
        monitor_type: monitor.monitor_type,
        send: monitor.send.clone(),
        receive: monitor.receive.clone(),
        interval,
        timeout,
    })
}

fn int_or_string_text(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}
