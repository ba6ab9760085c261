//! The answer to a function URL request: the status and body [`crate::outcome`] chose, as the
//! function URL response.

use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::{ALLOW, CONTENT_TYPE};
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use serde_json::Value;

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
