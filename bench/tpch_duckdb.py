"""DuckDB's side of the TPC-H suite: the same 22 queries on the same Parquet files.

Usage: tpch_duckdb.py DATA QUERIES RUNS -> JSON on stdout: {name: {"ms": [...], "rows": [[...]]}}
Values are printed as text (None for NULL) so glaux's results can be compared cell by cell.
"""
import datetime
import decimal
import json
import sys
import time
from pathlib import Path

import duckdb

TABLES = ["lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region"]


def text(v):
    if v is None:
        return None
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    return str(v)


def main():
    data, queries, runs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / t}/*.parquet')")
    out = {}
    for q in sorted(queries.glob("q*.sql")):
        sql = q.read_text()
        times, rows = [], []
        for _ in range(runs):
            start = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append((time.perf_counter() - start) * 1000)
        out[q.stem] = {"ms": times, "rows": [[text(v) for v in r] for r in rows]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
