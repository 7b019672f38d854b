//! `bigip-operator simulator ...`: run the simulator from the command line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{start, Faults, SimulatorConfig, TlsMode};

/// Options of the `simulator` subcommand.
#[derive(clap::Args, Clone)]
pub struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost generated at start.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls: bool,
    /// Serve HTTPS with this PEM certificate chain (requires --tls-key).
    #[arg(long, requires = "tls_key", value_name = "PEM_FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM_FILE")]
    pub tls_key: Option<PathBuf>,
    /// With --tls, write the generated CA certificate (PEM) here for clients to trust.
    #[arg(long, requires = "tls", value_name = "PATH")]
    pub write_ca: Option<PathBuf>,
    /// User name clients must log in with.
    #[arg(long, env = "BIGIP_SIM_USERNAME", default_value = "admin")]
    pub username: String,
    /// Password clients must log in with.
    #[arg(
        long,
        env = "BIGIP_SIM_PASSWORD",
        default_value = "admin",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub password: String,
    /// Lifetime of login tokens.
    #[arg(long, default_value_t = 1200, value_name = "SECONDS")]
    pub token_ttl_seconds: u64,
    /// Simulated AS3 processing time per declaration.
    #[arg(long, default_value_t = 0, value_name = "MILLISECONDS")]
    pub as3_delay_ms: u64,
    /// Simulated AS3 processing time added per Application in the request.
    #[arg(long, default_value_t = 0, value_name = "MILLISECONDS")]
    pub as3_delay_per_request_app_ms: u64,
    /// Simulated AS3 processing time added per Application in the tenants a request touches
    /// (AS3 re-reads the whole tenant, also for per-application requests).
    #[arg(long, default_value_t = 0, value_name = "MILLISECONDS")]
    pub as3_delay_per_tenant_app_ms: u64,
    /// The AS3 version to report (the per-application API needs 3.50 or later).
    #[arg(long, default_value = as3_rules::schema::AS3_SCHEMA_VERSION)]
    pub as3_version: String,
    /// `perAppDeploymentAllowed` in AS3's settings.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub per_app_deployment_allowed: bool,
    /// Keep the configuration in this file: loaded at start if present, rewritten after every
    /// change, so a restarted simulator keeps its tenants like a BIG-IP does.
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Fault: delay every /mgmt answer.
    #[arg(long, default_value_t = 0, value_name = "MILLISECONDS")]
    pub latency_ms: u64,
    /// Fault: answer the next N declare requests with 503.
    #[arg(long = "fail-503", default_value_t = 0, value_name = "N")]
    pub fail_503: u32,
    /// Fault: answer the next N declare requests with 500.
    #[arg(long = "fail-500", default_value_t = 0, value_name = "N")]
    pub fail_500: u32,
}

// Hand-written so the password never reaches a log line.
impl fmt::Debug for SimulatorArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorArgs")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("write_ca", &self.write_ca)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("as3_delay_ms", &self.as3_delay_ms)
            .field("as3_delay_per_request_app_ms", &self.as3_delay_per_request_app_ms)
            .field("as3_delay_per_tenant_app_ms", &self.as3_delay_per_tenant_app_ms)
            .field("as3_version", &self.as3_version)
            .field("per_app_deployment_allowed", &self.per_app_deployment_allowed)
            .field("state_file", &self.state_file)
            .field("latency_ms", &self.latency_ms)
            .field("fail_503", &self.fail_503)
            .field("fail_500", &self.fail_500)
            .finish()
    }
}

impl SimulatorArgs {
    pub fn to_config(&self) -> SimulatorConfig {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsMode::Files { cert: cert.clone(), key: key.clone() },
            _ if self.tls => TlsMode::SelfSigned,
            _ => TlsMode::Plain,
        };
        SimulatorConfig {
            listen: self.listen,
            tls,
            username: self.username.clone(),
            password: self.password.clone(),
            token_ttl: Duration::from_secs(self.token_ttl_seconds),
            as3_processing_delay: Duration::from_millis(self.as3_delay_ms),
            as3_delay_per_request_application: Duration::from_millis(self.as3_delay_per_request_app_ms),
            as3_delay_per_tenant_application: Duration::from_millis(self.as3_delay_per_tenant_app_ms),
            as3_version: self.as3_version.clone(),
            per_application_api: self.per_app_deployment_allowed,
            faults: Faults {
                latency_ms: self.latency_ms,
                fail_with_503: self.fail_503,
                fail_with_500: self.fail_500,
                ..Faults::default()
            },
            state_file: self.state_file.clone(),
        }
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run_cli(args: SimulatorArgs) -> anyhow::Result<()> {
    let simulator = start(args.to_config()).await.context("cannot start the BIG-IP simulator")?;
    if let (Some(path), Some(pem)) = (&args.write_ca, simulator.ca_certificate_pem()) {
        // Written to a temporary name and renamed: scripts wait for the file to appear.
        let temporary = path.with_extension("tmp");
        let written = async {
            tokio::fs::write(&temporary, pem).await?;
            tokio::fs::rename(&temporary, path).await
        };
        written.await.with_context(|| format!("cannot write the CA certificate to {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the simulator CA certificate");
    }
    tracing::info!(
        url = %simulator.base_url(),
        username = %args.username,
        state_file = ?args.state_file,
        "BIG-IP simulator serving; stop with Ctrl-C"
    );
    wait_for_shutdown_signal().await;
    tracing::info!("shutting down the BIG-IP simulator");
    simulator.shutdown().await;
    Ok(())
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C"),
        }
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C; stopping");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        simulator: SimulatorArgs,
    }

    #[test]
    fn defaults_and_tls_choices() {
        let plain = Cli::try_parse_from(["sim"]).expect("defaults parse").simulator.to_config();
        assert_eq!(plain.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(plain.tls, TlsMode::Plain);

        let generated = Cli::try_parse_from(["sim", "--tls", "--write-ca", "/tmp/ca.pem"]).expect("parses");
        assert_eq!(generated.simulator.to_config().tls, TlsMode::SelfSigned);

        let files = Cli::try_parse_from(["sim", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).expect("parses");
        assert!(matches!(files.simulator.to_config().tls, TlsMode::Files { .. }));

        assert!(Cli::try_parse_from(["sim", "--tls-cert", "c.pem"]).is_err(), "--tls-cert needs --tls-key");
        assert!(Cli::try_parse_from(["sim", "--write-ca", "ca.pem"]).is_err(), "--write-ca needs --tls");
    }

    #[test]
    fn faults_and_delays() {
        let args = Cli::try_parse_from([
            "sim",
            "--fail-503",
            "2",
            "--latency-ms",
            "10",
            "--as3-delay-ms",
            "300",
            "--password",
            "s3cret",
        ])
        .expect("parses")
        .simulator;
        let config = args.to_config();
        assert_eq!(config.faults.fail_with_503, 2);
        assert_eq!(config.faults.latency_ms, 10);
        assert_eq!(config.as3_processing_delay, Duration::from_millis(300));
        assert!(!format!("{args:?}").contains("s3cret"), "password must not be printed");
    }
}
