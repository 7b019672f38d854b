//! flannel's etcd mode, pure: the subnet leases flannel keeps in etcd
//! (`<prefix>/subnets/10.244.1.0-24` → `{"PublicIP": …, "BackendType": "vxlan",
//! "BackendData": {"VtepMAC": …}}`), the BIG-IP's own lease, and the FDB records and ARP
//! entries they give. In this mode the nodes carry no flannel annotations: a lease is what
//! says where a pod subnet's VTEP is.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::flannel::{ArpEntry, FdbRecord, Mac};

/// One node's subnet lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub subnet: IpNet,
    pub public_ip: IpAddr,
    pub vtep_mac: Mac,
}

/// Why a lease was left out (reported; the other leases are still used).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseProblem {
    #[error("etcd key {key}: not a flannel subnet lease key (<prefix>/subnets/<address>-<length>)")]
    Key { key: String },
    #[error("etcd lease {key}: {detail}")]
    Value { key: String, detail: String },
}

/// The directory of the leases: `<prefix>/subnets/`.
pub fn subnets_directory(prefix: &str) -> String {
    format!("{}/subnets/", prefix.trim_end_matches('/'))
}

/// The key of the lease of `subnet`: `10.244.200.0/24` → `<prefix>/subnets/10.244.200.0-24`.
pub fn lease_key(prefix: &str, subnet: &IpNet) -> String {
    format!("{}{}-{}", subnets_directory(prefix), subnet.network(), subnet.prefix_len())
}

/// The value flannel reads for a vxlan lease.
pub fn lease_value(public_ip: IpAddr, vtep_mac: &Mac) -> String {
    let public = match public_ip {
        IpAddr::V4(_) => json!({ "PublicIP": public_ip.to_string() }),
        IpAddr::V6(_) => json!({ "PublicIPv6": public_ip.to_string() }),
    };
    let mut value = public;
    if let Some(fields) = value.as_object_mut() {
        fields.insert("BackendType".into(), json!("vxlan"));
        fields.insert("BackendData".into(), json!({ "VtepMAC": vtep_mac.as_str() }));
    }
    value.to_string()
}

/// Parses the lease under `key` (below `directory`) with JSON `value`.
pub fn parse_lease(directory: &str, key: &str, value: &str) -> Result<Lease, LeaseProblem> {
    let subnet = key
        .strip_prefix(directory)
        .and_then(|name| name.rsplit_once('-'))
        .and_then(|(address, length)| format!("{address}/{length}").parse::<IpNet>().ok())
        .ok_or_else(|| LeaseProblem::Key { key: key.to_string() })?;
    let invalid = |detail: &str| LeaseProblem::Value { key: key.to_string(), detail: detail.to_string() };
    let lease: Value = serde_json::from_str(value).map_err(|_| invalid("the value is not JSON"))?;
    if lease.get("BackendType").and_then(Value::as_str).is_some_and(|t| t != "vxlan") {
        return Err(invalid("BackendType is not vxlan"));
    }
    let public_ip = ["PublicIP", "PublicIPv6"]
        .iter()
        .find_map(|field| lease.get(*field).and_then(Value::as_str).and_then(|ip| ip.parse::<IpAddr>().ok()))
        .ok_or_else(|| invalid("no valid PublicIP"))?;
    let vtep_mac = ["VtepMAC", "v6VtepMAC"]
        .iter()
        .find_map(|field| lease.get("BackendData")?.get(*field)?.as_str().and_then(Mac::parse))
        .ok_or_else(|| invalid("no valid BackendData.VtepMAC"))?;
    Ok(Lease { subnet, public_ip, vtep_mac })
}

/// FDB records from the leases, except the BIG-IP's own (`own_subnet`), sorted.
pub fn fdb_records_from_leases(leases: &[Lease], own_subnet: &IpNet) -> Vec<FdbRecord> {
    let mut records: Vec<FdbRecord> = leases
        .iter()
        .filter(|lease| lease.subnet != *own_subnet)
        .map(|lease| FdbRecord { mac: lease.vtep_mac.clone(), endpoint: lease.public_ip })
        .collect();
    records.sort();
    records.dedup();
    records
}

/// ARP entries for the pool members inside some other node's lease, at that lease's VTEP MAC
/// (the most specific lease when leases overlap). Members in no lease get no entry.
pub fn arp_entries_from_leases(members: &BTreeSet<IpAddr>, leases: &[Lease], own_subnet: &IpNet) -> Vec<ArpEntry> {
    let mut entries: BTreeMap<IpAddr, Mac> = BTreeMap::new();
    for member in members {
        let lease = leases
            .iter()
            .filter(|lease| lease.subnet != *own_subnet && lease.subnet.contains(member))
            .max_by_key(|lease| lease.subnet.prefix_len());
        if let Some(lease) = lease {
            entries.insert(*member, lease.vtep_mac.clone());
        }
    }
    entries.into_iter().map(|(address, mac)| ArpEntry { address, mac }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "/coreos.com/network/subnets/";

    fn lease(subnet: &str, ip: &str, mac: &str) -> Lease {
        Lease {
            subnet: subnet.parse().expect("subnet"),
            public_ip: ip.parse().expect("ip"),
            vtep_mac: Mac::parse(mac).expect("mac"),
        }
    }

    #[test]
    fn keys_and_values_are_flannels() {
        let subnet: IpNet = "10.244.200.0/24".parse().expect("subnet");
        assert_eq!(lease_key("/coreos.com/network", &subnet), "/coreos.com/network/subnets/10.244.200.0-24");
        assert_eq!(lease_key("/coreos.com/network/", &subnet), "/coreos.com/network/subnets/10.244.200.0-24");
        let mac = Mac::parse("02:AA:bb:cc:dd:ee").expect("mac");
        let value = lease_value("192.168.1.254".parse().expect("ip"), &mac);
        let parsed: Value = serde_json::from_str(&value).expect("json");
        assert_eq!(
            parsed,
            json!({"PublicIP": "192.168.1.254", "BackendType": "vxlan", "BackendData": {"VtepMAC": "02:aa:bb:cc:dd:ee"}})
        );
        let back = parse_lease(DIR, &lease_key("/coreos.com/network", &subnet), &value).expect("round trip");
        assert_eq!(back, Lease { subnet, public_ip: "192.168.1.254".parse().expect("ip"), vtep_mac: mac });
    }

    #[test]
    fn what_flannel_writes_parses_and_bad_leases_are_named() {
        let flannel = r#"{"PublicIP":"172.31.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:00:00:01"}}"#;
        assert_eq!(
            parse_lease(DIR, "/coreos.com/network/subnets/10.244.1.0-24", flannel),
            Ok(lease("10.244.1.0/24", "172.31.0.1", "0a:58:0a:00:00:01"))
        );
        let bad = [
            ("/coreos.com/network/subnets/garbage", flannel, "not a flannel subnet lease key"),
            ("/coreos.com/network/subnets/10.244.1.0-24", "{", "not JSON"),
            (
                "/coreos.com/network/subnets/10.244.1.0-24",
                r#"{"PublicIP":"172.31.0.1","BackendType":"host-gw"}"#,
                "not vxlan",
            ),
            (
                "/coreos.com/network/subnets/10.244.1.0-24",
                r#"{"BackendType":"vxlan","BackendData":{"VtepMAC":"0a:58:0a:00:00:01"}}"#,
                "PublicIP",
            ),
            (
                "/coreos.com/network/subnets/10.244.1.0-24",
                r#"{"PublicIP":"172.31.0.1","BackendData":{"VtepMAC":"zz"}}"#,
                "VtepMAC",
            ),
        ];
        for (key, value, why) in bad {
            let problem = parse_lease(DIR, key, value).expect_err(why);
            assert!(problem.to_string().contains(why), "{problem}");
        }
    }

    #[test]
    fn fdb_and_arp_come_from_the_other_leases() {
        let own: IpNet = "10.244.200.0/24".parse().expect("own");
        let leases = vec![
            lease("10.244.2.0/24", "172.31.0.2", "0a:58:0a:00:00:02"),
            lease("10.244.1.0/24", "172.31.0.1", "0a:58:0a:00:00:01"),
            lease("10.244.200.0/24", "192.168.1.254", "02:00:00:00:00:ff"),
        ];
        let fdb: Vec<(String, String)> = fdb_records_from_leases(&leases, &own)
            .iter()
            .map(|r| (r.mac.as_str().to_string(), r.endpoint.to_string()))
            .collect();
        assert_eq!(
            fdb,
            [
                ("0a:58:0a:00:00:01".to_string(), "172.31.0.1".to_string()),
                ("0a:58:0a:00:00:02".to_string(), "172.31.0.2".to_string())
            ]
        );

        let members: BTreeSet<IpAddr> =
            ["10.244.1.5", "10.244.2.7", "10.244.200.3", "10.9.9.9"].iter().map(|a| a.parse().expect("ip")).collect();
        let arp: Vec<(String, String)> = arp_entries_from_leases(&members, &leases, &own)
            .iter()
            .map(|e| (e.address.to_string(), e.mac.as_str().to_string()))
            .collect();
        assert_eq!(
            arp,
            [
                ("10.244.1.5".to_string(), "0a:58:0a:00:00:01".to_string()),
                ("10.244.2.7".to_string(), "0a:58:0a:00:00:02".to_string())
            ]
        );
    }
}
