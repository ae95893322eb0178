#!/usr/bin/env python3
"""Writes the demo's sample data: three years of web access logs, one Hive partition per day
(year=YYYY/month=MM/day=DD), as Parquet, gzipped CSV with a header row, and JSON lines.

Usage: demo_data.py OUT_DIR [ROWS_PER_DAY]
"""
import gzip
import io
import json
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PATHS = ["/", "/index.html", "/products", "/products/42", "/cart", "/checkout", "/api/search", "/login", "/static/app.js"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Macintosh)", "curl/8.5.0", "Googlebot/2.1"]
STATUSES = [200] * 40 + [301, 304, 304, 404, 404, 500, 503]
FIRST_DAY = date(2024, 1, 1)
DAYS = 1096  # 2024-01-01 through 2026-12-31


def day_of_logs(rng, day, rows):
    start = datetime(day.year, day.month, day.day)
    cols = {k: [] for k in ["ts", "ip", "method", "path", "status", "bytes", "user_agent"]}
    for _ in range(rows):
        t = start + timedelta(seconds=rng.randrange(0, 86400))
        cols["ts"].append(t.strftime("%Y-%m-%d %H:%M:%S"))
        cols["ip"].append(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
        cols["method"].append(rng.choice(["GET"] * 8 + ["POST"]))
        cols["path"].append(rng.choice(PATHS))
        cols["status"].append(rng.choice(STATUSES))
        cols["bytes"].append(rng.randrange(200, 50_000))
        cols["user_agent"].append(rng.choice(AGENTS))
    schema = pa.schema(
        [("ts", pa.string()), ("ip", pa.string()), ("method", pa.string()), ("path", pa.string()),
         ("status", pa.int32()), ("bytes", pa.int64()), ("user_agent", pa.string())]
    )
    return pa.table(cols, schema=schema).sort_by("ts")


def main():
    out = Path(sys.argv[1])
    per_day = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rng = random.Random(7)
    total = 0
    for i in range(DAYS):
        day = FIRST_DAY + timedelta(days=i)
        part = f"year={day.year}/month={day.month:02d}/day={day.day:02d}"
        table = day_of_logs(rng, day, per_day)
        total += table.num_rows
        for fmt in ["parquet", "csv", "json"]:
            (out / fmt / part).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "parquet" / part / "part-0.parquet")
        sink = io.BytesIO()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed"))
        (out / "csv" / part / "part-0.csv.gz").write_bytes(gzip.compress(sink.getvalue(), mtime=0))
        lines = "".join(json.dumps(r) + "\n" for r in table.to_pylist())
        (out / "json" / part / "part-0.json").write_text(lines)
    print(f"demo data: {total} log lines over {DAYS} daily partitions in {out}/{{parquet,csv,json}}")


if __name__ == "__main__":
    main()
