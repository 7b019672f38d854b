//! Response bodies in the shapes F5's REST framework and AS3 use.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(super) fn respond(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// An iControl REST error: `{"code", "message", "errorStack", "apiError"}`.
pub(super) fn rest_error(status: StatusCode, api_error: u32, message: impl Into<String>) -> Response {
    let body = json!({
        "code": status.as_u16(),
        "message": message.into(),
        "errorStack": [],
        "apiError": api_error,
    });
    respond(status, body)
}

/// An AS3 error: `{"code", "message"}`.
pub(super) fn as3_error(status: StatusCode, message: impl Into<String>) -> Response {
    respond(status, json!({"code": status.as_u16(), "message": message.into()}))
}

/// A request body that is not JSON; answered 400 the way the REST framework does.
#[derive(Debug)]
pub(super) struct InvalidJson(serde_json::Error);

impl IntoResponse for InvalidJson {
    fn into_response(self) -> Response {
        rest_error(StatusCode::BAD_REQUEST, 1, format!("Found invalid JSON body in the request: {}", self.0))
    }
}

pub(super) fn parse_json_body(bytes: &[u8]) -> Result<Value, InvalidJson> {
    serde_json::from_slice(bytes).map_err(InvalidJson)
}

/// 404 for a path nothing is registered at.
pub(super) fn not_registered(path: &str) -> Response {
    rest_error(StatusCode::NOT_FOUND, 1, format!("Public URI path not registered: {path}"))
}
