//! iControl REST network objects (`/mgmt/tm/net/...`) for BigIpTunnel: the VXLAN profile,
//! the tunnel and its VTEP MAC, the self IP, the tunnel's FDB records, static ARP entries, the
//! BGP instance; and the BIG-IP's version (`/mgmt/tm/sys/version`).
//!
//! Objects the operator creates carry [`MANAGED_DESCRIPTION`]; only those are deleted when a
//! BigIpTunnel goes away. An object that existed before is adopted (set to the spec) but kept.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::client::{BigIpClient, Body};
use super::error::BigIpError;
use super::version::BigIpVersion;
use crate::model::bgp::PrefixEntry;

/// The `description` of every network object the operator created (and may delete).
pub const MANAGED_DESCRIPTION: &str = "managed by bigip-operator";

/// The network objects a BigIpTunnel creates, by their iControl REST collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    VxlanProfile,
    Tunnel,
    SelfIp,
    Bgp,
    PrefixList,
    RouteMap,
}

impl NetKind {
    /// How BIG-IP names the type, e.g. `self IP`.
    pub fn what(self) -> &'static str {
        match self {
            Self::VxlanProfile => "VXLAN profile",
            Self::Tunnel => "tunnel",
            Self::SelfIp => "self IP",
            Self::Bgp => "BGP instance",
            Self::PrefixList => "prefix list",
            Self::RouteMap => "route map",
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Self::VxlanProfile => "/mgmt/tm/net/tunnels/vxlan",
            Self::Tunnel => "/mgmt/tm/net/tunnels/tunnel",
            Self::SelfIp => "/mgmt/tm/net/self",
            Self::Bgp => "/mgmt/tm/net/routing/bgp",
            Self::PrefixList => "/mgmt/tm/net/routing/prefix-list",
            Self::RouteMap => "/mgmt/tm/net/routing/route-map",
        }
    }
}

/// What [`BigIpClient::remove_managed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The operator had created it; it is deleted.
    Deleted,
    /// It existed before the operator used it; it is left.
    Kept,
    /// It was not there.
    Absent,
}

/// A static ARP entry as the BIG-IP lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpRecord {
    pub name: String,
    pub ip_address: String,
    pub mac_address: String,
}

/// `/Common/<name>` in the URL form iControl REST uses.
fn common(name: &str) -> String {
    format!("~Common~{name}")
}

impl BigIpClient {
    async fn net_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), BigIpError> {
        let method_name = match method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            _ => "REQUEST",
        };
        let (status, text) = self.send(method, path, body.map_or(Body::None, Body::Json)).await?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        // A missing object is an answer for reads and deletes; for a create or a change it
        // is an error (e.g. a collection an old BIG-IP does not have).
        let absent_is_an_answer = matches!(method_name, "GET" | "DELETE") && status == StatusCode::NOT_FOUND;
        if status.is_success() || absent_is_an_answer {
            return Ok((status, value));
        }
        let message = value.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or(text);
        Err(BigIpError::Http { method: method_name, path: path.to_string(), status: status.as_u16(), body: message })
    }

    /// Creates the object `name` of `kind` with `body` (marked as managed), or PATCHes it to
    /// `body` when it exists and differs in one of `body`'s fields. When one of the
    /// `immutable` fields differs, BIG-IP cannot change it in place: the object is deleted and
    /// created again, keeping its description (so an adopted object stays unmanaged).
    async fn ensure_object(
        &self,
        kind: NetKind,
        name: &str,
        body: Value,
        immutable: &[&str],
    ) -> Result<(), BigIpError> {
        let collection = kind.collection();
        let path = format!("{collection}/{}", common(name));
        let (status, current) = self.net_call(Method::GET, &path, None).await?;
        let with_description = |description: Option<&Value>| {
            let mut body = body.clone();
            if let (Some(fields), Some(description)) = (body.as_object_mut(), description) {
                fields.insert("description".into(), description.clone());
            }
            body
        };
        if status == StatusCode::NOT_FOUND {
            let marked = with_description(Some(&json!(MANAGED_DESCRIPTION)));
            self.net_call(Method::POST, collection, Some(&marked)).await?;
            return Ok(());
        }
        let differs =
            |key: &str, value: &Value| !matches!(key, "name" | "partition") && current.get(key) != Some(value);
        let fields = body.as_object().into_iter().flatten();
        if fields.clone().any(|(key, value)| immutable.contains(&key.as_str()) && differs(key, value)) {
            self.net_call(Method::DELETE, &path, None).await?;
            self.net_call(Method::POST, collection, Some(&with_description(current.get("description")))).await?;
        } else if fields.clone().any(|(key, value)| differs(key, value)) {
            self.net_call(Method::PATCH, &path, Some(&body)).await?;
        }
        Ok(())
    }

    /// Deletes the object `name` of `kind` if the operator created it (see
    /// [`MANAGED_DESCRIPTION`]).
    pub async fn remove_managed(&self, kind: NetKind, name: &str) -> Result<Removal, BigIpError> {
        let path = format!("{}/{}", kind.collection(), common(name));
        let (status, current) = self.net_call(Method::GET, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Removal::Absent);
        }
        if current.get("description").and_then(Value::as_str) != Some(MANAGED_DESCRIPTION) {
            return Ok(Removal::Kept);
        }
        self.net_call(Method::DELETE, &path, None).await?;
        Ok(Removal::Deleted)
    }

    /// The BIG-IP's software version (`Version` of `/mgmt/tm/sys/version`).
    pub async fn version(&self) -> Result<BigIpVersion, BigIpError> {
        let path = "/mgmt/tm/sys/version";
        let (status, stats) = self.net_call(Method::GET, path, None).await?;
        let text = (status == StatusCode::OK).then(|| find_key(&stats, "Version")).flatten();
        let invalid = |detail: String| BigIpError::InvalidResponse { path: path.to_string(), detail };
        let text = text.ok_or_else(|| invalid("no Version in the answer".into()))?;
        BigIpVersion::parse(&text).ok_or_else(|| invalid(format!("version {text:?} is not dot-separated numbers")))
    }

    /// A VXLAN profile in /Common on `port`, without flooding (the FDB says where each MAC is).
    pub async fn ensure_vxlan_profile(&self, name: &str, port: u16) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "port": port, "floodingType": "none" });
        self.ensure_object(NetKind::VxlanProfile, name, body, &[]).await
    }

    /// A tunnel in /Common with the VXLAN profile and the BIG-IP's VTEP address.
    pub async fn ensure_tunnel(&self, name: &str, profile: &str, local_address: &str) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "profile": format!("/Common/{profile}"), "localAddress": local_address });
        self.ensure_object(NetKind::Tunnel, name, body, &["profile"]).await
    }

    /// A self IP (`address/mask`) on the tunnel; a changed address means a new self IP.
    pub async fn ensure_self_ip(&self, name: &str, address: &str, tunnel: &str) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "address": address, "vlan": format!("/Common/{tunnel}"), "allowService": "none" });
        self.ensure_object(NetKind::SelfIp, name, body, &["address"]).await
    }

    /// A BGP instance on route domain 0 with exactly these neighbors (address, remote AS),
    /// each filtering the routes it learns through route map `route_map_in` (a full path) if
    /// given.
    pub async fn ensure_bgp(
        &self,
        name: &str,
        local_as: u32,
        neighbors: &[(String, u32)],
        route_map_in: Option<&str>,
    ) -> Result<(), BigIpError> {
        let neighbor: Vec<Value> = neighbors
            .iter()
            .map(|(address, remote_as)| match route_map_in {
                None => json!({ "name": address, "remoteAs": remote_as }),
                Some(route_map) => json!({
                    "name": address,
                    "remoteAs": remote_as,
                    "addressFamily": [{ "name": "ipv4", "routeMap": { "in": route_map } }],
                }),
            })
            .collect();
        let body = json!({ "name": name, "partition": "Common", "localAs": local_as, "neighbor": neighbor });
        self.ensure_object(NetKind::Bgp, name, body, &[]).await
    }

    /// A prefix list in /Common with exactly these entries, keyed by sequence number.
    pub async fn ensure_prefix_list(&self, name: &str, entries: &[PrefixEntry]) -> Result<(), BigIpError> {
        let entries: serde_json::Map<String, Value> = entries
            .iter()
            .map(|entry| {
                let mut fields = json!({ "action": entry.action.as_str(), "prefix": entry.prefix.to_string() });
                if let (Some(range), Some(map)) = (entry.length_range_text(), fields.as_object_mut()) {
                    map.insert("prefixLenRange".into(), json!(range));
                }
                (entry.sequence.to_string(), fields)
            })
            .collect();
        let body = json!({ "name": name, "partition": "Common", "entries": entries });
        self.ensure_object(NetKind::PrefixList, name, body, &[]).await
    }

    /// A route map in /Common that permits the routes prefix list `prefix_list` permits.
    pub async fn ensure_route_map(&self, name: &str, prefix_list: &str) -> Result<(), BigIpError> {
        let entries = json!({ "10": {
            "action": "permit",
            "match": { "ipv4": { "address": { "prefixList": format!("/Common/{prefix_list}") } } },
        } });
        let body = json!({ "name": name, "partition": "Common", "entries": entries });
        self.ensure_object(NetKind::RouteMap, name, body, &[]).await
    }

    /// The tunnel's VTEP MAC address (`macAddr` of the tunnel's statistics).
    pub async fn tunnel_mac(&self, tunnel: &str) -> Result<String, BigIpError> {
        let path = format!("/mgmt/tm/net/tunnels/tunnel/{}/stats", common(tunnel));
        let (status, stats) = self.net_call(Method::GET, &path, None).await?;
        let found = (status == StatusCode::OK).then(|| find_key(&stats, "macAddr")).flatten();
        found.ok_or_else(|| BigIpError::InvalidResponse { path, detail: format!("no macAddr for tunnel {tunnel}") })
    }

    /// The tunnel's FDB records as (MAC, endpoint).
    pub async fn fdb_records(&self, tunnel: &str) -> Result<Vec<(String, String)>, BigIpError> {
        let path = format!("/mgmt/tm/net/fdb/tunnel/{}", common(tunnel));
        let (status, value) = self.net_call(Method::GET, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(BigIpError::InvalidResponse { path, detail: format!("tunnel {tunnel} not found") });
        }
        Ok(value
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.get("name")?.as_str()?.to_string(), r.get("endpoint")?.as_str()?.to_string())))
            .collect())
    }

    /// Replaces the tunnel's FDB records.
    pub async fn replace_fdb_records(&self, tunnel: &str, records: &[(String, String)]) -> Result<(), BigIpError> {
        let path = format!("/mgmt/tm/net/fdb/tunnel/{}", common(tunnel));
        let records: Vec<Value> =
            records.iter().map(|(mac, endpoint)| json!({ "name": mac, "endpoint": endpoint })).collect();
        self.net_call(Method::PATCH, &path, Some(&json!({ "records": records }))).await?;
        Ok(())
    }

    /// Every static ARP entry in /Common.
    pub async fn arp_records(&self) -> Result<Vec<ArpRecord>, BigIpError> {
        let (_, value) = self.net_call(Method::GET, "/mgmt/tm/net/arp", None).await?;
        Ok(value
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some(ArpRecord {
                    name: item.get("name")?.as_str()?.to_string(),
                    ip_address: item.get("ipAddress")?.as_str()?.to_string(),
                    mac_address: item.get("macAddress")?.as_str()?.to_string(),
                })
            })
            .collect())
    }

    pub async fn create_arp(&self, name: &str, ip_address: &str, mac_address: &str) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "ipAddress": ip_address, "macAddress": mac_address });
        self.net_call(Method::POST, "/mgmt/tm/net/arp", Some(&body)).await?;
        Ok(())
    }

    /// Deletes an ARP entry; one already gone is fine.
    pub async fn delete_arp(&self, name: &str) -> Result<(), BigIpError> {
        self.net_call(Method::DELETE, &format!("/mgmt/tm/net/arp/{}", common(name)), None).await?;
        Ok(())
    }
}

/// The first string value of `key` anywhere in `value`, or of `key.description` (how
/// iControl REST statistics nest values).
fn find_key(value: &Value, key: &str) -> Option<String> {
    match value {
        Value::Object(map) => {
            if let Some(found) = map.get(key) {
                if let Some(text) = found.as_str() {
                    return Some(text.to_string());
                }
                if let Some(text) = found.get("description").and_then(Value::as_str) {
                    return Some(text.to_string());
                }
            }
            map.values().find_map(|v| find_key(v, key))
        }
        Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vtep_mac_is_found_in_nested_statistics() {
        let stats = json!({"entries": {"https://localhost/mgmt/tm/net/tunnels/tunnel/~Common~flannel_vxlan/stats": {
            "nestedStats": {"entries": {"macAddr": {"description": "02:11:22:33:44:55"}, "name": {"description": "/Common/flannel_vxlan"}}}
        }}});
        assert_eq!(find_key(&stats, "macAddr").as_deref(), Some("02:11:22:33:44:55"));
        assert_eq!(find_key(&json!({"macAddr": "aa:bb:cc:dd:ee:ff"}), "macAddr").as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(find_key(&json!({"entries": {}}), "macAddr"), None);
    }
}
