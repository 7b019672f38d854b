//! `GET /mgmt/tm/sys/version`: the BIG-IP release, as BIG-IP nests it in statistics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::reply::respond;
use super::state::SimulatorState;

pub(super) fn routes() -> Router<SimulatorState> {
    Router::new().route("/mgmt/tm/sys/version", get(version))
}

async fn version(State(sim): State<SimulatorState>) -> Response {
    let version = sim.tmos_version();
    let entry = "https://localhost/mgmt/tm/sys/version/0";
    respond(
        StatusCode::OK,
        json!({
            "kind": "tm:sys:version:versionstats",
            "selfLink": format!("https://localhost/mgmt/tm/sys/version?ver={version}"),
            "entries": { entry: { "nestedStats": { "entries": {
                "Build": { "description": "0.0.6" },
                "Date": { "description": "Thu Oct 12 12:00:00 PDT 2023" },
                "Edition": { "description": "Final" },
                "Product": { "description": "BIG-IP" },
                "Title": { "description": "Main Package" },
                "Version": { "description": version },
            } } } },
        }),
    )
}
