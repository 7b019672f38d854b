//! iControl REST views (`/mgmt/tm/ltm/...`) of the objects AS3 has created, as the device
//! serves them: with the edits made on the device itself (`PATCH`/`DELETE` here, as tmsh or the
//! GUI would), which the stored declaration does not show (see [`live`](super::live)).
//! Collections take `$filter=partition eq <P>` and `expandSubcollections=true` (pool members
//! inline), so a partition is read in one request per collection.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::model::{self, tmsh_monitor_type, LtmMonitor, LtmPool, LtmPoolMember, LtmVirtual};
use super::reply::{parse_json_body, respond, rest_error};
use super::state::SimulatorState;

/// The TMOS version the views claim in their links (the default release).
pub(super) const TMOS_VERSION: &str = super::faults::DEFAULT_TMOS_VERSION;

pub(super) fn routes() -> Router<SimulatorState> {
    Router::new()
        .route("/mgmt/tm/ltm/virtual", get(list_virtuals))
        .route("/mgmt/tm/ltm/virtual/{name}", get(get_virtual).patch(patch_virtual).delete(delete_virtual))
        .route("/mgmt/tm/ltm/pool", get(list_pools))
        .route("/mgmt/tm/ltm/pool/{name}", get(get_pool).delete(delete_pool))
        .route("/mgmt/tm/ltm/pool/{name}/members", get(list_members))
        .route("/mgmt/tm/ltm/pool/{name}/members/{member}", axum::routing::patch(patch_member).delete(delete_member))
        .route("/mgmt/tm/ltm/monitor/{kind}", get(list_monitors))
        .route("/mgmt/tm/ltm/monitor/{kind}/{name}", get(get_monitor))
}

/// `/T/A/name` → `~T~A~name`, the form object paths take in iControl REST URIs.
fn uri_name(full_path: &str) -> String {
    full_path.replace('/', "~")
}

/// `~T~A~name` → `/T/A/name`; a bare name is in `/Common`.
fn full_path_from_uri(segment: &str) -> String {
    if segment.starts_with('~') {
        segment.replace('~', "/")
    } else {
        format!("/Common/{segment}")
    }
}

fn self_link(collection: &str, full_path: &str) -> String {
    format!("https://localhost/mgmt/tm/ltm/{collection}/{}?ver={TMOS_VERSION}", uri_name(full_path))
}

fn collection(kind: &str, path: &str, items: Vec<Value>) -> Response {
    respond(
        StatusCode::OK,
        json!({
            "kind": kind,
            "selfLink": format!("https://localhost/mgmt/tm/ltm/{path}?ver={TMOS_VERSION}"),
            "items": items,
        }),
    )
}

fn not_found(what: &str, full_path: &str) -> Response {
    rest_error(StatusCode::NOT_FOUND, 3, format!("01020036:3: The requested {what} ({full_path}) was not found."))
}

fn virtual_document(virtual_server: &LtmVirtual) -> Value {
    let full_path = virtual_server.full_path();
    let mut document = json!({
        "kind": "tm:ltm:virtual:virtualstate",
        "name": virtual_server.view.name,
        "partition": virtual_server.view.partition,
        "subPath": virtual_server.view.application,
        "fullPath": full_path,
        "generation": 1,
        "selfLink": self_link("virtual", &full_path),
        "destination": virtual_server.destination,
        "mask": virtual_server.mask,
        "source": virtual_server.source(),
        "ipProtocol": virtual_server.ip_protocol,
        "translateAddress": "enabled",
        "translatePort": "enabled",
    });
    if let Some(fields) = document.as_object_mut() {
        if let Some(pool) = &virtual_server.view.pool {
            fields.insert("pool".to_owned(), json!(pool));
        }
        let state = if virtual_server.enabled { "enabled" } else { "disabled" };
        fields.insert(state.to_owned(), json!(true));
    }
    document
}

fn pool_document(pool: &LtmPool) -> Value {
    let full_path = pool.full_path();
    let mut document = json!({
        "kind": "tm:ltm:pool:poolstate",
        "name": pool.name,
        "partition": pool.partition,
        "subPath": pool.application,
        "fullPath": full_path,
        "generation": 1,
        "selfLink": self_link("pool", &full_path),
        "loadBalancingMode": pool.load_balancing_mode,
        "minActiveMembers": pool.min_active_members,
        "membersReference": {
            "link": format!("https://localhost/mgmt/tm/ltm/pool/{}/members?ver={TMOS_VERSION}", uri_name(&full_path)),
            "isSubcollection": true,
        },
    });
    if let (Some(fields), Some(monitor)) = (document.as_object_mut(), &pool.monitor) {
        fields.insert("monitor".to_owned(), json!(monitor));
    }
    document
}

fn member_document(pool: &LtmPool, member: &LtmPoolMember) -> Value {
    let full_path = member.full_path();
    json!({
        "kind": "tm:ltm:pool:members:membersstate",
        "name": member.name,
        "partition": member.partition,
        "fullPath": full_path,
        "generation": 1,
        "selfLink": format!(
            "https://localhost/mgmt/tm/ltm/pool/{}/members/{}?ver={TMOS_VERSION}",
            uri_name(&pool.full_path()),
            uri_name(&full_path)
        ),
        "address": member.address,
        "session": member.session(),
        "state": member.state(),
        "connectionLimit": 0,
        "priorityGroup": 0,
        "ratio": 1,
        "monitor": "default",
    })
}

fn monitor_document(monitor: &LtmMonitor) -> Value {
    let full_path = monitor.full_path();
    let kind = &monitor.monitor_type;
    let mut document = json!({
        "kind": format!("tm:ltm:monitor:{kind}:{kind}state"),
        "name": monitor.name,
        "partition": monitor.partition,
        "subPath": monitor.application,
        "fullPath": full_path,
        "generation": 1,
        "selfLink": self_link(&format!("monitor/{kind}"), &full_path),
        "defaultsFrom": format!("/Common/{kind}"),
        "interval": monitor.interval,
        "timeout": monitor.timeout,
    });
    if let Some(fields) = document.as_object_mut() {
        let optional = [("send", &monitor.send), ("recv", &monitor.recv)];
        for (name, value) in optional {
            if let Some(value) = value {
                fields.insert(name.to_owned(), json!(value));
            }
        }
    }
    document
}

/// The partition of `$filter=partition eq <P>` (also `+`- or `%20`-separated), if any.
fn partition_filter(query: Option<&str>) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key != "$filter" && key != "%24filter" {
            return None;
        }
        let value = value.replace("%20", " ").replace('+', " ");
        let mut words = value.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("partition"), Some("eq"), Some(partition)) => Some(partition.trim_matches('\'').to_owned()),
            _ => None,
        }
    })
}

fn query_true(query: Option<&str>, name: &str) -> bool {
    query.into_iter().flat_map(|q| q.split('&')).any(|pair| pair == format!("{name}=true"))
}

async fn list_virtuals(State(sim): State<SimulatorState>, RawQuery(query): RawQuery) -> Response {
    let partition = partition_filter(query.as_deref());
    let items = sim
        .live_virtuals()
        .iter()
        .filter(|v| partition.as_ref().is_none_or(|p| v.view.partition == *p))
        .map(virtual_document)
        .collect();
    collection("tm:ltm:virtual:virtualcollectionstate", "virtual", items)
}

async fn get_virtual(State(sim): State<SimulatorState>, Path(name): Path<String>) -> Response {
    let full_path = full_path_from_uri(&name);
    match sim.live_virtuals().iter().find(|v| v.full_path() == full_path) {
        Some(found) => respond(StatusCode::OK, virtual_document(found)),
        None => not_found("Virtual Server", &full_path),
    }
}

/// `{"disabled": true}` or `{"enabled": true}`, as tmsh `modify ltm virtual … disabled`.
async fn patch_virtual(State(sim): State<SimulatorState>, Path(name): Path<String>, body: Bytes) -> Response {
    let full_path = full_path_from_uri(&name);
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return axum::response::IntoResponse::into_response(invalid),
    };
    let enabled = match (body.get("enabled").and_then(Value::as_bool), body.get("disabled").and_then(Value::as_bool)) {
        (Some(enabled), _) => enabled,
        (None, Some(disabled)) => !disabled,
        (None, None) => {
            return rest_error(StatusCode::BAD_REQUEST, 1, "the simulator changes only enabled/disabled of a virtual")
        }
    };
    if !sim.live_virtuals().iter().any(|v| v.full_path() == full_path) {
        return not_found("Virtual Server", &full_path);
    }
    sim.with_live_mut(|live| live.set_virtual_enabled(&full_path, enabled));
    get_virtual(State(sim), Path(name)).await
}

async fn delete_virtual(State(sim): State<SimulatorState>, Path(name): Path<String>) -> Response {
    let full_path = full_path_from_uri(&name);
    if !sim.live_virtuals().iter().any(|v| v.full_path() == full_path) {
        // Maybe one created outside AS3.
        return super::device_api::delete_object(&sim, "ltm/virtual", &name);
    }
    sim.with_live_mut(|live| live.delete_virtual(&full_path));
    respond(StatusCode::OK, Value::Null)
}

fn pool_with_members(pool: &LtmPool) -> Value {
    let mut document = pool_document(pool);
    let items: Vec<Value> = pool.members.iter().map(|member| member_document(pool, member)).collect();
    if let Some(reference) = document.get_mut("membersReference").and_then(Value::as_object_mut) {
        reference.insert("items".to_owned(), Value::Array(items));
    }
    document
}

async fn list_pools(State(sim): State<SimulatorState>, RawQuery(query): RawQuery) -> Response {
    let partition = partition_filter(query.as_deref());
    let expand = query_true(query.as_deref(), "expandSubcollections");
    let items = sim
        .live_pools()
        .iter()
        .filter(|pool| partition.as_ref().is_none_or(|p| pool.partition == *p))
        .map(|pool| if expand { pool_with_members(pool) } else { pool_document(pool) })
        .collect();
    collection("tm:ltm:pool:poolcollectionstate", "pool", items)
}

fn find_pool(sim: &SimulatorState, full_path: &str) -> Option<LtmPool> {
    sim.live_pools().into_iter().find(|pool| pool.full_path() == full_path)
}

async fn get_pool(State(sim): State<SimulatorState>, Path(name): Path<String>) -> Response {
    let full_path = full_path_from_uri(&name);
    match find_pool(&sim, &full_path) {
        Some(pool) => respond(StatusCode::OK, pool_document(&pool)),
        None => not_found("Pool", &full_path),
    }
}

async fn delete_pool(State(sim): State<SimulatorState>, Path(name): Path<String>) -> Response {
    let full_path = full_path_from_uri(&name);
    if find_pool(&sim, &full_path).is_none() {
        // Maybe one created outside AS3.
        return super::device_api::delete_object(&sim, "ltm/pool", &name);
    }
    sim.with_live_mut(|live| live.delete_pool(&full_path));
    respond(StatusCode::OK, Value::Null)
}

async fn list_members(State(sim): State<SimulatorState>, Path(name): Path<String>) -> Response {
    let full_path = full_path_from_uri(&name);
    let Some(pool) = find_pool(&sim, &full_path) else {
        return not_found("Pool", &full_path);
    };
    let items = pool.members.iter().map(|member| member_document(&pool, member)).collect();
    collection("tm:ltm:pool:members:memberscollectionstate", &format!("pool/{name}/members"), items)
}

/// `{"session": "user-disabled"}` / `"user-enabled"` (or `state: user-down`), as tmsh does.
async fn patch_member(
    State(sim): State<SimulatorState>,
    Path((name, member)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (pool_path, member_path) = (full_path_from_uri(&name), full_path_from_uri(&member));
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return axum::response::IntoResponse::into_response(invalid),
    };
    let enabled = match (body.get("session").and_then(Value::as_str), body.get("state").and_then(Value::as_str)) {
        (Some("user-enabled"), _) | (None, Some("user-up")) => true,
        (Some("user-disabled"), _) | (None, Some("user-down")) => false,
        _ => return rest_error(StatusCode::BAD_REQUEST, 1, "the simulator changes only session/state of a member"),
    };
    let Some(pool) = find_pool(&sim, &pool_path) else { return not_found("Pool", &pool_path) };
    let Some(found) = pool.members.iter().find(|m| m.full_path() == member_path) else {
        return not_found("Pool Member", &member_path);
    };
    let document = member_document(&pool, found);
    sim.with_live_mut(|live| live.set_member_enabled(&pool_path, &member_path, enabled));
    respond(StatusCode::OK, document)
}

async fn delete_member(State(sim): State<SimulatorState>, Path((name, member)): Path<(String, String)>) -> Response {
    let (pool_path, member_path) = (full_path_from_uri(&name), full_path_from_uri(&member));
    let Some(pool) = find_pool(&sim, &pool_path) else { return not_found("Pool", &pool_path) };
    if !pool.members.iter().any(|m| m.full_path() == member_path) {
        return not_found("Pool Member", &member_path);
    }
    sim.with_live_mut(|live| live.remove_member(&pool_path, &member_path));
    respond(StatusCode::OK, Value::Null)
}

fn monitors_of_kind(sim: &SimulatorState, kind: &str) -> Vec<LtmMonitor> {
    // `icmp` is how AS3 names the type; BIG-IP calls it gateway-icmp.
    let kind = tmsh_monitor_type(kind);
    sim.with_deployed(|deployed| {
        model::all_monitors(&deployed.tenants).into_iter().filter(|monitor| monitor.monitor_type == kind).collect()
    })
}

async fn list_monitors(State(sim): State<SimulatorState>, Path(kind): Path<String>) -> Response {
    let items = monitors_of_kind(&sim, &kind).iter().map(monitor_document).collect();
    let kind = tmsh_monitor_type(&kind);
    collection(&format!("tm:ltm:monitor:{kind}:{kind}collectionstate"), &format!("monitor/{kind}"), items)
}

async fn get_monitor(State(sim): State<SimulatorState>, Path((kind, name)): Path<(String, String)>) -> Response {
    let full_path = full_path_from_uri(&name);
    match monitors_of_kind(&sim, &kind).iter().find(|monitor| monitor.full_path() == full_path) {
        Some(monitor) => respond(StatusCode::OK, monitor_document(monitor)),
        None => not_found("Monitor", &full_path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_names_round_trip() {
        assert_eq!(uri_name("/T/A/web_pool"), "~T~A~web_pool");
        assert_eq!(full_path_from_uri("~T~A~web_pool"), "/T/A/web_pool");
        assert_eq!(full_path_from_uri("http"), "/Common/http");
    }

    #[test]
    fn monitor_document_omits_absent_strings() {
        let monitor = LtmMonitor {
            partition: "T".to_owned(),
            application: "A".to_owned(),
            name: "m".to_owned(),
            monitor_type: "tcp".to_owned(),
            send: None,
            recv: Some("ok".to_owned()),
            interval: 5,
            timeout: 16,
        };
        let document = monitor_document(&monitor);
        assert!(document.get("send").is_none());
        assert_eq!(document["recv"], "ok");
        assert_eq!(document["kind"], "tm:ltm:monitor:tcp:tcpstate");
    }
}
