"""DuckDB's side of the S3 suite: one cold run of one query over Parquet objects on S3.

Usage: s3_duckdb.py ENDPOINT GLOB SQL -> the query's wall time in ms on stdout.
ENDPOINT is http://host:port (a local S3 server, or the counting proxy in front of it); the
table is `lineitem`, a view over read_parquet(GLOB). The httpfs extension comes from the
duckdb-extension-httpfs package (the machine has no route to DuckDB's extension site).
"""
import sys
import time
from pathlib import Path

import duckdb
import duckdb_extension_httpfs


def main():
    endpoint, glob, sql = sys.argv[1], sys.argv[2], sys.argv[3]
    extension = next(Path(duckdb_extension_httpfs.__file__).parent.glob("extensions/*/httpfs.duckdb_extension"))
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.load_extension(str(extension))
    host = endpoint.removeprefix("http://").rstrip("/")
    con.execute(
        f"CREATE SECRET s (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1', "
        f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
    )
    con.execute(f"CREATE VIEW lineitem AS SELECT * FROM read_parquet('{glob}')")
    start = time.perf_counter()
    con.execute(sql).fetchall()
    print((time.perf_counter() - start) * 1000)


if __name__ == "__main__":
    main()
