//! Prometheus metrics: queries by final state, bytes scanned, queue depth, running queries and
//! a latency histogram, as text for `GET /metrics`.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use glaux_engine::QueryExecutionState;

const BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
pub struct Metrics {
    pub queued: AtomicI64,
    pub running: AtomicI64,
    bytes_scanned: AtomicU64,
    /// (succeeded, failed, cancelled)
    finished: Mutex<[u64; 3]>,
    /// Counts per bucket (cumulative at render time), then the sum of seconds.
    latency: Mutex<(Vec<u64>, f64, u64)>,
}

impl Metrics {
    pub fn finished(&self, state: QueryExecutionState, bytes: u64, seconds: f64) {
        self.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
        let slot = match state {
            QueryExecutionState::Succeeded => 0,
            QueryExecutionState::Failed => 1,
            _ => 2,
        };
        self.finished.lock().unwrap_or_else(|p| p.into_inner())[slot] += 1;
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if latency.0.is_empty() {
            latency.0 = vec![0; BUCKETS.len()];
        }
        if let Some(b) = BUCKETS.iter().position(|&limit| seconds <= limit) {
            latency.0[b] += 1;
        }
        latency.1 += seconds;
        latency.2 += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let finished = *self.finished.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP glaux_queries_total Queries finished, by final state.");
        let _ = writeln!(out, "# TYPE glaux_queries_total counter");
        for (state, n) in ["SUCCEEDED", "FAILED", "CANCELLED"].iter().zip(finished) {
            let _ = writeln!(out, "glaux_queries_total{{state=\"{state}\"}} {n}");
        }
        let gauges = [
            ("glaux_queries_queued", "Queries waiting for a slot.", self.queued.load(Ordering::Relaxed)),
            ("glaux_queries_running", "Queries running now.", self.running.load(Ordering::Relaxed)),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP glaux_bytes_scanned_total Bytes scanned by finished queries.\n# TYPE glaux_bytes_scanned_total counter\nglaux_bytes_scanned_total {}",
            self.bytes_scanned.load(Ordering::Relaxed)
        );
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP glaux_query_duration_seconds Time from submission to the end of a query.");
        let _ = writeln!(out, "# TYPE glaux_query_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, limit) in BUCKETS.iter().enumerate() {
            cumulative += latency.0.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "glaux_query_duration_seconds_bucket{{le=\"{limit}\"}} {cumulative}");
        }
        let _ = writeln!(out, "glaux_query_duration_seconds_bucket{{le=\"+Inf\"}} {}", latency.2);
        let _ = writeln!(out, "glaux_query_duration_seconds_sum {}", latency.1);
        let _ = writeln!(out, "glaux_query_duration_seconds_count {}", latency.2);
        out
    }
}
