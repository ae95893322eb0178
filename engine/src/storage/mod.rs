//! Object stores by URL: S3 configured from the standard AWS environment, local disk, and the meter.

/// `impl ObjectStore for $store` with the given methods, and the rest — writes, deletes,
/// listings, copies and renames — handed to `self.inner` unchanged: the stores here that change
/// how objects are read and leave everything else to the store they wrap.
macro_rules! impl_store_over_inner {
    (@rest $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl object_store::ObjectStore for $store {
            $($own)*

            async fn put_opts(
                &self,
                location: &object_store::path::Path,
                payload: object_store::PutPayload,
                opts: object_store::PutOptions,
            ) -> object_store::Result<object_store::PutResult> {
                self.inner.put_opts(location, payload, opts).await
            }

            async fn put_multipart_opts(
                &self,
                location: &object_store::path::Path,
                opts: object_store::PutMultipartOptions,
            ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
                self.inner.put_multipart_opts(location, opts).await
            }

            fn delete_stream(
                &self,
                locations: futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>,
            ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
                self.inner.delete_stream(locations)
            }

            fn list_with_offset(
                &self,
                prefix: Option<&object_store::path::Path>,
                offset: &object_store::path::Path,
            ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
                self.inner.list_with_offset(prefix, offset)
            }

            async fn list_with_delimiter(
                &self,
                prefix: Option<&object_store::path::Path>,
            ) -> object_store::Result<object_store::ListResult> {
                self.inner.list_with_delimiter(prefix).await
            }

            async fn copy_opts(
                &self,
                from: &object_store::path::Path,
                to: &object_store::path::Path,
                options: object_store::CopyOptions,
            ) -> object_store::Result<()> {
                self.inner.copy_opts(from, to, options).await
            }

            async fn rename_opts(
                &self,
                from: &object_store::path::Path,
                to: &object_store::path::Path,
                options: object_store::RenameOptions,
            ) -> object_store::Result<()> {
                self.inner.rename_opts(from, to, options).await
            }
        }
    };
    // a store that lists for itself (`own list`), then the rest handed on
    ($store:ty, own list { $($own:tt)* }) => {
        impl_store_over_inner!(@rest $store { $($own)* });
    };
    ($store:ty { $($own:tt)* }) => {
        impl_store_over_inner!(@rest $store {
            $($own)*

            fn list(
                &self,
                prefix: Option<&object_store::path::Path>,
            ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
                self.inner.list(prefix)
            }
        });
    };
}

mod credentials;
mod fenced;
mod local;
pub(crate) mod meter;
mod profile;
pub mod ranges;
mod region;

pub use credentials::ChainCredentials;
pub use fenced::FencedStore;
pub use local::LocalDisk;
pub use meter::{MeteredStore, ScanMeter};
pub use ranges::RangeMerge;
pub use region::RegionalStore;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// How glaux reaches S3, read from the environment AWS users already set.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; `None` means AWS itself.
    pub endpoint: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's region, else us-east-1.
    pub region: String,
    /// Keys given in the environment (`AWS_ACCESS_KEY_ID`, …); without them, the default chain.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Sign nothing (public buckets): only when asked, with `GLAUX_S3_ANONYMOUS` or
    /// `--no-sign-request`, never as a fallback.
    pub anonymous: bool,
    /// The default chain's credentials, shared by every bucket's store and refreshed before
    /// they expire.
    pub chain: Arc<ChainCredentials>,
    /// Retries per request before a storage error is reported (bounded so nothing hangs).
    pub max_retries: usize,
    /// Upper bound on the time spent retrying one request.
    pub retry_timeout: Duration,
    pub connect_timeout: Duration,
    /// Which nearby reads of one object are fetched as one request.
    pub range_merge: RangeMerge,
}

impl std::fmt::Debug for S3Settings {
    // Credentials never reach logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("has_credentials", &self.access_key_id.is_some())
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl S3Settings {
    /// Settings from the process environment and the shared AWS config/credentials files.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Settings from any variable lookup (the environment in production; a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let profile = profile::Profile::load(&var);
        let endpoint = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| profile.region.clone())
            .unwrap_or_else(|| "us-east-1".to_string());
        // keys in the environment are used as they are; everything else (profiles, SSO,
        // assume-role, web identity, container and instance credentials) is the chain's
        let (access_key_id, secret_access_key, session_token) =
            match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (Some(id), Some(secret), var("AWS_SESSION_TOKEN")),
                _ => (None, None, None),
            };
        let anonymous = var("GLAUX_S3_ANONYMOUS").is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"));
        let number = |k: &str, default: u64| var(k).and_then(|v| v.parse().ok()).unwrap_or(default);
        Self {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            anonymous,
            chain: Arc::default(),
            max_retries: number("GLAUX_S3_MAX_RETRIES", 3) as usize,
            retry_timeout: Duration::from_secs(number("GLAUX_S3_RETRY_TIMEOUT_SECS", 15)),
            connect_timeout: Duration::from_secs(number("GLAUX_S3_CONNECT_TIMEOUT_SECS", 5)),
            range_merge: RangeMerge::from_lookup(&var),
        }
    }

    /// An S3 store for one bucket, in the bucket's own region (asked of S3 on first use).
    pub fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        // refuse what the builder refuses now, not at the first request
        self.build_in(bucket, &self.region)?;
        Ok(Arc::new(RegionalStore::new(bucket, self.clone())))
    }

    /// An S3 store for one bucket, signing for `region`.
    fn build_in(&self, bucket: &str, region: &str) -> Result<Arc<dyn ObjectStore>> {
        let local_endpoint = self.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
        let mut client = ClientOptions::new().with_connect_timeout(self.connect_timeout);
        if local_endpoint {
            client = client.with_allow_http(true);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_client_options(client)
            .with_retry(retry)
            // Path-style works with every S3-compatible server; AWS still accepts it.
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        match (&self.access_key_id, &self.secret_access_key) {
            _ if self.anonymous => builder = builder.with_skip_signature(true),
            (Some(id), Some(secret)) => {
                builder = builder.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(token) = &self.session_token {
                    builder = builder.with_token(token);
                }
            }
            _ => {
                builder = builder.with_credentials(Arc::clone(&self.chain) as object_store::aws::AwsCredentialProvider)
            }
        }
        builder
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| Error::Location { location: format!("s3://{bucket}"), reason: e.to_string() })
    }
}

/// Stores by scheme and bucket, created on first use and shared by every query.
#[derive(Debug)]
pub struct StoreRegistry {
    s3: S3Settings,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    allow_local: bool,
    /// When set, local reads stay inside this folder.
    local_root: Option<std::path::PathBuf>,
}

impl StoreRegistry {
    pub fn new(s3: S3Settings, allow_local: bool) -> Self {
        Self { s3, stores: Mutex::new(HashMap::new()), allow_local, local_root: None }
    }

    /// Local files readable only under `root` (an absolute folder).
    pub fn with_local_root(mut self, root: Option<std::path::PathBuf>) -> Self {
        self.local_root = root;
        self
    }

    fn key(url: &Url) -> String {
        format!("{}://{}", url.scheme(), url.authority())
    }

    fn lookup(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = Self::key(url);
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = stores.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => {
                let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| Error::Location {
                    location: url.to_string(),
                    reason: "an S3 location needs a bucket: s3://bucket/key".into(),
                })?;
                self.s3.build(bucket)?
            }
            "file" if self.allow_local => match &self.local_root {
                Some(root) => Arc::new(FencedStore::new(Arc::new(LocalDisk::new()), root)),
                None => Arc::new(LocalDisk::new()),
            },
            "file" => {
                return Err(Error::Location {
                    location: url.to_string(),
                    reason: "local files are not readable in this mode".into(),
                });
            }
            other => {
                return Err(Error::Location {
                    location: url.to_string(),
                    reason: format!("unsupported scheme '{other}' (use s3:// or a local path)"),
                });
            }
        };
        stores.insert(key, Arc::clone(&store));
        Ok(store)
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.insert(Self::key(url), store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.lookup(url).map_err(DataFusionError::from)
    }
}

/// One query's view of the stores: every store it gets is wrapped in that query's meter.
#[derive(Debug)]
pub(crate) struct MeteredRegistry {
    inner: Arc<StoreRegistry>,
    meter: Arc<ScanMeter>,
}

impl MeteredRegistry {
    pub(crate) fn new(inner: Arc<StoreRegistry>, meter: Arc<ScanMeter>) -> Self {
        Self { inner, meter }
    }
}

impl ObjectStoreRegistry for MeteredRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        let store = self.inner.get_store(url)?;
        let store = MeteredStore::new(store, Arc::clone(&self.meter)).merge(self.inner.s3.range_merge);
        Ok(Arc::new(store.local(url.scheme() == "file")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> S3Settings {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn service_specific_endpoint_wins() {
        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://general:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3only:2"),
            ("HOME", "/nonexistent"),
        ]);
        assert_eq!(s.endpoint.as_deref(), Some("http://s3only:2"));
        let s = settings(&[("AWS_ENDPOINT_URL", "http://general:1"), ("HOME", "/nonexistent")]);
        assert_eq!(s.endpoint.as_deref(), Some("http://general:1"));
    }

    #[test]
    fn region_order() {
        let s = settings(&[("AWS_DEFAULT_REGION", "eu-west-1"), ("HOME", "/nonexistent")]);
        assert_eq!(s.region, "eu-west-1");
        let s =
            settings(&[("AWS_DEFAULT_REGION", "eu-west-1"), ("AWS_REGION", "ap-south-1"), ("HOME", "/nonexistent")]);
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(settings(&[("HOME", "/nonexistent")]).region, "us-east-1");
    }

    #[test]
    fn debug_hides_credentials() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKIDSECRETID"),
            ("AWS_SECRET_ACCESS_KEY", "verysecret"),
            ("HOME", "/nonexistent"),
        ]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("verysecret") && !shown.contains("AKIDSECRETID"), "{shown}");
    }

    #[test]
    fn bucketless_url_is_refused() {
        let r = StoreRegistry::new(settings(&[("HOME", "/nonexistent")]), false);
        let err = r.lookup(&Url::parse("file:///etc/passwd").unwrap()).unwrap_err();
        assert!(err.to_string().contains("not readable"), "{err}");
        let err = r.lookup(&Url::parse("gs://b/k").unwrap()).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme 'gs'"), "{err}");
    }
}
