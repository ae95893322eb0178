//! `glaux.toml`: every setting the flags and the environment have, in one file. The file is
//! read before the command line, and a setting it holds becomes the environment variable of that
//! setting unless the environment already has it — so flags win over the environment, the
//! environment over the file, and the file over the defaults, as with the AWS tools.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

/// One setting: its name in the file, the environment variable it stands for, its default.
struct Setting {
    key: &'static str,
    env: &'static str,
    default: Option<&'static str>,
    secret: bool,
}

const fn plain(key: &'static str, env: &'static str, default: Option<&'static str>) -> Setting {
    Setting { key, env, default, secret: false }
}

const fn secret(key: &'static str, env: &'static str) -> Setting {
    Setting { key, env, default: None, secret: true }
}

/// Every setting glaux reads, by its name in `glaux.toml` (sections as in `[serve]`).
const SETTINGS: &[Setting] = &[
    plain("catalog", "GLAUX_CATALOG", Some("local")),
    plain("database", "GLAUX_DATABASE", Some("default")),
    plain("warehouse", "GLAUX_WAREHOUSE", Some("./warehouse")),
    plain("workgroup", "GLAUX_WORKGROUP", Some("primary")),
    plain("history_retention_days", "GLAUX_HISTORY_RETENTION_DAYS", None),
    plain("no_sign_request", "GLAUX_S3_ANONYMOUS", Some("false")),
    plain("repl.history_file", "GLAUX_HISTORY_FILE", Some("~/.glaux_history")),
    plain("serve.bind", "GLAUX_BIND", Some("127.0.0.1:8080")),
    plain("serve.auth_file", "GLAUX_AUTH_FILE", None),
    plain("serve.output_location", "GLAUX_OUTPUT_LOCATION", None),
    plain("serve.allow_local_files", "GLAUX_ALLOW_LOCAL_FILES", None),
    plain("serve.allow_write", "GLAUX_ALLOW_WRITE", None),
    plain("serve.memory_limit", "GLAUX_MEMORY_LIMIT", Some("half of the machine's memory")),
    plain("serve.max_concurrent_queries", "GLAUX_MAX_CONCURRENT_QUERIES", Some("8")),
    plain("serve.max_queued_queries", "GLAUX_MAX_QUEUED_QUERIES", Some("1000")),
    plain("serve.query_timeout_seconds", "GLAUX_QUERY_TIMEOUT_SECONDS", Some("1800")),
    plain("serve.result_memory", "GLAUX_RESULT_MEMORY", Some("16M")),
    plain("cluster.workers", "GLAUX_WORKERS", None),
    plain("cluster.distribute_above", "GLAUX_DISTRIBUTE_ABOVE", Some("64M")),
    secret("cluster.secret", "GLAUX_CLUSTER_SECRET"),
    plain("worker.bind", "GLAUX_WORKER_BIND", Some("127.0.0.1:9090")),
    plain("s3.endpoint", "AWS_ENDPOINT_URL_S3", None),
    plain("s3.max_retries", "GLAUX_S3_MAX_RETRIES", Some("3")),
    plain("s3.retry_timeout_secs", "GLAUX_S3_RETRY_TIMEOUT_SECS", Some("15")),
    plain("s3.connect_timeout_secs", "GLAUX_S3_CONNECT_TIMEOUT_SECS", Some("5")),
    plain("s3.merge_gap", "GLAUX_S3_MERGE_GAP", Some("16384")),
    plain("s3.merge_ratio", "GLAUX_S3_MERGE_RATIO", Some("0.03125")),
    plain("s3.merge_max_gap", "GLAUX_S3_MERGE_MAX_GAP", Some("1048576")),
    plain("aws.endpoint", "AWS_ENDPOINT_URL", None),
    plain("aws.glue_endpoint", "AWS_ENDPOINT_URL_GLUE", None),
    plain("aws.region", "AWS_REGION", None),
    plain("aws.profile", "AWS_PROFILE", None),
    plain("aws.access_key_id", "AWS_ACCESS_KEY_ID", None),
    secret("aws.secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    secret("aws.session_token", "AWS_SESSION_TOKEN"),
];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Environment,
    File(PathBuf),
    Default,
    Unset,
}

/// The file that was read and the settings it set.
#[derive(Debug, Default)]
pub struct Loaded {
    path: Option<PathBuf>,
    from_file: Vec<&'static str>,
}

/// The config file: `--config PATH`, else GLAUX_CONFIG, else `glaux.toml` in the warehouse
/// (`--warehouse`, GLAUX_WAREHOUSE or ./warehouse), else ./glaux.toml; `None` if there is none.
/// (The command line is looked at before clap reads it, since the file feeds clap's defaults.)
fn locate(args: &[String]) -> Result<Option<PathBuf>, String> {
    let flag = |name: &str| {
        args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(&format!("{name}="))
                .map(str::to_string)
                .or_else(|| (a == name).then(|| args.get(i + 1).cloned()).flatten())
        })
    };
    if let Some(path) = flag("--config").or_else(|| std::env::var("GLAUX_CONFIG").ok().filter(|v| !v.is_empty())) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        return Ok(Some(path));
    }
    let warehouse = flag("--warehouse")
        .or_else(|| std::env::var("GLAUX_WAREHOUSE").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "./warehouse".into());
    Ok([Path::new(&warehouse).join("glaux.toml"), PathBuf::from("glaux.toml")].into_iter().find(|p| p.is_file()))
}

/// Reads the config file, if any, and sets the environment variables of the settings it holds
/// that the environment does not have. Runs before any thread is started.
pub fn load(args: &[String]) -> Result<Loaded, String> {
    let Some(path) = locate(args)? else { return Ok(Loaded::default()) };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| format!("{}: {e}", path.display()))?;
    let mut values = vec![];
    flatten("", &table, &mut values);
    let mut from_file = vec![];
    for (key, value) in values {
        let setting = SETTINGS.iter().find(|s| s.key == key).ok_or_else(|| {
            format!("{}: unknown setting '{key}' (`glaux config show` lists them all)", path.display())
        })?;
        let text = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| format!("{}: {key} takes strings", path.display()))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => return Err(format!("{}: {key} cannot be {}", path.display(), other.type_str())),
        };
        if std::env::var_os(setting.env).is_none() {
            // SAFETY: called from main before the runtime or any other thread exists
            unsafe { std::env::set_var(setting.env, text) };
            from_file.push(setting.key);
        }
    }
    Ok(Loaded { path: Some(path), from_file })
}

/// `a.b = v` pairs of a table, sections joined with dots.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            other => out.push((key, other.clone())),
        }
    }
}

#[derive(Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// The effective settings, each with where it came from; secrets masked.
    Show,
}

/// Prints each setting as `key = value  # source`.
pub fn run(args: ConfigArgs, loaded: &Loaded) -> Result<(), String> {
    let ConfigCommand::Show = args.command;
    match &loaded.path {
        Some(p) => println!("# config file: {}", p.display()),
        None => println!("# no config file (--config, GLAUX_CONFIG, <warehouse>/glaux.toml or ./glaux.toml)"),
    }
    for setting in SETTINGS {
        let value = std::env::var(setting.env).ok().filter(|v| !v.is_empty());
        let source = match (&value, &loaded.path) {
            (Some(_), Some(path)) if loaded.from_file.contains(&setting.key) => Source::File(path.clone()),
            (Some(_), _) => Source::Environment,
            (None, _) if setting.default.is_some() => Source::Default,
            (None, _) => Source::Unset,
        };
        let shown = match (&value, setting.secret) {
            (Some(_), true) => "\"****\"".to_string(),
            (Some(v), false) => format!("{v:?}"),
            (None, _) => setting.default.map(|d| format!("{d:?}")).unwrap_or_else(|| "\"\"".into()),
        };
        let source = match source {
            Source::Environment => format!("environment ({})", setting.env),
            Source::File(p) => format!("file {}", p.display()),
            Source::Default => "default".into(),
            Source::Unset => format!("unset ({})", setting.env),
        };
        println!("{} = {shown}  # {source}", setting.key);
    }
    Ok(())
}
