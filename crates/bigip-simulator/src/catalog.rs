//! What a BIG-IP holds besides AS3's tenants: the standard `/Common` objects of a fresh
//! BIG-IP 17.1 (profiles, persistence methods, cipher rules, iRules, certificates…), the
//! modules provisioned, and objects created through iControl REST. AS3 resolves every
//! `bigip:` reference of a declaration against these before it deploys anything.

use std::collections::{BTreeMap, BTreeSet};

const STANDARD_OBJECTS_JSON: &str = include_str!("data/device-objects-17.1.json");

/// Modules a simulated BIG-IP has provisioned (LTM, ASM and AVR, like the box F5's verdicts
/// assume).
pub const PROVISIONED_MODULES: [&str; 3] = ["ltm", "asm", "avr"];

/// The iControl REST types whose objects can be created, read and deleted in the simulator:
/// every type a `bigip:` reference of the AS3 schema may name (WAF policies are
/// `asm/policies`, by full path).
pub fn creatable_types() -> Vec<String> {
    let lookups = as3_rules::schema::bigip_lookups().unwrap_or_default();
    let mut kinds: Vec<String> = lookups.iter().filter_map(|lookup| as3_rules::digest::icontrol_kind(lookup)).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Device objects by iControl REST type (`ltm/profile/http`), as full paths (`/Common/http`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCatalog {
    objects: BTreeMap<String, BTreeSet<String>>,
}

impl Default for DeviceCatalog {
    fn default() -> Self {
        Self::standard()
    }
}

impl DeviceCatalog {
    /// The objects of a fresh BIG-IP 17.1.
    pub fn standard() -> Self {
        // The embedded list is checked by a unit test; an unreadable one yields an empty box.
        let objects: BTreeMap<String, BTreeSet<String>> =
            serde_json::from_str(STANDARD_OBJECTS_JSON).unwrap_or_default();
        Self { objects }
    }

    /// The iControl REST types it holds objects of.
    pub fn kinds(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Whether an object of `kind` (`ltm/profile/http`, or a parent such as `ltm/persistence`
    /// meaning any of its types) has `full_path`.
    pub fn contains(&self, kind: &str, full_path: &str) -> bool {
        let prefix = format!("{kind}/");
        self.objects
            .iter()
            .filter(|(stored, _)| stored.as_str() == kind || stored.starts_with(&prefix))
            .any(|(_, paths)| paths.contains(full_path))
    }

    /// The full paths of `kind`.
    pub fn list(&self, kind: &str) -> Vec<String> {
        self.objects.get(kind).map(|paths| paths.iter().cloned().collect()).unwrap_or_default()
    }

    /// Adds an object; false when it already exists.
    pub fn insert(&mut self, kind: &str, full_path: &str) -> bool {
        self.objects.entry(kind.to_owned()).or_default().insert(full_path.to_owned())
    }

    /// Removes an object; false when there was none.
    pub fn remove(&mut self, kind: &str, full_path: &str) -> bool {
        self.objects.get_mut(kind).is_some_and(|paths| paths.remove(full_path))
    }

    pub fn is_provisioned(module: &str) -> bool {
        PROVISIONED_MODULES.contains(&module)
    }
}

/// The `bigip:` references of an AS3 request (or bare declaration) to objects a fresh BIG-IP
/// does not have: what an administrator creates before posting it (tests create them through
/// the simulator's iControl REST).
pub fn missing_device_objects(request: &serde_json::Value) -> Vec<as3_rules::digest::BigIpReference> {
    let declaration = request.get("declaration").unwrap_or(request);
    let Ok(sites) = as3_rules::schema::post_process_sites(declaration) else { return Vec::new() };
    let object = declaration.as_object().cloned().unwrap_or_default();
    let standard = DeviceCatalog::standard();
    let mut references = as3_rules::digest::bigip_references(&object, &sites, str::to_owned);
    references.retain(|reference| !reference.kinds.iter().any(|kind| standard.contains(kind, &reference.name)));
    references.dedup_by(|a, b| a.name == b.name);
    references
}

impl as3_rules::digest::Device for DeviceCatalog {
    fn has_object(&self, kind: &str, full_path: &str) -> bool {
        self.contains(kind, full_path)
    }

    fn is_provisioned(&self, module: &str) -> bool {
        Self::is_provisioned(module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_box_has_the_usual_common_objects_by_type() {
        let catalog = DeviceCatalog::standard();
        assert!(catalog.contains("ltm/profile/http", "/Common/http"));
        assert!(catalog.contains("ltm/profile/tcp", "/Common/tcp"));
        assert!(!catalog.contains("ltm/profile/http", "/Common/tcp"), "a name of another type is not found");
        assert!(catalog.contains("ltm/persistence", "/Common/cookie"), "a parent type covers its subtypes");
        assert!(catalog.contains("ltm/rule", "/Common/_sys_https_redirect"));
        assert!(!catalog.contains("asm/policies", "/Common/my-waf"));
    }

    #[test]
    fn created_objects_are_found_until_deleted() {
        let mut catalog = DeviceCatalog::standard();
        assert!(catalog.insert("asm/policies", "/Common/linux-high"));
        assert!(!catalog.insert("asm/policies", "/Common/linux-high"));
        assert!(catalog.contains("asm/policies", "/Common/linux-high"));
        assert!(catalog.remove("asm/policies", "/Common/linux-high"));
        assert!(!catalog.contains("asm/policies", "/Common/linux-high"));
    }
}
