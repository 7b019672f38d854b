//! Custom resource types (`bigip.operator.dev/v1alpha1`). Types only: no logic beyond serde and
//! schema attributes, so that `crdgen` output depends on nothing else.

pub mod address_pool;
pub mod common;
pub mod listener_group;
pub mod policy;
pub mod reference_grant;
pub mod transport_server;
pub mod tunnel;
pub mod virtual_server;

use kube::CustomResourceExt;

pub use address_pool::{AddressAllocation, BigIpAddressPool, BigIpAddressPoolSpec, BigIpAddressPoolStatus};
pub use common::{
    AlternateBackend, Condition, HealthMonitor, IRule, IcmpEcho, LoadBalancingMode, MonitorMatch, MonitorType,
    Persistence, Pool, PoolMemberType, Profiles, RouteAdvertisement, ServiceDownAction, SnatMode, StaticMember,
    VirtualAddressOptions,
};
pub use listener_group::{
    BigIpListenerGroup, BigIpListenerGroupSpec, BigIpListenerGroupStatus, HttpTraffic, ListenerGroupTls,
};
pub use policy::{BigIpPolicy, BigIpPolicySpec, PolicyTls};
pub use reference_grant::ReferenceGrant;
pub use transport_server::{TransportProtocol, TransportServer, TransportServerSpec, TransportTls, TransportTlsMode};
pub use tunnel::{
    BgpPeering, BigIpTunnel, BigIpTunnelSpec, BigIpTunnelStatus, FlannelEtcd, RouteFilter, RouteFilterAction,
    SecretReference, TunnelMode, VxlanTunnel,
};
pub use virtual_server::{
    ClientCertificateMode, ClientCertificates, HeaderValue, PathType, Redirect, RoutingRule, RulePersistence,
    RulePersistenceMethod, Tls, TlsMode, TlsVersion, VirtualServer, VirtualServerSpec, VirtualServerStatus,
};

/// The API group of every custom resource of this operator.
pub const API_GROUP: &str = "bigip.operator.dev";

/// Every CRD this operator defines, in the order `crdgen` prints them.
pub fn all_crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    vec![
        VirtualServer::crd(),
        TransportServer::crd(),
        BigIpTunnel::crd(),
        BigIpAddressPool::crd(),
        BigIpListenerGroup::crd(),
        BigIpPolicy::crd(),
    ]
}

/// Each CRD as `(file name, YAML)`: crds/ holds one file per CRD, named after the CRD.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    all_crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            Ok((format!("{name}.yaml"), serde_yaml::to_string(&crd)?))
        })
        .collect()
}

/// The multi-document YAML that `crdgen` prints.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for (_, yaml) in crd_files()? {
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod drift_tests {
    //! crds/ and the chart's copy must equal what the Rust types generate.
    //! Regenerate both with `make crds`.

    use std::path::Path;

    #[test]
    fn crds_directory_and_chart_match_the_rust_types() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = super::crd_files().expect("CRDs serialise");
        assert!(!files.is_empty());
        for dir in ["crds", "charts/bigip-operator/crds"] {
            for (name, generated) in &files {
                let path = root.join(dir).join(name);
                if std::env::var_os("UPDATE_CRDS").is_some() {
                    std::fs::create_dir_all(root.join(dir)).expect("create dir");
                    std::fs::write(&path, generated).expect("write CRD");
                }
                let on_disk = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
                assert!(on_disk == *generated, "{} is out of date; run `make crds`", path.display());
            }
            let count = std::fs::read_dir(root.join(dir)).expect("dir").count();
            assert_eq!(count, files.len(), "{dir} holds CRD files that no Rust type generates; run `make crds`");
        }
    }

    #[test]
    fn virtual_server_crd_has_validation_and_printer_columns() {
        let yaml = super::crds_yaml().expect("serialise");
        for needle in [
            "isIP(self)",
            "pool names must be unique",
            "shortNames:\n    - bvs",
            "- bigip",
            "name: Programmed",
            "jsonPath: .status.members",
            "subresources:\n      status: {}",
            "maximum: 65535",
        ] {
            assert!(yaml.contains(needle), "CRD lacks {needle:?}:\n{yaml}");
        }
    }
}
