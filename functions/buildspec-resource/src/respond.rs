//! Delivers a response body to CloudFormation's pre-signed `ResponseURL`: one PUT with an empty
//! `Content-Type` and an exact `Content-Length`, retried with backoff on network errors and 5xx,
//! successful only on 2xx, and never past a deadline.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use flavor_ci_aws::LazyHttpsClient;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Uri};
use lambda_runtime::tracing::{info, warn};
use tokio::time::{Instant, sleep, timeout};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A pre-signed URL. Printing it shows scheme, host and path only: the query holds the
/// signature, which must not reach a log.
#[derive(Clone)]
pub(crate) struct ResponseUrl(Uri);

/// The environment variable that lets local tests answer to a receiver on a loopback address.
pub(crate) const LOCAL_RESPONSE_URLS: &str = "FLAVOR_CI_LOCAL_RESPONSE_URLS";

/// The prefix of CloudFormation's response buckets, one per region.
const RESPONSE_BUCKET: &str = "cloudformation-custom-resource-response-";

impl ResponseUrl {
    /// Accepts only what CloudFormation sends: `https` to one of its response buckets in S3 of
    /// an AWS partition. Anything else is not answered, so whoever can invoke the function
    /// cannot make it send (or delete, then report) to a URL of their own. With
    /// `FLAVOR_CI_LOCAL_RESPONSE_URLS=loopback` (local tests only), `http(s)` to a loopback
    /// address is accepted too.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        static LOCAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let local = *LOCAL
            .get_or_init(|| std::env::var(LOCAL_RESPONSE_URLS).is_ok_and(|v| v == "loopback"));
        Self::parse_with(text, local)
    }

    pub(crate) fn parse_with(text: &str, allow_loopback: bool) -> Option<Self> {
        let uri: Uri = text.parse().ok()?;
        let host = uri.host()?.to_ascii_lowercase();
        if uri.authority()?.as_str().contains('@') {
            return None;
        }
        let loopback = host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        let ok = match uri.scheme_str() {
            Some("http" | "https") if allow_loopback && loopback => true,
            Some("https") => {
                let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
                let bucket = host.starts_with(RESPONSE_BUCKET)
                    || uri.path().starts_with(&format!("/{RESPONSE_BUCKET}"));
                aws && bucket && uri.port().is_none()
            }
            _ => false,
        };
        ok.then_some(Self(uri))
    }
}

impl fmt::Display for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.scheme_str().unwrap_or("?");
        let host = self.0.authority().map_or("?", |a| a.as_str());
        write!(f, "{scheme}://{host}{}", self.0.path())
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseUrl({self})")
    }
}

/// How delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    Delivered {
        status: u16,
        attempts: u32,
    },
    /// A 4xx answer: retrying cannot help (an expired or altered URL).
    Rejected {
        status: u16,
        attempts: u32,
    },
    /// Network errors or 5xx until the attempts or the time ran out.
    GaveUp {
        last_error: String,
        attempts: u32,
    },
}

/// Sends responses; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Responder {
    /// Built on the first answer, not during the cold start.
    client: LazyHttpsClient,
}

impl Responder {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            client: LazyHttpsClient::new(CONNECT_TIMEOUT, false),
        })
    }

    /// PUTs `body` to `url`, retrying until `give_up_at`.
    pub(crate) async fn send(
        &self,
        url: &ResponseUrl,
        body: Bytes,
        give_up_at: Instant,
    ) -> Delivery {
        let mut backoff = FIRST_BACKOFF;
        let mut last_error = String::from("no attempt fitted before the deadline");
        for attempt in 1..=MAX_ATTEMPTS {
            let left = give_up_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Delivery::GaveUp {
                    last_error,
                    attempts: attempt - 1,
                };
            }
            match timeout(left.min(ATTEMPT_TIMEOUT), self.put(url, body.clone())).await {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    info!(url = %url, status, attempt, "response delivered");
                    return Delivery::Delivered {
                        status,
                        attempts: attempt,
                    };
                }
                Ok(Ok(status)) if (400..500).contains(&status) => {
                    warn!(url = %url, status, attempt, "response rejected; not retrying a 4xx");
                    return Delivery::Rejected {
                        status,
                        attempts: attempt,
                    };
                }
                Ok(Ok(status)) => last_error = format!("HTTP {status}"),
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = "no answer within the attempt's time limit".into(),
            }
            warn!(url = %url, attempt, error = %last_error, "response not delivered; retrying");
            if attempt < MAX_ATTEMPTS {
                let left = give_up_at.saturating_duration_since(Instant::now());
                sleep(backoff.min(left)).await;
                backoff *= 2;
            }
        }
        Delivery::GaveUp {
            last_error,
            attempts: MAX_ATTEMPTS,
        }
    }

    async fn put(&self, url: &ResponseUrl, body: Bytes) -> Result<u16, String> {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(url.0.clone())
            .body(Full::new(body.clone()))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let headers = request.headers_mut();
        // S3 checks the signature against an empty Content-Type.
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(""));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let client = self.client.get().map_err(|e| e.to_string())?;
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        // Drain the answer so the connection closes cleanly; its content is not needed.
        let _ = response.into_body().collect().await;
        Ok(status)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_print_without_their_query() {
        let url = ResponseUrl::parse(
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws/req?X-Amz-Signature=secret&X-Amz-Credential=AKIA",
        )
        .unwrap();
        let shown = format!("{url} {url:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("AKIA"),
            "{shown}"
        );
        assert!(shown.contains("s3.amazonaws.com/arn%3Aaws/req"));
    }

    #[test]
    fn only_cloudformations_response_buckets_are_answered() {
        for good in [
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws/req?X-Amz-Signature=x",
            "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/k?s=x",
            "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/k",
            "https://s3.amazonaws.com/cloudformation-custom-resource-response-useast1/k",
        ] {
            assert!(ResponseUrl::parse_with(good, false).is_some(), "{good}");
        }
        for bad in [
            "",
            "not a url",
            "ftp://x/y",
            "/relative",
            "s3://bucket/key",
            "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/k",
            "https://attacker.example.com/cloudformation-custom-resource-response-x",
            "https://cloudformation-custom-resource-response-x.s3.amazonaws.com.evil.com/k",
            "https://my-bucket.s3.amazonaws.com/k",
            "https://user@cloudformation-custom-resource-response-useast1.s3.amazonaws.com/k",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443/k",
            "http://127.0.0.1:9/x?y=z",
        ] {
            assert!(ResponseUrl::parse_with(bad, false).is_none(), "{bad}");
        }
        // Local tests opt in to a receiver on a loopback address, and only there.
        assert!(ResponseUrl::parse_with("http://127.0.0.1:9/x?y=z", true).is_some());
        assert!(ResponseUrl::parse_with("http://localhost:9/x", true).is_some());
        assert!(ResponseUrl::parse_with("http://10.0.0.1:9/x", true).is_none());
    }
}
