//! A few retries for the reads of a query.
//!
//! The S3 client's own retries are off: the uploader has its policy (retry
//! a transient failure forever, with backoff). A query is a person or a
//! viewer waiting, so it gets neither extreme: a listing, HEAD or GET that
//! fails transiently (a 5xx or 429, a pooled connection the server closed,
//! a timeout — `Retry::Soon`) is tried again a few times with a short
//! backoff, and then the error is returned. A rejection (`Retry::Slowly`:
//! 403, a bad request) is returned at once: trying again cannot help.
//!
//! An object body cut mid-transfer is retried by [`super::fetch`], which
//! restarts that object from its first byte (its partial events are
//! dropped, so nothing is counted twice).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ship::{
    digest, Bucket, Depth, ListPage, ObjectBody, ObjectInfo, ObjectMeta, Retry, ShipError,
};

/// Attempts of one read, the first included.
pub const ATTEMPTS: u32 = 4;
/// Wait before the second attempt; each later wait is four times longer
/// (0.1 s, 0.4 s, 1.6 s: about 2 s in all before giving up).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Run `op` until it succeeds, fails for good, or `ATTEMPTS` are used;
/// `transient` says which errors are worth another attempt.
pub async fn with_retries<T, E, F, Fut>(
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                tracing::debug!(%what, attempt, error = %e, "read failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 4;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn soon(e: &ShipError) -> bool {
    e.retry == Retry::Soon
}

/// A bucket whose reads are retried as described above; writes pass
/// through untouched (only the uploader writes, with its own policy).
pub struct Retrying {
    inner: Arc<dyn Bucket>,
}

impl Retrying {
    pub fn wrap(inner: Arc<dyn Bucket>) -> Arc<dyn Bucket> {
        Arc::new(Retrying { inner })
    }
}

#[async_trait]
impl Bucket for Retrying {
    async fn put(&self, key: &str, body: Vec<u8>, meta: &ObjectMeta) -> Result<(), ShipError> {
        self.inner.put(key, body, meta).await
    }

    async fn put_file(
        &self,
        key: &str,
        obj: &digest::ObjectFile,
        meta: &ObjectMeta,
    ) -> Result<(), ShipError> {
        self.inner.put_file(key, obj, meta).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ShipError> {
        with_retries(key, soon, || self.inner.head(key)).await
    }

    async fn list(
        &self,
        prefix: &str,
        depth: Depth,
        token: Option<String>,
    ) -> Result<ListPage, ShipError> {
        with_retries(prefix, soon, || {
            self.inner.list(prefix, depth, token.clone())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<(ObjectInfo, ObjectBody)>, ShipError> {
        with_retries(key, soon, || self.inner.get(key)).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_a_few_times_and_rejections_not_at_all() {
        let calls = AtomicU32::new(0);
        let flaky = || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 3 {
                Err(ShipError::soon(format!("503 #{n}")))
            } else {
                Ok(n)
            }
        };
        assert_eq!(with_retries("k", soon, flaky).await.unwrap(), 3);

        calls.store(0, Ordering::SeqCst);
        let down = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ShipError::soon("connection refused"))
        };
        assert!(with_retries("k", soon, down).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);

        calls.store(0, Ordering::SeqCst);
        let denied = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ShipError::slowly("403 AccessDenied"))
        };
        assert!(with_retries("k", soon, denied).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
