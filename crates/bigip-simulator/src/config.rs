//! How a simulator instance is set up.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::faults::Faults;

/// Token lifetime a BIG-IP gives on login unless told otherwise (20 minutes).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(1200);

/// How the simulator listens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Plain,
    /// HTTPS with a certificate for `127.0.0.1` and `localhost` generated at start, issued by a
    /// generated CA that [`RunningSimulator::ca_certificate_pem`](super::RunningSimulator::ca_certificate_pem)
    /// returns so clients can trust it with verification on.
    SelfSigned,
    /// HTTPS with a PEM certificate chain and private key read from files.
    Files { cert: PathBuf, key: PathBuf },
}

/// Everything [`start`](super::start) needs.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    pub tls: TlsMode,
    pub username: String,
    pub password: String,
    /// Lifetime of tokens issued by `/mgmt/shared/authn/login`.
    pub token_ttl: Duration,
    /// Simulated AS3 run time per declaration (sync or async), during which other declare
    /// requests are answered 503.
    pub as3_processing_delay: Duration,
    /// Added to the run time for every Application in the request (AS3 builds and checks
    /// each one).
    pub as3_delay_per_request_application: Duration,
    /// Added to the run time for every Application in the tenants the request touches: AS3
    /// re-reads a tenant's whole live configuration, also for a per-application request.
    pub as3_delay_per_tenant_application: Duration,
    /// The AS3 version `/mgmt/shared/appsvcs/info` reports.
    pub as3_version: String,
    /// `perAppDeploymentAllowed` in `/mgmt/shared/appsvcs/settings`: whether the
    /// per-application API (`/declare/{tenant}/applications`) may be used (AS3 ≥ 3.50 only).
    pub per_application_api: bool,
    /// Faults in force from the start.
    pub faults: Faults,
    /// Loaded at start when present and rewritten after every change, so a restarted simulator
    /// keeps its configuration like a BIG-IP does.
    pub state_file: Option<PathBuf>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: TlsMode::Plain,
            username: "admin".to_owned(),
            password: "admin".to_owned(),
            token_ttl: DEFAULT_TOKEN_TTL,
            as3_processing_delay: Duration::ZERO,
            as3_delay_per_request_application: Duration::ZERO,
            as3_delay_per_tenant_application: Duration::ZERO,
            as3_version: as3_rules::schema::AS3_SCHEMA_VERSION.to_owned(),
            per_application_api: true,
            faults: Faults::default(),
            state_file: None,
        }
    }
}

// Hand-written so the password never reaches a log line.
impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("as3_processing_delay", &self.as3_processing_delay)
            .field("as3_delay_per_request_application", &self.as3_delay_per_request_application)
            .field("as3_delay_per_tenant_application", &self.as3_delay_per_tenant_application)
            .field("as3_version", &self.as3_version)
            .field("per_application_api", &self.per_application_api)
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let config = SimulatorConfig { password: "s3cret".to_owned(), ..SimulatorConfig::default() };
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"));
        assert!(printed.contains("<redacted>"));
    }
}
