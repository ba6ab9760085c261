//! Delivers a response body to CloudFormation's pre-signed `ResponseURL`: one PUT with an empty
//! `Content-Type` and an exact `Content-Length`, retried with backoff on network errors and 5xx,
//! successful only on 2xx, and never past a deadline.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use flavor_ci_aws::{HttpsClient, https_client};
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

impl ResponseUrl {
    /// Accepts an absolute `http` or `https` URL.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let uri: Uri = text.parse().ok()?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        (scheme_ok && uri.authority().is_some()).then_some(Self(uri))
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
    client: HttpsClient,
}

impl Responder {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            client: https_client(CONNECT_TIMEOUT, false)?,
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
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| error_chain(&e))?;
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
    fn only_absolute_http_urls_are_usable() {
        for bad in ["", "not a url", "ftp://x/y", "/relative", "s3://bucket/key"] {
            assert!(ResponseUrl::parse(bad).is_none(), "{bad}");
        }
        assert!(ResponseUrl::parse("http://127.0.0.1:9/x?y=z").is_some());
    }
}
