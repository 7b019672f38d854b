//! The e2e environment: a real control plane (e2e/controlplane), the chart installed with helm,
//! the BIG-IP simulator, and the operator binary running with the chart's ServiceAccount token.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bigip_operator::simulator::{self, RunningSimulator, SimulatorConfig, TlsMode};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

pub const OPERATOR_NAMESPACE: &str = "bigip-system";
pub const RELEASE: &str = "bigip-operator";
pub const DEFAULT_PARTITION: &str = "kubernetes";
pub const BIGIP_PASSWORD: &str = "e2e-Secret-Pa55word";

/// A child process killed when dropped.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // SIGTERM first so the control plane can stop its children cleanly.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
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

pub struct Env {
    pub work_dir: tempfile::TempDir,
    pub bin_dir: PathBuf,
    pub admin_kubeconfig: PathBuf,
    pub client: Client,
    pub simulator: RunningSimulator,
    pub operator_log: PathBuf,
    // Fields drop in declaration order: the operator stops before the control plane.
    pub _operator: ChildGuard,
    pub _controlplane: ChildGuard,
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
                bail!("{} missing: build it with `make controlplane` (or run `make test`)", bin_dir.join(tool).display());
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

        // The BIG-IP: the simulator over HTTPS with a self-signed certificate.
        let simulator = simulator::start(SimulatorConfig {
            tls: TlsMode::SelfSigned,
            password: BIGIP_PASSWORD.into(),
            ..SimulatorConfig::default()
        })
        .await?;
        let ca_path = work_dir.path().join("bigip-ca.pem");
        std::fs::write(&ca_path, simulator.ca_certificate_pem().context("simulator CA")?)?;

        // helm install the chart: CRDs, ServiceAccount, RBAC, Deployment.
        let kubectl = bin_dir.join("kubectl");
        run_tool(&kubectl, &["create", "namespace", OPERATOR_NAMESPACE], &admin_kubeconfig)?;
        run_tool(
            &kubectl,
            &["create", "secret", "generic", "bigip-credentials", "-n", OPERATOR_NAMESPACE,
              "--from-literal=username=admin", &format!("--from-literal=password={BIGIP_PASSWORD}")],
            &admin_kubeconfig,
        )?;
        let url_value = format!("bigip.url={}", simulator.base_url());
        let chart = repo_root().join("charts/bigip-operator");
        run_tool(
            &bin_dir.join("helm"),
            &["install", RELEASE, &chart.to_string_lossy(), "-n", OPERATOR_NAMESPACE, "--wait=false",
              "--set", &url_value, "--set", "bigip.existingSecret=bigip-credentials"],
            &admin_kubeconfig,
        )?;
        run_tool(
            &kubectl,
            &["wait", "--for=condition=Established", "--timeout=60s", "crd/virtualservers.bigip.operator.dev"],
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
        let credentials = work_dir.path().join("bigip-credentials");
        std::fs::create_dir_all(&credentials)?;
        std::fs::write(credentials.join("username"), "admin")?;
        std::fs::write(credentials.join("password"), BIGIP_PASSWORD)?;

        let operator_log = work_dir.path().join("operator.log");
        let log = std::fs::File::create(&operator_log)?;
        let operator = Command::new(env!("CARGO_BIN_EXE_bigip-operator"))
            .args([
                "run",
                "--kubeconfig", &operator_kubeconfig.to_string_lossy(),
                "--bigip-url", &simulator.base_url(),
                "--bigip-ca-bundle", &ca_path.to_string_lossy(),
                "--bigip-credentials", &credentials.to_string_lossy(),
                "--partition", DEFAULT_PARTITION,
                "--metrics-addr", "127.0.0.1:0",
                "--resync-seconds", "30",
                "--drift-check-seconds", "2",
            ])
            .env("RUST_LOG", "info,bigip_operator=debug,kube=warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the operator")?;
        let operator = ChildGuard { child: operator };
        Ok(Self { work_dir, bin_dir, admin_kubeconfig, client, simulator, operator_log, _operator: operator, _controlplane: controlplane })
    }

    /// A BIG-IP client of the test's own (not the operator's), trusting the simulator's CA.
    pub fn bigip_client(&self) -> Result<bigip_operator::bigip::BigIpClient> {
        use bigip_operator::bigip::{BigIpClient, BigIpConfig, Credentials, TlsVerification};
        let mut config = BigIpConfig::new(self.simulator.base_url(), Credentials::new("admin", BIGIP_PASSWORD));
        config.tls = TlsVerification::CaBundle(self.work_dir.path().join("bigip-ca.pem"));
        Ok(BigIpClient::new(config)?)
    }

    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(&self.operator_log).unwrap_or_default()
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

fn write_token_kubeconfig(admin: &Path, token: &str, out: &Path) -> Result<()> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    let users = config.get_mut("users").and_then(|u| u.as_sequence_mut()).context("kubeconfig has no users")?;
    for user in users.iter_mut() {
        let entry = serde_yaml::Mapping::from_iter([(serde_yaml::Value::from("token"), serde_yaml::Value::from(token))]);
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
