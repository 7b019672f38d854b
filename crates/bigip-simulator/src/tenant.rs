//! A deployed tenant, kept so that a change costs what it changes: the tenant's own properties
//! (`class`, `label`, `defaultRouteDomain`, ...) beside its Applications, each Application
//! shared. A per-application request copies the tenant's list of Applications, never their
//! content, and compares only the Applications it names (at 10,000 Applications in one tenant,
//! copying and comparing the whole tenant cost the simulator ~40 ms per request).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Deployed tenants by name, each shared: planning a request copies the map, never the
/// tenants.
pub(super) type Tenants = BTreeMap<String, Arc<Tenant>>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Tenant {
    /// Everything that is not an Application, `class` included.
    properties: Map<String, Value>,
    /// Applications by name; each value is the Application object.
    applications: BTreeMap<String, Arc<Value>>,
}

fn is_application(value: &Value) -> bool {
    value.get("class").and_then(Value::as_str) == Some("Application")
}

/// What differs between a tenant as held and a candidate for it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TenantDiff {
    /// The tenant's own properties differ (every Application may be affected).
    pub(super) properties_changed: bool,
    /// Applications created or replaced, by name.
    pub(super) changed: Vec<String>,
    /// Applications the candidate no longer has.
    pub(super) removed: Vec<String>,
}

impl TenantDiff {
    pub(super) fn is_empty(&self) -> bool {
        !self.properties_changed && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Whether `application` is created, replaced or removed.
    pub(super) fn touches(&self, application: &str) -> bool {
        self.changed.iter().chain(&self.removed).any(|name| name == application)
    }
}

impl Tenant {
    /// Splits a declared tenant object into properties and Applications.
    pub(super) fn from_object(object: Map<String, Value>) -> Self {
        let mut tenant = Self::default();
        for (key, value) in object {
            if is_application(&value) {
                tenant.applications.insert(key, Arc::new(value));
            } else {
                tenant.properties.insert(key, value);
            }
        }
        tenant
    }

    pub(super) fn from_value(value: &Value) -> Self {
        Self::from_object(value.as_object().cloned().unwrap_or_default())
    }

    /// An empty tenant: `{"class": "Tenant"}`.
    pub(super) fn empty() -> Self {
        let mut properties = Map::new();
        properties.insert("class".to_owned(), Value::String("Tenant".to_owned()));
        Self { properties, applications: BTreeMap::new() }
    }

    /// The tenant as AS3 shows it in a declaration.
    pub(super) fn to_value(&self) -> Value {
        let mut object = self.properties.clone();
        for (name, application) in &self.applications {
            object.insert(name.clone(), Value::clone(application));
        }
        Value::Object(object)
    }

    /// A property or an Application by name, as a pointer walks the tenant.
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.properties.get(key).or_else(|| self.applications.get(key).map(AsRef::as_ref))
    }

    /// A property of the tenant itself (`defaultRouteDomain`, ...).
    pub(super) fn property(&self, key: &str) -> Option<&Value> {
        self.properties.get(key)
    }

    pub(super) fn application(&self, name: &str) -> Option<&Value> {
        self.applications.get(name).map(AsRef::as_ref)
    }

    /// The Applications by name, in name order.
    pub(super) fn applications(&self) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
        self.applications.iter().filter_map(|(name, application)| Some((name.as_str(), application.as_object()?)))
    }

    pub(super) fn application_names(&self) -> Vec<String> {
        self.applications.keys().cloned().collect()
    }

    pub(super) fn application_count(&self) -> usize {
        self.applications.len()
    }

    /// This tenant with `applications` created or replaced; the others are shared.
    pub(super) fn with_applications(&self, applications: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut tenant = self.clone();
        for (name, application) in applications {
            tenant.applications.insert(name, Arc::new(application));
        }
        tenant
    }

    /// This tenant without the Application `name`, or `None` when it has no such Application.
    pub(super) fn without_application(&self, name: &str) -> Option<Self> {
        let mut tenant = self.clone();
        tenant.applications.remove(name)?;
        Some(tenant)
    }

    /// What `candidate` changes compared with `held` (everything when nothing is held).
    /// Applications shared with `held` compare by pointer.
    pub(super) fn diff(held: Option<&Self>, candidate: &Self) -> TenantDiff {
        let Some(held) = held else {
            return TenantDiff {
                properties_changed: true,
                changed: candidate.application_names(),
                removed: Vec::new(),
            };
        };
        let changed = candidate
            .applications
            .iter()
            .filter(|(name, application)| held.applications.get(*name) != Some(application))
            .map(|(name, _)| name.clone())
            .collect();
        let removed =
            held.applications.keys().filter(|name| !candidate.applications.contains_key(*name)).cloned().collect();
        TenantDiff { properties_changed: held.properties != candidate.properties, changed, removed }
    }

    /// A size for the `lineCount` of a result: the scalar properties of what `diff` writes.
    pub(super) fn line_count(&self, diff: &TenantDiff) -> usize {
        let properties = if diff.properties_changed { self.properties.values().map(scalar_count).sum() } else { 0 };
        properties + diff.changed.iter().filter_map(|name| self.application(name)).map(scalar_count).sum::<usize>()
    }
}

fn scalar_count(value: &Value) -> usize {
    match value {
        Value::Object(object) => object.values().map(scalar_count).sum(),
        Value::Array(items) => items.iter().map(scalar_count).sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tenant() -> Tenant {
        Tenant::from_value(&json!({"class": "Tenant", "label": "l",
            "A": {"class": "Application", "p": {"class": "Pool"}},
            "B": {"class": "Application", "q": {"class": "Pool"}}}))
    }

    #[test]
    fn splits_and_reassembles_a_declared_tenant() {
        let value = json!({"class": "Tenant", "label": "l",
            "A": {"class": "Application", "p": {"class": "Pool"}},
            "B": {"class": "Application", "q": {"class": "Pool"}}});
        let tenant = Tenant::from_value(&value);
        assert_eq!(tenant.to_value(), value);
        assert_eq!(tenant.application_names(), vec!["A", "B"]);
        assert_eq!(tenant.property("label"), Some(&json!("l")));
        assert_eq!(tenant.get("A"), Some(&json!({"class": "Application", "p": {"class": "Pool"}})));
        assert_eq!(tenant.property("A"), None);
    }

    #[test]
    fn a_per_application_change_shares_and_diffs_only_what_it_names() {
        let held = tenant();
        let replaced = held.with_applications([("B".to_owned(), json!({"class": "Application"}))]);
        assert!(Arc::ptr_eq(&held.applications["A"], &replaced.applications["A"]), "A is shared, not copied");
        let diff = Tenant::diff(Some(&held), &replaced);
        assert_eq!(diff, TenantDiff { properties_changed: false, changed: vec!["B".to_owned()], removed: vec![] });
        assert_eq!(replaced.line_count(&diff), 1);

        let same = held.with_applications([("A".to_owned(), json!({"class": "Application", "p": {"class": "Pool"}}))]);
        assert!(Tenant::diff(Some(&held), &same).is_empty(), "equal content is no change");

        let without = held.without_application("A").expect("A exists");
        let diff = Tenant::diff(Some(&held), &without);
        assert_eq!(diff.removed, vec!["A"]);
        assert!(diff.touches("A") && !diff.touches("B"));
        assert!(held.without_application("nope").is_none());
    }

    #[test]
    fn a_new_tenant_changes_everything() {
        let diff = Tenant::diff(None, &tenant());
        assert!(diff.properties_changed);
        assert_eq!(diff.changed, vec!["A", "B"]);
    }
}
