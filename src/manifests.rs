//! Reading Kubernetes manifests (multi-document YAML or JSON files, or directories of them)
//! for the offline `render` command, and rendering them as the operator would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::as3::{render_request, render_tenant, Ownership};
use crate::crd::{TransportServer, VirtualServer};
use crate::model::{build_fleet, AppOutcome, ClusterObjects, ModelDefaults, UnresolvedRef};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: document {document}: not valid YAML/JSON: {source}")]
    Parse { path: PathBuf, document: usize, source: serde_yaml::Error },
    #[error("{path}: {kind} {name}: field {field}: {message}")]
    Object { path: PathBuf, kind: String, name: String, field: String, message: String },
}

/// The objects found in a set of manifests.
#[derive(Debug, Default)]
pub struct Manifests {
    pub virtual_servers: Vec<VirtualServer>,
    pub transport_servers: Vec<TransportServer>,
    pub cluster: ClusterObjects,
    /// Kinds that were read but play no part in rendering (Deployments, ...).
    pub ignored: Vec<String>,
    /// Legacy k8s-bigip-ctlr objects and what they were translated into (their objects are
    /// also in `virtual_servers` / `transport_servers`).
    pub legacy: Vec<LegacySource>,
    /// Services of `type: LoadBalancer` (any class) and BigIpAddressPools, until
    /// [`Manifests::program_load_balancers`] turns the Services into TransportServers.
    pub load_balancer_services: Vec<k8s_openapi::api::core::v1::Service>,
    pub address_pools: Vec<crate::crd::BigIpAddressPool>,
    /// What became of each LoadBalancer Service (its address, or why it has none).
    pub load_balancer_notes: Vec<String>,
}

/// One legacy object (`Ingress ns/name`, `ConfigMap ns/name`) and its translation.
#[derive(Debug, Clone)]
pub struct LegacySource {
    pub source: String,
    pub objects: Vec<crate::legacy::Translated>,
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Option<NameMeta>,
    #[serde(default)]
    items: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct NameMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// Reads every `.yaml`, `.yml` and `.json` file of the given files and directories.
pub fn read_manifests(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
    let mut manifests = Manifests::default();
    for path in expand_paths(paths)? {
        let text =
            std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path: path.clone(), source })?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(document).map_err(|source| ManifestError::Parse {
                path: path.clone(),
                document: index + 1,
                source,
            })?;
            if !value.is_null() {
                manifests.add(&path, value)?;
            }
        }
    }
    Ok(manifests)
}

impl Manifests {
    /// Turns the LoadBalancer Services of `class` into their TransportServers, as the operator
    /// would: the address each names, or the next free one of the pools (in the order the
    /// Services were read); then gives the VirtualServers and TransportServers with
    /// `spec.addressPool` the next free addresses. Each gets a note saying which, or why none.
    pub fn program_load_balancers(&mut self, class: &crate::model::load_balancer::LoadBalancerClass) {
        use crate::model::address_pool::{allocate, PoolAddresses, PoolView};
        use crate::model::load_balancer::{allocated, requested_address, requested_pool, transport_servers};
        let pools: Vec<PoolView> = self
            .address_pools
            .iter()
            .enumerate()
            .map(|(index, pool)| PoolView {
                name: pool.metadata.name.clone().unwrap_or_default(),
                addresses: PoolAddresses::parse(&pool.spec.addresses),
                auto_assign: pool.spec.auto_assign,
                allowed_namespaces: pool.spec.allowed_namespaces.clone(),
                order: (Some(index as i64), pool.metadata.name.clone().unwrap_or_default()),
            })
            .collect();
        let mut used = std::collections::HashSet::new();
        for svc in &self.load_balancer_services {
            used.extend(requested_address(svc).ok().flatten());
            used.extend(allocated(svc).map(|(address, _)| address));
        }
        for svc in &self.load_balancer_services {
            let key = crate::model::ObjectKey::of(&svc.metadata);
            if !class.handles(svc) {
                self.load_balancer_notes.push(format!("Service {key}: another loadBalancerClass; left alone"));
                continue;
            }
            let address = match requested_address(svc) {
                Err(e) => Err(e.to_string()),
                Ok(Some(address)) => Ok((address, "named by the Service".to_string())),
                Ok(None) => match allocated(svc) {
                    Some((address, from)) => {
                        Ok((address, format!("allocated earlier from {}", from.unwrap_or("a pool"))))
                    }
                    None => allocate(&pools, &key.namespace, requested_pool(svc), &used)
                        .map(|(pool, address)| (address, format!("from BigIpAddressPool {pool}")))
                        .map_err(|e| format!("{}: {e}", e.reason())),
                },
            };
            match address {
                Ok((address, how)) => {
                    used.insert(address);
                    let (generated, skipped) = transport_servers(svc, address);
                    let names: Vec<String> = generated.iter().filter_map(|ts| ts.metadata.name.clone()).collect();
                    let mut note = format!("Service {key}: {address} ({how}) as TransportServers {}", names.join(", "));
                    for skip in skipped {
                        note.push_str(&format!("; {}", skip.reason));
                    }
                    self.load_balancer_notes.push(note);
                    self.transport_servers.extend(generated);
                }
                Err(problem) => self.load_balancer_notes.push(format!("Service {key}: no address: {problem}")),
            }
        }
        // VirtualServers and TransportServers with spec.addressPool: the next free address,
        // written where the operator writes it (the annotation the model reads).
        let mut take = |kind: &str, meta: &mut kube::api::ObjectMeta, pool: Option<&str>, named: &str| {
            let (Some(pool), true) = (pool, named.is_empty()) else { return };
            let key = crate::model::ObjectKey::of(meta);
            if meta
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(crate::model::load_balancer::ALLOCATED_ANNOTATION))
            {
                return;
            }
            match allocate(&pools, &key.namespace, Some(pool), &used) {
                Ok((pool, address)) => {
                    used.insert(address);
                    meta.annotations
                        .get_or_insert_with(Default::default)
                        .insert(crate::model::load_balancer::ALLOCATED_ANNOTATION.to_string(), address.to_string());
                    self.load_balancer_notes.push(format!("{kind} {key}: {address} (from BigIpAddressPool {pool})"));
                }
                Err(e) => self.load_balancer_notes.push(format!("{kind} {key}: no address: {}: {e}", e.reason())),
            }
        };
        for vs in &mut self.virtual_servers {
            take("VirtualServer", &mut vs.metadata, vs.spec.address_pool.as_deref(), &vs.spec.virtual_address);
        }
        for ts in &mut self.transport_servers {
            take("TransportServer", &mut ts.metadata, ts.spec.address_pool.as_deref(), &ts.spec.virtual_address);
        }
    }
}

fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ManifestError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|source| ManifestError::Read { path: path.clone(), source })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

impl Manifests {
    fn add(&mut self, path: &Path, value: Value) -> Result<(), ManifestError> {
        let meta: TypeMeta = serde_json::from_value(value.clone()).map_err(|e| ManifestError::Object {
            path: path.to_path_buf(),
            kind: "object".into(),
            name: "?".into(),
            field: "metadata".into(),
            message: e.to_string(),
        })?;
        if meta.kind.ends_with("List") {
            for item in meta.items.unwrap_or_default() {
                self.add(path, item)?;
            }
            return Ok(());
        }
        match meta.kind.as_str() {
            "VirtualServer" => {
                let vs: VirtualServer = typed(path, &meta, value)?;
                self.virtual_servers.push(vs);
            }
            "TransportServer" => {
                let ts: TransportServer = typed(path, &meta, value)?;
                self.transport_servers.push(ts);
            }
            "Secret" => {
                let mut secret: k8s_openapi::api::core::v1::Secret = typed(path, &meta, value)?;
                secret.metadata.namespace.get_or_insert_with(|| "default".into());
                self.cluster.add_secret(secret);
            }
            "BigIpAddressPool" => self.address_pools.push(typed(path, &meta, value)?),
            "BigIpListenerGroup" => self.cluster.add_listener_group(typed(path, &meta, value)?),
            "BigIpPolicy" => {
                let mut policy: crate::crd::BigIpPolicy = typed(path, &meta, value)?;
                policy.metadata.namespace.get_or_insert_with(|| "default".into());
                self.cluster.add_policy(policy);
            }
            "ReferenceGrant" => {
                let mut grant: crate::crd::ReferenceGrant = typed(path, &meta, value)?;
                grant.metadata.namespace.get_or_insert_with(|| "default".into());
                self.cluster.add_reference_grant(grant);
            }
            "Service" => {
                let mut full: k8s_openapi::api::core::v1::Service = typed(path, &meta, value.clone())?;
                if full.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
                    full.metadata.namespace.get_or_insert_with(|| "default".into());
                    self.load_balancer_services.push(full);
                }
                let mut svc: ServiceView = typed(path, &meta, value)?;
                svc.metadata.namespace.get_or_insert_with(|| "default".into());
                self.cluster.add_service(svc);
            }
            "EndpointSlice" => {
                let mut slice: EndpointSliceView = typed(path, &meta, value)?;
                slice.metadata.namespace.get_or_insert_with(|| "default".into());
                self.cluster.add_endpoint_slice(slice);
            }
            "Node" => self.cluster.add_node(typed(path, &meta, value)?),
            "ConfigMap" => {
                let mut cm: k8s_openapi::api::core::v1::ConfigMap = typed(path, &meta, value)?;
                let legacy =
                    cm.metadata.labels.as_ref().and_then(|l| l.get("f5type")).is_some_and(|t| t == "virtual-server");
                if !legacy {
                    self.ignored.push(format!("ConfigMap {}", object_name(&meta)));
                    return Ok(());
                }
                cm.metadata.namespace.get_or_insert_with(|| "default".into());
                let translation =
                    crate::legacy::configmap::translate_config_map(&cm).map_err(|e| ManifestError::Object {
                        path: path.to_path_buf(),
                        kind: meta.kind.clone(),
                        name: object_name(&meta),
                        field: "data.data".into(),
                        message: e.to_string(),
                    })?;
                match &translation.object {
                    crate::legacy::Translated::VirtualServer(vs) => self.virtual_servers.push(vs.as_ref().clone()),
                    crate::legacy::Translated::TransportServer(ts) => self.transport_servers.push(ts.as_ref().clone()),
                }
                self.legacy.push(LegacySource {
                    source: format!("ConfigMap {}", object_name(&meta)),
                    objects: vec![translation.object],
                    warnings: translation.warnings,
                });
            }
            "Ingress" => {
                let object_error = |message: String| ManifestError::Object {
                    path: path.to_path_buf(),
                    kind: meta.kind.clone(),
                    name: object_name(&meta),
                    field: "-".into(),
                    message,
                };
                let mut ingress =
                    crate::legacy::ingress::ingress_from_manifest(&value).map_err(|e| object_error(e.to_string()))?;
                ingress.metadata.namespace.get_or_insert_with(|| "default".into());
                let translation =
                    crate::legacy::ingress::translate_ingress(&ingress).map_err(|e| object_error(e.to_string()))?;
                self.virtual_servers.extend(translation.virtual_servers.iter().cloned());
                self.legacy.push(LegacySource {
                    source: format!("Ingress {}", object_name(&meta)),
                    objects: translation
                        .virtual_servers
                        .into_iter()
                        .map(|vs| crate::legacy::Translated::VirtualServer(Box::new(vs)))
                        .collect(),
                    warnings: translation.warnings,
                });
            }
            other => self.ignored.push(format!("{other} {}", object_name(&meta))),
        }
        Ok(())
    }
}

fn object_name(meta: &TypeMeta) -> String {
    let name = meta.metadata.as_ref().and_then(|m| m.name.clone()).unwrap_or_else(|| "<unnamed>".into());
    match meta.metadata.as_ref().and_then(|m| m.namespace.clone()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name,
    }
}

/// Deserialises an object, naming the field that is wrong on failure.
fn typed<T: DeserializeOwned>(path: &Path, meta: &TypeMeta, value: Value) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| ManifestError::Object {
        path: path.to_path_buf(),
        kind: meta.kind.clone(),
        name: object_name(meta),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{key}: {message}")]
    Rejected { key: String, message: String },
    #[error("the rendered declaration does not validate against the AS3 {version} schema:\n  {}", violations.join("\n  "))]
    Schema { version: &'static str, violations: Vec<String> },
    #[error(transparent)]
    SchemaUnavailable(#[from] crate::as3::schema::SchemaError),
}

/// What `render` produced: the AS3 request and warnings about unresolved references.
#[derive(Debug)]
pub struct Rendered {
    pub declaration: Value,
    pub warnings: Vec<String>,
}

/// Renders manifests into the AS3 request the operator would post, validated against the
/// AS3 schema, its tenants labelled as `owner`'s. Objects the operator would refuse are errors
/// here.
pub fn render_manifests(
    manifests: &Manifests,
    defaults: &ModelDefaults,
    owner: &Ownership,
) -> Result<Rendered, RenderError> {
    let fleet =
        build_fleet(manifests.virtual_servers.iter(), manifests.transport_servers.iter(), &manifests.cluster, defaults);
    let mut warnings = Vec::new();
    for (key, outcome) in &fleet.outcomes {
        match outcome {
            AppOutcome::Invalid(e) => {
                return Err(RenderError::Rejected { key: key.to_string(), message: e.to_string() })
            }
            AppOutcome::AddressConflict { listener, holder } => {
                return Err(RenderError::Rejected {
                    key: key.to_string(),
                    message: format!("{listener} is already used by {holder}"),
                })
            }
            AppOutcome::RouteConflict { route, holder } => {
                return Err(RenderError::Rejected {
                    key: key.to_string(),
                    message: format!("{route} is already served by {holder}"),
                })
            }
            AppOutcome::Blocked { unresolved, .. } => {
                return Err(RenderError::Rejected {
                    key: key.to_string(),
                    message: unresolved.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                })
            }
            AppOutcome::Included { unresolved, .. } => {
                warnings.extend(unresolved.iter().map(|u: &UnresolvedRef| format!("{key}: {u} (pool left empty)")));
            }
        }
    }
    for legacy in &manifests.legacy {
        warnings.extend(legacy.warnings.iter().map(|w| format!("{}: {w}", legacy.source)));
    }
    let tenants: BTreeMap<String, Value> =
        fleet.partitions.iter().map(|(name, apps)| (name.clone(), render_tenant(apps, owner))).collect();
    let declaration = render_request(&tenants);
    let violations = crate::as3::schema::validate_declaration(&declaration)?;
    if !violations.is_empty() {
        return Err(RenderError::Schema {
            version: crate::as3::schema::AS3_SCHEMA_VERSION,
            violations: violations.iter().take(10).map(ToString::to_string).collect(),
        });
    }
    Ok(Rendered { declaration, warnings })
}
