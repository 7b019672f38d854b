//! BIG-IP REST client: token authentication and AS3 declarations, behind the [`As3Api`] trait
//! so the controller can be driven against anything that speaks AS3 (a BIG-IP, the simulator).

pub mod client;
pub mod config;
pub mod error;
pub mod response;

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

pub use client::BigIpClient;
pub use config::{BigIpConfig, Credentials, RetryPolicy, TlsVerification};
pub use error::BigIpError;
pub use response::{DeployReport, TenantResult};

/// What the controller needs from a BIG-IP.
pub trait As3Api: Send + Sync + 'static {
    /// Deploys the given tenants (name → AS3 Tenant object) in one declaration. Tenants not
    /// named are left untouched; a tenant with no applications is removed.
    fn deploy_tenants(
        &self,
        tenants: &BTreeMap<String, Value>,
    ) -> impl Future<Output = Result<DeployReport, BigIpError>> + Send;

    /// The tenants AS3 currently holds (name → Tenant object); empty when it holds none.
    fn current_tenants(&self) -> impl Future<Output = Result<BTreeMap<String, Value>, BigIpError>> + Send;
}
