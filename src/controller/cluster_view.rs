//! [`ClusterView`] over the controller's reflector stores.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use crate::model::EndpointSliceView;
use crate::model::ServiceView;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::model::cluster::slice_service_name;
use crate::model::{ClusterView, ObjectKey};

/// EndpointSliceView names by the Service they belong to, fed by the slice watch, so that finding
/// a Service's slices does not scan every slice in the cluster.
///
/// A re-list is collected aside and swapped in when it completes, as the reflector does with
/// its store; a lookup also checks that the store's object still names the Service.
#[derive(Default)]
pub struct SliceIndex {
    current: RwLock<SliceMap>,
    relisting: std::sync::Mutex<Option<SliceMap>>,
}

/// (namespace, service) → slice names, and (namespace, slice) → its service.
#[derive(Default)]
struct SliceMap {
    by_service: HashMap<(String, String), BTreeSet<String>>,
    service_of: HashMap<(String, String), String>,
}

impl SliceMap {
    /// Indexes a slice; returns the Service it was listed under before when that was another.
    fn insert(&mut self, slice: &EndpointSliceView) -> Option<ObjectKey> {
        let (Some(namespace), Some(name)) = (slice.metadata.namespace.clone(), slice.metadata.name.clone()) else {
            return None;
        };
        let before = self.remove(&namespace, &name);
        let service = slice_service_name(slice);
        if let Some(service) = service {
            self.by_service.entry((namespace.clone(), service.to_string())).or_default().insert(name.clone());
            self.service_of.insert((namespace.clone(), name), service.to_string());
        }
        before.filter(|left| Some(left.as_str()) != service).map(|left| ObjectKey { namespace, name: left })
    }

    /// Drops a slice from the index; returns the Service it was listed under.
    fn remove(&mut self, namespace: &str, name: &str) -> Option<String> {
        let service = self.service_of.remove(&(namespace.to_string(), name.to_string()))?;
        let key = (namespace.to_string(), service);
        if let Some(names) = self.by_service.get_mut(&key) {
            names.remove(name);
            if names.is_empty() {
                self.by_service.remove(&key);
            }
        }
        Some(key.1)
    }
}

impl SliceIndex {
    /// Follows one event of the slice watch. Returns the Service an updated slice left (its
    /// Service label changed): that Service's slices changed too.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<EndpointSliceView>) -> Option<ObjectKey> {
        use kube::runtime::watcher::Event;
        let mut relisting = self.relisting.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Init => *relisting = Some(SliceMap::default()),
            Event::InitApply(slice) => {
                if let Some(pending) = relisting.as_mut() {
                    pending.insert(slice);
                }
            }
            Event::InitDone => {
                if let Some(complete) = relisting.take() {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = complete;
                }
            }
            Event::Apply(slice) => return self.current.write().unwrap_or_else(PoisonError::into_inner).insert(slice),
            Event::Delete(slice) => {
                let (Some(namespace), Some(name)) = (&slice.metadata.namespace, &slice.metadata.name) else {
                    return None;
                };
                self.current.write().unwrap_or_else(PoisonError::into_inner).remove(namespace, name);
            }
        }
        None
    }

    /// Names of the slices of Service `namespace/service`.
    pub fn slices_of(&self, namespace: &str, service: &str) -> Vec<String> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .by_service
            .get(&(namespace.to_string(), service.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Set once every watch cache of the controllers has completed its first list; any number of
/// tasks may wait for it.
///
/// kube-runtime's `Store::wait_until_ready` cannot be awaited by several tasks at once: its
/// `DelayedInit` polls a single oneshot receiver, which keeps only the last task's waker, so
/// the other waiters are never woken (seen as a reconcile that waited for ever while another,
/// started at the same moment, went on; kube's own Controller is one more waiter). So the
/// watches report their first complete list here instead ([`WatchesListed::listed`], on the
/// `InitDone` event, after the store took it in), and this broadcasts readiness.
#[derive(Clone)]
pub struct CachesReady(tokio::sync::watch::Receiver<bool>);

impl CachesReady {
    /// Readiness of the watches named `watches`, and where they report their first lists.
    pub fn of_watches(watches: &[&'static str]) -> (Self, Arc<WatchesListed>) {
        let (ready, receiver) = tokio::sync::watch::channel(watches.is_empty());
        let listed = WatchesListed { pending: std::sync::Mutex::new(watches.iter().copied().collect()), ready };
        (Self(receiver), Arc::new(listed))
    }

    /// A receiver of the readiness (the readiness probe reads it).
    pub fn receiver(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.clone()
    }

    /// Waits until the caches are ready; Err when they never will be (the watches stopped).
    pub async fn wait(&self) -> Result<(), CachesNeverReady> {
        self.0.clone().wait_for(|ready| *ready).await.map(|_| ()).map_err(|_| CachesNeverReady)
    }
}

/// Where the watches report that their cache holds a complete list.
pub struct WatchesListed {
    pending: std::sync::Mutex<BTreeSet<&'static str>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl WatchesListed {
    /// The watch `watch` completed a list (its cache holds it now).
    pub fn listed(&self, watch: &'static str) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.remove(watch) && pending.is_empty() {
            self.ready.send_replace(true);
        }
    }

    /// An inspector for a watch's events that reports its lists.
    pub fn reporter<K>(
        self: &Arc<Self>,
        watch: &'static str,
    ) -> impl FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static {
        let listed = self.clone();
        move |event| {
            if matches!(event, kube::runtime::watcher::Event::InitDone) {
                listed.listed(watch);
            }
        }
    }
}

/// The watches stopped before their caches were complete.
#[derive(Debug, thiserror::Error)]
#[error("the watch caches never became ready")]
pub struct CachesNeverReady;

#[derive(Clone)]
pub struct StoreView {
    pub services: Store<ServiceView>,
    pub endpoint_slices: Store<EndpointSliceView>,
    pub slice_index: Arc<SliceIndex>,
    pub nodes: Store<Node>,
    /// Secrets of type kubernetes.io/tls only (the watch selects them by type).
    pub secrets: Store<Secret>,
    /// Gateway API ReferenceGrants; None when Gateway API is not installed.
    pub reference_grants: Option<Store<crate::crd::ReferenceGrant>>,
    /// BigIpListenerGroups; None when their CRD is not installed.
    pub listener_groups: Option<Store<crate::crd::BigIpListenerGroup>>,
    /// BigIpPolicies; None when their CRD is not installed.
    pub policies: Option<Store<crate::crd::BigIpPolicy>>,
}

impl ClusterView for StoreView {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServiceView>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSliceView>> {
        self.slice_index
            .slices_of(namespace, service)
            .into_iter()
            .filter_map(|name| self.endpoint_slices.get(&ObjectRef::new(&name).within(namespace)))
            .filter(|slice| slice_service_name(slice) == Some(service))
            .collect()
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.state()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets
            .get(&ObjectRef::new(name).within(namespace))
            .filter(|s| s.type_.as_deref() == Some(crate::model::tls::TLS_SECRET_TYPE))
    }

    fn reference_grants(&self, namespace: &str) -> Vec<Arc<crate::crd::ReferenceGrant>> {
        let Some(grants) = &self.reference_grants else { return Vec::new() };
        grants.state().into_iter().filter(|g| g.metadata.namespace.as_deref() == Some(namespace)).collect()
    }

    fn listener_group(&self, name: &str) -> Option<Arc<crate::crd::BigIpListenerGroup>> {
        self.listener_groups.as_ref()?.get(&ObjectRef::new(name))
    }

    fn policy(&self, namespace: &str, name: &str) -> Option<Arc<crate::crd::BigIpPolicy>> {
        self.policies.as_ref()?.get(&ObjectRef::new(name).within(namespace))
    }
}

/// Confirms deletions with a fresh (quorum) list of VirtualServers and TransportServers from
/// the apiserver rather
/// than the watch cache: the applications are gone when the fleet built from the fresh list
/// does not have them in the partition either.
pub struct FreshListConfirmation {
    pub virtual_servers: kube::Api<crate::crd::VirtualServer>,
    pub transport_servers: kube::Api<crate::crd::TransportServer>,
    /// The operator's label selector: the same objects as its watch.
    pub selector: Option<String>,
    pub cluster: StoreView,
    pub defaults: crate::model::ModelDefaults,
}

impl crate::controller::partitions::DeletionConfirmation for FreshListConfirmation {
    fn confirm<'a>(
        &'a self,
        partition: &'a str,
        removed: &'a std::collections::BTreeSet<String>,
    ) -> futures::future::BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            // No resourceVersion: a consistent read from etcd, never from a cache.
            let params = match &self.selector {
                Some(selector) => kube::api::ListParams::default().labels(selector),
                None => kube::api::ListParams::default(),
            };
            let fresh = self.virtual_servers.list(&params).await.map_err(|e| e.to_string())?;
            let fresh_transport = self.transport_servers.list(&params).await.map_err(|e| e.to_string())?;
            let fleet = crate::model::build_fleet(
                fresh.items.iter(),
                fresh_transport.items.iter(),
                &self.cluster,
                &self.defaults,
            );
            let still_there =
                fleet.partitions.get(partition).is_some_and(|apps| apps.iter().any(|app| removed.contains(&app.name)));
            Ok(!still_there)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher::Event;
    use std::time::Duration;

    /// Why [`CachesReady`] exists: of two tasks waiting on kube-runtime's store readiness at
    /// once, only the one that polled last is woken. If kube-runtime fixes this, the first
    /// assertion fails and CachesReady can go.
    #[tokio::test]
    async fn kube_store_readiness_wakes_only_the_last_of_two_waiters() {
        let (store, mut writer) = kube::runtime::reflector::store::<ConfigMap>();
        let (first, second) = (store.clone(), store.clone());
        let first = tokio::spawn(async move { first.wait_until_ready().await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = tokio::spawn(async move { second.wait_until_ready().await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        assert!(tokio::time::timeout(Duration::from_secs(1), second).await.is_ok(), "the last waiter is woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(500), first).await.is_err(),
            "the first waiter is never woken"
        );
    }

    #[tokio::test]
    async fn every_waiter_is_woken_once_every_watch_listed() {
        let (ready, listed) = CachesReady::of_watches(&["services", "nodes"]);
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let ready = ready.clone();
                tokio::spawn(async move { ready.wait().await.is_ok() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut report = listed.reporter::<ConfigMap>("services");
        report(&Event::Init);
        report(&Event::InitDone);
        assert!(tokio::time::timeout(Duration::from_millis(100), ready.wait()).await.is_err(), "nodes not listed yet");
        listed.listed("nodes");
        for waiter in waiters {
            let woken = tokio::time::timeout(Duration::from_secs(1), waiter).await;
            assert!(matches!(woken, Ok(Ok(true))), "{woken:?}");
        }
        // A waiter that comes after readiness returns at once; a re-list changes nothing.
        report(&Event::Init);
        assert!(tokio::time::timeout(Duration::from_millis(100), ready.wait()).await.is_ok());
    }

    #[tokio::test]
    async fn caches_whose_watches_stopped_say_so() {
        let (ready, listed) = CachesReady::of_watches(&["services"]);
        drop(listed);
        let outcome = tokio::time::timeout(Duration::from_secs(1), ready.wait()).await;
        assert!(matches!(outcome, Ok(Err(CachesNeverReady))), "{outcome:?}");
    }

    fn slice(name: &str, service: &str) -> EndpointSliceView {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": [],
        }))
        .expect("EndpointSlice")
    }

    #[test]
    fn a_slice_that_moves_to_another_service_reports_the_one_it_left() {
        let index = SliceIndex::default();
        assert_eq!(index.observe(&Event::Apply(slice("web-1", "web"))), None);
        assert_eq!(index.observe(&Event::Apply(slice("web-1", "web"))), None, "an update in place");
        assert_eq!(index.slices_of("shop", "web"), vec!["web-1".to_string()]);
        let left = index.observe(&Event::Apply(slice("web-1", "api")));
        assert_eq!(left, Some(ObjectKey { namespace: "shop".into(), name: "web".into() }));
        assert!(index.slices_of("shop", "web").is_empty());
        assert_eq!(index.slices_of("shop", "api"), vec!["web-1".to_string()]);
        assert_eq!(index.observe(&Event::Delete(slice("web-1", "api"))), None);
        assert!(index.slices_of("shop", "api").is_empty());
    }
}
