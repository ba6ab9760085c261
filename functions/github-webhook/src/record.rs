//! The delivery record: what the webhook keeps for each verified body (under
//! `pushes/deliveries/`, see `flavor_ci::layout`), so that a replay or a redelivery of the same
//! body is answered by what the first copy did.

use flavor_ci_aws::undo::now_ms;
use serde::{Deserialize, Serialize};

use crate::outcome::Handled;

/// A claim older than this belongs to an invocation that is no longer running.
const STALE_CLAIM_MS: u64 = 60_000;

/// Where the handling of one body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// A request took the body on and has not started its batch yet.
    Claimed,
    /// The batch started.
    Started,
}

/// One delivery record, as stored (JSON, these field names, in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryRecord {
    /// The `X-GitHub-Delivery` id of the copy that wrote the record.
    pub(crate) delivery: String,
    /// What identifies the body: a hash of the event name and the verified bytes.
    pub(crate) key: String,
    pub(crate) state: State,
    /// When the record was written, in milliseconds since the epoch.
    pub(crate) at: u64,
    #[serde(rename = "ref")]
    pub(crate) git_ref: String,
    pub(crate) after: String,
    pub(crate) project: String,
    pub(crate) buildspec: String,
    pub(crate) flavors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) batch_build_id: Option<String>,
}

impl DeliveryRecord {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record once `batch_id` started.
    pub(crate) fn started(mut self, batch_id: &str) -> Self {
        self.state = State::Started;
        self.batch_build_id = Some(batch_id.to_owned());
        self
    }
}

/// What an earlier delivery of the same body left in its record.
#[derive(Debug)]
pub(crate) enum Earlier {
    /// Its build started: answer `already handled` with what it started.
    Started(Handled),
    /// Claimed moments ago by a request that is still running.
    InProgress,
    /// Claimed by a request that did not finish, or a record that cannot be read: taken over.
    Abandoned,
}

/// Reads a stored record; anything unreadable counts as abandoned.
pub(crate) fn earlier(stored: &[u8]) -> Earlier {
    let Ok(record) = serde_json::from_slice::<DeliveryRecord>(stored) else {
        return Earlier::Abandoned;
    };
    match record.state {
        State::Started => Earlier::Started(Handled {
            batch_build_id: record.batch_build_id,
            project: record.project,
            buildspec: record.buildspec,
            flavors: record.flavors,
        }),
        State::Claimed if now_ms().saturating_sub(record.at) <= STALE_CLAIM_MS => {
            Earlier::InProgress
        }
        State::Claimed => Earlier::Abandoned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DeliveryRecord {
        DeliveryRecord {
            delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            key: "push-0a1b".into(),
            state: State::Claimed,
            at: 1_795_168_800_000,
            git_ref: "refs/heads/main".into(),
            after: "0".repeat(40),
            project: "ci".into(),
            buildspec: "s3://b/k".into(),
            flavors: vec!["a".into()],
            batch_build_id: None,
        }
    }

    #[test]
    fn the_stored_form_keeps_its_field_names_and_order() {
        assert_eq!(
            record().started("ci:1").to_json(),
            format!(
                r#"{{"delivery":"72d3162e-cc78-11e3-81ab-4c9367dc0958","key":"push-0a1b","state":"started","at":1795168800000,"ref":"refs/heads/main","after":"{}","project":"ci","buildspec":"s3://b/k","flavors":["a"],"batchBuildId":"ci:1"}}"#,
                "0".repeat(40)
            )
        );
    }

    #[test]
    fn earlier_records_are_read_by_state_and_age() {
        let started = record().started("ci:1").to_json();
        let Earlier::Started(handled) = earlier(started.as_bytes()) else {
            panic!("not started");
        };
        let reply = crate::outcome::Outcome::AlreadyHandled(handled).answer();
        assert_eq!(reply.body["batchBuildId"], "ci:1");
        assert_eq!(reply.body["flavors"][0], "a");
        let fresh = DeliveryRecord {
            at: now_ms(),
            ..record()
        };
        assert!(matches!(
            earlier(fresh.to_json().as_bytes()),
            Earlier::InProgress
        ));
        assert!(matches!(
            earlier(record().to_json().as_bytes()),
            Earlier::Abandoned
        ));
        assert!(matches!(
            earlier(b"{\"state\":\"started\"}"),
            Earlier::Abandoned
        ));
        assert!(matches!(earlier(b"not json"), Earlier::Abandoned));
    }
}
