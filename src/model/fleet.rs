//! All VirtualServers → applications grouped by partition, with conflicts resolved.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::application::{build_application, BuiltApplication};
use super::{ClusterView, DesiredApplication, InvalidSpec, ModelDefaults, ObjectKey, UnresolvedRef};
use crate::crd::VirtualServer;

/// What the model decided for one VirtualServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppOutcome {
    /// The application is part of its partition's desired state.
    Included { partition: String, application: String, members: usize, unresolved: Vec<UnresolvedRef> },
    /// The spec is invalid: nothing is programmed for it.
    Invalid(InvalidSpec),
    /// Another, older VirtualServer already uses the address and port.
    AddressConflict { address: IpAddr, port: u16, holder: ObjectKey },
}

/// The desired state of every partition, and the outcome for every VirtualServer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Partition → its applications, sorted by name.
    pub partitions: BTreeMap<String, Vec<DesiredApplication>>,
    pub outcomes: BTreeMap<ObjectKey, AppOutcome>,
}

/// Builds the desired state of every partition from every VirtualServer.
///
/// VirtualServers being deleted are left out. When two claim the same address and port, the
/// older one (by creation time, then namespace/name) keeps it: an object never loses its
/// address because a newer one was created.
pub fn build_fleet<'a>(
    virtual_servers: impl IntoIterator<Item = &'a VirtualServer>,
    cluster: &dyn ClusterView,
    defaults: &ModelDefaults,
) -> Fleet {
    let mut live: Vec<&VirtualServer> =
        virtual_servers.into_iter().filter(|vs| vs.metadata.deletion_timestamp.is_none()).collect();
    live.sort_by(|a, b| {
        let created = |vs: &VirtualServer| vs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(a).cmp(&created(b)).then_with(|| object_key(a).cmp(&object_key(b)))
    });

    let mut fleet = Fleet::default();
    let mut claimed: HashMap<(IpAddr, u16), ObjectKey> = HashMap::new();
    for vs in live {
        let key = object_key(vs);
        match build_application(vs, cluster, defaults) {
            Err(invalid) => {
                fleet.outcomes.insert(key, AppOutcome::Invalid(invalid));
            }
            Ok(BuiltApplication { application, unresolved }) => {
                let socket = (application.virtual_address, application.port);
                if let Some(holder) = claimed.get(&socket) {
                    fleet.outcomes.insert(
                        key,
                        AppOutcome::AddressConflict { address: socket.0, port: socket.1, holder: holder.clone() },
                    );
                    continue;
                }
                claimed.insert(socket, key.clone());
                fleet.outcomes.insert(
                    key,
                    AppOutcome::Included {
                        partition: application.partition.clone(),
                        application: application.name.clone(),
                        members: application.member_count(),
                        unresolved,
                    },
                );
                fleet.partitions.entry(application.partition.clone()).or_default().push(application);
            }
        }
    }
    for apps in fleet.partitions.values_mut() {
        apps.sort_by(|a, b| a.name.cmp(&b.name));
    }
    fleet
}

pub fn object_key(vs: &VirtualServer) -> ObjectKey {
    ObjectKey::of(&vs.metadata)
}
