"""DuckDB's side of the TPC-H suite: the same 22 queries on the same Parquet files.

Usage: tpch_duckdb.py DATA QUERIES RUNS -> JSON on stdout: {name: {"ms": [...], "rows": [[...]]}}
       tpch_duckdb.py DATA QUERIES requests -> for each query name read from stdin, one run of
                                             it: a JSON line {"ms": ..., "rows": [[...]]} on stdout
The second form lets the TPC-H suite run DuckDB's runs of a query right after glaux's, so both
engines meet the machine within seconds of each other.
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


def timed(con, sql):
    start = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return (time.perf_counter() - start) * 1000, [[text(v) for v in r] for r in rows]


def main():
    data, queries = Path(sys.argv[1]), Path(sys.argv[2])
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / t}/*.parquet')")
    if sys.argv[3] == "requests":
        for name in sys.stdin:
            ms, rows = timed(con, (queries / f"{name.strip()}.sql").read_text())
            print(json.dumps({"ms": ms, "rows": rows}), flush=True)
        return
    out = {}
    for q in sorted(queries.glob("q*.sql")):
        sql = q.read_text()
        times, rows = [], []
        for _ in range(int(sys.argv[3])):
            ms, rows = timed(con, sql)
            times.append(ms)
        out[q.stem] = {"ms": times, "rows": rows}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
