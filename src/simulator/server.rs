//! The HTTP(S) server: route table, middleware and the listener.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use rustls::ServerConfig;
use tokio::task::JoinHandle;

use super::faults::{self, RefusingAcceptor};
use super::reply::not_registered;
use super::state::SimulatorState;
use super::{as3, auth, control, device_api, net, sys, views};

/// Large enough for whole-partition declarations of thousands of services.
const MAX_REQUEST_BODY_BYTES: usize = 256 * 1024 * 1024;

pub(super) fn router(state: SimulatorState) -> Router {
    let authenticated = Router::new()
        .merge(as3::routes())
        .merge(views::routes())
        .merge(device_api::routes())
        .merge(net::routes())
        .merge(sys::routes())
        .merge(auth::routes())
        .merge(control::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_auth));
    Router::new()
        .route("/mgmt/shared/authn/login", post(auth::login))
        .merge(authenticated)
        .fallback(unregistered)
        .layer(middleware::from_fn_with_state(state.clone(), faults::delay_answers))
        .layer(middleware::from_fn(log_request))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES))
        .with_state(state)
}

async fn unregistered(uri: Uri) -> Response {
    not_registered(uri.path())
}

async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis(), "request");
    response
}

/// Serves `router` on `listener` until `handle` shuts it down.
pub(super) fn spawn(
    listener: std::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    acceptor: RefusingAcceptor,
    handle: Handle<SocketAddr>,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let server = axum_server::from_tcp(listener)?.handle(handle);
    let service = router.into_make_service();
    Ok(match tls {
        None => tokio::spawn(server.acceptor(acceptor).serve(service)),
        Some(config) => {
            let tls_acceptor = RustlsAcceptor::new(RustlsConfig::from_config(config)).acceptor(acceptor);
            tokio::spawn(server.acceptor(tls_acceptor).serve(service))
        }
    })
}
