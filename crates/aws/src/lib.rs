//! What the flavor-ci Lambda functions share: loading the SDK configuration, the S3 object
//! store, and an HTTPS client on the SDK's own rustls stack (so there is no second TLS stack).

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub mod env;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "github")]
pub mod github_status;
pub mod logging;
#[cfg(feature = "github")]
pub mod secrets;
pub mod store;
pub mod undo;

/// The SDK configuration from the standard AWS environment, with timeouts that keep a stalled
/// endpoint from eating the invocation: 3 s to connect, `attempt` per attempt.
pub async fn load_config(attempt: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt)
                .build(),
        )
        .load()
        .await
}

/// The SDK configuration, loaded on first use. Loading it builds the SDK's HTTPS client, which
/// reads the platform's root certificates (a few hundred files on many systems); a function
/// that loads it lazily reaches its first request for work without that wait, and a request
/// that never calls AWS (a rejected delivery) never pays for it.
#[derive(Debug)]
pub struct LazySdk {
    attempt: Duration,
    config: tokio::sync::OnceCell<SdkConfig>,
}

impl LazySdk {
    /// `attempt` bounds each attempt of each call (see [`load_config`]).
    pub fn new(attempt: Duration) -> Arc<Self> {
        Arc::new(Self {
            attempt,
            config: tokio::sync::OnceCell::new(),
        })
    }

    pub async fn config(&self) -> &SdkConfig {
        self.config.get_or_init(|| load_config(self.attempt)).await
    }

    /// The region the SDK resolved (environment, then profile), or `""`, on first use.
    pub fn region(self: &Arc<Self>) -> FromSdk<String> {
        FromSdk::on_first_use(self.clone(), |c| {
            c.region().map(ToString::to_string).unwrap_or_default()
        })
    }
}

/// A value built from the SDK configuration on first use (a client, the region), or given
/// ready-made (tests, the CLI).
pub enum FromSdk<C> {
    Ready(C),
    OnFirstUse {
        sdk: Arc<LazySdk>,
        build: fn(&SdkConfig) -> C,
        client: tokio::sync::OnceCell<C>,
    },
}

impl<C> FromSdk<C> {
    pub fn on_first_use(sdk: Arc<LazySdk>, build: fn(&SdkConfig) -> C) -> Self {
        FromSdk::OnFirstUse {
            sdk,
            build,
            client: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn get(&self) -> &C {
        match self {
            FromSdk::Ready(client) => client,
            FromSdk::OnFirstUse { sdk, build, client } => {
                client
                    .get_or_init(|| async { build(sdk.config().await) })
                    .await
            }
        }
    }
}

/// An SDK client built from the shared configuration on first use (or given ready-made),
/// cheap to clone: the one lazy client type every service of the functions is.
pub struct SdkClient<C>(Arc<FromSdk<C>>);

impl<C> SdkClient<C> {
    /// A client `build` makes from `sdk`'s configuration when it is first used.
    pub fn on_first_use(sdk: Arc<LazySdk>, build: fn(&SdkConfig) -> C) -> Self {
        Self(Arc::new(FromSdk::on_first_use(sdk, build)))
    }

    /// A client built already (the command line, tests).
    pub fn ready(client: C) -> Self {
        Self(Arc::new(FromSdk::Ready(client)))
    }

    pub async fn get(&self) -> &C {
        self.0.get().await
    }
}

impl<C> Clone for SdkClient<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C> std::fmt::Debug for SdkClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SdkClient").field(&self.0).finish()
    }
}

impl<C> std::fmt::Debug for FromSdk<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = match self {
            FromSdk::Ready(_) => true,
            FromSdk::OnFirstUse { client, .. } => client.initialized(),
        };
        f.debug_struct("FromSdk").field("built", &built).finish()
    }
}

/// An S3 client; path-style addressing when a local endpoint (moto, MinIO) is configured.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let local_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(local_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// An SDK error as one line, `Code: message` when the service said so, then `hint`.
pub fn sdk_error_message<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>, hint: &str) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}{hint}"),
        (Some(c), None) => format!("{c}{hint}"),
        _ => format!("{}{hint}", DisplayErrorContext(e)),
    }
}

/// A hyper client for `http` and `https` URLs with the platform's root certificates.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An [`HttpsClient`] built on first use. Loading the platform's root certificates reads a few
/// hundred files, which a cold start need not do before its first request needs them.
/// Clones share the one client.
#[derive(Clone)]
pub struct LazyHttpsClient {
    connect_timeout: Duration,
    keep_alive: bool,
    cell: std::sync::Arc<std::sync::OnceLock<Result<HttpsClient, String>>>,
}

impl std::fmt::Debug for LazyHttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyHttpsClient")
            .field("built", &self.cell.get().is_some())
            .finish()
    }
}

impl LazyHttpsClient {
    pub fn new(connect_timeout: Duration, keep_alive: bool) -> Self {
        Self {
            connect_timeout,
            keep_alive,
            cell: std::sync::Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The client, built now if this is the first use.
    pub fn get(&self) -> std::io::Result<&HttpsClient> {
        match self.cell.get_or_init(|| {
            https_client(self.connect_timeout, self.keep_alive).map_err(|e| e.to_string())
        }) {
            Ok(c) => Ok(c),
            Err(e) => Err(std::io::Error::other(format!(
                "cannot set up HTTPS (the system's root certificates): {e}"
            ))),
        }
    }
}

/// Builds an [`HttpsClient`]. `keep_alive` keeps idle connections for the next invocation.
pub fn https_client(connect_timeout: Duration, keep_alive: bool) -> std::io::Result<HttpsClient> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let mut builder = Client::builder(TokioExecutor::new());
    if !keep_alive {
        builder.pool_max_idle_per_host(0);
    }
    Ok(builder.build(https))
}

/// `http://` to 127.0.0.0/8, `localhost` or `[::1]`: the token never leaves the machine.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}
