//! Sets of rendered applications that a change of one application updates in O(log N).
//!
//! A partition of 10,000 applications changes one application at a time. What the syncer keeps
//! about it — the desired applications, what the BIG-IP holds, what pre-flight checked — are
//! [`AppSet`]s: persistent maps ([`imbl::OrdMap`]) that share structure with the set they were
//! derived from, so copying one is O(1), and comparing two related ones visits only the paths
//! that differ. Each carries a [`TenantDigest`] of its entries, kept up to date entry by entry,
//! so that "would this post change anything" is answered without hashing the tenant.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use imbl::ordmap::DiffItem;
use imbl::OrdMap;
use sha2::{Digest, Sha256};

use crate::as3::RenderedApplication;

/// A digest of a tenant's entries (entry name → content hash) that can be updated one entry at
/// a time: the wrapping sum of the SHA-256 of each entry. Equal sets of entries give equal
/// digests whatever the order they were added in; sets differing in any entry differ (short
/// of a collision of the 256-bit sum, which nobody chooses here: the entries are the
/// operator's own renderings and what the BIG-IP returns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TenantDigest([u64; 4]);

impl TenantDigest {
    fn entry(name: &str, hash: &str) -> [u64; 4] {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(hash.as_bytes());
        hasher.update([0]);
        let bytes = hasher.finalize();
        let mut lanes = [0u64; 4];
        for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *lane = u64::from_le_bytes(word);
        }
        lanes
    }

    pub fn add(&mut self, name: &str, hash: &str) {
        for (lane, part) in self.0.iter_mut().zip(Self::entry(name, hash)) {
            *lane = lane.wrapping_add(part);
        }
    }

    pub fn remove(&mut self, name: &str, hash: &str) {
        for (lane, part) in self.0.iter_mut().zip(Self::entry(name, hash)) {
            *lane = lane.wrapping_sub(part);
        }
    }

    /// The digest of these entries.
    pub fn of<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut digest = Self::default();
        for (name, hash) in entries {
            digest.add(name, hash);
        }
        digest
    }

    /// The digest of both sets of entries together (disjoint by name).
    pub fn combined(mut self, other: Self) -> Self {
        for (lane, part) in self.0.iter_mut().zip(other.0) {
            *lane = lane.wrapping_add(part);
        }
        self
    }
}

impl fmt::Display for TenantDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for lane in self.0 {
            write!(f, "{lane:016x}")?;
        }
        Ok(())
    }
}

/// One application version in an [`AppSet`]: equal to another when the content hash is, so
/// comparing sets never compares rendered JSON.
#[derive(Debug, Clone)]
pub struct AppVersion(pub Arc<RenderedApplication>);

impl PartialEq for AppVersion {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.hash == other.0.hash
    }
}

/// Rendered applications by name, with the digest of their (name, content hash) entries.
#[derive(Debug, Clone, Default)]
pub struct AppSet {
    apps: OrdMap<String, AppVersion>,
    digest: TenantDigest,
}

/// How two sets differ: applications to create or replace, and names to remove.
#[derive(Debug, Default)]
pub struct AppChanges {
    pub changed: Vec<Arc<RenderedApplication>>,
    pub removed: Vec<String>,
}

impl AppSet {
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The digest of the entries (without the tenant's own properties).
    pub fn digest(&self) -> TenantDigest {
        self.digest
    }

    pub fn get(&self, name: &str) -> Option<&Arc<RenderedApplication>> {
        self.apps.get(name).map(|version| &version.0)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.apps.contains_key(name)
    }

    /// The applications, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<RenderedApplication>)> {
        self.apps.iter().map(|(name, version)| (name, &version.0))
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.apps.keys()
    }

    /// Adds or replaces an application (by its name).
    pub fn insert(&mut self, app: Arc<RenderedApplication>) {
        self.digest.add(&app.name, &app.hash);
        if let Some(before) = self.apps.insert(app.name.clone(), AppVersion(app)) {
            self.digest.remove(&before.0.name, &before.0.hash);
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<RenderedApplication>> {
        let before = self.apps.remove(name)?;
        self.digest.remove(&before.0.name, &before.0.hash);
        Some(before.0)
    }

    /// What to create, replace and remove to turn `self` into `target`. Visits only the parts
    /// of the two sets that are not shared, so it is cheap between a set and one derived from
    /// it.
    pub fn changes_to(&self, target: &AppSet) -> AppChanges {
        let mut changes = AppChanges::default();
        for item in self.apps.diff(&target.apps) {
            match item {
                DiffItem::Add(_, new) | DiffItem::Update { new: (_, new), .. } => changes.changed.push(new.0.clone()),
                DiffItem::Remove(name, _) => changes.removed.push(name.clone()),
            }
        }
        changes
    }

    /// `previous` (the set of `previous_list`) turned into the set of `list`: both lists sorted
    /// by name, as the desired state hands them out. Costs a walk over the lists comparing
    /// pointers, and O(log N) per application that differs.
    pub fn follow_list(
        previous: &AppSet,
        previous_list: &[Arc<RenderedApplication>],
        list: &[Arc<RenderedApplication>],
    ) -> AppSet {
        let mut set = previous.clone();
        let (mut old, mut new) = (previous_list.iter().peekable(), list.iter().peekable());
        loop {
            match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if Arc::ptr_eq(a, b) => {
                    old.next();
                    new.next();
                }
                (Some(a), Some(b)) => match a.name.cmp(&b.name) {
                    Ordering::Less => {
                        set.remove(&a.name);
                        old.next();
                    }
                    Ordering::Greater => {
                        set.insert((*b).clone());
                        new.next();
                    }
                    Ordering::Equal => {
                        set.insert((*b).clone());
                        old.next();
                        new.next();
                    }
                },
                (Some(a), None) => {
                    set.remove(&a.name);
                    old.next();
                }
                (None, Some(b)) => {
                    set.insert((*b).clone());
                    new.next();
                }
                (None, None) => break,
            }
        }
        set
    }
}

impl FromIterator<Arc<RenderedApplication>> for AppSet {
    fn from_iter<I: IntoIterator<Item = Arc<RenderedApplication>>>(iter: I) -> Self {
        let mut set = AppSet::default();
        for app in iter {
            set.insert(app);
        }
        set
    }
}

impl<'a> IntoIterator for &'a AppSet {
    type Item = (&'a String, &'a Arc<RenderedApplication>);
    type IntoIter = Box<dyn Iterator<Item = Self::Item> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl PartialEq for AppSet {
    /// Same names with the same content hashes.
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.apps == other.apps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn app(name: &str, version: u8) -> Arc<RenderedApplication> {
        let value = json!({"class": "Application", "version": version});
        Arc::new(RenderedApplication::from_value(name.into(), &value))
    }

    fn list(apps: &[(u8, u8)]) -> Vec<Arc<RenderedApplication>> {
        let mut apps: Vec<_> = apps.iter().map(|(name, version)| app(&format!("app{name:02}"), *version)).collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        apps.dedup_by(|a, b| a.name == b.name);
        apps
    }

    #[test]
    fn the_digest_depends_on_the_entries_not_their_order() {
        let forwards = TenantDigest::of([("a", "1"), ("b", "2")]);
        let backwards = TenantDigest::of([("b", "2"), ("a", "1")]);
        assert_eq!(forwards, backwards);
        assert_ne!(forwards, TenantDigest::of([("a", "1"), ("b", "3")]));
        assert_ne!(forwards, TenantDigest::of([("a", "2"), ("b", "1")]), "names and hashes are not interchangeable");
        let mut updated = forwards;
        updated.remove("b", "2");
        updated.add("b", "3");
        assert_eq!(updated, TenantDigest::of([("a", "1"), ("b", "3")]));
        assert_eq!(forwards.to_string().len(), 64);
    }

    proptest! {
        /// A set that follows a list equals the set built from that list, with the same
        /// digest; and the changes from one set to another turn the first into the second.
        #[test]
        fn a_followed_set_equals_the_set_of_the_list(
            first in proptest::collection::vec((0..30u8, 0..3u8), 0..25),
            second in proptest::collection::vec((0..30u8, 0..3u8), 0..25),
        ) {
            let (first, mut second) = (list(&first), list(&second));
            // Keep some applications as the very same Arcs, as the desired state does.
            for app in second.iter_mut() {
                if let Some(same) = first.iter().find(|a| a.name == app.name && a.hash == app.hash) {
                    *app = same.clone();
                }
            }
            let first_set: AppSet = first.iter().cloned().collect();
            let followed = AppSet::follow_list(&first_set, &first, &second);
            let built: AppSet = second.iter().cloned().collect();
            prop_assert!(followed == built);
            prop_assert_eq!(followed.digest(), built.digest());
            prop_assert_eq!(followed.digest(), TenantDigest::of(second.iter().map(|a| (a.name.as_str(), a.hash.as_str()))));

            let changes = first_set.changes_to(&followed);
            let mut applied = first_set.clone();
            for app in &changes.changed {
                applied.insert(app.clone());
            }
            for name in &changes.removed {
                applied.remove(name);
            }
            prop_assert!(applied == built);
            let expected_changed = second.iter().filter(|a| first_set.get(&a.name).is_none_or(|f| f.hash != a.hash)).count();
            prop_assert_eq!(changes.changed.len(), expected_changed);
        }
    }
}
