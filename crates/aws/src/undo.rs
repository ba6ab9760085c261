//! What a request wrote, to remove again when it fails, so a failure leaves no half-written
//! state: one log for both functions. And the one wall clock they read.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::{ObjectStore, Written};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Objects one request created in one bucket. Shared between the request's work and whoever
/// answers for it (a timeout, a panic), hence the lock.
#[derive(Debug, Default)]
pub struct UndoLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    bucket: String,
    written: Vec<Written>,
    /// The request succeeded: what it wrote stays.
    kept: bool,
}

impl UndoLog {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Notes one object this request created.
    pub fn record(&self, bucket: &str, written: Written) {
        self.with(|i| {
            i.bucket = bucket.to_owned();
            i.written.push(written);
        });
    }

    /// Sets what this request created so far.
    pub fn set(&self, bucket: &str, written: &[Written]) {
        self.with(|i| {
            i.bucket = bucket.to_owned();
            i.written = written.to_vec();
        });
    }

    /// The request succeeded: nothing it wrote is to be removed.
    pub fn keep(&self) {
        self.with(|i| {
            i.kept = true;
            i.written.clear();
        });
    }

    /// What is to be removed, taken out of the log: nothing once kept.
    pub fn take(&self) -> Option<(String, Vec<Written>)> {
        self.with(|i| {
            if i.kept || i.written.is_empty() {
                None
            } else {
                Some((i.bucket.clone(), std::mem::take(&mut i.written)))
            }
        })
    }

    /// Removes what the request created, within `limit`; returns how it went, for the log.
    pub async fn undo<S: ObjectStore>(&self, store: &S, limit: Duration) -> Undone {
        let Some((bucket, written)) = self.take() else {
            return Undone::Nothing;
        };
        match tokio::time::timeout(limit, store.delete_written(&bucket, &written)).await {
            Ok(Ok(())) => Undone::Removed(written.len()),
            Ok(Err(e)) => Undone::Failed(e.to_string()),
            Err(_) => Undone::TimedOut,
        }
    }
}

/// How [`UndoLog::undo`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    Nothing,
    Removed(usize),
    Failed(String),
    TimedOut,
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn written(key: &str) -> Written {
        Written {
            key: key.into(),
            version: None,
        }
    }

    #[tokio::test]
    async fn what_a_failed_request_wrote_is_removed_and_a_kept_one_stays() {
        let store = MemoryStore::default();
        for key in ["a", "b"] {
            store.put("bk", key, b"x", "text/plain", "").await.unwrap();
        }
        let log = UndoLog::default();
        assert_eq!(
            log.undo(&store, Duration::from_secs(1)).await,
            Undone::Nothing
        );
        log.record("bk", written("a"));
        log.record("bk", written("b"));
        assert_eq!(
            log.undo(&store, Duration::from_secs(1)).await,
            Undone::Removed(2)
        );
        assert!(store.objects.lock().unwrap().is_empty());
        // Taken once: a second undo removes nothing.
        assert_eq!(
            log.undo(&store, Duration::from_secs(1)).await,
            Undone::Nothing
        );
        let kept = UndoLog::default();
        kept.set("bk", &[written("c")]);
        kept.keep();
        assert!(kept.take().is_none());
        assert!(now_ms() > 1_700_000_000_000);
    }
}
