//! The operator's command line, taken from the chart: `helm template` renders the Deployment
//! with the values of the scenario (`--set`, typed as the chart's schema wants), and the operator container's `command`, `args`, `env` and
//! mounted Secrets/ConfigMaps become the process the scenario runs (there is no kubelet here).
//!
//! What a kubelet would do is done here, and nothing more:
//! * `valueFrom.fieldRef` (metadata.name, metadata.namespace) → the replica's identity and the
//!   release namespace; `valueFrom.secretKeyRef`/`configMapKeyRef` → read from the apiserver;
//! * each Secret/ConfigMap volume the container mounts is written from the apiserver's object
//!   into a local directory, and the mount path is replaced by that directory wherever an
//!   argument or environment value names it;
//! * the ServiceAccount token: `KUBECONFIG` names a kubeconfig with the chart
//!   ServiceAccount's token (in a pod, the mounted token does that);
//! * the metrics listener `0.0.0.0:<port>` becomes `127.0.0.1:0`: every test server listens
//!   on 127.0.0.1, and several replicas run on one host.
//!
//! So a flag renamed in the binary but not in the chart makes the process exit at once with
//! clap's error, and the scenario fails with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar, Volume};
use serde::Deserialize;

/// The image's entrypoint (hack/image, Dockerfile): the chart gives only `args`, or a
/// `command` naming this binary.
pub const IMAGE_ENTRYPOINT: &str = "/usr/local/bin/bigip-operator";

/// The operator container and the pod's volumes, as `helm template` rendered them.
pub struct RenderedOperator {
    pub container: Container,
    pub volumes: Vec<Volume>,
}

/// `helm template <release> charts/bigip-operator -n <namespace> --set k=v ...`, and its
/// Deployment's container named `operator`.
pub fn render(
    helm: &Path,
    chart: &Path,
    release: &str,
    namespace: &str,
    values: &[(String, String)],
) -> Result<RenderedOperator> {
    let mut args: Vec<String> =
        vec!["template".into(), release.into(), chart.to_string_lossy().into_owned(), "-n".into(), namespace.into()];
    for (key, value) in values {
        args.push("--set".into());
        args.push(format!("{key}={value}"));
    }
    let output = Command::new(helm).args(&args).output().context("running helm template")?;
    ensure!(output.status.success(), "helm {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    let rendered = String::from_utf8(output.stdout)?;
    for document in serde_yaml::Deserializer::from_str(&rendered) {
        let value = serde_yaml::Value::deserialize(document)?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("Deployment") {
            continue;
        }
        let deployment: Deployment = serde_yaml::from_value(value).context("the rendered Deployment")?;
        let pod = deployment.spec.and_then(|s| s.template.spec).context("the Deployment has no pod spec")?;
        let container = pod
            .containers
            .into_iter()
            .find(|c| c.name == "operator")
            .context("the Deployment has no container named operator")?;
        return Ok(RenderedOperator { container, volumes: pod.volumes.unwrap_or_default() });
    }
    bail!("helm template rendered no Deployment")
}

/// What the kubelet would know: the pod's name and namespace, and the apiserver to read
/// Secrets and ConfigMaps from.
pub struct Pod<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub kubectl: &'a Path,
    pub admin_kubeconfig: &'a Path,
    /// Where the mounted volumes are written.
    pub volumes_dir: PathBuf,
}

/// The program, its arguments and environment for the rendered container.
pub struct CommandLine {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Pod<'_> {
    /// The `data` of a Secret (decoded) or ConfigMap in the pod's namespace.
    fn object_data(&self, kind: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let output = Command::new(self.kubectl)
            .args(["get", kind, name, "-n", self.namespace, "-o", "json"])
            .env("KUBECONFIG", self.admin_kubeconfig)
            .output()?;
        ensure!(
            output.status.success(),
            "{kind} {}/{name} (mounted or referenced by the chart): {}",
            self.namespace,
            String::from_utf8_lossy(&output.stderr)
        );
        let object: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let data = object.get("data").and_then(|d| d.as_object()).cloned().unwrap_or_default();
        data.into_iter()
            .map(|(key, value)| {
                let text = value.as_str().unwrap_or_default();
                let bytes = if kind == "secret" {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(text)?
                } else {
                    text.as_bytes().to_vec()
                };
                Ok((key, bytes))
            })
            .collect()
    }

    /// Writes a Secret or ConfigMap volume (with its `items`, if any) into `dir`.
    fn materialize(&self, volume: &Volume, dir: &Path) -> Result<()> {
        let (kind, name, items) = if let Some(secret) = &volume.secret {
            ("secret", secret.secret_name.clone().context("secret volume without secretName")?, secret.items.clone())
        } else if let Some(config_map) = &volume.config_map {
            ("configmap", config_map.name.clone(), config_map.items.clone())
        } else {
            bail!("volume {}: only Secret and ConfigMap volumes are mapped to local files", volume.name)
        };
        let data = self.object_data(kind, &name)?;
        std::fs::create_dir_all(dir)?;
        let files: Vec<(String, String)> = match items {
            Some(items) => items.into_iter().map(|i| (i.key, i.path)).collect(),
            None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
        };
        for (key, path) in files {
            let content = data.get(&key).with_context(|| format!("{kind} {name} has no key {key}"))?;
            std::fs::write(dir.join(path), content)?;
        }
        Ok(())
    }

    fn env_value(&self, var: &EnvVar) -> Result<String> {
        if let Some(value) = &var.value {
            return Ok(value.clone());
        }
        let source =
            var.value_from.as_ref().with_context(|| format!("env {} has neither value nor valueFrom", var.name))?;
        if let Some(field) = &source.field_ref {
            return match field.field_path.as_str() {
                "metadata.name" => Ok(self.name.to_string()),
                "metadata.namespace" => Ok(self.namespace.to_string()),
                other => bail!("env {}: fieldRef {other} is not mapped", var.name),
            };
        }
        let (kind, name, key) = if let Some(secret) = &source.secret_key_ref {
            ("secret", secret.name.clone(), secret.key.clone())
        } else if let Some(config_map) = &source.config_map_key_ref {
            ("configmap", config_map.name.clone(), config_map.key.clone())
        } else {
            bail!("env {}: valueFrom is not mapped", var.name)
        };
        let data = self.object_data(kind, &name)?;
        let value = data.get(&key).with_context(|| format!("env {}: {kind} {name} has no key {key}", var.name))?;
        Ok(String::from_utf8(value.clone())?)
    }

    /// The command line the kubelet would start, with mounts mapped to local directories.
    pub fn command_line(&self, rendered: &RenderedOperator) -> Result<CommandLine> {
        let container = &rendered.container;
        if let Some(command) = &container.command {
            ensure!(
                command.len() == 1 && command[0] == IMAGE_ENTRYPOINT,
                "the chart's command {command:?} is not the image's binary {IMAGE_ENTRYPOINT}"
            );
        }
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            ensure!(mount.sub_path.is_none(), "volume mount {} uses subPath (not mapped)", mount.name);
            let volume = rendered
                .volumes
                .iter()
                .find(|v| v.name == mount.name)
                .with_context(|| format!("volume mount {} names no volume", mount.name))?;
            let dir = self.volumes_dir.join(&mount.name);
            self.materialize(volume, &dir)?;
            mounts.push((mount.mount_path.trim_end_matches('/').to_string(), dir));
        }
        let map_paths = |value: &str| -> String {
            let mut mapped = value.to_string();
            for (mount_path, dir) in &mounts {
                if let Some(at) = mapped.find(mount_path.as_str()) {
                    let rest = &mapped[at + mount_path.len()..];
                    if rest.is_empty() || rest.starts_with('/') {
                        mapped = format!("{}{}{rest}", &mapped[..at], dir.display());
                    }
                }
            }
            mapped
        };
        let args = container
            .args
            .iter()
            .flatten()
            .map(|arg| match arg.strip_prefix("--metrics-addr=0.0.0.0:") {
                Some(_) => "--metrics-addr=127.0.0.1:0".to_string(),
                None => map_paths(arg),
            })
            .collect();
        let mut env = Vec::new();
        for var in container.env.iter().flatten() {
            env.push((var.name.clone(), map_paths(&self.env_value(var)?)));
        }
        Ok(CommandLine { args, env })
    }
}
