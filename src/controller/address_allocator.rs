//! Allocating addresses from BigIpAddressPools, for LoadBalancer Services and for
//! VirtualServers/TransportServers with `spec.addressPool`.
//!
//! The record of which holder has which address is the pool's status (`allocations`), written
//! with an update carrying the pool's resourceVersion: a 409 means another writer changed the
//! pool in between, and the allocation is read again and retried. So no address is handed out
//! twice, even by several operators, and allocations survive restarts and leader changes.

use std::collections::HashSet;
use std::net::IpAddr;

use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

use crate::crd::{AddressAllocation, BigIpAddressPool};
use crate::model::address_pool::{allocate, AllocationError, PoolAddresses, PoolSpecError, PoolView};

/// Attempts to record an allocation in a pool whose resourceVersion keeps changing.
const RECORD_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum AllocatorError {
    #[error("{what}: {source}")]
    Api { what: String, source: kube::Error },
    #[error("the BigIpAddressPools changed under every one of {attempts} attempts to record {holder}'s address")]
    Contended { holder: String, attempts: usize },
}

/// An address a holder has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub pool: String,
    pub address: IpAddr,
    /// Recorded by this call (not found already recorded).
    pub new: bool,
}

pub struct AddressAllocator {
    client: Client,
    /// Serialises this process's allocations (the resourceVersions serialise them with others).
    serial: tokio::sync::Mutex<()>,
}

impl AddressAllocator {
    pub fn new(client: Client) -> Self {
        Self { client, serial: tokio::sync::Mutex::new(()) }
    }

    fn pools(&self) -> Api<BigIpAddressPool> {
        Api::all(self.client.clone())
    }

    async fn list(&self) -> Result<Vec<BigIpAddressPool>, AllocatorError> {
        // Fresh from the apiserver: the record must not be judged from a cache that lags.
        self.pools()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|source| AllocatorError::Api { what: "listing BigIpAddressPools".into(), source })
    }

    /// The address the pools' records give `holder`, or one allocated and recorded now for a
    /// holder in `namespace`: from `requested` (else an auto-assign pool); `annotated` is the
    /// address the holder's annotations name (taken back when its record was lost and it is
    /// still free); `named_elsewhere` holds addresses others name themselves.
    pub async fn claim(
        &self,
        holder: &str,
        namespace: &str,
        requested: Option<&str>,
        annotated: Option<(IpAddr, Option<&str>)>,
        named_elsewhere: &HashSet<IpAddr>,
    ) -> Result<Result<Held, AllocationError>, AllocatorError> {
        let _serial = self.serial.lock().await;
        for _ in 0..RECORD_ATTEMPTS {
            let pools = self.list().await?;
            let recorded = pools.iter().find_map(|pool| {
                let held = pool.status.as_ref()?.allocations.iter().find(|a| a.service == holder)?;
                Some((pool.name_any(), held.address.parse::<IpAddr>().ok()?))
            });
            if let Some((pool, address)) = recorded {
                return Ok(Ok(Held { pool, address, new: false }));
            }
            let mut used: HashSet<IpAddr> = pools
                .iter()
                .flat_map(|p| p.status.iter().flat_map(|s| s.allocations.iter()))
                .filter_map(|a| a.address.parse().ok())
                .collect();
            used.extend(named_elsewhere.iter().copied());
            let views = pool_views(&pools);
            let again = annotated.and_then(|(address, from)| {
                let pool = views.iter().find(|v| Some(v.name.as_str()) == from)?;
                let fits = pool.addresses.as_ref().is_ok_and(|a| a.contains(address)) && pool.allows(namespace);
                (fits && !used.contains(&address)).then(|| (pool.name.clone(), address))
            });
            let (pool_name, address) = match again {
                Some(choice) => choice,
                None => match allocate(&views, namespace, requested, &used) {
                    Ok(choice) => choice,
                    Err(e) => return Ok(Err(e)),
                },
            };
            let Some(mut pool) = pools.into_iter().find(|p| p.name_any() == pool_name) else { continue };
            let mut allocations = pool.status.as_ref().map(|s| s.allocations.clone()).unwrap_or_default();
            allocations.push(AddressAllocation { address: address.to_string(), service: holder.to_string() });
            pool.status = Some(pool_status(&pool, allocations));
            match self.pools().replace_status(&pool_name, &PostParams::default(), &pool).await {
                Ok(_) => return Ok(Ok(Held { pool: pool_name, address, new: true })),
                // Another writer changed the pool since it was read: read it again.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(source) => {
                    return Err(AllocatorError::Api {
                        what: format!("recording {address} for {holder} in BigIpAddressPool {pool_name}"),
                        source,
                    })
                }
            }
        }
        Err(AllocatorError::Contended { holder: holder.into(), attempts: RECORD_ATTEMPTS })
    }

    /// Removes `holder`'s records from every pool; returns what was released
    /// (`address (BigIpAddressPool name)`).
    pub async fn release(&self, holder: &str) -> Result<Vec<String>, AllocatorError> {
        let _serial = self.serial.lock().await;
        'attempt: for _ in 0..RECORD_ATTEMPTS {
            let mut released = Vec::new();
            for mut pool in self.list().await? {
                let allocations = pool.status.as_ref().map(|s| s.allocations.clone()).unwrap_or_default();
                if !allocations.iter().any(|a| a.service == holder) {
                    continue;
                }
                let (gone, kept): (Vec<_>, Vec<_>) = allocations.into_iter().partition(|a| a.service == holder);
                pool.status = Some(pool_status(&pool, kept));
                match self.pools().replace_status(&pool.name_any(), &PostParams::default(), &pool).await {
                    Ok(_) => released.extend(
                        gone.into_iter().map(|a| format!("{} (BigIpAddressPool {})", a.address, pool.name_any())),
                    ),
                    Err(kube::Error::Api(status)) if status.code == 409 => continue 'attempt,
                    Err(source) => {
                        return Err(AllocatorError::Api {
                            what: format!("releasing the address of {holder} in BigIpAddressPool {}", pool.name_any()),
                            source,
                        })
                    }
                }
            }
            return Ok(released);
        }
        Err(AllocatorError::Contended { holder: holder.into(), attempts: RECORD_ATTEMPTS })
    }
}

/// The pools as the allocator sees them; one being deleted hands out nothing.
pub fn pool_views(pools: &[BigIpAddressPool]) -> Vec<PoolView> {
    pools
        .iter()
        .map(|pool| PoolView {
            name: pool.name_any(),
            addresses: match pool.metadata.deletion_timestamp {
                Some(_) => Err(PoolSpecError::BeingDeleted),
                None => PoolAddresses::parse(&pool.spec.addresses),
            },
            auto_assign: pool.spec.auto_assign,
            allowed_namespaces: pool.spec.allowed_namespaces.clone(),
            order: (pool.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()), pool.name_any()),
        })
        .collect()
}

/// A pool's status holding `allocations`. Conditions keep their transition time while their
/// status holds.
pub fn pool_status(pool: &BigIpAddressPool, allocations: Vec<AddressAllocation>) -> crate::crd::BigIpAddressPoolStatus {
    use crate::crd::{BigIpAddressPoolStatus, Condition};
    let previous = pool.status.as_ref();
    let generation = pool.metadata.generation;
    let now = super::reconcile::jiff_now();
    let condition = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_string();
        let since = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_ && c.status == status))
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        }
    };
    let used = allocations.len() as i64;
    match PoolAddresses::parse(&pool.spec.addresses) {
        Err(e) => BigIpAddressPoolStatus {
            conditions: vec![condition("Valid", false, "InvalidAddresses", e.to_string())],
            observed_generation: generation,
            total: None,
            used: Some(used),
            free: None,
            allocations,
        },
        Ok(addresses) => {
            let total = addresses.total();
            let addresses_in_use: Vec<IpAddr> = allocations.iter().filter_map(|a| a.address.parse().ok()).collect();
            let in_pool = addresses.used_of(addresses_in_use.iter());
            let free = total.saturating_sub(in_pool);
            let exhausted = free == 0;
            let message = format!("{in_pool} of {total} addresses allocated");
            let reason = if exhausted { "AddressPoolExhausted" } else { "AddressesFree" };
            BigIpAddressPoolStatus {
                conditions: vec![
                    condition("Valid", true, "Valid", format!("{total} addresses")),
                    condition("Exhausted", exhausted, reason, message),
                ],
                observed_generation: generation,
                total: Some(total.to_string()),
                used: Some(used),
                free: Some(free.to_string()),
                allocations,
            }
        }
    }
}
