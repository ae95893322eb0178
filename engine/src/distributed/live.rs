//! Live scan totals across workers: a worker keeps its tasks' meters by query, answers how much
//! a query has read so far, and stops a query's reads when told. A coordinator whose query has a
//! scan limit asks every worker while the query runs, so the limit stops the query everywhere as
//! soon as the total passes it — not only when one task alone passes it, nor after every task
//! has ended; and a query that ends early (a cancel, an error, the limit) tells its workers to
//! stop, rather than trusting that dropped streams reach every task that still reads.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use datafusion::error::DataFusionError;
use http::uri::PathAndQuery;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError};
use tonic::transport::{Channel, Endpoint};
use url::Url;

use super::SECRET_HEADER;
use super::workers::Workers;
use crate::storage::ScanMeter;

/// The header that names the query a task belongs to.
pub(super) const QUERY_HEADER: &str = "x-glaux-query";
/// The gRPC method a worker answers a query's bytes so far on.
const SCANNED_PATH: &str = "/glaux.Meter/Scanned";
/// The gRPC method that stops a query's reads on a worker (and answers its bytes so far).
const STOP_PATH: &str = "/glaux.Meter/Stop";
/// How often a coordinator asks while a query with a scan limit runs.
const POLL: Duration = Duration::from_millis(100);
/// How long a worker keeps a query's meters: longer than any query runs.
const KEEP: Duration = Duration::from_secs(6 * 3600);
/// How long a worker remembers that a query ended, so a task of it that arrives late is
/// stopped at once.
const REMEMBER_ENDED: Duration = Duration::from_secs(600);

/// The query a coordinator's session belongs to, as its workers know it.
#[derive(Debug, Clone)]
pub(super) struct QueryTag(pub String);

/// On a worker: the meters of the tasks it ran, by query, and whether the query ended. A task's
/// meter stays after the task ended, because its bytes were read for the query; when the
/// coordinator says the query ended, its meters go and a marker stays a while.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveMeters(Arc<Mutex<HashMap<String, QueryMeters>>>);

#[derive(Debug)]
struct QueryMeters {
    /// When the first task arrived, or, once stopped, when the query ended.
    since: Instant,
    meters: Vec<Arc<ScanMeter>>,
    stopped: bool,
}

impl QueryMeters {
    /// `query`'s entry in `map`, new if the worker has not heard of it.
    fn of<'a>(map: &'a mut HashMap<String, QueryMeters>, query: &str) -> &'a mut QueryMeters {
        map.entry(query.to_string()).or_insert_with(|| QueryMeters {
            since: Instant::now(),
            meters: vec![],
            stopped: false,
        })
    }
}

impl LiveMeters {
    /// Counts `meter` towards `query`, stopped at once if the query already ended (and forgets
    /// queries that ended a while ago, or that no coordinator ended in longer than any query
    /// runs).
    pub(super) fn register(&self, query: &str, meter: Arc<ScanMeter>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, q| q.since.elapsed() < if q.stopped { REMEMBER_ENDED } else { KEEP });
        let entry = QueryMeters::of(&mut map, query);
        if entry.stopped {
            meter.stop();
        }
        entry.meters.push(meter);
    }

    /// What `query`'s tasks on this worker have read so far.
    fn scanned(&self, query: &str) -> u64 {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(query).map_or(0, |q| q.meters.iter().map(|m| m.bytes()).sum())
    }

    /// Fails every read of `query` on this worker from now on, those under way included, and
    /// lets go of its meters; answers what the query read here.
    fn stop(&self, query: &str) -> u64 {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = QueryMeters::of(&mut map, query);
        entry.meters.iter().for_each(|m| m.stop());
        let scanned = entry.meters.drain(..).map(|m| m.bytes()).sum();
        entry.stopped = true;
        entry.since = Instant::now();
        scanned
    }
}

/// A worker's answer to "how much has this query read here".
#[derive(Debug, Clone)]
pub(super) struct MeterService(pub LiveMeters);

impl tonic::server::NamedService for MeterService {
    const NAME: &'static str = "glaux.Meter";
}

impl<B> Service<http::Request<B>> for MeterService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let meters = self.0.clone();
        Box::pin(async move {
            let stop = match request.uri().path() {
                SCANNED_PATH => false,
                STOP_PATH => true,
                other => return Ok(Status::unimplemented(format!("no method {other}")).into_http()),
            };
            Ok(tonic::server::Grpc::new(BytesCodec).unary(Scanned { meters, stop }, request).await)
        })
    }
}

/// Answers a query's bytes on this worker, stopping its reads first if `stop`.
struct Scanned {
    meters: LiveMeters,
    stop: bool,
}

impl tonic::server::UnaryService<Bytes> for Scanned {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (meters, stop) = (self.meters.clone(), self.stop);
        Box::pin(async move {
            let query = std::str::from_utf8(request.get_ref())
                .map_err(|_| Status::invalid_argument("a query id is UTF-8 text"))?;
            let scanned = if stop { meters.stop(query) } else { meters.scanned(query) };
            Ok(tonic::Response::new(Bytes::copy_from_slice(&scanned.to_be_bytes())))
        })
    }
}

/// Messages as they are: a query id out, eight bytes of count back.
#[derive(Debug, Clone, Copy, Default)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// On a coordinator: one query as its workers know it, and channels to them made once.
#[derive(Debug, Clone)]
pub(super) struct QueryOnWorkers {
    pub query: String,
    pub secret: Option<String>,
    pub workers: Workers,
    channels: Arc<Mutex<HashMap<Url, Channel>>>,
}

impl QueryOnWorkers {
    pub fn new(query: String, secret: Option<String>, workers: Workers) -> Self {
        Self { query, secret, workers, channels: Arc::default() }
    }

    /// What the query has read on its workers so far. A worker that does not answer now counts
    /// nothing this time: its failure ends the query through the plan's own streams.
    async fn scanned(&self) -> u64 {
        let asks = self.workers.live().into_iter().map(|url| self.ask(url, SCANNED_PATH));
        futures::future::join_all(asks).await.into_iter().map(|r| r.unwrap_or(0)).sum()
    }

    /// Tells every worker to stop the query's reads.
    pub async fn stop(&self) {
        let asks = self.workers.live().into_iter().map(|url| self.ask(url, STOP_PATH));
        futures::future::join_all(asks).await;
    }

    /// Calls `path` on the worker at `url` about this query; the answer is its bytes so far.
    async fn ask(&self, url: Url, path: &'static str) -> Result<u64, Status> {
        let channel = {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            match channels.get(&url) {
                Some(channel) => channel.clone(),
                None => {
                    let endpoint = Endpoint::from_shared(url.to_string())
                        .map_err(|e| Status::invalid_argument(e.to_string()))?
                        .connect_timeout(Duration::from_millis(500))
                        .timeout(Duration::from_secs(2));
                    // connects on first use
                    let channel = endpoint.connect_lazy();
                    channels.insert(url, channel.clone());
                    channel
                }
            }
        };
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(Bytes::copy_from_slice(self.query.as_bytes()));
        if let Some(secret) = &self.secret {
            let value = secret.parse().map_err(|_| Status::invalid_argument("the secret is not a header value"))?;
            request.metadata_mut().insert(SECRET_HEADER, value);
        }
        let answer = client.unary(request, PathAndQuery::from_static(path), BytesCodec).await?.into_inner();
        let bytes: [u8; 8] = answer.as_ref().try_into().map_err(|_| Status::data_loss("a count is eight bytes"))?;
        Ok(u64::from_be_bytes(bytes))
    }
}

/// On a coordinator: a query's running total over its workers, checked against its limit.
pub(super) struct LiveTotal {
    pub on: QueryOnWorkers,
    pub meter: Arc<ScanMeter>,
    pub cutoff: u64,
}

impl LiveTotal {
    /// Resolves, with the scan limit's error, once the coordinator's bytes and its workers'
    /// pass the limit; never while they stay under it. The workers' bytes so far are counted
    /// to the query (they were read, and the query is billed for them).
    pub async fn passed(self) -> DataFusionError {
        loop {
            tokio::time::sleep(POLL).await;
            let remote = self.on.scanned().await;
            if self.meter.bytes() + remote > self.cutoff {
                return match self.meter.add_remote(remote, "files on the workers") {
                    Err(e) => DataFusionError::from(e),
                    Ok(()) => DataFusionError::Internal("the scan limit check found no excess".into()),
                };
            }
        }
    }
}

/// Tells a query's workers that it ended when it is dropped: if it ended early (a cancel, an
/// error, the scan limit) their reads stop; after a normal finish they only let go of its
/// meters.
#[derive(Debug)]
pub(super) struct StopOnDrop(pub QueryOnWorkers);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let on = self.0.clone();
            runtime.spawn(async move { on.stop().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_counts_every_task_it_ran_here_and_no_other_query() {
        let live = LiveMeters::default();
        let meter = || Arc::new(ScanMeter::new());
        let (a, b, other) = (meter(), meter(), meter());
        live.register("q1", Arc::clone(&a));
        live.register("q1", Arc::clone(&b));
        live.register("q2", Arc::clone(&other));
        a.counter().add(100);
        b.counter().add(20);
        other.counter().add(7);
        assert_eq!(live.scanned("q1"), 120);
        assert_eq!(live.scanned("q2"), 7);
        assert_eq!(live.scanned("q3"), 0);
    }

    #[tokio::test]
    async fn a_stopped_query_fails_its_reads_on_this_worker_and_no_other_querys() {
        use object_store::{ObjectStore, ObjectStoreExt};
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = object_store::path::Path::from("t/a.csv");
        store.put(&path, vec![1u8; 100].into()).await.unwrap();
        let live = LiveMeters::default();
        let (stopped, running) = (Arc::new(ScanMeter::new()), Arc::new(ScanMeter::new()));
        live.register("q1", Arc::clone(&stopped));
        live.register("q2", Arc::clone(&running));
        live.stop("q1");
        let read = |meter: &Arc<ScanMeter>| {
            let metered = crate::storage::MeteredStore::new(Arc::clone(&store), Arc::clone(meter));
            let path = path.clone();
            async move { metered.get(&path).await?.bytes().await }
        };
        assert_eq!(live.scanned("q1"), 0, "an ended query's meters are let go of");
        let error = read(&stopped).await.unwrap_err().to_string();
        assert!(error.contains("stopped") && error.contains("t/a.csv"), "{error}");
        assert_eq!(read(&running).await.unwrap().len(), 100);
        // a task that starts after the stop is stopped too
        let late = Arc::new(ScanMeter::new());
        live.register("q1", Arc::clone(&late));
        assert!(read(&late).await.is_err());
    }
}
