//! The simulator's own control API (not part of BIG-IP), for tests and demos:
//! `GET`/`PUT /simulator/faults`, `GET /simulator/history`, `GET /simulator/stats`.
//! It takes the same credentials as `/mgmt`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use super::faults::Faults;
use super::reply::{parse_json_body, respond, rest_error};
use super::state::SimulatorState;

pub(super) fn routes() -> Router<SimulatorState> {
    Router::new()
        .route("/simulator/faults", get(get_faults).put(put_faults))
        .route("/simulator/history", get(get_history))
        .route("/simulator/stats", get(get_stats))
}

fn to_json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_value(value) {
        Ok(document) => respond(StatusCode::OK, document),
        Err(error) => rest_error(StatusCode::INTERNAL_SERVER_ERROR, 1, error.to_string()),
    }
}

async fn get_faults(State(sim): State<SimulatorState>) -> Response {
    to_json(&sim.faults())
}

async fn put_faults(State(sim): State<SimulatorState>, body: Bytes) -> Response {
    let body: Value = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    let faults: Faults = match serde_json::from_value(body) {
        Ok(faults) => faults,
        Err(error) => return rest_error(StatusCode::BAD_REQUEST, 1, format!("invalid faults: {error}")),
    };
    if faults.refuse_connections {
        // Refusing connections would also cut off this API, leaving no way to clear it.
        return rest_error(
            StatusCode::BAD_REQUEST,
            1,
            "refuseConnections can only be set through the Rust API (RunningSimulator::set_faults)",
        );
    }
    if let Some(version) =
        faults.tmos_version.as_deref().filter(|v| as3_rules::version::BigIpVersion::parse(v).is_none())
    {
        return rest_error(
            StatusCode::BAD_REQUEST,
            1,
            format!("invalid faults: tmosVersion {version:?} is not a version such as 13.1.3"),
        );
    }
    sim.apply_faults(faults);
    to_json(&sim.faults())
}

async fn get_history(State(sim): State<SimulatorState>) -> Response {
    to_json(&sim.history())
}

async fn get_stats(State(sim): State<SimulatorState>) -> Response {
    to_json(&sim.stats())
}
