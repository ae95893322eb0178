//! Workgroups from the CLI: a scan limit cancels and bills what was read, the price override
//! bills at its rate, a daily budget warns without stopping, an enforced output location wins,
//! a disabled or unknown workgroup runs nothing.

use std::process::Command;

use crate::formats::ddl;
use crate::support::{self, glaux_in, scratch};

const COLUMNS: &str = "(id BIGINT, user_id BIGINT, name VARCHAR, category VARCHAR, amount DOUBLE, quantity BIGINT, day VARCHAR, flag BOOLEAN)";

fn workgroup(warehouse: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .arg("workgroup")
        .args(args)
        .env("GLAUX_WAREHOUSE", warehouse)
        .output()
        .expect("run glaux workgroup");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn workgroups_limit_price_budget_and_enforce() {
    let env = support::env();
    let warehouse = scratch("workgroups");
    let ok = |args: &[&str]| {
        let (code, _, err) = workgroup(&warehouse, args);
        assert_eq!(code, 0, "glaux workgroup {args:?}: {err}");
    };
    ok(&["create", "capped", "--bytes-scanned-cutoff", "1000", "--price-per-tib", "10"]);
    ok(&[
        "create",
        "reports",
        "--daily-budget",
        "1",
        "--output-location",
        "s3://results/reports/",
        "--enforce",
        "true",
    ]);
    let (_, listed, _) = workgroup(&warehouse, &["list"]);
    let names: Vec<String> = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["primary", "capped", "reports"]);
    let (code, _, err) = workgroup(&warehouse, &["create", "capped"]);
    assert_eq!(code, 1);
    assert!(err.contains("workgroup capped already exists"), "{err}");

    let scan = format!("{}; SELECT count(*) FROM events", ddl(&env, "events", COLUMNS, "csv"));
    let size = env.size_of("events/csv");

    // the cutoff cancels the query and bills what it read, at the workgroup's price
    let capped = glaux_in(&warehouse, &env.endpoint, &["--workgroup", "capped"], &scan);
    let last = capped.last();
    assert_eq!(last["Status"]["State"], "CANCELLED", "{last}");
    assert_eq!(last["Status"]["StateChangeReason"], "Bytes scanned limit was exceeded");
    assert_eq!(last["WorkGroup"], "capped");
    let scanned = last["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
    assert!(scanned > 1000 && scanned < size, "scanned {scanned} of {size}");
    let billed = last["Statistics"]["BilledBytes"].as_u64().unwrap();
    assert_eq!(billed, 10 << 20);
    let cost = last["Statistics"]["CostUsd"].as_f64().unwrap();
    assert!((cost - billed as f64 * 10.0 / (1u64 << 40) as f64).abs() < 1e-12, "{cost}");

    // the budget warns and does not stop; the enforced location is the query's
    let reports = glaux_in(&warehouse, &env.endpoint, &["--workgroup", "reports", "--format", "csv"], &scan);
    reports.assert_ok();
    let last = reports.last();
    assert_eq!(last["Status"]["State"], "SUCCEEDED");
    assert_eq!(last["Statistics"]["DataScannedInBytes"].as_u64().unwrap(), size);
    let warning = last["Warnings"][0].as_str().unwrap_or_else(|| panic!("no warning in {last}"));
    assert!(warning.contains("workgroup reports") && warning.contains("daily budget of 1 bytes"), "{warning}");
    assert!(reports.stderr.contains("warning: workgroup reports"), "{}", reports.stderr);
    assert_eq!(last["ResultConfiguration"]["OutputLocation"], "s3://results/reports/");
    // the primary workgroup has no budget: no warning
    let primary = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &scan);
    assert!(primary.assert_ok().last().get("Warnings").is_none());

    // disabled and unknown workgroups run nothing, and say why
    ok(&["update", "reports", "--state", "disabled"]);
    let disabled = glaux_in(&warehouse, &env.endpoint, &["--workgroup", "reports"], "SELECT 1");
    assert_eq!(disabled.status, 3, "a disabled workgroup is invalid input: {}", disabled.stderr);
    assert!(disabled.stderr.contains("workgroup reports is disabled"), "{}", disabled.stderr);
    let unknown = glaux_in(&warehouse, &env.endpoint, &["--workgroup", "nope"], "SELECT 1");
    assert!(unknown.stderr.contains("workgroup nope does not exist"), "{}", unknown.stderr);
    assert_eq!(unknown.last()["Status"]["State"], "FAILED");

    let (code, _, err) = workgroup(&warehouse, &["delete", "primary"]);
    assert_eq!(code, 1);
    assert!(err.contains("primary workgroup cannot be deleted"), "{err}");
    ok(&["delete", "capped"]);
    let (_, listed, _) = workgroup(&warehouse, &["list"]);
    assert_eq!(listed.lines().count(), 2);
}
