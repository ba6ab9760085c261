//! Where the functions keep their objects: a narrow trait over the few S3 calls they make, the
//! S3 implementation, and (feature `memory`) an in-memory one for unit tests.

use std::fmt;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::SdkClient;

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// The object is new; `version` is set in a versioned bucket.
    Created { version: Option<String> },
    /// An object with that key already existed and was left as it was.
    Existed,
}

/// One object version this resource wrote, for removing exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub key: String,
    pub version: Option<String>,
}

/// A failed storage call, with what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 {operation} on s3://{bucket}/{key} failed: {message}{}", hint(code.as_deref()))]
pub struct StoreError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub code: Option<String>,
    pub message: String,
}

fn hint(code: Option<&str>) -> &'static str {
    match code {
        Some("NoSuchBucket") => {
            "; create the bucket or correct the bucket name the function is given"
        }
        Some("AccessDenied" | "AllAccessDisabled") => {
            "; allow the function's role this S3 action on the bucket and prefix"
        }
        Some(_) => "",
        None => "; check that S3 is reachable from the function (VPC endpoints, AWS_ENDPOINT_URL)",
    }
}

/// The S3 calls the functions need.
pub trait ObjectStore: Send + Sync + fmt::Debug + 'static {
    /// Writes `body` at `key` unless an object is already there (`If-None-Match: *`).
    /// `tagging` is a URL-encoded tag set (`kind=delivery`), or empty for none.
    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
    ) -> impl Future<Output = Result<Put, StoreError>> + Send;

    /// Writes `body` at `key`, replacing whatever is there.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// The object's bytes, or `None` when there is no such key.
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// The object's bytes and its ETag, or `None` when there is no such key.
    fn get_tagged(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, String)>, StoreError>> + Send;
    /// Replaces the object at `key` only while its ETag is still `etag` (`If-Match`); `false`
    /// when another write came first.
    fn replace_if_unchanged(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
        etag: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The keys that start with `prefix`, in key order, at most `limit` of them.
    fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        async move {
            let listed = self.list_tagged(bucket, prefix, limit).await?;
            Ok(listed.into_iter().map(|(key, _)| key).collect())
        }
    }

    /// [`ObjectStore::list_keys`], each key with its object's ETag.
    fn list_tagged(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Removes every object version under `root` (which ends with `/`); returns how many.
    fn delete_under(
        &self,
        bucket: &str,
        root: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes exactly these object versions.
    fn delete_written(
        &self,
        bucket: &str,
        written: &[Written],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Amazon S3 (or anything that speaks its API, such as moto).
pub type S3Store = SdkClient<Client>;

/// S3, its client built from `sdk` on first use.
pub fn s3(sdk: std::sync::Arc<crate::LazySdk>) -> S3Store {
    SdkClient::on_first_use(sdk, crate::s3_client)
}

impl S3Store {
    async fn put_request(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.get()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .set_tagging((!tagging.is_empty()).then(|| tagging.to_owned()))
            .body(ByteStream::from(body.to_vec()))
    }
}

fn store_error<E, R>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    e: &SdkError<E, R>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let code = e.code().map(String::from);
    let message = crate::sdk_error_message(e, "");
    StoreError {
        operation,
        bucket: bucket.into(),
        key: key.into(),
        code,
        message,
    }
}

const DELETE_BATCH: usize = 1000;

impl ObjectStore for S3Store {
    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
    ) -> Result<Put, StoreError> {
        let result = self
            .put_request(bucket, key, body, content_type, tagging)
            .await
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(out) => Ok(Put::Created {
                version: out.version_id().map(String::from),
            }),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                // 412: the object exists. 409: a concurrent write of the same key is in flight;
                // the key is content-addressed, so that write carries the same bytes.
                if matches!(status, Some(412 | 409)) {
                    Ok(Put::Existed)
                } else {
                    Err(store_error("PutObject", bucket, key, &e))
                }
            }
        }
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
    ) -> Result<Written, StoreError> {
        let out = self
            .put_request(bucket, key, body, content_type, tagging)
            .await
            .send()
            .await
            .map_err(|e| store_error("PutObject", bucket, key, &e))?;
        Ok(Written {
            key: key.into(),
            version: out.version_id().map(String::from),
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_tagged(bucket, key).await?.map(|(bytes, _)| bytes))
    }

    async fn get_tagged(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let out = match self
            .get()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(store_error("GetObject", bucket, key, &e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out.body.collect().await.map_err(|e| StoreError {
            operation: "GetObject",
            bucket: bucket.into(),
            key: key.into(),
            code: None,
            message: format!("reading the body failed: {e}"),
        })?;
        Ok(Some((bytes.to_vec(), etag)))
    }

    async fn replace_if_unchanged(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
        tagging: &str,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .put_request(bucket, key, body, content_type, tagging)
            .await
            .if_match(etag)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                // 412: the ETag changed. 409: a concurrent conditional write is in flight.
                if matches!(status, Some(412 | 409)) {
                    Ok(false)
                } else {
                    Err(store_error("PutObject", bucket, key, &e))
                }
            }
        }
    }

    async fn list_tagged(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .get()
                .await
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| store_error("ListObjectsV2", bucket, prefix, &e))?;
            keys.extend(page.contents().iter().filter_map(|o| {
                Some((
                    o.key()?.to_owned(),
                    o.e_tag().unwrap_or_default().to_owned(),
                ))
            }));
            if keys.len() >= limit {
                keys.truncate(limit);
                return Ok(keys);
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    async fn delete_under(&self, bucket: &str, root: &str) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let page = self
                .get()
                .await
                .list_object_versions()
                .bucket(bucket)
                .prefix(root)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if e.code() == Some("NoSuchBucket") => return Ok(deleted),
                Err(e) => return Err(store_error("ListObjectVersions", bucket, root, &e)),
            };
            let mut ids = Vec::new();
            for v in page.versions() {
                ids.push((v.key(), v.version_id()));
            }
            for m in page.delete_markers() {
                ids.push((m.key(), m.version_id()));
            }
            let ids: Vec<Written> = ids
                .into_iter()
                .filter_map(|(k, v)| {
                    k.map(|k| Written {
                        key: k.into(),
                        version: v.map(String::from),
                    })
                })
                .collect();
            deleted += ids.len();
            self.delete_written(bucket, &ids).await?;
            if page.is_truncated() == Some(true) {
                key_marker = page.next_key_marker().map(String::from);
                version_marker = page.next_version_id_marker().map(String::from);
                if key_marker.is_none() {
                    return Ok(deleted);
                }
            } else {
                return Ok(deleted);
            }
        }
    }

    async fn delete_written(&self, bucket: &str, written: &[Written]) -> Result<(), StoreError> {
        let request_error = |bucket: &str, e: &dyn std::error::Error| StoreError {
            operation: "DeleteObjects",
            bucket: bucket.into(),
            key: String::new(),
            code: None,
            message: format!("cannot build the request: {e}"),
        };
        for chunk in written.chunks(DELETE_BATCH) {
            let objects = chunk
                .iter()
                .map(|w| {
                    ObjectIdentifier::builder()
                        .key(&w.key)
                        .set_version_id(w.version.clone())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| request_error(bucket, &e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| request_error(bucket, &e))?;
            let out = self
                .get()
                .await
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| store_error("DeleteObjects", bucket, "", &e))?;
            // Keys that are already gone are fine; anything else is an error.
            if let Some(err) = out
                .errors()
                .iter()
                .find(|e| e.code() != Some("NoSuchKey") && e.code() != Some("NoSuchVersion"))
            {
                return Err(StoreError {
                    operation: "DeleteObjects",
                    bucket: bucket.into(),
                    key: err.key().unwrap_or_default().into(),
                    code: err.code().map(String::from),
                    message: format!(
                        "{}: {}",
                        err.code().unwrap_or("error"),
                        err.message().unwrap_or_default()
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(feature = "memory")]
#[allow(clippy::unwrap_used)]
pub mod memory {
    //! An in-memory bucket set, for unit tests of the handlers.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryStore {
        pub objects: Mutex<BTreeMap<(String, String), Vec<u8>>>,
        pub fail_puts: bool,
    }

    impl MemoryStore {
        /// The object at `key` as text, if there is one.
        pub fn text(&self, bucket: &str, key: &str) -> Option<String> {
            let objects = self.objects.lock().unwrap();
            objects
                .get(&(bucket.to_string(), key.to_string()))
                .map(|b| String::from_utf8_lossy(b).into_owned())
        }

        fn injected(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
            if self.fail_puts {
                return Err(StoreError {
                    operation: "PutObject",
                    bucket: bucket.into(),
                    key: key.into(),
                    code: Some("InternalError".into()),
                    message: "injected".into(),
                });
            }
            Ok(())
        }
    }

    /// An ETag for the memory store: changes whenever the bytes do.
    fn etag_of(bytes: &[u8]) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    }

    impl ObjectStore for MemoryStore {
        async fn put(
            &self,
            bucket: &str,
            key: &str,
            body: &[u8],
            _content_type: &str,
            _tagging: &str,
        ) -> Result<Written, StoreError> {
            self.injected(bucket, key)?;
            let mut objects = self.objects.lock().unwrap();
            objects.insert((bucket.to_string(), key.to_string()), body.to_vec());
            Ok(Written {
                key: key.into(),
                version: None,
            })
        }

        async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            let objects = self.objects.lock().unwrap();
            Ok(objects.get(&(bucket.to_string(), key.to_string())).cloned())
        }

        async fn get_tagged(
            &self,
            bucket: &str,
            key: &str,
        ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
            let read = {
                let objects = self.objects.lock().unwrap();
                objects
                    .get(&(bucket.to_string(), key.to_string()))
                    .map(|b| (b.clone(), etag_of(b)))
            };
            // A network call's worth of time, in which other requests may write.
            tokio::task::yield_now().await;
            Ok(read)
        }

        async fn replace_if_unchanged(
            &self,
            bucket: &str,
            key: &str,
            body: &[u8],
            _content_type: &str,
            _tagging: &str,
            etag: &str,
        ) -> Result<bool, StoreError> {
            self.injected(bucket, key)?;
            let mut objects = self.objects.lock().unwrap();
            let k = (bucket.to_string(), key.to_string());
            match objects.get(&k) {
                Some(current) if etag_of(current) == etag => {
                    objects.insert(k, body.to_vec());
                    Ok(true)
                }
                _ => Ok(false),
            }
        }

        async fn put_if_absent(
            &self,
            bucket: &str,
            key: &str,
            body: &[u8],
            _content_type: &str,
            _tagging: &str,
        ) -> Result<Put, StoreError> {
            self.injected(bucket, key)?;
            let mut objects = self.objects.lock().unwrap();
            let k = (bucket.to_string(), key.to_string());
            if objects.contains_key(&k) {
                return Ok(Put::Existed);
            }
            objects.insert(k, body.to_vec());
            Ok(Put::Created { version: None })
        }

        async fn list_tagged(
            &self,
            bucket: &str,
            prefix: &str,
            limit: usize,
        ) -> Result<Vec<(String, String)>, StoreError> {
            let objects = self.objects.lock().unwrap();
            Ok(objects
                .iter()
                .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
                .map(|((_, k), bytes)| (k.clone(), etag_of(bytes)))
                .take(limit)
                .collect())
        }

        async fn delete_under(&self, bucket: &str, root: &str) -> Result<usize, StoreError> {
            let mut objects = self.objects.lock().unwrap();
            let before = objects.len();
            objects.retain(|(b, k), _| !(b == bucket && k.starts_with(root)));
            Ok(before - objects.len())
        }

        async fn delete_written(
            &self,
            bucket: &str,
            written: &[Written],
        ) -> Result<(), StoreError> {
            let mut objects = self.objects.lock().unwrap();
            for w in written {
                objects.remove(&(bucket.to_string(), w.key.clone()));
            }
            Ok(())
        }
    }
}
