//! The live configuration beside the stored declaration: edits made on the BIG-IP itself
//! (iControl REST, standing in for tmsh and the GUI) to objects AS3 created — a virtual
//! disabled or deleted, a pool member disabled or removed, a pool deleted. `GET /declare` does
//! not show them (it returns the stored declaration); the `/mgmt/tm/ltm` views do. When an
//! Application is posted again — even unchanged — AS3 compares it with the device and puts its
//! objects back as declared: its edits are dropped.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{LtmPool, LtmVirtual};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct VirtualEdit {
    deleted: bool,
    enabled: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PoolEdit {
    deleted: bool,
    /// Member full paths (`/Common/10.0.0.1:80`).
    removed_members: BTreeSet<String>,
    member_enabled: BTreeMap<String, bool>,
}

/// Edits by object full path (`/T/A/name`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LiveEdits {
    virtuals: BTreeMap<String, VirtualEdit>,
    pools: BTreeMap<String, PoolEdit>,
}

/// `/T/A/name` → (`T`, `A`).
fn application_of(full_path: &str) -> Option<(&str, &str)> {
    let mut parts = full_path.trim_start_matches('/').split('/');
    Some((parts.next()?, parts.next()?))
}

impl LiveEdits {
    pub(super) fn is_empty(&self) -> bool {
        self.virtuals.is_empty() && self.pools.is_empty()
    }

    /// The virtuals as the device serves them.
    pub(super) fn apply_to_virtuals(&self, virtuals: Vec<LtmVirtual>) -> Vec<LtmVirtual> {
        if self.virtuals.is_empty() {
            return virtuals;
        }
        virtuals
            .into_iter()
            .filter_map(|mut virtual_server| match self.virtuals.get(&virtual_server.full_path()) {
                Some(edit) if edit.deleted => None,
                Some(edit) => {
                    if let Some(enabled) = edit.enabled {
                        virtual_server.enabled = enabled;
                    }
                    Some(virtual_server)
                }
                None => Some(virtual_server),
            })
            .collect()
    }

    /// The pools (and their members) as the device serves them.
    pub(super) fn apply_to_pools(&self, pools: Vec<LtmPool>) -> Vec<LtmPool> {
        if self.pools.is_empty() {
            return pools;
        }
        pools.into_iter().filter_map(|pool| self.apply_to_pool(pool)).collect()
    }

    pub(super) fn apply_to_pool(&self, mut pool: LtmPool) -> Option<LtmPool> {
        let Some(edit) = self.pools.get(&pool.full_path()) else { return Some(pool) };
        if edit.deleted {
            return None;
        }
        pool.members.retain(|member| !edit.removed_members.contains(&member.full_path()));
        for member in &mut pool.members {
            if let Some(enabled) = edit.member_enabled.get(&member.full_path()) {
                member.admin_state = if *enabled { "enable" } else { "disable" }.to_owned();
            }
        }
        Some(pool)
    }

    pub(super) fn set_virtual_enabled(&mut self, full_path: &str, enabled: bool) {
        self.virtuals.entry(full_path.to_owned()).or_default().enabled = Some(enabled);
    }

    pub(super) fn delete_virtual(&mut self, full_path: &str) {
        self.virtuals.entry(full_path.to_owned()).or_default().deleted = true;
    }

    pub(super) fn delete_pool(&mut self, full_path: &str) {
        self.pools.entry(full_path.to_owned()).or_default().deleted = true;
    }

    pub(super) fn set_member_enabled(&mut self, pool: &str, member: &str, enabled: bool) {
        self.pools.entry(pool.to_owned()).or_default().member_enabled.insert(member.to_owned(), enabled);
    }

    pub(super) fn remove_member(&mut self, pool: &str, member: &str) {
        self.pools.entry(pool.to_owned()).or_default().removed_members.insert(member.to_owned());
    }

    /// Drops the edits of Application `/tenant/application` (AS3 deployed it again, or it is
    /// gone); whether there were any.
    pub(super) fn repair(&mut self, tenant: &str, application: &str) -> bool {
        let ours = |path: &String| application_of(path) == Some((tenant, application));
        let before = self.virtuals.len() + self.pools.len();
        self.virtuals.retain(|path, _| !ours(path));
        self.pools.retain(|path, _| !ours(path));
        before != self.virtuals.len() + self.pools.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LtmPoolMember;

    fn pool(members: &[&str]) -> LtmPool {
        LtmPool {
            partition: "T".into(),
            application: "A".into(),
            name: "web_pool".into(),
            load_balancing_mode: "round-robin".into(),
            monitor: None,
            min_active_members: 1,
            members: members
                .iter()
                .map(|address| LtmPoolMember {
                    name: format!("{address}:80"),
                    partition: "Common".into(),
                    address: (*address).into(),
                    port: 80,
                    admin_state: "enable".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn edits_change_the_live_view_until_the_application_is_repaired() {
        let mut edits = LiveEdits::default();
        edits.remove_member("/T/A/web_pool", "/Common/10.0.0.1:80");
        edits.set_member_enabled("/T/A/web_pool", "/Common/10.0.0.2:80", false);
        let live = edits.apply_to_pool(pool(&["10.0.0.1", "10.0.0.2"])).expect("pool kept");
        let members: Vec<(&str, &str)> =
            live.members.iter().map(|m| (m.address.as_str(), m.admin_state.as_str())).collect();
        assert_eq!(members, [("10.0.0.2", "disable")]);

        assert!(!edits.repair("T", "B"), "another application has no edits");
        assert!(edits.repair("T", "A"));
        assert!(edits.is_empty());
        assert_eq!(edits.apply_to_pool(pool(&["10.0.0.1"])).map(|p| p.members.len()), Some(1));

        edits.delete_pool("/T/A/web_pool");
        assert!(edits.apply_to_pool(pool(&["10.0.0.1"])).is_none());
    }
}
