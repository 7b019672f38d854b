//! AS3 pointers (`use` references and pointer-valued strings such as a Service's `pool`) and
//! the rules AS3 applies when resolving them.

use serde_json::Value;

use super::model::TenantSet;

/// Why a pointer does not resolve; the texts are AS3's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PointerError {
    #[error("contains invalid path (cross-/T/A)")]
    CrossTenantApplication,
    #[error("contains invalid path (Tenant without application)")]
    TenantWithoutApplication,
    #[error("must contain path pointing into same Application (or /same-Tenant/Shared or /Common/Shared)")]
    OutsideScope,
    #[error("contains path to non-existent object {0}")]
    NonExistent(String),
}

/// Path elements a pointer names, without the leading empty element: `["T", "A", "obj"]`.
///
/// Relative pointers are relative to the Application holding them. `None` for the forms the
/// simulator does not interpret (`@`-anchored and relative-JSON-pointer forms).
fn elements(pointer: &str, tenant: &str, application: &str) -> Option<Vec<String>> {
    let first = pointer.chars().next()?;
    if first == '@' || first.is_ascii_digit() {
        return None;
    }
    let pointer = pointer.strip_suffix('#').unwrap_or(pointer);
    let elements = match pointer.strip_prefix('/') {
        Some(absolute) => absolute.split('/').map(str::to_owned).collect(),
        None => [tenant, application].into_iter().chain(pointer.split('/')).map(str::to_owned).collect(),
    };
    Some(elements)
}

/// The absolute `/T/A/obj` form BIG-IP shows for a pointer, or the pointer unchanged when it
/// uses a form the simulator does not interpret.
pub(super) fn absolute(pointer: &str, tenant: &str, application: &str) -> String {
    match elements(pointer, tenant, application) {
        Some(elements) => format!("/{}", elements.join("/")),
        None => pointer.to_owned(),
    }
}

/// Resolves `pointer`, written in `/tenant/application`, against `tenants`.
///
/// Targets must lie in the same Application, in `/<same tenant>/Shared` or in `/Common/Shared`.
/// `Ok(None)` means the pointer uses a form the simulator does not check.
pub(super) fn resolve<'a>(
    pointer: &str,
    tenant: &str,
    application: &str,
    tenants: TenantSet<'a>,
) -> Result<Option<&'a Value>, PointerError> {
    let Some(elements) = elements(pointer, tenant, application) else {
        return Ok(None);
    };
    let Some((leaf, containers)) = elements.split_last() else {
        return Err(PointerError::CrossTenantApplication);
    };
    let Some((target_tenant, nested)) = containers.split_first() else {
        return Err(PointerError::CrossTenantApplication);
    };
    let Some((target_application, below)) = nested.split_first() else {
        return Err(PointerError::TenantWithoutApplication);
    };
    let target = tenants.get(target_tenant).ok_or_else(|| PointerError::NonExistent(target_tenant.clone()))?;
    if target_tenant != "Common" && target_tenant != tenant {
        return Err(PointerError::OutsideScope);
    }
    let mut current = target
        .get(target_application)
        .filter(|value| value.is_object())
        .ok_or_else(|| PointerError::NonExistent(target_application.clone()))?;
    // The first level below the tenant is the Application.
    if target_application != "Shared" && target_application != application {
        return Err(PointerError::OutsideScope);
    }
    for element in below {
        current = current
            .get(element.as_str())
            .filter(|value| value.is_object())
            .ok_or_else(|| PointerError::NonExistent(element.clone()))?;
    }
    current.get(leaf.as_str()).map(Some).ok_or_else(|| PointerError::NonExistent(leaf.clone()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::super::model::{Tenant, Tenants};

    use serde_json::json;

    use super::*;

    fn tenants() -> Tenants {
        let tenants = BTreeMap::from([
            (
                "T".to_owned(),
                json!({"class": "Tenant",
                    "A": {"class": "Application", "web_pool": {"class": "Pool"}},
                    "B": {"class": "Application", "other_pool": {"class": "Pool"}},
                    "Shared": {"class": "Application", "shared_pool": {"class": "Pool"}}}),
            ),
            (
                "Common".to_owned(),
                json!({"class": "Tenant", "Shared": {"class": "Application", "common_pool": {"class": "Pool"}}}),
            ),
            ("U".to_owned(), json!({"class": "Tenant", "A": {"class": "Application", "u_pool": {"class": "Pool"}}})),
        ]);
        tenants.into_iter().map(|(name, tenant)| (name, Arc::new(Tenant::from_value(&tenant)))).collect()
    }

    #[test]
    fn relative_and_absolute_forms() {
        assert_eq!(absolute("web_pool", "T", "A"), "/T/A/web_pool");
        assert_eq!(absolute("/Common/Shared/p", "T", "A"), "/Common/Shared/p");
        assert_eq!(absolute("@/x", "T", "A"), "@/x");
    }

    #[test]
    fn resolves_within_scope() {
        let map = tenants();
        let set = TenantSet::new(&map);
        assert!(resolve("web_pool", "T", "A", set).expect("resolves").is_some());
        assert!(resolve("/T/A/web_pool", "T", "A", set).expect("resolves").is_some());
        assert!(resolve("/T/Shared/shared_pool", "T", "A", set).expect("resolves").is_some());
        assert!(resolve("/Common/Shared/common_pool", "T", "A", set).expect("resolves").is_some());
    }

    #[test]
    fn reports_missing_and_out_of_scope_targets() {
        let map = tenants();
        let set = TenantSet::new(&map);
        assert_eq!(resolve("nope", "T", "A", set), Err(PointerError::NonExistent("nope".to_owned())));
        assert_eq!(resolve("/T/B/other_pool", "T", "A", set), Err(PointerError::OutsideScope));
        assert_eq!(resolve("/U/A/u_pool", "T", "A", set), Err(PointerError::OutsideScope));
        assert_eq!(resolve("/X/A/p", "T", "A", set), Err(PointerError::NonExistent("X".to_owned())));
        assert_eq!(resolve("/T/p", "T", "A", set), Err(PointerError::TenantWithoutApplication));
        assert_eq!(resolve("/p", "T", "A", set), Err(PointerError::CrossTenantApplication));
    }
}
