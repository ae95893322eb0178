//! Crashes at every write: `glaux query`, `glaux serve` and `glaux workgroup` processes killed
//! with SIGKILL at random moments while they create databases and tables (CTAS), insert, alter
//! and drop, append to the history and update workgroups. After each kill a fresh process checks the warehouse:
//! the catalog loads, every change a killed process reported as done is there, nothing
//! half-written is visible (an INSERT's rows are all there or none), the history and the
//! workgroups read.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use glaux_testkit::free_port;
use glaux_testkit::rng::Rng;

#[derive(clap::Args)]
pub struct Args {
    /// How many processes to kill.
    #[arg(long, default_value_t = 200)]
    kills: u64,
    #[arg(long, default_value_t = 20261129)]
    seed: u64,
    /// The glaux binary to kill.
    #[arg(long)]
    glaux: PathBuf,
    /// A folder made afresh for the warehouse and the tables' files.
    #[arg(long, default_value = "bench-data/crash")]
    work: PathBuf,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// Rows each INSERT adds: a partial one would show as a group of fewer.
const ROWS: u64 = 5000;

/// What the killed processes reported done (their `--stats` records), and what they may have
/// done without saying so before they died.
#[derive(Default)]
struct Ledger {
    /// (iteration, insert) pairs reported SUCCEEDED.
    inserts: BTreeSet<(u64, u64)>,
    /// CTAS tables reported created, and those reported dropped.
    tables: BTreeSet<String>,
    dropped: BTreeSet<String>,
    /// Statements reported finished: each is in the history.
    statements: u64,
    /// The workgroup description last reported set.
    description: Option<String>,
}

pub struct Outcome {
    pub kills: u64,
    /// Of them, kills of `glaux serve`.
    pub servers: u64,
    /// Kills that landed after the process had reported at least one change.
    pub mid_write: u64,
    pub inserts_checked: usize,
    /// Result files found whole at the end.
    pub results_checked: usize,
    pub seconds: f64,
}

fn glaux(bin: &Path, warehouse: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("GLAUX_WAREHOUSE", warehouse)
        .env_remove("GLAUX_CATALOG")
        .env_remove("AWS_ENDPOINT_URL_GLUE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs a checking query to the end; its CSV output, or what went wrong.
fn check_query(bin: &Path, warehouse: &Path, sql: &str) -> Result<String, String> {
    let mut child = glaux(bin, warehouse).args(["query", "--format", "csv", "-"]).spawn().map_err(|e| e.to_string())?;
    child.stdin.take().expect("stdin").write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{sql}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The script iteration `i` runs: catalog changes, a CTAS, inserts, an ALTER, a DROP.
fn script(i: u64, data: &Path) -> String {
    let mut s = format!("CREATE DATABASE IF NOT EXISTS d{};\n", i % 5);
    s += &format!(
        "CREATE TABLE c{i} WITH (external_location = '{}/c{i}/') AS SELECT {i} AS it, x FROM (VALUES (1), (2), (3)) AS v(x);\n",
        data.display()
    );
    for n in 0..3 {
        s += &format!("INSERT INTO log SELECT {i} AS it, {n} AS seq, value AS k FROM generate_series(1, {ROWS});\n");
    }
    s += &format!("ALTER TABLE c{i} SET TBLPROPERTIES ('iteration' = '{i}');\n");
    if i >= 3 {
        s += &format!("DROP TABLE IF EXISTS c{};\n", i - 3);
    }
    s
}

/// One Athena API call to a `glaux serve` on loopback (HTTP/1.1, no credentials): its JSON.
fn athena_call(port: u16, operation: &str, body: &serde_json::Value) -> std::io::Result<serde_json::Value> {
    use std::net::TcpStream;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.to_string();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: AmazonAthena.{operation}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let json = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(json).map_err(|e| std::io::Error::other(format!("{e}: {response}")))
}

/// Rows of a result each server's script has it write to its output location (a result file
/// being written for long enough to be killed in the middle).
const RESULT_ROWS: u64 = 20_000;

/// Sends the script's statements one by one to a server — and a query whose result the server
/// writes to its output location — and writes, for each that SUCCEEDED, its record as `glaux
/// query --stats` would have printed it (the server may die at any point).
fn serve_client(port: u16, sql: String) -> String {
    let sql = format!("{sql}SELECT x FROM generate_series(1, {RESULT_ROWS}) AS t(x);\n");
    let mut reported = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // wait for the server to listen
    while athena_call(port, "ListWorkGroups", &serde_json::json!({})).is_err() {
        if Instant::now() > deadline {
            return reported;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        let Ok(started) = athena_call(port, "StartQueryExecution", &serde_json::json!({"QueryString": statement}))
        else {
            return reported;
        };
        let id = started["QueryExecutionId"].clone();
        loop {
            let Ok(got) = athena_call(port, "GetQueryExecution", &serde_json::json!({"QueryExecutionId": id})) else {
                return reported;
            };
            let execution = &got["QueryExecution"];
            match execution["Status"]["State"].as_str() {
                Some("QUEUED" | "RUNNING") => std::thread::sleep(Duration::from_millis(5)),
                Some("SUCCEEDED") => {
                    reported += &format!("{execution}\n");
                    break;
                }
                _ => return reported,
            }
        }
    }
    reported
}

/// Reads what a killed process reported: one Athena QueryExecution record per finished statement.
fn record(ledger: &mut Ledger, i: u64, stderr: &str) -> u64 {
    let mut done = 0;
    for line in stderr.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["Status"]["State"] != "SUCCEEDED" {
            continue;
        }
        done += 1;
        ledger.statements += 1;
        let query = v["Query"].as_str().unwrap_or_default();
        if let Some(rest) = query.strip_prefix("INSERT INTO log SELECT ") {
            let seq = rest.split(" AS seq").next().and_then(|p| p.rsplit(", ").next()).and_then(|n| n.parse().ok());
            ledger.inserts.insert((i, seq.unwrap_or(u64::MAX)));
        } else if query.starts_with("CREATE TABLE c") {
            ledger.tables.insert(format!("c{i}"));
        } else if let Some(t) = query.strip_prefix("DROP TABLE IF EXISTS ") {
            ledger.dropped.insert(t.trim_end_matches(';').to_string());
        }
    }
    done
}

/// Checks the warehouse after a kill against what was reported done.
fn verify(bin: &Path, warehouse: &Path, ledger: &mut Ledger, in_flight: u64) -> Result<(usize, usize), String> {
    let tables: BTreeSet<String> =
        check_query(bin, warehouse, "SHOW TABLES")?.lines().skip(1).map(str::to_string).collect();
    // the killed script's DROP may have landed without being reported
    let maybe_dropped = format!("c{}", in_flight.saturating_sub(3));
    if in_flight >= 3 && !tables.contains(&maybe_dropped) {
        ledger.dropped.insert(maybe_dropped);
    }
    for t in &ledger.tables {
        if !tables.contains(t) && !ledger.dropped.contains(t) {
            return Err(format!("table {t} was reported created and is gone"));
        }
    }
    for t in tables.iter().filter(|t| t.starts_with('c')) {
        let n = check_query(bin, warehouse, &format!("SELECT count(*) FROM {t}"))?;
        if n.lines().nth(1) != Some("3") {
            return Err(format!("table {t} is half there: {n}"));
        }
    }
    let groups = check_query(bin, warehouse, "SELECT it, seq, count(*) AS n FROM log GROUP BY it, seq")?;
    let mut present = BTreeSet::new();
    for line in groups.lines().skip(1) {
        let cells: Vec<u64> = line.split(',').filter_map(|c| c.parse().ok()).collect();
        let [it, seq, n] = cells[..] else { return Err(format!("log: {line}")) };
        if n != ROWS {
            return Err(format!("insert {seq} of iteration {it} is half there: {n} of {ROWS} rows"));
        }
        present.insert((it, seq));
    }
    if let Some(missing) = ledger.inserts.iter().find(|k| !present.contains(k)) {
        return Err(format!("insert {:?} was reported done and is gone", missing));
    }
    if present.iter().any(|(it, _)| *it > in_flight) {
        return Err("rows from the future".into());
    }
    let history = check_query(bin, warehouse, "SELECT count(*) FROM system.query_history")?;
    let logged: u64 = history.lines().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    if logged < ledger.statements {
        return Err(format!("the history holds {logged} runs, {} were reported done", ledger.statements));
    }
    // a result is whole or absent: its CSV appears complete, and its metadata (the row count)
    // only after it
    let results = warehouse.parent().map(|w| w.join("data").join("results")).unwrap_or_default();
    let mut whole = 0;
    for entry in std::fs::read_dir(&results).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".csv.metadata") else { continue };
        let csv = std::fs::read_to_string(results.join(format!("{id}.csv")))
            .map_err(|e| format!("result metadata {name} without its CSV: {e}"))?;
        let metadata: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?)
                .map_err(|e| format!("result metadata {name} is half written: {e}"))?;
        let rows = metadata["Rows"].as_u64().ok_or_else(|| format!("result metadata {name}: no Rows"))?;
        // the header, then a line per row (no value here holds a line break)
        let lines = csv.lines().count() as u64;
        if lines != rows + 1 {
            return Err(format!("result {id}.csv is half written: {lines} lines for {rows} rows"));
        }
        whole += 1;
    }
    let out = glaux(bin, warehouse).args(["workgroup", "list"]).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("workgroups: {}", String::from_utf8_lossy(&out.stderr)));
    }
    if let Some(want) = &ledger.description {
        let listed = String::from_utf8_lossy(&out.stdout);
        let primary = listed
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|w| w["Name"] == "primary");
        let seen = primary.as_ref().and_then(|w| w["Description"].as_str()).unwrap_or_default().to_string();
        // the last reported update, or a later one that was killed after it landed
        if !seen.starts_with("iteration ")
            || seen.trim_start_matches("iteration ").parse::<u64>().ok()
                < want.trim_start_matches("iteration ").parse().ok()
        {
            return Err(format!("workgroup description {seen:?}, {want:?} was reported set"));
        }
    }
    Ok((present.len(), whole))
}

/// Kills `kills` processes from `seed` in a fresh warehouse under `work` and checks after each.
pub fn campaign(bin: &Path, work: &Path, kills: u64, seed: u64) -> Result<Outcome, String> {
    let _ = std::fs::remove_dir_all(work);
    let (warehouse, data) = (work.join("warehouse"), work.join("data"));
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let data = data.canonicalize().map_err(|e| e.to_string())?;
    check_query(
        bin,
        &warehouse,
        &format!(
            "CREATE TABLE log WITH (external_location = '{}/log/') AS SELECT CAST(0 AS BIGINT) AS it, CAST(0 AS BIGINT) AS seq, CAST(0 AS BIGINT) AS k LIMIT 0",
            data.display()
        ),
    )?;
    let started = Instant::now();
    // how long a script takes when left alone: kills land anywhere within it
    let t = Instant::now();
    let mut child =
        glaux(bin, &warehouse).args(["query", "--stats", "--format", "csv", "-"]).spawn().map_err(|e| e.to_string())?;
    child.stdin.take().expect("stdin").write_all(script(0, &data).as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("the workload fails by itself: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let span = t.elapsed().as_millis().max(50) as usize;
    let mut ledger = Ledger::default();
    record(&mut ledger, 0, &String::from_utf8_lossy(&out.stderr));
    let (mut mid_write, mut checked, mut servers) = (0, (0, 0), 0);
    for k in 0..kills {
        let i = k + 1;
        let mut rng = Rng::new(seed, i);
        let delay = Duration::from_millis(rng.below(span + span / 4) as u64);
        // one kill in five lands on a workgroup update, one in four on a server running a
        // script of writes for a client, the rest on `glaux query` running one
        let workgroup = rng.chance(20);
        let serve = !workgroup && rng.chance(30);
        let mut client = None;
        let mut child = if serve {
            let port = free_port();
            let child = glaux(bin, &warehouse)
                .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
                .arg("--output-location")
                .arg(data.join("results"))
                .arg("--allow-local-files")
                .arg(&data)
                .arg("--allow-write")
                .arg(&data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?;
            let sql = script(i, &data);
            client = Some(std::thread::spawn(move || serve_client(port, sql)));
            child
        } else if workgroup {
            let description = format!("iteration {i}");
            glaux(bin, &warehouse)
                .args(["workgroup", "update", "primary", "--description", &description])
                .spawn()
                .map_err(|e| e.to_string())?
        } else {
            let mut child = glaux(bin, &warehouse)
                .args(["query", "--stats", "--format", "csv", "-"])
                .spawn()
                .map_err(|e| e.to_string())?;
            let mut stdin = child.stdin.take().expect("stdin");
            let sql = script(i, &data);
            // the script goes in from a thread: a process killed before reading it all must
            // not block the loop
            std::thread::spawn(move || {
                let _ = stdin.write_all(sql.as_bytes());
            });
            child
        };
        // a server also needs its start-up time before the writes begin
        std::thread::sleep(if serve { delay + Duration::from_millis(rng.below(300) as u64) } else { delay });
        let _ = child.kill();
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut stderr = String::new();
        match client.take() {
            Some(client) => stderr = client.join().unwrap_or_default(),
            None => {
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
            }
        }
        if workgroup {
            if status.success() {
                ledger.description = Some(format!("iteration {i}"));
            }
        } else if record(&mut ledger, i, &stderr) > 0 {
            mid_write += 1;
        }
        servers += u64::from(serve);
        checked = verify(bin, &warehouse, &mut ledger, i)
            .map_err(|e| format!("after kill {} (iteration {i}, {delay:?} in): {e}", k + 1))?;
    }
    Ok(Outcome {
        kills,
        servers,
        mid_write,
        inserts_checked: checked.0,
        results_checked: checked.1,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub async fn run(args: Args) -> Result<(), String> {
    let outcome = campaign(&args.glaux, &args.work, args.kills, args.seed)?;
    let md = format!(
        "# Crashes: SIGKILL at random moments of writes\n\n\
         `bench/run crash {}` (seed {}): {} `glaux query`, `glaux serve` ({} of them) and `glaux workgroup` processes \
         killed at random moments of \
         CREATE DATABASE, CTAS, INSERT (5,000 rows each), ALTER TABLE, DROP TABLE, result files, history appends \
         and workgroup updates in a local warehouse; {} of the kills landed after the process had reported a change done. After \
         each kill a fresh process found the catalog loading, every reported change there, no INSERT or CTAS half \
         there ({} inserts checked at the end), no result file half written ({} whole at the end), the history and the \
         workgroups readable. {:.0} s.\n",
        args.kills,
        args.seed,
        outcome.kills,
        outcome.servers,
        outcome.mid_write,
        outcome.inserts_checked,
        outcome.results_checked,
        outcome.seconds
    );
    println!("{md}");
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("crash.md"), md).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twenty kills in the test suite (`bench/run crash` for hundreds).
    #[test]
    fn killed_writers_leave_the_warehouse_whole() {
        let bin = glaux_testkit::glaux_binary();
        let work = std::env::temp_dir().join(format!("glaux-it-crash-{}", std::process::id()));
        let outcome = campaign(&bin, &work, 20, 20261129).unwrap();
        let _ = std::fs::remove_dir_all(&work);
        assert_eq!(outcome.kills, 20);
        assert!(outcome.mid_write > 0, "no kill landed in the middle of the writes");
        assert!(outcome.servers > 0, "no server was killed");
    }
}
