//! Status conditions: computed purely from the model's outcome and the programming result,
//! then written with server-side apply only when they differ from what is stored.

pub mod conditions;
pub mod listener_group;

pub use conditions::{virtual_server_status, FailureReason, ProgrammingState, CONDITION_TYPES};
