//! The one GitHub REST API client: every request flavor-ci makes to GitHub (trees, blobs,
//! comparisons, refs, commit statuses, the health probes) is built and sent here, with the same
//! headers, API version, user agent and timeouts, one retry when GitHub is unavailable, rate
//! limits briefly or does not answer, one fresh token when it rejects the token (401), and a
//! log line naming the permission a refused call (403, 404) needs.
//!
//! How a request authenticates is an [`Auth`]: no token, a token read once, or the token in a
//! Secrets Manager secret (cached, fetched again when GitHub rejects it). Callers never see
//! tokens, and no token reaches a log.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, Request};
use tokio::time::{Instant, timeout};
use tracing::warn;

use crate::LazyHttpsClient;
use crate::secrets::{Cached, SecretSource};

pub mod app;
pub mod checks;
#[cfg(any(test, feature = "memory"))]
pub mod local;

/// The REST API version every request asks for.
pub const API_VERSION: &str = "2022-11-28";
/// The user agent GitHub requires.
pub const AGENT: &str = "flavor-ci";
/// The pause before the second attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// The longest wait a rate limit may name for the second attempt to be made at once.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
/// Tree listings of huge directories stay far below this.
const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// How a request authenticates.
pub trait Auth: Send + Sync + fmt::Debug {
    /// Whether requests carry a token at all.
    fn has_token(&self) -> bool {
        true
    }

    /// The token to send, if any.
    fn token(&self) -> impl Future<Output = Result<Option<Arc<String>>, AuthError>> + Send;

    /// A newer token after GitHub rejected `stale`; `None` when there is none.
    fn refresh(
        &self,
        stale: &Arc<String>,
    ) -> impl Future<Output = Result<Option<Arc<String>>, AuthError>> + Send;

    /// Whether this is a GitHub App's installation, which alone may write check runs.
    fn is_app(&self) -> bool {
        false
    }

    /// The installation a delivery came through (`installation.id`), which saves looking it
    /// up; ignored by other kinds of authentication.
    fn installation_hint(&self, _id: u64) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The token could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// No token: public repositories, at GitHub's lower rate limit.
#[derive(Debug, Clone, Copy)]
pub struct Anonymous;

impl Auth for Anonymous {
    fn has_token(&self) -> bool {
        false
    }

    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        Ok(None)
    }

    async fn refresh(&self, _stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        Ok(None)
    }
}

/// A token read once (the command line's checks); never refreshed.
#[derive(Clone)]
pub struct Token(pub Arc<String>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Auth for Token {
    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        Ok(Some(self.0.clone()))
    }

    async fn refresh(&self, _stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        Ok(None)
    }
}

/// The token in a Secrets Manager secret, fetched again once GitHub rejects it (a rotation).
impl<K: SecretSource> Auth for Cached<K, String> {
    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        self.get()
            .await
            .map(Some)
            .map_err(|e| AuthError(e.to_string()))
    }

    async fn refresh(&self, stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        Cached::refresh(self, stale)
            .await
            .map_err(|e| AuthError(e.to_string()))
    }
}

/// A token when there is one.
impl<A: Auth> Auth for Option<A> {
    fn has_token(&self) -> bool {
        self.as_ref().is_some_and(Auth::has_token)
    }

    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        match self {
            Some(a) => a.token().await,
            None => Ok(None),
        }
    }

    async fn refresh(&self, stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        match self {
            Some(a) => a.refresh(stale).await,
            None => Ok(None),
        }
    }
}

/// How long one attempt and the whole call (both attempts) may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub attempt: Duration,
    pub total: Duration,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub method: Method,
    /// From the API root: `/repos/{owner}/{repo}/…`.
    pub path: &'a str,
    /// A JSON body.
    pub body: Option<&'a [u8]>,
    /// The permission the call needs (`Contents: read`), named in the log when GitHub refuses.
    pub permission: &'static str,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str, permission: &'static str) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            permission,
        }
    }

    pub fn post(path: &'a str, body: &'a [u8], permission: &'static str) -> Self {
        Self {
            method: Method::POST,
            path,
            body: Some(body),
            permission,
        }
    }
}

/// GitHub's answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `METHOD url`, for messages.
    pub call: String,
    /// Whether a token was sent.
    pub with_token: bool,
    /// Whether a second attempt was made.
    pub retried: bool,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// GitHub's `message` from an error body, or the start of the body.
    pub fn message(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Message {
            message: String,
        }
        match serde_json::from_slice::<Message>(&self.body) {
            Ok(m) => m.message,
            Err(_) => String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned(),
        }
    }

    /// Whether GitHub is rate limiting the token (429, or 403 with the limit's headers).
    pub fn rate_limited(&self) -> bool {
        self.status == 429
            || (self.status == 403
                && (self.header("x-ratelimit-remaining") == Some("0")
                    || self.header("retry-after").is_some()))
    }

    /// How long a rate limit asks to wait, when it says.
    fn rate_limit_wait(&self) -> Option<Duration> {
        if let Some(after) = self
            .header("retry-after")
            .and_then(|a| a.parse::<u64>().ok())
        {
            return Some(Duration::from_secs(after));
        }
        let reset = self.header("x-ratelimit-reset")?.parse::<u64>().ok()?;
        let now = crate::undo::now_ms() / 1000;
        Some(Duration::from_secs(reset.saturating_sub(now)))
    }
}

/// No answer from GitHub, or no request sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The token could not be read.
    #[error("{0}")]
    Auth(AuthError),
    #[error("the GitHub token holds characters a header cannot carry; store the token alone")]
    TokenHeader,
    /// `METHOD url` and why no request could be built.
    #[error("cannot build the request for {0}: {1}")]
    Build(String, String),
    /// No HTTPS client (root certificates).
    #[error("{0} cannot be sent: {1}")]
    Client(String, String),
    /// The connection failed.
    #[error("{0} failed: {1}")]
    Transport(String, String),
    /// No answer within the attempt's time.
    #[error("{0} got no answer within {1} s")]
    Timeout(String, u64),
    /// The answer's body could not be read.
    #[error("reading the answer to {0} failed: {1}")]
    Body(String, String),
}

impl CallError {
    /// Worth one more attempt: GitHub did not answer.
    fn transient(&self) -> bool {
        matches!(self, CallError::Transport(..) | CallError::Timeout(..))
    }
}

/// A GitHub (or GitHub Enterprise Server) REST API.
#[derive(Debug, Clone)]
pub struct GitHubClient {
    https: LazyHttpsClient,
    base: Arc<str>,
    timing: Timing,
}

impl GitHubClient {
    /// A client of the API at `base` (`https://api.github.com`); the HTTPS client is built on
    /// first use.
    pub fn new(https: LazyHttpsClient, base: &str, timing: Timing) -> Self {
        Self {
            https,
            base: base.trim_end_matches('/').into(),
            timing,
        }
    }

    /// The API root, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `call`: a second attempt follows a server error, a brief rate limit or no answer
    /// while time is left; a rejected token (401) is fetched again once.
    pub async fn send(&self, auth: &impl Auth, call: &Call<'_>) -> Result<Answer, CallError> {
        let deadline = Instant::now() + self.timing.total;
        let mut token = auth.token().await.map_err(CallError::Auth)?;
        let (mut refreshed, mut retried) = (false, false);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = self.timing.attempt.min(left).max(Duration::from_millis(1));
            let result = self.attempt(call, token.as_deref(), limit).await;
            if let Ok(answer) = &result
                && answer.status == 401
                && !refreshed
            {
                refreshed = true;
                let Some(stale) = &token else {
                    return result;
                };
                match auth.refresh(stale).await.map_err(CallError::Auth)? {
                    Some(fresh) => token = Some(fresh),
                    None => return result,
                }
                continue;
            }
            // A second attempt only while there is time for it to be answered.
            let pause = match &result {
                Ok(answer) => worth_again(answer),
                Err(e) => e.transient().then_some(RETRY_PAUSE),
            }
            .filter(|pause| !retried && left > *pause + Duration::from_millis(100));
            if let Some(pause) = pause {
                retried = true;
                tokio::time::sleep(pause).await;
                continue;
            }
            let mut answer = result?;
            if matches!(answer.status, 403 | 404) && !answer.rate_limited() {
                warn!(
                    call = %answer.call,
                    status = answer.status,
                    permission = call.permission,
                    "GitHub refused the call: the token needs this permission on the repository (or the object does not exist)"
                );
            }
            answer.retried = retried;
            return Ok(answer);
        }
    }

    /// Sends `call` and reads a successful answer as JSON; any other answer is returned as it is.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        auth: &impl Auth,
        call: &Call<'_>,
    ) -> Result<Result<T, serde_json::Error>, Result<Answer, CallError>> {
        match self.send(auth, call).await {
            Ok(answer) if answer.is_success() => Ok(serde_json::from_slice(&answer.body)),
            Ok(answer) => Err(Ok(answer)),
            Err(e) => Err(Err(e)),
        }
    }

    async fn attempt(
        &self,
        call: &Call<'_>,
        token: Option<&String>,
        limit: Duration,
    ) -> Result<Answer, CallError> {
        let url = self.url(call.path);
        let what = format!("{} {url}", call.method);
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(&url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(USER_AGENT, AGENT);
        if call.body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(token) = token {
            let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| CallError::TokenHeader)?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let body = call.body.map(Bytes::copy_from_slice).unwrap_or_default();
        let request = request
            .body(Full::new(body))
            .map_err(|e| CallError::Build(what.clone(), e.to_string()))?;
        let client = self
            .https
            .get()
            .map_err(|e| CallError::Client(what.clone(), e.to_string()))?;
        let response = match timeout(limit, client.request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(CallError::Transport(what, e.to_string())),
            Err(_) => return Err(CallError::Timeout(what, self.timing.attempt.as_secs())),
        };
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Body(what.clone(), e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            headers: parts.headers,
            body,
            call: what,
            with_token: token.is_some(),
            retried: false,
        })
    }
}

/// The pause before a second attempt when `answer` is worth one: a server error, or a rate
/// limit that asks for a short wait at most.
fn worth_again(answer: &Answer) -> Option<Duration> {
    if (500..600).contains(&answer.status) {
        return Some(RETRY_PAUSE);
    }
    if !answer.rate_limited() {
        return None;
    }
    match answer.rate_limit_wait() {
        Some(wait) if wait > MAX_RATE_LIMIT_WAIT => None,
        Some(wait) => Some(wait.max(RETRY_PAUSE)),
        None => Some(RETRY_PAUSE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, &str)]) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Answer {
            status,
            headers: map,
            body: Bytes::from_static(br#"{"message":"Bad credentials"}"#),
            call: "GET https://api.github.com/x".into(),
            with_token: true,
            retried: false,
        }
    }

    #[test]
    fn server_errors_and_brief_rate_limits_are_tried_again_long_ones_not() {
        assert_eq!(worth_again(&answer(502, &[])), Some(RETRY_PAUSE));
        assert_eq!(
            worth_again(&answer(429, &[("retry-after", "1")])),
            Some(Duration::from_secs(1))
        );
        assert_eq!(worth_again(&answer(429, &[("retry-after", "60")])), None);
        assert_eq!(
            worth_again(&answer(403, &[("x-ratelimit-remaining", "0")])),
            Some(RETRY_PAUSE)
        );
        assert_eq!(worth_again(&answer(403, &[])), None);
        assert_eq!(worth_again(&answer(404, &[])), None);
        assert_eq!(worth_again(&answer(422, &[])), None);
        assert_eq!(answer(401, &[]).message(), "Bad credentials");
    }

    /// A source whose value changes once: the second fetch returns the new token.
    #[derive(Debug, Default)]
    struct Rotating(std::sync::atomic::AtomicUsize);

    impl SecretSource for Rotating {
        async fn fetch(&self, _id: &str) -> Result<String, crate::secrets::SecretProblem> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(format!("token-{n}"))
        }
    }

    #[tokio::test]
    async fn a_cached_secret_authenticates_and_refreshes_once_rejected() {
        let cached = Cached::new(
            Arc::new(Rotating::default()),
            "token".into(),
            crate::secrets::github_token,
            Duration::from_secs(300),
        );
        let first = Auth::token(&cached).await.unwrap().unwrap();
        assert_eq!(first.as_str(), "token-0");
        let fresh = Auth::refresh(&cached, &first).await.unwrap().unwrap();
        assert_eq!(fresh.as_str(), "token-1");
        assert_eq!(Auth::token(&None::<Token>).await.unwrap(), None);
        assert_eq!(format!("{:?}", Token(first)), "Token(…)");
    }
}
