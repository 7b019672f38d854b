use std::time::Duration;

/// Failures talking to the BIG-IP. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum BigIpError {
    #[error("BIG-IP {url} unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("BIG-IP login as {username:?} failed with HTTP {status}: {message}")]
    Login { username: String, status: u16, message: String },
    #[error("BIG-IP still busy with another declaration after {attempts} attempts (HTTP 503)")]
    Busy { attempts: u32 },
    #[error("AS3 rejected the declaration as invalid: {}", errors.join("; "))]
    InvalidDeclaration { errors: Vec<String> },
    #[error("BIG-IP answered {method} {path} with HTTP {status}: {body}")]
    Http { method: &'static str, path: String, status: u16, body: String },
    #[error("unexpected answer from BIG-IP to {path}: {detail}")]
    InvalidResponse { path: String, detail: String },
    #[error("AS3 task {task_id} did not finish within {timeout:?}")]
    TaskTimeout { task_id: String, timeout: Duration },
    /// AS3 keeps a bounded number of task records; under many concurrent posts the record of
    /// this one can be dropped before it is read. Its outcome is unknown: the next reconcile
    /// reads the BIG-IP again and posts what is still missing.
    #[error("AS3 no longer holds the record of task {task_id} (HTTP 404 while polling); its outcome is unknown")]
    TaskLost { task_id: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

impl BigIpError {
    /// A short CamelCase reason for conditions and metrics (see
    /// [`FailureReason`](crate::status::FailureReason)).
    pub fn reason(&self) -> &'static str {
        crate::status::FailureReason::from(self).as_str()
    }
}
