//! BigIpPolicies: shared settings filled into the VirtualServers and TransportServers that name
//! them (`spec.policy`). What an object sets itself wins; the policy fills what it leaves out.

use crate::crd::{BigIpPolicySpec, Profiles, TransportServerSpec, VirtualServerSpec};

/// `own`'s profiles with the policy's filling each one `own` leaves out (the TCP profiles as
/// one setting: `tcp`, or `tcpClient`/`tcpServer`).
fn merge_profiles(own: Option<&Profiles>, policy: Option<&Profiles>, own_persistence_set: bool) -> Option<Profiles> {
    let Some(policy) = policy else { return own.cloned() };
    let own = own.cloned().unwrap_or_default();
    let pick = |mine: &Option<String>, theirs: &Option<String>| mine.clone().or_else(|| theirs.clone());
    let own_tcp = own.tcp.is_some() || own.tcp_client.is_some() || own.tcp_server.is_some();
    let (tcp, tcp_client, tcp_server) = if own_tcp {
        (own.tcp.clone(), own.tcp_client.clone(), own.tcp_server.clone())
    } else {
        (policy.tcp.clone(), policy.tcp_client.clone(), policy.tcp_server.clone())
    };
    let merged = Profiles {
        http: pick(&own.http, &policy.http),
        http2: pick(&own.http2, &policy.http2),
        tcp,
        tcp_client,
        tcp_server,
        udp: pick(&own.udp, &policy.udp),
        fast_l4: pick(&own.fast_l4, &policy.fast_l4),
        one_connect: pick(&own.one_connect, &policy.one_connect),
        http_compression: pick(&own.http_compression, &policy.http_compression),
        web_socket: pick(&own.web_socket, &policy.web_socket),
        analytics: pick(&own.analytics, &policy.analytics),
        request_logging: pick(&own.request_logging, &policy.request_logging),
        // The object's own `persistence` replaces a persistence profile from the policy.
        persistence: if own_persistence_set {
            own.persistence.clone()
        } else {
            pick(&own.persistence, &policy.persistence)
        },
    };
    (merged != Profiles::default()).then_some(merged)
}

/// A VirtualServer's spec with `policy` filled in.
pub fn merge_virtual(own: &VirtualServerSpec, policy: &BigIpPolicySpec) -> VirtualServerSpec {
    let mut spec = own.clone();
    let own_persistence_set = own.persistence.is_some();
    spec.profiles = merge_profiles(own.profiles.as_ref(), policy.profiles.as_ref(), own_persistence_set);
    let profile_persistence = spec.profiles.as_ref().is_some_and(|p| p.persistence.is_some());
    if spec.persistence.is_none() && !profile_persistence {
        spec.persistence = policy.persistence;
    }
    if let (Some(tls), Some(shared)) = (spec.tls.as_mut(), policy.tls.as_ref()) {
        if tls.secret_name.is_some() {
            fill_tls_settings(
                shared,
                &mut tls.min_version,
                &mut tls.max_version,
                &mut tls.ciphers,
                &mut tls.cipher_group,
            );
        }
    }
    if spec.waf_policy.is_none() {
        spec.waf_policy.clone_from(&policy.waf_policy);
    }
    if spec.allow_source_ranges.is_empty() {
        spec.allow_source_ranges.clone_from(&policy.allow_source_ranges);
    }
    if spec.allow_vlans.is_empty() {
        spec.allow_vlans.clone_from(&policy.allow_vlans);
    }
    spec.connection_mirroring |= policy.connection_mirroring;
    spec
}

/// Versions and ciphers of a certificate from a Secret that the object leaves out, from the
/// policy (a cipher string or group only when the object names neither).
fn fill_tls_settings(
    shared: &crate::crd::PolicyTls,
    min_version: &mut Option<crate::crd::TlsVersion>,
    max_version: &mut Option<crate::crd::TlsVersion>,
    ciphers: &mut Option<String>,
    cipher_group: &mut Option<String>,
) {
    *min_version = min_version.or(shared.min_version);
    *max_version = max_version.or(shared.max_version);
    if ciphers.is_none() && cipher_group.is_none() {
        ciphers.clone_from(&shared.ciphers);
        cipher_group.clone_from(&shared.cipher_group);
    }
}

/// A TransportServer's spec with `policy` filled in (the settings a TransportServer has).
pub fn merge_transport(own: &TransportServerSpec, policy: &BigIpPolicySpec) -> TransportServerSpec {
    let mut spec = own.clone();
    let own_persistence_set = own.persistence.is_some();
    // HTTP profiles of a policy shared with VirtualServers do not apply to an L4 server.
    let l4 = policy.profiles.as_ref().map(|p| Profiles {
        tcp: p.tcp.clone(),
        tcp_client: p.tcp_client.clone(),
        tcp_server: p.tcp_server.clone(),
        udp: p.udp.clone(),
        // FastL4 forwards packets: it cannot decrypt, so it is not taken for TLS offload.
        fast_l4: if own.tls.is_some() { None } else { p.fast_l4.clone() },
        persistence: p.persistence.clone(),
        ..Profiles::default()
    });
    if let (Some(tls), Some(shared)) = (spec.tls.as_mut(), policy.tls.as_ref()) {
        if tls.secret_name.is_some() {
            fill_tls_settings(
                shared,
                &mut tls.min_version,
                &mut tls.max_version,
                &mut tls.ciphers,
                &mut tls.cipher_group,
            );
        }
    }
    spec.profiles = merge_profiles(own.profiles.as_ref(), l4.as_ref(), own_persistence_set);
    let profile_persistence = spec.profiles.as_ref().is_some_and(|p| p.persistence.is_some());
    if spec.persistence.is_none() && !profile_persistence {
        spec.persistence = policy.persistence.filter(|p| *p != crate::crd::Persistence::Cookie);
    }
    if spec.allow_source_ranges.is_empty() {
        spec.allow_source_ranges.clone_from(&policy.allow_source_ranges);
    }
    if spec.allow_vlans.is_empty() {
        spec.allow_vlans.clone_from(&policy.allow_vlans);
    }
    spec.connection_mirroring |= policy.connection_mirroring;
    spec
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::crd::{BigIpPolicy, PoolMemberType, VirtualServer};
    use crate::model::{build_application, ClusterObjects, Frontend, ModelDefaults, UnresolvedRef};

    fn defaults() -> ModelDefaults {
        ModelDefaults {
            partition: "k8s".into(),
            pool_member_type: PoolMemberType::Cluster,
            node_selector: None,
            default_route_domain: 0,
        }
    }

    fn policy() -> BigIpPolicy {
        serde_json::from_value(json!({
            "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "BigIpPolicy",
            "metadata": {"name": "standard", "namespace": "shop"},
            "spec": {
                "profiles": {"http": "/Common/http", "tcp": "/Common/f5-tcp-progressive", "persistence": "/Common/cookie"},
                "tls": {"minVersion": "1.2", "cipherGroup": "/Common/f5-secure"},
                "wafPolicy": "/Common/linux-high",
                "allowSourceRanges": ["10.0.0.0/8"],
                "connectionMirroring": true,
            },
        }))
        .expect("policy")
    }

    fn vs(extra: serde_json::Value) -> VirtualServer {
        let mut spec = json!({"virtualAddress": "10.1.10.80", "port": 80, "policy": "standard",
                              "pools": [{"name": "web", "service": "web", "servicePort": 80}]});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
            "metadata": {"name": "shop", "namespace": "shop"}, "spec": spec,
        }))
        .expect("vs")
    }

    #[test]
    fn the_policy_fills_what_the_object_leaves_out_and_the_object_wins() {
        let mut cluster = ClusterObjects::default();
        cluster.add_policy(policy());
        let built = build_application(&vs(json!({})), &cluster, &defaults()).expect("valid");
        let app = &built.application;
        assert_eq!(app.profiles.http.as_deref(), Some("/Common/http"));
        assert_eq!(app.profiles.persistence.as_deref(), Some("/Common/cookie"));
        assert!(app.profiles.mirroring);
        assert_eq!(app.source_ranges.len(), 1);
        let Frontend::Http { waf_policy, .. } = &app.frontend else { panic!("http") };
        assert_eq!(waf_policy.as_deref(), Some("/Common/linux-high"));

        // The object's own settings win: its source ranges, its TCP profiles (as one setting),
        // its persistence (which replaces the policy's persistence profile).
        let own = vs(json!({"allowSourceRanges": ["192.168.0.0/16"], "profiles": {"tcpClient": "/Common/f5-tcp-wan"},
                            "persistence": "source-address"}));
        let app = build_application(&own, &cluster, &defaults()).expect("valid").application;
        assert_eq!(app.source_ranges[0].to_string(), "192.168.0.0/16");
        assert!(
            matches!(&app.profiles.tcp, Some(crate::model::TcpProfiles::Sides(Some(c), None)) if c == "/Common/f5-tcp-wan")
        );
        assert_eq!(app.profiles.persistence, None);
        assert_eq!(app.persistence, crate::crd::Persistence::SourceAddress);
    }

    #[test]
    fn a_missing_policy_blocks_the_object() {
        let built = build_application(&vs(json!({})), &ClusterObjects::default(), &defaults()).expect("valid spec");
        let missing = built.unresolved.first().expect("unresolved");
        assert!(matches!(missing, UnresolvedRef::PolicyNotFound { policy } if policy == "standard"), "{missing:?}");
        assert!(missing.blocks_programming());
        assert_eq!(missing.reason(), "PolicyNotFound");
    }

    #[test]
    fn tls_settings_apply_only_with_a_certificate_from_a_secret() {
        let spec = vs(json!({"tls": {"secretName": "shop-tls"}})).spec;
        let merged = super::merge_virtual(&spec, &policy().spec);
        let tls = merged.tls.expect("tls");
        assert_eq!(
            (tls.min_version, tls.cipher_group.as_deref()),
            (Some(crate::crd::TlsVersion::V1_2), Some("/Common/f5-secure"))
        );
        let spec = vs(json!({"tls": {"clientSslProfile": "/Common/clientssl"}})).spec;
        let tls = super::merge_virtual(&spec, &policy().spec).tls.expect("tls");
        assert!(tls.min_version.is_none() && tls.cipher_group.is_none());
    }

    #[test]
    fn a_transport_server_offloading_tls_takes_the_tls_settings_but_not_fast_l4() {
        let ts: crate::crd::TransportServer = serde_json::from_value(json!({
            "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "TransportServer",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"virtualAddress": "10.1.10.81", "port": 5432, "policy": "standard",
                     "pool": {"name": "db", "service": "db", "servicePort": 5432},
                     "tls": {"secretName": "db-tls", "maxVersion": "1.3"}},
        }))
        .expect("ts");
        let mut shared = policy().spec;
        shared.profiles.get_or_insert_with(Default::default).fast_l4 = Some("/Common/fastL4".into());
        let merged = super::merge_transport(&ts.spec, &shared);
        let tls = merged.tls.expect("tls");
        assert_eq!(
            (tls.min_version, tls.max_version, tls.cipher_group.as_deref()),
            (Some(crate::crd::TlsVersion::V1_2), Some(crate::crd::TlsVersion::V1_3), Some("/Common/f5-secure"))
        );
        assert!(merged.profiles.is_none_or(|p| p.fast_l4.is_none()), "FastL4 cannot decrypt");
        let mut plain = ts.spec.clone();
        plain.tls = None;
        assert!(super::merge_transport(&plain, &shared).profiles.is_some_and(|p| p.fast_l4.is_some()));
    }
}
