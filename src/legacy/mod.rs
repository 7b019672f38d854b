//! The legacy shim: F5 k8s-bigip-ctlr configuration (`f5type: virtual-server` ConfigMaps,
//! schemas v0.1.0–v0.1.7, and `virtual-server.f5.com` Ingresses) translated into the
//! operator's own VirtualServer and TransportServer objects. Pure: no I/O.

pub mod configmap;
pub mod ingress;

use crate::crd::{TransportServer, VirtualServer};

/// Label on every object generated from a legacy one; its value names the source kind
/// (`ConfigMap` or `Ingress`).
pub const GENERATED_FROM_LABEL: &str = "bigip.operator.dev/generated-from";

/// AS3's limits on monitor timing in seconds, which the model enforces (see
/// model/application.rs); both translators check them before any arithmetic on the values.
pub(crate) const MONITOR_INTERVAL_MAX: i64 = 3600;
pub(crate) const MONITOR_TIMEOUT_MAX: i64 = 900;

/// What one legacy object becomes.
#[derive(Debug, Clone)]
pub enum Translated {
    VirtualServer(Box<VirtualServer>),
    TransportServer(Box<TransportServer>),
}

/// `text` as a Kubernetes-style name of at most `max` characters: lower-case, every character
/// other than letters, digits and `-` replaced by `-`, `prefix` put in front when it would not
/// start with a letter, no trailing `-`.
pub fn sanitized_name(text: &str, prefix: &str, max: usize) -> String {
    let mut name: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, prefix);
    }
    name.truncate(max);
    name.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_sanitised_as_kubernetes_wants_them() {
        assert_eq!(super::sanitized_name("My_Service.v2", "svc-", 63), "my-service-v2");
        assert_eq!(super::sanitized_name("9lives", "svc-", 63), "svc-9lives");
        assert_eq!(super::sanitized_name("abc-def-", "x-", 5), "abc-d");
        assert_eq!(super::sanitized_name("abcd-ef", "x-", 5), "abcd");
    }
}
