//! The check BIG-IP applies when AS3 deploys a tenant: no two virtual servers may listen on
//! the same destination. A tenant failing it is not deployed (AS3's parser-level checks, which
//! refuse the whole request, are in `digest`).
//!
//! A change is checked for what it changes: the Applications it creates or replaces (all of
//! the tenant's when the tenant's own properties or its `Shared` Application change), against a
//! [`ListenerIndex`] of every deployed virtual server that is kept beside the tenants.

use super::model::{self, Listener, LtmVirtual, Tenant, TenantSet, Tenants};
use super::tenant::TenantDiff;

/// Checks the change `diff` makes when `tenant` is deployed under `name` next to the other
/// deployed tenants, whose virtual servers `listeners` holds. Returns the listeners after the
/// change. The error text is what AS3 or BIG-IP would report.
pub(super) fn check_change(
    name: &str,
    tenant: &Tenant,
    diff: &TenantDiff,
    deployed: &Tenants,
    listeners: &ListenerIndex,
    route_domains: &RouteDomains,
) -> Result<ListenerIndex, String> {
    if let Some(id) = model::tenant_default_route_domain(tenant) {
        route_domains.check(&id)?;
    }
    let tenants = TenantSet::replacing(deployed, name, tenant);
    // Addresses in `Shared` and the tenant's route domain reach every Application. (Pointers
    // were resolved with the request, before anything is deployed: see `digest`.)
    let whole_tenant = diff.properties_changed || diff.touches("Shared");
    let affected: Vec<String> = if whole_tenant { tenant.application_names() } else { diff.changed.clone() };

    let mut listeners = listeners.clone();
    let released: Vec<String> = match deployed.get(name) {
        Some(held) if whole_tenant => held.application_names(),
        _ => diff.changed.iter().chain(&diff.removed).cloned().collect(),
    };
    for application in &released {
        listeners.release(name, application);
    }
    if name == "Common" && whole_tenant {
        // Other tenants' virtuals may use addresses of /Common/Shared: hold them as they now
        // resolve (BIG-IP checks the tenant being deployed, as before).
        for (other, other_tenant) in tenants.iter().filter(|(other, _)| *other != name) {
            listeners.replace_tenant(other, Some(other_tenant), Some(other_tenant), tenants);
        }
    }
    for application in &affected {
        listeners.claim(model::application_virtuals(name, tenant, application, tenants), route_domains)?;
    }
    Ok(listeners)
}

/// The route domains of the BIG-IP, by id: route domain 0 always, others as created by an
/// administrator (`net/route-domain`, named by their id in the simulator). AS3 does not create
/// route domains; an address or a tenant's `defaultRouteDomain` naming a missing one fails
/// that tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RouteDomains(std::sync::Arc<std::collections::BTreeSet<String>>);

impl Default for RouteDomains {
    fn default() -> Self {
        Self::of(["0".to_owned()])
    }
}

impl RouteDomains {
    pub(super) fn of(ids: impl IntoIterator<Item = String>) -> Self {
        let mut ids: std::collections::BTreeSet<String> = ids.into_iter().collect();
        ids.insert("0".to_owned());
        Self(std::sync::Arc::new(ids))
    }

    /// The route domains among the device's `net/route-domain` objects (`/Common/2` → `2`).
    pub(super) fn from_device(full_paths: &[String]) -> Self {
        Self::of(full_paths.iter().filter_map(|path| path.rsplit('/').next()).map(str::to_owned))
    }

    fn check(&self, id: &str) -> Result<(), String> {
        if self.0.contains(id) {
            Ok(())
        } else {
            Err(format!("01020036:3: The requested route domain (/Common/{id}) was not found."))
        }
    }
}
/// A virtual server holding a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    tenant: String,
    application: String,
    /// `tcp`, `udp`, `sctp` or `any`.
    protocol: String,
    full_path: String,
}

/// The destinations of every deployed virtual server, and which Application's virtuals hold
/// them. Persistent maps: a request works on a copy at O(1) and changes it per Application.
#[derive(Clone, Debug, Default)]
pub(super) struct ListenerIndex {
    holders: imbl::HashMap<Listener, Vec<Holder>>,
    /// `(tenant, application)` → the destinations its virtuals hold.
    held_by: imbl::HashMap<(String, String), Vec<Listener>>,
    /// Address (with route domain) → the virtual address objects using it: their partition
    /// and the virtual holding them. BIG-IP has one virtual address object per IP address, so
    /// two partitions cannot each have one (unless AS3's `shareAddresses` puts it in /Common).
    addresses: imbl::HashMap<String, Vec<AddressUse>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AddressUse {
    partition: String,
    tenant: String,
    application: String,
}

/// The partition of a virtual's virtual address object: `/T/10.0.0.1:80` → `T`.
fn address_partition(virtual_server: &LtmVirtual) -> String {
    virtual_server.destination.trim_start_matches('/').split('/').next().unwrap_or_default().to_owned()
}

fn protocols_collide(a: &str, b: &str) -> bool {
    a == b || a == "any" || b == "any"
}

fn conflict_message(virtual_path: &str, existing_path: &str) -> String {
    format!(
        "01070333:3: Virtual Server {virtual_path} illegally shares both address and vlan with Virtual Server {existing_path}."
    )
}

impl ListenerIndex {
    /// The listeners of every virtual server of `tenants`, as deployed (not checked again).
    pub(super) fn of(tenants: &Tenants) -> Self {
        let mut index = Self::default();
        for (name, tenant) in tenants {
            index.replace_tenant(name, None, Some(tenant), TenantSet::new(tenants));
        }
        index
    }

    /// Forgets what the virtuals of `tenant`'s `application` hold.
    pub(super) fn release(&mut self, tenant: &str, application: &str) {
        let Some(listeners) = self.held_by.remove(&(tenant.to_owned(), application.to_owned())) else { return };
        for listener in &listeners {
            let emptied = match self.addresses.get_mut(&listener.address) {
                Some(uses) => {
                    uses.retain(|used| used.tenant != tenant || used.application != application);
                    uses.is_empty()
                }
                None => false,
            };
            if emptied {
                self.addresses.remove(&listener.address);
            }
        }
        for listener in listeners {
            let emptied = match self.holders.get_mut(&listener) {
                Some(holders) => {
                    holders.retain(|holder| holder.tenant != tenant || holder.application != application);
                    holders.is_empty()
                }
                None => false,
            };
            if emptied {
                self.holders.remove(&listener);
            }
        }
    }

    /// Records the destinations `virtuals` (of one Application) hold, checking each against
    /// those already held; on a conflict, names both virtual servers as BIG-IP does.
    fn claim(&mut self, virtuals: Vec<LtmVirtual>, route_domains: &RouteDomains) -> Result<(), String> {
        for virtual_server in &virtuals {
            let Some(listener) = &virtual_server.listener else { continue };
            if let Some((_, id)) = listener.address.split_once('%') {
                route_domains.check(id)?;
            }
            let holder = self
                .holders
                .get(listener)
                .into_iter()
                .flatten()
                .find(|holder| protocols_collide(&holder.protocol, &virtual_server.ip_protocol));
            if let Some(holder) = holder {
                return Err(conflict_message(&virtual_server.full_path(), &holder.full_path));
            }
            let partition = address_partition(virtual_server);
            let elsewhere =
                self.addresses.get(&listener.address).into_iter().flatten().any(|used| used.partition != partition);
            if elsewhere {
                return Err(format!(
                    "0107176c:3: Invalid Virtual Address, the IP address {} already exists.",
                    listener.address
                ));
            }
            self.hold_one(virtual_server);
        }
        Ok(())
    }

    /// Records the destinations `virtuals` hold without checking them.
    fn hold(&mut self, virtuals: Vec<LtmVirtual>) {
        for virtual_server in &virtuals {
            self.hold_one(virtual_server);
        }
    }

    fn hold_one(&mut self, virtual_server: &LtmVirtual) {
        let Some(listener) = &virtual_server.listener else { return };
        let view = &virtual_server.view;
        self.holders.entry(listener.clone()).or_default().push(Holder {
            tenant: view.partition.clone(),
            application: view.application.clone(),
            protocol: virtual_server.ip_protocol.clone(),
            full_path: virtual_server.full_path(),
        });
        self.held_by.entry((view.partition.clone(), view.application.clone())).or_default().push(listener.clone());
        self.addresses.entry(listener.address.clone()).or_default().push(AddressUse {
            partition: address_partition(virtual_server),
            tenant: view.partition.clone(),
            application: view.application.clone(),
        });
    }

    /// Replaces what the virtuals of `current` (deployed as `name`) hold with what those of
    /// `replacement` hold, unchecked: a tenant removed, given back its previous content, or
    /// whose addresses resolve anew. Costs the two tenants, not the index.
    pub(super) fn replace_tenant(
        &mut self,
        name: &str,
        current: Option<&Tenant>,
        replacement: Option<&Tenant>,
        tenants: TenantSet<'_>,
    ) {
        for (application, _) in current.into_iter().flat_map(Tenant::applications) {
            self.release(name, application);
        }
        if let Some(tenant) = replacement {
            for (application, _) in tenant.applications() {
                self.hold(model::application_virtuals(name, tenant, application, tenants));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// Checks deploying the whole tenant `value` under `name` next to `working`.
    fn check_tenant(name: &str, value: &Value, working: &Tenants) -> Result<(), String> {
        let tenant = Tenant::from_value(value);
        let diff = Tenant::diff(working.get(name).map(AsRef::as_ref), &tenant);
        check_change(name, &tenant, &diff, working, &ListenerIndex::of(working), &RouteDomains::default()).map(|_| ())
    }

    fn deployed(tenants: &[(&str, Value)]) -> Tenants {
        tenants.iter().map(|(name, value)| ((*name).to_owned(), Arc::new(Tenant::from_value(value)))).collect()
    }

    fn http_tenant(address: &str, pool_pointer: &str) -> Value {
        json!({"class": "Tenant", "A": {"class": "Application",
            "service": {"class": "Service_HTTP", "virtualAddresses": [address], "pool": pool_pointer},
            "web_pool": {"class": "Pool", "monitors": [{"use": "mon"}]},
            "mon": {"class": "Monitor", "monitorType": "http"}}})
    }

    #[test]
    fn accepts_a_consistent_tenant() {
        let working = BTreeMap::new();
        assert_eq!(check_tenant("T", &http_tenant("10.0.0.1", "web_pool"), &working), Ok(()));
    }

    #[test]
    fn rejects_a_destination_used_by_another_tenant() {
        let working = deployed(&[("T1", http_tenant("10.0.0.1", "web_pool"))]);
        let error = check_tenant("T2", &http_tenant("10.0.0.1", "web_pool"), &working).expect_err("must fail");
        assert_eq!(
            error,
            "01070333:3: Virtual Server /T2/A/service illegally shares both address and vlan with Virtual Server /T1/A/service."
        );
        // Redeploying the tenant that holds the address is not a conflict with itself.
        assert_eq!(check_tenant("T1", &http_tenant("10.0.0.1", "web_pool"), &working), Ok(()));
        // Another address is fine.
        assert_eq!(check_tenant("T2", &http_tenant("10.0.0.2", "web_pool"), &working), Ok(()));
    }

    #[test]
    fn an_address_belongs_to_one_partition_unless_shared_through_common() {
        let working = deployed(&[("T1", http_tenant("10.0.0.1", "web_pool"))]);
        let mut other_port = http_tenant("10.0.0.1", "web_pool");
        other_port["A"]["service"]["virtualPort"] = json!(8080);
        assert_eq!(
            check_tenant("T2", &other_port, &working),
            Err("0107176c:3: Invalid Virtual Address, the IP address 10.0.0.1 already exists.".to_owned())
        );
        // Another port in the same partition is fine.
        let mut same_tenant = http_tenant("10.0.0.1", "web_pool");
        same_tenant["B"] = other_port["A"].clone();
        assert_eq!(check_tenant("T1", &same_tenant, &working), Ok(()));
        // With shareAddresses both tenants use /Common/10.0.0.2.
        let mut shared = http_tenant("10.0.0.2", "web_pool");
        shared["A"]["service"]["shareAddresses"] = json!(true);
        let working = deployed(&[("T1", shared.clone())]);
        shared["A"]["service"]["virtualPort"] = json!(8080);
        assert_eq!(check_tenant("T2", &shared, &working), Ok(()));
    }

    #[test]
    fn tcp_and_udp_may_share_a_destination() {
        let tcp = json!({"class": "Tenant", "A": {"class": "Application",
            "dns": {"class": "Service_TCP", "virtualAddresses": ["10.0.0.9"], "virtualPort": 53}}});
        let mut both = tcp.clone();
        both["B"] = json!({"class": "Application",
            "dns": {"class": "Service_UDP", "virtualAddresses": ["10.0.0.9"], "virtualPort": 53}});
        let working = deployed(&[("T1", tcp)]);
        assert_eq!(check_tenant("T1", &both, &working), Ok(()));
    }

    #[test]
    fn route_domains_the_device_lacks_fail_the_tenant() {
        let working = deployed(&[]);
        let in_rd = |address: &str, default: Option<u16>| {
            let mut tenant = http_tenant(address, "web_pool");
            if let Some(id) = default {
                tenant["defaultRouteDomain"] = json!(id);
            }
            Tenant::from_value(&tenant)
        };
        let check = |tenant: &Tenant, known: &[&str]| {
            let diff = Tenant::diff(None, tenant);
            let route_domains = RouteDomains::of(known.iter().map(|id| (*id).to_owned()));
            check_change("T", tenant, &diff, &working, &ListenerIndex::default(), &route_domains).map(|_| ())
        };
        let missing = |id: &str| Err(format!("01020036:3: The requested route domain (/Common/{id}) was not found."));
        assert_eq!(check(&in_rd("10.0.0.1%7", None), &[]), missing("7"));
        assert_eq!(check(&in_rd("10.0.0.1%7", None), &["7"]), Ok(()));
        assert_eq!(check(&in_rd("10.0.0.1", Some(2)), &["7"]), missing("2"), "the tenant's default, for its addresses");
        assert_eq!(check(&in_rd("10.0.0.1", Some(2)), &["2"]), Ok(()));
        assert_eq!(check(&in_rd("10.0.0.1%0", None), &[]), Ok(()), "route domain 0 always exists");
        assert_eq!(
            RouteDomains::from_device(&["/Common/0".into(), "/Common/12".into()]),
            RouteDomains::of(["12".into()])
        );
    }

    #[test]
    fn a_per_application_change_is_checked_against_the_held_listeners() {
        let working =
            deployed(&[("T1", http_tenant("10.0.0.1", "web_pool")), ("T2", http_tenant("10.0.0.2", "web_pool"))]);
        let index = ListenerIndex::of(&working);
        let held = &working["T2"];
        let app = |address: &str| json!({"class": "Application", "svc": {"class": "Service_HTTP", "virtualAddresses": [address]}});

        // A new Application on an address another tenant holds.
        let clashing = held.with_applications([("B".to_owned(), app("10.0.0.1"))]);
        let diff = Tenant::diff(Some(held), &clashing);
        let error = check_change("T2", &clashing, &diff, &working, &index, &RouteDomains::default())
            .expect_err("10.0.0.1:80 is held by T1");
        assert!(error.contains("/T2/B/svc") && error.contains("/T1/A/service"), "{error}");

        // Moving T2's own Application to a new address frees the old one.
        let moved = held.with_applications([("A".to_owned(), app("10.0.0.3"))]);
        let diff = Tenant::diff(Some(held), &moved);
        let after =
            check_change("T2", &moved, &diff, &working, &index, &RouteDomains::default()).expect("10.0.0.3 is free");
        let taker = Tenant::from_value(&json!({"class": "Tenant", "C": app("10.0.0.2")}));
        let diff = Tenant::diff(None, &taker);
        let mut working_after = working.clone();
        working_after.insert("T2".to_owned(), Arc::new(moved));
        assert_eq!(
            check_change("T3", &taker, &diff, &working_after, &after, &RouteDomains::default()).map(|_| ()),
            Ok(())
        );
        assert!(
            check_change("T3", &taker, &diff, &working, &index, &RouteDomains::default()).is_err(),
            "before the move it is held"
        );
    }

    #[test]
    fn restoring_a_tenant_gives_back_its_listeners() {
        let working = deployed(&[("T1", http_tenant("10.0.0.1", "web_pool"))]);
        let mut index = ListenerIndex::of(&working);
        index.replace_tenant("T1", Some(&working["T1"]), None, TenantSet::new(&working));
        let taker = Tenant::from_value(&http_tenant("10.0.0.1", "web_pool"));
        let diff = Tenant::diff(None, &taker);
        assert!(
            check_change("T2", &taker, &diff, &working, &index, &RouteDomains::default()).is_ok(),
            "T1's listener was released"
        );
        index.replace_tenant("T1", None, Some(&working["T1"]), TenantSet::new(&working));
        assert!(
            check_change("T2", &taker, &diff, &working, &index, &RouteDomains::default()).is_err(),
            "T1 holds it again"
        );
    }
}
