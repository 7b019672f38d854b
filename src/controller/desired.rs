//! The desired state of every partition, kept up to date incrementally from the watch caches.
//!
//! [`build_fleet`](crate::model::build_fleet) builds every object from scratch; that is the
//! reference. Here each object's build is kept with what it read from the cluster (the
//! Service, EndpointSlices, Secrets and — in nodeport mode — the nodes, as the exact cached
//! objects), and is redone only when the object or one of those reads changed. Listener claims
//! are then resolved over all builds (cheap: hash lookups), and each included application is
//! rendered to AS3 once per version. A property test checks the result equals `build_fleet`
//! after random sequences of changes.
//!
//! [`DesiredState`] adds a version counter bumped by the watches: while nothing the model reads
//! changed, every reconcile reuses the same [`Snapshot`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::partitions::PartitionApps;
use crate::as3::RenderedApplication;
use crate::crd::{TransportServer, VirtualServer};
use crate::model::fleet::{assemble_fleet, Built, ClaimOrder, Source};
use crate::model::{AppOutcome, ClusterView, Fleet, ModelDefaults, SourceId};

/// The desired state at one moment: the fleet (outcomes and applications by partition) and
/// each partition's applications rendered, sorted by name.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub fleet: Fleet,
    pub rendered: BTreeMap<String, PartitionApps>,
}

impl Snapshot {
    /// The rendered applications of `partition` (none when it has no application).
    pub fn rendered_partition(&self, partition: &str) -> PartitionApps {
        self.rendered.get(partition).cloned().unwrap_or_default()
    }
}

/// One read a build made from the cluster, with the objects it got.
#[derive(Debug)]
enum Read {
    Service {
        namespace: String,
        name: String,
        found: Option<Arc<Service>>,
    },
    Slices {
        namespace: String,
        service: String,
        found: Vec<Arc<EndpointSlice>>,
    },
    /// What the model reads from the nodes, as a hash (heartbeats change nothing of it).
    Nodes(u64),
    Secret {
        namespace: String,
        name: String,
        found: Option<Arc<Secret>>,
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
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        let found = self.inner.service(namespace, name);
        self.record(Read::Service { namespace: namespace.into(), name: name.into(), found: found.clone() });
        found
    }

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
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
        self.metadata.uid == other.metadata.uid && self.spec == other.spec
    }
}

impl SpecAndMeta for TransportServer {
    fn spec_and_meta_eq(&self, other: &Self) -> bool {
        self.metadata.uid == other.metadata.uid && self.spec == other.spec
    }
}

struct Entry {
    object: SourceObject,
    reads: Vec<Read>,
    built: Built,
    /// Rendered when first included; dropped with the build.
    rendered: Option<Arc<RenderedApplication>>,
}

/// Per-object builds kept across updates (see the module documentation).
#[derive(Default)]
pub struct IncrementalFleet {
    entries: HashMap<SourceId, Entry>,
    /// The partitions' application lists of the last update: a list that did not change is
    /// handed out again as the same list (see PartitionSyncer::sync_rendered).
    lists: BTreeMap<String, PartitionApps>,
    /// Objects built (not reused) by the last update.
    pub built_last: usize,
    /// Applications rendered by the last update.
    pub rendered_last: usize,
}

impl IncrementalFleet {
    /// The desired state of these objects against `cluster`; equal to
    /// [`build_fleet`](crate::model::build_fleet) of the same inputs.
    pub fn update(
        &mut self,
        virtual_servers: &[Arc<VirtualServer>],
        transport_servers: &[Arc<TransportServer>],
        cluster: &dyn ClusterView,
        defaults: &ModelDefaults,
    ) -> Snapshot {
        let mut live: Vec<(ClaimOrder, SourceObject)> = virtual_servers
            .iter()
            .map(|vs| SourceObject::Virtual(vs.clone()))
            .chain(transport_servers.iter().map(|ts| SourceObject::Transport(ts.clone())))
            .filter(|object| object.source().is_live())
            .map(|object| (object.source().claim_order(), object))
            .collect();
        live.sort_by(|a, b| a.0.cmp(&b.0));

        self.built_last = 0;
        self.rendered_last = 0;
        let mut nodes_now: Option<u64> = None;
        let mut seen: HashSet<&SourceId> = HashSet::with_capacity(live.len());
        for ((_, id), object) in &live {
            seen.insert(id);
            let reusable = self.entries.get(id).is_some_and(|entry| {
                entry.object.same_version(object)
                    && entry.reads.iter().all(|read| read.still_holds(cluster, &mut nodes_now))
            });
            if reusable {
                continue;
            }
            let recording = RecordingView { inner: cluster, reads: Mutex::new(Vec::new()) };
            let built: Built = object.source().build(&recording, defaults).into();
            let reads = recording.reads.into_inner().unwrap_or_else(PoisonError::into_inner);
            self.built_last += 1;
            let keep_rendering = self.entries.get(id).and_then(|old| match (&old.built, &built) {
                (Built::Application { application: before, .. }, Built::Application { application: now, .. })
                    if before == now =>
                {
                    old.rendered.clone()
                }
                _ => None,
            });
            self.entries.insert(id.clone(), Entry { object: object.clone(), reads, built, rendered: keep_rendering });
        }
        self.entries.retain(|id, _| seen.contains(id));

        let fleet = assemble_fleet(live.iter().filter_map(|((_, id), _)| {
            let entry = self.entries.get(id)?;
            Some((id, &entry.built))
        }));
        let mut rendered: BTreeMap<String, Vec<Arc<RenderedApplication>>> = BTreeMap::new();
        for (id, outcome) in &fleet.outcomes {
            let AppOutcome::Included { partition, .. } = outcome else { continue };
            let Some(entry) = self.entries.get_mut(id) else { continue };
            let Built::Application { application: built, .. } = &entry.built else { continue };
            let application = match &entry.rendered {
                Some(application) => application.clone(),
                None => {
                    self.rendered_last += 1;
                    let application = Arc::new(RenderedApplication::of(built));
                    entry.rendered = Some(application.clone());
                    application
                }
            };
            rendered.entry(partition.clone()).or_default().push(application);
        }
        let rendered: BTreeMap<String, PartitionApps> = rendered
            .into_iter()
            .map(|(partition, mut applications)| {
                applications.sort_by(|a, b| a.name.cmp(&b.name));
                let unchanged = self.lists.get(&partition).filter(|before| {
                    before.len() == applications.len()
                        && before.iter().zip(&applications).all(|(a, b)| Arc::ptr_eq(a, b))
                });
                let list = unchanged.cloned().unwrap_or_else(|| Arc::new(applications));
                (partition, list)
            })
            .collect();
        self.lists = rendered.clone();
        Snapshot { fleet, rendered }
    }
}

/// The controller's desired state: a [`Snapshot`] reused until the watches report a change.
#[derive(Default)]
pub struct DesiredState {
    version: AtomicU64,
    cache: Mutex<Cached>,
}

/// The last snapshot with the version it was built at, and the builds it came from.
#[derive(Default)]
struct Cached {
    snapshot: Option<(u64, Arc<Snapshot>)>,
    fleet: IncrementalFleet,
}

impl DesiredState {
    /// Something the model reads changed (called by the watches after their cache took it in).
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The desired state of the current cache contents.
    pub fn snapshot(
        &self,
        virtual_servers: &kube::runtime::reflector::Store<VirtualServer>,
        transport_servers: &kube::runtime::reflector::Store<TransportServer>,
        cluster: &dyn ClusterView,
        defaults: &ModelDefaults,
    ) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // Read before the stores: a change that lands while building bumps it again.
        let version = self.version.load(Ordering::SeqCst);
        if let Some((built_at, snapshot)) = &cache.snapshot {
            if *built_at == version {
                return snapshot.clone();
            }
        }
        let started = std::time::Instant::now();
        let snapshot =
            Arc::new(cache.fleet.update(&virtual_servers.state(), &transport_servers.state(), cluster, defaults));
        tracing::debug!(
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
        ModelDefaults { partition: "k8s".into(), pool_member_type: PoolMemberType::Nodeport, node_selector: None }
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
        },
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
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            4 => (0..6usize, 0..2u8, prop_oneof![Just(80u16), Just(443u16)], 0..3u8, proptest::option::of(any::<bool>()), any::<bool>())
                .prop_map(|(i, address, port, service, mode, partition)| Change::PutVirtual { i, address, port, service, mode, partition }),
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
        fn apply(&mut self, change: &Change) {
            match change.clone() {
                Change::PutVirtual { i, address, port, service, mode, partition } => {
                    let mut spec = json!({
                        "virtualAddress": format!("10.0.0.{}", address + 1),
                        "port": port,
                        "pools": [{"name": "web", "service": format!("svc{service}"), "servicePort": 80}],
                    });
                    if let Some(cluster) = mode {
                        spec["poolMemberType"] = json!(if cluster { "cluster" } else { "nodeport" });
                    }
                    if partition {
                        spec["partition"] = json!("team");
                    }
                    let object = json!({
                        "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                        "metadata": {"name": format!("vs{i}"), "namespace": NAMESPACE, "uid": format!("uid-vs{i}"),
                                     "creationTimestamp": created(i)},
                        "spec": spec,
                    });
                    self.virtual_servers.insert(i, Arc::new(serde_json::from_value(object).expect("VirtualServer")));
                }
                Change::VirtualStatus { i, note } => {
                    if let Some(vs) = self.virtual_servers.get(&i) {
                        let mut vs = vs.as_ref().clone();
                        let mut status = vs.status.clone().unwrap_or_default();
                        status.partition = Some(format!("seen-{note}"));
                        vs.status = Some(status);
                        self.virtual_servers.insert(i, Arc::new(vs));
                    }
                }
                Change::DeleteVirtual { i } => {
                    self.virtual_servers.remove(&i);
                }
                Change::Deleting { i } => {
                    if let Some(vs) = self.virtual_servers.get(&i) {
                        let mut vs = vs.as_ref().clone();
                        vs.metadata.deletion_timestamp = vs.metadata.creation_timestamp.clone();
                        self.virtual_servers.insert(i, Arc::new(vs));
                    }
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
                }
                Change::DeleteTransport { i } => {
                    self.transport_servers.remove(&i);
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
                    self.cluster.add_service(serde_json::from_value(object).expect("Service"));
                }
                Change::DeleteService { service } => self.cluster.remove_service(NAMESPACE, &format!("svc{service}")),
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
                    self.cluster.add_endpoint_slice(serde_json::from_value(object).expect("EndpointSlice"));
                }
                Change::DeleteSlice { service } => {
                    self.cluster.remove_endpoint_slice(NAMESPACE, &format!("svc{service}-abc"))
                }
                Change::PutNode { node, ready } => {
                    let object = json!({
                        "metadata": {"name": format!("node{node}")},
                        "status": {"addresses": [{"type": "InternalIP", "address": format!("192.168.0.{}", node + 1)}],
                                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
                    });
                    self.cluster.add_node(serde_json::from_value(object).expect("Node"));
                }
                Change::DeleteNode { node } => self.cluster.remove_node(&format!("node{node}")),
            }
        }

        fn virtual_servers(&self) -> Vec<Arc<VirtualServer>> {
            self.virtual_servers.values().cloned().collect()
        }

        fn transport_servers(&self) -> Vec<Arc<TransportServer>> {
            self.transport_servers.values().cloned().collect()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The incremental desired state equals the reference build after every change of a
        /// random sequence, and its renderings are those of the reference applications.
        #[test]
        fn incremental_state_equals_the_reference_after_any_sequence_of_changes(
            changes in proptest::collection::vec(change(), 1..40)
        ) {
            let mut world = World::default();
            let mut incremental = IncrementalFleet::default();
            for change in &changes {
                world.apply(change);
                let (vss, tss) = (world.virtual_servers(), world.transport_servers());
                let snapshot = incremental.update(&vss, &tss, &world.cluster, &defaults());
                let reference = build_fleet(vss.iter().map(AsRef::as_ref), tss.iter().map(AsRef::as_ref), &world.cluster, &defaults());
                prop_assert_eq!(&snapshot.fleet, &reference, "after {:?}", change);
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
    fn an_unchanged_world_builds_nothing_and_a_status_write_rebuilds_nothing() {
        let mut world = World::default();
        world.apply(&Change::PutService { service: 0, node_port: false });
        world.apply(&Change::PutSlice { service: 0, endpoints: vec![1, 2] });
        for i in 0..5 {
            world.apply(&Change::PutVirtual {
                i,
                address: 0,
                port: 80 + i as u16,
                service: 0,
                mode: Some(true),
                partition: false,
            });
        }
        let mut incremental = IncrementalFleet::default();
        let first =
            incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        assert_eq!((incremental.built_last, incremental.rendered_last), (5, 5));
        assert_eq!(first.rendered["k8s"].len(), 5);

        let again =
            incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        assert_eq!((incremental.built_last, incremental.rendered_last), (0, 0), "nothing changed");
        assert!(Arc::ptr_eq(&first.rendered["k8s"], &again.rendered["k8s"]), "the same list is handed out again");

        world.apply(&Change::VirtualStatus { i: 3, note: 1 });
        incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        assert_eq!(incremental.built_last, 0, "only the status changed");

        // An endpoint change concerns the five objects on that Service, and only them.
        world.apply(&Change::PutService { service: 1, node_port: false });
        world.apply(&Change::PutVirtual { i: 5, address: 1, port: 80, service: 1, mode: Some(true), partition: false });
        incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        assert_eq!((incremental.built_last, incremental.rendered_last), (1, 1), "the new object only");
        world.apply(&Change::PutVirtual { i: 6, address: 1, port: 81, service: 0, mode: Some(true), partition: true });
        let before =
            incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        world.apply(&Change::PutSlice { service: 1, endpoints: vec![3] });
        let after =
            incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        assert_eq!((incremental.built_last, incremental.rendered_last), (1, 1), "the object on svc1 only");
        assert!(!Arc::ptr_eq(&before.rendered["k8s"], &after.rendered["k8s"]), "its partition's list changed");
        assert!(Arc::ptr_eq(&before.rendered["team"], &after.rendered["team"]), "the other partition's did not");
        // Cluster-mode objects do not read the nodes.
        world.apply(&Change::PutNode { node: 0, ready: true });
        incremental.update(&world.virtual_servers(), &world.transport_servers(), &world.cluster, &defaults());
        assert_eq!(incremental.built_last, 0, "a node change concerns nodeport objects only");
    }
}
