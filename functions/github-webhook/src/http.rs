//! The function URL side: the request as `aws_lambda_events` types it, and the answer.

use aws_lambda_events::http::header::{ALLOW, CONTENT_TYPE};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use serde_json::{Value, json};

/// Lambda's synchronous payload limit.
pub(crate) const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// What went wrong in detail, for the log only: answers to callers not yet authenticated
    /// carry no ARNs, account ids, environment values or AWS error text.
    pub(crate) detail: Option<String>,
}

impl Reply {
    pub(crate) fn new(status: u16, word: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"status": word, "message": message.into()}),
            detail: None,
        }
    }

    /// An error whose `detail` goes to the log and whose answer says only `public`.
    pub(crate) fn withheld(status: u16, public: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::error(
                status,
                format!("{public}; the function's log has the details"),
            )
        }
    }

    pub(crate) fn error(status: u16, message: impl Into<String>) -> Self {
        Self::new(status, "error", message)
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.body[key] = value.into();
        self
    }

    /// The function URL response (payload format 2.0).
    pub(crate) fn to_response(&self) -> LambdaFunctionUrlResponse {
        let mut response = LambdaFunctionUrlResponse::default();
        response.status_code = i64::from(self.status);
        response
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == 405 {
            response
                .headers
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        response.body = Some(self.body.to_string());
        response.is_base64_encoded = false;
        response
    }
}

/// A function URL request: its method, headers and decoded body.
#[derive(Debug)]
pub(crate) struct HttpRequest {
    pub(crate) method: String,
    headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl HttpRequest {
    /// A header's value, when it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Reads the event leniently first (anything without an HTTP method is not a request at all,
/// and is told so plainly), then as the function URL request type, then decodes the body.
pub(crate) fn read_request(event: Value) -> Result<HttpRequest, Reply> {
    if event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(Reply::error(
            400,
            "the event is not a function URL request (no requestContext.http.method); invoke the function through its URL",
        ));
    }
    let request: LambdaFunctionUrlRequest =
        serde_path_to_error::deserialize(event).map_err(|e| {
            Reply::error(
                400,
                format!(
                    "the event is not a function URL request (`{}`: {}); invoke the function through its URL",
                    e.path(),
                    e.inner()
                ),
            )
        })?;
    let method = request
        .request_context
        .http
        .method
        .unwrap_or_default()
        .to_ascii_uppercase();
    let text = request.body.unwrap_or_default();
    let too_large = |n: usize| {
        Reply::error(
            413,
            format!(
                "the body is {n} bytes; Lambda accepts at most {MAX_BODY_BYTES}. Trim the push (fewer commits per push) or build it by hand"
            ),
        )
    };
    let body = if request.is_base64_encoded {
        if text.len() / 4 * 3 > MAX_BODY_BYTES + 3 {
            return Err(too_large(text.len() / 4 * 3));
        }
        base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|e| {
                Reply::error(
                    400,
                    format!("the body is marked base64 but does not decode: {e}"),
                )
            })?
    } else {
        text.into_bytes()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large(body.len()));
    }
    Ok(HttpRequest {
        method,
        headers: request.headers,
        body,
    })
}
