//! Calico BGP mode, pure: the BIG-IP's neighbours and the prefix list of its inbound route
//! filters.

use std::sync::Arc;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;

use super::flannel::is_bigip_node;
use super::labels::Selector;
use super::members::{node_internal_ip, node_is_ready};
use crate::crd::{RouteFilter, RouteFilterAction};

/// One entry of the BIG-IP prefix list (`net routing prefix-list`): sequence number, action,
/// prefix, and the accepted prefix lengths as `min:max` (none: exactly the prefix's length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixEntry {
    pub sequence: u32,
    pub action: RouteFilterAction,
    pub prefix: Ipv4Net,
    pub length_range: Option<(u8, u8)>,
}

impl PrefixEntry {
    /// `16:26`, as BIG-IP's `prefixLenRange` shows it.
    pub fn length_range_text(&self) -> Option<String> {
        self.length_range.map(|(min, max)| format!("{min}:{max}"))
    }
}

/// A route filter the BIG-IP cannot express, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteFilterError {
    #[error("bgp.routeFilters[{index}].prefix {prefix:?} is not an IPv4 CIDR such as 10.244.0.0/16")]
    Prefix { index: usize, prefix: String },
    #[error("bgp.routeFilters[{index}]: the lengths must satisfy {prefix_length} <= minLength <= maxLength <= 32, got {min}..{max}")]
    Lengths { index: usize, prefix_length: u8, min: u8, max: u8 },
}

/// The prefix list entries, in spec order (sequence 10, 20, …, so entries can be inserted by
/// hand between them). A filter with only `maxLength` starts at the prefix's length; with only
/// `minLength` it ends at 32.
pub fn prefix_list_entries(filters: &[RouteFilter]) -> Result<Vec<PrefixEntry>, RouteFilterError> {
    filters
        .iter()
        .enumerate()
        .map(|(index, filter)| {
            let prefix: Ipv4Net =
                filter.prefix.parse().map_err(|_| RouteFilterError::Prefix { index, prefix: filter.prefix.clone() })?;
            let prefix = prefix.trunc();
            let length_range = match (filter.min_length, filter.max_length) {
                (None, None) => None,
                (min, max) => {
                    let (min, max) = (min.unwrap_or(prefix.prefix_len()), max.unwrap_or(32));
                    if !(prefix.prefix_len() <= min && min <= max && max <= 32) {
                        return Err(RouteFilterError::Lengths { index, prefix_length: prefix.prefix_len(), min, max });
                    }
                    Some((min, max))
                }
            };
            let sequence = u32::try_from(index + 1).unwrap_or(u32::MAX / 10).saturating_mul(10);
            Ok(PrefixEntry { sequence, action: filter.action, prefix, length_range })
        })
        .collect()
}

/// The BGP neighbours: the InternalIP of every Ready node matching `selector`, except the
/// BIG-IP's own Node, sorted and without duplicates.
pub fn neighbor_addresses(nodes: &[Arc<Node>], selector: Option<&Selector>) -> Vec<String> {
    let mut addresses: Vec<String> = nodes
        .iter()
        .filter(|n| node_is_ready(n) && !is_bigip_node(n))
        .filter(|n| selector.is_none_or(|s| s.matches(n.metadata.labels.as_ref())))
        .filter_map(|n| node_internal_ip(n))
        .map(|ip| ip.to_string())
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(prefix: &str, action: RouteFilterAction, min: Option<u8>, max: Option<u8>) -> RouteFilter {
        RouteFilter { prefix: prefix.into(), action, min_length: min, max_length: max }
    }

    #[test]
    fn filters_become_numbered_entries_with_length_ranges() {
        let entries = prefix_list_entries(&[
            filter("10.244.7.0/24", RouteFilterAction::Deny, None, None),
            filter("10.244.0.0/16", RouteFilterAction::Permit, None, Some(26)),
            filter("192.168.0.0/16", RouteFilterAction::Permit, Some(24), None),
        ])
        .expect("valid");
        let shown: Vec<(u32, &str, String, Option<String>)> = entries
            .iter()
            .map(|e| (e.sequence, e.action.as_str(), e.prefix.to_string(), e.length_range_text()))
            .collect();
        assert_eq!(
            shown,
            [
                (10, "deny", "10.244.7.0/24".to_string(), None),
                (20, "permit", "10.244.0.0/16".to_string(), Some("16:26".to_string())),
                (30, "permit", "192.168.0.0/16".to_string(), Some("24:32".to_string())),
            ]
        );
    }

    #[test]
    fn host_bits_are_dropped_and_bad_filters_name_their_index() {
        let entries =
            prefix_list_entries(&[filter("10.244.3.9/16", RouteFilterAction::Permit, None, None)]).expect("valid");
        assert_eq!(entries[0].prefix.to_string(), "10.244.0.0/16");
        assert_eq!(
            prefix_list_entries(&[
                filter("10.0.0.0/8", RouteFilterAction::Permit, None, None),
                filter("fd00::/8", RouteFilterAction::Permit, None, None),
            ]),
            Err(RouteFilterError::Prefix { index: 1, prefix: "fd00::/8".into() })
        );
        let too_short = prefix_list_entries(&[filter("10.244.0.0/16", RouteFilterAction::Permit, Some(8), None)]);
        assert_eq!(too_short, Err(RouteFilterError::Lengths { index: 0, prefix_length: 16, min: 8, max: 32 }));
        let inverted = prefix_list_entries(&[filter("10.244.0.0/16", RouteFilterAction::Permit, Some(28), Some(24))]);
        assert!(matches!(inverted, Err(RouteFilterError::Lengths { min: 28, max: 24, .. })), "{inverted:?}");
    }

    fn node(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Arc<Node> {
        let node = serde_json::json!({
            "metadata": {"name": name, "labels": labels},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "addresses": [{"type": "InternalIP", "address": ip}],
            },
        });
        Arc::new(serde_json::from_value(node).expect("node"))
    }

    #[test]
    fn neighbors_are_the_selected_ready_nodes_but_never_the_bigip() {
        let nodes = vec![
            node("b", "10.0.0.2", true, serde_json::json!({"bgp": "on"})),
            node("a", "10.0.0.1", true, serde_json::json!({})),
            node("down", "10.0.0.3", false, serde_json::json!({"bgp": "on"})),
            node("bigip", "10.0.0.9", true, serde_json::json!({crate::model::flannel::BIGIP_NODE_LABEL: "true"})),
            node("a-again", "10.0.0.1", true, serde_json::json!({})),
        ];
        assert_eq!(neighbor_addresses(&nodes, None), ["10.0.0.1", "10.0.0.2"]);
        let selector: Selector = "bgp=on".parse().expect("selector");
        assert_eq!(neighbor_addresses(&nodes, Some(&selector)), ["10.0.0.2"]);
    }
}
