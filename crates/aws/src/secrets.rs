//! Secrets from AWS Secrets Manager, fetched once and kept across invocations for up to a
//! time-to-live (so a secret removed from the value stops working within it). A value is also
//! fetched again when it stops working (a signature that does not verify, a token GitHub
//! rejects), at most once a second, so a flood of bad deliveries cannot flood Secrets Manager.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{LazySdk, SdkClient};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::warn;

const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How often a wrong signature may make an instance fetch the webhook secret again. Planned
/// rotations put both secrets in the value (a JSON list), so a mismatch is almost always a
/// bad or forged delivery, which must not turn into Secrets Manager calls.
pub const WEBHOOK_SECRET_REFRESH: Duration = Duration::from_secs(60);

/// Where secret values come from.
pub trait SecretSource: Send + Sync + fmt::Debug + 'static {
    /// The current value of the secret `id` (an ARN or a name).
    fn fetch(&self, id: &str) -> impl Future<Output = Result<String, SecretProblem>> + Send;
}

/// Secrets Manager.
pub type SecretsManager = SdkClient<Client>;

/// Secrets Manager, its client built from `sdk` on first use.
pub fn secrets_manager(sdk: Arc<LazySdk>) -> SecretsManager {
    SdkClient::on_first_use(sdk, Client::new)
}

impl SecretSource for SecretsManager {
    async fn fetch(&self, id: &str) -> Result<String, SecretProblem> {
        let out = self
            .get()
            .await
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let hint = match e.code() {
                    Some("ResourceNotFoundException") => {
                        "; create the secret or correct the function's secret setting"
                    }
                    Some("AccessDeniedException") => {
                        "; allow the function's role secretsmanager:GetSecretValue on it"
                    }
                    Some("DecryptionFailure") => {
                        "; allow the function's role kms:Decrypt on the secret's key"
                    }
                    _ => "",
                };
                SecretProblem::Fetch(crate::sdk_error_message(&e, hint))
            })?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or(SecretProblem::NotText)
    }
}

#[derive(Debug)]
struct State<T> {
    value: Option<Arc<T>>,
    fetched_at: Option<Instant>,
    last_refresh: Option<Instant>,
}

/// One secret, parsed by `parse` and cached.
#[derive(Debug)]
pub struct Cached<S, T> {
    source: Arc<S>,
    id: String,
    parse: fn(&str) -> Result<T, SecretProblem>,
    ttl: Duration,
    min_refresh: Duration,
    state: Mutex<State<T>>,
}

/// A failure to read a secret; never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the secret {id}: {problem}")]
pub struct SecretError {
    pub id: String,
    pub problem: SecretProblem,
}

/// What went wrong with a secret: Secrets Manager's answer, or a value that is not what the
/// function needs. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    /// Secrets Manager did not give the value: its code and message, and a hint.
    #[error("{0}")]
    Fetch(String),
    #[error("the secret has no string value; store it as text")]
    NotText,
    #[error(
        "the value starts with `[` but is not a JSON list of strings ({0}); store one secret, or a list such as [\"new\", \"old\"]"
    )]
    NotAList(String),
    #[error("the list of webhook secrets is empty or holds an empty secret")]
    EmptyInList,
    #[error("the webhook secret is empty; store the secret GitHub signs with")]
    Empty,
    #[error("the value is not a GitHub token; store the token alone")]
    NotAToken,
    /// The App's private key cannot be used: why, never the key.
    #[error("{0}")]
    NotAnAppKey(String),
}

impl<S: SecretSource, T> Cached<S, T> {
    pub fn new(
        source: Arc<S>,
        id: String,
        parse: fn(&str) -> Result<T, SecretProblem>,
        ttl: Duration,
    ) -> Self {
        Self {
            source,
            id,
            parse,
            ttl,
            min_refresh: MIN_REFRESH_INTERVAL,
            state: Mutex::new(State {
                value: None,
                fetched_at: None,
                last_refresh: None,
            }),
        }
    }

    /// Refreshes (on a value that did not work) happen at most once per `interval`.
    pub fn refreshed_at_most_every(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// The cached value, fetched on first use and after the time-to-live. When fetching again
    /// fails, the expired value is used rather than failing the request.
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        let mut state = self.state.lock().await;
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
        match (&state.value, fresh) {
            (Some(v), true) => Ok(v.clone()),
            (Some(v), false) => {
                let stale = v.clone();
                match self.load(&mut state).await {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        warn!(error = %e, "keeping the expired secret value");
                        state.fetched_at = Some(Instant::now());
                        Ok(stale)
                    }
                }
            }
            (None, _) => self.load(&mut state).await,
        }
    }

    /// Fetches the value again because `stale` did not work. Returns `None` when there is
    /// nothing newer to try: another caller already refreshed past `stale`, or a refresh
    /// happened less than the minimum interval ago.
    pub async fn refresh(&self, stale: &Arc<T>) -> Result<Option<Arc<T>>, SecretError> {
        let mut state = self.state.lock().await;
        if let Some(v) = &state.value
            && !Arc::ptr_eq(v, stale)
        {
            return Ok(Some(v.clone()));
        }
        if state
            .last_refresh
            .is_some_and(|t| t.elapsed() < self.min_refresh)
        {
            return Ok(None);
        }
        state.last_refresh = Some(Instant::now());
        self.load(&mut state).await.map(Some)
    }

    async fn load(&self, state: &mut State<T>) -> Result<Arc<T>, SecretError> {
        let error = |problem: SecretProblem| SecretError {
            id: self.id.clone(),
            problem,
        };
        let text = self.source.fetch(&self.id).await.map_err(error)?;
        let value = Arc::new((self.parse)(&text).map_err(error)?);
        state.value = Some(value.clone());
        state.fetched_at = Some(Instant::now());
        Ok(value)
    }
}

/// The accepted webhook secrets: the value itself, or, while a secret is being rotated, a JSON
/// list of secrets (`["new", "old"]`), each of which is accepted.
pub fn webhook_secrets(text: &str) -> Result<Vec<Vec<u8>>, SecretProblem> {
    if text.trim_start().starts_with('[') {
        let list: Vec<String> =
            serde_json::from_str(text).map_err(|e| SecretProblem::NotAList(e.to_string()))?;
        if list.is_empty() || list.iter().any(String::is_empty) {
            return Err(SecretProblem::EmptyInList);
        }
        return Ok(list.into_iter().map(String::into_bytes).collect());
    }
    if text.is_empty() {
        return Err(SecretProblem::Empty);
    }
    Ok(vec![text.as_bytes().to_vec()])
}

/// A GitHub token: the value with surrounding whitespace removed.
pub fn github_token(text: &str) -> Result<String, SecretProblem> {
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(SecretProblem::NotAToken);
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
    }

    impl SecretSource for Counting {
        async fn fetch(&self, _id: &str) -> Result<String, SecretProblem> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(format!("secret-{n}"))
        }
    }

    /// A cache of webhook secrets over a counting source, with a five-minute time-to-live.
    fn counted() -> (Arc<Counting>, Cached<Counting, Vec<Vec<u8>>>) {
        let source = Arc::new(Counting::default());
        let cache = Cached::new(
            source.clone(),
            "id".into(),
            webhook_secrets,
            Duration::from_secs(300),
        );
        (source, cache)
    }

    #[tokio::test(start_paused = true)]
    async fn values_are_cached_and_refreshed_at_most_once_a_second() {
        let (source, cache) = counted();
        let first = cache.get().await.unwrap();
        assert_eq!(cache.get().await.unwrap(), first);
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        let second = cache.refresh(&first).await.unwrap().unwrap();
        assert_eq!(second[0], b"secret-1");
        // A caller still holding the first value gets the newer one without a fetch.
        assert!(Arc::ptr_eq(
            &cache.refresh(&first).await.unwrap().unwrap(),
            &second
        ));
        assert!(cache.refresh(&second).await.unwrap().is_none());
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert!(cache.refresh(&second).await.unwrap().is_some());
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
        // Past the time-to-live, the next use fetches again.
        let current = cache.get().await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(!Arc::ptr_eq(&cache.get().await.unwrap(), &current));
        assert_eq!(source.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_signatures_refresh_the_webhook_secret_at_most_once_a_minute() {
        let (source, cache) = counted();
        let cache = cache.refreshed_at_most_every(WEBHOOK_SECRET_REFRESH);
        let first = cache.get().await.unwrap();
        let second = cache.refresh(&first).await.unwrap().unwrap();
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(500)).await;
            assert!(cache.refresh(&second).await.unwrap().is_none());
        }
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            2,
            "50 s of mismatches: no fetch"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(cache.refresh(&second).await.unwrap().is_some());
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn secret_values_are_one_secret_or_a_list_while_rotating() {
        assert_eq!(webhook_secrets("s3cr3t").unwrap(), [b"s3cr3t".to_vec()]);
        assert_eq!(
            webhook_secrets(r#"["new", "old"]"#).unwrap(),
            [b"new".to_vec(), b"old".to_vec()]
        );
        assert!(
            webhook_secrets("[new")
                .unwrap_err()
                .to_string()
                .contains("JSON list")
        );
        assert!(webhook_secrets("[]").is_err());
        assert!(webhook_secrets("").is_err());
        assert_eq!(github_token("ghp_abc\n").unwrap(), "ghp_abc");
        assert!(github_token("a b").is_err());
    }
}
