//! Address pools (IPAM), pure: parsing a BigIpAddressPool's addresses, and choosing a free
//! address for a Service from the pools it may use.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// One contiguous run of addresses, both ends included, as integers of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AddressRun {
    v6: bool,
    first: u128,
    last: u128,
}

fn to_int(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

fn from_int(v6: bool, value: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(value.into())
    } else {
        // Runs of the IPv4 family never leave u32.
        IpAddr::V4(u32::try_from(value).unwrap_or(u32::MAX).into())
    }
}

/// Why a pool's addresses cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolSpecError {
    #[error("{entry:?} is neither an address, a CIDR nor a range first-last")]
    Unparsable { entry: String },
    #[error("range {entry:?} mixes IPv4 and IPv6")]
    MixedRange { entry: String },
    #[error("range {entry:?} ends before it starts")]
    BackwardsRange { entry: String },
    #[error("the pool has no addresses")]
    Empty,
    #[error("the pool is being deleted")]
    BeingDeleted,
}

/// The addresses of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolAddresses {
    runs: Vec<AddressRun>,
}

impl PoolAddresses {
    /// Parses `10.1.20.0/28` (without its network and broadcast addresses when the prefix is
    /// shorter than /31), `10.1.20.100-10.1.20.110`, `2001:db8::/120` or a single address.
    pub fn parse(entries: &[String]) -> Result<Self, PoolSpecError> {
        let mut runs = Vec::new();
        for entry in entries {
            let trimmed = entry.trim();
            let run = if let Some((first, last)) = trimmed.split_once('-') {
                let parse = |s: &str| {
                    s.trim().parse::<IpAddr>().map_err(|_| PoolSpecError::Unparsable { entry: entry.clone() })
                };
                let ((first_v6, first), (last_v6, last)) = (to_int(parse(first)?), to_int(parse(last)?));
                if first_v6 != last_v6 {
                    return Err(PoolSpecError::MixedRange { entry: entry.clone() });
                }
                if last < first {
                    return Err(PoolSpecError::BackwardsRange { entry: entry.clone() });
                }
                AddressRun { v6: first_v6, first, last }
            } else if let Ok(net) = trimmed.parse::<IpNet>() {
                let (v6, first) = to_int(net.network());
                let (_, last) = to_int(net.broadcast());
                match net {
                    IpNet::V4(v4) if v4.prefix_len() < 31 => AddressRun { v6, first: first + 1, last: last - 1 },
                    _ => AddressRun { v6, first, last },
                }
            } else if let Ok(ip) = trimmed.parse::<IpAddr>() {
                let (v6, value) = to_int(ip);
                AddressRun { v6, first: value, last: value }
            } else {
                return Err(PoolSpecError::Unparsable { entry: entry.clone() });
            };
            runs.push(run);
        }
        if runs.is_empty() {
            return Err(PoolSpecError::Empty);
        }
        Ok(Self { runs })
    }

    /// How many addresses the pool holds (saturating; overlapping entries count twice).
    pub fn total(&self) -> u128 {
        self.runs.iter().fold(0u128, |sum, run| sum.saturating_add(run.last - run.first).saturating_add(1))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, value) = to_int(ip);
        self.runs.iter().any(|run| run.v6 == v6 && run.first <= value && value <= run.last)
    }

    /// The first address, in the order the entries list them, that is not in `used`.
    /// Visits at most `used.len() + 1` addresses of each run.
    pub fn first_free(&self, used: &HashSet<IpAddr>) -> Option<IpAddr> {
        for run in &self.runs {
            let mut value = run.first;
            loop {
                let ip = from_int(run.v6, value);
                if !used.contains(&ip) {
                    return Some(ip);
                }
                if value == run.last {
                    break;
                }
                value += 1;
            }
        }
        None
    }

    /// How many of `used` lie in the pool.
    pub fn used_of<'a>(&self, used: impl IntoIterator<Item = &'a IpAddr>) -> u128 {
        used.into_iter().filter(|ip| self.contains(**ip)).count() as u128
    }
}

/// What the allocator knows of one BigIpAddressPool.
#[derive(Debug, Clone)]
pub struct PoolView {
    pub name: String,
    pub addresses: Result<PoolAddresses, PoolSpecError>,
    pub auto_assign: bool,
    /// Empty: every namespace.
    pub allowed_namespaces: Vec<String>,
    /// Oldest first among auto-assign pools (creation time, then name).
    pub order: (Option<i64>, String),
}

impl PoolView {
    pub fn allows(&self, namespace: &str) -> bool {
        self.allowed_namespaces.is_empty() || self.allowed_namespaces.iter().any(|n| n == namespace)
    }
}

/// Why a Service got no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("BigIpAddressPool {pool} does not exist")]
    PoolNotFound { pool: String },
    #[error("BigIpAddressPool {pool} does not allow namespace {namespace} (spec.allowedNamespaces)")]
    NotPermitted { pool: String, namespace: String },
    #[error("BigIpAddressPool {pool} cannot be used: {reason}")]
    InvalidPool { pool: String, reason: String },
    #[error("no BigIpAddressPool with autoAssign: true allows namespace {namespace}; create one, or name a pool with the annotation bigip.operator.dev/address-pool")]
    NoPool { namespace: String },
    #[error("no free address: {}", describe_exhausted(.pools))]
    Exhausted { pools: Vec<(String, u128)> },
}

fn describe_exhausted(pools: &[(String, u128)]) -> String {
    pools
        .iter()
        .map(|(name, total)| format!("BigIpAddressPool {name} has all {total} addresses in use"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AllocationError {
    /// The reason on Events and in the Service's status annotation.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PoolNotFound { .. } => "AddressPoolNotFound",
            Self::NotPermitted { .. } => "AddressPoolNotPermitted",
            Self::InvalidPool { .. } => "AddressPoolInvalid",
            Self::NoPool { .. } => "NoAddressPool",
            Self::Exhausted { .. } => "AddressPoolExhausted",
        }
    }
}

/// Chooses a free address for a Service of `namespace`: from the pool it names (`requested`),
/// else from the auto-assign pools that allow its namespace, oldest first. `used` holds every
/// address already given out or claimed.
pub fn allocate(
    pools: &[PoolView],
    namespace: &str,
    requested: Option<&str>,
    used: &HashSet<IpAddr>,
) -> Result<(String, IpAddr), AllocationError> {
    let candidates: Vec<&PoolView> = match requested {
        Some(name) => {
            let pool =
                pools.iter().find(|p| p.name == name).ok_or(AllocationError::PoolNotFound { pool: name.into() })?;
            if !pool.allows(namespace) {
                return Err(AllocationError::NotPermitted { pool: name.into(), namespace: namespace.into() });
            }
            if let Err(e) = &pool.addresses {
                return Err(AllocationError::InvalidPool { pool: name.into(), reason: e.to_string() });
            }
            vec![pool]
        }
        None => {
            let mut auto: Vec<&PoolView> =
                pools.iter().filter(|p| p.auto_assign && p.allows(namespace) && p.addresses.is_ok()).collect();
            auto.sort_by(|a, b| a.order.cmp(&b.order));
            if auto.is_empty() {
                return Err(AllocationError::NoPool { namespace: namespace.into() });
            }
            auto
        }
    };
    let mut exhausted = Vec::new();
    for pool in candidates {
        let Ok(addresses) = &pool.addresses else { continue };
        if let Some(ip) = addresses.first_free(used) {
            return Ok((pool.name.clone(), ip));
        }
        exhausted.push((pool.name.clone(), addresses.total()));
    }
    Err(AllocationError::Exhausted { pools: exhausted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<PoolAddresses, PoolSpecError> {
        PoolAddresses::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn pool(name: &str, entries: &[&str], auto: bool, namespaces: &[&str], created: i64) -> PoolView {
        PoolView {
            name: name.into(),
            addresses: parse(entries),
            auto_assign: auto,
            allowed_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            order: (Some(created), name.into()),
        }
    }

    #[test]
    fn cidrs_ranges_and_single_addresses() {
        let addresses = parse(&["10.1.20.0/30", "10.1.20.100-10.1.20.102", "10.1.20.200", "2001:db8::/126"]).unwrap();
        // /30 without network and broadcast: 2; range 3; single 1; v6 /126 all 4.
        assert_eq!(addresses.total(), 10);
        assert!(addresses.contains(ip("10.1.20.1")) && addresses.contains(ip("10.1.20.2")));
        assert!(!addresses.contains(ip("10.1.20.0")) && !addresses.contains(ip("10.1.20.3")));
        assert!(addresses.contains(ip("2001:db8::3")) && !addresses.contains(ip("2001:db8::4")));
        assert_eq!(parse(&["10.0.0.8/31"]).unwrap().total(), 2, "a /31 keeps both addresses");
        assert_eq!(parse(&["10.0.0.8/32"]).unwrap().total(), 1);
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(parse(&["10.0.0.300"]), Err(PoolSpecError::Unparsable { entry: "10.0.0.300".into() }));
        assert_eq!(
            parse(&["10.0.0.9-10.0.0.1"]),
            Err(PoolSpecError::BackwardsRange { entry: "10.0.0.9-10.0.0.1".into() })
        );
        assert_eq!(parse(&["10.0.0.1-::1"]), Err(PoolSpecError::MixedRange { entry: "10.0.0.1-::1".into() }));
        assert_eq!(parse(&[]), Err(PoolSpecError::Empty));
    }

    #[test]
    fn first_free_skips_used_addresses_in_order() {
        let addresses = parse(&["10.1.20.10-10.1.20.11", "10.1.21.5"]).unwrap();
        let mut used = HashSet::new();
        assert_eq!(addresses.first_free(&used), Some(ip("10.1.20.10")));
        used.insert(ip("10.1.20.10"));
        used.insert(ip("10.1.20.11"));
        assert_eq!(addresses.first_free(&used), Some(ip("10.1.21.5")));
        used.insert(ip("10.1.21.5"));
        assert_eq!(addresses.first_free(&used), None);
        assert_eq!(addresses.used_of(&used), 3);
    }

    #[test]
    fn a_huge_ipv6_pool_is_walked_only_past_the_used_addresses() {
        let addresses = parse(&["2001:db8::/64"]).unwrap();
        assert_eq!(addresses.total(), 1u128 << 64);
        let base = to_int(ip("2001:db8::")).1;
        let used: HashSet<IpAddr> = (0..100u128).map(|i| from_int(true, base + i)).collect();
        assert_eq!(addresses.first_free(&used), Some(ip("2001:db8::64")));
    }

    #[test]
    fn requested_pools_must_exist_allow_the_namespace_and_be_valid() {
        let pools = [pool("team-a", &["10.0.1.1"], false, &["a"], 1), pool("broken", &["nonsense"], true, &[], 2)];
        let used = HashSet::new();
        assert_eq!(allocate(&pools, "a", Some("team-a"), &used), Ok(("team-a".into(), ip("10.0.1.1"))));
        assert_eq!(
            allocate(&pools, "b", Some("team-a"), &used),
            Err(AllocationError::NotPermitted { pool: "team-a".into(), namespace: "b".into() })
        );
        assert_eq!(
            allocate(&pools, "a", Some("nope"), &used),
            Err(AllocationError::PoolNotFound { pool: "nope".into() })
        );
        assert!(matches!(allocate(&pools, "a", Some("broken"), &used), Err(AllocationError::InvalidPool { .. })));
    }

    #[test]
    fn auto_assign_takes_the_oldest_pool_that_allows_the_namespace_then_the_next() {
        let pools = [
            pool("newer", &["10.0.2.1"], true, &[], 20),
            pool("older", &["10.0.1.1"], true, &[], 10),
            pool("manual", &["10.0.3.1"], false, &[], 1),
            pool("only-b", &["10.0.4.1"], true, &["b"], 5),
        ];
        let mut used = HashSet::new();
        assert_eq!(allocate(&pools, "a", None, &used), Ok(("older".into(), ip("10.0.1.1"))));
        used.insert(ip("10.0.1.1"));
        assert_eq!(allocate(&pools, "a", None, &used), Ok(("newer".into(), ip("10.0.2.1"))));
        used.insert(ip("10.0.2.1"));
        let exhausted = allocate(&pools, "a", None, &used).unwrap_err();
        assert_eq!(exhausted, AllocationError::Exhausted { pools: vec![("older".into(), 1), ("newer".into(), 1)] });
        assert_eq!(exhausted.reason(), "AddressPoolExhausted");
        assert!(exhausted.to_string().contains("BigIpAddressPool older has all 1 addresses in use"), "{exhausted}");
        assert_eq!(allocate(&pools, "b", None, &used), Ok(("only-b".into(), ip("10.0.4.1"))));
        assert_eq!(
            allocate(&[pools[2].clone()], "a", None, &used),
            Err(AllocationError::NoPool { namespace: "a".into() })
        );
    }
}
