#!/usr/bin/env python3
"""Writes the demo's sample data: a week of web access logs as Parquet, ORC, CSV (gzip) and JSON lines.

Usage: demo_data.py OUT_DIR
"""
import gzip
import json
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.orc as paorc
import pyarrow.parquet as pq

PATHS = ["/", "/index.html", "/products", "/products/42", "/cart", "/checkout", "/api/search", "/login", "/static/app.js"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Macintosh)", "curl/8.5.0", "Googlebot/2.1"]
STATUSES = [200] * 40 + [301, 304, 304, 404, 404, 500, 503]


def logs(rng, rows):
    start = datetime(2026, 11, 16)
    cols = {k: [] for k in ["ts", "day", "ip", "method", "path", "status", "bytes", "user_agent"]}
    for _ in range(rows):
        t = start + timedelta(seconds=rng.randrange(0, 7 * 86400))
        cols["ts"].append(t.strftime("%Y-%m-%d %H:%M:%S"))
        cols["day"].append(t.strftime("%Y-%m-%d"))
        cols["ip"].append(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
        cols["method"].append(rng.choice(["GET"] * 8 + ["POST"]))
        cols["path"].append(rng.choice(PATHS))
        cols["status"].append(rng.choice(STATUSES))
        cols["bytes"].append(rng.randrange(200, 50_000))
        cols["user_agent"].append(rng.choice(AGENTS))
    return pa.table(cols).sort_by("ts")


def main():
    out = Path(sys.argv[1])
    table = logs(random.Random(7), 200_000)
    for fmt in ["parquet", "orc", "csv", "json"]:
        (out / fmt).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "parquet" / "logs.parquet", row_group_size=50_000)
    paorc.write_table(table, out / "orc" / "logs.orc")
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    (out / "csv" / "logs.csv.gz").write_bytes(gzip.compress(sink.getvalue().to_pybytes(), mtime=0))
    lines = "\n".join(json.dumps(r) for r in table.to_pylist()) + "\n"
    (out / "json" / "logs.json").write_text(lines)
    print(f"demo data: {table.num_rows} log lines in {out}/{{parquet,orc,csv,json}}")


if __name__ == "__main__":
    main()
