//! Connection settings for a BIG-IP.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Username and password for iControl REST. `Debug` never prints the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into() }
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// Reads `username` and `password` files from a directory (a mounted Secret), or a single
    /// file holding `username:password`.
    pub fn from_path(path: &std::path::Path) -> Result<Self, std::io::Error> {
        let trim = |s: String| s.trim_end_matches(['\n', '\r']).to_string();
        if path.is_dir() {
            let username = trim(std::fs::read_to_string(path.join("username"))?);
            let password = trim(std::fs::read_to_string(path.join("password"))?);
            return Ok(Self::new(username, password));
        }
        let text = trim(std::fs::read_to_string(path)?);
        match text.split_once(':') {
            Some((user, pass)) => Ok(Self::new(user, pass)),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: expected 'username:password'", path.display()),
            )),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// How the BIG-IP's TLS certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsVerification {
    /// Against the system's trust store (the default).
    System,
    /// Against the CA certificates in a PEM file.
    CaBundle(PathBuf),
    /// Not at all. Only for labs: anyone on the path can read the credentials.
    Insecure,
}

/// Retries of AS3 requests the BIG-IP answered with 503 (busy with another declaration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone)]
pub struct BigIpConfig {
    /// Base URL, e.g. `https://10.0.0.5` or `https://bigip.example.com:8443`.
    pub url: String,
    pub credentials: Credentials,
    pub tls: TlsVerification,
    /// Time-out of one HTTP request.
    pub request_timeout: Duration,
    /// The longest wait between two polls of an async AS3 task (the first poll comes after
    /// [`FIRST_TASK_POLL`], each wait then doubles up to this), and for how long at most.
    pub task_poll_interval: Duration,
    pub task_timeout: Duration,
    pub retry: RetryPolicy,
    /// Sent as `User-Agent`, so BIG-IP logs (and the simulator's history) show which operator
    /// replica made a change.
    pub user_agent: String,
}

/// The first wait before polling an async AS3 task again: a small declaration (one
/// application through the per-application API) is often done within milliseconds, and a
/// fixed 500 ms wait was most of a change's latency.
pub const FIRST_TASK_POLL: Duration = Duration::from_millis(10);

impl BigIpConfig {
    pub fn new(url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_string(),
            credentials,
            tls: TlsVerification::System,
            request_timeout: Duration::from_secs(60),
            task_poll_interval: Duration::from_millis(500),
            task_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            user_agent: concat!("bigip-operator/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}
