//! Services of `type: LoadBalancer`, pure: which ones this operator handles, the address a
//! Service asks for or was given, and the TransportServers (one per port and protocol) that
//! program it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{Pool, SnatMode, TransportProtocol, TransportServer, TransportServerSpec};

/// The address a Service asks for (instead of `spec.loadBalancerIP`, deprecated upstream).
pub const ADDRESS_ANNOTATION: &str = "bigip.operator.dev/load-balancer-ip";
/// The BigIpAddressPool a Service wants its address from.
pub const POOL_ANNOTATION: &str = "bigip.operator.dev/address-pool";
/// The address allocated to a Service from a pool: the record that makes allocations survive
/// restarts and leader changes (never only in memory).
pub const ALLOCATED_ANNOTATION: &str = "bigip.operator.dev/allocated-address";
/// The pool the allocated address came from.
pub const ALLOCATED_FROM_ANNOTATION: &str = "bigip.operator.dev/allocated-from";
/// Why a VirtualServer/TransportServer with `spec.addressPool` has no address:
/// `<Reason>: <message>` (the model reports it as `Accepted=False` with that reason).
pub const ADDRESS_PROBLEM_ANNOTATION: &str = "bigip.operator.dev/address-problem";
/// Label on the TransportServers generated for a Service: its name.
pub const GENERATED_FOR_LABEL: &str = "bigip.operator.dev/load-balancer-service";

/// Which LoadBalancer Services this operator handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerClass {
    /// `spec.loadBalancerClass` of the Services handled, e.g. `bigip.operator.dev/bigip`.
    pub class: String,
    /// Also handle Services without a class (as a cluster's default load balancer does).
    pub class_less: bool,
}

impl LoadBalancerClass {
    pub fn handles(&self, service: &Service) -> bool {
        let Some(spec) = &service.spec else { return false };
        if spec.type_.as_deref() != Some("LoadBalancer") {
            return false;
        }
        match spec.load_balancer_class.as_deref() {
            Some(class) => class == self.class,
            None => self.class_less,
        }
    }
}

fn annotation<'a>(service: &'a Service, key: &str) -> Option<&'a str> {
    service.metadata.annotations.as_ref()?.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A Service's request that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceRequestError {
    #[error("{source_field} {value:?} is not an IP address")]
    InvalidAddress { source_field: &'static str, value: String },
    #[error("spec.loadBalancerIP {spec} and annotation {ADDRESS_ANNOTATION} {annotation} differ")]
    ConflictingAddresses { spec: String, annotation: String },
}

impl ServiceRequestError {
    pub fn reason(&self) -> &'static str {
        "InvalidLoadBalancerIP"
    }
}

/// The address the Service names itself (annotation, or the deprecated `spec.loadBalancerIP`).
pub fn requested_address(service: &Service) -> Result<Option<IpAddr>, ServiceRequestError> {
    let parse = |source_field: &'static str, value: &str| {
        value.parse::<IpAddr>().map_err(|_| ServiceRequestError::InvalidAddress { source_field, value: value.into() })
    };
    let from_annotation = annotation(service, ADDRESS_ANNOTATION)
        .map(|v| parse("annotation bigip.operator.dev/load-balancer-ip", v))
        .transpose()?;
    let from_spec = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|v| !v.is_empty())
        .map(|v| parse("spec.loadBalancerIP", v))
        .transpose()?;
    match (from_annotation, from_spec) {
        (Some(a), Some(s)) if a != s => {
            Err(ServiceRequestError::ConflictingAddresses { spec: s.to_string(), annotation: a.to_string() })
        }
        (a, s) => Ok(a.or(s)),
    }
}

/// The pool the Service names, if any.
pub fn requested_pool(service: &Service) -> Option<&str> {
    annotation(service, POOL_ANNOTATION)
}

/// The address allocated to the Service earlier, and its pool.
pub fn allocated(service: &Service) -> Option<(IpAddr, Option<&str>)> {
    let address = annotation(service, ALLOCATED_ANNOTATION)?.parse().ok()?;
    Some((address, annotation(service, ALLOCATED_FROM_ANNOTATION)))
}

/// One port of the Service that cannot be programmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPort {
    pub port: i32,
    pub reason: String,
}

/// The TransportServers for `service` at `address`: one per port (TCP or UDP), named
/// `<service>-<protocol>-<port>`, owned by the Service, with its labels and one naming it. SCTP ports
/// are skipped (the BIG-IP's SCTP profile is not modelled).
pub fn transport_servers(service: &Service, address: IpAddr) -> (Vec<TransportServer>, Vec<SkippedPort>) {
    let name = service.metadata.name.clone().unwrap_or_default();
    let namespace = service.metadata.namespace.clone();
    let spec = service.spec.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.clone(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    // The Service's labels (an operator's --selector selects both), and whose they are.
    let mut labels: BTreeMap<String, String> = service.metadata.labels.clone().unwrap_or_default();
    labels.insert(GENERATED_FOR_LABEL.to_string(), name.clone());
    let mut generated = Vec::new();
    let mut skipped = Vec::new();
    for port in spec.ports.iter().flatten() {
        let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => TransportProtocol::Tcp,
            "UDP" => TransportProtocol::Udp,
            other => {
                skipped.push(SkippedPort {
                    port: port.port,
                    reason: format!("port {} uses {other}; only TCP and UDP are programmed", port.port),
                });
                continue;
            }
        };
        let protocol_name = match protocol {
            TransportProtocol::Tcp => "tcp",
            TransportProtocol::Udp => "udp",
        };
        generated.push(TransportServer {
            metadata: ObjectMeta {
                name: Some(format!("{name}-{protocol_name}-{}", port.port)),
                namespace: namespace.clone(),
                labels: Some(labels.clone()),
                owner_references: Some(vec![owner.clone()]),
                ..ObjectMeta::default()
            },
            spec: TransportServerSpec {
                virtual_address: address.to_string(),
                port: port.port,
                protocol,
                partition: None,
                pool: Pool {
                    name: "service".into(),
                    service: name.clone(),
                    service_port: IntOrString::Int(port.port),
                    ..Pool::default()
                },
                snat: SnatMode::Automap,
                snat_pool: None,
                persistence: None,
                i_rules: Vec::new(),
                allow_source_ranges: spec.load_balancer_source_ranges.clone().unwrap_or_default(),
                virtual_address_options: None,
                policy: None,
                profiles: None,
                allow_vlans: Vec::new(),
                connection_mirroring: false,
                address_pool: None,
                pool_member_type: None,
                tls: None,
            },
            status: None,
        });
    }
    (generated, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    fn service(class: Option<&str>, ports: &[(i32, &str)], annotations: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                uid: Some("uid-1".into()),
                annotations: Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                load_balancer_class: class.map(String::from),
                load_balancer_source_ranges: Some(vec!["10.0.0.0/8".into()]),
                ports: Some(
                    ports
                        .iter()
                        .map(|(port, protocol)| ServicePort {
                            port: *port,
                            protocol: Some(protocol.to_string()),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn the_class_decides_which_services_are_handled() {
        let ours = LoadBalancerClass { class: "bigip.operator.dev/bigip".into(), class_less: false };
        assert!(ours.handles(&service(Some("bigip.operator.dev/bigip"), &[], &[])));
        assert!(!ours.handles(&service(Some("metallb.io/metallb"), &[], &[])));
        assert!(!ours.handles(&service(None, &[], &[])));
        let default_lb = LoadBalancerClass { class_less: true, ..ours };
        assert!(default_lb.handles(&service(None, &[], &[])));
        let mut cluster_ip = service(None, &[], &[]);
        if let Some(spec) = cluster_ip.spec.as_mut() {
            spec.type_ = Some("ClusterIP".into());
        }
        assert!(!default_lb.handles(&cluster_ip));
    }

    #[test]
    fn one_transport_server_per_port_and_protocol() {
        let svc = service(None, &[(53, "UDP"), (53, "TCP"), (9999, "SCTP")], &[]);
        let (generated, skipped) = transport_servers(&svc, "10.1.20.5".parse().unwrap_or_else(|e| panic!("{e}")));
        let names: Vec<_> = generated.iter().map(|ts| ts.metadata.name.clone().unwrap_or_default()).collect();
        assert_eq!(names, ["web-udp-53", "web-tcp-53"]);
        assert_eq!(
            skipped,
            vec![SkippedPort { port: 9999, reason: "port 9999 uses SCTP; only TCP and UDP are programmed".into() }]
        );
        let ts = &generated[0];
        assert_eq!(ts.spec.virtual_address, "10.1.20.5");
        assert_eq!((ts.spec.port, ts.spec.protocol), (53, TransportProtocol::Udp));
        assert_eq!(ts.spec.pool.service, "web");
        assert_eq!(ts.spec.pool.service_port, IntOrString::Int(53));
        assert_eq!(ts.spec.allow_source_ranges, ["10.0.0.0/8"], "loadBalancerSourceRanges become allowSourceRanges");
        let owner = &ts.metadata.owner_references.as_ref().map(|o| o[0].clone()).unwrap_or_else(|| panic!("no owner"));
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Service", "uid-1", Some(true)));
        assert_eq!(
            ts.metadata.labels.as_ref().and_then(|l| l.get(GENERATED_FOR_LABEL)).map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn requested_and_allocated_addresses() {
        assert_eq!(requested_address(&service(None, &[], &[])), Ok(None));
        let asked = service(None, &[], &[(ADDRESS_ANNOTATION, "10.1.20.9")]);
        assert_eq!(requested_address(&asked), Ok(Some("10.1.20.9".parse().unwrap_or_else(|e| panic!("{e}")))));
        let bad = service(None, &[], &[(ADDRESS_ANNOTATION, "ten")]);
        assert!(matches!(requested_address(&bad), Err(ServiceRequestError::InvalidAddress { .. })));
        let mut both = asked.clone();
        if let Some(spec) = both.spec.as_mut() {
            spec.load_balancer_ip = Some("10.1.20.8".into());
        }
        assert!(matches!(requested_address(&both), Err(ServiceRequestError::ConflictingAddresses { .. })));
        let allocated_svc = service(
            None,
            &[],
            &[(ALLOCATED_ANNOTATION, "10.1.20.3"), (ALLOCATED_FROM_ANNOTATION, "pool-a"), (POOL_ANNOTATION, "pool-a")],
        );
        assert_eq!(
            allocated(&allocated_svc),
            Some(("10.1.20.3".parse().unwrap_or_else(|e| panic!("{e}")), Some("pool-a")))
        );
        assert_eq!(requested_pool(&allocated_svc), Some("pool-a"));
    }
}
