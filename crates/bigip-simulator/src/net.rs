//! iControl REST for the network objects of a BigIpTunnel: `/mgmt/tm/net/tunnels/vxlan`,
//! `tunnels/tunnel`, `self`, `arp`, `routing/bgp` (list, create, read, modify, delete) and
//! `fdb/tunnel/<tunnel>` (read, replace the records). The rules live in `net_config`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::net_config::{
    full_path, ArpEntry, BgpInstance, FdbRecord, NetConfig, NetError, NetObject, PrefixList, RouteMap, SelfIp, Tunnel,
    VxlanProfile, PARTITION,
};
use super::reply::{not_registered, parse_json_body, respond, rest_error};
use super::state::SimulatorState;
use super::views::TMOS_VERSION;

/// The collections below `/mgmt/tm/net/` this module serves.
pub(super) const NET_COLLECTIONS: [&str; 9] = [
    VxlanProfile::COLLECTION,
    Tunnel::COLLECTION,
    SelfIp::COLLECTION,
    ArpEntry::COLLECTION,
    BgpInstance::COLLECTION,
    PrefixList::COLLECTION,
    RouteMap::COLLECTION,
    "fdb/tunnel",
    "tunnels/tunnel/stats",
];

pub(super) fn routes() -> Router<SimulatorState> {
    Router::new()
        .merge(object_routes::<VxlanProfile>())
        .merge(object_routes::<Tunnel>())
        .merge(object_routes::<SelfIp>())
        .merge(object_routes::<ArpEntry>())
        .merge(object_routes::<BgpInstance>())
        .merge(object_routes::<PrefixList>())
        .merge(object_routes::<RouteMap>())
        .route("/mgmt/tm/net/tunnels/tunnel/{name}/stats", get(tunnel_stats))
        .route("/mgmt/tm/net/fdb/tunnel", get(list_fdb))
        .route("/mgmt/tm/net/fdb/tunnel/{name}", get(get_fdb).patch(patch_fdb))
}

/// On releases before 14.1 the routing collections do not exist: their requests get BIG-IP's
/// answer for an unknown path.
fn unregistered_on_this_release<T: NetObject>(sim: &SimulatorState) -> Option<Response> {
    (T::COLLECTION.starts_with("routing/") && !sim.has_net_routing())
        .then(|| not_registered(&format!("/tm/net/{}", T::COLLECTION)))
}

fn object_routes<T: NetObject>() -> Router<SimulatorState> {
    let collection = format!("/mgmt/tm/net/{}", T::COLLECTION);
    Router::new()
        .route(&collection, get(list::<T>).post(create::<T>))
        .route(&format!("{collection}/{{name}}"), get(read::<T>).patch(patch::<T>).delete(delete::<T>))
}

impl IntoResponse for NetError {
    fn into_response(self) -> Response {
        let status = match &self {
            NetError::NotFound { .. } => StatusCode::NOT_FOUND,
            NetError::AlreadyExists { .. } | NetError::Conflict(_) => StatusCode::CONFLICT,
            NetError::MissingReference { .. }
            | NetError::InUse { .. }
            | NetError::UnexpectedProperty { .. }
            | NetError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        let api_error = if matches!(self, NetError::UnexpectedProperty { .. }) { 26 } else { 3 };
        rest_error(status, api_error, self.to_string())
    }
}

/// The object name a URI segment addresses: `~Common~name` (`%7E` is decoded by the router) or
/// a bare `name`. A path in another partition is answered as not found.
fn name_in_common<T: NetObject>(segment: &str) -> Result<String, NetError> {
    match segment.strip_prefix('~') {
        None => Ok(segment.to_owned()),
        Some(path) => match path.split_once('~') {
            Some((PARTITION, name)) if !name.contains('~') => Ok(name.to_owned()),
            _ => Err(NetError::NotFound { what: T::WHAT, full_path: segment.replace('~', "/") }),
        },
    }
}

fn link(collection: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("https://localhost/mgmt/tm/net/{collection}/~{PARTITION}~{name}?ver={TMOS_VERSION}"),
        None => format!("https://localhost/mgmt/tm/net/{collection}?ver={TMOS_VERSION}"),
    }
}

/// `tunnels/vxlan` → `tm:net:tunnels:vxlan:vxlan`; BIG-IP appends `state` or `collectionstate`.
fn kind_stem(collection: &str) -> String {
    let last = collection.rsplit('/').next().unwrap_or(collection);
    format!("tm:net:{}:{last}", collection.replace('/', ":"))
}

fn document<T: NetObject>(object: &T) -> Value {
    let mut document = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(fields) = document.as_object_mut() {
        let name = object.name();
        fields.insert("kind".to_owned(), json!(format!("{}state", kind_stem(T::COLLECTION))));
        fields.insert("partition".to_owned(), json!(PARTITION));
        fields.insert("fullPath".to_owned(), json!(full_path(name)));
        fields.insert("generation".to_owned(), json!(1));
        fields.insert("selfLink".to_owned(), json!(link(T::COLLECTION, Some(name))));
    }
    document
}

fn collection_document(collection: &str, items: Vec<Value>) -> Response {
    respond(
        StatusCode::OK,
        json!({
            "kind": format!("{}collectionstate", kind_stem(collection)),
            "selfLink": link(collection, None),
            "items": items,
        }),
    )
}

/// Runs `change` on the network configuration and, when it succeeds, writes the state file.
async fn change_net<R>(
    sim: &SimulatorState,
    change: impl FnOnce(&mut NetConfig) -> Result<R, NetError>,
) -> Result<R, NetError> {
    let changed = sim.with_net_mut(change)?;
    sim.persist_net().await;
    Ok(changed)
}

async fn list<T: NetObject>(State(sim): State<SimulatorState>) -> Response {
    if let Some(unregistered) = unregistered_on_this_release::<T>(&sim) {
        return unregistered;
    }
    let items = sim.with_net(|net| net.list::<T>().iter().map(document).collect());
    collection_document(T::COLLECTION, items)
}

async fn read<T: NetObject>(State(sim): State<SimulatorState>, Path(segment): Path<String>) -> Response {
    if let Some(unregistered) = unregistered_on_this_release::<T>(&sim) {
        return unregistered;
    }
    let found = name_in_common::<T>(&segment).and_then(|name| sim.with_net(|net| net.get::<T>(&name)));
    match found {
        Ok(object) => respond(StatusCode::OK, document(&object)),
        Err(error) => error.into_response(),
    }
}

async fn create<T: NetObject>(State(sim): State<SimulatorState>, body: Bytes) -> Response {
    if let Some(unregistered) = unregistered_on_this_release::<T>(&sim) {
        return unregistered;
    }
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    match change_net(&sim, |net| net.create::<T>(&body)).await {
        Ok(object) => respond(StatusCode::OK, document(&object)),
        Err(error) => error.into_response(),
    }
}

async fn patch<T: NetObject>(State(sim): State<SimulatorState>, Path(segment): Path<String>, body: Bytes) -> Response {
    if let Some(unregistered) = unregistered_on_this_release::<T>(&sim) {
        return unregistered;
    }
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    let name = match name_in_common::<T>(&segment) {
        Ok(name) => name,
        Err(error) => return error.into_response(),
    };
    match change_net(&sim, |net| net.patch::<T>(&name, &body)).await {
        Ok(object) => respond(StatusCode::OK, document(&object)),
        Err(error) => error.into_response(),
    }
}

async fn delete<T: NetObject>(State(sim): State<SimulatorState>, Path(segment): Path<String>) -> Response {
    if let Some(unregistered) = unregistered_on_this_release::<T>(&sim) {
        return unregistered;
    }
    let name = match name_in_common::<T>(&segment) {
        Ok(name) => name,
        Err(error) => return error.into_response(),
    };
    match change_net(&sim, |net| net.delete::<T>(&name)).await {
        // BIG-IP answers a delete with 200 and an empty body.
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}

const FDB_COLLECTION: &str = "fdb/tunnel";

fn fdb_document(tunnel: &str, records: &[FdbRecord]) -> Value {
    let mut document = json!({
        "kind": format!("{}state", kind_stem(FDB_COLLECTION)),
        "name": tunnel,
        "partition": PARTITION,
        "fullPath": full_path(tunnel),
        "generation": 1,
        "selfLink": link(FDB_COLLECTION, Some(tunnel)),
    });
    // Like BIG-IP, a tunnel without records shows no `records` property at all.
    if let (Some(fields), false) = (document.as_object_mut(), records.is_empty()) {
        fields.insert("records".to_owned(), json!(records));
    }
    document
}

async fn list_fdb(State(sim): State<SimulatorState>) -> Response {
    let tunnels = sim.with_net(NetConfig::all_fdb_records);
    let items = tunnels.iter().map(|(tunnel, records)| fdb_document(tunnel, records)).collect();
    collection_document(FDB_COLLECTION, items)
}

async fn get_fdb(State(sim): State<SimulatorState>, Path(segment): Path<String>) -> Response {
    let found = name_in_common::<Tunnel>(&segment)
        .and_then(|tunnel| sim.with_net(|net| net.fdb_records(&tunnel)).map(|records| (tunnel, records)));
    match found {
        Ok((tunnel, records)) => respond(StatusCode::OK, fdb_document(&tunnel, &records)),
        Err(error) => error.into_response(),
    }
}

async fn patch_fdb(State(sim): State<SimulatorState>, Path(segment): Path<String>, body: Bytes) -> Response {
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    let tunnel = match name_in_common::<Tunnel>(&segment) {
        Ok(tunnel) => tunnel,
        Err(error) => return error.into_response(),
    };
    match change_net(&sim, |net| net.replace_fdb_records(&tunnel, &body)).await {
        Ok(records) => respond(StatusCode::OK, fdb_document(&tunnel, &records)),
        Err(error) => error.into_response(),
    }
}

/// The MAC address the simulator gives a tunnel: locally administered, derived from its name,
/// so it is stable across restarts like a real tunnel's.
pub fn tunnel_mac(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = vec![0x02u8];
    bytes.extend_from_slice(&digest[..5]);
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `GET /mgmt/tm/net/tunnels/tunnel/~Common~<name>/stats`: the tunnel's statistics as BIG-IP
/// nests them, with its `macAddr` (the VTEP MAC flannel's nodes must learn).
async fn tunnel_stats(State(sim): State<SimulatorState>, Path(segment): Path<String>) -> Response {
    let found = name_in_common::<Tunnel>(&segment).and_then(|name| sim.with_net(|net| net.get::<Tunnel>(&name)));
    match found {
        Ok(tunnel) => {
            let self_link = format!("https://localhost/mgmt/tm/net/tunnels/tunnel/~{PARTITION}~{}/stats", tunnel.name);
            respond(
                StatusCode::OK,
                json!({
                    "kind": "tm:net:tunnels:tunnel:tunnelstats",
                    "selfLink": format!("{self_link}?ver={TMOS_VERSION}"),
                    "entries": { self_link: { "nestedStats": { "entries": {
                        "tmName": { "description": full_path(&tunnel.name) },
                        "macAddr": { "description": tunnel_mac(&tunnel.name) },
                        "localAddress": { "description": tunnel.local_address },
                    } } } },
                }),
            )
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_segments_name_objects_in_common() {
        assert_eq!(name_in_common::<ArpEntry>("~Common~a1"), Ok("a1".to_owned()));
        assert_eq!(name_in_common::<ArpEntry>("a1"), Ok("a1".to_owned()));
        assert_eq!(
            name_in_common::<ArpEntry>("~Other~a1"),
            Err(NetError::NotFound { what: "ARP entry", full_path: "/Other/a1".to_owned() })
        );
    }

    #[test]
    fn kinds_follow_the_collection() {
        assert_eq!(kind_stem("tunnels/vxlan"), "tm:net:tunnels:vxlan:vxlan");
        assert_eq!(kind_stem("arp"), "tm:net:arp:arp");
        assert_eq!(kind_stem(FDB_COLLECTION), "tm:net:fdb:tunnel:tunnel");
        assert_eq!(kind_stem("routing/bgp"), "tm:net:routing:bgp:bgp");
    }
}
