//! The status of a BigIpListenerGroup: which VirtualServers it serves, and whether its shared
//! virtual server is programmed with all of them.

use crate::crd::{BigIpListenerGroupStatus, Condition, VirtualServerStatus};

/// An attached VirtualServer as the group's status looks at it.
pub struct AttachedObject<'a> {
    /// `namespace/name`.
    pub key: String,
    pub generation: Option<i64>,
    pub status: Option<&'a VirtualServerStatus>,
}

/// The status a group should have. `problem` is why its spec cannot be used (None: it can);
/// `attached` are the VirtualServers included in its virtual server, in any order.
pub fn listener_group_status(
    generation: Option<i64>,
    problem: Option<String>,
    mut attached: Vec<AttachedObject<'_>>,
    previous: Option<&BigIpListenerGroupStatus>,
    now: &str,
) -> BigIpListenerGroupStatus {
    attached.sort_by(|a, b| a.key.cmp(&b.key));
    let accepted = match &problem {
        None => ("True", "Accepted", "the group is valid".to_string()),
        Some(problem) => ("False", "Invalid", problem.clone()),
    };
    fn programmed_of<'a>(object: &AttachedObject<'a>) -> Option<&'a Condition> {
        object
            .status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Programmed"))
            .filter(|c| c.observed_generation == object.generation)
    }
    let waiting = attached.iter().find(|object| programmed_of(object).is_none_or(|c| c.status != "True"));
    let programmed = match (&problem, attached.is_empty(), waiting) {
        (Some(_), _, _) => ("False", "Invalid", "the group's spec cannot be used (see Accepted)".to_string()),
        (None, true, _) => (
            "False",
            "NoAttachedObjects",
            "no VirtualServer is attached; VirtualServers join with spec.listenerGroup".to_string(),
        ),
        (None, false, Some(object)) => match programmed_of(object) {
            Some(c) => ("False", "MemberNotProgrammed", format!("VirtualServer {}: {}", object.key, c.message)),
            None => ("False", "Pending", format!("VirtualServer {} is not programmed yet", object.key)),
        },
        (None, false, None) => (
            "True",
            "Programmed",
            format!("the shared virtual server serves the hosts of {} VirtualServer(s)", attached.len()),
        ),
    };
    let conditions = [("Accepted", accepted), ("Programmed", programmed)]
        .into_iter()
        .map(|(type_, (status, reason, message))| {
            let unchanged_since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone());
            Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message,
                observed_generation: generation,
                last_transition_time: unchanged_since.unwrap_or_else(|| now.to_string()),
            }
        })
        .collect();
    BigIpListenerGroupStatus {
        conditions,
        observed_generation: generation,
        attached: i64::try_from(attached.len()).ok(),
        attached_objects: attached.into_iter().map(|object| object.key).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs_status(programmed: &str, generation: i64) -> VirtualServerStatus {
        VirtualServerStatus {
            conditions: vec![Condition {
                type_: "Programmed".into(),
                status: programmed.into(),
                reason: "R".into(),
                message: "refused by the BIG-IP".into(),
                observed_generation: Some(generation),
                last_transition_time: "T0".into(),
            }],
            ..Default::default()
        }
    }

    fn condition<'a>(status: &'a BigIpListenerGroupStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).expect("condition")
    }

    #[test]
    fn programmed_only_when_every_attached_object_is_programmed_at_its_generation() {
        let done = vs_status("True", 2);
        let failed = vs_status("False", 1);
        let both = |second: &VirtualServerStatus, generation| {
            listener_group_status(
                Some(3),
                None,
                vec![
                    AttachedObject { key: "b/web".into(), generation: Some(2), status: Some(&done) },
                    AttachedObject { key: "a/shop".into(), generation: Some(generation), status: Some(second) },
                ],
                None,
                "T1",
            )
        };
        let ok = both(&done, 2);
        assert_eq!(condition(&ok, "Programmed").status, "True");
        assert_eq!(ok.attached, Some(2));
        assert_eq!(ok.attached_objects, vec!["a/shop", "b/web"]);
        let stale = both(&done, 3);
        assert_eq!(condition(&stale, "Programmed").reason, "Pending");
        let bad = both(&failed, 1);
        assert_eq!(condition(&bad, "Programmed").reason, "MemberNotProgrammed");
        assert!(condition(&bad, "Programmed").message.contains("a/shop: refused by the BIG-IP"));
    }

    #[test]
    fn no_attached_objects_and_invalid_specs_are_not_programmed() {
        let empty = listener_group_status(Some(1), None, Vec::new(), None, "T1");
        assert_eq!(condition(&empty, "Accepted").status, "True");
        assert_eq!(condition(&empty, "Programmed").reason, "NoAttachedObjects");
        let invalid = listener_group_status(Some(1), Some("bad address".into()), Vec::new(), Some(&empty), "T2");
        assert_eq!(condition(&invalid, "Accepted").reason, "Invalid");
        assert_eq!(condition(&invalid, "Accepted").last_transition_time, "T2");
        // Programmed stayed False: its transition time is kept.
        assert_eq!(condition(&invalid, "Programmed").last_transition_time, "T1");
    }
}
