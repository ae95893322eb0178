//! S3 credentials from the AWS default chain (the one Glue uses), handed to object_store and
//! fetched again before they expire, so a query that outlives its credentials keeps reading.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::future::BoxFuture;
use glaux_catalog::aws::AwsKeys;
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

type Source = dyn Fn() -> BoxFuture<'static, Result<AwsKeys, String>> + Send + Sync;

/// The chain's credentials, cached until they come within [`REFRESH_BEFORE`] of expiring.
pub struct ChainCredentials {
    source: Box<Source>,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl std::fmt::Debug for ChainCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainCredentials")
    }
}

impl Default for ChainCredentials {
    fn default() -> Self {
        Self::with_source(|| Box::pin(glaux_catalog::aws::credentials()))
    }
}

impl ChainCredentials {
    /// Credentials from `source` (the default chain in glaux; another source in tests).
    pub fn with_source(
        source: impl Fn() -> BoxFuture<'static, Result<AwsKeys, String>> + Send + Sync + 'static,
    ) -> Self {
        Self { source: Box::new(source), cached: tokio::sync::Mutex::new(None) }
    }
}

fn fresh(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    expiry.is_none_or(|at| at.duration_since(now).is_ok_and(|left| left > REFRESH_BEFORE))
}

#[async_trait]
impl CredentialProvider for ChainCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        // one fetch at a time: requests side by side wait for it rather than each asking
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = &*cached
            && fresh(*expiry, SystemTime::now())
        {
            return Ok(Arc::clone(credential));
        }
        let keys = (self.source)().await.map_err(|e| object_store::Error::Generic { store: "S3", source: e.into() })?;
        let credential = Arc::new(AwsCredential {
            key_id: keys.access_key_id,
            secret_key: keys.secret_access_key,
            token: keys.session_token,
        });
        *cached = Some((Arc::clone(&credential), keys.expiry));
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counting(lifetime: Option<Duration>) -> (ChainCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let provider = ChainCredentials::with_source(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                Ok(AwsKeys {
                    access_key_id: format!("ASIA{n}"),
                    secret_access_key: "secret".into(),
                    session_token: Some(format!("token{n}")),
                    expiry: lifetime.map(|l| SystemTime::now() + l),
                })
            })
        });
        (provider, calls)
    }

    #[tokio::test]
    async fn credentials_are_kept_until_they_near_their_expiry() {
        // an hour to live: fetched once
        let (long, calls) = counting(Some(Duration::from_secs(3600)));
        assert_eq!(long.get_credential().await.unwrap().key_id, "ASIA0");
        assert_eq!(long.get_credential().await.unwrap().key_id, "ASIA0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // within five minutes of expiring: fetched again each time, and the new key is used
        let (short, calls) = counting(Some(Duration::from_secs(60)));
        let first = short.get_credential().await.unwrap();
        let second = short.get_credential().await.unwrap();
        assert_eq!((first.key_id.as_str(), second.key_id.as_str()), ("ASIA0", "ASIA1"));
        assert_eq!(second.token.as_deref(), Some("token1"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // no expiry (static keys): kept
        let (forever, calls) = counting(None);
        forever.get_credential().await.unwrap();
        forever.get_credential().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_chain_without_credentials_is_an_error_that_says_what_to_do() {
        let none =
            ChainCredentials::with_source(|| Box::pin(async { Err("no AWS credentials were found".to_string()) }));
        let e = none.get_credential().await.unwrap_err().to_string();
        assert!(e.contains("no AWS credentials were found"), "{e}");
    }
}
