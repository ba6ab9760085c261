//! The response body CloudFormation accepts, within its size limit.

use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceResponse, CloudFormationCustomResourceResponseStatus,
};
use indexmap::IndexMap;
use serde::Serialize;

use super::*;

/// `SUCCESS` or `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// A response to one request, before it is fitted into CloudFormation's size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub reason: String,
    pub physical_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_id: String,
    pub data: IndexMap<String, String>,
}

/// Room kept for `Reason` when checking that `Data` fits before anything is written.
const REASON_ROOM: usize = 512;

impl Response {
    /// `Some(size of Data)` when the response, with room for a reason, would exceed
    /// [`MAX_RESPONSE_BYTES`]: the caller fails the request before writing anything.
    pub fn data_overflow(&self) -> Option<usize> {
        let without_reason = Self {
            reason: String::new(),
            ..self.clone()
        };
        let size = without_reason.body_parts(self.status, "", &self.data).len();
        (size + REASON_ROOM > MAX_RESPONSE_BYTES)
            .then(|| serde_json::to_vec(&self.data).map_or(0, |d| d.len()))
    }

    /// The response as `aws_lambda_events` types it, serialized; an empty `Data` is left out.
    fn body_parts(&self, status: Status, reason: &str, data: &IndexMap<String, String>) -> Vec<u8> {
        let mut r = CloudFormationCustomResourceResponse::default();
        r.status = match status {
            Status::Success => CloudFormationCustomResourceResponseStatus::Success,
            Status::Failed => CloudFormationCustomResourceResponseStatus::Failed,
        };
        r.reason = Some(reason.to_owned());
        r.physical_resource_id.clone_from(&self.physical_id);
        r.stack_id.clone_from(&self.stack_id);
        r.request_id.clone_from(&self.request_id);
        r.logical_resource_id.clone_from(&self.logical_id);
        r.no_echo = false;
        r.data = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let Ok(serde_json::Value::Object(mut body)) = serde_json::to_value(&r) else {
            return Vec::new();
        };
        if data.is_empty() {
            body.remove("Data");
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The JSON body, at most [`MAX_RESPONSE_BYTES`]. A long `Reason` keeps its start and end;
    /// `Data` that cannot fit turns the response into a FAILED one that says why.
    pub fn to_body(&self) -> Vec<u8> {
        let empty = IndexMap::new();
        let serialize = |status: Status, reason: &str, data: &IndexMap<String, String>| {
            self.body_parts(status, reason, data)
        };
        let full = serialize(self.status, &self.reason, &self.data);
        if full.len() <= MAX_RESPONSE_BYTES {
            return full;
        }
        let (status, reason, data) = if self.data.is_empty() {
            (self.status, self.reason.clone(), &self.data)
        } else {
            let data_bytes = serde_json::to_vec(&self.data).map_or(0, |d| d.len());
            if serialize(self.status, "", &self.data).len() <= MAX_RESPONSE_BYTES {
                (self.status, self.reason.clone(), &self.data)
            } else {
                (
                    Status::Failed,
                    format!(
                        "the response Data ({data_bytes} bytes) does not fit CloudFormation's {MAX_RESPONSE_BYTES}-byte response limit; shorten Prefix or the stack name"
                    ),
                    &empty,
                )
            }
        };
        let base = serialize(status, "", data).len();
        let budget = MAX_RESPONSE_BYTES.saturating_sub(base);
        serialize(status, &shorten_json(&reason, budget), data)
    }
}

/// Shortens `text` so that its JSON-escaped form takes at most `budget` bytes, keeping the start
/// and the end and marking the cut.
pub fn shorten_json(text: &str, budget: usize) -> String {
    let cost = |c: char| escaped_len(c);
    let total: usize = text.chars().map(cost).sum();
    if total <= budget {
        return text.to_string();
    }
    const CUT: &str = " … ";
    let cut_cost: usize = CUT.chars().map(cost).sum();
    if budget <= cut_cost {
        return String::new();
    }
    let keep = budget - cut_cost;
    let mut head = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + cost(c) > keep / 2 {
            break;
        }
        used += cost(c);
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    for c in text.chars().rev() {
        if used + cost(c) > keep {
            break;
        }
        used += cost(c);
        tail.push(c);
    }
    tail.reverse();
    format!("{head}{CUT}{}", tail.into_iter().collect::<String>())
}

fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` cut to at most `max` characters, for messages that quote input.
pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
