//! A bucket's own region: an S3 store that asks S3 where its bucket lives before its first
//! request (the `x-amz-bucket-region` header S3 puts on every bucket-level answer, redirects and
//! refusals included) and signs for that region from then on. The answer is kept for the life
//! of the process, one probe per bucket.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use tokio::sync::OnceCell;

use super::S3Settings;

/// An S3 store for one bucket, built for the bucket's region on first use.
pub struct RegionalStore(Arc<Bucket>);

struct Bucket {
    bucket: String,
    settings: S3Settings,
    store: OnceCell<Arc<dyn ObjectStore>>,
}

impl RegionalStore {
    pub fn new(bucket: &str, settings: S3Settings) -> Self {
        Self(Arc::new(Bucket { bucket: bucket.to_string(), settings, store: OnceCell::new() }))
    }

    async fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        self.0.store().await
    }
}

impl Bucket {
    /// The store for the bucket's region. When S3 cannot be asked (it is unreachable), the
    /// configured region's store serves this request — its own retries and errors then say
    /// what is wrong — and the next request asks again.
    async fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        if let Some(store) = self.store.get() {
            return Ok(Arc::clone(store));
        }
        let build = |region: &str| {
            self.settings
                .build_in(&self.bucket, region)
                .map_err(|e| object_store::Error::Generic { store: "S3", source: e.to_string().into() })
        };
        match bucket_region(&self.settings, &self.bucket).await {
            Ok(region) => {
                let store = build(region.as_deref().unwrap_or(&self.settings.region))?;
                Ok(Arc::clone(self.store.get_or_init(|| async { store }).await))
            }
            Err(_) => build(&self.settings.region),
        }
    }
}

/// Where `bucket` lives, from a HEAD of the bucket sent without credentials: S3 answers it
/// (200, 301 or 403) with `x-amz-bucket-region`. `None` when the server does not say (an
/// S3-compatible server without regions): the configured region is used.
async fn bucket_region(settings: &S3Settings, bucket: &str) -> Result<Option<String>, reqwest::Error> {
    let endpoint = match &settings.endpoint {
        Some(e) => e.trim_end_matches('/').to_string(),
        None => format!("https://s3.{}.amazonaws.com", settings.region),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.retry_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client.head(format!("{endpoint}/{bucket}")).send().await?;
    Ok(response
        .headers()
        .get("x-amz-bucket-region")
        .and_then(|v| v.to_str().ok())
        .filter(|r| !r.is_empty())
        .map(str::to_string))
}

impl fmt::Debug for RegionalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionalStore({})", self.0.bucket)
    }
}

impl fmt::Display for RegionalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3(bucket {})", self.0.bucket)
    }
}

/// The stream of a store not yet built: built first, then listed.
fn after_build<T: Send + 'static>(
    this: &RegionalStore,
    list: impl FnOnce(&Arc<dyn ObjectStore>) -> BoxStream<'static, Result<T>> + Send + 'static,
) -> BoxStream<'static, Result<T>> {
    if let Some(store) = this.0.store.get() {
        return list(store);
    }
    let bucket = Arc::clone(&this.0);
    futures::stream::once(async move {
        match bucket.store().await {
            Ok(store) => list(&store),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    })
    .flatten()
    .boxed()
}

#[async_trait]
impl ObjectStore for RegionalStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.store().await?.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.store().await?.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.store().await?.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.store().await?.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        after_build(self, move |store| store.delete_stream(locations))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let prefix = prefix.cloned();
        after_build(self, move |store| store.list(prefix.as_ref()))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        let (prefix, offset) = (prefix.cloned(), offset.clone());
        after_build(self, move |store| store.list_with_offset(prefix.as_ref(), &offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.store().await?.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.store().await?.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.store().await?.rename_opts(from, to, options).await
    }
}
