//! The function's settings, read from its environment once per cold start.

use std::path::PathBuf;
use std::time::Duration;

use glaux_engine::glaux_catalog::CatalogKind;

use crate::error::{Error, Result};

/// The share of the function's memory the engine's pool may hold: the rest is the process,
/// the reader's buffers and the results being sent back.
const POOL_SHARE: f64 = 0.5;
/// The pool never goes below this, whatever the function's memory.
const POOL_MIN: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `glue` (the default on Lambda) or `local` (a warehouse folder).
    pub catalog: CatalogKind,
    /// The local catalog, the query history and the workgroups; `/tmp` is the only writable
    /// disk on Lambda, so they last as long as the execution environment.
    pub warehouse: PathBuf,
    pub database: String,
    pub work_group: String,
    /// Where results go when neither the event nor its workgroup says.
    pub output_location: Option<String>,
    /// The engine's memory pool (from AWS_LAMBDA_FUNCTION_MEMORY_SIZE); sorts, joins and
    /// aggregations past it spill to `spill_dir`.
    pub memory_limit: Option<usize>,
    pub spill_dir: PathBuf,
    /// Credentials HTTP requests must carry (a file as `glaux serve --auth-file` reads); a
    /// Function URL with AWS_IAM auth checks callers before glaux sees them.
    pub auth_file: Option<PathBuf>,
    pub max_concurrent: usize,
    pub query_timeout: Duration,
    /// A folder of the function's disk SQL may read (an EFS mount, say); without it, S3 only.
    pub allow_local_files: Option<PathBuf>,
    /// Where SQL may write (COPY TO), comma-separated (GLAUX_ALLOW_WRITE); none by default.
    pub allow_write: Vec<String>,
    /// GLAUX_FUNCTION_URL_AUTH=iam: the Function URL checks callers with IAM, so HTTP events
    /// may be served without an auth file. Otherwise they need one.
    pub function_url_iam: bool,
    /// GLAUX_WORKERS: `glaux worker` processes the function can reach (in its VPC), to spread
    /// plans larger than GLAUX_DISTRIBUTE_ABOVE bytes over; requests carry GLAUX_CLUSTER_SECRET.
    pub workers: Option<glaux_engine::WorkerSource>,
    pub distribute_above: u64,
    pub cluster_secret: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Settings from a lookup of environment variables (tests pass their own).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let catalog = var("GLAUX_CATALOG").unwrap_or_else(|| "glue".into());
        let catalog = catalog.parse().map_err(|e: glaux_engine::glaux_catalog::Error| Error::Setting {
            name: "GLAUX_CATALOG",
            value: catalog.clone(),
            reason: e.to_string(),
        })?;
        let number = |name: &'static str| -> Result<Option<u64>> {
            var(name)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|e| Error::Setting {
                        name,
                        value: v.clone(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        };
        let memory_limit = number("GLAUX_MEMORY_LIMIT_MB")?
            .map(|mb| mb as usize * 1024 * 1024)
            .or(number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?
                .map(|mb| ((mb as f64 * 1024.0 * 1024.0 * POOL_SHARE) as usize).max(POOL_MIN)));
        let setting = |name: &'static str, value: &str, e: &dyn std::fmt::Display| Error::Setting {
            name,
            value: value.to_string(),
            reason: e.to_string(),
        };
        let workers = match var("GLAUX_WORKERS").filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(glaux_engine::WorkerSource::parse(&v).map_err(|e| setting("GLAUX_WORKERS", &v, &e))?),
            None => None,
        };
        let cluster_secret = glaux_engine::cluster_secret(var("GLAUX_CLUSTER_SECRET"))
            .map_err(|e| setting("GLAUX_CLUSTER_SECRET", "…", &e))?;
        Ok(Self {
            workers,
            distribute_above: number("GLAUX_DISTRIBUTE_ABOVE")?.unwrap_or(glaux_engine::DEFAULT_DISTRIBUTE_ABOVE),
            cluster_secret,
            catalog,
            warehouse: var("GLAUX_WAREHOUSE").map(PathBuf::from).unwrap_or_else(|| "/tmp/glaux/warehouse".into()),
            database: var("GLAUX_DATABASE").unwrap_or_else(|| "default".into()),
            work_group: var("GLAUX_WORKGROUP").unwrap_or_else(|| glaux_engine::PRIMARY.into()),
            output_location: var("GLAUX_OUTPUT_LOCATION").filter(|v| !v.is_empty()),
            memory_limit,
            spill_dir: var("GLAUX_SPILL_DIR").map(PathBuf::from).unwrap_or_else(|| "/tmp/glaux/spill".into()),
            auth_file: var("GLAUX_AUTH_FILE").map(PathBuf::from),
            max_concurrent: number("GLAUX_MAX_CONCURRENT_QUERIES")?.unwrap_or(4).max(1) as usize,
            query_timeout: Duration::from_secs(number("GLAUX_QUERY_TIMEOUT_SECONDS")?.unwrap_or(900)),
            allow_local_files: var("GLAUX_ALLOW_LOCAL_FILES").filter(|v| !v.is_empty()).map(PathBuf::from),
            allow_write: var("GLAUX_ALLOW_WRITE")
                .map(|v| v.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            function_url_iam: match var("GLAUX_FUNCTION_URL_AUTH").as_deref().map(str::trim) {
                None | Some("") | Some("none") => false,
                Some(v) if v.eq_ignore_ascii_case("iam") || v.eq_ignore_ascii_case("aws_iam") => true,
                Some(v) => {
                    return Err(Error::Setting {
                        name: "GLAUX_FUNCTION_URL_AUTH",
                        value: v.to_string(),
                        reason: "expected iam (the Function URL's AuthType is AWS_IAM) or none".into(),
                    });
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Settings> {
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_pool_is_half_the_function_memory() {
        let s = with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]).unwrap();
        assert_eq!(s.memory_limit, Some(512 * 1024 * 1024));
        assert_eq!(s.catalog, CatalogKind::Glue);
        let small = with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).unwrap();
        assert_eq!(small.memory_limit, Some(POOL_MIN));
        let set = with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"), ("GLAUX_MEMORY_LIMIT_MB", "100")]).unwrap();
        assert_eq!(set.memory_limit, Some(100 * 1024 * 1024));
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let e = with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")]).unwrap_err().to_string();
        assert!(e.starts_with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=lots"), "{e}");
        let e = with(&[("GLAUX_CATALOG", "hive")]).unwrap_err().to_string();
        assert!(e.starts_with("GLAUX_CATALOG=hive"), "{e}");
    }

    #[test]
    fn workers_and_the_secret_come_from_the_environment() {
        let s = with(&[
            ("GLAUX_WORKERS", "dns:glaux-worker.glaux.svc:9090"),
            ("GLAUX_CLUSTER_SECRET", "s3cret"),
            ("GLAUX_DISTRIBUTE_ABOVE", "1000"),
        ])
        .unwrap();
        assert_eq!(
            s.workers,
            Some(glaux_engine::WorkerSource::Dns { name: "glaux-worker.glaux.svc".into(), port: 9090 })
        );
        assert_eq!((s.cluster_secret.as_deref(), s.distribute_above), (Some("s3cret"), 1000));
        let none = with(&[]).unwrap();
        assert_eq!((none.workers, none.cluster_secret), (None, None));
        let e = with(&[("GLAUX_WORKERS", "dns:glaux-worker")]).unwrap_err().to_string();
        assert!(e.starts_with("GLAUX_WORKERS=dns:glaux-worker"), "{e}");
        let e = with(&[("GLAUX_CLUSTER_SECRET", "two words")]).unwrap_err().to_string();
        assert!(e.starts_with("GLAUX_CLUSTER_SECRET") && !e.contains("two words"), "{e}");
    }
}
