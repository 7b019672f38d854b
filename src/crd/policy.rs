//! The `BigIpPolicy` custom resource: settings many VirtualServers and TransportServers share,
//! referenced by name (`spec.policy`) instead of repeated in each.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Persistence, Profiles};
use super::virtual_server::TlsVersion;

/// Shared settings for the VirtualServers and TransportServers of its namespace that name it in
/// `spec.policy`. What an object sets itself wins; the policy fills what it leaves out.
/// Changing the policy re-programs every object that uses it, and only those.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bigip.operator.dev",
    version = "v1alpha1",
    kind = "BigIpPolicy",
    namespaced,
    shortname = "bpol",
    category = "bigip",
    doc = "A BigIpPolicy: profiles, TLS settings, WAF policy and source ranges shared by VirtualServers and TransportServers.",
    printcolumn(name = "WAF", type_ = "string", json_path = ".spec.wafPolicy"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BigIpPolicySpec {
    /// Existing BIG-IP profiles (as `spec.profiles`); each one the object does not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Profiles>,

    /// TLS settings for objects terminating TLS with a certificate from a Secret; each one the
    /// object's `spec.tls` does not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PolicyTls>,

    /// An existing Advanced WAF policy (VirtualServers without `wafPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub waf_policy: Option<String>,

    /// Client source ranges (objects without `allowSourceRanges`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(inner(length(max = 43)))]
    #[x_kube(validation = Rule::new("self.all(r, isCIDR(r))").message("allowSourceRanges must hold CIDRs such as 10.0.0.0/8"))]
    pub allow_source_ranges: Vec<String>,

    /// Session persistence (objects without `persistence` or `profiles.persistence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,

    /// VLANs to listen on (objects without `allowVlans`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(inner(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")))]
    pub allow_vlans: Vec<String>,

    /// Connection mirroring (objects that do not turn it on themselves).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connection_mirroring: bool,
}

/// TLS settings of a policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.ciphers) || !has(self.cipherGroup)").message("use ciphers or cipherGroup, not both"))]
pub struct PolicyTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[A-Za-z0-9!+:@_.,=-]+$"))]
    pub ciphers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub cipher_group: Option<String>,
}
