//! `make bench`: the operator at scale, on the local control plane and the BIG-IP simulator.
//!
//! Each run starts a fresh control plane (e2e/controlplane) and an in-process simulator, creates
//! N VirtualServers — each with its own Service and an EndpointSlice of 10 endpoints (cluster
//! mode) — in one partition or spread over P partitions, then starts the operator binary and
//! measures:
//!
//! - cold start: until the simulator holds every application, and until every object says
//!   Programmed=True;
//! - isolated endpoint changes (one slice patched, wait until the BIG-IP has the new member):
//!   latency from the patch to the simulator's change record, posts, bytes, status writes and
//!   operator CPU per change;
//! - a burst of endpoint changes issued at once: until all are on the BIG-IP, and the posts;
//! - a Node added and removed: posts and CPU;
//! - an idle period: posts and CPU;
//! - operator peak RSS and total CPU.
//!
//! Prints a table, writes `<out>/<run>.json`, `<out>/<run>.timeline.csv` and `<out>/<run>.svg`
//! (convergence over time), and appends the run to `<out>/summary.json`.
//!
//! `cargo bench --bench scale -- --sizes 200 --partitions 1,100` (what `make bench` runs);
//! `--smoke` is the small check `make test` runs (debug build, results in a temporary dir).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context as _, Result};
use bigip_operator::crd::VirtualServer;
use bigip_operator::simulator::{self, RunningSimulator, SimulatorConfig};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::{json, Value};

const NAMESPACE: &str = "bench";
const DEFAULT_PARTITION: &str = "bench";
const ENDPOINTS_PER_SLICE: usize = 10;
const PASSWORD: &str = "bench-Pa55word";
/// Objects created at once while setting up.
const CREATE_CONCURRENCY: usize = 24;

#[derive(Parser, Debug, Clone)]
#[command(about = "bigip-operator scale benchmark")]
struct Args {
    /// Numbers of VirtualServers, one run each (combined with every --partitions value).
    #[arg(long, value_delimiter = ',', default_values_t = [200])]
    sizes: Vec<usize>,
    /// Numbers of partitions the VirtualServers are spread over.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100])]
    partitions: Vec<usize>,
    /// AS3 latency model of the simulator: zero, or realistic (1 s + 100 ms per application
    /// in the request + 5 ms per application in the tenant).
    #[arg(long, value_enum, default_value = "zero")]
    latency: LatencyModel,
    /// Isolated endpoint changes measured one after another.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Endpoint changes issued at once.
    #[arg(long, default_value_t = 50)]
    burst: usize,
    /// Issue the burst's changes in one partition instead of spreading them over the
    /// partitions (what a rollout of one team's Services looks like).
    #[arg(long)]
    burst_in_one_partition: bool,
    /// Seconds of idle measured after everything converged.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Give up waiting for a phase (cold start, statuses, a change) after this long.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
    /// Where results go (default: bench/results; with --smoke: a temporary directory).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// A small, quick run that checks the benchmark itself works (part of `make test`).
    #[arg(long)]
    smoke: bool,
    /// Draw the charts (SVG and PNG) again from the timelines already in the results
    /// directory, and run nothing.
    #[arg(long)]
    replot: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum LatencyModel {
    Zero,
    Realistic,
}

/// One run's results: what `summary.json` lists.
#[derive(Debug, Clone, Serialize)]
struct RunResult {
    run: String,
    commit: String,
    started_at: String,
    machine: String,
    n_virtualservers: usize,
    partitions: usize,
    latency_model: LatencyModel,
    /// Operator start → the simulator holds every application.
    cold_start_s: Option<f64>,
    /// Operator start → every object says Programmed=True.
    status_converged_s: Option<f64>,
    cold_start_posts: u64,
    cold_start_bytes: u64,
    changes_measured: usize,
    change_p50_ms: Option<f64>,
    change_p99_ms: Option<f64>,
    change_max_ms: Option<f64>,
    posts_per_change: f64,
    bytes_per_change: f64,
    status_writes_per_change: f64,
    cpu_per_change_ms: f64,
    burst_size: usize,
    /// How many partitions the burst's changes fall in.
    burst_partitions: usize,
    burst_converged_s: Option<f64>,
    burst_posts: u64,
    node_change_posts: u64,
    node_change_cpu_ms: f64,
    idle_seconds: u64,
    /// Declaration posts while idle (nothing changed).
    noop_posts: u64,
    idle_cpu_s: f64,
    peak_rss_mib: f64,
    operator_cpu_s: f64,
    operator_restarts_or_exits: u32,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.smoke {
        args.sizes = vec![20];
        args.partitions = vec![2];
        args.changes = 5;
        args.burst = 5;
        args.idle_seconds = 3;
        args.timeout_seconds = 120;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run_all(args))
}

async fn run_all(args: Args) -> Result<()> {
    let temporary = tempfile::Builder::new().prefix("bigip-bench-out-").tempdir()?;
    let out_dir = match (&args.out_dir, args.smoke) {
        (Some(dir), _) => dir.clone(),
        (None, true) => temporary.path().to_path_buf(),
        (None, false) => repo_root().join("bench/results"),
    };
    std::fs::create_dir_all(&out_dir)?;
    if args.replot {
        return replot(&out_dir);
    }
    let mut results = Vec::new();
    for &n in &args.sizes {
        for &partitions in &args.partitions {
            let partitions = partitions.clamp(1, n.max(1));
            eprintln!("bench: N={n} partitions={partitions} latency={:?}", args.latency);
            let result = run_one(&args, n, partitions, &out_dir).await?;
            print_table(std::slice::from_ref(&result));
            append_summary(&out_dir, &result)?;
            results.push(result);
        }
    }
    print_table(&results);
    if args.smoke {
        for result in &results {
            check_smoke(result)?;
        }
        eprintln!("bench smoke: every phase measured");
    } else {
        eprintln!("bench: results in {}", out_dir.display());
    }
    Ok(())
}

/// The smoke run must measure every phase: a benchmark that silently measures nothing is
/// worse than none.
fn check_smoke(result: &RunResult) -> Result<()> {
    ensure!(result.cold_start_s.is_some(), "cold start never completed: {result:?}");
    ensure!(result.status_converged_s.is_some(), "statuses never converged: {result:?}");
    ensure!(result.changes_measured == 5, "not every change landed: {result:?}");
    ensure!(result.change_p50_ms.is_some_and(|p| p > 0.0), "no change latency: {result:?}");
    ensure!(result.posts_per_change > 0.0, "changes posted nothing: {result:?}");
    ensure!(result.bytes_per_change > 0.0, "changes sent no bytes: {result:?}");
    // Properties of #16 that hold at any size (sizes, not times): a change of one endpoint
    // sends that one application (~550 bytes; the smoke's smallest tenant is ~5 KB), writes at
    // most one status, and nothing is posted while idle.
    ensure!(result.bytes_per_change < 2_000.0, "a change sent more than its application: {result:?}");
    ensure!(result.status_writes_per_change <= 1.0, "more than one status write per change: {result:?}");
    ensure!(result.noop_posts == 0, "posts while nothing changed: {result:?}");
    ensure!(result.burst_converged_s.is_some(), "the burst never converged: {result:?}");
    ensure!(result.peak_rss_mib > 1.0 && result.operator_cpu_s > 0.0, "no operator figures: {result:?}");
    ensure!(result.operator_restarts_or_exits == 0, "the operator exited: {result:?}");
    Ok(())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    std::env::var_os("BIGIP_E2E_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".cache/bigip-operator/bin")
    })
}

/// A child process, started as the leader of its own process group, whose group is killed when
/// it is dropped.
struct Process(Child);

impl Process {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Terminates the process's group: the operator and, under a wrapper such as heaptrack
    /// (a script that does not pass signals on), the operator below it.
    fn terminate(&mut self, grace: Duration) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.running() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.running() {
            self.terminate(Duration::from_secs(15));
        }
    }
}

/// CPU seconds (user + system) and peak RSS (MiB) of a process, from /proc.
fn process_usage(pid: u32) -> (f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces) start at field 3.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0);
    let peak_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .unwrap_or(0.0);
    (cpu, peak_kib / 1024.0)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({model}), {memory_gib:.0} GiB")
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The control plane, the simulator and a client, for one run.
struct Cluster {
    work_dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    client: Client,
    controlplane: Process,
}

async fn start_cluster() -> Result<Cluster> {
    let bin = bin_dir();
    ensure!(
        bin.join("controlplane").exists(),
        "{} missing: run `make controlplane`",
        bin.join("controlplane").display()
    );
    let work_dir = tempfile::Builder::new().prefix("bigip-bench-").tempdir()?;
    let data_dir = work_dir.path().join("controlplane");
    let log = std::fs::File::create(work_dir.path().join("controlplane.log"))?;
    let child = Command::new(bin.join("controlplane"))
        .args(["--data-dir", &data_dir.to_string_lossy(), "--nodes", "2"])
        .process_group(0)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the control plane")?;
    let mut controlplane = Process(child);
    let started = Instant::now();
    while !data_dir.join("ready").exists() {
        ensure!(controlplane.running(), "the control plane exited during start-up");
        ensure!(started.elapsed() < Duration::from_secs(180), "the control plane was not ready within 180 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kubeconfig = data_dir.join("kubeconfig");
    let config = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    // Setting up 30,000 objects: the client must not be the bottleneck.
    config.read_timeout = Some(Duration::from_secs(120));
    let client = Client::try_from(config)?;
    let kubectl = bin.join("kubectl");
    let crds = repo_root().join("crds");
    let status = Command::new(&kubectl)
        .args(["apply", "--server-side", "-f", &crds.to_string_lossy()])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "kubectl apply crds failed");
    let status = Command::new(&kubectl)
        .args(["wait", "--for=condition=Established", "--timeout=60s", "crd/virtualservers.bigip.operator.dev"])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "the VirtualServer CRD was not established");
    Ok(Cluster { work_dir, kubeconfig, client, controlplane })
}

async fn start_simulator(latency: LatencyModel) -> Result<RunningSimulator> {
    let mut config = SimulatorConfig { password: PASSWORD.into(), ..SimulatorConfig::default() };
    if latency == LatencyModel::Realistic {
        config.as3_processing_delay = Duration::from_secs(1);
        config.as3_delay_per_request_application = Duration::from_millis(100);
        config.as3_delay_per_tenant_application = Duration::from_millis(5);
    }
    Ok(simulator::start(config).await?)
}

/// Names and addresses of object `i`.
struct Object {
    name: String,
    partition: String,
}

fn object(i: usize, partitions: usize) -> Object {
    let partition =
        if partitions <= 1 { DEFAULT_PARTITION.to_string() } else { format!("bench-p{:03}", i % partitions) };
    Object { name: format!("web-{i:05}"), partition }
}

fn endpoint_ip(i: usize, j: usize) -> String {
    // 10.64.0.0/10: i up to 16k objects × 10 endpoints.
    let n = i * ENDPOINTS_PER_SLICE + j;
    format!("10.{}.{}.{}", 64 + n / 65_536, (n / 256) % 256, n % 256)
}

fn changed_ip(k: usize) -> String {
    format!("10.200.{}.{}", k / 250, k % 250 + 1)
}

fn slice_endpoints(addresses: &[String]) -> Value {
    Value::Array(
        addresses
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}}))
            .collect(),
    )
}

async fn create_objects(client: &Client, n: usize, partitions: usize) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?)
        .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let virtual_servers: Api<VirtualServer> = Api::namespaced(client.clone(), NAMESPACE);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (services, slices, virtual_servers) = (services.clone(), slices.clone(), virtual_servers.clone());
            async move {
                let o = object(i, partitions);
                let service: Service = serde_json::from_value(json!({
                    "metadata": {"name": o.name},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
                }))?;
                services.create(&PostParams::default(), &service).await?;
                let addresses: Vec<String> = (0..ENDPOINTS_PER_SLICE).map(|j| endpoint_ip(i, j)).collect();
                let slice: EndpointSlice = serde_json::from_value(json!({
                    "metadata": {"name": o.name, "labels": {
                        "kubernetes.io/service-name": o.name,
                        "endpointslice.kubernetes.io/managed-by": "bench.bigip-operator.dev"}},
                    "addressType": "IPv4",
                    "endpoints": slice_endpoints(&addresses),
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
                }))?;
                slices.create(&PostParams::default(), &slice).await?;
                let mut spec = json!({
                    "virtualAddress": format!("172.{}.{}.{}", 16 + i / 65_536, (i / 256) % 256, i % 256),
                    "port": 80,
                    "pools": [{"name": "web", "service": o.name, "servicePort": 80}]
                });
                if partitions > 1 {
                    spec["partition"] = json!(o.partition);
                }
                let vs: VirtualServer = serde_json::from_value(json!({
                    "apiVersion": "bigip.operator.dev/v1alpha1",
                    "kind": "VirtualServer",
                    "metadata": {"name": o.name},
                    "spec": spec
                }))?;
                virtual_servers.create(&PostParams::default(), &vs).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "bench: created {n} Services, EndpointSlices and VirtualServers in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn start_operator(cluster: &Cluster, sim: &RunningSimulator, metrics_port: u16) -> Result<(Process, PathBuf)> {
    let credentials = cluster.work_dir.path().join("bigip-credentials");
    std::fs::write(&credentials, format!("admin:{PASSWORD}"))?;
    let log_path = cluster.work_dir.path().join("operator.log");
    let log = std::fs::File::create(&log_path)?;
    // BIGIP_BENCH_OPERATOR_WRAPPER runs the operator under a profiler (e.g. `heaptrack`); the
    // figures measured of the process are then the wrapper's.
    let operator = env!("CARGO_BIN_EXE_bigip-operator");
    let mut command = match std::env::var("BIGIP_BENCH_OPERATOR_WRAPPER") {
        Ok(wrapper) if !wrapper.is_empty() => {
            let mut command = Command::new(wrapper);
            command.arg(operator);
            command
        }
        _ => Command::new(operator),
    };
    let child = command
        .args([
            "run",
            "--kubeconfig",
            &cluster.kubeconfig.to_string_lossy(),
            "--bigip-url",
            &sim.base_url(),
            "--bigip-credentials",
            &credentials.to_string_lossy(),
            "--partition",
            DEFAULT_PARTITION,
            "--pool-member-type",
            "cluster",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--leader-elect=false",
            "--identity",
            "bench",
        ])
        .env("RUST_LOG", "info,kube=warn")
        // Its own process group, so that terminating it reaches a wrapped operator too.
        .process_group(0)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the operator")?;
    Ok((Process(child), log_path))
}

/// A counter from the operator's /metrics (0 when absent).
async fn metric(http: &reqwest::Client, port: u16, name: &str) -> f64 {
    let Ok(response) = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await else { return 0.0 };
    let Ok(text) = response.text().await else { return 0.0 };
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Counters sampled before and after a phase.
#[derive(Clone, Copy, Debug)]
struct Counters {
    posts: u64,
    bytes: u64,
    status_writes: f64,
    cpu_s: f64,
}

async fn counters(sim: &RunningSimulator, http: &reqwest::Client, port: u16, pid: u32) -> Counters {
    let state = sim.state();
    Counters {
        posts: state.declare_count(),
        bytes: state.request_counts().declare_bytes,
        status_writes: metric(http, port, "bigip_operator_status_writes_total").await,
        cpu_s: process_usage(pid).0,
    }
}

/// The bench's own watch of the VirtualServers: statuses are counted from its cache, so the
/// measurement does not load the apiserver with a list of every object each second (at 10,000
/// objects that list was slowing down the very status wave it measured).
struct StatusWatch {
    store: kube::runtime::reflector::Store<VirtualServer>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusWatch {
    fn start(client: &Client) -> Self {
        use kube::runtime::{reflector, watcher, WatchStreamExt};
        let api: Api<VirtualServer> = Api::namespaced(client.clone(), NAMESPACE);
        let (store, writer) = reflector::store();
        let events = watcher(api, watcher::Config::default()).default_backoff().reflect(writer).applied_objects();
        let task = tokio::spawn(async move {
            futures::pin_mut!(events);
            while events.next().await.is_some() {}
        });
        Self { store, task }
    }

    /// Number of VirtualServers whose Programmed condition is True.
    fn programmed(&self) -> usize {
        self.store
            .state()
            .iter()
            .filter(|vs| {
                vs.status.as_ref().is_some_and(|status| {
                    status.conditions.iter().any(|c| c.type_ == "Programmed" && c.status == "True")
                })
            })
            .count()
    }
}

impl Drop for StatusWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the simulator accepted no declaration for `quiet` (bounded by `limit`).
async fn settle(sim: &RunningSimulator, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    let mut last = sim.state().declare_count();
    let mut since = Instant::now();
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sim.state().declare_count();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One timeline sample: seconds since the operator started, applications on the BIG-IP,
/// objects Programmed, operator CPU seconds and RSS.
#[derive(Debug, Clone, Copy)]
struct Sample {
    t: f64,
    applications: usize,
    programmed: Option<usize>,
    cpu_s: f64,
    rss_mib: f64,
}

fn current_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Patches the slice of object `i` so its first endpoint is `ip`.
async fn change_endpoint(slices: &Api<EndpointSlice>, i: usize, ip: &str, partitions: usize) -> Result<()> {
    let o = object(i, partitions);
    let mut addresses: Vec<String> = (0..ENDPOINTS_PER_SLICE).map(|j| endpoint_ip(i, j)).collect();
    addresses[0] = ip.to_string();
    slices
        .patch(&o.name, &PatchParams::default(), &Patch::Merge(json!({"endpoints": slice_endpoints(&addresses)})))
        .await?;
    Ok(())
}

/// Whether the BIG-IP's application of object `i` has a member at `ip`.
fn bigip_has_member(sim: &RunningSimulator, i: usize, partitions: usize, ip: &str) -> bool {
    let o = object(i, partitions);
    let application = format!("{NAMESPACE}_{}", o.name);
    sim.state()
        .application(&o.partition, &application)
        .is_some_and(|app| app.to_string().contains(&format!("\"{ip}\"")))
}

async fn run_one(args: &Args, n: usize, partitions: usize, out_dir: &Path) -> Result<RunResult> {
    let timeout = Duration::from_secs(args.timeout_seconds);
    let started_at = k8s_openapi::jiff::Timestamp::now().round(k8s_openapi::jiff::Unit::Second)?.to_string();
    let run = format!(
        "{}-n{n}-p{partitions}-{}",
        started_at.replace([':', '-'], "").trim_end_matches('Z'),
        match args.latency {
            LatencyModel::Zero => "zero",
            LatencyModel::Realistic => "realistic",
        }
    );
    // The commit the operator binary was built from (cargo bench builds before running); read
    // now, not when the run ends, so commits made during a long run do not show up here.
    let commit_at_start = commit();
    let cluster = start_cluster().await?;
    let sim = start_simulator(args.latency).await?;
    create_objects(&cluster.client, n, partitions).await?;

    let statuses = StatusWatch::start(&cluster.client);
    let metrics_port = free_port()?;
    let http = reqwest::Client::new();
    let (mut operator, log_path) = start_operator(&cluster, &sim, metrics_port)?;
    let pid = operator.pid();
    let t0 = Instant::now();
    let mut timeline: Vec<Sample> = Vec::new();

    // Cold start: sample every 100 ms; statuses every 500 ms (from the bench's own watch).
    let mut cold_start_s = None;
    let mut status_converged_s = None;
    let mut last_status_poll = Instant::now() - Duration::from_secs(10);
    while t0.elapsed() < timeout && (cold_start_s.is_none() || status_converged_s.is_none()) {
        ensure!(operator.running(), "the operator exited during cold start; log: {}", log_path.display());
        let applications = sim.state().application_count();
        if cold_start_s.is_none() && applications >= n {
            cold_start_s = Some(t0.elapsed().as_secs_f64());
            eprintln!("bench: the BIG-IP holds all {n} applications after {:.2}s", t0.elapsed().as_secs_f64());
        }
        let mut programmed = None;
        if last_status_poll.elapsed() >= Duration::from_millis(500) {
            last_status_poll = Instant::now();
            let count = statuses.programmed();
            programmed = Some(count);
            if count >= n && status_converged_s.is_none() {
                status_converged_s = Some(t0.elapsed().as_secs_f64());
                eprintln!("bench: all {n} Programmed after {:.2}s", t0.elapsed().as_secs_f64());
            }
        }
        let (cpu_s, _) = process_usage(pid);
        timeline.push(Sample {
            t: t0.elapsed().as_secs_f64(),
            applications,
            programmed,
            cpu_s,
            rss_mib: current_rss_mib(pid),
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after_cold = counters(&sim, &http, metrics_port, pid).await;
    settle(&sim, Duration::from_secs(2), timeout).await;

    // Isolated endpoint changes, one after another.
    let slices: Api<EndpointSlice> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let before = counters(&sim, &http, metrics_port, pid).await;
    let mut latencies = Vec::new();
    for k in 0..args.changes {
        let i = (k * 7919 + 13) % n;
        let ip = changed_ip(k);
        let seq_before = sim.state().change_count();
        let changed_at = unix_ms();
        change_endpoint(&slices, i, &ip, partitions).await?;
        let deadline = Instant::now() + timeout.min(Duration::from_secs(120));
        let mut landed = false;
        while Instant::now() < deadline {
            if bigip_has_member(&sim, i, partitions, &ip) {
                landed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if !landed {
            eprintln!("bench: change {k} (object {i}) did not reach the BIG-IP within the time-out");
            continue;
        }
        let tenant = object(i, partitions).partition;
        let record = sim.state().history_since(seq_before).into_iter().rfind(|r| r.tenant == tenant);
        if let Some(record) = record {
            latencies.push(record.at_unix_ms.saturating_sub(changed_at) as f64);
        }
    }
    // Status writes and posts that follow the last change.
    settle(&sim, Duration::from_secs(1), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = counters(&sim, &http, metrics_port, pid).await;
    let changes_measured = latencies.len();
    latencies.sort_by(f64::total_cmp);
    let per_change = |x: f64| if args.changes == 0 { 0.0 } else { x / args.changes as f64 };

    // A burst: changes issued at once.
    let burst_before = counters(&sim, &http, metrics_port, pid).await;
    let burst: Vec<(usize, String)> = if args.burst_in_one_partition {
        // Objects i ≡ 0 (mod partitions) share the first partition.
        (0..args.burst.min(n.div_ceil(partitions.max(1))))
            .map(|k| (k * partitions.max(1), changed_ip(args.changes + k)))
            .collect()
    } else {
        (0..args.burst.min(n)).map(|k| ((k * 104_729 + 7) % n, changed_ip(args.changes + k))).collect()
    };
    let burst_partitions =
        burst.iter().map(|(i, _)| object(*i, partitions).partition).collect::<std::collections::BTreeSet<_>>().len();
    let burst_started = Instant::now();
    futures::stream::iter(burst.iter())
        .map(|(i, ip)| change_endpoint(&slices, *i, ip, partitions))
        .buffer_unordered(args.burst.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    let mut burst_converged_s = None;
    while burst_started.elapsed() < timeout {
        if burst.iter().all(|(i, ip)| bigip_has_member(&sim, *i, partitions, ip)) {
            burst_converged_s = Some(burst_started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    settle(&sim, Duration::from_secs(1), Duration::from_secs(10)).await;
    let burst_after = counters(&sim, &http, metrics_port, pid).await;

    // A Node added, then removed.
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node_before = counters(&sim, &http, metrics_port, pid).await;
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "bench-extra-node"}}))?;
    nodes.create(&PostParams::default(), &node).await?;
    nodes
        .patch_status(
            "bench-extra-node",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "192.0.2.200"}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "bench"}]}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    nodes.delete("bench-extra-node", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let node_after = counters(&sim, &http, metrics_port, pid).await;

    // Idle.
    let idle_before = counters(&sim, &http, metrics_port, pid).await;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let idle_after = counters(&sim, &http, metrics_port, pid).await;

    let running = operator.running();
    let (operator_cpu_s, peak_rss_mib) = process_usage(pid);
    operator.terminate(Duration::from_secs(10));
    drop(cluster.controlplane);

    let result = RunResult {
        run: run.clone(),
        commit: commit_at_start.clone(),
        started_at,
        machine: machine(),
        n_virtualservers: n,
        partitions,
        latency_model: args.latency,
        cold_start_s,
        status_converged_s,
        cold_start_posts: after_cold.posts,
        cold_start_bytes: after_cold.bytes,
        changes_measured,
        change_p50_ms: percentile(&latencies, 50.0),
        change_p99_ms: percentile(&latencies, 99.0),
        change_max_ms: latencies.last().copied(),
        posts_per_change: per_change((after.posts - before.posts) as f64),
        bytes_per_change: per_change((after.bytes - before.bytes) as f64),
        status_writes_per_change: per_change(after.status_writes - before.status_writes),
        cpu_per_change_ms: per_change((after.cpu_s - before.cpu_s) * 1000.0),
        burst_size: burst.len(),
        burst_partitions,
        burst_converged_s,
        burst_posts: burst_after.posts - burst_before.posts,
        node_change_posts: node_after.posts - node_before.posts,
        node_change_cpu_ms: (node_after.cpu_s - node_before.cpu_s) * 1000.0,
        idle_seconds: args.idle_seconds,
        noop_posts: idle_after.posts - idle_before.posts,
        idle_cpu_s: idle_after.cpu_s - idle_before.cpu_s,
        peak_rss_mib,
        operator_cpu_s,
        operator_restarts_or_exits: u32::from(!running),
    };
    std::fs::write(out_dir.join(format!("{run}.json")), serde_json::to_string_pretty(&result)?)?;
    write_timeline(out_dir, &run, &timeline, n)?;
    Ok(result)
}

fn write_timeline(out_dir: &Path, run: &str, timeline: &[Sample], n: usize) -> Result<()> {
    let mut csv = String::from("t_s,applications_on_bigip,programmed,operator_cpu_s,operator_rss_mib\n");
    for s in timeline {
        let programmed = s.programmed.map(|p| p.to_string()).unwrap_or_default();
        csv.push_str(&format!("{:.2},{},{},{:.2},{:.1}\n", s.t, s.applications, programmed, s.cpu_s, s.rss_mib));
    }
    std::fs::write(out_dir.join(format!("{run}.timeline.csv")), csv)?;
    std::fs::write(out_dir.join(format!("{run}.svg")), convergence_svg(run, timeline, n))?;
    convergence_png(timeline, n, &out_dir.join(format!("{run}.png")))?;
    Ok(())
}

/// Chart geometry shared by the SVG and the PNG: size, margin, and the two lines (applications
/// on the BIG-IP, objects Programmed) as points, with the time axis's extent.
struct Chart {
    width: f32,
    height: f32,
    margin: f32,
    t_max: f64,
    applications: Vec<(f32, f32)>,
    programmed: Vec<(f32, f32)>,
}

const APPLICATIONS_RGB: (u8, u8, u8) = (0x1f, 0x77, 0xb4);
const PROGRAMMED_RGB: (u8, u8, u8) = (0x2c, 0xa0, 0x2c);

fn chart(timeline: &[Sample], n: usize) -> Chart {
    let (width, height, margin) = (720.0_f32, 360.0_f32, 50.0_f32);
    let t_max = timeline.last().map(|s| s.t).unwrap_or(1.0).max(0.1);
    let x = |t: f64| margin + (width - 2.0 * margin) * (t / t_max) as f32;
    let y = |count: usize| height - margin - (height - 2.0 * margin) * count as f32 / n.max(1) as f32;
    Chart {
        width,
        height,
        margin,
        t_max,
        applications: timeline.iter().map(|s| (x(s.t), y(s.applications))).collect(),
        programmed: timeline.iter().filter_map(|s| Some((x(s.t), y(s.programmed?)))).collect(),
    }
}

/// The convergence chart as a PNG (the SVG beside it has the same lines, with labels: blue,
/// applications on the BIG-IP; green, objects Programmed=True; x from 0 to the last sample,
/// y from 0 to N).
fn convergence_png(timeline: &[Sample], n: usize, path: &Path) -> Result<()> {
    use tiny_skia::{Color, Paint, PathBuilder, Pixmap, Stroke, Transform};
    let chart = chart(timeline, n);
    let mut pixmap = Pixmap::new(chart.width as u32, chart.height as u32).context("PNG canvas")?;
    pixmap.fill(Color::WHITE);
    let mut draw = |points: &[(f32, f32)], (r, g, b): (u8, u8, u8), width: f32| {
        let mut builder = PathBuilder::new();
        for (i, (x, y)) in points.iter().enumerate() {
            if i == 0 {
                builder.move_to(*x, *y);
            } else {
                builder.line_to(*x, *y);
            }
        }
        if let Some(line) = builder.finish() {
            let mut paint = Paint::default();
            paint.set_color_rgba8(r, g, b, 255);
            paint.anti_alias = true;
            pixmap.stroke_path(&line, &paint, &Stroke { width, ..Stroke::default() }, Transform::identity(), None);
        }
    };
    let (m, w, h) = (chart.margin, chart.width, chart.height);
    draw(&[(m, m), (m, h - m), (w - m, h - m)], (0, 0, 0), 1.0);
    draw(&chart.applications, APPLICATIONS_RGB, 2.0);
    draw(&chart.programmed, PROGRAMMED_RGB, 2.0);
    pixmap.save_png(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Convergence over time as an SVG line chart: applications on the BIG-IP and objects
/// Programmed, as a share of N.
fn convergence_svg(run: &str, timeline: &[Sample], n: usize) -> String {
    let chart = chart(timeline, n);
    let (width, height, margin, t_max) = (chart.width, chart.height, chart.margin, chart.t_max);
    let line = |points: &[(f32, f32)], (r, g, b): (u8, u8, u8)| {
        let path: Vec<String> = points.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
        format!(
            r##"<polyline fill="none" stroke="#{r:02x}{g:02x}{b:02x}" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        )
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="20">{run}: convergence after operator start (N = {n})</text>
<line x1="{margin}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/>
<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{b}" stroke="black"/>
<text x="{r}" y="{lb}" text-anchor="end">{t_max:.1} s</text>
<text x="{margin}" y="{lb}">0 s</text>
<text x="5" y="{margin}">{n}</text>
<text x="5" y="{b}">0</text>
"#,
        b = height - margin,
        r = width - margin,
        lb = height - margin + 18.0,
    );
    svg.push_str(&line(&chart.applications, APPLICATIONS_RGB));
    svg.push_str(&line(&chart.programmed, PROGRAMMED_RGB));
    let (ar, ag, ab) = APPLICATIONS_RGB;
    let (pr, pg, pb) = PROGRAMMED_RGB;
    svg.push_str(&format!(
        r##"<text x="{lx}" y="{ly}" fill="#{ar:02x}{ag:02x}{ab:02x}">applications on the BIG-IP</text><text x="{lx}" y="{ly2}" fill="#{pr:02x}{pg:02x}{pb:02x}">objects Programmed=True</text></svg>
"##,
        lx = width - margin - 200.0,
        ly = margin + 20.0,
        ly2 = margin + 38.0
    ));
    svg
}

/// Redraws the SVG and PNG of every `<run>.timeline.csv` in `dir` (N from `<run>.json`).
fn replot(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(run) = path.file_name().and_then(|f| f.to_str()).and_then(|f| f.strip_suffix(".timeline.csv")) else {
            continue;
        };
        let result: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{run}.json")))?)?;
        let n = result["n_virtualservers"].as_u64().context("n_virtualservers")? as usize;
        let timeline: Vec<Sample> = std::fs::read_to_string(&path)?
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                Some(Sample {
                    t: fields.first()?.parse().ok()?,
                    applications: fields.get(1)?.parse().ok()?,
                    programmed: fields.get(2).and_then(|p| p.parse().ok()),
                    cpu_s: fields.get(3)?.parse().ok()?,
                    rss_mib: fields.get(4)?.parse().ok()?,
                })
            })
            .collect();
        std::fs::write(dir.join(format!("{run}.svg")), convergence_svg(run, &timeline, n))?;
        convergence_png(&timeline, n, &dir.join(format!("{run}.png")))?;
        eprintln!("bench: redrew {run}");
    }
    Ok(())
}

fn append_summary(out_dir: &Path, result: &RunResult) -> Result<()> {
    let path = out_dir.join("summary.json");
    let mut runs: Vec<Value> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not a JSON list", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => bail!("reading {}: {e}", path.display()),
    };
    runs.push(serde_json::to_value(result)?);
    std::fs::write(&path, serde_json::to_string_pretty(&runs)? + "\n")?;
    Ok(())
}

/// A row of the printed table: its name and how to show a run's value.
type Row = (&'static str, Box<dyn Fn(&RunResult) -> String>);

fn print_table(results: &[RunResult]) {
    let opt = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "—".into());
    let rows: Vec<Row> = vec![
        ("VirtualServers", Box::new(|r| r.n_virtualservers.to_string())),
        ("partitions", Box::new(|r| r.partitions.to_string())),
        ("latency model", Box::new(|r| format!("{:?}", r.latency_model).to_lowercase())),
        ("cold start, BIG-IP holds all (s)", Box::new(move |r| opt(r.cold_start_s, 2))),
        ("all Programmed (s)", Box::new(move |r| opt(r.status_converged_s, 2))),
        (
            "cold start posts / MB",
            Box::new(|r| format!("{} / {:.2}", r.cold_start_posts, r.cold_start_bytes as f64 / 1e6)),
        ),
        (
            "change p50 / p99 / max (ms)",
            Box::new(move |r| {
                format!("{} / {} / {}", opt(r.change_p50_ms, 0), opt(r.change_p99_ms, 0), opt(r.change_max_ms, 0))
            }),
        ),
        ("changes landed", Box::new(|r| r.changes_measured.to_string())),
        ("posts per change", Box::new(|r| format!("{:.2}", r.posts_per_change))),
        ("bytes per change", Box::new(|r| format!("{:.0}", r.bytes_per_change))),
        ("status writes per change", Box::new(|r| format!("{:.2}", r.status_writes_per_change))),
        ("CPU per change (ms)", Box::new(|r| format!("{:.1}", r.cpu_per_change_ms))),
        (
            "burst: size / partitions / converged (s) / posts",
            Box::new(move |r| {
                format!(
                    "{} / {} / {} / {}",
                    r.burst_size,
                    r.burst_partitions,
                    opt(r.burst_converged_s, 2),
                    r.burst_posts
                )
            }),
        ),
        (
            "Node add+remove: posts / CPU ms",
            Box::new(|r| format!("{} / {:.0}", r.node_change_posts, r.node_change_cpu_ms)),
        ),
        (
            "idle: seconds / posts / CPU s",
            Box::new(|r| format!("{} / {} / {:.2}", r.idle_seconds, r.noop_posts, r.idle_cpu_s)),
        ),
        ("operator peak RSS (MiB)", Box::new(|r| format!("{:.0}", r.peak_rss_mib))),
        ("operator CPU, whole run (s)", Box::new(|r| format!("{:.1}", r.operator_cpu_s))),
    ];
    let mut out = String::from("\n| measure |");
    for r in results {
        out.push_str(&format!(" {} |", r.run));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(results.len()));
    out.push('\n');
    for (name, cell) in rows {
        out.push_str(&format!("| {name} |"));
        for r in results {
            out.push_str(&format!(" {} |", cell(r)));
        }
        out.push('\n');
    }
    println!("{out}");
}
