//! bigip-operator: programs F5 BIG-IP load balancers from Kubernetes through AS3.
//!
//! The modules follow the pipeline, dependencies pointing down the list:
//! `crd` (types) → `model` (pure desired state) → `as3` (pure rendering) → `bigip` (REST client)
//! → `controller` (watches, reconcile, status). `simulator` (the `bigip-simulator` crate,
//! feature `simulator`, on by default) speaks the BIG-IP wire API that `bigip` talks to, so
//! everything can be tested without a BIG-IP; AS3's rules (`as3-rules`) are shared by both.

pub mod as3;
pub mod bigip;
pub mod controller;
pub mod crd;
pub mod etcd;
pub mod legacy;
pub mod manifests;
pub mod metrics;
pub mod model;
#[cfg(feature = "simulator")]
pub use bigip_simulator as simulator;
pub mod status;

/// Selects ring as the process-wide TLS crypto provider. Two providers (ring through kube,
/// aws-lc-rs through reqwest) are linked, and rustls refuses to guess between them, so every
/// binary calls this first. Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
