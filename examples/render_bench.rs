//! Benchmark of the pure pipeline: N VirtualServers (10 nodeport members each) → fleet →
//! tenant rendering → content hash → AS3 schema validation. Prints numbers; asserts nothing.
//!
//! `cargo run --release --example render_bench`

use std::time::{Duration, Instant};

use bigip_operator::as3::schema::validate_declaration;
use bigip_operator::as3::{render_request, render_tenant, tenant_hash, Ownership};
use bigip_operator::crd::{PoolMemberType, VirtualServer};
use bigip_operator::model::{build_fleet, ClusterObjects, ModelDefaults};
use serde_json::json;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    bigip_operator::install_crypto_provider();
    let mut cluster = ClusterObjects::default();
    for n in 0..10 {
        cluster.add_node(serde_json::from_value(json!({
            "metadata": {"name": format!("node-{n}")},
            "status": {"addresses": [{"type": "InternalIP", "address": format!("172.31.0.{}", n + 1)}],
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))?);
    }
    let defaults = ModelDefaults {
        partition: "kubernetes".into(),
        pool_member_type: PoolMemberType::Nodeport,
        node_selector: None,
        default_route_domain: 0,
    };
    println!("{:>6} {:>12} {:>12} {:>10} {:>12} {:>12}", "vs", "model", "render", "hash", "tenant KiB", "validate");
    for count in [10usize, 100, 1000] {
        let mut virtual_servers = Vec::new();
        for i in 0..count {
            cluster.add_service(serde_json::from_value::<bigip_operator::model::ServiceView>(json!({
                "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
                "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30000 + i}]},
            }))?);
            virtual_servers.push(serde_json::from_value::<VirtualServer>(json!({
                "apiVersion": "bigip.operator.dev/v1alpha1", "kind": "VirtualServer",
                "metadata": {"name": format!("vs-{i}"), "namespace": "bench"},
                "spec": {"virtualAddress": format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256), "port": 80,
                         "pools": [{"name": "web", "service": format!("svc-{i}"), "servicePort": 80,
                                    "monitors": [{"type": "http"}]}]},
            }))?);
        }
        let runs = if count >= 1000 { 5 } else { 20 };
        let owner = Ownership::new("bench")?;
        let model = time(runs, || build_fleet(virtual_servers.iter(), std::iter::empty(), &cluster, &defaults));
        let fleet = build_fleet(virtual_servers.iter(), std::iter::empty(), &cluster, &defaults);
        let apps = &fleet.partitions["kubernetes"];
        let render = time(runs, || render_tenant(apps, &owner));
        let tenant = render_tenant(apps, &owner);
        let hash = time(runs, || tenant_hash(&tenant));
        let request = render_request(&[("kubernetes".to_string(), tenant.clone())].into_iter().collect());
        validate_declaration(&request)?; // compile the schema outside the measurement
        let validate = time(runs.min(5), || validate_declaration(&request));
        println!(
            "{count:>6} {:>10.2}ms {:>10.2}ms {:>8.2}ms {:>12.1} {:>10.2}ms",
            model.as_secs_f64() * 1e3,
            render.as_secs_f64() * 1e3,
            hash.as_secs_f64() * 1e3,
            tenant.to_string().len() as f64 / 1024.0,
            validate.as_secs_f64() * 1e3,
        );
    }
    Ok(())
}
