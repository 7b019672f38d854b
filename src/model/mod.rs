//! Pure desired state: VirtualServers plus the Services, EndpointSlices and Nodes they use,
//! turned into validated, defaulted BIG-IP applications grouped by partition. No I/O.

pub mod application;
pub mod cluster;
pub mod fleet;
pub mod labels;
pub mod members;

use std::fmt;
use std::net::IpAddr;

use crate::crd::{LoadBalancingMode, MonitorType, PoolMemberType, SnatMode};

pub use application::build_application;
pub use cluster::{ClusterObjects, ClusterView};
pub use fleet::{build_fleet, AppOutcome, Fleet};

/// Operator-wide defaults the model applies where an object leaves a field out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDefaults {
    /// Partition for objects that name none.
    pub partition: String,
    pub pool_member_type: PoolMemberType,
    /// Nodeport mode: only nodes whose labels match are pool members (`--node-label-selector`).
    pub node_selector: Option<labels::Selector>,
}

/// Namespace and name of a namespaced Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object; objects read without a namespace are in `default`,
    /// as kubectl would create them.
    pub fn of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self {
            namespace: metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One virtual server as the BIG-IP should have it: an AS3 Application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredApplication {
    pub source: ObjectKey,
    /// AS3 Application name, `<namespace>_<name>`.
    pub name: String,
    pub partition: String,
    pub virtual_address: IpAddr,
    pub port: u16,
    pub snat: SnatMode,
    pub pools: Vec<DesiredPool>,
    /// Name of the pool the virtual server sends traffic to.
    pub default_pool: String,
}

impl DesiredApplication {
    /// Members that take new connections, over all pools; draining members are not counted,
    /// so an application whose members all drain reports none.
    pub fn member_count(&self) -> usize {
        self.pools.iter().flat_map(|p| &p.members).filter(|m| m.state == MemberState::Active).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPool {
    pub name: String,
    pub load_balancing_mode: LoadBalancingMode,
    pub monitors: Vec<DesiredMonitor>,
    /// Sorted, without duplicates.
    pub members: Vec<PoolMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredMonitor {
    pub monitor_type: MonitorType,
    pub send: Option<String>,
    pub receive: Option<String>,
    pub interval: u32,
    pub timeout: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolMember {
    pub address: IpAddr,
    pub port: u16,
    pub state: MemberState,
}

/// Whether a pool member takes new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MemberState {
    /// Ready: takes new connections.
    #[default]
    Active,
    /// Serving but terminating: existing (and persisted) connections finish, new ones go to
    /// other members. Sorts after `Active`.
    Draining,
}

/// Why a VirtualServer cannot be accepted at all (its spec is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpec {
    #[error("spec.virtualAddress {value:?} is not an IPv4 or IPv6 address")]
    VirtualAddress { value: String },
    #[error("spec.port {value} is outside 1-65535")]
    Port { value: i32 },
    #[error("spec.partition {value:?} is invalid: {reason}")]
    Partition { value: String, reason: &'static str },
    #[error("spec.pools must list at least one pool")]
    NoPools,
    #[error("spec.pools[{index}].name {value:?} is invalid: {reason}")]
    PoolName { index: usize, value: String, reason: &'static str },
    #[error("spec.defaultPool {value:?} names no pool in spec.pools")]
    DefaultPool { value: String },
    #[error("spec.pools[{pool}].monitors[{index}]: {reason}")]
    Monitor { pool: usize, index: usize, reason: String },
    #[error("the AS3 application name {value:?} (<namespace>_<name>) is invalid: {reason}")]
    ApplicationName { value: String, reason: &'static str },
}

/// A reference the model could not resolve. The virtual server is still programmed (the pool
/// stays empty) and ResolvedRefs is False with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnresolvedRef {
    #[error("pool {pool:?}: Service {service:?} not found")]
    ServiceNotFound { pool: String, service: String },
    #[error("pool {pool:?}: Service {service:?} has no port {port}")]
    ServicePortNotFound { pool: String, service: String, port: String },
    #[error("Service {service:?} port {port} has no nodePort (type {service_type}); use type NodePort or LoadBalancer, or poolMemberType cluster")]
    NoNodePort { service: String, port: i32, service_type: String },
}

impl UnresolvedRef {
    /// The condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ServiceNotFound { .. } => "ServiceNotFound",
            Self::ServicePortNotFound { .. } => "ServicePortNotFound",
            Self::NoNodePort { .. } => "ServiceHasNoNodePort",
        }
    }
}

#[cfg(test)]
mod tests;
