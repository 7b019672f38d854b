//! Property defaults as the embedded AS3 schema declares them.
//!
//! The simulator derives BIG-IP objects (virtual ports, monitor intervals, pool modes, ...) from
//! declarations that usually leave properties out. Reading the defaults from the same schema the
//! declarations are validated against keeps the simulator in step with AS3 instead of with a
//! hand-copied table.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// How deep `allOf` references are followed; the AS3 schema nests class cores about three deep.
const MAX_REF_DEPTH: usize = 8;

fn definitions() -> Option<&'static serde_json::Map<String, Value>> {
    match as3_rules::schema::schema_document() {
        Ok(schema) => schema.get("definitions").and_then(Value::as_object),
        Err(error) => {
            tracing::error!(%error, "embedded AS3 schema unavailable; schema defaults unavailable");
            None
        }
    }
}

/// Defaults by definition and property, each definition with those it composes through
/// `allOf` (its own first). Built once: the simulator asks per virtual server and pool.
type DefaultTable = HashMap<&'static str, HashMap<&'static str, &'static Value>>;

fn table() -> &'static DefaultTable {
    static TABLE: OnceLock<DefaultTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let Some(definitions) = definitions() else { return DefaultTable::new() };
        definitions
            .keys()
            .map(|class| {
                let mut defaults = HashMap::new();
                collect_defaults(definitions, class, 0, &mut defaults);
                (class.as_str(), defaults)
            })
            .collect()
    })
}

/// Adds the defaults `class` declares, then those of the definitions it composes, keeping the
/// first found for each property.
fn collect_defaults(
    definitions: &'static serde_json::Map<String, Value>,
    class: &str,
    depth: usize,
    defaults: &mut HashMap<&'static str, &'static Value>,
) {
    let Some(definition) = definitions.get(class).filter(|_| depth <= MAX_REF_DEPTH) else { return };
    for (property, schema) in definition.get("properties").and_then(Value::as_object).into_iter().flatten() {
        if let Some(default) = schema.get("default") {
            defaults.entry(property.as_str()).or_insert(default);
        }
    }
    let references = definition
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("$ref").and_then(Value::as_str))
        .filter_map(|reference| reference.strip_prefix("#/definitions/"));
    for referenced in references {
        collect_defaults(definitions, referenced, depth + 1, defaults);
    }
}

/// The schema default of `property` in definition `class` (e.g. `Service_HTTPS`, `virtualPort`),
/// following the definition's `allOf` references the way AS3 class cores are composed.
pub(super) fn default_of(class: &str, property: &str) -> Option<&'static Value> {
    table().get(class)?.get(property).copied()
}

pub(super) fn default_str(class: &str, property: &str) -> Option<&'static str> {
    default_of(class, property).and_then(Value::as_str)
}

pub(super) fn default_u64(class: &str, property: &str) -> Option<u64> {
    default_of(class, property).and_then(Value::as_u64)
}

pub(super) fn default_bool(class: &str, property: &str) -> Option<bool> {
    default_of(class, property).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every default the simulator relies on must be present in the schema; a schema upgrade
    /// that moves one fails here instead of silently falling back.
    #[test]
    fn defaults_the_simulator_uses_exist() {
        assert_eq!(default_u64("Service_HTTP", "virtualPort"), Some(80));
        assert_eq!(default_u64("Service_HTTPS", "virtualPort"), Some(443));
        assert_eq!(default_bool("Service_HTTPS", "redirect80"), Some(true));
        assert_eq!(default_bool("Service_TCP", "enable"), Some(true));
        assert_eq!(default_str("Service_HTTP", "layer4"), Some("tcp"));
        assert_eq!(default_str("Service_UDP", "layer4"), Some("udp"));
        assert_eq!(default_str("Service_Generic", "layer4"), Some("any"));
        assert_eq!(default_bool("Service_HTTP", "shareAddresses"), Some(false));
        assert_eq!(default_str("Pool", "loadBalancingMode"), Some("round-robin"));
        assert_eq!(default_u64("Pool", "minimumMembersActive"), Some(1));
        assert_eq!(default_bool("Pool_Member", "enable"), Some(true));
        assert_eq!(default_str("Pool_Member", "adminState"), Some("enable"));
        assert_eq!(default_bool("Pool_Member", "shareNodes"), Some(false));
        assert_eq!(default_u64("Monitor_HTTP", "interval"), Some(5));
        assert_eq!(default_u64("Monitor_TCP", "timeout"), Some(16));
        assert_eq!(default_str("Monitor_HTTP", "receive"), Some("HTTP/1."));
    }

    #[test]
    fn unknown_names_have_no_default() {
        assert_eq!(default_of("No_Such_Class", "x"), None);
        assert_eq!(default_of("Pool", "noSuchProperty"), None);
    }
}
