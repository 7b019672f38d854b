//! What the controller needs from the kinds it reconciles (VirtualServer, TransportServer).

use k8s_openapi::NamespaceResourceScope;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crd::{PoolMemberType, TransportServer, VirtualServer, VirtualServerStatus};
use crate::model::SourceKind;

pub trait ManagedObject:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: SourceKind;
    fn status(&self) -> Option<&VirtualServerStatus>;
    /// `spec.partition` as written (None: the operator's default).
    fn spec_partition(&self) -> Option<&str>;
    /// Whether a pool of this object uses the Service `namespace/name` (a pool's Service is in
    /// the object's own namespace unless the pool names another).
    fn uses_service(&self, namespace: &str, name: &str) -> bool {
        self.pools().iter().any(|p| {
            self.pool_namespace(p) == namespace
                && (p.service == name || p.alternate_backends.iter().any(|b| b.service == name))
        })
    }
    /// Whether a pool of this object names a Service in `namespace` other than its own.
    fn refers_to_namespace(&self, namespace: &str) -> bool {
        self.meta().namespace.as_deref() != Some(namespace)
            && self.pools().iter().any(|p| p.namespace.as_deref() == Some(namespace))
    }
    /// The namespace of a pool's Service.
    fn pool_namespace<'a>(&'a self, pool: &'a crate::crd::Pool) -> &'a str {
        pool.namespace.as_deref().or(self.meta().namespace.as_deref()).unwrap_or_default()
    }
    /// The pools of the object.
    fn pools(&self) -> &[crate::crd::Pool];
    /// `spec.addressPool` when the object takes its address from a pool (no `virtualAddress`).
    fn address_pool(&self) -> Option<&str>;
    /// Whether the object reads the Secret `name` (in its namespace).
    fn uses_secret(&self, name: &str) -> bool;
    /// `spec.policy`: the BigIpPolicy of its namespace it names.
    fn policy(&self) -> Option<&str>;
    /// `spec.poolMemberType` as written (None: the operator's default).
    fn pool_member_type(&self) -> Option<PoolMemberType>;
    /// Whether the object's members are nodes (nodeport mode), so that Node changes concern it.
    fn uses_nodes(&self, default: PoolMemberType) -> bool {
        self.pool_member_type().unwrap_or(default) == PoolMemberType::Nodeport
    }
}

impl ManagedObject for VirtualServer {
    const KIND: SourceKind = SourceKind::VirtualServer;

    fn status(&self) -> Option<&VirtualServerStatus> {
        self.status.as_ref()
    }

    fn spec_partition(&self) -> Option<&str> {
        self.spec.partition.as_deref()
    }

    fn pools(&self) -> &[crate::crd::Pool] {
        &self.spec.pools
    }

    fn address_pool(&self) -> Option<&str> {
        self.spec.address_pool.as_deref().filter(|_| self.spec.virtual_address.is_empty())
    }

    fn pool_member_type(&self) -> Option<PoolMemberType> {
        self.spec.pool_member_type
    }

    fn policy(&self) -> Option<&str> {
        self.spec.policy.as_deref()
    }

    fn uses_secret(&self, name: &str) -> bool {
        self.spec.tls.as_ref().is_some_and(|tls| {
            tls.secret_name.as_deref() == Some(name)
                || tls.backend_ca_secret_name.as_deref() == Some(name)
                || tls.client_certificates.as_ref().is_some_and(|c| c.ca_secret_name == name)
        })
    }
}

impl ManagedObject for TransportServer {
    const KIND: SourceKind = SourceKind::TransportServer;

    fn status(&self) -> Option<&VirtualServerStatus> {
        self.status.as_ref()
    }

    fn spec_partition(&self) -> Option<&str> {
        self.spec.partition.as_deref()
    }

    fn pools(&self) -> &[crate::crd::Pool] {
        std::slice::from_ref(&self.spec.pool)
    }

    fn address_pool(&self) -> Option<&str> {
        self.spec.address_pool.as_deref().filter(|_| self.spec.virtual_address.is_empty())
    }

    fn uses_secret(&self, name: &str) -> bool {
        self.spec.tls.as_ref().is_some_and(|tls| {
            tls.secret_name.as_deref() == Some(name)
                || tls.backend_ca_secret_name.as_deref() == Some(name)
                || tls.client_certificates.as_ref().is_some_and(|c| c.ca_secret_name == name)
        })
    }

    fn policy(&self) -> Option<&str> {
        self.spec.policy.as_deref()
    }

    fn pool_member_type(&self) -> Option<PoolMemberType> {
        self.spec.pool_member_type
    }
}

/// The objects in `namespace` that match `uses`.
pub fn objects_in<K: ManagedObject>(store: &Store<K>, namespace: &str, uses: impl Fn(&K) -> bool) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|obj| obj.meta().namespace.as_deref() == Some(namespace))
        .filter(|obj| uses(obj))
        .map(|obj| ObjectRef::from(obj.as_ref()))
        .collect()
}
