//! A counting HTTP/1.1 proxy between glaux and the S3 server: it measures the object bytes the
//! server actually sent, independently of glaux's meter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Object-body bytes the server sent, per object path (`/bucket/key`), and the JSON API
/// requests that went through (target, body).
#[derive(Default, Clone)]
pub struct Counts(
    Arc<Mutex<HashMap<String, u64>>>,
    Arc<Mutex<Vec<(String, String)>>>,
    /// Each S3 request's signing key id and whether it carried a session token.
    Arc<Mutex<Vec<(String, bool)>>>,
    /// Requests the proxy has read and not yet finished answering and counting.
    Arc<AtomicUsize>,
);

/// How long [`Counts::total`] waits for answers still being counted.
const SETTLE: Duration = Duration::from_secs(2);

impl Counts {
    /// Object bytes over every object, once every request read so far is answered and counted.
    /// The proxy counts a body after it has sent it, so a client can have every byte (and a
    /// query be over) a moment before the count has them.
    pub fn total(&self) -> u64 {
        let start = Instant::now();
        while self.3.load(Ordering::SeqCst) > 0 && start.elapsed() < SETTLE {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.0.lock().unwrap().iter().filter(|(k, _)| k.starts_with('/')).map(|(_, v)| v).sum()
    }

    /// Response bytes of JSON API calls with this `X-Amz-Target` (`AWSGlue.GetPartitions`), and
    /// how many calls there were.
    pub fn api(&self, target: &str) -> (u64, u64) {
        let map = self.0.lock().unwrap();
        let get = |k: String| map.get(&k).copied().unwrap_or(0);
        (get(format!("target:{target}")), get(format!("calls:{target}")))
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
        self.1.lock().unwrap().clear();
        self.2.lock().unwrap().clear();
    }

    /// Object GETs that were answered with data (each ranged read is one).
    pub fn gets(&self) -> u64 {
        self.get("gets")
    }

    /// The objects read, by path (`/bucket/key`).
    pub fn objects(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().filter(|k| k.starts_with('/')).cloned().collect()
    }

    /// Bodies of the JSON API requests with this `X-Amz-Target`.
    pub fn requests(&self, target: &str) -> Vec<String> {
        self.1.lock().unwrap().iter().filter(|(t, _)| t == target).map(|(_, b)| b.clone()).collect()
    }

    /// The access key ids requests were signed with, in order, and whether each carried a
    /// session token (`X-Amz-Security-Token`).
    pub fn signers(&self) -> Vec<(String, bool)> {
        self.2.lock().unwrap().clone()
    }

    /// A named counter (`redirects:<bucket>`, `probes:<bucket>`, `calls:<target>`).
    pub fn get(&self, key: &str) -> u64 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// Whether `billed` bytes for a run under faults hold against `clean`, the bill of the same
    /// run without faults, and what the server sent meanwhile: each byte the engine received
    /// once, so never more than `clean` (less only where a reader let go of a body that had
    /// ended early), and never more than was sent. With no body broken off (only 503s, 500s and
    /// late first bytes) it is exactly both. When bodies broke off, the server sent more than was
    /// billed (a reset loses what is in flight), or up to 64 KiB per broken body less: the meter
    /// counts the unread end of a body a reader let go of as sent, and cannot tell one whose
    /// connection had died.
    pub fn bill_holds(&self, billed: u64, clean: u64) -> Result<(), String> {
        let served = self.total();
        let broken: u64 = [Fault::ResetMidBody, Fault::CutShort, Fault::ShortLength, Fault::LongLength]
            .iter()
            .map(|k| self.get(&format!("faults:{k:?}")))
            .sum();
        let holds = if broken == 0 {
            billed == clean && billed == served
        } else {
            billed <= clean && billed <= served + broken * 64 * 1024
        };
        if holds {
            Ok(())
        } else {
            Err(format!("billed {billed}, {clean} without faults, served {served}, {broken} broken bodies"))
        }
    }

    /// Object GETs of one object (`/bucket/key`).
    pub fn gets_of(&self, path: &str) -> u64 {
        self.get(&format!("gets:{path}"))
    }

    fn add_get(&self, path: &str, sent: u64) {
        self.add(path, sent);
        self.add("gets", 1);
        self.add(&format!("gets:{path}"), 1);
    }

    fn add(&self, path: &str, n: u64) {
        *self.0.lock().unwrap().entry(path.to_string()).or_default() += n;
    }
}

pub struct CountingProxy {
    pub endpoint: String,
    pub counts: Counts,
    regions: Regions,
    latency: Latency,
    faults: Faults,
}

/// A storage failure the proxy can inject into an object read (a GET of `/bucket/key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 503 SlowDown, as S3 answers when a prefix is read too fast.
    SlowDown,
    /// 500 InternalError.
    ServerError,
    /// Half the body, then a TCP reset.
    ResetMidBody,
    /// The answer starts a while late (the proxy's `slow_ms`).
    SlowFirstByte,
    /// Half the body, then the connection closes.
    CutShort,
    /// A Content-Length of half the body, and that half: a response that looks complete.
    ShortLength,
    /// A Content-Length larger than the body, then the connection closes.
    LongLength,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::SlowDown,
        Fault::ServerError,
        Fault::ResetMidBody,
        Fault::SlowFirstByte,
        Fault::CutShort,
        Fault::ShortLength,
        Fault::LongLength,
    ];
}

/// Which reads fail and how: `percent` of the object GETs under `prefix` (`/bucket/key…`), picked
/// by a seeded sequence so a run can be repeated, each fault the next of `kinds` in turn (so a
/// run with as many faults as kinds has injected every kind).
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub percent: u64,
    pub kinds: Vec<Fault>,
    pub prefix: String,
    pub seed: u64,
    /// How late a [`Fault::SlowFirstByte`] answer starts.
    pub slow_ms: u64,
}

type Faults = Arc<Mutex<(FaultPlan, u64, usize)>>;

/// The fault for the next object GET of `path`, if the plan picks one.
fn pick_fault(faults: &Faults, path: &str) -> Option<(Fault, u64)> {
    let mut state = faults.lock().unwrap();
    let (plan, n, injected) = &mut *state;
    if plan.percent == 0 || plan.kinds.is_empty() || !path.starts_with(&plan.prefix) {
        return None;
    }
    *n += 1;
    // the same sequence of decisions on every run
    if !crate::rng::Rng::new(plan.seed, *n).chance(plan.percent) {
        return None;
    }
    *injected += 1;
    Some((plan.kinds[(*injected - 1) % plan.kinds.len()], plan.slow_ms))
}

/// The head of a response with its Content-Length replaced by `n`.
fn with_content_length(head: &[u8], n: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {n}\r\n"));
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

/// Milliseconds every request waits before it is forwarded (a far-away server's round trip).
/// The wait before each request (ms) and the pace of each response body (bytes a second, 0 for
/// as fast as it comes).
type Latency = Arc<[std::sync::atomic::AtomicU64; 2]>;

/// Buckets that live in another region than the S3 server's: requests not signed for it are
/// answered as AWS answers them, with the bucket's region in `x-amz-bucket-region`.
type Regions = Arc<Mutex<HashMap<String, String>>>;

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr =
            upstream.trim_start_matches("http://").trim_end_matches('/').parse().expect("upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let counts = Counts::default();
        let regions = Regions::default();
        let latency = Latency::default();
        let faults = Faults::default();
        let (c, r, l, f) = (counts.clone(), Arc::clone(&regions), Arc::clone(&latency), Arc::clone(&faults));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (c, r, l, f) = (c.clone(), Arc::clone(&r), Arc::clone(&l), Arc::clone(&f));
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = relay(client, server, c, r, l, f).await;
                    }
                });
            }
        });
        Self { endpoint, counts, regions, latency, faults }
    }

    /// Object reads fail from now on as `plan` says; `faults:<Kind>` counts the injected ones
    /// and `faults` all of them. `FaultPlan::default()` stops injecting.
    pub fn set_faults(&self, plan: FaultPlan) {
        *self.faults.lock().unwrap() = (plan, 0, 0);
    }

    /// Every request from now on waits `ms` milliseconds before it goes to the server.
    pub fn set_latency(&self, ms: u64) {
        self.latency[0].store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every response body from now on comes at no more than `bytes_per_second` on its
    /// connection (0: as fast as the server sends it), as over a slow link.
    pub fn set_pace(&self, bytes_per_second: u64) {
        self.latency[1].store(bytes_per_second, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes `bucket` live in `region`: a request signed for another region gets a 301
    /// PermanentRedirect, an unsigned one a 403, both with `x-amz-bucket-region` (as from AWS);
    /// `redirects:<bucket>` and `probes:<bucket>` count them.
    pub fn place_bucket(&self, bucket: &str, region: &str) {
        self.regions.lock().unwrap().insert(bucket.to_string(), region.to_string());
    }
}

/// AWS's answer to a request for a bucket in another region, or `None` to forward it.
fn wrong_region(
    request_line: &str,
    headers: &HashMap<String, String>,
    regions: &Regions,
    counts: &Counts,
) -> Option<String> {
    let target = request_line.split_whitespace().nth(1)?;
    let bucket = target.trim_start_matches('/').split(['/', '?']).next()?;
    let region = regions.lock().unwrap().get(bucket).cloned()?;
    // Credential=KEY/DATE/REGION/s3/aws4_request
    let signed_for =
        headers.get("authorization").and_then(|a| a.split("Credential=").nth(1)).and_then(|c| c.split('/').nth(2));
    let (status, code) = match signed_for {
        Some(r) if r == region => return None,
        Some(_) => {
            counts.add(&format!("redirects:{bucket}"), 1);
            ("301 Moved Permanently", "PermanentRedirect")
        }
        None => {
            counts.add(&format!("probes:{bucket}"), 1);
            ("403 Forbidden", "AccessDenied")
        }
    };
    let mut body = format!("<Error><Code>{code}</Code><BucketRegion>{region}</BucketRegion></Error>");
    if request_line.starts_with("HEAD ") {
        body.clear();
    }
    Some(format!(
        "HTTP/1.1 {status}\r\nx-amz-bucket-region: {region}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// The head of a message: its first line and headers (lower-case names).
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    out: &mut Vec<u8>,
) -> std::io::Result<Option<(String, HashMap<String, String>)>> {
    let mut first = String::new();
    if r.read_line(&mut first).await? == 0 {
        return Ok(None);
    }
    out.extend_from_slice(first.as_bytes());
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        out.extend_from_slice(line.as_bytes());
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Some((first.trim_end().to_string(), headers)))
}

/// Copies a body of `n` bytes, returning how many went through.
async fn copy_exact<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut BufReader<R>,
    w: &mut W,
    n: u64,
) -> std::io::Result<u64> {
    let mut sent = 0;
    copy_counted(r, w, n, &mut sent, 0).await?;
    Ok(sent)
}

/// Copies up to `n` bytes, adding to `sent` what was passed on as it goes, so a client that
/// hangs up part way still shows what the server had sent through by then.
async fn copy_counted<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut BufReader<R>,
    w: &mut W,
    n: u64,
    sent: &mut u64,
    pace: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; if pace > 0 { 16 * 1024 } else { 64 * 1024 }];
    let mut left = n;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let got = r.read(&mut buf[..want]).await?;
        if got == 0 {
            return Ok(());
        }
        w.write_all(&buf[..got]).await?;
        *sent += got as u64;
        left -= got as u64;
        if pace > 0 {
            w.flush().await?;
            tokio::time::sleep(std::time::Duration::from_secs_f64(got as f64 / pace as f64)).await;
        }
    }
    Ok(())
}

/// Copies a chunked body as is, returning the payload size.
async fn copy_chunked<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut BufReader<R>,
    w: &mut W,
) -> std::io::Result<u64> {
    let mut payload = 0;
    loop {
        let mut size_line = String::new();
        r.read_line(&mut size_line).await?;
        w.write_all(size_line.as_bytes()).await?;
        let size = u64::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // trailers until the empty line
            loop {
                let mut l = String::new();
                r.read_line(&mut l).await?;
                w.write_all(l.as_bytes()).await?;
                if l.trim_end().is_empty() {
                    return Ok(payload);
                }
            }
        }
        payload += copy_exact(r, w, size).await?;
        let mut crlf = String::new();
        r.read_line(&mut crlf).await?;
        w.write_all(crlf.as_bytes()).await?;
    }
}

/// One request being answered, from when its head is read until its loop turn ends.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    counts: Counts,
    regions: Regions,
    latency: Latency,
    faults: Faults,
) -> std::io::Result<()> {
    let (cr, mut cw) = client.into_split();
    let (sr, mut sw) = server.into_split();
    let (mut cr, mut sr) = (BufReader::new(cr), BufReader::new(sr));
    loop {
        let mut head = vec![];
        let Some((request_line, headers)) = read_head(&mut cr, &mut head).await? else { return Ok(()) };
        let _answering = InFlight::new(&counts.3);
        let request_body = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if let Some(answer) = wrong_region(&request_line, &headers, &regions, &counts) {
            copy_exact(&mut cr, &mut tokio::io::sink(), request_body).await?;
            cw.write_all(answer.as_bytes()).await?;
            cw.flush().await?;
            continue;
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) =
            (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
        // Object reads are GETs of /bucket/key; listings carry a query string.
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let is_object = path.trim_start_matches('/').contains('/') && !query.contains("list-type");
        if std::env::var_os("GLAUX_PROXY_LOG").is_some() {
            // what a bench or a test sent, to see where requests go (bench/run s3 with it set)
            let range = headers.get("range").map(String::as_str).unwrap_or("-");
            eprintln!("proxy: {method} {target} range={range}");
        }
        let fault = if method == "GET" && is_object { pick_fault(&faults, path) } else { None };
        if let Some((kind, _)) = fault {
            counts.add(&format!("faults:{kind:?}"), 1);
            counts.add("faults", 1);
        }
        if let Some((kind @ (Fault::SlowDown | Fault::ServerError), _)) = fault {
            copy_exact(&mut cr, &mut tokio::io::sink(), request_body).await?;
            let (status, code) = match kind {
                Fault::SlowDown => ("503 Slow Down", "SlowDown"),
                _ => ("500 Internal Server Error", "InternalError"),
            };
            let body = format!("<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>");
            cw.write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
            cw.flush().await?;
            continue;
        }
        if let Some((Fault::SlowFirstByte, ms)) = fault {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let wait = latency[0].load(std::sync::atomic::Ordering::Relaxed);
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        sw.write_all(&head).await?;
        if let Some(key) =
            headers.get("authorization").and_then(|a| a.split("Credential=").nth(1)).and_then(|c| c.split('/').next())
        {
            counts.2.lock().unwrap().push((key.to_string(), headers.contains_key("x-amz-security-token")));
        }
        if let Some(target) = headers.get("x-amz-target") {
            // JSON API calls are small: keep their bodies for the test to look at
            let mut body = vec![0; request_body as usize];
            cr.read_exact(&mut body).await?;
            sw.write_all(&body).await?;
            counts.1.lock().unwrap().push((target.clone(), String::from_utf8_lossy(&body).into_owned()));
        } else {
            copy_exact(&mut cr, &mut sw, request_body).await?;
        }
        sw.flush().await?;
        let api_target = headers.get("x-amz-target").cloned();

        let mut head = vec![];
        let Some((status_line, headers)) = read_head(&mut sr, &mut head).await? else { return Ok(()) };
        let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let bodiless = method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
        let object_read = method == "GET" && (200..300).contains(&status) && is_object;
        let length: Option<u64> = headers.get("content-length").and_then(|v| v.parse().ok());
        if let (true, Some((kind, _)), Some(n)) = (object_read, fault, length) {
            let half = n / 2;
            let (announced, body) = match kind {
                Fault::ShortLength => (half, half),
                Fault::LongLength => (n + 100, n),
                Fault::ResetMidBody | Fault::CutShort => (n, half),
                _ => (n, n),
            };
            if announced != n || body != n {
                cw.write_all(&with_content_length(&head, announced)).await?;
                let mut sent = 0;
                let copied = copy_counted(&mut sr, &mut cw, body, &mut sent, 0).await;
                counts.add_get(path, sent);
                copied?;
                cw.flush().await?;
                if kind == Fault::ResetMidBody {
                    // a reset, not a close: the client loses what was still in flight
                    #[allow(deprecated)]
                    let _ = cw.as_ref().set_linger(Some(std::time::Duration::ZERO));
                }
                // the server's connection holds the rest of the body: both are dropped
                return Ok(());
            }
        }
        cw.write_all(&head).await?;
        let mut sent = 0;
        let pace = latency[1].load(std::sync::atomic::Ordering::Relaxed);
        let copied = if bodiless {
            Ok(())
        } else if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            copy_chunked(&mut sr, &mut cw).await.map(|n| sent = n)
        } else if let Some(n) = length {
            copy_counted(&mut sr, &mut cw, n, &mut sent, pace).await
        } else {
            copy_counted(&mut sr, &mut cw, u64::MAX, &mut sent, pace).await
        };
        if object_read {
            // what went through before a client hung up counts: the server sent it
            counts.add_get(path, sent);
        }
        copied?;
        cw.flush().await?;
        if let Some(t) = &api_target {
            counts.add(&format!("target:{t}"), sent);
            counts.add(&format!("calls:{t}"), 1);
        }
    }
}
