//! Where the workers are: a list, a file re-read when it changes, or a DNS name whose records
//! are the workers (a Kubernetes headless Service) — refreshed in the background, and only the
//! workers that answer are handed to the planner.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use datafusion::error::DataFusionError;
use datafusion_distributed::WorkerResolver;
use url::Url;

use crate::error::{Error, Result};

/// How long a worker has to accept a connection before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the list is looked at again (the file re-read, the name resolved, the workers probed).
const REFRESH: Duration = Duration::from_secs(2);

/// Where the worker list comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerSource {
    /// `http://host:port[,…]`
    List(Vec<Url>),
    /// `file:PATH` — one URL a line (`#` starts a comment), re-read when it changes.
    File(PathBuf),
    /// `dns:NAME:PORT` — every A and AAAA record of NAME is a worker on PORT.
    Dns { name: String, port: u16 },
}

impl WorkerSource {
    /// Reads `--workers`: `URL[,URL…]`, `file:PATH` or `dns:NAME:PORT`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("file:") {
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("dns:") {
            let (name, port) = rest.rsplit_once(':').ok_or_else(|| {
                Error::InvalidInput(format!("--workers '{text}': a DNS name needs a port (dns:NAME:PORT)"))
            })?;
            let port = port
                .parse()
                .map_err(|_| Error::InvalidInput(format!("--workers '{text}': '{port}' is not a port number")))?;
            if name.is_empty() {
                return Err(Error::InvalidInput(format!("--workers '{text}': no DNS name before the port")));
            }
            return Ok(Self::Dns { name: name.to_string(), port });
        }
        Ok(Self::List(parse_urls(text.split(',').map(str::trim), "--workers")?))
    }
}

/// Worker URLs from lines or list items; blank items and `#` comments are skipped.
fn parse_urls<'a>(items: impl Iterator<Item = &'a str>, origin: &str) -> Result<Vec<Url>> {
    let mut urls = vec![];
    for item in items {
        let item = item.split('#').next().unwrap_or("").trim();
        if item.is_empty() {
            continue;
        }
        let url = Url::parse(item).map_err(|e| Error::InvalidInput(format!("{origin}: '{item}' is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::InvalidInput(format!("{origin}: '{item}' is not an http(s)://host:port URL")));
        }
        urls.push(url);
    }
    Ok(urls)
}

/// A workers file as last read: its modification time and the URLs it held.
type FileRead = (SystemTime, Vec<Url>);

/// The workers a coordinator may use now: the source's, less those that did not answer.
#[derive(Debug, Clone)]
pub struct Workers {
    source: WorkerSource,
    live: Arc<RwLock<Vec<Url>>>,
    /// Every worker the source named at the last look, up or not.
    named: Arc<RwLock<Vec<Url>>>,
    /// The file's modification time when it was last read, and what it said.
    file: Arc<RwLock<Option<FileRead>>>,
}

impl Workers {
    /// Looks the workers up once (so the first query already sees them), then keeps the list
    /// fresh from a background task for as long as the list is in use.
    pub async fn start(source: WorkerSource) -> Result<Self> {
        let workers = Self { source, live: Arc::default(), named: Arc::default(), file: Arc::default() };
        match workers.refresh().await {
            Ok(()) => {}
            // a Service with no ready workers has no records yet: queries run here until it has
            Err(e) if matches!(workers.source, WorkerSource::Dns { .. }) => {
                eprintln!("glaux: no workers yet ({e}); queries run on this process until some answer");
            }
            Err(e) => return Err(e),
        }
        // the task holds the list weakly: when the last engine using it is gone, so is the task
        let weak = (Arc::downgrade(&workers.live), Arc::downgrade(&workers.named), Arc::downgrade(&workers.file));
        let source = workers.source.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                let (Some(live), Some(named), Some(file)) = (weak.0.upgrade(), weak.1.upgrade(), weak.2.upgrade())
                else {
                    return;
                };
                let background = Self { source: source.clone(), live, named, file };
                if let Err(e) = background.refresh().await {
                    eprintln!("glaux: the worker list was not refreshed: {e}");
                }
            }
        });
        Ok(workers)
    }

    /// The workers that answered the last probe.
    pub fn live(&self) -> Vec<Url> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the source again and probes every worker it names; a worker that is down is
    /// left out until it answers again.
    pub async fn refresh(&self) -> Result<()> {
        let candidates = self.candidates().await?;
        *self.named.write().unwrap_or_else(|p| p.into_inner()) = candidates.clone();
        let (live, _) = answering(candidates).await;
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = live;
        Ok(())
    }

    /// The workers the source names that do not answer now (a query that failed names them;
    /// the list of live ones may already have dropped a worker that died under it).
    pub async fn unreachable(&self) -> Vec<Url> {
        let named = self.named.read().unwrap_or_else(|p| p.into_inner()).clone();
        answering(named).await.1
    }

    async fn candidates(&self) -> Result<Vec<Url>> {
        match &self.source {
            WorkerSource::List(urls) => Ok(urls.clone()),
            WorkerSource::File(path) => {
                let modified = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .map_err(|e| Error::InvalidInput(format!("workers file {}: {e}", path.display())))?;
                if let Some((seen, urls)) = &*self.file.read().unwrap_or_else(|p| p.into_inner())
                    && *seen == modified
                {
                    return Ok(urls.clone());
                }
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::InvalidInput(format!("workers file {}: {e}", path.display())))?;
                let urls = parse_urls(text.lines(), &format!("workers file {}", path.display()))?;
                *self.file.write().unwrap_or_else(|p| p.into_inner()) = Some((modified, urls.clone()));
                Ok(urls)
            }
            WorkerSource::Dns { name, port } => {
                let addresses = tokio::net::lookup_host((name.as_str(), *port))
                    .await
                    .map_err(|e| Error::InvalidInput(format!("workers DNS name {name}: {e}")))?;
                let mut urls: Vec<Url> =
                    addresses.filter_map(|address| Url::parse(&format!("http://{address}")).ok()).collect();
                urls.sort();
                urls.dedup();
                Ok(urls)
            }
        }
    }
}

/// `urls` probed at once: those that answer, and those that do not, each in the given order.
async fn answering(urls: Vec<Url>) -> (Vec<Url>, Vec<Url>) {
    let answers = futures::future::join_all(urls.iter().map(probe)).await;
    let (up, down): (Vec<_>, Vec<_>) = urls.into_iter().zip(answers).partition(|(_, up)| *up);
    (up.into_iter().map(|(url, _)| url).collect(), down.into_iter().map(|(url, _)| url).collect())
}

/// Whether the worker at `url` accepts a connection.
async fn probe(url: &Url) -> bool {
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await, Ok(Ok(_)))
}

impl WorkerResolver for Workers {
    fn get_urls(&self) -> std::result::Result<Vec<Url>, DataFusionError> {
        Ok(self.live())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_from_the_flag() {
        let list = WorkerSource::parse("http://a:9090, http://b:9091").unwrap();
        let WorkerSource::List(urls) = list else { panic!("not a list") };
        assert_eq!(urls.iter().map(Url::as_str).collect::<Vec<_>>(), ["http://a:9090/", "http://b:9091/"]);
        assert_eq!(
            WorkerSource::parse("file:/etc/glaux/workers").unwrap(),
            WorkerSource::File("/etc/glaux/workers".into())
        );
        assert_eq!(
            WorkerSource::parse("dns:glaux-workers.default.svc:9090").unwrap(),
            WorkerSource::Dns { name: "glaux-workers.default.svc".into(), port: 9090 }
        );
        for bad in ["dns:name", "dns::9090", "dns:name:port", "ftp://a:1", "not a url"] {
            let error = WorkerSource::parse(bad).unwrap_err().to_string();
            assert!(error.contains(bad.split(',').next().unwrap()) || error.contains("port"), "{bad}: {error}");
        }
    }

    #[tokio::test]
    async fn only_workers_that_answer_are_used_and_the_file_is_reread() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = format!("http://{}", listener.local_addr().unwrap());
        // a port nothing listens on: bound, then closed
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let dir = std::env::temp_dir().join(format!("glaux-workers-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("workers");
        std::fs::write(&file, format!("# the cluster\n{up}\n{down}\n")).unwrap();
        let workers = Workers::start(WorkerSource::File(file.clone())).await.unwrap();
        assert_eq!(workers.get_urls().unwrap(), vec![Url::parse(&up).unwrap()]);
        // a new file: seen at the next refresh (a later modification time)
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, format!("{down}\n")).unwrap();
        workers.refresh().await.unwrap();
        assert!(workers.get_urls().unwrap().is_empty());
        std::fs::write(&file, "not a url\n").unwrap();
        let error = workers.refresh().await.unwrap_err().to_string();
        assert!(error.contains("'not a url'") && error.contains("workers file"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_name_without_records_yet_is_no_workers_not_an_error() {
        let source = WorkerSource::Dns { name: "no-such-worker.invalid".into(), port: 9090 };
        let workers = Workers::start(source).await.unwrap();
        assert!(workers.get_urls().unwrap().is_empty());
        let error = Workers::start(WorkerSource::File("/nonexistent/workers".into())).await.unwrap_err();
        assert!(error.to_string().contains("/nonexistent/workers"), "{error}");
    }
}
