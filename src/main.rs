//! `bigip-operator`: run | crdgen | render | simulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use tracing::info;

use bigip_operator::as3::Ownership;
use bigip_operator::bigip::{BigIpClient, BigIpConfig, Credentials, TlsVerification};
use bigip_operator::controller::{self, ControllerSettings};
use bigip_operator::crd::PoolMemberType;
use bigip_operator::metrics::Metrics;
use bigip_operator::model::labels::Selector;
use bigip_operator::model::ModelDefaults;

/// jemalloc: at 10,000 objects glibc's allocator held ~80 MiB more than the live heap
/// (fragmentation after the cold start and the status wave); see docs/measurements.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "bigip-operator", version, about = "Programs F5 BIG-IP load balancers from Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the operator: watch VirtualServers and program the BIG-IP.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions generated from the Rust types.
    Crdgen(CrdgenArgs),
    /// Offline: print the AS3 declaration the operator would post for these manifests.
    Render(RenderArgs),
    /// Offline: print the VirtualServers/TransportServers that legacy k8s-bigip-ctlr Ingresses
    /// and ConfigMaps in these manifests become (the migration tool).
    Convert(ConvertArgs),
    /// Run the BIG-IP simulator (AS3 + iControl REST) on a local port.
    #[cfg(feature = "simulator")]
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
    /// nodeport mode: only nodes with these labels are pool members, e.g.
    /// `node-role.kubernetes.io/ingress` or `zone in (a,b),!spot` (=, ==, !=, in, notin, key, !key).
    #[arg(long)]
    node_label_selector: Option<Selector>,
    /// The default route domain of the partitions the operator declares (AS3 Tenant
    /// `defaultRouteDomain`): addresses without `%<id>` are in it. It must exist on the BIG-IP.
    #[arg(long, env = "BIGIP_DEFAULT_ROUTE_DOMAIN", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=65534))]
    default_route_domain: u16,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Handle only VirtualServers and TransportServers with these labels (a label selector such as
    /// `bigip.operator.dev/bigip=dc1`), so several operators with their own BIG-IPs share a
    /// cluster.
    #[arg(long)]
    selector: Option<String>,
    /// Seconds between consistency checks: each partition is re-synced once from the watch
    /// caches (posting only when the BIG-IP does not hold what the objects ask for).
    #[arg(long, default_value_t = 300)]
    resync_seconds: u64,
    /// Seconds between read-backs of the managed tenants, repairing out-of-band changes.
    #[arg(long, default_value_t = 60)]
    drift_check_seconds: u64,
    /// Address of the /metrics, /healthz and /readyz endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// /healthz fails once a watch or the leader election has been failing for this many
    /// seconds (a BIG-IP that is down never fails it).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    health_stall_seconds: u64,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Elect a leader on a Lease: only the leader writes to the BIG-IP and to status. Turn it
    /// off (`--leader-elect=false`) only when exactly one replica runs.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the Lease (default: the pod's namespace, else the kubeconfig's).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of the Lease; operators that share it share one leader.
    #[arg(long, default_value = "bigip-operator")]
    leader_election_name: String,
    /// Identifies this cluster in the labels of the tenants it creates (default: the UID of
    /// the kube-system namespace). Operators of clusters sharing a BIG-IP never touch each
    /// other's tenants.
    #[arg(long, env = "BIGIP_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Take over this partition's existing tenant although this operator did not create it
    /// (repeatable). Without it such partitions are reported PartitionNotOwned and left alone.
    #[arg(long = "adopt-partition")]
    adopt_partitions: Vec<String>,
    /// A post that would delete more than this share (0.0–1.0) of a tenant's applications is
    /// held back until a fresh list from the apiserver confirms the objects are gone.
    #[arg(long, default_value_t = 0.5)]
    max_deletion_share: f64,
    /// Translate k8s-bigip-ctlr `f5type: virtual-server` ConfigMaps and `f5` Ingresses into
    /// VirtualServers/TransportServers they own, and report back on them
    /// (docs/legacy-migration.md). `--legacy-shim=false` ignores them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    legacy_shim: bool,
    /// Program Services of `type: LoadBalancer` whose `spec.loadBalancerClass` is
    /// `--load-balancer-class` (docs/loadbalancer.md). `--load-balancer=false` leaves every
    /// Service alone (and does not watch them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    load_balancer: bool,
    /// The `loadBalancerClass` of the Services this operator programs.
    #[arg(long, default_value = "bigip.operator.dev/bigip")]
    load_balancer_class: String,
    /// Also program LoadBalancer Services without a class, as a cluster's default load
    /// balancer does (only one load balancer in a cluster should do this).
    #[arg(long)]
    load_balancer_class_less: bool,
    /// This replica's identity in the Lease and in the BIG-IP's logs (default: the pod name,
    /// else the host name and a random suffix).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// Manifest files or directories (multi-document YAML or JSON); other kinds are skipped.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Keep the ownerReferences to the legacy objects (as the operator's shim creates them).
    /// Off by default: converted objects are meant to replace the legacy ones.
    #[arg(long)]
    keep_owner: bool,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Manifest files or directories (multi-document YAML or JSON).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "nodeport")]
    pool_member_type: PoolMemberType,
    /// nodeport mode: only nodes with these labels are pool members (as `run --node-label-selector`).
    #[arg(long)]
    node_label_selector: Option<Selector>,
    /// The partitions' default route domain (as `run --default-route-domain`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=65534))]
    default_route_domain: u16,
    /// Partition for VirtualServers that name none.
    #[arg(long, default_value = "kubernetes")]
    partition: String,
    /// LoadBalancer Services of this class become TransportServers (as `run`).
    #[arg(long, default_value = "bigip.operator.dev/bigip")]
    load_balancer_class: String,
    /// Also LoadBalancer Services without a class (as `run --load-balancer-class-less`).
    #[arg(long)]
    load_balancer_class_less: bool,
    /// Cluster id written into the tenants' labels (as `run --cluster-id`).
    #[arg(long, default_value = "local")]
    cluster_id: String,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    // Colours only on a terminal: a log file or a log collector gets plain `key=value` text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
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
        Command::Convert(args) => convert(args),
        #[cfg(feature = "simulator")]
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
    let mut manifests = bigip_operator::manifests::read_manifests(&args.files)?;
    manifests.program_load_balancers(&bigip_operator::model::load_balancer::LoadBalancerClass {
        class: args.load_balancer_class.clone(),
        class_less: args.load_balancer_class_less,
    });
    for note in &manifests.load_balancer_notes {
        eprintln!("note: {note}");
    }
    let defaults = ModelDefaults {
        partition: args.partition,
        pool_member_type: args.pool_member_type,
        node_selector: args.node_label_selector,
        default_route_domain: args.default_route_domain,
    };
    let owner = Ownership::new(args.cluster_id)?.with_default_route_domain(args.default_route_domain);
    let rendered = bigip_operator::manifests::render_manifests(&manifests, &defaults, &owner)?;
    for warning in &rendered.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}", serde_json::to_string_pretty(&rendered.declaration)?);
    Ok(())
}

fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    let manifests = bigip_operator::manifests::read_manifests(&args.files)?;
    if manifests.legacy.is_empty() {
        bail!("no legacy Ingress or f5type: virtual-server ConfigMap found in {:?}", args.files);
    }
    for legacy in &manifests.legacy {
        println!("# from {}", legacy.source);
        for warning in &legacy.warnings {
            println!("# warning: {warning}");
        }
        for object in &legacy.objects {
            let mut value = match object {
                bigip_operator::legacy::Translated::VirtualServer(vs) => serde_json::to_value(vs)?,
                bigip_operator::legacy::Translated::TransportServer(ts) => serde_json::to_value(ts)?,
            };
            if let Some(metadata) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                if !args.keep_owner {
                    metadata.remove("ownerReferences");
                    metadata.remove("labels");
                }
            }
            print!("---\n{}", serde_yaml::to_string(&value)?);
        }
    }
    Ok(())
}

fn credentials(args: &RunArgs) -> anyhow::Result<Credentials> {
    if let Some(path) = &args.bigip_credentials {
        return Credentials::from_path(path)
            .with_context(|| format!("reading BIG-IP credentials from {}", path.display()));
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
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let mut bigip_config = BigIpConfig::new(&args.bigip_url, credentials(&args)?);
    bigip_config.tls = tls;
    bigip_config.user_agent = format!("bigip-operator/{} ({identity})", env!("CARGO_PKG_VERSION"));
    let metrics = Arc::new(Metrics::with_stall_bound(Duration::from_secs(args.health_stall_seconds))?);
    let bigip = Arc::new(BigIpClient::new(bigip_config)?.observed_by(metrics.clone()));
    let client = kube_client(args.kubeconfig.as_ref()).await?;
    let lease = args.leader_elect.then(|| {
        let namespace =
            args.leader_election_namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
        controller::LeaseSettings::new(namespace, args.leader_election_name.clone(), identity.clone())
    });
    let health =
        bigip_operator::controller::health::serve(args.metrics_addr, metrics.clone(), metrics.health.clone()).await?;
    info!(addr = %health, "serving /metrics, /healthz and /readyz");

    if !(0.0..=1.0).contains(&args.max_deletion_share) {
        bail!("--max-deletion-share must be between 0 and 1, not {}", args.max_deletion_share);
    }
    let cluster_id = match &args.cluster_id {
        Some(id) => id.clone(),
        None => kube_system_uid(&client).await?,
    };
    let owner = Ownership::new(cluster_id)?.with_default_route_domain(args.default_route_domain);
    info!(cluster_id = owner.cluster_id(), "tenants are labelled {}", owner.label());
    let settings = ControllerSettings {
        owner,
        adopt_partitions: args.adopt_partitions.clone(),
        max_deletion_share: args.max_deletion_share,
        legacy_shim: args.legacy_shim,
        load_balancer: args.load_balancer.then(|| bigip_operator::model::load_balancer::LoadBalancerClass {
            class: args.load_balancer_class.clone(),
            class_less: args.load_balancer_class_less,
        }),
        defaults: ModelDefaults {
            partition: args.partition,
            pool_member_type: args.pool_member_type,
            node_selector: args.node_label_selector,
            default_route_domain: args.default_route_domain,
        },
        namespace: args.namespace,
        selector: args.selector,
        resync_period: Duration::from_secs(args.resync_seconds.max(10)),
        drift_check_period: Duration::from_secs(args.drift_check_seconds.max(1)),
        // Short: it delays every reconcile. Bursts are merged by the partition lock instead (a
        // sync reads the desired state when it gets the partition, so the changes that arrived
        // meanwhile go out in one post).
        debounce: Duration::from_millis(20),
        concurrency: 8,
    };
    controller::run_elected(client, bigip, args.bigip_url, settings, metrics, lease).await?;
    Ok(())
}

/// The cluster's identity: the UID of the kube-system namespace, which lives as long as the
/// cluster.
async fn kube_system_uid(client: &kube::Client) -> anyhow::Result<String> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let kube_system = namespaces
        .get("kube-system")
        .await
        .context("reading the kube-system namespace's UID as the cluster id (or set --cluster-id)")?;
    kube_system.metadata.uid.context("the kube-system namespace has no UID; set --cluster-id")
}

/// `<host name>-<random>`: unique per process even when two run on one host.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "bigip-operator".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}
