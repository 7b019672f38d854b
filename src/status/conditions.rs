//! Computation of VirtualServer conditions (pure).

use crate::crd::{Condition, VirtualServerStatus};
use crate::model::AppOutcome;

/// Condition types, in the order they are written.
pub const CONDITION_TYPES: [&str; 4] = ["Accepted", "ResolvedRefs", "Programmed", "Ready"];

/// What happened when the object's partition was last sent to the BIG-IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgrammingState {
    /// The BIG-IP holds the application as rendered from the current spec.
    Programmed { partition: String, bigip: String },
    /// Not attempted yet (e.g. the object is not accepted).
    NotAttempted,
    /// Sending failed.
    Failed { reason: FailureReason, message: String },
}

/// Why an application is not programmed: the reason of its `Programmed=False` condition.
/// Code decides on these, never on condition strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// Refused before deploying: the pre-flight schema check, or AS3's own validation.
    DeclarationInvalid,
    /// AS3 or the BIG-IP rejected the tenant while deploying it.
    DeclarationFailed,
    /// A `bigip:` reference (WAF policy, profile, iRule, SNAT pool…) names an object the BIG-IP
    /// does not have (of that type); the application is left out of the post.
    BigIpObjectNotFound,
    /// The tenant was changed out of band and repairing it failed.
    Drifted,
    /// A post would delete more applications than allowed and a fresh list did not confirm.
    DeletionHeld,
    /// The partition holds a tenant this operator does not own.
    PartitionNotOwned,
    BigIpUnreachable,
    BigIpLoginFailed,
    BigIpBusy,
    BigIpError,
    BigIpInvalidResponse,
    BigIpTaskTimeout,
    BigIpTaskLost,
    BigIpTlsError,
}

impl FailureReason {
    /// The condition reason (CamelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeclarationInvalid => "DeclarationInvalid",
            Self::DeclarationFailed => "DeclarationFailed",
            Self::BigIpObjectNotFound => "BigIpObjectNotFound",
            Self::Drifted => "Drifted",
            Self::DeletionHeld => "DeletionHeld",
            Self::PartitionNotOwned => "PartitionNotOwned",
            Self::BigIpUnreachable => "BigIpUnreachable",
            Self::BigIpLoginFailed => "BigIpLoginFailed",
            Self::BigIpBusy => "BigIpBusy",
            Self::BigIpError => "BigIpError",
            Self::BigIpInvalidResponse => "BigIpInvalidResponse",
            Self::BigIpTaskTimeout => "BigIpTaskTimeout",
            Self::BigIpTaskLost => "BigIpTaskLost",
            Self::BigIpTlsError => "BigIpTlsError",
        }
    }

    /// A rejection of the declaration by AS3 (as opposed to not getting an answer): the
    /// outcome stands until the applications change.
    pub fn is_rejection(self) -> bool {
        matches!(self, Self::DeclarationFailed | Self::DeclarationInvalid)
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&crate::bigip::BigIpError> for FailureReason {
    fn from(error: &crate::bigip::BigIpError) -> Self {
        use crate::bigip::BigIpError as E;
        match error {
            E::Unreachable { .. } => Self::BigIpUnreachable,
            E::Login { .. } => Self::BigIpLoginFailed,
            E::Busy { .. } => Self::BigIpBusy,
            E::InvalidDeclaration { .. } => Self::DeclarationInvalid,
            E::Http { .. } => Self::BigIpError,
            E::InvalidResponse { .. } => Self::BigIpInvalidResponse,
            E::TaskTimeout { .. } => Self::BigIpTaskTimeout,
            E::TaskLost { .. } => Self::BigIpTaskLost,
            E::Tls(_) => Self::BigIpTlsError,
        }
    }
}

struct Verdict {
    status: &'static str,
    reason: String,
    message: String,
}

impl Verdict {
    fn new(status: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, reason: reason.into(), message: message.into() }
    }
}

/// The status a VirtualServer should have. `previous` keeps `lastTransitionTime` of conditions
/// whose status did not change; `now` is RFC 3339.
pub fn virtual_server_status(
    outcome: &AppOutcome,
    programming: &ProgrammingState,
    generation: Option<i64>,
    previous: Option<&VirtualServerStatus>,
    now: &str,
) -> VirtualServerStatus {
    let accepted = match outcome {
        AppOutcome::Included { .. } | AppOutcome::Blocked { .. } => {
            Verdict::new("True", "Accepted", "the spec is valid")
        }
        AppOutcome::Invalid(e) => Verdict::new("False", e.reason().to_string(), e.to_string()),
        AppOutcome::AddressConflict { listener, holder } => {
            Verdict::new("False", "AddressConflict", format!("{listener} is already used by {holder}, which keeps it"))
        }
        AppOutcome::RouteConflict { route, holder } => {
            Verdict::new("False", "RouteConflict", format!("{route} is already served by {holder}, which keeps it"))
        }
    };
    let resolved = match (outcome, programming) {
        // An object on the BIG-IP is a reference too.
        (
            AppOutcome::Included { .. },
            ProgrammingState::Failed { reason: reason @ FailureReason::BigIpObjectNotFound, message },
        ) => Verdict::new("False", reason.as_str(), message.clone()),
        _ => match outcome {
            AppOutcome::Included { unresolved, .. } if unresolved.is_empty() => {
                Verdict::new("True", "ResolvedRefs", "all Services and ports were found")
            }
            AppOutcome::Included { unresolved, .. } | AppOutcome::Blocked { unresolved, .. } => Verdict::new(
                "False",
                unresolved.first().map(|u| u.reason()).unwrap_or("Unresolved"),
                unresolved.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            ),
            _ => Verdict::new("Unknown", "NotAccepted", "references are resolved once the object is accepted"),
        },
    };
    let programmed = match (outcome, programming) {
        (AppOutcome::Included { partition, application, .. }, ProgrammingState::Programmed { bigip, .. }) => {
            Verdict::new(
                "True",
                "Programmed",
                format!("AS3 application /{partition}/{application} is deployed on {bigip}"),
            )
        }
        (AppOutcome::Included { .. }, ProgrammingState::Failed { reason, message }) => {
            Verdict::new("False", reason.as_str(), message.clone())
        }
        (AppOutcome::Included { .. }, ProgrammingState::NotAttempted) => {
            Verdict::new("Unknown", "Pending", "waiting to be sent to the BIG-IP")
        }
        (AppOutcome::Blocked { unresolved, .. }, _) => {
            let blocking: Vec<String> =
                unresolved.iter().filter(|u| u.blocks_programming()).map(ToString::to_string).collect();
            Verdict::new(
                "False",
                unresolved.iter().find(|u| u.blocks_programming()).map(|u| u.reason()).unwrap_or("Unresolved"),
                format!(
                    "not programmed until this resolves (the application is left off the BIG-IP): {}",
                    blocking.join("; ")
                ),
            )
        }
        _ => Verdict::new("False", "NotAccepted", "nothing is programmed for an object that is not accepted"),
    };
    let members = match outcome {
        AppOutcome::Included { members, .. } => Some(i32::try_from(*members).unwrap_or(i32::MAX)),
        _ => None,
    };
    let ready = if accepted.status != "True" {
        Verdict::new("False", accepted.reason.clone(), accepted.message.clone())
    } else if programmed.status != "True" {
        Verdict::new("False", programmed.reason.clone(), programmed.message.clone())
    } else if resolved.status != "True" {
        Verdict::new("False", resolved.reason.clone(), resolved.message.clone())
    } else if members == Some(0) {
        Verdict::new("False", "NoMembers", "the pools have no ready endpoints; the virtual server rejects traffic")
    } else {
        Verdict::new("True", "Ready", "the virtual server is programmed and has pool members")
    };

    let conditions = CONDITION_TYPES
        .iter()
        .zip([accepted, resolved, programmed, ready])
        .map(|(type_, verdict)| {
            let unchanged_since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == *type_))
                .filter(|c| c.status == verdict.status)
                .map(|c| c.last_transition_time.clone());
            Condition {
                type_: (*type_).to_string(),
                status: verdict.status.to_string(),
                reason: verdict.reason,
                message: verdict.message,
                observed_generation: generation,
                last_transition_time: unchanged_since.unwrap_or_else(|| now.to_string()),
            }
        })
        .collect();

    let (partition, application) = match outcome {
        AppOutcome::Included { partition, application, .. } => (Some(partition.clone()), Some(application.clone())),
        // Kept so that every later reconcile (and the deletion) syncs the partition the
        // application may still be in, until it is programmed again.
        AppOutcome::Blocked { partition, .. } => (Some(partition.clone()), None),
        _ => (None, None),
    };
    VirtualServerStatus { conditions, partition, application, members, observed_generation: generation }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InvalidSpec, Listener, ListenerProtocol, ObjectKey, SourceId, SourceKind, UnresolvedRef};

    fn included(members: usize, unresolved: Vec<UnresolvedRef>) -> AppOutcome {
        AppOutcome::Included { partition: "k8s".into(), application: "ns_web".into(), members, unresolved }
    }

    fn programmed() -> ProgrammingState {
        ProgrammingState::Programmed { partition: "k8s".into(), bigip: "https://bigip".into() }
    }

    fn get<'a>(status: &'a VirtualServerStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).expect("condition present")
    }

    #[test]
    fn healthy_object_is_ready_with_generation_everywhere() {
        let s = virtual_server_status(&included(3, vec![]), &programmed(), Some(7), None, "T1");
        assert_eq!(s.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), CONDITION_TYPES);
        assert!(s.conditions.iter().all(|c| c.status == "True" && c.observed_generation == Some(7)));
        assert_eq!(s.members, Some(3));
        assert_eq!(s.partition.as_deref(), Some("k8s"));
        assert_eq!(s.observed_generation, Some(7));
    }

    #[test]
    fn missing_service_is_programmed_but_not_ready() {
        let unresolved = vec![UnresolvedRef::ServiceNotFound { pool: "web".into(), service: "web".into() }];
        let s = virtual_server_status(&included(0, unresolved), &programmed(), Some(1), None, "T1");
        assert_eq!(get(&s, "ResolvedRefs").status, "False");
        assert_eq!(get(&s, "ResolvedRefs").reason, "ServiceNotFound");
        assert_eq!(get(&s, "Programmed").status, "True");
        assert_eq!(get(&s, "Ready").reason, "ServiceNotFound");
    }

    #[test]
    fn no_members_is_not_ready() {
        let s = virtual_server_status(&included(0, vec![]), &programmed(), Some(1), None, "T1");
        assert_eq!(get(&s, "Ready").reason, "NoMembers");
    }

    #[test]
    fn invalid_and_conflicting_objects_are_not_accepted_nor_programmed() {
        let invalid = AppOutcome::Invalid(InvalidSpec::Port { value: 0 });
        let s = virtual_server_status(&invalid, &ProgrammingState::NotAttempted, Some(2), None, "T1");
        assert_eq!((get(&s, "Accepted").status.as_str(), get(&s, "Accepted").reason.as_str()), ("False", "Invalid"));
        assert_eq!(get(&s, "Programmed").status, "False");
        assert!(get(&s, "Ready").message.contains("spec.port"));
        assert_eq!(s.members, None);

        let conflict = AppOutcome::AddressConflict {
            listener: Listener {
                address: "10.0.0.1".parse().expect("ip"),
                route_domain: 0,
                port: 80,
                protocol: ListenerProtocol::Tcp,
            },
            holder: SourceId {
                kind: SourceKind::TransportServer,
                key: ObjectKey { namespace: "a".into(), name: "b".into() },
            },
        };
        let s = virtual_server_status(&conflict, &ProgrammingState::NotAttempted, Some(2), None, "T1");
        assert_eq!(get(&s, "Accepted").reason, "AddressConflict");
        assert!(
            get(&s, "Accepted").message.contains("10.0.0.1:80 (tcp) is already used by TransportServer a/b"),
            "{}",
            get(&s, "Accepted").message
        );
    }

    #[test]
    fn a_missing_tls_secret_blocks_programming_but_not_acceptance() {
        let blocked = AppOutcome::Blocked {
            partition: "k8s".into(),
            unresolved: vec![UnresolvedRef::SecretNotFound { field: "spec.tls.secretName", secret: "web-tls".into() }],
        };
        let s = virtual_server_status(&blocked, &ProgrammingState::NotAttempted, Some(3), None, "T1");
        assert_eq!(get(&s, "Accepted").status, "True");
        assert_eq!(
            (get(&s, "ResolvedRefs").status.as_str(), get(&s, "ResolvedRefs").reason.as_str()),
            ("False", "SecretNotFound")
        );
        assert_eq!(
            (get(&s, "Programmed").status.as_str(), get(&s, "Programmed").reason.as_str()),
            ("False", "SecretNotFound")
        );
        assert!(get(&s, "Programmed").message.contains("web-tls"));
        assert_eq!(get(&s, "Ready").status, "False");
        assert_eq!(s.partition.as_deref(), Some("k8s"), "the partition it may still be in");
        assert_eq!(s.application, None);
    }

    #[test]
    fn a_missing_bigip_object_is_an_unresolved_reference_that_blocks_programming() {
        let failed = ProgrammingState::Failed {
            reason: FailureReason::BigIpObjectNotFound,
            message: "spec.wafPolicy: the BIG-IP has no WAF policy /Common/linux-hihg".into(),
        };
        let s = virtual_server_status(&included(2, vec![]), &failed, Some(4), None, "T1");
        assert_eq!(get(&s, "Accepted").status, "True");
        for type_ in ["ResolvedRefs", "Programmed", "Ready"] {
            assert_eq!(get(&s, type_).status, "False", "{type_}");
            assert_eq!(get(&s, type_).reason, "BigIpObjectNotFound", "{type_}");
            assert!(get(&s, type_).message.contains("/Common/linux-hihg"), "{type_}");
        }
    }

    #[test]
    fn failed_programming_carries_the_reason() {
        let failed =
            ProgrammingState::Failed { reason: FailureReason::BigIpUnreachable, message: "connection refused".into() };
        let s = virtual_server_status(&included(2, vec![]), &failed, Some(1), None, "T1");
        assert_eq!(get(&s, "Programmed").reason, "BigIpUnreachable");
        assert_eq!(get(&s, "Ready").status, "False");
    }

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let first = virtual_server_status(&included(0, vec![]), &programmed(), Some(1), None, "T1");
        let second = virtual_server_status(&included(2, vec![]), &programmed(), Some(1), Some(&first), "T2");
        assert_eq!(get(&second, "Programmed").last_transition_time, "T1");
        assert_eq!(get(&second, "Ready").last_transition_time, "T2");
        // Same inputs again: the status is equal, so nothing is written.
        let third = virtual_server_status(&included(2, vec![]), &programmed(), Some(1), Some(&second), "T3");
        assert_eq!(second, third);
    }
}
