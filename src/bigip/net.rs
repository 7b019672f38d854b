//! iControl REST network objects (`/mgmt/tm/net/...`) for BigIpTunnel: the VXLAN profile,
//! the tunnel and its VTEP MAC, the self IP, the tunnel's FDB records, static ARP entries.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::client::{BigIpClient, Body};
use super::error::BigIpError;

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
    async fn net_call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(StatusCode, Value), BigIpError> {
        let method_name = match method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            _ => "REQUEST",
        };
        let (status, text) = self.send(method, path, body.map_or(Body::None, Body::Json)).await?;
        let value = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text.clone())) };
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok((status, value));
        }
        let message = value.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or(text);
        Err(BigIpError::Http { method: method_name, path: path.to_string(), status: status.as_u16(), body: message })
    }

    /// Creates the object `name` in `collection` with `body`, or PATCHes it to `body` when it
    /// exists and differs in one of `body`'s fields.
    async fn ensure_object(&self, collection: &str, name: &str, body: Value) -> Result<(), BigIpError> {
        let path = format!("{collection}/{}", common(name));
        let (status, current) = self.net_call(Method::GET, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            self.net_call(Method::POST, collection, Some(&body)).await?;
            return Ok(());
        }
        let differs = body
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| !matches!(key.as_str(), "name" | "partition"))
            .any(|(key, value)| current.get(key) != Some(value));
        if differs {
            self.net_call(Method::PATCH, &path, Some(&body)).await?;
        }
        Ok(())
    }

    /// A VXLAN profile in /Common on `port`, without flooding (the FDB says where each MAC is).
    pub async fn ensure_vxlan_profile(&self, name: &str, port: u16) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "port": port, "floodingType": "none" });
        self.ensure_object("/mgmt/tm/net/tunnels/vxlan", name, body).await
    }

    /// A tunnel in /Common with the VXLAN profile and the BIG-IP's VTEP address.
    pub async fn ensure_tunnel(&self, name: &str, profile: &str, local_address: &str) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "profile": format!("/Common/{profile}"), "localAddress": local_address });
        self.ensure_object("/mgmt/tm/net/tunnels/tunnel", name, body).await
    }

    /// A self IP (`address/mask`) on the tunnel.
    pub async fn ensure_self_ip(&self, name: &str, address: &str, tunnel: &str) -> Result<(), BigIpError> {
        let body = json!({ "name": name, "partition": "Common", "address": address, "vlan": format!("/Common/{tunnel}"), "allowService": "none" });
        self.ensure_object("/mgmt/tm/net/self", name, body).await
    }

    /// A BGP instance on route domain 0 with exactly these neighbors (address, remote AS).
    pub async fn ensure_bgp(&self, name: &str, local_as: u32, neighbors: &[(String, u32)]) -> Result<(), BigIpError> {
        let neighbor: Vec<Value> = neighbors.iter().map(|(address, remote_as)| json!({ "name": address, "remoteAs": remote_as })).collect();
        let body = json!({ "name": name, "partition": "Common", "localAs": local_as, "neighbor": neighbor });
        self.ensure_object("/mgmt/tm/net/routing/bgp", name, body).await
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
        let records: Vec<Value> = records.iter().map(|(mac, endpoint)| json!({ "name": mac, "endpoint": endpoint })).collect();
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
