//! The scan meter: counts the payload bytes storage actually streamed to the engine, per query.
//!
//! Bytes are counted as the engine pulls them from the response body, not when a range is
//! requested: a request whose body is dropped unread costs only what arrived. Footer and
//! metadata reads are real reads and count like any other.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// One query's byte counter, with an optional cutoff past which reads fail.
#[derive(Debug, Default)]
pub struct ScanMeter {
    bytes: AtomicU64,
    cutoff: Option<u64>,
}

/// The message Athena gives when a workgroup's per-query scan limit stops a query.
pub const CUTOFF_MESSAGE: &str = "Bytes scanned limit was exceeded";

impl ScanMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A meter that fails further reads once more than `cutoff` bytes were scanned.
    pub fn with_cutoff(cutoff: Option<u64>) -> Self {
        Self { bytes: AtomicU64::new(0), cutoff }
    }

    /// Bytes scanned so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether the cutoff has been passed.
    pub fn exceeded(&self) -> bool {
        self.cutoff.is_some_and(|c| self.bytes() > c)
    }

    fn add(&self, n: u64) -> u64 {
        self.bytes.fetch_add(n, Ordering::Relaxed) + n
    }
}

/// An [`ObjectStore`] that reports every payload byte it hands out to a [`ScanMeter`].
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    meter: Arc<ScanMeter>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, meter: Arc<ScanMeter>) -> Self {
        Self { inner, meter }
    }
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeteredStore({})", self.inner)
    }
}

/// A body stream that counts what passes through it and stops at the meter's cutoff.
struct MeteredStream {
    inner: BoxStream<'static, Result<Bytes>>,
    meter: Arc<ScanMeter>,
    location: Path,
}

impl Stream for MeteredStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            let total = self.meter.add(chunk.len() as u64);
            if self.meter.cutoff.is_some_and(|c| total > c) {
                return Poll::Ready(Some(Err(object_store::Error::Generic {
                    store: "glaux",
                    source: format!("{CUTOFF_MESSAGE} (reading {})", self.location).into(),
                })));
            }
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if self.meter.exceeded() {
            return Err(object_store::Error::Generic { store: "glaux", source: CUTOFF_MESSAGE.into() });
        }
        let result = self.inner.get_opts(location, options).await?;
        let GetResult { meta, range, attributes, .. } = &result;
        let (meta, range, attributes) = (meta.clone(), range.clone(), attributes.clone());
        // Local files come back as file handles; turn them into a stream so one path counts all.
        let body = match result.payload {
            GetResultPayload::Stream(s) => s,
            GetResultPayload::File(..) => result.into_stream(),
        };
        let body = MeteredStream { inner: body, meter: Arc::clone(&self.meter), location: location.clone() };
        Ok(GetResult { payload: GetResultPayload::Stream(body.boxed()), meta, range, attributes })
    }

    // `get_ranges` keeps the trait's default on purpose: it coalesces ranges and fetches them
    // through `get_opts` above, so gap bytes the server sends for a coalesced range count too.

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    async fn store_with(bytes: usize) -> (Arc<dyn ObjectStore>, Path) {
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("t/data.bin");
        mem.put(&path, vec![7u8; bytes].into()).await.unwrap();
        (mem, path)
    }

    #[tokio::test]
    async fn counts_what_is_read_not_what_is_asked() {
        let (mem, path) = store_with(1000).await;
        let meter = Arc::new(ScanMeter::new());
        let store = MeteredStore::new(mem, Arc::clone(&meter));
        // A HEAD-like request and a dropped body cost nothing.
        store.head(&path).await.unwrap();
        drop(store.get(&path).await.unwrap());
        assert_eq!(meter.bytes(), 0);
        store.get_range(&path, 10..110).await.unwrap();
        assert_eq!(meter.bytes(), 100);
        store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(meter.bytes(), 1100);
    }

    #[tokio::test]
    async fn two_meters_never_share() {
        let (mem, path) = store_with(64).await;
        let (a, b) = (Arc::new(ScanMeter::new()), Arc::new(ScanMeter::new()));
        let sa = MeteredStore::new(Arc::clone(&mem), Arc::clone(&a));
        let sb = MeteredStore::new(mem, Arc::clone(&b));
        sa.get_range(&path, 0..10).await.unwrap();
        sb.get_range(&path, 0..20).await.unwrap();
        assert_eq!((a.bytes(), b.bytes()), (10, 20));
    }

    #[tokio::test]
    async fn cutoff_stops_reads() {
        let (mem, path) = store_with(100).await;
        let meter = Arc::new(ScanMeter::with_cutoff(Some(50)));
        let store = MeteredStore::new(mem, Arc::clone(&meter));
        let err = store.get(&path).await.unwrap().bytes().await.unwrap_err();
        assert!(err.to_string().contains(CUTOFF_MESSAGE), "{err}");
        assert!(meter.exceeded());
        assert_eq!(meter.bytes(), 100);
    }
}
