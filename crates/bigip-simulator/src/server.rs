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

/// `/a/b/` → `/a/b` (the query kept); `/` stays.
fn trim_trailing_slash<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(path_and_query) = path_and_query.parse() {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
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
    // A BIG-IP answers `/mgmt/shared/appsvcs/declare/` like `/mgmt/shared/appsvcs/declare`.
    let service = axum::ServiceExt::<axum::http::Request<hyper::body::Incoming>>::into_make_service(
        tower::ServiceExt::map_request(router, trim_trailing_slash::<hyper::body::Incoming>),
    );
    Ok(match tls {
        None => tokio::spawn(server.acceptor(acceptor).serve(service)),
        Some(config) => {
            let tls_acceptor = RustlsAcceptor::new(RustlsConfig::from_config(config)).acceptor(acceptor);
            tokio::spawn(server.acceptor(tls_acceptor).serve(service))
        }
    })
}
