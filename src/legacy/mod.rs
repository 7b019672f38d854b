//! The legacy shim: F5 k8s-bigip-ctlr configuration (`f5type: virtual-server` ConfigMaps,
//! schemas v0.1.0–v0.1.7, and `virtual-server.f5.com` Ingresses) translated into the
//! operator's own VirtualServer and TransportServer objects. Pure: no I/O.

pub mod configmap;
pub mod ingress;

use crate::crd::{TransportServer, VirtualServer};

/// Label on every object generated from a legacy one; its value names the source kind
/// (`ConfigMap` or `Ingress`).
pub const GENERATED_FROM_LABEL: &str = "bigip.operator.dev/generated-from";

/// What one legacy object becomes.
#[derive(Debug, Clone)]
pub enum Translated {
    VirtualServer(Box<VirtualServer>),
    TransportServer(Box<TransportServer>),
}
