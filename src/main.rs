//! `bigip-operator`: run | crdgen | render | simulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use tracing::info;

use bigip_operator::bigip::{BigIpClient, BigIpConfig, Credentials, TlsVerification};
use bigip_operator::controller::{self, ControllerSettings};
use bigip_operator::crd::PoolMemberType;
use bigip_operator::metrics::Metrics;
use bigip_operator::model::ModelDefaults;

#[derive(Parser)]
#[command(name = "bigip-operator", version, about = "Programs F5 BIG-IP load balancers from Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: watch VirtualServers and program the BIG-IP.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions generated from the Rust types.
    Crdgen(CrdgenArgs),
    /// Offline: print the AS3 declaration the operator would post for these manifests.
    Render(RenderArgs),
    /// Run the BIG-IP simulator (AS3 + iControl REST) on a local port.
    Simulator(bigip_operator::simulator::SimulatorArgs),
}

#[derive(clap::Args)]
struct CrdgenArgs {
    /// Write one file per CRD into this directory (replacing stale CRD files) instead of
    /// printing them.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account.
    #[arg(long, env = "KUBECONFIG_PATH")]
    kubeconfig: Option<PathBuf>,
    /// BIG-IP base URL, e.g. https://10.0.0.5 or https://127.0.0.1:8443.
    #[arg(long, env = "BIGIP_URL")]
    bigip_url: String,
    /// File with `username:password`, or a directory with `username` and `password` files
    /// (a mounted Secret). Otherwise $BIGIP_USERNAME and $BIGIP_PASSWORD are used.
    #[arg(long, env = "BIGIP_CREDENTIALS")]
    bigip_credentials: Option<PathBuf>,
    /// PEM bundle of the CAs that signed the BIG-IP's certificate (default: system roots).
    #[arg(long, env = "BIGIP_CA_BUNDLE")]
    bigip_ca_bundle: Option<PathBuf>,
    /// Do not verify the BIG-IP's TLS certificate. Labs only.
    #[arg(long)]
    bigip_insecure_skip_verify: bool,
    /// Partition for VirtualServers that name none.
    #[arg(long, env = "BIGIP_PARTITION", default_value = "kubernetes")]
    partition: String,
    /// Where pool members come from, unless a VirtualServer says otherwise.
    #[arg(long, value_enum, default_value = "nodeport")]
    pool_member_type: PoolMemberType,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Seconds between full re-checks of every object.
    #[arg(long, default_value_t = 300)]
    resync_seconds: u64,
    /// Seconds between read-backs of the managed tenants, repairing out-of-band changes.
    #[arg(long, default_value_t = 60)]
    drift_check_seconds: u64,
    /// Address of the /metrics, /healthz and /readyz endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Manifest files or directories (multi-document YAML or JSON).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "nodeport")]
    pool_member_type: PoolMemberType,
    /// Partition for VirtualServers that name none.
    #[arg(long, default_value = "kubernetes")]
    partition: String,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    bigip_operator::install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Crdgen(args) => crdgen(args),
        Command::Render(args) => render(args),
        Command::Simulator(args) => {
            init_logging(LogFormat::Text);
            bigip_operator::simulator::run_cli(args).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn crdgen(args: CrdgenArgs) -> anyhow::Result<()> {
    let Some(dir) = args.out_dir else {
        print!("{}", bigip_operator::crd::crds_yaml()?);
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = bigip_operator::crd::crd_files()?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".yaml") && !files.iter().any(|(f, _)| *f == name) {
            std::fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    for (name, yaml) in files {
        std::fs::write(dir.join(&name), yaml).with_context(|| format!("writing {}", dir.join(&name).display()))?;
    }
    Ok(())
}

fn render(args: RenderArgs) -> anyhow::Result<()> {
    let manifests = bigip_operator::manifests::read_manifests(&args.files)?;
    let defaults = ModelDefaults { partition: args.partition, pool_member_type: args.pool_member_type };
    let rendered = bigip_operator::manifests::render_manifests(&manifests, &defaults)?;
    for warning in &rendered.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}", serde_json::to_string_pretty(&rendered.declaration)?);
    Ok(())
}

fn credentials(args: &RunArgs) -> anyhow::Result<Credentials> {
    if let Some(path) = &args.bigip_credentials {
        return Credentials::from_path(path).with_context(|| format!("reading BIG-IP credentials from {}", path.display()));
    }
    match (std::env::var("BIGIP_USERNAME"), std::env::var("BIGIP_PASSWORD")) {
        (Ok(user), Ok(password)) => Ok(Credentials::new(user, password)),
        _ => bail!("no BIG-IP credentials: set --bigip-credentials (file or mounted Secret) or BIGIP_USERNAME and BIGIP_PASSWORD"),
    }
}

async fn kube_client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await.context("no kubeconfig and not in a cluster")?,
    };
    Ok(kube::Client::try_from(config)?)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let tls = match (&args.bigip_ca_bundle, args.bigip_insecure_skip_verify) {
        (Some(_), true) => bail!("--bigip-ca-bundle and --bigip-insecure-skip-verify exclude each other"),
        (Some(path), false) => TlsVerification::CaBundle(path.clone()),
        (None, true) => TlsVerification::Insecure,
        (None, false) => TlsVerification::System,
    };
    let mut bigip_config = BigIpConfig::new(&args.bigip_url, credentials(&args)?);
    bigip_config.tls = tls;
    let bigip = Arc::new(BigIpClient::new(bigip_config)?);
    let client = kube_client(args.kubeconfig.as_ref()).await?;
    let metrics = Arc::new(Metrics::new()?);

    let health = bigip_operator::controller::health::serve(args.metrics_addr, metrics.clone()).await?;
    info!(addr = %health, "serving /metrics, /healthz and /readyz");

    let settings = ControllerSettings {
        defaults: ModelDefaults { partition: args.partition, pool_member_type: args.pool_member_type },
        namespace: args.namespace,
        resync_period: Duration::from_secs(args.resync_seconds.max(10)),
        drift_check_period: Duration::from_secs(args.drift_check_seconds.max(1)),
        debounce: Duration::from_millis(200),
        concurrency: 8,
    };
    controller::run(client, bigip, args.bigip_url, settings, metrics).await?;
    Ok(())
}
