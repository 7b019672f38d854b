//! Which tenants on the BIG-IP belong to this operator.
//!
//! Every tenant the operator posts carries the `label` `bigip-operator:<cluster id>`. Only
//! tenants with this operator's label are ever changed or deleted; `Common`, hand-made tenants,
//! tenants of other tools and tenants of bigip-operators in other clusters sharing the BIG-IP
//! are left alone unless a partition is explicitly adopted.

use serde_json::Value;

/// Prefix of the tenant label; the cluster id follows it.
pub const LABEL_PREFIX: &str = "bigip-operator:";

/// What is known of an existing tenant's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantOwner {
    /// Created by this operator for this cluster.
    Us,
    /// Created by bigip-operator for another cluster.
    OtherCluster(String),
    /// Not created by bigip-operator (by hand, AS3 from another tool, or an older version
    /// without a label).
    Foreign,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster id {id:?} must be 1-48 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
pub struct InvalidClusterId {
    pub id: String,
}

/// The identity written into and read back from tenant labels, and what else this operator
/// declares on each of its tenants: the partition's default route domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    cluster_id: String,
    default_route_domain: u16,
}

impl Ownership {
    pub fn new(cluster_id: impl Into<String>) -> Result<Self, InvalidClusterId> {
        let id = cluster_id.into();
        let valid = !id.is_empty()
            && id.len() <= 48
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(Self { cluster_id: id, default_route_domain: 0 })
        } else {
            Err(InvalidClusterId { id })
        }
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Tenants declared with this default route domain (`--default-route-domain`; 0 is AS3's
    /// default and is not written).
    pub fn with_default_route_domain(self, id: u16) -> Self {
        Self { default_route_domain: id, ..self }
    }

    pub fn default_route_domain(&self) -> u16 {
        self.default_route_domain
    }

    /// The tenant `label` (at most 64 characters, as AS3 requires).
    pub fn label(&self) -> String {
        format!("{LABEL_PREFIX}{}", self.cluster_id)
    }

    /// Who owns a tenant object as read from the BIG-IP.
    pub fn owner_of(&self, tenant: &Value) -> TenantOwner {
        match tenant.get("label").and_then(Value::as_str).and_then(|l| l.strip_prefix(LABEL_PREFIX)) {
            Some(id) if id == self.cluster_id => TenantOwner::Us,
            Some(id) => TenantOwner::OtherCluster(id.to_string()),
            None => TenantOwner::Foreign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_ids_are_label_safe() {
        assert!(Ownership::new("0f1e2d3c-aaaa-bbbb-cccc-123456789abc").is_ok());
        for bad in ["", "has space", "a#b", "x".repeat(49).as_str(), "brackets[]"] {
            assert_eq!(Ownership::new(bad), Err(InvalidClusterId { id: bad.to_string() }), "{bad:?}");
        }
    }

    #[test]
    fn tells_our_tenants_from_other_clusters_and_foreign_ones() {
        let us = Ownership::new("east").expect("valid");
        assert_eq!(us.owner_of(&json!({"class": "Tenant", "label": us.label()})), TenantOwner::Us);
        assert_eq!(
            us.owner_of(&json!({"class": "Tenant", "label": "bigip-operator:west"})),
            TenantOwner::OtherCluster("west".into())
        );
        assert_eq!(us.owner_of(&json!({"class": "Tenant", "label": "team-a"})), TenantOwner::Foreign);
        assert_eq!(
            us.owner_of(&json!({"class": "Tenant", "remark": "managed by bigip-operator"})),
            TenantOwner::Foreign
        );
    }
}
