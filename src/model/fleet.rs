//! All VirtualServers and TransportServers → applications grouped by partition, with
//! listener conflicts resolved.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::application::{build_application, BuiltApplication};
use super::transport::build_transport_application;
use super::{
    ClusterView, DesiredApplication, InvalidSpec, Listener, ModelDefaults, ObjectKey, RouteClaim, SourceId, SourceKind,
    UnresolvedRef,
};
use crate::crd::{TransportServer, VirtualServer};

/// What the model decided for one VirtualServer or TransportServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppOutcome {
    /// The application is part of its partition's desired state.
    Included { partition: String, application: String, members: usize, unresolved: Vec<UnresolvedRef> },
    /// The spec is invalid: nothing is programmed for it.
    Invalid(InvalidSpec),
    /// Another, older object already uses the address, port and protocol.
    AddressConflict { listener: Listener, holder: SourceId },
    /// Another, older object of the same listener group already serves this host and path.
    RouteConflict { route: RouteClaim, holder: SourceId },
    /// The spec is valid but a reference it cannot work without (a TLS Secret) does not
    /// resolve: nothing is programmed for it until it does.
    Blocked { partition: String, unresolved: Vec<UnresolvedRef> },
}

/// The desired state of every partition, and the outcome for every object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Partition → its applications, sorted by name (shared with the builds they came from).
    pub partitions: BTreeMap<String, Vec<Arc<DesiredApplication>>>,
    pub outcomes: BTreeMap<SourceId, AppOutcome>,
}

impl Fleet {
    pub fn outcome(&self, kind: SourceKind, key: &ObjectKey) -> Option<&AppOutcome> {
        self.outcomes.get(&SourceId { kind, key: key.clone() })
    }
}

/// One object the fleet is built from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Virtual(&'a VirtualServer),
    Transport(&'a TransportServer),
}

impl Source<'_> {
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Virtual(vs) => &vs.metadata,
            Self::Transport(ts) => &ts.metadata,
        }
    }

    pub fn id(&self) -> SourceId {
        let kind = match self {
            Self::Virtual(_) => SourceKind::VirtualServer,
            Self::Transport(_) => SourceKind::TransportServer,
        };
        SourceId { kind, key: ObjectKey::of(self.metadata()) }
    }

    /// Whether the fleet includes the object at all (objects being deleted are left out).
    pub fn is_live(&self) -> bool {
        self.metadata().deletion_timestamp.is_none()
    }

    /// The order in which objects claim listeners: older first (creation time, then kind,
    /// namespace and name).
    pub fn claim_order(&self) -> ClaimOrder {
        (self.metadata().creation_timestamp.as_ref().map(|t| t.0), self.id())
    }

    pub fn build(&self, cluster: &dyn ClusterView, defaults: &ModelDefaults) -> Result<BuiltApplication, InvalidSpec> {
        match self {
            Self::Virtual(vs) => build_application(vs, cluster, defaults),
            Self::Transport(ts) => build_transport_application(ts, cluster, defaults),
        }
    }
}

/// One object's build as the fleet is assembled from it: the application is shared, so the
/// fleet holds the builds' applications rather than copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    Invalid(InvalidSpec),
    Application { application: Arc<DesiredApplication>, unresolved: Vec<UnresolvedRef> },
}

impl From<Result<BuiltApplication, InvalidSpec>> for Built {
    fn from(built: Result<BuiltApplication, InvalidSpec>) -> Self {
        match built {
            Ok(BuiltApplication { application, unresolved }) => {
                Self::Application { application: Arc::new(application), unresolved }
            }
            Err(invalid) => Self::Invalid(invalid),
        }
    }
}

/// See [`Source::claim_order`].
pub type ClaimOrder = (Option<k8s_openapi::jiff::Timestamp>, SourceId);

/// Builds the desired state of every partition from every VirtualServer and TransportServer.
///
/// Objects being deleted are left out. When two claim the same listener (address, port and
/// protocol; a VirtualServer redirecting HTTP to HTTPS also claims port 80), the older one (by
/// creation time, then kind, namespace and name) keeps it: an object never loses its address
/// because a newer one was created.
///
/// This is the reference: the controller keeps the same result up to date incrementally
/// (controller/desired.rs), and a property test checks both agree.
pub fn build_fleet<'a>(
    virtual_servers: impl IntoIterator<Item = &'a VirtualServer>,
    transport_servers: impl IntoIterator<Item = &'a TransportServer>,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
) -> Fleet {
    let mut live: Vec<Source<'a>> = virtual_servers
        .into_iter()
        .map(Source::Virtual)
        .chain(transport_servers.into_iter().map(Source::Transport))
        .filter(Source::is_live)
        .collect();
    live.sort_by_cached_key(Source::claim_order);
    let built: Vec<(SourceId, Built)> =
        live.iter().map(|source| (source.id(), source.build(cluster, defaults).into())).collect();
    assemble_fleet(built.iter().map(|(id, built)| (id, built)))
}

/// The fleet from each live object's build, given in claim order (see [`Source::claim_order`]):
/// listener claims resolved, outcomes decided, applications grouped by partition.
pub fn assemble_fleet<'b>(built_in_claim_order: impl IntoIterator<Item = (&'b SourceId, &'b Built)>) -> Fleet {
    let mut fleet = Fleet::default();
    // Holder of each claim, with its application.
    let mut claimed: HashMap<Listener, (SourceId, Arc<DesiredApplication>)> = HashMap::new();
    let mut claimed_routes: HashMap<RouteClaim, SourceId> = HashMap::new();
    for (id, built) in built_in_claim_order {
        let id = id.clone();
        match built {
            Built::Invalid(invalid) => {
                fleet.outcomes.insert(id, AppOutcome::Invalid(invalid.clone()));
            }
            Built::Application { application, unresolved } => {
                let listeners = application.claims();
                let conflict = listeners.iter().find_map(|listener| {
                    let (holder, theirs) = claimed.get(listener)?;
                    (!application.shares_listener_with(theirs, listener)).then(|| (*listener, holder.clone()))
                });
                if let Some((listener, holder)) = conflict {
                    fleet.outcomes.insert(id, AppOutcome::AddressConflict { listener, holder });
                    continue;
                }
                let routes = application.route_claims();
                let route_conflict =
                    routes.iter().find_map(|route| Some((route.clone(), claimed_routes.get(route)?.clone())));
                if let Some((route, holder)) = route_conflict {
                    fleet.outcomes.insert(id, AppOutcome::RouteConflict { route, holder });
                    continue;
                }
                for listener in listeners {
                    claimed.entry(listener).or_insert_with(|| (id.clone(), application.clone()));
                }
                for route in routes {
                    claimed_routes.insert(route, id.clone());
                }
                if unresolved.iter().any(UnresolvedRef::blocks_programming) {
                    fleet.outcomes.insert(
                        id,
                        AppOutcome::Blocked {
                            partition: application.partition.clone(),
                            unresolved: unresolved.clone(),
                        },
                    );
                    continue;
                }
                fleet.outcomes.insert(
                    id,
                    AppOutcome::Included {
                        partition: application.partition.clone(),
                        application: application.name.clone(),
                        members: application.member_count(),
                        unresolved: unresolved.clone(),
                    },
                );
                fleet.partitions.entry(application.partition.clone()).or_default().push(application.clone());
            }
        }
    }
    for apps in fleet.partitions.values_mut() {
        // Stable: the members of a listener group stay in claim order.
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        *apps = super::listener_group::merge_groups(std::mem::take(apps));
    }
    fleet
}
