//! The desired state of every partition, kept up to date incrementally from the watch caches.
//!
//! [`build_fleet`](crate::model::build_fleet) builds every object from scratch; that is the
//! reference. Here each object's build is kept with what it read from the cluster (the
//! Service, EndpointSlices, Secrets and — in nodeport mode — the nodes, as the exact cached
//! objects), and the watches report what changed as [`Dependency`] keys. An update looks only
//! at the objects that depend on a changed key (a reverse index from the recorded reads), builds
//! again those whose reads no longer hold, re-resolves the listener claims those builds touch
//! and re-renders their applications: the work follows the change, not the fleet. A change the
//! watches cannot name (a re-list, the periodic consistency check) checks every object, as
//! before. A property test checks the result equals `build_fleet` after random sequences of
//! changes, whichever way they are reported.
//!
//! The state handed out is a [`Snapshot`] of persistent maps ([`imbl`]): taking one after a
//! change shares everything but the changed paths, so it costs O(log N), not a copy of the
//! fleet. [`DesiredState`] adds a version counter bumped by the watches: while nothing the model
//! reads changed, every reconcile reuses the same snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::small_set::SmallSet;
use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use imbl::OrdMap;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::runtime::reflector::{ObjectRef, Store};

use super::partitions::PartitionApps;
use crate::as3::RenderedApplication;
use crate::crd::{TransportServer, VirtualServer};
use crate::model::fleet::{Built, ClaimOrder, Source};
use crate::model::{
    AppOutcome, ClusterView, DesiredApplication, Listener, ModelDefaults, ObjectKey, RouteClaim, SourceId, SourceKind,
    UnresolvedRef,
};

/// The desired state at one moment: the outcome for every object, and each partition's
/// applications (sorted by name) with their AS3 renderings.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    outcomes: OrdMap<SourceId, AppOutcome>,
    applications: OrdMap<String, Arc<Vec<Arc<DesiredApplication>>>>,
    rendered: OrdMap<String, PartitionApps>,
}

impl Snapshot {
    /// What the model decided for one object (None: not live, e.g. being deleted).
    pub fn outcome(&self, kind: SourceKind, key: &ObjectKey) -> Option<&AppOutcome> {
        self.outcomes.get(&SourceId { kind, key: key.clone() })
    }

    /// Every live object's outcome.
    pub fn outcomes(&self) -> impl Iterator<Item = (&SourceId, &AppOutcome)> {
        self.outcomes.iter()
    }

    /// The applications of `partition`, sorted by name.
    pub fn applications(&self, partition: &str) -> &[Arc<DesiredApplication>] {
        self.applications.get(partition).map(|apps| apps.as_slice()).unwrap_or(&[])
    }

    /// Every application of every partition.
    pub fn all_applications(&self) -> impl Iterator<Item = &Arc<DesiredApplication>> {
        self.applications.values().flat_map(|apps| apps.iter())
    }

    /// The partitions that have applications.
    pub fn partitions(&self) -> impl Iterator<Item = &String> {
        self.rendered.keys()
    }

    /// The rendered applications of `partition` (none when it has no application).
    pub fn rendered_partition(&self, partition: &str) -> PartitionApps {
        self.rendered.get(partition).cloned().unwrap_or_default()
    }

    /// The same state as the model's [`Fleet`] (for comparisons with the reference).
    #[cfg(test)]
    pub fn fleet(&self) -> crate::model::Fleet {
        crate::model::Fleet {
            partitions: self.applications.iter().map(|(p, apps)| (p.clone(), apps.as_ref().clone())).collect(),
            outcomes: self.outcomes.iter().map(|(id, outcome)| (id.clone(), outcome.clone())).collect(),
        }
    }
}

/// Something the desired state depends on, as the watches name a change of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// A VirtualServer or TransportServer itself.
    Object(SourceId),
    Service(ObjectKey),
    /// The EndpointSlices of a Service (the key is the Service's).
    Slices(ObjectKey),
    Secret(ObjectKey),
    /// What the model reads from the nodes.
    Nodes,
    /// The ReferenceGrants of a namespace.
    ReferenceGrants(String),
    /// A BigIpListenerGroup, by name.
    ListenerGroup(String),
    /// A BigIpPolicy.
    Policy(ObjectKey),
}

/// What changed since the last update: named dependencies, or everything.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    everything: bool,
    dependencies: HashSet<Dependency>,
}

impl Changes {
    /// Anything may have changed: every object is checked.
    #[cfg(test)]
    pub fn everything() -> Self {
        Self { everything: true, dependencies: HashSet::new() }
    }

    #[cfg(test)]
    pub fn of(dependencies: impl IntoIterator<Item = Dependency>) -> Self {
        Self { everything: false, dependencies: dependencies.into_iter().collect() }
    }

    pub fn add(&mut self, dependency: Dependency) {
        if !self.everything {
            self.dependencies.insert(dependency);
        }
    }

    pub fn add_everything(&mut self) {
        self.everything = true;
        self.dependencies.clear();
    }
}

/// One read a build made from the cluster, with the objects it got.
#[derive(Debug)]
enum Read {
    Service {
        namespace: String,
        name: String,
        found: Option<Arc<ServiceView>>,
    },
    Slices {
        namespace: String,
        service: String,
        found: Vec<Arc<EndpointSliceView>>,
    },
    /// What the model reads from the nodes, as a hash (heartbeats change nothing of it).
    Nodes(u64),
    Secret {
        namespace: String,
        name: String,
        found: Option<Arc<Secret>>,
    },
    ReferenceGrants {
        namespace: String,
        found: Vec<Arc<crate::crd::ReferenceGrant>>,
    },
    ListenerGroup {
        name: String,
        found: Option<Arc<crate::crd::BigIpListenerGroup>>,
    },
    Policy {
        namespace: String,
        name: String,
        found: Option<Arc<crate::crd::BigIpPolicy>>,
    },
}

fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// A hash of what the model reads from the nodes.
fn nodes_fingerprint(nodes: &[Arc<Node>]) -> u64 {
    let mut relevant: Vec<(&str, Option<u64>)> = nodes
        .iter()
        .map(|node| (node.metadata.name.as_deref().unwrap_or_default(), super::triggers::node_relevance(node)))
        .collect();
    relevant.sort_unstable();
    let mut hasher = DefaultHasher::new();
    relevant.hash(&mut hasher);
    hasher.finish()
}

fn key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey { namespace: namespace.to_string(), name: name.to_string() }
}

impl Read {
    /// Whether reading again gives the same objects. (Each read holds the objects it got, so an
    /// object's address cannot be reused by another while the comparison matters.)
    fn still_holds(&self, cluster: &dyn ClusterView, nodes_now: &mut Option<u64>) -> bool {
        match self {
            Self::Service { namespace, name, found } => same(found, &cluster.service(namespace, name)),
            Self::Secret { namespace, name, found } => same(found, &cluster.secret(namespace, name)),
            Self::Slices { namespace, service, found } => {
                let now = cluster.endpoint_slices(namespace, service);
                now.len() == found.len() && now.iter().zip(found).all(|(a, b)| Arc::ptr_eq(a, b))
            }
            Self::Nodes(fingerprint) => {
                *nodes_now.get_or_insert_with(|| nodes_fingerprint(&cluster.nodes())) == *fingerprint
            }
            Self::ReferenceGrants { namespace, found } => {
                let now = cluster.reference_grants(namespace);
                now.len() == found.len() && now.iter().zip(found).all(|(a, b)| Arc::ptr_eq(a, b))
            }
            Self::ListenerGroup { name, found } => same(found, &cluster.listener_group(name)),
            Self::Policy { namespace, name, found } => same(found, &cluster.policy(namespace, name)),
        }
    }

    /// The change that can make this read give something else.
    fn dependency(&self) -> Dependency {
        match self {
            Self::Service { namespace, name, .. } => Dependency::Service(key(namespace, name)),
            Self::Slices { namespace, service, .. } => Dependency::Slices(key(namespace, service)),
            Self::Secret { namespace, name, .. } => Dependency::Secret(key(namespace, name)),
            Self::Nodes(_) => Dependency::Nodes,
            Self::ReferenceGrants { namespace, .. } => Dependency::ReferenceGrants(namespace.clone()),
            Self::ListenerGroup { name, .. } => Dependency::ListenerGroup(name.clone()),
            Self::Policy { namespace, name, .. } => Dependency::Policy(key(namespace, name)),
        }
    }
}

/// A [`ClusterView`] that records every read.
struct RecordingView<'a> {
    inner: &'a dyn ClusterView,
    reads: Mutex<Vec<Read>>,
}

impl RecordingView<'_> {
    fn record(&self, read: Read) {
        self.reads.lock().unwrap_or_else(PoisonError::into_inner).push(read);
    }
}

impl ClusterView for RecordingView<'_> {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServiceView>> {
        let found = self.inner.service(namespace, name);
        self.record(Read::Service { namespace: namespace.into(), name: name.into(), found: found.clone() });
        found
    }

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSliceView>> {
        let found = self.inner.endpoint_slices(namespace, service);
        self.record(Read::Slices { namespace: namespace.into(), service: service.into(), found: found.clone() });
        found
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        let found = self.inner.nodes();
        self.record(Read::Nodes(nodes_fingerprint(&found)));
        found
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        let found = self.inner.secret(namespace, name);
        self.record(Read::Secret { namespace: namespace.into(), name: name.into(), found: found.clone() });
        found
    }

    fn reference_grants(&self, namespace: &str) -> Vec<Arc<crate::crd::ReferenceGrant>> {
        let found = self.inner.reference_grants(namespace);
        self.record(Read::ReferenceGrants { namespace: namespace.into(), found: found.clone() });
        found
    }

    fn listener_group(&self, name: &str) -> Option<Arc<crate::crd::BigIpListenerGroup>> {
        let found = self.inner.listener_group(name);
        self.record(Read::ListenerGroup { name: name.into(), found: found.clone() });
        found
    }

    fn policy(&self, namespace: &str, name: &str) -> Option<Arc<crate::crd::BigIpPolicy>> {
        let found = self.inner.policy(namespace, name);
        self.record(Read::Policy { namespace: namespace.into(), name: name.into(), found: found.clone() });
        found
    }
}

/// A VirtualServer or TransportServer as the cache holds it.
#[derive(Debug, Clone)]
pub enum SourceObject {
    Virtual(Arc<VirtualServer>),
    Transport(Arc<TransportServer>),
}

impl SourceObject {
    fn source(&self) -> Source<'_> {
        match self {
            Self::Virtual(vs) => Source::Virtual(vs),
            Self::Transport(ts) => Source::Transport(ts),
        }
    }

    /// The same object version (the caches replace an object's Arc on every change).
    fn same_version(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Virtual(a), Self::Virtual(b)) => Arc::ptr_eq(a, b) || a.spec_and_meta_eq(b),
            (Self::Transport(a), Self::Transport(b)) => Arc::ptr_eq(a, b) || a.spec_and_meta_eq(b),
            _ => false,
        }
    }
}

/// Whether two versions of an object build the same application: a build reads only the
/// object's namespace, name and spec, so versions that differ elsewhere (the status, after the
/// operator's own status writes) need not be built again.
trait SpecAndMeta {
    fn spec_and_meta_eq(&self, other: &Self) -> bool;
}

impl SpecAndMeta for VirtualServer {
    fn spec_and_meta_eq(&self, other: &Self) -> bool {
        self.metadata.uid == other.metadata.uid
            && self.spec == other.spec
            && address_annotations(&self.metadata) == address_annotations(&other.metadata)
    }
}

impl SpecAndMeta for TransportServer {
    fn spec_and_meta_eq(&self, other: &Self) -> bool {
        self.metadata.uid == other.metadata.uid
            && self.spec == other.spec
            && address_annotations(&self.metadata) == address_annotations(&other.metadata)
    }
}

/// What the model reads from an object's annotations: the address allocated from
/// `spec.addressPool`, or why there is none.
fn address_annotations(meta: &kube::api::ObjectMeta) -> [Option<&String>; 2] {
    use crate::model::load_balancer::{ADDRESS_PROBLEM_ANNOTATION, ALLOCATED_ANNOTATION};
    let annotations = meta.annotations.as_ref();
    [ALLOCATED_ANNOTATION, ADDRESS_PROBLEM_ANNOTATION].map(|key| annotations.and_then(|a| a.get(key)))
}

/// Where the VirtualServers and TransportServers are read from: every one, or one by id.
pub trait SourceObjects {
    fn all(&self) -> Vec<SourceObject>;
    fn get(&self, id: &SourceId) -> Option<SourceObject>;
}

/// The controllers' caches.
pub struct Stores<'a> {
    pub virtual_servers: &'a Store<VirtualServer>,
    pub transport_servers: &'a Store<TransportServer>,
}

impl SourceObjects for Stores<'_> {
    fn all(&self) -> Vec<SourceObject> {
        let virtuals = self.virtual_servers.state().into_iter().map(SourceObject::Virtual);
        virtuals.chain(self.transport_servers.state().into_iter().map(SourceObject::Transport)).collect()
    }

    fn get(&self, id: &SourceId) -> Option<SourceObject> {
        let (namespace, name) = (id.key.namespace.as_str(), id.key.name.as_str());
        match id.kind {
            SourceKind::VirtualServer => {
                self.virtual_servers.get(&ObjectRef::new(name).within(namespace)).map(SourceObject::Virtual)
            }
            SourceKind::TransportServer => {
                self.transport_servers.get(&ObjectRef::new(name).within(namespace)).map(SourceObject::Transport)
            }
        }
    }
}

/// Objects given as lists (the tests' worlds).
#[cfg(test)]
pub struct Listed<'a> {
    pub virtual_servers: &'a [Arc<VirtualServer>],
    pub transport_servers: &'a [Arc<TransportServer>],
}

#[cfg(test)]
impl SourceObjects for Listed<'_> {
    fn all(&self) -> Vec<SourceObject> {
        let virtuals = self.virtual_servers.iter().cloned().map(SourceObject::Virtual);
        virtuals.chain(self.transport_servers.iter().cloned().map(SourceObject::Transport)).collect()
    }

    fn get(&self, id: &SourceId) -> Option<SourceObject> {
        self.all().into_iter().find(|object| object.source().id() == *id)
    }
}

struct Entry {
    object: SourceObject,
    order: ClaimOrder,
    reads: Vec<Read>,
    built: Built,
    /// Rendered when first included; dropped with the build.
    rendered: Option<Arc<RenderedApplication>>,
    /// Holds its listeners: no older object that holds its own claims one of them.
    holds: bool,
}

impl Entry {
    fn listeners(&self) -> Vec<Listener> {
        match &self.built {
            Built::Application { application, .. } => application.claims(),
            Built::Invalid(_) => Vec::new(),
        }
    }

    fn routes(&self) -> Vec<RouteClaim> {
        match &self.built {
            Built::Application { application, .. } => application.route_claims(),
            Built::Invalid(_) => Vec::new(),
        }
    }
}

/// An included application: its build and rendering.
#[derive(Clone)]
struct Member {
    application: Arc<DesiredApplication>,
    rendered: Arc<RenderedApplication>,
}

/// What an update changed, to be resolved: listener claims to look at again and objects whose
/// outcome must be decided again.
#[derive(Default)]
struct Pending {
    listeners: HashSet<Listener>,
    routes: HashSet<RouteClaim>,
    objects: BTreeSet<ClaimOrder>,
    partitions: BTreeSet<String>,
}

/// Per-object builds kept across updates (see the module documentation).
#[derive(Default)]
pub struct IncrementalFleet {
    initialised: bool,
    entries: HashMap<SourceId, Entry>,
    /// Which objects read what: the objects to check when a dependency changes.
    dependents: HashMap<Dependency, SmallSet<SourceId>>,
    /// The objects whose application claims each listener, in claim order.
    claimants: HashMap<Listener, SmallSet<ClaimOrder>>,
    /// The objects whose application claims each host and path of a listener group.
    route_claimants: HashMap<RouteClaim, SmallSet<ClaimOrder>>,
    /// Each listener group's merged application, with the members it was merged from.
    merged_groups: HashMap<String, MergedGroup>,
    /// Included applications by partition, sorted by name (then claim order).
    members: HashMap<String, BTreeMap<(String, ClaimOrder), Member>>,
    outcomes: OrdMap<SourceId, AppOutcome>,
    applications: OrdMap<String, Arc<Vec<Arc<DesiredApplication>>>>,
    rendered: OrdMap<String, PartitionApps>,
    /// Objects looked at by the last update.
    pub checked_last: usize,
    /// Objects built (not reused) by the last update.
    pub built_last: usize,
    /// Applications rendered by the last update.
    pub rendered_last: usize,
}

impl IncrementalFleet {
    /// The desired state after `changes`, reading objects from `sources` and the rest from
    /// `cluster`; equal to [`build_fleet`](crate::model::build_fleet) of the same inputs as long
    /// as every change since the last update is in `changes` (the first update checks
    /// everything).
    pub fn update(
        &mut self,
        changes: &Changes,
        sources: &dyn SourceObjects,
        cluster: &dyn ClusterView,
        defaults: &ModelDefaults,
    ) -> Snapshot {
        self.checked_last = 0;
        self.built_last = 0;
        self.rendered_last = 0;
        let candidates: Vec<(SourceId, Option<SourceObject>)> = if changes.everything || !self.initialised {
            self.initialised = true;
            let mut all: HashMap<SourceId, SourceObject> =
                sources.all().into_iter().map(|object| (object.source().id(), object)).collect();
            let mut candidates: Vec<_> = self.entries.keys().map(|id| (id.clone(), all.remove(id))).collect();
            candidates.extend(all.into_iter().map(|(id, object)| (id, Some(object))));
            candidates
        } else {
            let mut ids: BTreeSet<&SourceId> = BTreeSet::new();
            for dependency in &changes.dependencies {
                match dependency {
                    Dependency::Object(id) => {
                        ids.insert(id);
                    }
                    other => ids.extend(self.dependents.get(other).into_iter().flatten()),
                }
            }
            ids.into_iter().map(|id| (id.clone(), sources.get(id))).collect()
        };

        let mut pending = Pending::default();
        let mut nodes_now: Option<u64> = None;
        for (id, object) in candidates {
            self.checked_last += 1;
            let Some(object) = object.filter(|object| object.source().is_live()) else {
                if let Some(gone) = self.entries.remove(&id) {
                    self.retire(&id, &gone, &mut pending);
                }
                continue;
            };
            let reusable = self.entries.get_mut(&id).filter(|entry| {
                entry.object.same_version(&object)
                    && entry.reads.iter().all(|read| read.still_holds(cluster, &mut nodes_now))
            });
            if let Some(entry) = reusable {
                // Keep the cache's current version (after a status write, say): the one it
                // replaced is freed rather than held beside it.
                entry.object = object;
                continue;
            }
            let recording = RecordingView { inner: cluster, reads: Mutex::new(Vec::new()) };
            let built: Built = object.source().build(&recording, defaults).into();
            let reads = recording.reads.into_inner().unwrap_or_else(PoisonError::into_inner);
            self.built_last += 1;
            let before = self.entries.remove(&id);
            let rendered = before.as_ref().and_then(|old| match (&old.built, &built) {
                (Built::Application { application: was, .. }, Built::Application { application: now, .. })
                    if was == now =>
                {
                    old.rendered.clone()
                }
                _ => None,
            });
            if let Some(before) = &before {
                self.retire(&id, before, &mut pending);
            }
            let entry = Entry { order: object.source().claim_order(), object, reads, built, rendered, holds: false };
            for read in &entry.reads {
                self.dependents.entry(read.dependency()).or_default().insert(id.clone());
            }
            for listener in entry.listeners() {
                self.claimants.entry(listener).or_default().insert(entry.order.clone());
                pending.listeners.insert(listener);
            }
            for route in entry.routes() {
                self.route_claimants.entry(route.clone()).or_default().insert(entry.order.clone());
                pending.routes.insert(route);
            }
            pending.objects.insert(entry.order.clone());
            self.entries.insert(id, entry);
        }
        self.resolve(pending);
        Snapshot {
            outcomes: self.outcomes.clone(),
            applications: self.applications.clone(),
            rendered: self.rendered.clone(),
        }
    }

    /// Takes out everything an entry added: its dependencies, claims, outcome and membership.
    fn retire(&mut self, id: &SourceId, entry: &Entry, pending: &mut Pending) {
        for read in &entry.reads {
            let dependency = read.dependency();
            if let Some(dependents) = self.dependents.get_mut(&dependency) {
                dependents.remove(id);
                if dependents.is_empty() {
                    self.dependents.remove(&dependency);
                }
            }
        }
        for listener in entry.listeners() {
            if let Some(claimants) = self.claimants.get_mut(&listener) {
                claimants.remove(&entry.order);
                if claimants.is_empty() {
                    self.claimants.remove(&listener);
                }
            }
            pending.listeners.insert(listener);
        }
        for route in entry.routes() {
            if let Some(claimants) = self.route_claimants.get_mut(&route) {
                claimants.remove(&entry.order);
                if claimants.is_empty() {
                    self.route_claimants.remove(&route);
                }
            }
            pending.routes.insert(route);
        }
        if let Some(AppOutcome::Included { partition, application, .. }) = self.outcomes.remove(id) {
            if let Some(members) = self.members.get_mut(&partition) {
                members.remove(&(application, entry.order.clone()));
            }
            pending.partitions.insert(partition);
        }
    }

    /// Decides again the outcome of every object whose listener claims may have changed, in
    /// claim order: an object holds its listeners unless an older object that holds its own
    /// claims one of them (as [`assemble_fleet`](crate::model::fleet::assemble_fleet) decides
    /// in one pass). When an object starts or stops holding, the younger claimants of its
    /// listeners are decided again too.
    fn resolve(&mut self, mut pending: Pending) {
        for listener in &pending.listeners {
            if let Some(claimants) = self.claimants.get(listener) {
                pending.objects.extend(claimants.iter().cloned());
            }
        }
        for route in &pending.routes {
            if let Some(claimants) = self.route_claimants.get(route) {
                pending.objects.extend(claimants.iter().cloned());
            }
        }
        while let Some(order) = pending.objects.pop_first() {
            let id = &order.1;
            let Some(entry) = self.entries.get(id).filter(|entry| entry.order == order) else { continue };
            let (holds, outcome) = self.decide(entry);
            if holds != entry.holds {
                for listener in entry.listeners() {
                    if let Some(claimants) = self.claimants.get(&listener) {
                        pending.objects.extend(claimants.above(&order).iter().cloned());
                    }
                }
                for route in entry.routes() {
                    if let Some(claimants) = self.route_claimants.get(&route) {
                        pending.objects.extend(claimants.above(&order).iter().cloned());
                    }
                }
            }
            if let Some(entry) = self.entries.get_mut(id) {
                entry.holds = holds;
            }
            self.set_outcome(&order, outcome, &mut pending.partitions);
        }
        for partition in std::mem::take(&mut pending.partitions) {
            self.refresh_partition(partition);
        }
    }

    /// Whether the object holds its listeners, and its outcome.
    fn decide(&self, entry: &Entry) -> (bool, AppOutcome) {
        let (application, unresolved) = match &entry.built {
            Built::Invalid(invalid) => return (false, AppOutcome::Invalid(invalid.clone())),
            Built::Application { application, unresolved } => (application, unresolved),
        };
        for listener in application.claims() {
            let older = self.claimants.get(&listener).into_iter().flat_map(|claimants| claimants.below(&entry.order));
            let conflicting = |other: &Entry| !matches!(&other.built, Built::Application { application: theirs, .. } if application.shares_listener_with(theirs, &listener));
            let holder = older
                .into_iter()
                .find(|claimant| self.entries.get(&claimant.1).is_some_and(|e| e.holds && conflicting(e)));
            if let Some(holder) = holder {
                return (false, AppOutcome::AddressConflict { listener, holder: holder.1.clone() });
            }
        }
        for route in application.route_claims() {
            let older =
                self.route_claimants.get(&route).into_iter().flat_map(|claimants| claimants.below(&entry.order));
            let holder = older.into_iter().find(|claimant| self.entries.get(&claimant.1).is_some_and(|e| e.holds));
            if let Some(holder) = holder {
                return (false, AppOutcome::RouteConflict { route, holder: holder.1.clone() });
            }
        }
        let outcome = if unresolved.iter().any(UnresolvedRef::blocks_programming) {
            AppOutcome::Blocked { partition: application.partition.clone(), unresolved: unresolved.clone() }
        } else {
            AppOutcome::Included {
                partition: application.partition.clone(),
                application: application.name.clone(),
                members: application.member_count(),
                unresolved: unresolved.clone(),
            }
        };
        (true, outcome)
    }

    /// Records an object's outcome, and its membership of a partition when included.
    fn set_outcome(&mut self, order: &ClaimOrder, outcome: AppOutcome, touched: &mut BTreeSet<String>) {
        let id = &order.1;
        if self.outcomes.get(id) == Some(&outcome) {
            return;
        }
        if let Some(AppOutcome::Included { partition, application, .. }) = self.outcomes.get(id) {
            if let Some(members) = self.members.get_mut(partition) {
                members.remove(&(application.clone(), order.clone()));
            }
            touched.insert(partition.clone());
        }
        if let AppOutcome::Included { partition, application: name, .. } = &outcome {
            if let Some(entry) = self.entries.get_mut(id) {
                if let Built::Application { application, .. } = &entry.built {
                    let rendered = match &entry.rendered {
                        Some(rendered) => rendered.clone(),
                        None => {
                            self.rendered_last += 1;
                            let rendered = Arc::new(RenderedApplication::of(application));
                            entry.rendered = Some(rendered.clone());
                            rendered
                        }
                    };
                    let member = Member { application: application.clone(), rendered };
                    self.members.entry(partition.clone()).or_default().insert((name.clone(), order.clone()), member);
                    touched.insert(partition.clone());
                }
            }
        }
        self.outcomes.insert(id.clone(), outcome);
    }

    /// Rebuilds a partition's lists from its members. A list whose applications did not
    /// change is kept as the same list (see PartitionSyncer::sync_rendered).
    fn refresh_partition(&mut self, partition: String) {
        let Some(members) = self.members.get(&partition).filter(|members| !members.is_empty()) else {
            self.merged_groups.retain(|_, cached| cached.merged.application.partition != partition);
            self.members.remove(&partition);
            self.applications.remove(&partition);
            self.rendered.remove(&partition);
            return;
        };
        let merged = merge_partition_groups(&partition, members, &mut self.merged_groups, &mut self.rendered_last);
        let rendered: Vec<Arc<RenderedApplication>> = merged.iter().map(|m| m.rendered.clone()).collect();
        let unchanged = self.rendered.get(&partition).is_some_and(|before| {
            before.len() == rendered.len() && before.iter().zip(&rendered).all(|(a, b)| Arc::ptr_eq(a, b))
        });
        if !unchanged {
            self.rendered.insert(partition.clone(), Arc::new(rendered));
        }
        let applications: Vec<Arc<DesiredApplication>> = merged.iter().map(|m| m.application.clone()).collect();
        let unchanged = self.applications.get(&partition).is_some_and(|before| {
            before.len() == applications.len() && before.iter().zip(&applications).all(|(a, b)| Arc::ptr_eq(a, b))
        });
        if !unchanged {
            self.applications.insert(partition, Arc::new(applications));
        }
    }
}

/// A listener group's merged application, and the member applications it was merged from.
struct MergedGroup {
    from: Vec<Arc<DesiredApplication>>,
    merged: Member,
}

/// A partition's members (sorted by application name, then claim order) with each listener
/// group's members replaced by the group's merged application. A group whose members are the
/// same (the same builds) as last time keeps its merged application and rendering.
fn merge_partition_groups(
    partition: &str,
    members: &BTreeMap<(String, ClaimOrder), Member>,
    cache: &mut HashMap<String, MergedGroup>,
    rendered_count: &mut usize,
) -> Vec<Member> {
    let mut out: Vec<Member> = Vec::with_capacity(members.len());
    let mut group: Vec<Arc<DesiredApplication>> = Vec::new();
    let mut flush = |group: &mut Vec<Arc<DesiredApplication>>, out: &mut Vec<Member>| {
        let Some(name) = group.first().map(|first| first.name.clone()) else { return };
        let reusable = cache.get(&name).filter(|cached| {
            cached.from.len() == group.len() && cached.from.iter().zip(group.iter()).all(|(a, b)| Arc::ptr_eq(a, b))
        });
        let member = match reusable {
            Some(cached) => cached.merged.clone(),
            None => {
                let Some(application) = crate::model::listener_group::merge_group(group) else { return };
                *rendered_count += 1;
                let application = Arc::new(application);
                let merged = Member { rendered: Arc::new(RenderedApplication::of(&application)), application };
                cache.insert(name, MergedGroup { from: std::mem::take(group), merged: merged.clone() });
                merged
            }
        };
        group.clear();
        out.push(member);
    };
    for member in members.values() {
        if member.application.group.is_none() {
            flush(&mut group, &mut out);
            out.push(member.clone());
            continue;
        }
        if group.first().is_some_and(|first| first.name != member.application.name) {
            flush(&mut group, &mut out);
        }
        group.push(member.application.clone());
    }
    flush(&mut group, &mut out);
    // Groups of this partition that have no member any more.
    cache.retain(|name, cached| {
        cached.merged.application.partition != partition || out.iter().any(|m| m.application.name == *name)
    });
    out
}

/// The controller's desired state: a [`Snapshot`] reused until the watches report a change.
#[derive(Default)]
pub struct DesiredState {
    version: AtomicU64,
    pending: Mutex<Changes>,
    cache: Mutex<Cached>,
}

/// The last snapshot with the version it was built at, and the builds it came from.
#[derive(Default)]
struct Cached {
    snapshot: Option<(u64, Arc<Snapshot>)>,
    fleet: IncrementalFleet,
}

impl DesiredState {
    /// Anything the model reads may have changed (a re-list, the periodic check): the next
    /// snapshot checks every object.
    pub fn changed(&self) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).add_everything();
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// `dependency` changed (called by the watches once their cache took the event in).
    pub fn changed_dependency(&self, dependency: Dependency) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).add(dependency);
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The desired state of the current cache contents.
    pub fn snapshot(
        &self,
        virtual_servers: &Store<VirtualServer>,
        transport_servers: &Store<TransportServer>,
        cluster: &dyn ClusterView,
        defaults: &ModelDefaults,
    ) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // The version is read before the changes are taken: a change reported meanwhile bumps
        // it again, so the next snapshot looks at it (perhaps a second time, harmlessly).
        let version = self.version.load(Ordering::SeqCst);
        if let Some((built_at, snapshot)) = &cache.snapshot {
            if *built_at == version {
                return snapshot.clone();
            }
        }
        let changes = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let started = std::time::Instant::now();
        let sources = Stores { virtual_servers, transport_servers };
        let snapshot = Arc::new(cache.fleet.update(&changes, &sources, cluster, defaults));
        tracing::debug!(
            checked = cache.fleet.checked_last,
            built = cache.fleet.built_last,
            rendered = cache.fleet.rendered_last,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "desired state updated"
        );
        cache.snapshot = Some((version, snapshot.clone()));
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PoolMemberType;
    use crate::model::{build_fleet, ClusterObjects};
    use proptest::prelude::*;
    use serde_json::json;

    const NAMESPACE: &str = "shop";

    fn defaults() -> ModelDefaults {
        ModelDefaults {
            partition: "k8s".into(),
            pool_member_type: PoolMemberType::Nodeport,
            node_selector: None,
            default_route_domain: 0,
        }
    }

    /// One change the watches could report.
    #[derive(Debug, Clone)]
    enum Change {
        /// Create or update VirtualServer `i` (created at second `i`, so claim order is fixed).
        PutVirtual {
            i: usize,
            address: u8,
            port: u16,
            service: u8,
            mode: Option<bool>,
            partition: bool,
            /// TLS with an HTTP redirect (a second listener on port 80): through a BIG-IP
            /// profile (false) or the Secret `tls0` (true).
            tls: Option<bool>,
            /// Joins the listener group `g` with a rule for host `h<n>.example.com` instead of
            /// having an address of its own.
            group_host: Option<u8>,
        },
        /// Creates or updates the listener group `g` (10.0.0.1:443).
        PutGroup {
            tls: bool,
            allowed: bool,
        },
        DeleteGroup,
        /// Only the status changes (the operator's own status write): a new object, same spec.
        VirtualStatus {
            i: usize,
            note: u8,
        },
        DeleteVirtual {
            i: usize,
        },
        /// The VirtualServer gets a deletion timestamp (finalizer still on).
        Deleting {
            i: usize,
        },
        PutTransport {
            i: usize,
            address: u8,
            port: u16,
            service: u8,
        },
        DeleteTransport {
            i: usize,
        },
        PutService {
            service: u8,
            node_port: bool,
        },
        DeleteService {
            service: u8,
        },
        PutSlice {
            service: u8,
            endpoints: Vec<u8>,
        },
        DeleteSlice {
            service: u8,
        },
        PutNode {
            node: u8,
            ready: bool,
        },
        DeleteNode {
            node: u8,
        },
        PutSecret {
            valid: bool,
        },
        DeleteSecret,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            4 => (0..6usize, 0..2u8, prop_oneof![Just(80u16), Just(443u16)], 0..3u8, proptest::option::of(any::<bool>()), any::<bool>(), proptest::option::of(any::<bool>()), proptest::option::of(0..3u8))
                .prop_map(|(i, address, port, service, mode, partition, tls, group_host)| Change::PutVirtual { i, address, port, service, mode, partition, tls, group_host }),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(tls, allowed)| Change::PutGroup { tls, allowed }),
            1 => Just(Change::DeleteGroup),
            2 => (0..6usize, any::<u8>()).prop_map(|(i, note)| Change::VirtualStatus { i, note }),
            1 => (0..6usize).prop_map(|i| Change::DeleteVirtual { i }),
            1 => (0..6usize).prop_map(|i| Change::Deleting { i }),
            2 => (0..3usize, 0..2u8, prop_oneof![Just(80u16), Just(443u16)], 0..3u8)
                .prop_map(|(i, address, port, service)| Change::PutTransport { i, address, port, service }),
            1 => (0..3usize).prop_map(|i| Change::DeleteTransport { i }),
            2 => (0..3u8, any::<bool>()).prop_map(|(service, node_port)| Change::PutService { service, node_port }),
            1 => (0..3u8).prop_map(|service| Change::DeleteService { service }),
            3 => (0..3u8, proptest::collection::vec(0..8u8, 0..4)).prop_map(|(service, endpoints)| Change::PutSlice { service, endpoints }),
            1 => (0..3u8).prop_map(|service| Change::DeleteSlice { service }),
            2 => (0..3u8, any::<bool>()).prop_map(|(node, ready)| Change::PutNode { node, ready }),
            1 => (0..3u8).prop_map(|node| Change::DeleteNode { node }),
            1 => any::<bool>().prop_map(|valid| Change::PutSecret { valid }),
            1 => Just(Change::DeleteSecret),
        ]
    }

    /// The objects the watches' caches would hold.
    #[derive(Default)]
    struct World {
        virtual_servers: BTreeMap<usize, Arc<VirtualServer>>,
        transport_servers: BTreeMap<usize, Arc<TransportServer>>,
        cluster: ClusterObjects,
    }

    fn created(i: usize) -> String {
        format!("2026-01-01T00:00:{:02}Z", i)
    }

    impl World {
        /// Applies a change and returns what the watches would report of it.
        fn apply(&mut self, change: &Change) -> Vec<Dependency> {
            let vs = |i: usize| {
                Dependency::Object(SourceId { kind: SourceKind::VirtualServer, key: key(NAMESPACE, &format!("vs{i}")) })
            };
            let ts = |i: usize| {
                Dependency::Object(SourceId {
                    kind: SourceKind::TransportServer,
                    key: key(NAMESPACE, &format!("ts{i}")),
                })
            };
            let service_key = |s: u8| key(NAMESPACE, &format!("svc{s}"));
            match change.clone() {
                Change::PutVirtual { i, address, port, service, mode, partition, tls, group_host } => {
                    let mut spec = json!({
                        "virtualAddress": format!("10.0.0.{}", address + 1),
                        "port": port,
                        "pools": [{"name": "web", "service": format!("svc{service}"), "servicePort": 80}],
                    });
                    if let Some(host) = group_host {
                        spec.as_object_mut().map(|o| o.remove("virtualAddress"));
                        spec["listenerGroup"] = json!("g");
                        spec["rules"] = json!([{"host": format!("h{host}.example.com"), "pool": "web"}]);
                    }
                    if let Some(cluster) = mode {
                        spec["poolMemberType"] = json!(if cluster { "cluster" } else { "nodeport" });
                    }
                    if partition {
                        spec["partition"] = json!("team");
                    }
                    match tls {
                        Some(false) => spec["tls"] = json!({"clientSslProfile": "/Common/clientssl"}),
                        Some(true) => spec["tls"] = json!({"secretName": "tls0"}),
                        None => {}
                    }
                    let object = json!({
                        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                        "metadata": {"name": format!("vs{i}"), "namespace": NAMESPACE, "uid": format!("uid-vs{i}"),
                                     "creationTimestamp": created(i)},
                        "spec": spec,
                    });
                    self.virtual_servers.insert(i, Arc::new(serde_json::from_value(object).expect("VirtualServer")));
                    vec![vs(i)]
                }
                Change::VirtualStatus { i, note } => {
                    if let Some(vs) = self.virtual_servers.get(&i) {
                        let mut vs = vs.as_ref().clone();
                        let mut status = vs.status.clone().unwrap_or_default();
                        status.partition = Some(format!("seen-{note}"));
                        vs.status = Some(status);
                        self.virtual_servers.insert(i, Arc::new(vs));
                    }
                    // A status-only update is not reported (see controller::object_changes_desired).
                    vec![]
                }
                Change::PutGroup { tls, allowed } => {
                    let mut spec = json!({
                        "virtualAddress": "10.0.0.1", "port": 443,
                        "allowedNamespaces": [if allowed { "*" } else { "elsewhere" }],
                    });
                    if tls {
                        spec["tls"] = json!({});
                    }
                    let group = json!({
                        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "BigIpListenerGroup",
                        "metadata": {"name": "g"}, "spec": spec,
                    });
                    self.cluster.add_listener_group(serde_json::from_value(group).expect("BigIpListenerGroup"));
                    vec![Dependency::ListenerGroup("g".into())]
                }
                Change::DeleteGroup => {
                    self.cluster.remove_listener_group("g");
                    vec![Dependency::ListenerGroup("g".into())]
                }
                Change::DeleteVirtual { i } => {
                    self.virtual_servers.remove(&i);
                    vec![vs(i)]
                }
                Change::Deleting { i } => {
                    if let Some(vs) = self.virtual_servers.get(&i) {
                        let mut vs = vs.as_ref().clone();
                        vs.metadata.deletion_timestamp = vs.metadata.creation_timestamp.clone();
                        self.virtual_servers.insert(i, Arc::new(vs));
                    }
                    vec![vs(i)]
                }
                Change::PutTransport { i, address, port, service } => {
                    let object = json!({
                        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "TransportServer",
                        "metadata": {"name": format!("ts{i}"), "namespace": NAMESPACE, "uid": format!("uid-ts{i}"),
                                     "creationTimestamp": created(10 + i)},
                        "spec": {"virtualAddress": format!("10.0.0.{}", address + 1), "port": port,
                                 "pool": {"name": "pool", "service": format!("svc{service}"), "servicePort": 80}},
                    });
                    self.transport_servers
                        .insert(i, Arc::new(serde_json::from_value(object).expect("TransportServer")));
                    vec![ts(i)]
                }
                Change::DeleteTransport { i } => {
                    self.transport_servers.remove(&i);
                    vec![ts(i)]
                }
                Change::PutService { service, node_port } => {
                    let mut port = json!({"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"});
                    if node_port {
                        port["nodePort"] = json!(30080 + u16::from(service));
                    }
                    let object = json!({
                        "metadata": {"name": format!("svc{service}"), "namespace": NAMESPACE},
                        "spec": {"type": if node_port { "NodePort" } else { "ClusterIP" }, "ports": [port]},
                    });
                    self.cluster.add_service(serde_json::from_value::<ServiceView>(object).expect("Service"));
                    vec![Dependency::Service(service_key(service))]
                }
                Change::DeleteService { service } => {
                    self.cluster.remove_service(NAMESPACE, &format!("svc{service}"));
                    vec![Dependency::Service(service_key(service))]
                }
                Change::PutSlice { service, endpoints } => {
                    let endpoints: Vec<_> = endpoints
                        .iter()
                        .map(|e| json!({"addresses": [format!("10.244.0.{}", e + 1)], "conditions": {"ready": true}}))
                        .collect();
                    let object = json!({
                        "metadata": {"name": format!("svc{service}-abc"), "namespace": NAMESPACE,
                                     "labels": {"kubernetes.io/service-name": format!("svc{service}")}},
                        "addressType": "IPv4",
                        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                        "endpoints": endpoints,
                    });
                    self.cluster.add_endpoint_slice(
                        serde_json::from_value::<EndpointSliceView>(object).expect("EndpointSlice"),
                    );
                    vec![Dependency::Slices(service_key(service))]
                }
                Change::DeleteSlice { service } => {
                    self.cluster.remove_endpoint_slice(NAMESPACE, &format!("svc{service}-abc"));
                    vec![Dependency::Slices(service_key(service))]
                }
                Change::PutNode { node, ready } => {
                    let object = json!({
                        "metadata": {"name": format!("node{node}")},
                        "status": {"addresses": [{"type": "InternalIP", "address": format!("192.168.0.{}", node + 1)}],
                                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
                    });
                    self.cluster.add_node(serde_json::from_value(object).expect("Node"));
                    vec![Dependency::Nodes]
                }
                Change::DeleteNode { node } => {
                    self.cluster.remove_node(&format!("node{node}"));
                    vec![Dependency::Nodes]
                }
                Change::PutSecret { valid } => {
                    static PAIR: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
                    let (crt, key_pem) = PAIR.get_or_init(|| {
                        let generated =
                            rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("cert");
                        (generated.cert.pem(), generated.signing_key.serialize_pem())
                    });
                    let crt = if valid { crt.clone() } else { "not a certificate".into() };
                    let object = json!({
                        "metadata": {"name": "tls0", "namespace": NAMESPACE},
                        "type": "kubernetes.io/tls",
                        "data": {"tls.crt": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crt),
                                 "tls.key": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key_pem)},
                    });
                    self.cluster.add_secret(serde_json::from_value(object).expect("Secret"));
                    vec![Dependency::Secret(key(NAMESPACE, "tls0"))]
                }
                Change::DeleteSecret => {
                    self.cluster.remove_secret(NAMESPACE, "tls0");
                    vec![Dependency::Secret(key(NAMESPACE, "tls0"))]
                }
            }
        }

        fn virtual_servers(&self) -> Vec<Arc<VirtualServer>> {
            self.virtual_servers.values().cloned().collect()
        }

        fn transport_servers(&self) -> Vec<Arc<TransportServer>> {
            self.transport_servers.values().cloned().collect()
        }

        /// The incremental state after `changes`, from this world's objects.
        fn update(&self, incremental: &mut IncrementalFleet, changes: &Changes) -> Snapshot {
            let (vss, tss) = (self.virtual_servers(), self.transport_servers());
            let sources = Listed { virtual_servers: &vss, transport_servers: &tss };
            incremental.update(changes, &sources, &self.cluster, &defaults())
        }

        fn reference(&self) -> crate::model::Fleet {
            let (vss, tss) = (self.virtual_servers(), self.transport_servers());
            build_fleet(vss.iter().map(AsRef::as_ref), tss.iter().map(AsRef::as_ref), &self.cluster, &defaults())
        }
    }

    /// How a step's changes reach the incremental state.
    #[derive(Debug, Clone, Copy)]
    enum Report {
        /// Update now, with what the watches reported.
        Now,
        /// Keep collecting: the next update gets this change's keys with the next ones.
        Later,
        /// Update now, as after a re-list: everything.
        Everything,
    }

    fn report() -> impl Strategy<Value = Report> {
        prop_oneof![6 => Just(Report::Now), 3 => Just(Report::Later), 1 => Just(Report::Everything)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The incremental desired state equals the reference build after every update of a
        /// random sequence of changes, whether they are reported one by one, several at once,
        /// or as "everything"; and its renderings are those of the reference applications.
        #[test]
        fn incremental_state_equals_the_reference_after_any_sequence_of_changes(
            steps in proptest::collection::vec((change(), report()), 1..50)
        ) {
            let mut world = World::default();
            let mut incremental = IncrementalFleet::default();
            let mut reported = Changes::default();
            let last = steps.len() - 1;
            for (step, (change, report)) in steps.iter().enumerate() {
                for dependency in world.apply(change) {
                    reported.add(dependency);
                }
                match report {
                    Report::Later if step != last => continue,
                    Report::Everything => reported.add_everything(),
                    _ => {}
                }
                let snapshot = world.update(&mut incremental, &std::mem::take(&mut reported));
                let reference = world.reference();
                prop_assert_eq!(&snapshot.fleet(), &reference, "after {:?}", change);
                let rendered: BTreeMap<String, Vec<RenderedApplication>> = snapshot
                    .rendered
                    .iter()
                    .map(|(p, apps)| (p.clone(), apps.iter().map(|a| a.as_ref().clone()).collect()))
                    .collect();
                let expected: BTreeMap<String, Vec<RenderedApplication>> = reference
                    .partitions
                    .iter()
                    .map(|(p, apps)| (p.clone(), apps.iter().map(|a| RenderedApplication::of(a)).collect()))
                    .collect();
                prop_assert_eq!(rendered, expected, "renderings after {:?}", change);
            }
        }
    }

    #[test]
    fn a_policy_change_rebuilds_its_users_and_only_them() {
        let mut world = World::default();
        let policy = |ranges: &str| -> crate::crd::BigIpPolicy {
            serde_json::from_value(json!({
                "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "BigIpPolicy",
                "metadata": {"name": "standard", "namespace": NAMESPACE},
                "spec": {"allowSourceRanges": [ranges]},
            }))
            .expect("policy")
        };
        world.cluster.add_policy(policy("10.0.0.0/8"));
        for i in 0..4usize {
            let mut spec = json!({"virtualAddress": format!("10.0.1.{}", i + 1), "port": 80,
                                  "pools": [{"name": "web", "service": "svc0", "servicePort": 80}]});
            if i < 2 {
                spec["policy"] = json!("standard");
            }
            let object = json!({
                "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                "metadata": {"name": format!("vs{i}"), "namespace": NAMESPACE, "creationTimestamp": created(i)},
                "spec": spec,
            });
            world.virtual_servers.insert(i, Arc::new(serde_json::from_value(object).expect("VirtualServer")));
        }
        let mut incremental = IncrementalFleet::default();
        world.update(&mut incremental, &Changes::everything());
        world.cluster.add_policy(policy("192.168.0.0/16"));
        let changed = Changes::of([Dependency::Policy(key(NAMESPACE, "standard"))]);
        let snapshot = world.update(&mut incremental, &changed);
        assert_eq!((incremental.checked_last, incremental.built_last), (2, 2), "only the two users");
        assert_eq!(snapshot.fleet(), world.reference());
        let ranges: Vec<String> = snapshot
            .applications("k8s")
            .iter()
            .map(|app| app.source_ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
            .collect();
        assert_eq!(ranges, ["192.168.0.0/16", "192.168.0.0/16", "", ""]);
        // Deleted: its users are blocked (PolicyNotFound) and leave the partition.
        world.cluster.remove_policy(NAMESPACE, "standard");
        let snapshot = world.update(&mut incremental, &changed);
        assert_eq!(snapshot.fleet(), world.reference());
        assert_eq!(snapshot.applications("k8s").len(), 2);
        assert!(matches!(
            snapshot.outcome(SourceKind::VirtualServer, &key(NAMESPACE, "vs0")),
            Some(AppOutcome::Blocked { unresolved, .. }) if unresolved[0].reason() == "PolicyNotFound"
        ));
    }

    #[test]
    fn listener_group_members_merge_and_a_freed_host_moves_to_the_next_claimant() {
        let mut world = World::default();
        let mut incremental = IncrementalFleet::default();
        let member = |i: usize, host: u8, tls: Option<bool>| Change::PutVirtual {
            i,
            address: 0,
            port: 443,
            service: 0,
            mode: Some(true),
            partition: false,
            tls,
            group_host: Some(host),
        };
        let mut step = |world: &mut World, change: Change| {
            let changes = Changes::of(world.apply(&change));
            let snapshot = world.update(&mut incremental, &changes);
            assert_eq!(snapshot.fleet(), world.reference(), "after {change:?}");
            snapshot
        };
        step(&mut world, Change::PutService { service: 0, node_port: false });
        step(&mut world, Change::PutSecret { valid: true });
        step(&mut world, Change::PutGroup { tls: true, allowed: true });
        step(&mut world, member(0, 0, Some(true)));
        step(&mut world, member(1, 0, Some(true)));
        let snapshot = step(&mut world, member(2, 1, Some(true)));
        let group = &snapshot.applications("k8s")[0];
        assert_eq!(group.pools.len(), 2, "vs0 and vs2; vs1 conflicts on h0: {:?}", group.pools);
        assert!(matches!(
            snapshot.outcome(SourceKind::VirtualServer, &key(NAMESPACE, "vs1")),
            Some(AppOutcome::RouteConflict { holder, .. }) if holder.key == key(NAMESPACE, "vs0")
        ));
        let snapshot = step(&mut world, Change::DeleteVirtual { i: 0 });
        assert!(matches!(
            snapshot.outcome(SourceKind::VirtualServer, &key(NAMESPACE, "vs1")),
            Some(AppOutcome::Included { .. })
        ));
        // The group no longer allows the namespace: every member is refused, nothing is left.
        let snapshot = step(&mut world, Change::PutGroup { tls: true, allowed: false });
        assert!(snapshot.applications("k8s").is_empty());
        step(&mut world, Change::PutGroup { tls: true, allowed: true });
        let snapshot = step(&mut world, Change::DeleteSecret);
        assert!(snapshot.applications("k8s").is_empty(), "no certificate: blocked");
    }

    #[test]
    fn an_update_looks_only_at_the_objects_that_depend_on_what_changed() {
        let mut world = World::default();
        let mut reported = Changes::default();
        let mut apply = |world: &mut World, change: Change| {
            for dependency in world.apply(&change) {
                reported.add(dependency);
            }
            std::mem::take(&mut reported)
        };
        apply(&mut world, Change::PutService { service: 0, node_port: false });
        apply(&mut world, Change::PutSlice { service: 0, endpoints: vec![1, 2] });
        for i in 0..5 {
            let change = Change::PutVirtual {
                i,
                address: 0,
                port: 80 + i as u16,
                service: 0,
                mode: Some(true),
                partition: false,
                tls: None,
                group_host: None,
            };
            apply(&mut world, change);
        }
        let mut incremental = IncrementalFleet::default();
        // The first update checks everything, whatever it is told.
        let first = world.update(&mut incremental, &Changes::default());
        assert_eq!((incremental.checked_last, incremental.built_last, incremental.rendered_last), (5, 5, 5));
        assert_eq!(first.rendered["k8s"].len(), 5);

        let again = world.update(&mut incremental, &Changes::default());
        assert_eq!(incremental.checked_last, 0, "nothing reported, nothing looked at");
        assert!(Arc::ptr_eq(&first.rendered["k8s"], &again.rendered["k8s"]), "the same list is handed out again");

        let status = apply(&mut world, Change::VirtualStatus { i: 3, note: 1 });
        world.update(&mut incremental, &status);
        assert_eq!(incremental.built_last, 0, "only the status changed");
        // Told "everything", it looks at every object and builds none of the unchanged ones.
        world.update(&mut incremental, &Changes::everything());
        assert_eq!((incremental.checked_last, incremental.built_last), (5, 0));

        let service = apply(&mut world, Change::PutService { service: 1, node_port: false });
        world.update(&mut incremental, &service);
        assert_eq!(incremental.checked_last, 0, "no object uses svc1 yet");
        let created = apply(
            &mut world,
            Change::PutVirtual {
                i: 5,
                address: 1,
                port: 80,
                service: 1,
                mode: Some(true),
                partition: false,
                tls: None,
                group_host: None,
            },
        );
        world.update(&mut incremental, &created);
        assert_eq!(
            (incremental.checked_last, incremental.built_last, incremental.rendered_last),
            (1, 1, 1),
            "the new object only"
        );
        let created = apply(
            &mut world,
            Change::PutVirtual {
                i: 6,
                address: 2,
                port: 81,
                service: 0,
                mode: Some(true),
                partition: true,
                tls: None,
                group_host: None,
            },
        );
        let before = world.update(&mut incremental, &created);

        // An endpoint change concerns the objects on that Service, and only them.
        let slice = apply(&mut world, Change::PutSlice { service: 1, endpoints: vec![3] });
        let after = world.update(&mut incremental, &slice);
        assert_eq!(
            (incremental.checked_last, incremental.built_last, incremental.rendered_last),
            (1, 1, 1),
            "the object on svc1 only"
        );
        assert!(!Arc::ptr_eq(&before.rendered["k8s"], &after.rendered["k8s"]), "its partition's list changed");
        assert!(Arc::ptr_eq(&before.rendered["team"], &after.rendered["team"]), "the other partition's did not");
        let slice = apply(&mut world, Change::PutSlice { service: 0, endpoints: vec![4] });
        world.update(&mut incremental, &slice);
        assert_eq!((incremental.checked_last, incremental.built_last), (6, 6), "the six objects on svc0");

        // Cluster-mode objects do not read the nodes.
        let node = apply(&mut world, Change::PutNode { node: 0, ready: true });
        world.update(&mut incremental, &node);
        assert_eq!(incremental.checked_last, 0, "a node change concerns nodeport objects only");
        assert_eq!(world.update(&mut incremental, &Changes::everything()).fleet(), world.reference());
    }

    /// VirtualServer `i` on `10.0.0.<address + 1>:<port>`, cluster mode, pools on svc0.
    fn on(i: usize, address: u8, port: u16, tls: Option<bool>) -> Change {
        Change::PutVirtual { i, address, port, service: 0, mode: Some(true), partition: false, tls, group_host: None }
    }

    /// Claims are decided again only around the listeners that changed, with knock-on effects:
    /// when the holder of an address goes, the next claimant takes it, and an object that
    /// loses one listener to an older one gives up all of its others.
    #[test]
    fn a_listener_freed_or_taken_moves_to_the_right_claimant() {
        let mut world = World::default();
        let mut incremental = IncrementalFleet::default();
        let step = |world: &mut World, incremental: &mut IncrementalFleet, change: Change| {
            let changes = Changes::of(world.apply(&change));
            let snapshot = world.update(incremental, &changes);
            assert_eq!(snapshot.fleet(), world.reference(), "after {change:?}");
            snapshot
        };
        step(&mut world, &mut incremental, Change::PutService { service: 0, node_port: false });
        // vs0 (oldest) on .1:80, vs1 on .1:80 too (conflict), vs2 on .2:80.
        step(&mut world, &mut incremental, on(0, 0, 80, None));
        step(&mut world, &mut incremental, on(1, 0, 80, None));
        let snapshot = step(&mut world, &mut incremental, on(2, 1, 80, None));
        let id = |i: usize| key(NAMESPACE, &format!("vs{i}"));
        assert!(
            matches!(snapshot.outcome(SourceKind::VirtualServer, &id(1)), Some(AppOutcome::AddressConflict { holder, .. }) if holder.key == id(0))
        );
        // vs0 goes: vs1 takes the address.
        let snapshot = step(&mut world, &mut incremental, Change::DeleteVirtual { i: 0 });
        assert!(matches!(snapshot.outcome(SourceKind::VirtualServer, &id(1)), Some(AppOutcome::Included { .. })));
        // vs0 comes back (older again): vs1 loses it, and only vs1 changed besides vs0.
        let snapshot = step(&mut world, &mut incremental, on(0, 0, 80, None));
        assert!(matches!(
            snapshot.outcome(SourceKind::VirtualServer, &id(1)),
            Some(AppOutcome::AddressConflict { .. })
        ));
        assert!(matches!(snapshot.outcome(SourceKind::VirtualServer, &id(2)), Some(AppOutcome::Included { .. })));
        assert_eq!(incremental.checked_last, 1);
        // vs0 moves to .2:80, which vs2 holds: vs0 is older, so vs2 loses it and vs1 gets .1:80.
        let snapshot = step(&mut world, &mut incremental, on(0, 1, 80, None));
        assert!(matches!(snapshot.outcome(SourceKind::VirtualServer, &id(1)), Some(AppOutcome::Included { .. })));
        assert!(
            matches!(snapshot.outcome(SourceKind::VirtualServer, &id(2)), Some(AppOutcome::AddressConflict { holder, .. }) if holder.key == id(0))
        );

        // Knock-on, on .3: vs3 is plain on port 80; vs4 (younger) is TLS on 443 with the
        // redirect on .3:80, so it conflicts and holds nothing; vs5 is plain on .3:443 and
        // holds it. When vs3 goes, vs4 holds both its listeners and vs5 loses .3:443 — though
        // nothing of vs5's own listener changed hands directly.
        step(&mut world, &mut incremental, on(3, 2, 80, None));
        step(&mut world, &mut incremental, on(4, 2, 443, Some(false)));
        let snapshot = step(&mut world, &mut incremental, on(5, 2, 443, None));
        assert!(
            matches!(snapshot.outcome(SourceKind::VirtualServer, &id(4)), Some(AppOutcome::AddressConflict { holder, .. }) if holder.key == id(3))
        );
        assert!(matches!(snapshot.outcome(SourceKind::VirtualServer, &id(5)), Some(AppOutcome::Included { .. })));
        let snapshot = step(&mut world, &mut incremental, Change::DeleteVirtual { i: 3 });
        assert!(matches!(snapshot.outcome(SourceKind::VirtualServer, &id(4)), Some(AppOutcome::Included { .. })));
        assert!(
            matches!(snapshot.outcome(SourceKind::VirtualServer, &id(5)), Some(AppOutcome::AddressConflict { holder, .. }) if holder.key == id(4))
        );
    }
}
