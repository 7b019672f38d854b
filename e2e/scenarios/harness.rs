//! The e2e environment: a real control plane (e2e/controlplane), the chart installed with helm,
//! the BIG-IP simulator, and the operator binary running with the chart's ServiceAccount token.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};

use crate::chart;
use bigip_operator::simulator::{self, RunningSimulator, SimulatorConfig, TlsMode};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

pub const OPERATOR_NAMESPACE: &str = "bigip-system";
pub const RELEASE: &str = "bigip-operator";
pub const DEFAULT_PARTITION: &str = "kubernetes";
pub const BIGIP_PASSWORD: &str = "e2e-Secret-Pa55word";
/// VirtualServers with this label (value: the namespace) belong to a scenario's own operator.
pub const OWN_OPERATOR_LABEL: &str = "e2e.bigip-operator.dev/operator";

/// A child process killed when dropped.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crashed or OOM-killed pod: no clean-up of any kind.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as kubelet does, and the exit status once it stopped (None: had to SIGKILL).
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        // SIGTERM first so the control plane can stop its children cleanly.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A BIG-IP simulator over HTTPS and the file holding its CA certificate.
pub struct BigIp {
    pub simulator: RunningSimulator,
    pub ca_path: PathBuf,
}

impl BigIp {
    /// A BIG-IP client of the test's own (not the operator's), trusting the simulator's CA.
    pub fn client(&self) -> Result<bigip_operator::bigip::BigIpClient> {
        use bigip_operator::bigip::{BigIpClient, BigIpConfig, Credentials, TlsVerification};
        let mut config = BigIpConfig::new(self.simulator.base_url(), Credentials::new("admin", BIGIP_PASSWORD));
        config.tls = TlsVerification::CaBundle(self.ca_path.clone());
        Ok(BigIpClient::new(config)?)
    }
}

/// The Secret with the BIG-IP's credentials, in each release namespace.
pub const CREDENTIALS_SECRET: &str = "bigip-credentials";

/// How to run one operator process (from the chart, see chart.rs).
pub struct OperatorOptions<'a> {
    /// Replica identity: Lease holder, User-Agent suffix, log file name.
    pub identity: &'a str,
    /// Watch only this namespace (None: all); the Lease lives here too when set.
    pub namespace: Option<&'a str>,
    pub partition: &'a str,
    pub bigip: &'a BigIp,
    /// kubeconfig to use instead of the chart ServiceAccount's (e.g. through a slow proxy).
    pub kubeconfig: Option<PathBuf>,
    /// More chart values (`--set key=value`).
    pub values: &'a [(&'a str, &'a str)],
}

impl<'a> OperatorOptions<'a> {
    /// A scenario's own operator: namespace `ns` only, in the partition named like it, with the
    /// chart's ServiceAccount and no extra values.
    pub fn own(identity: &'a str, ns: &'a str, bigip: &'a BigIp) -> Self {
        Self { identity, namespace: Some(ns), partition: ns, bigip, kubeconfig: None, values: &[] }
    }
}

/// An operator process, killed when dropped.
pub struct OperatorProcess {
    pub log_path: PathBuf,
    pub process: ChildGuard,
    /// Where this process's lines start in the log (a restarted identity appends).
    start_offset: u64,
}

impl OperatorProcess {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The address of /metrics, /healthz and /readyz, from this process's start-up line.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        let log = std::fs::read(&self.log_path).ok()?;
        let own = String::from_utf8_lossy(log.get(self.start_offset as usize..)?).into_owned();
        let line = own.lines().find(|l| l.contains("serving /metrics"))?;
        let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
        addr.trim_matches('"').parse().ok()
    }

    /// GET `path` of the operator's endpoint: (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let addr = self.metrics_addr().context("the operator has not logged its endpoint address")?;
        let response = reqwest::get(format!("http://{addr}{path}")).await?;
        Ok((response.status().as_u16(), response.text().await?))
    }
}

pub struct Env {
    pub work_dir: tempfile::TempDir,
    pub bin_dir: PathBuf,
    pub admin_kubeconfig: PathBuf,
    /// The chart ServiceAccount's kubeconfig (what the operator may do).
    pub operator_kubeconfig: PathBuf,
    pub data_dir: PathBuf,
    pub client: Client,
    pub bigip: BigIp,
    // Fields drop in declaration order: the operator stops before the control plane.
    pub operator: OperatorProcess,
    pub controlplane: ChildGuard,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    std::env::var_os("BIGIP_E2E_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".cache/bigip-operator/bin")
    })
}

/// Runs a command, failing with its output when it fails.
pub fn run_tool(program: &Path, args: &[&str], kubeconfig: &Path) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Env {
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run_tool(&self.bin_dir.join("kubectl"), args, &self.admin_kubeconfig)
    }

    /// `kubectl get events -n ns --field-selector selector -o output`.
    pub fn events(&self, ns: &str, field_selector: &str, output: &str) -> Result<String> {
        self.kubectl(&["get", "events", "-n", ns, "--field-selector", field_selector, "-o", output])
    }

    /// kubectl expected to fail: returns its stderr.
    pub fn kubectl_fails(&self, args: &[&str], stdin: &str) -> Result<String> {
        use std::io::Write;
        let mut child = Command::new(self.bin_dir.join("kubectl"))
            .args(args)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().context("stdin")?.write_all(stdin.as_bytes())?;
        let output = child.wait_with_output()?;
        if output.status.success() {
            bail!("kubectl {} unexpectedly succeeded: {}", args.join(" "), String::from_utf8_lossy(&output.stdout));
        }
        Ok(String::from_utf8_lossy(&output.stderr).into_owned())
    }

    pub fn kubectl_apply(&self, namespace: &str, manifest: &str) -> Result<()> {
        let path = self.work_dir.path().join(format!("apply-{}.yaml", uuid::Uuid::new_v4()));
        std::fs::write(&path, manifest)?;
        self.kubectl(&["apply", "-n", namespace, "-f", &path.to_string_lossy()])?;
        Ok(())
    }

    pub async fn start() -> Result<Self> {
        let bin_dir = bin_dir();
        for tool in ["controlplane", "kubectl", "helm"] {
            if !bin_dir.join(tool).exists() {
                bail!(
                    "{} missing: build it with `make controlplane` (or run `make test`)",
                    bin_dir.join(tool).display()
                );
            }
        }
        let work_dir = tempfile::Builder::new().prefix("bigip-e2e-").tempdir()?;
        let data_dir = work_dir.path().join("controlplane");
        let started = Instant::now();
        let log = std::fs::File::create(work_dir.path().join("controlplane.log"))?;
        let controlplane = Command::new(bin_dir.join("controlplane"))
            .args(["--data-dir", &data_dir.to_string_lossy(), "--nodes", "2"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the control plane")?;
        let mut controlplane = ChildGuard { child: controlplane };
        let ready = data_dir.join("ready");
        while !ready.exists() {
            if !controlplane.is_running() {
                let log = std::fs::read_to_string(work_dir.path().join("controlplane.log")).unwrap_or_default();
                bail!("the control plane exited during start-up:\n{}", tail(&log, 40));
            }
            if started.elapsed() > Duration::from_secs(180) {
                bail!("the control plane was not ready within 180 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("e2e: control plane ready in {:.1}s", started.elapsed().as_secs_f64());
        let admin_kubeconfig = data_dir.join("kubeconfig");
        let kubeconfig = kube::config::Kubeconfig::read_from(&admin_kubeconfig)?;
        let client = Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)?;

        let bigip = start_bigip(work_dir.path(), "main").await?;

        // helm install the chart: CRDs, ServiceAccount, RBAC, Deployment.
        let kubectl = bin_dir.join("kubectl");
        run_tool(&kubectl, &["create", "namespace", OPERATOR_NAMESPACE], &admin_kubeconfig)?;
        run_tool(
            &kubectl,
            &[
                "create",
                "secret",
                "generic",
                "bigip-credentials",
                "-n",
                OPERATOR_NAMESPACE,
                "--from-literal=username=admin",
                &format!("--from-literal=password={BIGIP_PASSWORD}"),
            ],
            &admin_kubeconfig,
        )?;
        // The main operator's values: helm installs with them, and the process runs what they
        // render (Launcher::spawn).
        let main_options = OperatorOptions {
            identity: "main",
            namespace: None,
            partition: DEFAULT_PARTITION,
            bigip: &bigip,
            kubeconfig: None,
            values: &[],
        };
        let chart = repo_root().join("charts/bigip-operator");
        let mut install: Vec<String> =
            ["install", RELEASE, &chart.to_string_lossy(), "-n", OPERATOR_NAMESPACE, "--wait=false"]
                .map(String::from)
                .to_vec();
        for (key, value) in chart_values(&main_options) {
            install.extend(["--set".to_string(), format!("{key}={value}")]);
        }
        run_tool(&bin_dir.join("helm"), &install.iter().map(String::as_str).collect::<Vec<_>>(), &admin_kubeconfig)?;
        run_tool(
            &kubectl,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/virtualservers.bigip.operator.dev",
                "crd/transportservers.bigip.operator.dev",
                "crd/bigiplistenergroups.bigip.operator.dev",
                "crd/bigippolicies.bigip.operator.dev",
            ],
            &admin_kubeconfig,
        )?;

        // Gateway API's ReferenceGrant, as in a cluster with Gateway API (cross-namespace pools).
        let grants_crd = repo_root().join("e2e/scenarios/data/referencegrant-crd.yaml");
        run_tool(&kubectl, &["apply", "-f", &grants_crd.to_string_lossy()], &admin_kubeconfig)?;
        run_tool(
            &kubectl,
            &["wait", "--for=condition=Established", "--timeout=60s", "crd/referencegrants.gateway.networking.k8s.io"],
            &admin_kubeconfig,
        )?;

        // The operator runs here (no container runtime) with the chart's ServiceAccount token,
        // so the chart's RBAC is what it is allowed to do.
        let token = run_tool(
            &kubectl,
            &["create", "token", RELEASE, "-n", OPERATOR_NAMESPACE, "--duration=4h"],
            &admin_kubeconfig,
        )?;
        let operator_kubeconfig = work_dir.path().join("operator.kubeconfig");
        write_token_kubeconfig(&admin_kubeconfig, token.trim(), &operator_kubeconfig)?;
        let launcher = Launcher {
            work_dir: work_dir.path(),
            bin_dir: &bin_dir,
            admin_kubeconfig: &admin_kubeconfig,
            default_kubeconfig: &operator_kubeconfig,
        };
        let operator = launcher.spawn(&main_options)?;
        Ok(Self {
            work_dir,
            bin_dir,
            admin_kubeconfig,
            operator_kubeconfig,
            data_dir,
            client,
            bigip,
            operator,
            controlplane,
        })
    }

    /// Another simulated BIG-IP, for a scenario that injects faults or reads its whole history.
    pub async fn start_bigip(&self, name: &str) -> Result<BigIp> {
        start_bigip(self.work_dir.path(), name).await
    }

    /// Another operator process with the chart ServiceAccount's permissions (unless
    /// `options.kubeconfig` says otherwise).
    pub fn start_operator(&self, options: &OperatorOptions<'_>) -> Result<OperatorProcess> {
        Launcher {
            work_dir: self.work_dir.path(),
            bin_dir: &self.bin_dir,
            admin_kubeconfig: &self.admin_kubeconfig,
            default_kubeconfig: &self.operator_kubeconfig,
        }
        .spawn(options)
    }

    /// The client URL of the control plane's etcd (plain HTTP on 127.0.0.1), from the launcher's
    /// "etcd ready on 127.0.0.1:PORT" log line.
    pub fn etcd_endpoint(&self) -> Result<String> {
        let log = std::fs::read_to_string(self.work_dir.path().join("controlplane.log"))?;
        let line = log
            .lines()
            .find_map(|l| l.split("etcd ready on ").nth(1))
            .context("no \"etcd ready on\" line in controlplane.log")?;
        let address = line.split_whitespace().next().context("etcd address")?;
        Ok(format!("http://{address}"))
    }

    /// The address kube-apiserver listens on.
    pub fn apiserver_addr(&self) -> Result<std::net::SocketAddr> {
        let config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&self.admin_kubeconfig)?)?;
        let server = config["clusters"][0]["cluster"]["server"].as_str().context("kubeconfig has no server")?;
        Ok(server.trim_start_matches("https://").parse()?)
    }

    /// The operator's kubeconfig with the server replaced by `addr` (a proxy in front of the
    /// apiserver; the serving certificate is for 127.0.0.1, so it still verifies).
    pub fn operator_kubeconfig_via(&self, addr: std::net::SocketAddr, name: &str) -> Result<PathBuf> {
        let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&self.operator_kubeconfig)?)?;
        let clusters =
            config.get_mut("clusters").and_then(|c| c.as_sequence_mut()).context("kubeconfig has no clusters")?;
        for cluster in clusters.iter_mut() {
            cluster["cluster"]["server"] = serde_yaml::Value::from(format!("https://{addr}"));
        }
        let path = self.work_dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, serde_yaml::to_string(&config)?)?;
        Ok(path)
    }

    /// Restarts kube-apiserver (the control plane's SIGUSR1) and waits until it is serving
    /// again; returns how long that took.
    pub async fn restart_apiserver(&self) -> Result<Duration> {
        let counter = self.data_dir.join("apiserver-restarts");
        let read = || std::fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse::<u32>().ok()).unwrap_or(0);
        let before = read();
        let started = Instant::now();
        let status = Command::new("kill").args(["-USR1", &self.controlplane.pid().to_string()]).status()?;
        ensure!(status.success(), "kill -USR1 failed");
        while read() <= before {
            ensure!(started.elapsed() < Duration::from_secs(120), "kube-apiserver did not come back within 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed())
    }

    /// The main simulator, shared by the scenarios that inject no faults.
    pub fn simulator(&self) -> &RunningSimulator {
        &self.bigip.simulator
    }

    pub fn operator_log(&self) -> String {
        self.operator.log()
    }

    /// The logs of every operator process the scenarios started, the main one included.
    pub fn all_operator_logs(&self) -> String {
        let mut logs = String::new();
        if let Ok(entries) = std::fs::read_dir(self.work_dir.path()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("operator-") && name.ends_with(".log") {
                    logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        logs
    }

    /// InternalIPs of the Ready nodes, sorted.
    pub async fn ready_node_ips(&self) -> Result<Vec<String>> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut ips: Vec<String> = nodes
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| bigip_operator::model::members::node_is_ready(n))
            .filter_map(|n| bigip_operator::model::members::node_internal_ip(n).map(|ip| ip.to_string()))
            .collect();
        ips.sort();
        Ok(ips)
    }
}

async fn start_bigip(work_dir: &Path, name: &str) -> Result<BigIp> {
    // The simulator over HTTPS with a self-signed certificate, like a fresh BIG-IP.
    let simulator = simulator::start(SimulatorConfig {
        tls: TlsMode::SelfSigned,
        password: BIGIP_PASSWORD.into(),
        ..SimulatorConfig::default()
    })
    .await?;
    let ca_path = work_dir.join(format!("bigip-{name}-ca.pem"));
    std::fs::write(&ca_path, simulator.ca_certificate_pem().context("simulator CA")?)?;
    Ok(BigIp { simulator, ca_path })
}

/// The chart values of an operator process (`--set key=value`).
fn chart_values(options: &OperatorOptions<'_>) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = [
        ("bigip.url", options.bigip.simulator.base_url()),
        ("bigip.existingSecret", CREDENTIALS_SECRET.to_string()),
        ("bigip.caBundle.configMapName", ca_config_map(options.identity)),
        ("partition", options.partition.to_string()),
        ("resyncSeconds", "30".to_string()),
        ("driftCheckSeconds", "2".to_string()),
        ("logFormat", "text".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    match options.namespace {
        // A scenario's own operator: its namespace's labelled objects only, and its own Lease
        // there (the release namespace).
        Some(ns) => {
            values.push(("watchNamespace".into(), ns.into()));
            values.push(("selector".into(), format!("{OWN_OPERATOR_LABEL}={ns}")));
        }
        // The shared operator leaves the objects of scenarios with their own operator alone.
        None => values.push(("selector".into(), format!("!{OWN_OPERATOR_LABEL}"))),
    }
    values.extend(options.values.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    values
}

/// The ConfigMap with the CA of the simulator an operator process talks to.
fn ca_config_map(identity: &str) -> String {
    format!("bigip-ca-{identity}")
}

/// Where operator processes come from: the chart, rendered for each process (chart.rs).
struct Launcher<'a> {
    work_dir: &'a Path,
    bin_dir: &'a Path,
    admin_kubeconfig: &'a Path,
    /// The chart ServiceAccount's kubeconfig, unless the options name another.
    default_kubeconfig: &'a Path,
}

impl Launcher<'_> {
    fn kubectl_apply_value(&self, name: &str, object: &serde_json::Value) -> Result<()> {
        let path = self.work_dir.join(format!("{name}.yaml"));
        std::fs::write(&path, serde_yaml::to_string(object)?)?;
        run_tool(&self.bin_dir.join("kubectl"), &["apply", "-f", &path.to_string_lossy()], self.admin_kubeconfig)?;
        Ok(())
    }

    /// The objects the chart's values refer to, in the release namespace: the credentials
    /// Secret and a ConfigMap with the simulator's CA.
    fn ensure_referenced_objects(&self, namespace: &str, ca_config_map: &str, bigip: &BigIp) -> Result<()> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        self.kubectl_apply_value(
            &format!("credentials-{namespace}"),
            &serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": CREDENTIALS_SECRET, "namespace": namespace},
                "data": {"username": b64("admin"), "password": b64(BIGIP_PASSWORD)},
            }),
        )?;
        self.kubectl_apply_value(
            &format!("{ca_config_map}-{namespace}"),
            &serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ca_config_map, "namespace": namespace},
                "data": {"ca.crt": std::fs::read_to_string(&bigip.ca_path)?},
            }),
        )
    }

    /// Renders the chart for `options` and starts the operator container's command line; waits
    /// until it serves its endpoint (or fails with its log when it exits first, e.g. on a flag
    /// the binary does not know).
    fn spawn(&self, options: &OperatorOptions<'_>) -> Result<OperatorProcess> {
        let kubeconfig = options.kubeconfig.clone().unwrap_or_else(|| self.default_kubeconfig.to_path_buf());
        let release_namespace = options.namespace.unwrap_or(OPERATOR_NAMESPACE);
        self.ensure_referenced_objects(release_namespace, &ca_config_map(options.identity), options.bigip)?;
        let values = chart_values(options);
        let rendered = chart::render(
            &self.bin_dir.join("helm"),
            &repo_root().join("charts/bigip-operator"),
            RELEASE,
            release_namespace,
            &values,
        )?;
        let pod = chart::Pod {
            name: options.identity,
            namespace: release_namespace,
            kubectl: &self.bin_dir.join("kubectl"),
            admin_kubeconfig: self.admin_kubeconfig,
            volumes_dir: self.work_dir.join(format!("volumes-{release_namespace}-{}", options.identity)),
        };
        let command_line = pod.command_line(&rendered)?;

        let log_path = self.work_dir.join(format!("operator-{}.log", options.identity));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let start_offset = log.metadata()?.len();
        let child = Command::new(env!("CARGO_BIN_EXE_bigip-operator"))
            .args(&command_line.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(command_line.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // In a pod, the ServiceAccount token; here a kubeconfig holding it.
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info,bigip_operator=debug,kube=warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the operator")?;
        let mut process = OperatorProcess { log_path, process: ChildGuard { child }, start_offset };
        let started = Instant::now();
        while process.metrics_addr().is_none() {
            if !process.process.is_running() {
                bail!(
                    "the operator started with the chart's command line exited at once\nargs: {:?}\n{}",
                    command_line.args,
                    tail(&process.log(), 30)
                );
            }
            ensure!(started.elapsed() < Duration::from_secs(60), "the operator did not serve its endpoint within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(process)
    }
}

fn write_token_kubeconfig(admin: &Path, token: &str, out: &Path) -> Result<()> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    let users = config.get_mut("users").and_then(|u| u.as_sequence_mut()).context("kubeconfig has no users")?;
    for user in users.iter_mut() {
        let entry =
            serde_yaml::Mapping::from_iter([(serde_yaml::Value::from("token"), serde_yaml::Value::from(token))]);
        user["user"] = serde_yaml::Value::Mapping(entry);
    }
    std::fs::write(out, serde_yaml::to_string(&config)?)?;
    Ok(())
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `check` until it returns Ok(Some(value)) or the time-out passes; the last error or
/// "not yet" explanation is in the failure message.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<std::result::Result<T, String>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(not_yet)) => not_yet,
            Err(e) => format!("error: {e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{what}: not true within {timeout:?}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
