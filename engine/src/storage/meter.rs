//! The scan meter: counts the payload bytes storage actually streamed to the engine, per query.
//!
//! Bytes are counted as the engine pulls them from the response body, not when a range is
//! requested: a request whose body is dropped unread costs only what arrived. Footer and
//! metadata reads are real reads and count like any other.

use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use datafusion::physical_plan::metrics::Count;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, Result};

use super::ranges::RangeMerge;

/// One query's byte counter, with an optional cutoff past which reads fail. The counter is a
/// DataFusion metric, so a worker's meter travels back to the coordinator with the plan's
/// metrics.
#[derive(Debug, Default)]
pub struct ScanMeter {
    bytes: Count,
    cutoff: Option<u64>,
    /// Set when the query ended elsewhere (a worker's part of a cancelled query): reads fail.
    stopped: std::sync::atomic::AtomicBool,
}

/// The message Athena gives when a workgroup's per-query scan limit stops a query.
pub const CUTOFF_MESSAGE: &str = "Bytes scanned limit was exceeded";

impl ScanMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A meter that fails further reads once more than `cutoff` bytes were scanned.
    pub fn with_cutoff(cutoff: Option<u64>) -> Self {
        Self { cutoff, ..Self::default() }
    }

    /// Bytes scanned so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.value() as u64
    }

    /// The scan limit, if there is one.
    pub fn cutoff(&self) -> Option<u64> {
        self.cutoff
    }

    /// The counter itself, shared: what a worker reports as its scan metric.
    pub fn counter(&self) -> Count {
        self.bytes.clone()
    }

    /// Counts bytes other processes read for this query (its workers), reported when their part
    /// ended: past the cutoff, the query fails.
    pub fn add_remote(&self, n: u64, what: &str) -> Result<()> {
        self.count(n, &Path::from(what))
    }

    /// Whether the cutoff has been passed.
    pub fn exceeded(&self) -> bool {
        self.cutoff.is_some_and(|c| self.bytes() > c)
    }

    /// Fails every read from now on, those under way included: the query this meter counts for
    /// has ended (on a worker: its coordinator cancelled it, or its total passed the limit).
    pub fn stop(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Before a read: fails once the cutoff has been passed or the query stopped.
    fn check(&self, location: &Path) -> Result<()> {
        if self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(object_store::Error::Generic {
                store: "glaux",
                source: format!("the query was stopped while reading {location}").into(),
            });
        }
        if self.exceeded() { Err(cutoff_error(location)) } else { Ok(()) }
    }

    /// Counts `n` bytes that arrived from `location`; past the cutoff they are an error. The
    /// bytes stay counted (storage served them), and the read that crossed the limit fails even
    /// though its data is here: reads running side by side can all start under the limit, and
    /// the query must stop at the first to finish past it rather than succeed.
    fn count(&self, n: u64, location: &Path) -> Result<()> {
        self.bytes.add(n as usize);
        self.check(location)
    }
}

fn cutoff_error(location: &Path) -> object_store::Error {
    object_store::Error::Generic {
        store: "glaux",
        source: Box::new(ScanLimitExceeded { location: location.to_string() }),
    }
}

/// The error of a read stopped by the scan limit, recognised by its type wherever it surfaces.
#[derive(Debug)]
pub struct ScanLimitExceeded {
    location: String,
}

impl fmt::Display for ScanLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CUTOFF_MESSAGE} (reading {})", self.location)
    }
}

impl std::error::Error for ScanLimitExceeded {}

/// Whether `error`, or anything it wraps, is a read stopped by the scan limit.
pub fn is_scan_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<ScanLimitExceeded>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// An [`ObjectStore`] that reports every payload byte it hands out to a [`ScanMeter`].
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    meter: Arc<ScanMeter>,
    /// Local disk reads exactly the ranges asked for; remote stores merge nearby ones.
    local: bool,
    merge: RangeMerge,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, meter: Arc<ScanMeter>) -> Self {
        Self { inner, meter, local: false, merge: RangeMerge::default() }
    }

    /// How nearby reads of a remote object merge into one request.
    pub fn merge(mut self, merge: RangeMerge) -> Self {
        self.merge = merge;
        self
    }

    /// A store over local files, whose own `get_ranges` reads each range from one open file.
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
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
    /// Where the rest of a body that ended early is asked for again.
    resume: Resume,
    /// Bytes of the response not yet passed on.
    unread: u64,
    failed: bool,
    /// The last poll found nothing arrived yet.
    waiting: bool,
    /// Some of the body was passed on.
    started: bool,
}

/// What a body that ends before its range does is needed to ask for the rest: a response whose
/// Content-Length disagrees with its Content-Range looks complete to HTTP, and would otherwise
/// hand the engine a short object as if it were whole.
struct Resume {
    store: Arc<dyn ObjectStore>,
    range: Range<u64>,
    e_tag: Option<String>,
    attempts: u32,
}

/// Requests for the rest of one body before its read fails.
const RESUME_ATTEMPTS: u32 = 3;

impl MeteredStream {
    /// The body ended `self.unread` bytes short: a stream of the rest of it (of the same object
    /// version), or the error that names the object.
    fn rest(&mut self) -> Result<BoxStream<'static, Result<Bytes>>> {
        let r = &mut self.resume;
        let start = r.range.end - self.unread;
        if r.attempts >= RESUME_ATTEMPTS {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "{}: the response ended after {} of {} bytes, {} times",
                    self.location,
                    start - r.range.start,
                    r.range.end - r.range.start,
                    r.attempts + 1
                )
                .into(),
            });
        }
        r.attempts += 1;
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..r.range.end)),
            if_match: r.e_tag.clone(),
            ..Default::default()
        };
        let (store, location) = (Arc::clone(&r.store), self.location.clone());
        let rest = async move { store.get_opts(&location, options).await.map(GetResult::into_stream) };
        Ok(futures::stream::once(rest).try_flatten().boxed())
    }
}

/// What is left of a response its reader dropped, having taken part of it, that the server
/// has already sent: the connection's buffers hold more than this, so it left the server and
/// counts. (A text range reader reads past its range to the end of a line, 16 KiB ahead, and
/// drops the rest.) A larger remainder, or one dropped while waiting for the server (a cancel,
/// a timeout), counts only as far as it arrived.
const SENT_BEFORE_DROP: u64 = 64 * 1024;

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if self.started && !self.failed && !self.waiting && self.unread > 0 && self.unread <= SENT_BEFORE_DROP {
            // A body that has already ended (a server whose Content-Length was shorter than the
            // range it stated) sent no remainder: one look, without waiting, tells.
            let mut look = Context::from_waker(futures::task::noop_waker_ref());
            if matches!(self.inner.poll_next_unpin(&mut look), Poll::Ready(None)) {
                return;
            }
            self.meter.bytes.add(self.unread as usize);
        }
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.started && self.unread == 0 {
            // The whole range is here: whatever the connection does next (a Content-Length
            // that promised more, then a close) is not the engine's concern, and a retry of an
            // empty range would fetch the object again.
            return Poll::Ready(None);
        }
        let mut polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &mut polled
            && chunk.len() as u64 > self.unread
        {
            // never more than the range: bytes past it are not the object's
            chunk.truncate(self.unread as usize);
        }
        while matches!(polled, Poll::Ready(None)) && self.unread > 0 && !self.failed {
            match self.rest() {
                Ok(rest) => {
                    self.inner = rest;
                    polled = self.inner.poll_next_unpin(cx);
                }
                Err(e) => {
                    self.failed = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        self.waiting = polled.is_pending();
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.started = true;
                self.unread = self.unread.saturating_sub(chunk.len() as u64);
                if let Err(e) = self.meter.count(chunk.len() as u64, &self.location) {
                    self.failed = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            Poll::Ready(Some(Err(_))) => self.failed = true,
            Poll::Ready(None) => self.unread = 0,
            Poll::Pending => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl_store_over_inner!(MeteredStore {
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.meter.check(location)?;
        // A whole object is asked for as `bytes=0-`: the server then states the object's size
        // in Content-Range, so a body cut short behind a Content-Length that agrees with it is
        // caught (a plain GET learns the size from that Content-Length alone). An empty object
        // has no byte 0 (416): it is asked for plainly.
        let whole = options.range.is_none() && !options.head && !self.local;
        let ranged =
            GetOptions { range: whole.then_some(GetRange::Offset(0)).or(options.range.clone()), ..options.clone() };
        let got = match self.inner.get_opts(location, ranged).await {
            Err(e) if whole && e.to_string().contains("416") => self.inner.get_opts(location, options).await,
            got => got,
        };
        let GetResult { payload, meta, range, attributes } = got?;
        let body = match payload {
            GetResultPayload::Stream(body) => body,
            // A local file is handed over as a file handle and read whole by its consumer
            // (DataFusion reads it directly, much faster than a stream): its range counts.
            file @ GetResultPayload::File(..) => {
                self.meter.count(range.end - range.start, location)?;
                return Ok(GetResult { payload: file, meta, range, attributes });
            }
        };
        let resume =
            Resume { store: Arc::clone(&self.inner), range: range.clone(), e_tag: meta.e_tag.clone(), attempts: 0 };
        let body = MeteredStream {
            inner: body,
            meter: Arc::clone(&self.meter),
            location: location.clone(),
            resume,
            unread: range.end - range.start,
            failed: false,
            waiting: false,
            started: false,
        };
        Ok(GetResult { payload: GetResultPayload::Stream(body.boxed()), meta, range, attributes })
    }

    /// Ranges are merged by the store's rule ([`RangeMerge`]), and each request is a ranged GET
    /// whose body is counted chunk by chunk as it arrives: gap bytes the server sends for a
    /// merged request count too, and so does the part of a range that arrived before the
    /// query was cancelled or cut off.
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.local {
            self.meter.check(location)?;
            let out = self.inner.get_ranges(location, ranges).await?;
            self.meter.count(out.iter().map(|b| b.len() as u64).sum(), location)?;
            return Ok(out);
        }
        self.merge
            .fetch(ranges, |range| async move {
                let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
                self.get_opts(location, options).await?.bytes().await
            })
            .await
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, ListResult, MultipartUpload, ObjectMeta, ObjectStoreExt, PutMultipartOptions, PutOptions,
        PutPayload, PutResult,
    };
    use std::sync::atomic::{AtomicU64, Ordering};

    impl MeteredStore {
        async fn get_range_stream(&self, path: &Path, range: Range<u64>) -> BoxStream<'static, Result<Bytes>> {
            let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
            self.get_opts(path, options).await.unwrap().into_stream()
        }
    }

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
    async fn a_small_unread_remainder_was_served_and_counts() {
        // bodies that send 10 bytes, then wait
        let (mem, path) = store_with(1 << 20).await;
        let stalling: Arc<dyn ObjectStore> = Arc::new(Stalling(mem));
        let meter = Arc::new(ScanMeter::new());
        let store = MeteredStore::new(Arc::clone(&stalling), Arc::clone(&meter));
        // a range reader takes one chunk of a 20 KiB lookahead and drops the rest
        let mut body = store.get_range_stream(&path, 0..20 * 1024).await;
        assert_eq!(body.next().await.unwrap().unwrap().len(), 10);
        drop(body);
        assert_eq!(meter.bytes(), 20 * 1024);
        // a large remainder (a cancelled scan) counts only what arrived
        let meter = Arc::new(ScanMeter::new());
        let store = MeteredStore::new(Arc::clone(&stalling), Arc::clone(&meter));
        let mut body = store.get_range_stream(&path, 0..1 << 20).await;
        assert_eq!(body.next().await.unwrap().unwrap().len(), 10);
        drop(body);
        assert_eq!(meter.bytes(), 10);
        // and so does a small one dropped while waiting for the server
        let meter = Arc::new(ScanMeter::new());
        let store = MeteredStore::new(stalling, Arc::clone(&meter));
        let mut body = store.get_range_stream(&path, 0..20 * 1024).await;
        body.next().await.unwrap().unwrap();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), body.next()).await.is_err());
        drop(body);
        assert_eq!(meter.bytes(), 10);
    }

    #[tokio::test]
    async fn ranges_count_what_each_store_reads() {
        // a remote store merges nearby ranges: the gap travels and counts
        let (mem, path) = store_with(1000).await;
        let meter = Arc::new(ScanMeter::new());
        let remote = MeteredStore::new(mem, Arc::clone(&meter));
        let got = remote.get_ranges(&path, &[0..10, 100..110]).await.unwrap();
        assert_eq!(got.iter().map(|b| b.len()).collect::<Vec<_>>(), [10, 10]);
        assert_eq!(meter.bytes(), 110);
        // local disk reads exactly the ranges
        let dir = std::env::temp_dir().join(format!("glaux-meter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.bin"), vec![7u8; 1000]).unwrap();
        let fs: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap());
        let meter = Arc::new(ScanMeter::new());
        let local = MeteredStore::new(fs, Arc::clone(&meter)).local(true);
        local.get_ranges(&Path::from("data.bin"), &[0..10, 100..110]).await.unwrap();
        assert_eq!(meter.bytes(), 20);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store whose bodies send their first 10 bytes and then stall, as a slow server would.
    #[derive(Debug)]
    struct Stalling(Arc<dyn ObjectStore>);

    impl fmt::Display for Stalling {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Stalling")
        }
    }

    #[async_trait]
    impl ObjectStore for Stalling {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.0.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(&self, l: &Path, o: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
            self.0.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
            let got = self.0.get_opts(l, o).await?;
            let range = got.range.clone();
            let all = got.bytes().await?;
            let first = futures::stream::once(async move { Ok(all.slice(0..10)) });
            let body = first.chain(futures::stream::pending()).boxed();
            Ok(GetResult {
                payload: GetResultPayload::Stream(body),
                meta: got_meta(&self.0, l).await?,
                range,
                attributes: Default::default(),
            })
        }
        fn delete_stream(&self, l: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
            self.0.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.0.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> Result<ListResult> {
            self.0.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> Result<()> {
            self.0.copy_opts(f, t, o).await
        }
    }

    async fn got_meta(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<ObjectMeta> {
        store.head(path).await
    }

    #[tokio::test]
    async fn a_range_cut_short_counts_what_arrived() {
        // a coalesced range read in part, then dropped (a cancel or a timeout): the 10 bytes
        // that came are billed, as storage served them
        let (mem, path) = store_with(1000).await;
        let meter = Arc::new(ScanMeter::new());
        let store = MeteredStore::new(Arc::new(Stalling(mem)), Arc::clone(&meter));
        let read = store.get_ranges(&path, &[0..100, 120..300]);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(100), read).await.is_err());
        assert_eq!(meter.bytes(), 10);
    }

    #[tokio::test]
    async fn cutoff_stops_reads() {
        let (mem, path) = store_with(100).await;
        let meter = Arc::new(ScanMeter::with_cutoff(Some(50)));
        let store = MeteredStore::new(mem, Arc::clone(&meter));
        let err = store.get(&path).await.unwrap().bytes().await.unwrap_err();
        assert!(err.to_string().contains(CUTOFF_MESSAGE), "{err}");
        assert!(is_scan_limit(&err), "the limit is known by its type: {err:?}");
        let wrapped = datafusion::error::DataFusionError::ObjectStore(Box::new(err));
        assert!(is_scan_limit(&wrapped));
        assert!(meter.exceeded());
        assert_eq!(meter.bytes(), 100);
    }

    #[tokio::test]
    async fn a_read_that_crosses_the_cutoff_fails_though_it_started_under_it() {
        // two ranged reads side by side both start under the limit; the query must not go on
        let (mem, path) = store_with(100).await;
        let meter = Arc::new(ScanMeter::with_cutoff(Some(50)));
        let store = MeteredStore::new(mem, Arc::clone(&meter));
        let (a, b) = tokio::join!(store.get_range(&path, 0..40), store.get_range(&path, 40..80));
        assert!(a.is_ok() != b.is_ok(), "exactly one read crosses the cutoff: {a:?} {b:?}");
        assert_eq!(meter.bytes(), 80);
        // one coalesced request past the limit fails as a whole
        let meter = Arc::new(ScanMeter::with_cutoff(Some(50)));
        let store = MeteredStore::new(store_with(100).await.0, Arc::clone(&meter));
        let err = store.get_ranges(&path, &[0..30, 30..60]).await.unwrap_err();
        assert!(err.to_string().contains(CUTOFF_MESSAGE), "{err}");
    }

    /// Answers the first `short` reads with half their body, ending cleanly: a response whose
    /// Content-Length was half its Content-Range looks like this.
    #[derive(Debug)]
    struct ShortBodies(Arc<dyn ObjectStore>, AtomicU64);

    impl fmt::Display for ShortBodies {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "ShortBodies")
        }
    }

    #[async_trait]
    impl ObjectStore for ShortBodies {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.0.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(&self, l: &Path, o: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
            self.0.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
            let got = self.0.get_opts(l, o).await?;
            let (range, meta) = (got.range.clone(), got.meta.clone());
            let mut all = got.bytes().await?;
            let short = self.1.load(Ordering::Relaxed);
            if short > 0 {
                self.1.store(short - 1, Ordering::Relaxed);
                all = all.slice(0..all.len() / 2);
            }
            let body = futures::stream::once(async move { Ok(all) }).boxed();
            Ok(GetResult { payload: GetResultPayload::Stream(body), meta, range, attributes: Default::default() })
        }
        fn delete_stream(&self, l: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
            self.0.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.0.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> Result<ListResult> {
            self.0.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> Result<()> {
            self.0.copy_opts(f, t, o).await
        }
    }

    #[tokio::test]
    async fn a_body_that_ends_early_is_completed_or_fails_naming_the_object() {
        let (mem, path) = store_with(1000).await;
        let want = mem.get_range(&path, 100..900).await.unwrap();
        // twice short, then whole: the rest is asked for and the bytes are the object's
        let meter = Arc::new(ScanMeter::new());
        let store = MeteredStore::new(Arc::new(ShortBodies(Arc::clone(&mem), AtomicU64::new(2))), Arc::clone(&meter));
        assert_eq!(store.get_range(&path, 100..900).await.unwrap(), want);
        assert_eq!(meter.bytes(), 800, "each byte that arrived counts once");
        // always short: an error that names the object, never a short object taken as whole
        let store = MeteredStore::new(Arc::new(ShortBodies(mem, AtomicU64::new(u64::MAX))), Arc::new(ScanMeter::new()));
        let err = store.get_range(&path, 100..900).await.unwrap_err().to_string();
        assert!(err.contains("t/data.bin") && err.contains("ended after"), "{err}");
    }
}
