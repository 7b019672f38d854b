//! The network configuration a BigIpTunnel needs — VXLAN profiles, tunnels and their FDB
//! records, self IPs, ARP entries and BGP — with the rules BIG-IP enforces on it: references
//! must resolve, objects in use cannot be deleted, key properties cannot be modified. Pure data;
//! `net` serves it over iControl REST.
//!
//! Every object lives in `/Common` (route domain 0), the only partition the simulator models
//! for network objects.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(super) const PARTITION: &str = "Common";

/// Properties BIG-IP shows on every object and accepts back unchanged in a request body.
const COMMON_PROPERTIES: &[&str] = &["name", "partition", "fullPath", "kind", "generation", "selfLink"];

/// `/Common/<name>`.
pub(super) fn full_path(name: &str) -> String {
    format!("/{PARTITION}/{name}")
}

/// `/Common/x` or `x` → `x`; a path in another partition or folder is kept whole, so it
/// matches nothing.
fn common_name(reference: &str) -> &str {
    reference.strip_prefix("/Common/").unwrap_or(reference)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum NetError {
    /// The object a request addresses does not exist (404).
    #[error("01020036:3: The requested {what} ({full_path}) was not found.")]
    NotFound { what: &'static str, full_path: String },
    /// An object the body refers to does not exist (400).
    #[error("01020036:3: The requested {what} ({full_path}) was not found.")]
    MissingReference { what: &'static str, full_path: String },
    #[error("01020066:3: The requested {what} ({full_path}) already exists in partition Common.")]
    AlreadyExists { what: &'static str, full_path: String },
    #[error("{0}")]
    Conflict(String),
    #[error("The {what} ({full_path}) cannot be deleted because it is in use by {user_what} ({user_path}).")]
    InUse { what: &'static str, full_path: String, user_what: &'static str, user_path: String },
    #[error("Found unexpected json pair at configuration item {item}. The json pair is \"{key}\":{value}.")]
    UnexpectedProperty { item: String, key: String, value: String },
    #[error("{0}")]
    Invalid(String),
}

/// An object of one of the `/mgmt/tm/net` collections.
pub(super) trait NetObject: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// How BIG-IP names the type in its messages.
    const WHAT: &'static str;
    /// The collection below `/mgmt/tm/net/`, e.g. `tunnels/vxlan`.
    const COLLECTION: &'static str;
    /// Properties a client may set, besides the common ones.
    const PROPERTIES: &'static [&'static str];
    /// Properties a PATCH must not change (the name never changes).
    const IMMUTABLE: &'static [&'static str] = &[];

    fn name(&self) -> &str;
    /// Values of properties a creating request leaves out.
    fn defaults() -> Map<String, Value> {
        Map::new()
    }
    /// Brings references into their full-path form.
    fn normalize(&mut self) {}
    /// Checks the object against the rest of the configuration, which does not hold it.
    fn check(&self, config: &NetConfig) -> Result<(), NetError>;
    /// Another object referring to `name`, which therefore cannot be deleted.
    fn used_by(_config: &NetConfig, _name: &str) -> Option<(&'static str, String)> {
        None
    }
    /// Removes what goes with object `name` once it is deleted.
    fn forget_dependents(_config: &mut NetConfig, _name: &str) {}
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self>;
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self>;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VxlanProfile {
    pub name: String,
    pub port: u16,
    /// `multipoint`, `none`, `replicator` or `multicast`.
    pub flooding_type: String,
    /// Free text; the operator marks what it created with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tunnel {
    pub name: String,
    /// `/Common/<VXLAN profile>`.
    pub profile: String,
    pub local_address: String,
    /// The VNI.
    pub key: u32,
    /// Free text; the operator marks what it created with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One FDB record of a tunnel: which VTEP (`endpoint`) a MAC address is behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FdbRecord {
    /// The MAC address, `xx:xx:xx:xx:xx:xx`.
    pub name: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfIp {
    pub name: String,
    /// `address/prefix`, e.g. `10.244.200.1/16`.
    pub address: String,
    /// `/Common/<tunnel>`: the simulator has no VLANs, only tunnels.
    pub vlan: String,
    /// `none`, `all`, `default`, or a list such as `["tcp:179"]`.
    pub allow_service: Value,
    /// Free text; the operator marks what it created with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArpEntry {
    pub name: String,
    pub ip_address: String,
    pub mac_address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpInstance {
    pub name: String,
    pub local_as: u32,
    /// BIG-IP leaves the property out when there are no neighbors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbor: Vec<BgpNeighbor>,
    /// Free text; the operator marks what it created with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpNeighbor {
    /// The neighbor's IP address.
    pub name: String,
    #[serde(deserialize_with = "number_or_text")]
    pub remote_as: u32,
    /// Per address family settings, e.g. `[{"name": "ipv4", "routeMap": {"in": "/Common/rm"}}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_family: Vec<NeighborAddressFamily>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NeighborAddressFamily {
    /// `ipv4` or `ipv6`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_map: Option<RouteMapReferences>,
}

/// The route maps a neighbor applies to what it learns (`in`) and advertises (`out`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMapReferences {
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub inbound: Option<String>,
    #[serde(default, rename = "out", skip_serializing_if = "Option::is_none")]
    pub outbound: Option<String>,
}

impl RouteMapReferences {
    /// The route maps referred to (`none` refers to nothing, as on BIG-IP).
    fn names(&self) -> impl Iterator<Item = &str> {
        [&self.inbound, &self.outbound].into_iter().flatten().map(String::as_str).filter(|name| *name != "none")
    }
}

/// A prefix list (`net routing prefix-list`): entries keyed by sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixList {
    pub name: String,
    #[serde(default)]
    pub entries: BTreeMap<u32, PrefixListEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrefixListEntry {
    /// `permit` or `deny`.
    pub action: String,
    /// `address/length`.
    pub prefix: String,
    /// `min:max` (or one length) of the prefixes matched inside `prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_text")]
    pub prefix_len_range: Option<String>,
}

/// A route map (`net routing route-map`): entries keyed by sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteMap {
    pub name: String,
    #[serde(default)]
    pub entries: BTreeMap<u32, RouteMapEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMapEntry {
    /// `permit` or `deny`.
    pub action: String,
    /// What routes the entry applies to, e.g. `{"ipv4": {"address": {"prefixList": "/Common/pl"}}}`.
    #[serde(default, rename = "match", skip_serializing_if = "Value::is_null")]
    pub matches: Value,
}

impl RouteMapEntry {
    /// The prefix lists the entry matches on.
    fn prefix_lists(&self) -> impl Iterator<Item = &str> {
        ["ipv4", "ipv6"]
            .into_iter()
            .filter_map(|family| self.matches.get(family)?.get("address")?.get("prefixList")?.as_str())
    }
}

/// A number shown as text (BIG-IP accepts `prefixLenRange` either way).
fn optional_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(other) => return Err(serde::de::Error::custom(format!("expected text, got {other}"))),
    })
}

/// BIG-IP shows AS numbers as numbers but accepts them as text too.
fn number_or_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u32),
        Text(String),
    }
    match Either::deserialize(deserializer)? {
        Either::Number(number) => Ok(number),
        Either::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct NetConfig {
    vxlan_profiles: BTreeMap<String, VxlanProfile>,
    tunnels: BTreeMap<String, Tunnel>,
    /// Tunnel name → its FDB records, in the order last written.
    fdb: BTreeMap<String, Vec<FdbRecord>>,
    self_ips: BTreeMap<String, SelfIp>,
    arp: BTreeMap<String, ArpEntry>,
    bgp: BTreeMap<String, BgpInstance>,
    prefix_lists: BTreeMap<String, PrefixList>,
    route_maps: BTreeMap<String, RouteMap>,
}

pub(super) fn is_mac_address(text: &str) -> bool {
    let octets: Vec<&str> = text.split(':').collect();
    octets.len() == 6 && octets.iter().all(|octet| octet.len() == 2 && octet.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(super) fn is_ip_address(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// `10.244.200.1/16` → the address, when the prefix fits the address family.
pub(super) fn parse_address_with_prefix(text: &str) -> Option<IpAddr> {
    let (address, prefix) = text.split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let longest = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= longest).then_some(address)
}

/// Object names BIG-IP accepts: letters, digits and `._-:`, not starting with a digit-free dot.
pub(super) fn is_object_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn invalid_value(what: &str, value: &str, object: &str) -> NetError {
    NetError::Invalid(format!("Invalid {what} \"{value}\" for {object}."))
}

impl NetObject for VxlanProfile {
    const WHAT: &'static str = "VXLAN profile";
    const COLLECTION: &'static str = "tunnels/vxlan";
    const PROPERTIES: &'static [&'static str] = &["port", "floodingType", "description"];

    fn name(&self) -> &str {
        &self.name
    }
    fn defaults() -> Map<String, Value> {
        Map::from_iter([("port".to_owned(), Value::from(4789)), ("floodingType".to_owned(), Value::from("multipoint"))])
    }
    fn check(&self, _config: &NetConfig) -> Result<(), NetError> {
        const FLOODING_TYPES: [&str; 4] = ["multipoint", "none", "replicator", "multicast"];
        if !FLOODING_TYPES.contains(&self.flooding_type.as_str()) {
            return Err(invalid_value("floodingType", &self.flooding_type, &full_path(&self.name)));
        }
        Ok(())
    }
    fn used_by(config: &NetConfig, name: &str) -> Option<(&'static str, String)> {
        let path = full_path(name);
        config.tunnels.values().find(|tunnel| tunnel.profile == path).map(|tunnel| ("tunnel", full_path(&tunnel.name)))
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.vxlan_profiles
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.vxlan_profiles
    }
}

impl NetObject for Tunnel {
    const WHAT: &'static str = "tunnel";
    const COLLECTION: &'static str = "tunnels/tunnel";
    const PROPERTIES: &'static [&'static str] = &["profile", "localAddress", "key", "description"];
    const IMMUTABLE: &'static [&'static str] = &["profile"];

    fn name(&self) -> &str {
        &self.name
    }
    fn defaults() -> Map<String, Value> {
        Map::from_iter([("localAddress".to_owned(), Value::from("any6")), ("key".to_owned(), Value::from(0))])
    }
    fn normalize(&mut self) {
        self.profile = full_path(common_name(&self.profile));
    }
    fn check(&self, config: &NetConfig) -> Result<(), NetError> {
        if !config.vxlan_profiles.contains_key(common_name(&self.profile)) {
            return Err(NetError::MissingReference { what: "profile", full_path: self.profile.clone() });
        }
        if !matches!(self.local_address.as_str(), "any" | "any6") && !is_ip_address(&self.local_address) {
            return Err(invalid_value("localAddress", &self.local_address, &full_path(&self.name)));
        }
        Ok(())
    }
    fn used_by(config: &NetConfig, name: &str) -> Option<(&'static str, String)> {
        let path = full_path(name);
        config
            .self_ips
            .values()
            .find(|self_ip| self_ip.vlan == path)
            .map(|self_ip| ("self IP", full_path(&self_ip.name)))
    }
    /// The FDB records of a tunnel go with it.
    fn forget_dependents(config: &mut NetConfig, name: &str) {
        config.fdb.remove(name);
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.tunnels
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.tunnels
    }
}

impl NetObject for SelfIp {
    const WHAT: &'static str = "self IP";
    const COLLECTION: &'static str = "self";
    const PROPERTIES: &'static [&'static str] = &["address", "vlan", "allowService", "description"];
    const IMMUTABLE: &'static [&'static str] = &["address"];

    fn name(&self) -> &str {
        &self.name
    }
    fn defaults() -> Map<String, Value> {
        Map::from_iter([("allowService".to_owned(), Value::from("none"))])
    }
    fn normalize(&mut self) {
        self.vlan = full_path(common_name(&self.vlan));
    }
    fn check(&self, config: &NetConfig) -> Result<(), NetError> {
        let Some(address) = parse_address_with_prefix(&self.address) else {
            return Err(invalid_value("address", &self.address, &full_path(&self.name)));
        };
        if !config.tunnels.contains_key(common_name(&self.vlan)) {
            return Err(NetError::MissingReference { what: "VLAN/Tunnel", full_path: self.vlan.clone() });
        }
        let valid_service = match &self.allow_service {
            Value::String(text) => matches!(text.as_str(), "none" | "all" | "default"),
            Value::Array(items) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !valid_service {
            return Err(invalid_value("allowService", &self.allow_service.to_string(), &full_path(&self.name)));
        }
        let clash = config.self_ips.values().find(|other| parse_address_with_prefix(&other.address) == Some(address));
        if let Some(other) = clash {
            return Err(NetError::Conflict(format!(
                "The requested self IP address ({address}) is already in use by self IP ({}).",
                full_path(&other.name)
            )));
        }
        Ok(())
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.self_ips
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.self_ips
    }
}

impl NetObject for ArpEntry {
    const WHAT: &'static str = "ARP entry";
    const COLLECTION: &'static str = "arp";
    const PROPERTIES: &'static [&'static str] = &["ipAddress", "macAddress"];
    const IMMUTABLE: &'static [&'static str] = &["ipAddress"];

    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self, config: &NetConfig) -> Result<(), NetError> {
        if !is_ip_address(&self.ip_address) {
            return Err(invalid_value("ipAddress", &self.ip_address, &full_path(&self.name)));
        }
        if !is_mac_address(&self.mac_address) {
            return Err(invalid_value("macAddress", &self.mac_address, &full_path(&self.name)));
        }
        if let Some(other) = config.arp.values().find(|other| other.ip_address == self.ip_address) {
            return Err(NetError::Conflict(format!(
                "The requested ARP entry IP address ({}) already exists in ARP entry ({}).",
                self.ip_address,
                full_path(&other.name)
            )));
        }
        Ok(())
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.arp
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.arp
    }
}

impl NetObject for BgpInstance {
    const WHAT: &'static str = "BGP instance";
    const COLLECTION: &'static str = "routing/bgp";
    const PROPERTIES: &'static [&'static str] = &["localAs", "neighbor", "description"];

    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self, config: &NetConfig) -> Result<(), NetError> {
        if self.local_as == 0 {
            return Err(invalid_value("localAs", "0", &full_path(&self.name)));
        }
        let mut seen = Vec::new();
        for neighbor in &self.neighbor {
            if !is_ip_address(&neighbor.name) {
                return Err(invalid_value("neighbor", &neighbor.name, &full_path(&self.name)));
            }
            if neighbor.remote_as == 0 {
                return Err(invalid_value("remoteAs", "0", &format!("neighbor {}", neighbor.name)));
            }
            for family in &neighbor.address_family {
                if !matches!(family.name.as_str(), "ipv4" | "ipv6") {
                    return Err(invalid_value("address family", &family.name, &format!("neighbor {}", neighbor.name)));
                }
                for route_map in family.route_map.iter().flat_map(RouteMapReferences::names) {
                    if !config.route_maps.contains_key(common_name(route_map)) {
                        return Err(NetError::MissingReference {
                            what: "route map",
                            full_path: full_path(common_name(route_map)),
                        });
                    }
                }
            }
            if seen.contains(&neighbor.name.as_str()) {
                return Err(NetError::Invalid(format!(
                    "The neighbor {} appears twice in {}.",
                    neighbor.name,
                    full_path(&self.name)
                )));
            }
            seen.push(neighbor.name.as_str());
        }
        Ok(())
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.bgp
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.bgp
    }
}

fn check_action(action: &str, object: &str) -> Result<(), NetError> {
    if matches!(action, "permit" | "deny") {
        Ok(())
    } else {
        Err(invalid_value("action", action, object))
    }
}

/// `16:26` or `24` within the prefix's length and the family's bits.
fn valid_length_range(range: &str, prefix_length: u8, bits: u8) -> bool {
    let parse = |text: &str| text.parse::<u8>().ok();
    let (min, max) = match range.split_once(':') {
        Some((min, max)) => (parse(min), parse(max)),
        None => (parse(range), parse(range)),
    };
    matches!((min, max), (Some(min), Some(max)) if prefix_length <= min && min <= max && max <= bits)
}

impl NetObject for PrefixList {
    const WHAT: &'static str = "prefix list";
    const COLLECTION: &'static str = "routing/prefix-list";
    const PROPERTIES: &'static [&'static str] = &["entries", "description"];

    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self, _config: &NetConfig) -> Result<(), NetError> {
        for (sequence, entry) in &self.entries {
            let object = format!("{} entry {sequence}", full_path(&self.name));
            check_action(&entry.action, &object)?;
            let Some((network, bits)) = entry.prefix.parse::<ipnet::IpNet>().ok().map(|n| (n, n.max_prefix_len()))
            else {
                return Err(invalid_value("prefix", &entry.prefix, &object));
            };
            if let Some(range) =
                entry.prefix_len_range.as_deref().filter(|r| !valid_length_range(r, network.prefix_len(), bits))
            {
                return Err(invalid_value("prefixLenRange", range, &object));
            }
        }
        Ok(())
    }
    fn used_by(config: &NetConfig, name: &str) -> Option<(&'static str, String)> {
        let path = full_path(name);
        config
            .route_maps
            .values()
            .find(|map| {
                map.entries.values().any(|entry| entry.prefix_lists().any(|list| full_path(common_name(list)) == path))
            })
            .map(|map| ("route map", full_path(&map.name)))
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.prefix_lists
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.prefix_lists
    }
}

impl NetObject for RouteMap {
    const WHAT: &'static str = "route map";
    const COLLECTION: &'static str = "routing/route-map";
    const PROPERTIES: &'static [&'static str] = &["entries", "description"];

    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self, config: &NetConfig) -> Result<(), NetError> {
        for (sequence, entry) in &self.entries {
            check_action(&entry.action, &format!("{} entry {sequence}", full_path(&self.name)))?;
            if let Some(missing) =
                entry.prefix_lists().find(|list| !config.prefix_lists.contains_key(common_name(list)))
            {
                return Err(NetError::MissingReference {
                    what: "prefix list",
                    full_path: full_path(common_name(missing)),
                });
            }
        }
        Ok(())
    }
    fn used_by(config: &NetConfig, name: &str) -> Option<(&'static str, String)> {
        let path = full_path(name);
        config
            .bgp
            .values()
            .find(|bgp| {
                bgp.neighbor
                    .iter()
                    .flat_map(|n| &n.address_family)
                    .flat_map(|f| f.route_map.iter().flat_map(RouteMapReferences::names))
                    .any(|map| full_path(common_name(map)) == path)
            })
            .map(|bgp| ("BGP instance", full_path(&bgp.name)))
    }
    fn objects(config: &NetConfig) -> &BTreeMap<String, Self> {
        &config.route_maps
    }
    fn objects_mut(config: &mut NetConfig) -> &mut BTreeMap<String, Self> {
        &mut config.route_maps
    }
}

/// The properties of a request body, after checking it addresses `/Common` and sets nothing
/// the type does not have.
fn body_properties<T: NetObject>(body: &Value) -> Result<Map<String, Value>, NetError> {
    let Some(fields) = body.as_object() else {
        return Err(NetError::Invalid("The request body must be a JSON object.".to_owned()));
    };
    let item = format!("/net/{}", T::COLLECTION);
    if let Some(unexpected) =
        fields.keys().find(|key| !COMMON_PROPERTIES.contains(&key.as_str()) && !T::PROPERTIES.contains(&key.as_str()))
    {
        let value = fields.get(unexpected).map(Value::to_string).unwrap_or_default();
        return Err(NetError::UnexpectedProperty { item, key: unexpected.clone(), value });
    }
    if let Some(partition) = fields.get("partition") {
        if partition.as_str() != Some(PARTITION) {
            let folder = partition.as_str().map_or_else(|| partition.to_string(), str::to_owned);
            return Err(NetError::MissingReference { what: "folder", full_path: format!("/{folder}") });
        }
    }
    let mut settable = fields.clone();
    settable.retain(|key, _| key == "name" || T::PROPERTIES.contains(&key.as_str()));
    Ok(settable)
}

fn from_properties<T: NetObject>(properties: Map<String, Value>) -> Result<T, NetError> {
    let mut object: T = serde_json::from_value(Value::Object(properties))
        .map_err(|error| NetError::Invalid(format!("Invalid {} properties: {error}", T::WHAT)))?;
    object.normalize();
    Ok(object)
}

impl NetConfig {
    pub(super) fn list<T: NetObject>(&self) -> Vec<T> {
        T::objects(self).values().cloned().collect()
    }

    pub(super) fn get<T: NetObject>(&self, name: &str) -> Result<T, NetError> {
        T::objects(self).get(name).cloned().ok_or_else(|| not_found::<T>(name))
    }

    pub(super) fn create<T: NetObject>(&mut self, body: &Value) -> Result<T, NetError> {
        let properties = body_properties::<T>(body)?;
        let name = match properties.get("name") {
            Some(Value::String(name)) if is_object_name(name) => name.clone(),
            Some(name) => return Err(NetError::Invalid(format!("Invalid {} name {name}.", T::WHAT))),
            None => return Err(NetError::Invalid(format!("The {} name is required.", T::WHAT))),
        };
        if T::objects(self).contains_key(&name) {
            return Err(NetError::AlreadyExists { what: T::WHAT, full_path: full_path(&name) });
        }
        let mut complete = T::defaults();
        complete.extend(properties);
        let object: T = from_properties(complete)?;
        object.check(self)?;
        T::objects_mut(self).insert(name, object.clone());
        Ok(object)
    }

    pub(super) fn patch<T: NetObject>(&mut self, name: &str, body: &Value) -> Result<T, NetError> {
        let current = self.get::<T>(name)?;
        let properties = body_properties::<T>(body)?;
        let Value::Object(mut merged) = serde_json::to_value(&current)
            .map_err(|error| NetError::Invalid(format!("cannot show {}: {error}", T::WHAT)))?
        else {
            return Err(NetError::Invalid(format!("cannot show {} as an object", T::WHAT)));
        };
        if properties.get("name").is_some_and(|new_name| new_name.as_str() != Some(name)) {
            return Err(NetError::Invalid(format!(
                "The name of {} ({}) cannot be modified.",
                T::WHAT,
                full_path(name)
            )));
        }
        let before = merged.clone();
        merged.extend(properties);
        let updated: T = from_properties(merged)?;
        // Compared after normalizing, so `fl-vxlan` and `/Common/fl-vxlan` are the same profile.
        let after = serde_json::to_value(&updated).unwrap_or(Value::Null);
        if let Some(key) = T::IMMUTABLE.iter().find(|key| before.get(**key) != after.get(**key)) {
            return Err(NetError::Invalid(format!(
                "The {key} of {} ({}) cannot be modified; delete the {} and create it again.",
                T::WHAT,
                full_path(name),
                T::WHAT
            )));
        }
        let Some(previous) = T::objects_mut(self).remove(name) else {
            return Err(not_found::<T>(name));
        };
        if let Err(error) = updated.check(self) {
            T::objects_mut(self).insert(name.to_owned(), previous);
            return Err(error);
        }
        T::objects_mut(self).insert(name.to_owned(), updated.clone());
        Ok(updated)
    }

    pub(super) fn delete<T: NetObject>(&mut self, name: &str) -> Result<(), NetError> {
        if !T::objects(self).contains_key(name) {
            return Err(not_found::<T>(name));
        }
        if let Some((user_what, user_path)) = T::used_by(self, name) {
            return Err(NetError::InUse { what: T::WHAT, full_path: full_path(name), user_what, user_path });
        }
        T::objects_mut(self).remove(name);
        T::forget_dependents(self, name);
        Ok(())
    }

    /// The FDB records of tunnel `name`.
    pub(super) fn fdb_records(&self, tunnel: &str) -> Result<Vec<FdbRecord>, NetError> {
        if !self.tunnels.contains_key(tunnel) {
            return Err(not_found::<Tunnel>(tunnel));
        }
        Ok(self.fdb.get(tunnel).cloned().unwrap_or_default())
    }

    /// Tunnel name → its FDB records, for every tunnel.
    pub(super) fn all_fdb_records(&self) -> Vec<(String, Vec<FdbRecord>)> {
        self.tunnels.keys().map(|name| (name.clone(), self.fdb.get(name).cloned().unwrap_or_default())).collect()
    }

    /// Replaces the FDB records of tunnel `name` with those of `body` (`{"records": [...]}`),
    /// the way k8s-bigip-ctlr writes them; a body without `records` empties the FDB.
    pub(super) fn replace_fdb_records(&mut self, tunnel: &str, body: &Value) -> Result<Vec<FdbRecord>, NetError> {
        if !self.tunnels.contains_key(tunnel) {
            return Err(not_found::<Tunnel>(tunnel));
        }
        let records = parse_fdb_records(tunnel, body)?;
        self.fdb.insert(tunnel.to_owned(), records.clone());
        Ok(records)
    }
}

fn not_found<T: NetObject>(name: &str) -> NetError {
    NetError::NotFound { what: T::WHAT, full_path: full_path(name) }
}

fn parse_fdb_records(tunnel: &str, body: &Value) -> Result<Vec<FdbRecord>, NetError> {
    let Some(fields) = body.as_object() else {
        return Err(NetError::Invalid("The request body must be a JSON object.".to_owned()));
    };
    let item = format!("/net/fdb/tunnel/{}", full_path(tunnel));
    if let Some(unexpected) = fields.keys().find(|key| !COMMON_PROPERTIES.contains(&key.as_str()) && *key != "records")
    {
        let value = fields.get(unexpected).map(Value::to_string).unwrap_or_default();
        return Err(NetError::UnexpectedProperty { item, key: unexpected.clone(), value });
    }
    let records: Vec<FdbRecord> = match fields.get("records") {
        None | Some(Value::Null) => Vec::new(),
        Some(records) => serde_json::from_value(records.clone()).map_err(|error| {
            NetError::Invalid(format!("Invalid FDB records for tunnel {}: {error}", full_path(tunnel)))
        })?,
    };
    let mut seen: Vec<String> = Vec::new();
    for record in &records {
        if !is_mac_address(&record.name) {
            return Err(NetError::Invalid(format!(
                "Invalid FDB record \"{}\" for tunnel {}: the name must be a MAC address (xx:xx:xx:xx:xx:xx).",
                record.name,
                full_path(tunnel)
            )));
        }
        if !is_ip_address(&record.endpoint) {
            return Err(NetError::Invalid(format!(
                "Invalid endpoint \"{}\" of FDB record {} for tunnel {}: it must be an IP address.",
                record.endpoint,
                record.name,
                full_path(tunnel)
            )));
        }
        let mac = record.name.to_ascii_lowercase();
        if seen.contains(&mac) {
            return Err(NetError::Invalid(format!(
                "The FDB record {} appears twice for tunnel {}.",
                record.name,
                full_path(tunnel)
            )));
        }
        seen.push(mac);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with_tunnel() -> NetConfig {
        let mut config = NetConfig::default();
        config.create::<VxlanProfile>(&json!({"name": "fl-vxlan", "floodingType": "none"})).expect("profile");
        config
            .create::<Tunnel>(
                &json!({"name": "fl", "profile": "/Common/fl-vxlan", "key": 1, "localAddress": "10.0.0.1"}),
            )
            .expect("tunnel");
        config
    }

    #[test]
    fn mac_addresses_are_six_hex_octets() {
        assert!(is_mac_address("0a:58:0a:f4:01:02"));
        assert!(is_mac_address("0A:58:0A:F4:01:02"));
        assert!(!is_mac_address("0a:58:0a:f4:01"));
        assert!(!is_mac_address("0a:58:0a:f4:01:2"));
        assert!(!is_mac_address("0a-58-0a-f4-01-02"));
        assert!(!is_mac_address("zz:58:0a:f4:01:02"));
    }

    #[test]
    fn self_ip_addresses_carry_a_prefix_that_fits() {
        assert!(parse_address_with_prefix("10.244.200.1/16").is_some());
        assert!(parse_address_with_prefix("fd00::1/64").is_some());
        assert!(parse_address_with_prefix("10.244.200.1").is_none());
        assert!(parse_address_with_prefix("10.244.200.1/33").is_none());
        assert!(parse_address_with_prefix("x/16").is_none());
    }

    #[test]
    fn profile_defaults_to_the_vxlan_port_and_multipoint_flooding() {
        let mut config = NetConfig::default();
        let profile = config.create::<VxlanProfile>(&json!({"name": "p", "partition": "Common"})).expect("created");
        assert_eq!(profile.port, 4789);
        assert_eq!(profile.flooding_type, "multipoint");
    }

    #[test]
    fn tunnel_references_are_normalized_and_must_resolve() {
        let mut config = with_tunnel();
        assert_eq!(config.get::<Tunnel>("fl").expect("tunnel").profile, "/Common/fl-vxlan");
        let missing = config.create::<Tunnel>(&json!({"name": "t2", "profile": "nope"}));
        assert_eq!(missing, Err(NetError::MissingReference { what: "profile", full_path: "/Common/nope".to_owned() }));
        let bare = config.create::<Tunnel>(&json!({"name": "t3", "profile": "fl-vxlan"})).expect("bare reference");
        assert_eq!(bare.profile, "/Common/fl-vxlan");
    }

    #[test]
    fn objects_in_use_cannot_be_deleted() {
        let mut config = with_tunnel();
        assert!(matches!(config.delete::<VxlanProfile>("fl-vxlan"), Err(NetError::InUse { .. })));
        config.patch::<Tunnel>("fl", &json!({"profile": "fl-vxlan", "key": 2})).expect("same profile, bare");
        config.create::<VxlanProfile>(&json!({"name": "other"})).expect("profile");
        assert!(config.patch::<Tunnel>("fl", &json!({"profile": "other"})).is_err(), "the profile is immutable");
        config.delete::<Tunnel>("fl").expect("tunnel deleted");
        config.delete::<VxlanProfile>("fl-vxlan").expect("profile deleted");
    }

    #[test]
    fn unexpected_properties_are_named() {
        let mut config = NetConfig::default();
        let error = config.create::<ArpEntry>(&json!({"name": "a", "ipaddress": "10.0.0.1"})).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "Found unexpected json pair at configuration item /net/arp. The json pair is \"ipaddress\":\"10.0.0.1\"."
        );
    }

    #[test]
    fn failed_patch_keeps_the_object() {
        let mut config = NetConfig::default();
        config
            .create::<ArpEntry>(&json!({"name": "a", "ipAddress": "10.0.0.1", "macAddress": "0a:00:00:00:00:01"}))
            .expect("created");
        assert!(config.patch::<ArpEntry>("a", &json!({"macAddress": "bad"})).is_err());
        assert!(config.patch::<ArpEntry>("a", &json!({"ipAddress": "10.0.0.2"})).is_err());
        let kept = config.get::<ArpEntry>("a").expect("kept");
        assert_eq!(kept.mac_address, "0a:00:00:00:00:01");
        let same_ip =
            config.patch::<ArpEntry>("a", &json!({"ipAddress": "10.0.0.1", "macAddress": "0a:00:00:00:00:02"}));
        assert_eq!(same_ip.expect("unchanged ipAddress is fine").mac_address, "0a:00:00:00:00:02");
    }

    #[test]
    fn fdb_records_are_validated_and_replaced_whole() {
        let mut config = with_tunnel();
        let two = json!({"records": [
            {"name": "0a:00:00:00:00:01", "endpoint": "192.168.1.1"},
            {"name": "0a:00:00:00:00:02", "endpoint": "192.168.1.2"}]});
        assert_eq!(config.replace_fdb_records("fl", &two).expect("two").len(), 2);
        let one = json!({"records": [{"name": "0a:00:00:00:00:03", "endpoint": "192.168.1.3"}]});
        config.replace_fdb_records("fl", &one).expect("one");
        assert_eq!(config.fdb_records("fl").expect("records").len(), 1);
        let duplicate = json!({"records": [
            {"name": "0a:00:00:00:00:01", "endpoint": "192.168.1.1"},
            {"name": "0A:00:00:00:00:01", "endpoint": "192.168.1.2"}]});
        assert!(config.replace_fdb_records("fl", &duplicate).is_err());
        let bad_endpoint = json!({"records": [{"name": "0a:00:00:00:00:01", "endpoint": "node-1"}]});
        assert!(config.replace_fdb_records("fl", &bad_endpoint).is_err());
        assert!(matches!(config.fdb_records("nope"), Err(NetError::NotFound { .. })));
        config.replace_fdb_records("fl", &json!({})).expect("emptied");
        assert!(config.fdb_records("fl").expect("records").is_empty());
    }

    #[test]
    fn bgp_accepts_as_numbers_as_text() {
        let mut config = NetConfig::default();
        let body = json!({"name": "bgp", "localAs": 64512, "neighbor": [{"name": "10.0.0.2", "remoteAs": "64513"}]});
        let bgp = config.create::<BgpInstance>(&body).expect("created");
        assert_eq!(bgp.neighbor[0].remote_as, 64513);
        let twice = json!({"neighbor": [{"name": "10.0.0.2", "remoteAs": 1}, {"name": "10.0.0.2", "remoteAs": 2}]});
        assert!(config.patch::<BgpInstance>("bgp", &twice).is_err());
    }

    #[test]
    fn prefix_lists_check_prefixes_and_length_ranges() {
        let mut config = NetConfig::default();
        let list = |entries: Value| json!({"name": "pl", "entries": entries});
        let created = config
            .create::<PrefixList>(&list(json!({"10": {"action": "deny", "prefix": "10.244.7.0/24"},
                "20": {"action": "permit", "prefix": "10.244.0.0/16", "prefixLenRange": "16:26"},
                "30": {"action": "permit", "prefix": "192.168.0.0/16", "prefixLenRange": 24}})))
            .expect("valid");
        assert_eq!(created.entries.keys().copied().collect::<Vec<_>>(), [10, 20, 30], "by number");
        assert_eq!(created.entries[&30].prefix_len_range.as_deref(), Some("24"), "a number is shown as text");
        for (entries, bad) in [
            (json!({"10": {"action": "allow", "prefix": "10.0.0.0/8"}}), "action"),
            (json!({"10": {"action": "permit", "prefix": "10.0.0.0"}}), "prefix"),
            (
                json!({"10": {"action": "permit", "prefix": "10.244.0.0/16", "prefixLenRange": "8:24"}}),
                "prefixLenRange",
            ),
            (
                json!({"10": {"action": "permit", "prefix": "10.244.0.0/16", "prefixLenRange": "16:33"}}),
                "prefixLenRange",
            ),
        ] {
            let error = config.patch::<PrefixList>("pl", &json!({"entries": entries})).expect_err(bad);
            assert!(error.to_string().contains(bad), "{error}");
        }
        assert_eq!(config.get::<PrefixList>("pl").expect("kept"), created, "a refused change keeps the list");
    }

    #[test]
    fn route_maps_and_neighbors_need_what_they_refer_to_and_keep_it_in_use() {
        let mut config = NetConfig::default();
        let route_map = json!({"name": "rm", "entries": {"10": {"action": "permit",
            "match": {"ipv4": {"address": {"prefixList": "/Common/pl"}}}}}});
        let missing = config.create::<RouteMap>(&route_map).expect_err("no prefix list yet");
        assert_eq!(missing, NetError::MissingReference { what: "prefix list", full_path: "/Common/pl".into() });
        config
            .create::<PrefixList>(
                &json!({"name": "pl", "entries": {"10": {"action": "permit", "prefix": "10.0.0.0/8"}}}),
            )
            .expect("pl");
        config.create::<RouteMap>(&route_map).expect("rm");
        let bgp = |route_map: &str| {
            json!({"name": "bgp", "localAs": 64512, "neighbor": [{"name": "10.0.0.2", "remoteAs": 64513,
            "addressFamily": [{"name": "ipv4", "routeMap": {"in": route_map}}]}]})
        };
        let error = config.create::<BgpInstance>(&bgp("/Common/other")).expect_err("unknown route map");
        assert!(error.to_string().contains("/Common/other"), "{error}");
        config.create::<BgpInstance>(&bgp("/Common/rm")).expect("bgp");

        assert!(matches!(config.delete::<RouteMap>("rm"), Err(NetError::InUse { .. })), "used by the neighbor");
        assert!(matches!(config.delete::<PrefixList>("pl"), Err(NetError::InUse { .. })), "used by the route map");
        config.delete::<BgpInstance>("bgp").expect("bgp");
        config.delete::<RouteMap>("rm").expect("rm, now unused");
        config.delete::<PrefixList>("pl").expect("pl, now unused");
    }
}
