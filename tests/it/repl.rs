//! `glaux repl` through a pseudo-terminal, as a person types: multi-line input, completion of a
//! table name, Ctrl-C during a long query, history kept across sessions, errors that leave the
//! prompt usable, meta commands, Ctrl-D.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession;
use expectrl::{ControlCode, Eof, Expect, Regex, Session};

use crate::support::{self, scratch};

type Repl = OsSession;

fn repl(warehouse: &Path, history: &Path) -> Repl {
    let env = support::env();
    let mut command = Command::new(env!("CARGO_BIN_EXE_glaux"));
    command
        .args(["repl", "--warehouse"])
        .arg(warehouse)
        .arg("--history-file")
        .arg(history)
        .env("TERM", "xterm-256color")
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("GLAUX_CATALOG")
        .env_remove("GLAUX_DATABASE");
    let mut session = Session::spawn(command).expect("spawn glaux repl in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session.expect(Regex(PROMPT)).expect("the first prompt");
    session
}

/// A fresh prompt: the editor turns bracketed paste on each time it starts reading a line, and
/// not when it redraws a line being edited (which repeats the prompt's text).
const PROMPT: &str = r"\x1b\[\?2004h[^\n]*glaux:[a-z_]+> ";

/// Types `line` and Enter; returns what was printed up to the next prompt.
fn enter(session: &mut Repl, line: &str) -> String {
    session.send(line).unwrap();
    session.send("\r").unwrap();
    let found = session.expect(Regex(PROMPT)).unwrap_or_else(|e| panic!("no prompt after {line:?}: {e}"));
    String::from_utf8_lossy(found.before()).to_string()
}

/// DuckDB's answer to one single-value query over the test data.
fn duckdb_value(sql: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", &format!("import duckdb; print(duckdb.sql({sql:?}).fetchone()[0])")])
        .output()
        .expect("python3 with duckdb (scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn events(env: &support::Env) -> PathBuf {
    env.data.join("events/parquet")
}

#[test]
fn multi_line_completion_meta_commands_errors_and_history() {
    let env = support::env();
    let dir = scratch("repl-session");
    let history = dir.join("history");
    let mut session = repl(&dir.join("warehouse"), &history);

    // a statement over three lines runs when its `;` comes
    session.send("CREATE EXTERNAL TABLE clicks (id bigint, user_id bigint, name string,\r").unwrap();
    session.send("  category string, amount double)\r").unwrap();
    session.send(format!("STORED AS PARQUET LOCATION '{}/';\r", events(&env).display())).unwrap();
    let out = String::from_utf8_lossy(session.expect(Regex(PROMPT)).unwrap().before()).to_string();
    assert!(out.contains("(0 rows"), "{out}");

    // Tab completes the table name from the catalog
    let out = enter(&mut session, "SELECT count(*) AS n, round(sum(amount), 2) AS total FROM cli\t;");
    let parquet = format!("{}/*.parquet", events(&env).display());
    let count = duckdb_value(&format!("SELECT count(*) FROM read_parquet('{parquet}')"));
    let total = duckdb_value(&format!("SELECT round(sum(amount), 2) FROM read_parquet('{parquet}')"));
    // (`cli` alone names no table: the answer proves the completion)
    assert!(out.contains(&format!("| {count} ")) && out.contains(&total), "{count} and {total} in {out}");
    assert!(out.contains("1 row;") && out.contains("scanned") && out.contains("cost $"), "{out}");

    // an error names what is wrong and the prompt stays usable
    let out = enter(&mut session, "SELECT no_such_column FROM clicks;");
    assert!(out.contains("error:") && out.contains("no_such_column"), "{out}");
    let out = enter(&mut session, "SELECT 'still' || ' here' AS s;");
    assert!(out.contains("still here"), "{out}");

    // meta commands
    let out = enter(&mut session, "\\dt");
    assert!(out.contains("clicks") && out.contains(&events(&env).display().to_string()), "{out}");
    let out = enter(&mut session, "\\d clicks");
    assert!(out.contains("category") && out.contains("double"), "{out}");
    let out = enter(&mut session, "\\l");
    assert!(out.contains("default"), "{out}");
    enter(&mut session, "\\x");
    let out = enter(&mut session, "SELECT 1 AS one, 'two' AS two;");
    assert!(out.contains("-[ RECORD 1 ]") && out.contains("two | two"), "{out}");
    enter(&mut session, "\\x off");
    enter(&mut session, "\\format csv");
    let out = enter(&mut session, "SELECT 1 AS one, NULL AS nothing;");
    assert!(out.contains("one,nothing") && out.contains("1,"), "{out}");
    let out = enter(&mut session, "\\nope");
    assert!(out.contains("unknown command \\nope"), "{out}");
    enter(&mut session, "SELECT 40 + 2 AS answer;");

    // Ctrl-D leaves
    session.send(ControlCode::EndOfTransmission).unwrap();
    session.expect(Eof).unwrap();
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.contains("SELECT 40 + 2 AS answer;") && kept.contains("\\dt"), "{kept}");

    // a second session has the first one's history: Up brings back the last statement
    let mut session = repl(&dir.join("warehouse"), &history);
    session.send("\x1b[A").unwrap();
    let out = enter(&mut session, "");
    assert!(out.contains("| 42 "), "{out}");
    session.send(ControlCode::EndOfTransmission).unwrap();
    session.expect(Eof).unwrap();
}

#[test]
fn ctrl_c_cancels_the_running_query() {
    let env = support::env();
    let dir = scratch("repl-cancel");
    let warehouse = dir.join("warehouse");
    let mut session = repl(&warehouse, &dir.join("history"));
    let t = events(&env).display().to_string();
    session
        .send(format!("SELECT count(*) FROM '{t}' e JOIN generate_series(1, 2000000000) g ON e.id = g.value;\r"))
        .unwrap();
    // the progress line appears after a second
    let progress = session.expect(Regex("running|error|rows")).unwrap();
    assert!(
        progress.matches().next().is_some_and(|m| m == b"running"),
        "{}",
        String::from_utf8_lossy(progress.before())
    );
    session.send(ControlCode::EndOfText).unwrap();
    let found = session.expect(Regex(PROMPT)).unwrap();
    let out = String::from_utf8_lossy(found.before()).to_string();
    assert!(out.contains("cancelled after"), "{out}");
    // the prompt is back and works; the history says CANCELLED
    let out = enter(
        &mut session,
        "SELECT state FROM system.query_history WHERE query LIKE '%generate_series(1, 2000000000)%';",
    );
    assert!(out.contains("CANCELLED"), "{out}");
    session.send(ControlCode::EndOfTransmission).unwrap();
    session.expect(Eof).unwrap();
}
