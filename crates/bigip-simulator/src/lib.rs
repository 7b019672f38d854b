//! A BIG-IP simulator speaking the AS3 and iControl REST wire APIs, for trying the operator
//! without a BIG-IP and as the test double of every test.
//!
//! It listens on HTTP or HTTPS, authenticates like the BIG-IP REST framework (tokens or Basic),
//! validates every declaration against the embedded AS3 schema, applies AS3's per-tenant
//! semantics (including the pointer and address-conflict checks BIG-IP makes), records every
//! change, shows the resulting LTM objects under `/mgmt/tm/ltm`, and injects faults on demand.
//!
//! Module map: `declaration` (pure declare semantics) uses `checks`, `pointer` and `model`
//! (LTM objects derived from tenants); `net_config` holds the `/mgmt/tm/net` objects and their
//! rules; `as3`, `auth`, `views`, `net` and `control` are the HTTP handlers; `state` holds what is shared; `server`, `tls` and `faults` deal with connections.

mod as3;
mod auth;
mod catalog;
mod checks;
mod cli;
mod config;
mod control;
mod declaration;
mod device_api;
mod digest;
mod faults;
mod live;
mod model;
mod net;
mod net_config;
mod pointer;
mod reply;
mod schema_defaults;
mod server;
mod state;
mod sys;
mod tasks;
mod tenant;
mod timefmt;
mod tls;
mod views;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum_server::Handle;
use tokio::task::JoinHandle;

pub use catalog::{missing_device_objects, DeviceCatalog};
pub use cli::{run_cli, SimulatorArgs};
pub use config::{SimulatorConfig, TlsMode, DEFAULT_TOKEN_TTL};
pub use faults::{Faults, ANONYMOUS_REJECTION};
pub use model::{PoolMemberView, VirtualServerView};
pub use net::tunnel_mac;
pub use net_config::{
    ArpEntry, BgpInstance, BgpNeighbor, FdbRecord, NeighborAddressFamily, PrefixList, PrefixListEntry, RouteMap,
    RouteMapEntry, RouteMapReferences, SelfIp, Tunnel, VxlanProfile,
};
pub use state::{ChangeAction, ChangeRecord, RequestCounts, SimulatorState, StateFileError};
pub use tls::TlsError;

/// How long [`RunningSimulator::shutdown`] lets open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot load the state file {path}: {source}")]
    StateFile { path: PathBuf, source: StateFileError },
}

/// A simulator serving in the background; dropping it stops the server.
pub struct RunningSimulator {
    local_addr: SocketAddr,
    scheme: &'static str,
    ca_certificate_pem: Option<String>,
    state: SimulatorState,
    handle: Handle<SocketAddr>,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSimulator").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

/// Starts a simulator; it serves until [`RunningSimulator::shutdown`] or drop.
pub async fn start(config: SimulatorConfig) -> Result<RunningSimulator, SimulatorError> {
    let deployed = match &config.state_file {
        Some(path) => state::load_state_file(path)
            .map_err(|source| SimulatorError::StateFile { path: path.clone(), source })?
            .unwrap_or_default(),
        None => state::Deployed::default(),
    };
    let net = match config.state_file.as_deref().map(state::net_state_file) {
        Some(path) => state::load_net_state_file(&path)
            .map_err(|source| SimulatorError::StateFile { path: path.clone(), source })?
            .unwrap_or_default(),
        None => net_config::NetConfig::default(),
    };
    let tls = match &config.tls {
        TlsMode::Plain => None,
        TlsMode::SelfSigned => Some(tls::generate_self_signed()?),
        TlsMode::Files { cert, key } => Some(tls::from_files(cert, key).await?),
    };
    let listen_error = |source| SimulatorError::Listen { addr: config.listen, source };
    let listener = std::net::TcpListener::bind(config.listen).map_err(listen_error)?;
    let local_addr = listener.local_addr().map_err(listen_error)?;

    let settings = state::Settings {
        username: config.username,
        password: config.password,
        token_ttl: config.token_ttl,
        as3_processing_delay: config.as3_processing_delay,
        as3_delay_per_request_application: config.as3_delay_per_request_application,
        as3_delay_per_tenant_application: config.as3_delay_per_tenant_application,
        as3_version: config.as3_version,
        per_application_api: config.per_application_api,
        state_file: config.state_file,
    };
    let state = SimulatorState::new(settings, config.faults, deployed, net);
    warm_up_schema();

    let handle = Handle::new();
    let (server_config, ca_certificate_pem) = match tls {
        Some(setup) => (Some(setup.server_config), setup.ca_certificate_pem),
        None => (None, None),
    };
    let scheme = if server_config.is_some() { "https" } else { "http" };
    let server = server::spawn(
        listener,
        server_config,
        server::router(state.clone()),
        state.shared().faults.acceptor(),
        handle.clone(),
    )
    .map_err(listen_error)?;
    tracing::info!(url = %format!("{scheme}://{local_addr}"), "BIG-IP simulator started");
    Ok(RunningSimulator { local_addr, scheme, ca_certificate_pem, state, handle, server: Some(server) })
}

/// Compiles the AS3 schema in the background, so the first declaration is not slowed by it.
/// Both request shapes are validated once, in case they use separately compiled validators.
fn warm_up_schema() {
    tokio::task::spawn_blocking(|| {
        let adc = serde_json::json!({"class": "ADC", "schemaVersion": as3_rules::schema::AS3_SCHEMA_VERSION});
        let as3 = serde_json::json!({"class": "AS3", "declaration": adc.clone()});
        for body in [adc, as3] {
            if let Err(error) = as3_rules::schema::validate_declaration(&body) {
                tracing::error!(%error, "AS3 schema unavailable");
                return;
            }
        }
    });
}

impl RunningSimulator {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// With [`TlsMode::SelfSigned`], the PEM certificate of the CA that issued the server
    /// certificate, for clients to trust.
    pub fn ca_certificate_pem(&self) -> Option<String> {
        self.ca_certificate_pem.clone()
    }

    /// Replaces the faults in force. This is the only way to switch `refuse_connections`,
    /// which also cuts off the HTTP control API.
    pub fn set_faults(&self, faults: Faults) {
        self.state.apply_faults(faults);
    }

    pub fn state(&self) -> SimulatorState {
        self.state.clone()
    }

    /// Stops accepting connections and waits (briefly) for open requests to finish.
    pub async fn shutdown(mut self) {
        self.handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        if let Some(server) = self.server.take() {
            match server.await {
                Ok(Ok(())) => tracing::info!("BIG-IP simulator stopped"),
                Ok(Err(error)) => tracing::error!(%error, "BIG-IP simulator stopped with an error"),
                Err(error) => tracing::error!(%error, "BIG-IP simulator task failed"),
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}
