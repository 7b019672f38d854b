//! Authentication the way the BIG-IP REST framework does it: tokens from
//! `POST /mgmt/shared/authn/login` sent as `X-F5-Auth-Token`, or HTTP Basic on each request.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rand::Rng;
use serde_json::{json, Value};

use super::reply::{parse_json_body, respond, rest_error};
use super::state::{lock, SimulatorState};
use super::timefmt::{epoch_micros, rfc3339};

pub(super) const TOKEN_HEADER: &str = "X-F5-Auth-Token";

/// The longest token lifetime BIG-IP accepts, in seconds.
const MAX_TOKEN_TIMEOUT_SECS: u64 = 36_000;
const TOKEN_LENGTH: usize = 26;
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Expired tokens are forgotten this long after they expire.
const EXPIRED_TOKEN_RETENTION: Duration = Duration::from_secs(3600);

struct IssuedToken {
    user: String,
    timeout: Duration,
    start: SystemTime,
    last_update: SystemTime,
    expires: SystemTime,
}

impl IssuedToken {
    fn describe(&self, token: &str) -> Value {
        json!({
            "token": token,
            "name": token,
            "userName": self.user,
            "authProviderName": "tmos",
            "user": {"link": format!("https://localhost/mgmt/shared/authz/users/{}", self.user)},
            "timeout": self.timeout.as_secs(),
            "startTime": rfc3339(self.start),
            "address": "127.0.0.1",
            "partition": "[All]",
            "generation": 1,
            "lastUpdateMicros": epoch_micros(self.last_update),
            "expirationMicros": epoch_micros(self.expires),
            "kind": "shared:authz:tokens:authtokenitemstate",
            "selfLink": format!("https://localhost/mgmt/shared/authz/tokens/{token}"),
        })
    }
}

enum TokenStatus {
    Valid,
    Unknown,
    Expired,
}

/// Tokens issued by this simulator.
#[derive(Default)]
pub(super) struct TokenStore {
    tokens: HashMap<String, IssuedToken>,
}

impl TokenStore {
    fn issue(&mut self, user: &str, ttl: Duration, now: SystemTime) -> Value {
        self.tokens.retain(|_, issued| issued.expires + EXPIRED_TOKEN_RETENTION > now);
        let mut rng = rand::rng();
        let token: String =
            (0..TOKEN_LENGTH).map(|_| char::from(TOKEN_ALPHABET[rng.random_range(0..TOKEN_ALPHABET.len())])).collect();
        let issued =
            IssuedToken { user: user.to_owned(), timeout: ttl, start: now, last_update: now, expires: now + ttl };
        let description = issued.describe(&token);
        self.tokens.insert(token, issued);
        description
    }

    fn status(&self, token: &str, now: SystemTime) -> TokenStatus {
        match self.tokens.get(token) {
            None => TokenStatus::Unknown,
            Some(issued) if issued.expires <= now => TokenStatus::Expired,
            Some(_) => TokenStatus::Valid,
        }
    }

    /// Expires every token issued so far (the `expire_tokens_now` fault).
    pub(super) fn expire_all(&mut self) {
        for issued in self.tokens.values_mut() {
            issued.expires = UNIX_EPOCH;
        }
    }
}

/// `POST /mgmt/shared/authn/login`.
pub(super) async fn login(State(sim): State<SimulatorState>, body: Bytes) -> Response {
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    let username = body.get("username").and_then(Value::as_str).unwrap_or_default();
    let password = body.get("password").and_then(Value::as_str).unwrap_or_default();
    let provider = body.get("loginProviderName").and_then(Value::as_str).unwrap_or("tmos");
    let settings = &sim.shared().settings;
    if username != settings.username || password != settings.password {
        tracing::info!(username, "login refused");
        sim.shared().counts.unauthorized.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return rest_error(StatusCode::UNAUTHORIZED, 3, "Authentication failed.");
    }
    sim.shared().counts.logins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let token = lock(&sim.shared().tokens).issue(username, settings.token_ttl, SystemTime::now());
    respond(
        StatusCode::OK,
        json!({
            "username": username,
            "loginReference": {"link": "https://localhost/mgmt/cm/system/authn/providers/tmos/1f44a60e-11a7-3c51-a49f-82983026b41b/login"},
            "loginProviderName": provider,
            "token": token,
            "generation": 0,
            "lastUpdateMicros": 0,
        }),
    )
}

/// Token maintenance: `GET`, `PATCH {"timeout": N}` and `DELETE` on `/mgmt/shared/authz/tokens/<token>`.
pub(super) fn routes() -> Router<SimulatorState> {
    Router::new().route("/mgmt/shared/authz/tokens/{token}", get(get_token).patch(patch_token).delete(delete_token))
}

fn token_not_found(token: &str) -> Response {
    rest_error(StatusCode::NOT_FOUND, 1, format!("Token {token} not found."))
}

async fn get_token(State(sim): State<SimulatorState>, Path(token): Path<String>) -> Response {
    match lock(&sim.shared().tokens).tokens.get(&token) {
        Some(issued) => respond(StatusCode::OK, issued.describe(&token)),
        None => token_not_found(&token),
    }
}

async fn patch_token(State(sim): State<SimulatorState>, Path(token): Path<String>, body: Bytes) -> Response {
    let body = match parse_json_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    let Some(timeout) = body.get("timeout").and_then(Value::as_u64).filter(|t| *t <= MAX_TOKEN_TIMEOUT_SECS) else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            1,
            format!("timeout must be an integer between 0 and {MAX_TOKEN_TIMEOUT_SECS} seconds"),
        );
    };
    let mut tokens = lock(&sim.shared().tokens);
    let Some(issued) = tokens.tokens.get_mut(&token) else {
        return token_not_found(&token);
    };
    issued.timeout = Duration::from_secs(timeout);
    issued.last_update = SystemTime::now();
    issued.expires = issued.start + issued.timeout;
    respond(StatusCode::OK, issued.describe(&token))
}

async fn delete_token(State(sim): State<SimulatorState>, Path(token): Path<String>) -> Response {
    match lock(&sim.shared().tokens).tokens.remove(&token) {
        Some(issued) => respond(StatusCode::OK, issued.describe(&token)),
        None => token_not_found(&token),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = rest_error(StatusCode::UNAUTHORIZED, 1, message);
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Enterprise Manager\""));
    response
}

/// Middleware admitting requests with a valid token or correct Basic credentials.
pub(super) async fn require_auth(State(sim): State<SimulatorState>, request: Request, next: Next) -> Response {
    match authenticate(&sim, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(message) => {
            sim.shared().counts.unauthorized.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            unauthorized(message)
        }
    }
}

/// `Err` carries the message of the 401 answer.
fn authenticate(sim: &SimulatorState, headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(token) = headers.get(TOKEN_HEADER) {
        let token = token.to_str().unwrap_or_default();
        return match lock(&sim.shared().tokens).status(token, SystemTime::now()) {
            TokenStatus::Valid => Ok(()),
            TokenStatus::Unknown => Err("X-F5-Auth-Token does not exist."),
            TokenStatus::Expired => Err("X-F5-Auth-Token has expired."),
        };
    }
    if let Some((username, password)) = headers.get(AUTHORIZATION).and_then(basic_credentials) {
        let settings = &sim.shared().settings;
        return if username == settings.username && password == settings.password {
            Ok(())
        } else {
            Err("Authentication failed.")
        };
    }
    Err("X-F5-Auth-Token does not exist.")
}

/// `Authorization: Basic <base64(user:password)>`.
fn basic_credentials(header: &HeaderValue) -> Option<(String, String)> {
    let encoded = header.to_str().ok()?.strip_prefix("Basic ")?.trim();
    let decoded = String::from_utf8(decode_base64(encoded)?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// Standard base64 with optional padding; `None` for anything else.
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    fn sextet(byte: u8) -> Option<u32> {
        Some(u32::from(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let trimmed = encoded.trim_end_matches('=');
    if encoded.len() - trimmed.len() > 2 {
        return None;
    }
    let mut output = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in trimmed.bytes() {
        buffer = (buffer << 6) | sextet(byte)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            output.push(u8::try_from((buffer >> bits) & 0xFF).ok()?);
        }
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic_credentials() {
        let header = HeaderValue::from_static("Basic YWRtaW46YWRtaW4=");
        assert_eq!(basic_credentials(&header), Some(("admin".to_owned(), "admin".to_owned())));
        let with_colon = HeaderValue::from_static("Basic dXNlcjpwYTpzcw==");
        assert_eq!(basic_credentials(&with_colon), Some(("user".to_owned(), "pa:ss".to_owned())));
        assert_eq!(basic_credentials(&HeaderValue::from_static("Basic !!!")), None);
        assert_eq!(basic_credentials(&HeaderValue::from_static("Bearer abc")), None);
    }

    #[test]
    fn base64_without_padding() {
        assert_eq!(decode_base64("YQ"), Some(b"a".to_vec()));
        assert_eq!(decode_base64("YWI"), Some(b"ab".to_vec()));
        assert_eq!(decode_base64("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(decode_base64("YQ==="), None);
    }

    #[test]
    fn tokens_expire() {
        let mut store = TokenStore::default();
        let now = SystemTime::now();
        let issued = store.issue("admin", Duration::from_secs(10), now);
        let token = issued["token"].as_str().expect("token string").to_owned();
        assert_eq!(token.len(), TOKEN_LENGTH);
        assert!(token.bytes().all(|b| TOKEN_ALPHABET.contains(&b)));
        assert!(matches!(store.status(&token, now), TokenStatus::Valid));
        assert!(matches!(store.status(&token, now + Duration::from_secs(11)), TokenStatus::Expired));
        assert!(matches!(store.status("NOPE", now), TokenStatus::Unknown));
        store.expire_all();
        assert!(matches!(store.status(&token, now), TokenStatus::Expired));
    }
}
