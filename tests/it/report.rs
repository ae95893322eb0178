//! `glaux report`: totals equal the history's own rows, groups add up, unfiltered scans of
//! partitioned tables are listed as pruning misses, the HTML page renders its chart in headless
//! Chromium, and bad input is a clear error.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, csv, glaux_in, scratch};

/// Runs `glaux report ARGS…` on `warehouse`: (exit code, stdout, stderr).
fn report(warehouse: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .arg("report")
        .args(args)
        .env("GLAUX_WAREHOUSE", warehouse)
        .output()
        .expect("run glaux report");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report_json(warehouse: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = report(warehouse, &all);
    assert_eq!(code, 0, "glaux report {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("report JSON: {e}\n{out}"))
}

fn today() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A warehouse whose history holds real queries: pruned and unpruned scans of a partitioned
/// table, a failed query, and a query cancelled by a workgroup's cutoff. Returns the ids of
/// the unpruned scan and the cancelled query.
fn warehouse_with_history() -> (PathBuf, String, String) {
    let env = support::env();
    let warehouse = scratch("report");
    let table = format!(
        "CREATE EXTERNAL TABLE sales (id bigint, amount bigint, region string) PARTITIONED BY (year string, month int) STORED AS PARQUET LOCATION '{}'",
        env.s3("sales/")
    );
    glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &format!("{table}; MSCK REPAIR TABLE sales")).assert_ok();
    glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SELECT sum(amount) FROM sales WHERE year = '2024'")
        .assert_ok();
    let unpruned = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SELECT count(*), max(region) FROM sales");
    let unpruned = unpruned.assert_ok().last()["QueryExecutionId"].as_str().unwrap().to_string();
    let failed = glaux_in(&warehouse, &env.endpoint, &[], "SELECT nope FROM sales");
    assert_eq!(failed.status, 3);
    let status = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["workgroup", "create", "capped", "--bytes-scanned-cutoff", "100"])
        .env("GLAUX_WAREHOUSE", &warehouse)
        .status()
        .unwrap();
    assert!(status.success());
    let cancelled = glaux_in(&warehouse, &env.endpoint, &["--workgroup", "capped"], "SELECT * FROM sales");
    let last = cancelled.last();
    assert_eq!(last["Status"]["State"], "CANCELLED", "{last}");
    (warehouse, unpruned, last["QueryExecutionId"].as_str().unwrap().to_string())
}

/// Copies today's history to the `days` days before, as if the same queries had run then
/// (new ids, times moved back), so the chart has several bars.
fn replay_on_earlier_days(warehouse: &Path, days: i64) {
    let dir = warehouse.join("_glaux_history");
    let today = std::fs::read_to_string(dir.join(format!("{}.jsonl", today()))).unwrap();
    for back in 1..=days {
        let mut lines = String::new();
        for (i, line) in today.lines().enumerate() {
            let mut entry: Value = serde_json::from_str(line).unwrap();
            // fewer queries on earlier days, so the bars differ in height
            if i as i64 >= entry_count(&today) - back {
                continue;
            }
            let id = format!("{}-{back}", entry["QueryExecutionId"].as_str().unwrap());
            entry["QueryExecutionId"] = Value::String(id);
            for field in ["SubmissionDateTime", "CompletionDateTime"] {
                let t = entry["Status"][field].as_f64().unwrap();
                entry["Status"][field] = serde_json::json!(t - (back * 86_400) as f64);
            }
            lines.push_str(&format!("{entry}\n"));
        }
        let day = chrono_day_before(back);
        std::fs::write(dir.join(format!("{day}.jsonl")), lines).unwrap();
    }
}

fn entry_count(text: &str) -> i64 {
    text.lines().count() as i64
}

fn chrono_day_before(days: i64) -> String {
    let out = Command::new("date").args(["-u", "-d", &format!("{days} days ago"), "+%Y-%m-%d"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn report_totals_are_the_history_and_groups_add_up() {
    let env = support::env();
    let (warehouse, unpruned, cancelled) = warehouse_with_history();
    let by_workgroup = report_json(&warehouse, &["--by", "workgroup", "--top", "3"]);

    // the history as SQL sees it, read after the report (this query is recorded only once it ends)
    let sums = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT count(*), sum(data_scanned_bytes), sum(billed_bytes), sum(cost_usd),
                count(*) FILTER (WHERE state = 'FAILED'), count(*) FILTER (WHERE state = 'CANCELLED')
         FROM system.query_history",
    );
    let (_, rows) = csv::parse(&sums.assert_ok().stdout);
    let cell = |c: usize| rows[0][c].clone().unwrap();
    let totals = &by_workgroup["totals"];
    assert_eq!(totals["queries"].to_string(), cell(0));
    assert_eq!(totals["data_scanned_bytes"].to_string(), cell(1));
    assert_eq!(totals["billed_bytes"].to_string(), cell(2));
    assert!((totals["cost_usd"].as_f64().unwrap() - cell(3).parse::<f64>().unwrap()).abs() < 1e-12);
    assert_eq!(totals["failed"].to_string(), cell(4));
    assert_eq!(totals["cancelled"].to_string(), cell(5));
    assert_eq!(totals["queries"], 6, "{by_workgroup}");
    assert!(totals["billed_bytes"].as_u64().unwrap() >= 3 * (10 << 20), "three scans of at least 10 MB each");

    // groups add up to the totals; the cancelled query is billed to its own workgroup
    let groups = by_workgroup["groups"].as_array().unwrap();
    let keys: Vec<&str> = groups.iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["primary", "capped"], "the costlier first");
    for field in ["queries", "data_scanned_bytes", "billed_bytes"] {
        let sum: u64 = groups.iter().map(|g| g[field].as_u64().unwrap()).sum();
        assert_eq!(sum, totals[field].as_u64().unwrap(), "{field}");
    }
    assert_eq!(groups[1]["cancelled"], 1);
    assert_eq!(groups[1]["billed_bytes"], 10 << 20);

    // the most expensive queries, costliest first; the unfiltered scan is a pruning miss
    let top = by_workgroup["top_queries"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    let costs: Vec<f64> = top.iter().map(|q| q["cost_usd"].as_f64().unwrap()).collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    let misses: Vec<&str> = by_workgroup["pruning_misses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["query_execution_id"].as_str().unwrap())
        .collect();
    assert!(misses.contains(&unpruned.as_str()) && misses.contains(&cancelled.as_str()), "{misses:?}");
    assert_eq!(misses.len(), 2, "the year = '2024' query was pruned: {misses:?}");

    // by table: the catalog table and queries that read none; bytes add up
    let by_table = report_json(&warehouse, &["--by", "table"]);
    let groups = by_table["groups"].as_array().unwrap();
    let keys: Vec<&str> = groups.iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["default.sales", "(no catalog table)"]);
    let sum: u64 = groups.iter().map(|g| g["billed_bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, by_table["totals"]["billed_bytes"].as_u64().unwrap());

    // one workgroup only; CSV is the grouped rows with the total last
    let capped = report_json(&warehouse, &["--workgroup", "capped"]);
    assert_eq!(capped["totals"]["queries"], 1);
    let (code, out, err) = report(&warehouse, &["--by", "user", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let (header, rows) = csv::parse(&out);
    assert_eq!(header[0], "user");
    assert_eq!(rows.last().unwrap()[0].as_deref(), Some("total"));
    assert_eq!(rows.last().unwrap()[1].as_deref(), Some("7"), "the SQL query above is now in the history too");

    // a table for people names the sections
    let (code, out, _) = report(&warehouse, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("Most expensive queries") && out.contains("Partition-pruning misses"), "{out}");
}

#[test]
fn report_bad_input_is_a_clear_error() {
    let (warehouse, _, _) = warehouse_with_history();
    let cases: [(&[&str], &str); 6] = [
        (&["--by", "month"], "unknown report grouping 'month' (day, workgroup, user, table or query)"),
        (&["--since", "2026-11-30", "--until", "2026-11-01"], "start 2026-11-30 (--since) is after its end 2026-11-01"),
        (&["--since", "2026-13-01"], "--since '2026-13-01' is not a date (YYYY-MM-DD)"),
        (&["--workgroup", "nope"], "workgroup nope does not exist"),
        (&["--format", "pdf"], "unknown report format 'pdf'"),
        (&["--since", "1900-01-01"], "a report covers at most 3660 days"),
    ];
    for (args, expected) in cases {
        let (code, out, err) = report(&warehouse, args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
    }
    let (code, _, err) = report(&scratch("no-history"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("no query history in"), "{err}");
}

/// The bar colour of the HTML report's chart (engine/src/report/html.rs).
const BAR: [u8; 3] = [0x2f, 0x6f, 0xdf];

#[test]
fn html_report_renders_its_chart_in_chromium() {
    let (warehouse, _, _) = warehouse_with_history();
    replay_on_earlier_days(&warehouse, 3);
    let page = warehouse.join("report.html");
    let (code, _, err) =
        report(&warehouse, &["--format", "html", "--since", &chrono_day_before(5), "--out", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    // self-contained: nothing fetched from elsewhere
    for outside in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(outside), "the page refers to something outside it: {outside}");
    }

    let chromium = std::env::var("GLAUX_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = scratch("chromium-profile");
    let shot = warehouse.join("report.png");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ];
    let run = |extra: &[String]| {
        let out = Command::new(&chromium)
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap_or_else(|e| panic!("{chromium} (scripts/test installs Debian's chromium): {e}"));
        assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // the DOM as Chromium parsed it: one bar per day with cost (6 days, 4 with queries)
    let dom = run(&["--dump-dom".to_string()]);
    assert_eq!(dom.matches("class=\"bar\"").count(), 4, "{dom}");
    run(&[format!("--screenshot={}", shot.display()), "--window-size=1000,700".to_string()]);

    // the screenshot shows the bars: columns of the bar colour, in four separate runs
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let (width, height) = (info.width as usize, info.height as usize);
    let is_bar = |x: usize, y: usize| {
        let p = &pixels[(y * width + x) * channels..][..3];
        p.iter().zip(BAR).all(|(&a, b)| a.abs_diff(b) <= 8)
    };
    let columns: Vec<usize> = (0..width).map(|x| (0..height).filter(|&y| is_bar(x, y)).count()).collect();
    let painted: usize = columns.iter().sum();
    assert!(painted > 2_000, "only {painted} pixels of the bar colour in the screenshot");
    let runs = columns.windows(2).filter(|w| w[0] == 0 && w[1] > 0).count() + usize::from(columns[0] > 0);
    assert_eq!(runs, 4, "bars seen in the screenshot");
    // today's bar (the most queries) is the tallest
    let tallest = columns.iter().enumerate().max_by_key(|&(_, &h)| h).map(|(x, _)| x).unwrap();
    let last_bar = columns.iter().rposition(|&h| h > 0).unwrap();
    assert!(last_bar - tallest < 120, "tallest bar at x={tallest}, last at x={last_bar}");
}
