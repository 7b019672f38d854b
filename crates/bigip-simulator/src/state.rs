//! The simulator's shared state: what AS3 has deployed, the change history, request counters,
//! and the token, fault and task stores; plus the state file that makes a configuration
//! survive a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use as3_rules::schema::AS3_SCHEMA_VERSION;

use super::auth::TokenStore;
use super::catalog::DeviceCatalog;
use super::checks::{ListenerIndex, RouteDomains};
use super::declaration::{declared_tenants, Change, Working};
use super::faults::{FaultState, Faults};
use super::live::LiveEdits;
use super::model::{self, PoolMemberView, Tenant, Tenants, VirtualServerView};
use super::net_config::{
    ArpEntry, BgpInstance, FdbRecord, NetConfig, PrefixList, RouteMap, SelfIp, Tunnel, VxlanProfile,
};
use super::tasks::TaskStore;
use super::timefmt::epoch_millis;

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it: every critical
/// section here leaves the data consistent, so a poisoned lock must not take the server down.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One accepted change to a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    /// 1, 2, 3, ... in the order changes were applied.
    pub seq: u64,
    pub tenant: String,
    pub action: ChangeAction,
    pub applications_before: Vec<String>,
    pub applications_after: Vec<String>,
    /// The `User-Agent` of the request that made the change, `None` when it sent none. Clients
    /// that share one BIG-IP user (operator replicas) tell themselves apart this way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Wall-clock time the change was applied, in milliseconds since the Unix epoch; the
    /// changes of one request share it.
    pub at_unix_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeAction {
    /// The tenant was created or its content replaced by a declaration.
    Deployed,
    /// The tenant was deleted.
    Deleted,
    /// Applications were created or replaced through the per-application API.
    ApplicationsDeployed,
    /// An Application was deleted through the per-application API (the tenant goes with its
    /// last Application).
    ApplicationDeleted,
}

/// Declaration-level properties of the last change (`schemaVersion`, `id`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct DeclarationMeta {
    schema_version: Option<String>,
    id: Option<String>,
    label: Option<String>,
    remark: Option<String>,
}

impl DeclarationMeta {
    pub(super) fn from_adc(adc: &Map<String, Value>) -> Self {
        let text = |key: &str| adc.get(key).and_then(Value::as_str).map(str::to_owned);
        Self { schema_version: text("schemaVersion"), id: text("id"), label: text("label"), remark: text("remark") }
    }

    fn update_from(&mut self, newer: Self) {
        let Self { schema_version, id, label, remark } = newer;
        if schema_version.is_some() {
            self.schema_version = schema_version;
        }
        if id.is_some() {
            self.id = id;
        }
        if label.is_some() {
            self.label = label;
        }
        if remark.is_some() {
            self.remark = remark;
        }
    }
}

/// What AS3 has deployed.
#[derive(Clone, Debug, Default)]
pub(super) struct Deployed {
    pub(super) tenants: Tenants,
    /// The destinations the virtual servers of `tenants` hold.
    listeners: ListenerIndex,
    meta: DeclarationMeta,
}

impl Deployed {
    /// The declaration `GET /declare` shows, restricted to the tenants `include` accepts.
    pub(super) fn declaration(&self, include: impl Fn(&str) -> bool) -> Value {
        let mut adc = self.declaration_header();
        for (name, tenant) in self.tenants.iter().filter(|(name, _)| include(name)) {
            adc.insert(name.clone(), tenant.to_value());
        }
        Value::Object(adc)
    }

    /// The declaration-level properties alone, as AS3 echoes them after a delete.
    pub(super) fn declaration_header(&self) -> Map<String, Value> {
        let mut adc = Map::new();
        adc.insert("class".to_owned(), json!("ADC"));
        adc.insert(
            "schemaVersion".to_owned(),
            json!(self.meta.schema_version.as_deref().unwrap_or(AS3_SCHEMA_VERSION)),
        );
        adc.insert("id".to_owned(), json!(self.meta.id.as_deref().unwrap_or("autogen_bigip_simulator")));
        adc.insert("updateMode".to_owned(), json!("selective"));
        if let Some(label) = &self.meta.label {
            adc.insert("label".to_owned(), json!(label));
        }
        if let Some(remark) = &self.meta.remark {
            adc.insert("remark".to_owned(), json!(remark));
        }
        adc
    }

    fn from_declaration(document: &Value) -> Option<Self> {
        let adc = match document.get("class").and_then(Value::as_str)? {
            "AS3" => document.get("declaration")?.as_object()?,
            "ADC" => document.as_object()?,
            _ => return None,
        };
        let tenants: Tenants =
            declared_tenants(adc).map(|(name, tenant)| (name.clone(), Arc::new(Tenant::from_value(tenant)))).collect();
        let listeners = ListenerIndex::of(&tenants);
        Some(Self { tenants, listeners, meta: DeclarationMeta::from_adc(adc) })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("it is not JSON: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("it is not an AS3 declaration (class ADC or AS3)")]
    NotADeclaration,
    #[error("it is not a network configuration written by the simulator: {0}")]
    NotANetConfig(#[source] serde_json::Error),
}

/// Where the network configuration (`/mgmt/tm/net`) is kept beside the state file, which holds
/// an AS3 declaration and nothing else: `state.json` → `state.net.json`.
pub(super) fn net_state_file(state_file: &Path) -> PathBuf {
    state_file.with_extension("net.json")
}

/// Loads the network configuration kept beside a state file; `Ok(None)` when there is none.
pub(super) fn load_net_state_file(path: &Path) -> Result<Option<NetConfig>, StateFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StateFileError::Read(error)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(StateFileError::NotANetConfig)
}

/// Writes `bytes` to `path` through a temporary file, so a reader never sees half a file.
async fn write_atomically(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, path).await
}

/// Loads the deployed configuration from a state file; `Ok(None)` when there is no file yet.
pub(super) fn load_state_file(path: &Path) -> Result<Option<Deployed>, StateFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StateFileError::Read(error)),
    };
    let document: Value = serde_json::from_slice(&bytes).map_err(StateFileError::Parse)?;
    Deployed::from_declaration(&document).map(Some).ok_or(StateFileError::NotADeclaration)
}

/// Settings fixed for the life of a simulator.
pub(super) struct Settings {
    pub(super) username: String,
    pub(super) password: String,
    pub(super) token_ttl: Duration,
    pub(super) as3_processing_delay: Duration,
    pub(super) as3_delay_per_request_application: Duration,
    pub(super) as3_delay_per_tenant_application: Duration,
    pub(super) as3_version: String,
    pub(super) per_application_api: bool,
    pub(super) state_file: Option<PathBuf>,
}

/// The change history keeps this many records (the oldest are dropped): a long benchmark or
/// soak run must not grow the simulator without bound.
pub const HISTORY_LIMIT: usize = 20_000;

struct Store {
    deployed: Deployed,
    /// The latest changes, at most [`HISTORY_LIMIT`] (a little more between trims).
    history: Vec<ChangeRecord>,
    /// Changes recorded so far, including those dropped from `history`.
    changes: u64,
}

pub(super) struct Shared {
    pub(super) settings: Settings,
    pub(super) faults: FaultState,
    pub(super) tokens: Mutex<TokenStore>,
    pub(super) tasks: Mutex<TaskStore>,
    store: Mutex<Store>,
    net: Mutex<NetConfig>,
    /// The device's own objects and those created through iControl REST.
    device: Mutex<DeviceCatalog>,
    /// Edits of AS3's objects made on the device itself (not in the stored declaration).
    live: Mutex<LiveEdits>,
    /// Held while the network configuration is written, so the last write has the last state.
    net_persist: tokio::sync::Mutex<()>,
    declare_in_progress: AtomicBool,
    declare_posts: AtomicU64,
    declare_deletes: AtomicU64,
    pub(super) counts: RequestCounters,
}

/// Counters of requests that tests assert on (a client that re-logs in on every request, or
/// never polls its task, passes a test that only checks the end state).
#[derive(Default)]
pub(super) struct RequestCounters {
    pub(super) logins: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) task_polls: AtomicU64,
    pub(super) declare_bytes: AtomicU64,
    /// Declaration POSTs received and not yet answered (latency fault included).
    pub(super) declares_in_flight: AtomicU64,
    /// Declaration POSTs whose client went away before the answer.
    pub(super) declares_abandoned: AtomicU64,
}

/// A snapshot of [`RequestCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Successful `POST /mgmt/shared/authn/login`.
    pub logins: u64,
    /// Requests answered 401 (expired or unknown token, bad credentials).
    pub unauthorized: u64,
    /// `GET /mgmt/shared/appsvcs/task/{id}`.
    pub task_polls: u64,
    /// Bytes of request bodies POSTed to `/mgmt/shared/appsvcs/declare…`.
    pub declare_bytes: u64,
}

/// Counters for `GET /simulator/stats`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Stats {
    /// POSTs to `/declare…`, whatever their result.
    declare_requests: u64,
    /// DELETEs to `/declare…`, whatever their result.
    delete_requests: u64,
    tenants: usize,
    changes: usize,
    declaration_in_progress: bool,
}

/// A cheap, cloneable handle on a running simulator's state.
#[derive(Clone)]
pub struct SimulatorState {
    shared: Arc<Shared>,
}

impl fmt::Debug for SimulatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorState").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// Held while a declaration is processed; other declare requests get 503 meanwhile.
pub(super) struct DeclareGuard {
    shared: Arc<Shared>,
}

impl Drop for DeclareGuard {
    fn drop(&mut self) {
        self.shared.declare_in_progress.store(false, Ordering::SeqCst);
    }
}

impl SimulatorState {
    pub(super) fn new(settings: Settings, faults: Faults, deployed: Deployed, net: NetConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                faults: FaultState::new(faults),
                tokens: Mutex::new(TokenStore::default()),
                tasks: Mutex::new(TaskStore::default()),
                store: Mutex::new(Store { deployed, history: Vec::new(), changes: 0 }),
                net: Mutex::new(net),
                device: Mutex::new(DeviceCatalog::standard()),
                live: Mutex::new(LiveEdits::default()),
                net_persist: tokio::sync::Mutex::new(()),
                declare_in_progress: AtomicBool::new(false),
                declare_posts: AtomicU64::new(0),
                declare_deletes: AtomicU64::new(0),
                counts: RequestCounters::default(),
            }),
        }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Tenant name → Tenant object as last deployed.
    pub fn tenants(&self) -> BTreeMap<String, Value> {
        let store = lock(&self.shared.store);
        store.deployed.tenants.iter().map(|(name, tenant)| (name.clone(), tenant.to_value())).collect()
    }

    /// The deployed state to plan a request against: a copy sharing every tenant.
    /// A copy of the device's objects (small: the standard `/Common` objects and what tests add).
    pub(super) fn device(&self) -> DeviceCatalog {
        lock(&self.shared.device).clone()
    }

    pub(super) fn with_device_mut<R>(&self, change: impl FnOnce(&mut DeviceCatalog) -> R) -> R {
        change(&mut lock(&self.shared.device))
    }

    pub(super) fn with_live_mut<R>(&self, change: impl FnOnce(&mut LiveEdits) -> R) -> R {
        change(&mut lock(&self.shared.live))
    }

    /// The virtual servers the device serves: AS3's, with the edits made on the device.
    pub(super) fn live_virtuals(&self) -> Vec<model::LtmVirtual> {
        let virtuals = self.with_deployed(|deployed| model::all_virtuals(&deployed.tenants));
        lock(&self.shared.live).apply_to_virtuals(virtuals)
    }

    /// The pools the device serves: AS3's, with the edits made on the device.
    pub(super) fn live_pools(&self) -> Vec<model::LtmPool> {
        let pools = self.with_deployed(|deployed| model::all_pools(&deployed.tenants));
        lock(&self.shared.live).apply_to_pools(pools)
    }

    /// Drops the device-side edits of the Applications a request deployed or removed (AS3 puts
    /// their objects back as declared); the tenants that had any.
    pub(super) fn repair_live(&self, applications: &[(String, String)]) -> BTreeSet<String> {
        let mut live = lock(&self.shared.live);
        if live.is_empty() {
            return BTreeSet::new();
        }
        applications
            .iter()
            .filter(|(tenant, application)| live.repair(tenant, application))
            .map(|(tenant, _)| tenant.clone())
            .collect()
    }

    pub(super) fn working(&self) -> Working {
        let route_domains = RouteDomains::from_device(&lock(&self.shared.device).list("net/route-domain"));
        let store = lock(&self.shared.store);
        Working { tenants: store.deployed.tenants.clone(), listeners: store.deployed.listeners.clone(), route_domains }
    }

    /// Applications deployed over all tenants (counted in place, nothing copied).
    pub fn application_count(&self) -> usize {
        self.with_deployed(|deployed| deployed.tenants.values().map(|tenant| tenant.application_count()).sum())
    }

    /// The Application `application` of `tenant` as deployed.
    pub fn application(&self, tenant: &str, application: &str) -> Option<Value> {
        self.with_deployed(|deployed| deployed.tenants.get(tenant)?.application(application).cloned())
    }

    /// Every virtual server AS3 has created, as BIG-IP would list them.
    /// The virtual servers the device serves (AS3's, with edits made on the device).
    pub fn virtual_servers(&self) -> Vec<VirtualServerView> {
        self.live_virtuals().into_iter().map(|v| v.view).collect()
    }

    /// The members of pool `/tenant/application/pool` as the device serves them (edits made on
    /// the device included), or `None` when there is no such pool.
    pub fn pool_members(&self, tenant: &str, application: &str, pool: &str) -> Option<Vec<PoolMemberView>> {
        let found = self.with_deployed(|deployed| {
            let tenant_value = deployed.tenants.get(tenant)?;
            model::tenant_pools(tenant, tenant_value)
                .into_iter()
                .find(|candidate| candidate.application == application && candidate.name == pool)
        })?;
        let live = lock(&self.shared.live).apply_to_pool(found)?;
        Some(live.members.iter().map(model::LtmPoolMember::view).collect())
    }

    /// The VXLAN profiles under `/mgmt/tm/net/tunnels/vxlan`, by name.
    pub fn vxlan_profiles(&self) -> Vec<VxlanProfile> {
        self.with_net(NetConfig::list)
    }

    /// The tunnels under `/mgmt/tm/net/tunnels/tunnel`, by name.
    pub fn tunnels(&self) -> Vec<Tunnel> {
        self.with_net(NetConfig::list)
    }

    /// The FDB records of tunnel `/Common/<tunnel>` in the order last written, or `None` when
    /// there is no such tunnel.
    pub fn fdb_records(&self, tunnel: &str) -> Option<Vec<FdbRecord>> {
        self.with_net(|net| net.fdb_records(tunnel).ok())
    }

    /// The self IPs under `/mgmt/tm/net/self`, by name.
    pub fn self_ips(&self) -> Vec<SelfIp> {
        self.with_net(NetConfig::list)
    }

    /// The ARP entries under `/mgmt/tm/net/arp`, by name.
    pub fn arp_entries(&self) -> Vec<ArpEntry> {
        self.with_net(NetConfig::list)
    }

    /// The BGP instances of route domain 0 under `/mgmt/tm/net/routing/bgp`, by name.
    pub fn bgp(&self) -> Vec<BgpInstance> {
        self.with_net(NetConfig::list)
    }

    /// The prefix lists under `/mgmt/tm/net/routing/prefix-list`, by name.
    pub fn prefix_lists(&self) -> Vec<PrefixList> {
        self.with_net(NetConfig::list)
    }

    /// The route maps under `/mgmt/tm/net/routing/route-map`, by name.
    pub fn route_maps(&self) -> Vec<RouteMap> {
        self.with_net(NetConfig::list)
    }

    /// The latest accepted changes (at most about [`HISTORY_LIMIT`]), oldest first.
    pub fn history(&self) -> Vec<ChangeRecord> {
        lock(&self.shared.store).history.clone()
    }

    /// The accepted changes after the one numbered `seq`, oldest first (those still kept).
    pub fn history_since(&self, seq: u64) -> Vec<ChangeRecord> {
        let store = lock(&self.shared.store);
        let start = store.history.partition_point(|record| record.seq <= seq);
        store.history[start..].to_vec()
    }

    /// How many changes were accepted so far (also those no longer in the history).
    pub fn change_count(&self) -> u64 {
        lock(&self.shared.store).changes
    }

    /// POSTs to `/mgmt/shared/appsvcs/declare…` received, whatever their result.
    pub fn request_counts(&self) -> RequestCounts {
        let counts = &self.shared.counts;
        RequestCounts {
            logins: counts.logins.load(Ordering::SeqCst),
            unauthorized: counts.unauthorized.load(Ordering::SeqCst),
            task_polls: counts.task_polls.load(Ordering::SeqCst),
            declare_bytes: counts.declare_bytes.load(Ordering::SeqCst),
        }
    }

    /// Declaration POSTs received and not answered yet (waiting out a latency fault, or being
    /// processed).
    pub fn declares_in_flight(&self) -> u64 {
        self.shared.counts.declares_in_flight.load(Ordering::SeqCst)
    }

    /// Declaration POSTs whose client went away before they were answered (a client killed
    /// mid-request).
    pub fn declares_abandoned(&self) -> u64 {
        self.shared.counts.declares_abandoned.load(Ordering::SeqCst)
    }

    pub fn declare_count(&self) -> u64 {
        self.shared.declare_posts.load(Ordering::SeqCst)
    }

    /// The faults currently in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults.snapshot()
    }

    /// The BIG-IP release the simulator claims to be (`tmosVersion` fault, else the default).
    pub fn tmos_version(&self) -> String {
        self.faults().tmos_version.unwrap_or_else(|| super::faults::DEFAULT_TMOS_VERSION.to_owned())
    }

    /// Whether `/mgmt/tm/net/routing` exists on the claimed release (14.1 and later).
    pub(super) fn has_net_routing(&self) -> bool {
        use as3_rules::version::{BigIpVersion, MINIMUM_FOR_BGP};
        BigIpVersion::parse(&self.tmos_version()).is_none_or(|v| v.at_least(MINIMUM_FOR_BGP))
    }

    /// Installs `faults`; `expire_tokens_now` expires every token issued so far.
    pub(super) fn apply_faults(&self, faults: Faults) {
        if self.shared.faults.replace(faults) {
            lock(&self.shared.tokens).expire_all();
        }
    }

    pub(super) fn with_deployed<R>(&self, read: impl FnOnce(&Deployed) -> R) -> R {
        read(&lock(&self.shared.store).deployed)
    }

    pub(super) fn with_net<R>(&self, read: impl FnOnce(&NetConfig) -> R) -> R {
        read(&lock(&self.shared.net))
    }

    pub(super) fn with_net_mut<R>(&self, change: impl FnOnce(&mut NetConfig) -> R) -> R {
        change(&mut lock(&self.shared.net))
    }

    /// Writes the network configuration beside the state file, if there is one.
    pub(super) async fn persist_net(&self) {
        let Some(state_file) = &self.shared.settings.state_file else { return };
        let path = net_state_file(state_file);
        let _writing = self.shared.net_persist.lock().await;
        let bytes = match self.with_net(serde_json::to_vec_pretty) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "cannot serialize the simulator network configuration");
                return;
            }
        };
        if let Err(error) = write_atomically(&path, bytes).await {
            tracing::error!(%error, path = %path.display(), "cannot write the simulator network state file");
        }
    }

    pub(super) fn count_declare_post(&self) {
        self.shared.declare_posts.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn count_declare_bytes(&self, bytes: usize) {
        self.shared.counts.declare_bytes.fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    pub(super) fn count_declare_delete(&self) {
        self.shared.declare_deletes.fetch_add(1, Ordering::SeqCst);
    }

    /// Claims the right to process a declaration, or `None` while another one is processed.
    pub(super) fn try_begin_declare(&self) -> Option<DeclareGuard> {
        self.shared
            .declare_in_progress
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| DeclareGuard { shared: Arc::clone(&self.shared) })
    }

    /// Installs the tenants of a plan and records its changes as made by `client` (the
    /// request's `User-Agent`). The caller holds the [`DeclareGuard`], so nothing else changed
    /// the tenants since the plan was made.
    pub(super) fn commit(
        &self,
        _guard: &DeclareGuard,
        working: Working,
        changes: Vec<Change>,
        meta: DeclarationMeta,
        client: Option<&str>,
    ) {
        if changes.is_empty() {
            return;
        }
        let mut store = lock(&self.shared.store);
        let at_unix_ms = epoch_millis(SystemTime::now());
        store.deployed.tenants = working.tenants;
        store.deployed.listeners = working.listeners;
        store.deployed.meta.update_from(meta);
        for change in changes {
            store.changes += 1;
            let seq = store.changes;
            store.history.push(ChangeRecord {
                seq,
                tenant: change.tenant,
                action: change.action,
                applications_before: change.applications_before,
                applications_after: change.applications_after,
                client: client.map(str::to_owned),
                at_unix_ms,
            });
        }
        // Trimmed in batches, so the copy is amortised over many changes.
        if store.history.len() > HISTORY_LIMIT + HISTORY_LIMIT / 10 {
            let excess = store.history.len() - HISTORY_LIMIT;
            store.history.drain(..excess);
        }
    }

    /// Writes the deployed configuration to the state file, if there is one. The file is an
    /// AS3 declaration of every tenant, replaced atomically.
    pub(super) async fn persist(&self, _guard: &DeclareGuard) {
        let Some(path) = self.shared.settings.state_file.clone() else { return };
        let document = self.with_deployed(|deployed| deployed.declaration(|_| true));
        let bytes = match serde_json::to_vec_pretty(&document) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "cannot serialize the simulator state");
                return;
            }
        };
        if let Err(error) = write_atomically(&path, bytes).await {
            tracing::error!(%error, path = %path.display(), "cannot write the simulator state file");
        }
    }

    pub(super) fn stats(&self) -> Stats {
        let (tenants, changes) = {
            let store = lock(&self.shared.store);
            (store.deployed.tenants.len(), usize::try_from(store.changes).unwrap_or(usize::MAX))
        };
        Stats {
            declare_requests: self.shared.declare_posts.load(Ordering::SeqCst),
            delete_requests: self.shared.declare_deletes.load(Ordering::SeqCst),
            tenants,
            changes,
            declaration_in_progress: self.shared.declare_in_progress.load(Ordering::SeqCst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trips_through_a_declaration() {
        let mut deployed = Deployed::default();
        deployed.tenants.insert(
            "T".to_owned(),
            Arc::new(Tenant::from_value(&json!({"class": "Tenant", "A": {"class": "Application"}}))),
        );
        deployed.meta.update_from(DeclarationMeta::from_adc(
            json!({"schemaVersion": "3.50.0", "id": "x"}).as_object().expect("object"),
        ));
        let document = deployed.declaration(|_| true);
        let restored = Deployed::from_declaration(&document).expect("a declaration");
        assert_eq!(restored.tenants, deployed.tenants);
        assert_eq!(restored.meta, deployed.meta);
    }

    #[test]
    fn missing_state_file_is_not_an_error() {
        let loaded = load_state_file(Path::new("/nonexistent/bigip-simulator-state.json"));
        assert!(matches!(loaded, Ok(None)));
    }
}
