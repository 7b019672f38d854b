//! BIG-IP REST client: token authentication and AS3 declarations, behind the [`As3Api`] trait
//! so the controller can be driven against anything that speaks AS3 (a BIG-IP, the simulator).

pub mod client;
pub mod config;
pub mod error;
pub mod net;
pub mod response;
/// BIG-IP versions (shared with the simulator).
pub use as3_rules::version;

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

use crate::model::bgp::PrefixEntry;

pub use client::{BigIpClient, ClientObserver};
pub use config::{BigIpConfig, Credentials, RetryPolicy, TlsVerification};
pub use error::BigIpError;
pub use net::{NetKind, Removal};
pub use response::{DeployReport, TenantResult};
pub use version::BigIpVersion;

/// What the controller needs from a BIG-IP.
pub trait As3Api: Send + Sync + 'static {
    /// Deploys the given tenants (name → AS3 Tenant object: a `Value`, JSON text, or anything
    /// that serialises to one) in one declaration. Tenants not named are left untouched; a
    /// tenant with no applications is removed.
    fn deploy_tenants<T: serde::Serialize + Sync>(
        &self,
        tenants: &BTreeMap<String, T>,
    ) -> impl Future<Output = Result<DeployReport, BigIpError>> + Send;

    /// Creates or replaces these Applications (name → AS3 Application object, as for
    /// [`deploy_tenants`](Self::deploy_tenants)) of an existing `tenant` through AS3's
    /// per-application API, leaving its other Applications alone.
    fn deploy_applications<T: serde::Serialize + Sync>(
        &self,
        tenant: &str,
        applications: &BTreeMap<String, T>,
    ) -> impl Future<Output = Result<DeployReport, BigIpError>> + Send;

    /// Deletes one Application of `tenant` through the per-application API.
    fn delete_application(
        &self,
        tenant: &str,
        application: &str,
    ) -> impl Future<Output = Result<DeployReport, BigIpError>> + Send;

    /// Whether the per-application API is available (AS3 ≥ 3.50, `perAppDeploymentAllowed`).
    fn per_application_api(&self) -> impl Future<Output = Result<bool, BigIpError>> + Send;

    /// Every tenant AS3 currently holds, summarised as it is read: its own properties and the
    /// content hash of each Application, never the whole declaration as one JSON tree (at
    /// 10,000 applications that tree is ~60 MB of allocations per drift check).
    fn tenant_summaries(&self) -> impl Future<Output = Result<BTreeMap<String, TenantSummary>, BigIpError>> + Send;

    /// One tenant AS3 currently holds (`GET …/declare/<tenant>`), None when it holds no such
    /// tenant: what a sync of one partition needs to know, without reading every tenant.
    fn current_tenant(&self, tenant: &str) -> impl Future<Output = Result<Option<Value>, BigIpError>> + Send;

    /// The live configuration of a partition as the BIG-IP serves it — what tmsh or the GUI may
    /// have changed, which the stored declaration does not show: two requests per partition.
    fn live_partition(&self, partition: &str) -> impl Future<Output = Result<LiveConfig, BigIpError>> + Send;

    /// Whether the BIG-IP has the object `full_path` (`/Common/my-http`) of iControl REST type
    /// `kind` (`ltm/profile/http`; WAF policies are `asm/policies`): what AS3 looks up for a
    /// `bigip:` reference before it deploys a declaration.
    fn device_object_exists(
        &self,
        kind: &str,
        full_path: &str,
    ) -> impl Future<Output = Result<bool, BigIpError>> + Send;
}

/// What a partition serves: its virtual servers and pools with their members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveConfig {
    /// Virtual servers by full path (`/P/A/vs`): whether enabled.
    pub virtuals: BTreeMap<String, bool>,
    /// Pools by full path: members (`address:port`, route domain left out) → whether enabled.
    pub pools: BTreeMap<String, BTreeMap<String, bool>>,
}

/// A tenant as read back from AS3, without its applications' content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantSummary {
    /// The tenant's entries that are not Applications (class, label, remark, …).
    pub properties: serde_json::Map<String, Value>,
    /// Application name → [`tenant_hash`](crate::as3::tenant_hash) of the Application.
    pub applications: BTreeMap<String, String>,
}

impl TenantSummary {
    /// Summarises a tenant object.
    pub fn of(tenant: &Value) -> Self {
        let mut summary = Self::default();
        for (name, entry) in tenant.as_object().into_iter().flatten() {
            summary.add(name, entry.clone());
        }
        summary
    }

    fn add(&mut self, name: &str, entry: Value) {
        if entry.get("class").and_then(Value::as_str) == Some("Application") {
            self.applications.insert(name.to_string(), crate::as3::tenant_hash(&entry));
        } else {
            self.properties.insert(name.to_string(), entry);
        }
    }

    /// Summarises a tenant from its JSON text, one entry at a time.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let entries: BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(text)?;
        let mut summary = Self::default();
        for (name, raw) in entries {
            summary.add(&name, serde_json::from_str(raw.get())?);
        }
        Ok(summary)
    }

    /// The tenant's own properties as a tenant object (for its owner label).
    pub fn header(&self) -> Value {
        Value::Object(self.properties.clone())
    }
}

/// What the BigIpTunnel controller needs from a BIG-IP: the iControl REST network objects.
pub trait NetApi: Send + Sync + 'static {
    fn ensure_vxlan_profile(&self, name: &str, port: u16) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn ensure_tunnel(
        &self,
        name: &str,
        profile: &str,
        local_address: &str,
    ) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn ensure_self_ip(
        &self,
        name: &str,
        address: &str,
        tunnel: &str,
    ) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn tunnel_mac(&self, tunnel: &str) -> impl Future<Output = Result<String, BigIpError>> + Send;
    fn fdb_records(&self, tunnel: &str) -> impl Future<Output = Result<Vec<(String, String)>, BigIpError>> + Send;
    fn replace_fdb_records(
        &self,
        tunnel: &str,
        records: &[(String, String)],
    ) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn arp_records(&self) -> impl Future<Output = Result<Vec<net::ArpRecord>, BigIpError>> + Send;
    fn create_arp(
        &self,
        name: &str,
        ip_address: &str,
        mac_address: &str,
    ) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn delete_arp(&self, name: &str) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn ensure_bgp(
        &self,
        name: &str,
        local_as: u32,
        neighbors: &[(String, u32)],
        route_map_in: Option<&str>,
    ) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn ensure_prefix_list(
        &self,
        name: &str,
        entries: &[PrefixEntry],
    ) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn ensure_route_map(&self, name: &str, prefix_list: &str) -> impl Future<Output = Result<(), BigIpError>> + Send;
    fn remove_managed(&self, kind: NetKind, name: &str) -> impl Future<Output = Result<Removal, BigIpError>> + Send;
    fn version(&self) -> impl Future<Output = Result<BigIpVersion, BigIpError>> + Send;
}

impl NetApi for BigIpClient {
    async fn ensure_vxlan_profile(&self, name: &str, port: u16) -> Result<(), BigIpError> {
        BigIpClient::ensure_vxlan_profile(self, name, port).await
    }
    async fn ensure_tunnel(&self, name: &str, profile: &str, local_address: &str) -> Result<(), BigIpError> {
        BigIpClient::ensure_tunnel(self, name, profile, local_address).await
    }
    async fn ensure_self_ip(&self, name: &str, address: &str, tunnel: &str) -> Result<(), BigIpError> {
        BigIpClient::ensure_self_ip(self, name, address, tunnel).await
    }
    async fn tunnel_mac(&self, tunnel: &str) -> Result<String, BigIpError> {
        BigIpClient::tunnel_mac(self, tunnel).await
    }
    async fn fdb_records(&self, tunnel: &str) -> Result<Vec<(String, String)>, BigIpError> {
        BigIpClient::fdb_records(self, tunnel).await
    }
    async fn replace_fdb_records(&self, tunnel: &str, records: &[(String, String)]) -> Result<(), BigIpError> {
        BigIpClient::replace_fdb_records(self, tunnel, records).await
    }
    async fn arp_records(&self) -> Result<Vec<net::ArpRecord>, BigIpError> {
        BigIpClient::arp_records(self).await
    }
    async fn create_arp(&self, name: &str, ip_address: &str, mac_address: &str) -> Result<(), BigIpError> {
        BigIpClient::create_arp(self, name, ip_address, mac_address).await
    }
    async fn delete_arp(&self, name: &str) -> Result<(), BigIpError> {
        BigIpClient::delete_arp(self, name).await
    }
    async fn ensure_bgp(
        &self,
        name: &str,
        local_as: u32,
        neighbors: &[(String, u32)],
        route_map_in: Option<&str>,
    ) -> Result<(), BigIpError> {
        BigIpClient::ensure_bgp(self, name, local_as, neighbors, route_map_in).await
    }
    async fn ensure_prefix_list(&self, name: &str, entries: &[PrefixEntry]) -> Result<(), BigIpError> {
        BigIpClient::ensure_prefix_list(self, name, entries).await
    }
    async fn ensure_route_map(&self, name: &str, prefix_list: &str) -> Result<(), BigIpError> {
        BigIpClient::ensure_route_map(self, name, prefix_list).await
    }
    async fn remove_managed(&self, kind: NetKind, name: &str) -> Result<Removal, BigIpError> {
        BigIpClient::remove_managed(self, kind, name).await
    }
    async fn version(&self) -> Result<BigIpVersion, BigIpError> {
        BigIpClient::version(self).await
    }
}
