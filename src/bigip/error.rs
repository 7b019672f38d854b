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
