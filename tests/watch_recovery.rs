//! The operator's watches (`controller::watches`) with the real kube client and watcher
//! against a small apiserver stand-in on 127.0.0.1 that answers a watch with `410 Expired`,
//! as kube-apiserver does when its watch cache no longer holds the requested version. (The
//! e2e suite sees 410s only around a kube-apiserver restart, where the apiserver's own warm-up
//! dominates the time; this measures the operator's part alone.)

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bigip_operator::controller::watches;
use bigip_operator::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::{Config, Event};
use kube::{Api, Client};
use serde_json::json;

#[derive(Default)]
struct Apiserver {
    lists: AtomicU64,
    watches: AtomicU64,
    /// When the 410 was sent.
    expired_at: Mutex<Option<Instant>>,
}

fn json_response(body: serde_json::Value) -> Response {
    json_body(Body::from(body.to_string()))
}

fn json_body(body: Body) -> Response {
    Response::builder().header("content-type", "application/json").body(body).unwrap_or_default()
}

/// A watch answered with one `ERROR 410 Expired` event, then its end.
fn expired_watch() -> Response {
    let expired = json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 10 (15)", "reason": "Expired", "code": 410,
    }});
    json_body(Body::from(format!("{expired}\n")))
}

/// Whether a request is a watch (`?watch=true`) rather than a list.
fn is_watch(params: &HashMap<String, String>) -> bool {
    params.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// `GET /api/v1/namespaces/shop/configmaps`: a list (resourceVersion 10, then 20), or a watch.
/// The first watch gets one `ERROR 410 Expired` event and ends; later watches stay open.
async fn configmaps(
    State(apiserver): State<Arc<Apiserver>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if is_watch(&params) {
        if apiserver.watches.fetch_add(1, Ordering::SeqCst) == 0 {
            if let Ok(mut at) = apiserver.expired_at.lock() {
                *at = Some(Instant::now());
            }
            return expired_watch();
        }
        return json_body(Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>()));
    }
    let version = if apiserver.lists.fetch_add(1, Ordering::SeqCst) == 0 { "10" } else { "20" };
    json_response(json!({
        "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": version},
        "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "shop", "resourceVersion": "5"}}],
    }))
}

/// Serves `app` on 127.0.0.1 and returns a kube client for it, and the server task.
async fn serve(app: Router) -> (Client, tokio::task::JoinHandle<std::io::Result<()>>) {
    bigip_operator::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let config = kube::Config::new(format!("http://{address}").parse().expect("url"));
    (Client::try_from(config).expect("client"), server)
}

#[tokio::test]
async fn a_watch_answered_410_relists_at_once() {
    let apiserver = Arc::new(Apiserver::default());
    let app = Router::new().route("/api/v1/namespaces/shop/configmaps", get(configmaps)).with_state(apiserver.clone());
    let (client, server) = serve(app).await;
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let events =
        watches::events(Api::<ConfigMap>::namespaced(client, "shop"), Config::default(), "configmaps", metrics.clone());
    let mut events = std::pin::pin!(events);

    let mut init_done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while init_done.len() < 2 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(Ok(Event::InitDone))) => init_done.push(Instant::now()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("the watch handed on an error: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(init_done.len(), 2, "listed, then re-listed after the 410");
    let expired_at = apiserver.expired_at.lock().expect("lock").expect("the 410 was sent");
    let recovered = init_done[1].duration_since(expired_at);
    println!("measured: re-listed {:.1} ms after the 410", recovered.as_secs_f64() * 1000.0);
    // No back-off before the re-list (the first back-off step alone is 0.5 s).
    assert!(recovered < Duration::from_millis(400), "re-listed {recovered:?} after the 410");
    assert_eq!(apiserver.lists.load(Ordering::SeqCst), 2);
    assert_eq!(metrics.watch_errors.with_label_values(&["configmaps", "expired"]).get(), 1);
    assert_eq!(metrics.watch_recoveries.with_label_values(&["configmaps"]).get_sample_count(), 1);
    server.abort();
}

/// A ConfigMap watch whose first watch request delivers an ADDED event one second in, and a
/// Secret watch that always expires.
#[derive(Default)]
struct TwoWatches {
    added_at: Mutex<Option<Instant>>,
    secret_failures: AtomicU64,
}

async fn late_configmap(
    State(apiserver): State<Arc<TwoWatches>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !is_watch(&params) {
        return json_response(
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "10"}, "items": []}),
        );
    }
    let added = json!({"type": "ADDED", "object": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "shop", "resourceVersion": "11"},
    }});
    let events = futures::stream::once(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(mut at) = apiserver.added_at.lock() {
            *at = Some(Instant::now());
        }
        Ok::<_, Infallible>(Bytes::from(format!("{added}\n")))
    })
    .chain(futures::stream::pending());
    json_body(Body::from_stream(events))
}

/// Secrets: the list works, and every watch is answered `410 Expired` (an apiserver whose
/// watch cache never catches up).
async fn failing_secrets(
    State(apiserver): State<Arc<TwoWatches>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !is_watch(&params) {
        return json_response(
            json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {"resourceVersion": "10"}, "items": []}),
        );
    }
    apiserver.secret_failures.fetch_add(1, Ordering::SeqCst);
    expired_watch()
}

/// One watch failing over and over (every watch answered 410) neither delays the events of the
/// controller's other watches nor spins: after the first immediate re-list it backs off.
#[tokio::test]
async fn a_failing_watch_does_not_delay_the_controllers_other_watches() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::reflector::{self, ObjectRef};
    use kube::runtime::WatchStreamExt;
    let apiserver = Arc::new(TwoWatches::default());
    let app = Router::new()
        .route("/api/v1/namespaces/shop/configmaps", get(late_configmap))
        .route("/api/v1/namespaces/shop/secrets", get(failing_secrets))
        .with_state(apiserver.clone());
    let (client, server) = serve(app).await;
    let metrics = Arc::new(Metrics::new().expect("metrics"));

    // Wired as the operator wires its controllers (controller/mod.rs).
    let (store, writer) = reflector::store::<ConfigMap>();
    let config_maps =
        watches::events(Api::namespaced(client.clone(), "shop"), Config::default(), "configmaps", metrics.clone())
            .reflect(writer)
            .touched_objects();
    let secrets =
        watches::events(Api::<Secret>::namespaced(client, "shop"), Config::default(), "secrets", metrics.clone())
            .touched_objects();
    let reconciled: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let controller = Controller::for_stream(config_maps, store)
        .watches_stream(secrets, |_secret: Secret| None::<ObjectRef<ConfigMap>>)
        .run(
            |cm: Arc<ConfigMap>, seen: Arc<Mutex<Vec<(String, Instant)>>>| async move {
                if let Ok(mut seen) = seen.lock() {
                    seen.push((cm.metadata.name.clone().unwrap_or_default(), Instant::now()));
                }
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            reconciled.clone(),
        )
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    let deadline = Instant::now() + Duration::from_secs(20);
    let late_at = loop {
        if let Some((_, at)) = reconciled.lock().expect("lock").iter().find(|(name, _)| name == "late") {
            break *at;
        }
        assert!(Instant::now() < deadline, "the ConfigMap was never reconciled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let added_at = apiserver.added_at.lock().expect("lock").expect("the event was sent");
    let delay = late_at.duration_since(added_at);
    let failures = apiserver.secret_failures.load(Ordering::SeqCst);
    println!(
        "measured: reconciled {:.1} ms after the event, while the other watch failed {failures} times",
        delay.as_secs_f64() * 1000.0
    );
    assert!(failures >= 2, "the other watch was failing meanwhile ({failures} failures)");
    assert!(failures <= 4, "the expiring watch was re-listed in a loop: {failures} watches in about a second");
    assert!(delay < Duration::from_millis(400), "the event waited {delay:?} behind the failing watch");
    running.abort();
    server.abort();
}
