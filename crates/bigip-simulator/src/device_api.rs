//! iControl REST for the device's own objects ([`DeviceCatalog`]): list, create, read and
//! delete profiles, iRules, certificates, WAF policies… (`/mgmt/tm/ltm/profile/http`,
//! `/mgmt/tm/asm/policies`, …), so tests can put on the simulated BIG-IP what an administrator
//! would have created by hand, and AS3's `bigip:` references find it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::catalog::{creatable_types, DeviceCatalog};
use super::net::NET_COLLECTIONS;
use super::reply::{parse_json_body, respond, rest_error};
use super::state::SimulatorState;
use super::views::TMOS_VERSION;

pub(super) fn routes() -> Router<SimulatorState> {
    let mut kinds = creatable_types();
    for kind in DeviceCatalog::standard().kinds() {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    // Served elsewhere: the tunnel objects (net) entirely, AS3's live objects (views) for reads.
    kinds.retain(|kind| !NET_COLLECTIONS.iter().any(|collection| *kind == format!("net/{collection}")));
    let served_elsewhere =
        |kind: &str| matches!(kind, "ltm/virtual" | "ltm/pool" | "ltm/node") || kind.starts_with("ltm/monitor");
    kinds.into_iter().fold(Router::new(), |router, kind| {
        let collection = format!("/mgmt/tm/{kind}");
        if served_elsewhere(&kind) {
            // Objects made outside AS3 can still be created here (the views delete them).
            let create_kind = kind;
            return router.route(
                &collection,
                post(move |State(sim): State<SimulatorState>, body: Bytes| async move { create(&sim, &create_kind, &body) }),
            );
        }
        let (list_kind, create_kind, read_kind, delete_kind) = (kind.clone(), kind.clone(), kind.clone(), kind);
        router
            .route(
                &collection,
                get(move |State(sim): State<SimulatorState>| async move { list(&sim, &list_kind) }).post(
                    move |State(sim): State<SimulatorState>, body: Bytes| async move { create(&sim, &create_kind, &body) },
                ),
            )
            .route(
                &format!("{collection}/{{name}}"),
                get(move |State(sim): State<SimulatorState>, Path(name): Path<String>| async move {
                    read(&sim, &read_kind, &name)
                })
                .delete(move |State(sim): State<SimulatorState>, Path(name): Path<String>| async move {
                    delete_object(&sim, &delete_kind, &name)
                }),
            )
    })
}

/// `~Common~name` (or a bare name, in `/Common`) → `/Common/name`.
fn full_path(segment: &str) -> String {
    if segment.starts_with('~') {
        segment.replace('~', "/")
    } else {
        format!("/Common/{segment}")
    }
}

fn document(kind: &str, full_path: &str) -> Value {
    let (partition, name) = full_path.trim_start_matches('/').split_once('/').unwrap_or(("Common", full_path));
    if kind == "net/route-domain" {
        // Route domains are named by their id here (`/Common/2` is route domain 2).
        if let Ok(id) = name.parse::<u16>() {
            return json!({
                "kind": "tm:net:route-domain:route-domainstate",
                "name": name,
                "partition": partition,
                "fullPath": full_path,
                "id": id,
                "selfLink": format!("https://localhost/mgmt/tm/net/route-domain/{}?ver={TMOS_VERSION}", full_path.replace('/', "~")),
            });
        }
    }
    json!({
        "kind": format!("tm:{}:{}state", kind.replace('/', ":"), kind.rsplit('/').next().unwrap_or(kind)),
        "name": name,
        "partition": partition,
        "fullPath": full_path,
        "selfLink": format!("https://localhost/mgmt/tm/{kind}/{}?ver={TMOS_VERSION}", full_path.replace('/', "~")),
    })
}

fn not_found(kind: &str, full_path: &str) -> Response {
    rest_error(StatusCode::NOT_FOUND, 3, format!("01020036:3: The requested {kind} ({full_path}) was not found."))
}

fn list(sim: &SimulatorState, kind: &str) -> Response {
    let items: Vec<Value> = sim.device().list(kind).iter().map(|path| document(kind, path)).collect();
    respond(
        StatusCode::OK,
        json!({"kind": format!("tm:{}:{}collectionstate", kind.replace('/', ":"), kind.rsplit('/').next().unwrap_or(kind)),
            "selfLink": format!("https://localhost/mgmt/tm/{kind}?ver={TMOS_VERSION}"), "items": items}),
    )
}

fn create(sim: &SimulatorState, kind: &str, body: &[u8]) -> Response {
    let body = match parse_json_body(body) {
        Ok(body) => body,
        Err(invalid) => return axum::response::IntoResponse::into_response(invalid),
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let path = match (text("fullPath"), text("name")) {
        (Some(full), _) if full.starts_with('/') => full,
        (_, Some(name)) if name.starts_with('/') => name,
        (_, Some(name)) if !name.is_empty() => {
            format!("/{}/{name}", text("partition").unwrap_or_else(|| "Common".to_owned()))
        }
        _ => return rest_error(StatusCode::BAD_REQUEST, 1, "the object needs a name"),
    };
    if sim.with_device_mut(|device| device.insert(kind, &path)) {
        respond(StatusCode::OK, document(kind, &path))
    } else {
        rest_error(
            StatusCode::CONFLICT,
            3,
            format!(
                "01020066:3: The requested {kind} ({path}) already exists in partition {}.",
                path.split('/').nth(1).unwrap_or("Common")
            ),
        )
    }
}

fn read(sim: &SimulatorState, kind: &str, segment: &str) -> Response {
    let path = full_path(segment);
    if sim.device().contains(kind, &path) {
        respond(StatusCode::OK, document(kind, &path))
    } else {
        not_found(kind, &path)
    }
}

pub(super) fn delete_object(sim: &SimulatorState, kind: &str, segment: &str) -> Response {
    let path = full_path(segment);
    if sim.with_device_mut(|device| device.remove(kind, &path)) {
        respond(StatusCode::OK, Value::Null)
    } else {
        not_found(kind, &path)
    }
}
