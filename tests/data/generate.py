#!/usr/bin/env python3
"""Writes glaux's test data set and the answers DuckDB computes for it.

The same `events` table is written as Parquet, ORC, CSV, CSV.gz, CSV.zst, JSON lines, JSON.gz and
JSON.zst; `users` joins to it; `nested` holds arrays and structs (Parquet, ORC, JSON). Expected
answers come from DuckDB over the Parquet files, never from glaux. Broken objects for the
error tests live under bad/.

Usage: generate.py OUT_DIR
"""
import bz2
import gzip
import json
import random
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.orc as paorc
import pyarrow.parquet as pq
import zstandard

ROWS = 6000
FILES = 2
CATEGORIES = ["books", "games", "garden", "music", "toys"]

# name, glaux SQL, DuckDB SQL (same meaning; the dialects differ for nested types)
QUERIES = [
    ("totals", "SELECT count(*), sum(quantity), round(sum(amount), 2) FROM events", None),
    ("group_filter",
     "SELECT category, count(*) AS c, round(avg(amount), 4) AS a FROM events WHERE flag GROUP BY category ORDER BY category", None),
    ("filter",
     "SELECT id, name, amount FROM events WHERE amount > 990 AND category IN ('books', 'games') ORDER BY id", None),
    ("nulls", "SELECT count(name), count(*) - count(name), count(DISTINCT name) FROM events", None),
    ("join",
     "SELECT u.country, count(*) AS n, sum(e.quantity) AS q FROM events e JOIN users u ON e.user_id = u.id "
     "GROUP BY u.country ORDER BY u.country", None),
    ("window",
     "SELECT id, user_id, rank() OVER (PARTITION BY user_id ORDER BY amount DESC, id) AS r, "
     "sum(quantity) OVER (PARTITION BY user_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running "
     "FROM events WHERE user_id < 4 ORDER BY user_id, r", None),
    ("strings",
     "SELECT day, count(*) AS n, max(name) AS mx FROM events WHERE name LIKE '%o%' GROUP BY day ORDER BY day LIMIT 12", None),
    ("having",
     "SELECT user_id, count(*) AS n FROM events GROUP BY user_id HAVING count(*) > 70 ORDER BY n DESC, user_id", None),
]

NESTED_QUERIES = [
    ("nested_fields",
     "SELECT id, cardinality(tags) AS n, tags[1] AS first_tag, attrs['k'] AS k, attrs['v'] AS v FROM nested "
     "WHERE id % 7 = 0 ORDER BY id",
     "SELECT id, len(tags) AS n, tags[1] AS first_tag, attrs.k AS k, attrs.v AS v FROM nested "
     "WHERE id % 7 = 0 ORDER BY id"),
    ("nested_unnest",
     "SELECT t, count(*) AS n FROM (SELECT unnest(tags) AS t FROM nested) GROUP BY t ORDER BY t",
     "SELECT t, count(*) AS n FROM (SELECT unnest(tags) AS t FROM nested) GROUP BY t ORDER BY t"),
]


def events_table(rng):
    names = ["alpha", "bravo", "charlie", "delta, inc", 'echo "e"', "foxtrot", "golf", "hotel", "india", "juliet"]
    cols = {k: [] for k in ["id", "user_id", "name", "category", "amount", "quantity", "day", "flag"]}
    for i in range(1, ROWS + 1):
        cols["id"].append(i)
        cols["user_id"].append(rng.randrange(0, 60))
        cols["name"].append(None if rng.random() < 0.08 else rng.choice(names) + str(rng.randrange(0, 40)))
        cols["category"].append(rng.choice(CATEGORIES))
        cols["amount"].append(round(rng.uniform(0, 1000), 2))
        cols["quantity"].append(rng.randrange(1, 20))
        cols["day"].append(f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}")
        cols["flag"].append(rng.random() < 0.5)
    schema = pa.schema([
        ("id", pa.int64()), ("user_id", pa.int64()), ("name", pa.string()), ("category", pa.string()),
        ("amount", pa.float64()), ("quantity", pa.int64()), ("day", pa.string()), ("flag", pa.bool_()),
    ])
    return pa.table(cols, schema=schema)


def users_table():
    countries = ["de", "fr", "jp", "us", "br", "in"]
    # user 59 has no row: the inner join must drop its events
    ids = list(range(0, 59))
    return pa.table({"id": pa.array(ids, pa.int64()), "country": [countries[i % len(countries)] for i in ids]})


def nested_table(rng):
    words = ["red", "green", "blue", "cyan"]
    ids, tags, attrs = [], [], []
    for i in range(1, 501):
        ids.append(i)
        tags.append([rng.choice(words) for _ in range(rng.randrange(1, 4))])
        attrs.append({"k": rng.choice(words), "v": rng.randrange(0, 100)})
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "tags": pa.array(tags, pa.list_(pa.string())),
        "attrs": pa.array(attrs, pa.struct([("k", pa.string()), ("v", pa.int64())])),
    })


def wide_table(rng):
    n = 200_000
    return pa.table({f"c{j}": pa.array([rng.random() for _ in range(n)], pa.float64()) for j in range(10)})


def columns16_table(rng):
    n = 16_000
    return pa.table({f"c{j}": pa.array([rng.random() for _ in range(n)], pa.float64()) for j in range(16)})


def keyed(out):
    """Four Parquet files of ids in order (file i holds 50,000 i … 50,000 i + 49,999, v = id * 2), with
    page indexes of small pages: each file's page index is larger than glaux's 64 KiB footer guess,
    so reading one costs a request of its own."""
    d = out / "keyed"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        ids = pa.array(range(50_000 * i, 50_000 * (i + 1)), pa.int64())
        table = pa.table({"id": ids, "v": pc.multiply(ids, 2)})
        pq.write_table(table, d / f"part-{i}.parquet", row_group_size=10_000, data_page_size=256, write_batch_size=32, use_dictionary=False,
                       write_page_index=True, compression="none")


def lookup(out):
    """One Parquet file of two 100,000-row groups, as an orders-keyed fact table: id = row // 4
    and part = row * 7919 % 40,000 dictionary-encoded (large dictionaries, small pages of
    indices), then filler and qty = row % 50 + 1 plain; 16 KiB pages and a page index. A lookup
    of one id keeps one page of each column and each dictionary."""
    d = out / "lookup"
    d.mkdir(parents=True, exist_ok=True)
    rows = range(200_000)
    table = pa.table({
        "id": pa.array([r // 4 for r in rows], pa.int64()),
        "part": pa.array([r * 7919 % 40_000 for r in rows], pa.int64()),
        "filler": pa.array([r * 0.5 for r in rows], pa.float64()),
        "qty": pa.array([r % 50 + 1 for r in rows], pa.int64()),
    })
    pq.write_table(table, d / "lookup.parquet", row_group_size=100_000, data_page_size=16 * 1024, compression="none",
                   write_page_index=True, use_dictionary=["id", "part"])


def sales(out):
    """Partitioned by year (string) and month (int), 10 rows each: amount = month * 100 + row,
    so every answer follows from the construction. Parquet under sales/, headerless CSV.gz under
    sales_text/."""
    for year in (2023, 2024):
        for month in range(1, 13):
            rows = {
                "id": pa.array([year * 10000 + month * 100 + i for i in range(10)], pa.int64()),
                "amount": pa.array([month * 100 + i for i in range(10)], pa.int64()),
                "region": [["north", "south"][i % 2] for i in range(10)],
            }
            table = pa.table(rows)
            d = out / "sales" / f"year={year}" / f"month={month}"
            d.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, d / "part-0.parquet")
            t = out / "sales_text" / f"year={year}" / f"month={month}"
            t.mkdir(parents=True, exist_ok=True)
            lines = "".join(f"{a},{b},{c}\n" for a, b, c in zip(*(table.column(n).to_pylist() for n in table.column_names)))
            (t / "part-0.csv.gz").write_bytes(gzip.compress(lines.encode(), mtime=0))
    # a marker file Hive tools leave behind: never read as data
    (out / "sales" / "_SUCCESS").write_bytes(b"")


def daily(out):
    """Three years of daily partitions (year=/month=/day=, strings as Glue crawlers type them),
    2024-01-01 through 2026-12-31, four rows a day: hits = day_of_month * 10 + row."""
    from datetime import date, timedelta
    for n in range(1096):
        d = date(2024, 1, 1) + timedelta(days=n)
        rows = {
            "id": pa.array([int(d.strftime("%Y%m%d")) * 10 + i for i in range(4)], pa.int64()),
            "hits": pa.array([d.day * 10 + i for i in range(4)], pa.int64()),
        }
        folder = out / "daily" / f"year={d.year}" / f"month={d.month:02d}" / f"day={d.day:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(rows), folder / "data.parquet")


ACCESS_LOG = {
    # Apache combined log format; the last line of the first day is not a log line at all
    "dt=2026-11-23/access.log": [
        '10.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET /index.html HTTP/1.1" 200 1043 "-" "Mozilla/5.0"',
        '10.0.0.2 - alice [23/Nov/2026:10:00:05 +0000] "POST /api/login HTTP/1.1" 302 0 "https://example.com/" "curl/8.5.0"',
        '10.0.0.1 - - [23/Nov/2026:10:01:00 +0000] "GET /missing HTTP/1.1" 404 512 "-" "Mozilla/5.0"',
        'this line is not in the log format',
    ],
    "dt=2026-11-24/access.log.gz": [
        '10.0.0.3 - - [24/Nov/2026:09:00:00 +0000] "GET /index.html HTTP/1.1" 200 1043 "-" "Googlebot/2.1"',
        '10.0.0.3 - - [24/Nov/2026:09:00:01 +0000] "GET /static/app.js HTTP/1.1" 200 20480 "-" "Googlebot/2.1"',
        '10.0.0.4 - - [24/Nov/2026:09:30:00 +0000] "GET /checkout HTTP/1.1" 500 - "-" "Mozilla/5.0"',
    ],
}


def access_logs(out):
    """Web server logs for RegexSerDe tables, partitioned by dt, one plain and one gzipped."""
    for key, lines in ACCESS_LOG.items():
        path = out / "access_logs" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        text = ("\n".join(lines) + "\n").encode()
        path.write_bytes(gzip.compress(text, mtime=0) if key.endswith(".gz") else text)


def csv_bytes(table):
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=True, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def json_bytes(table):
    lines = []
    for row in table.to_pylist():
        lines.append(json.dumps({k: v for k, v in row.items() if v is not None}))
    return ("\n".join(lines) + "\n").encode()


def tsv_bytes(table):
    """Hive-style text: tab-separated, no header, \\N for NULL."""
    def cell(v):
        if v is None:
            return "\\N"
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)
    rows = ["\t".join(cell(v) for v in row.values()) for row in table.to_pylist()]
    return ("\n".join(rows) + "\n").encode()


def write_formats(out, name, table, formats):
    parts = [table.slice(i * (table.num_rows // FILES), table.num_rows // FILES) for i in range(FILES - 1)]
    parts.append(table.slice((FILES - 1) * (table.num_rows // FILES)))
    for fmt in formats:
        d = out / name / fmt
        d.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(parts):
            base = d / f"part-{i}"
            if fmt == "parquet":
                pq.write_table(part, f"{base}.parquet", row_group_size=1000)
            elif fmt == "orc":
                paorc.write_table(part, f"{base}.orc")
            else:
                kind, _, comp = fmt.partition("_")
                data = {"csv": csv_bytes, "json": json_bytes, "tsv": tsv_bytes}[kind](part)
                ext = kind
                if comp == "gz":
                    data, ext = gzip.compress(data, mtime=0), f"{kind}.gz"
                elif comp == "bz2":
                    data, ext = bz2.compress(data), f"{kind}.bz2"
                elif comp == "zst":
                    data, ext = zstandard.ZstdCompressor().compress(data), f"{kind}.zst"
                Path(f"{base}.{ext}").write_bytes(data)


def expected(out, queries):
    con = duckdb.connect()
    for table in ["events", "users", "nested"]:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{out}/{table}/parquet/*.parquet')")
    answers = []
    for name, sql, duck_sql in queries:
        rows = con.execute(duck_sql or sql).fetchall()
        answers.append({"name": name, "sql": sql, "rows": [list(r) for r in rows]})
    return answers


def bad_objects(out, events):
    bad = out / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    whole = (out / "events" / "parquet" / "part-0.parquet").read_bytes()
    (bad / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (bad / "ragged.csv").write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    (bad / "malformed.json").write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n{"a": 3, "b": \n')


def main():
    out = Path(sys.argv[1]).resolve()
    rng = random.Random(20261124)
    events = events_table(rng)
    all_formats = ["parquet", "orc", "csv", "csv_gz", "csv_bz2", "csv_zst", "tsv", "json", "json_gz", "json_zst"]
    write_formats(out, "events", events, all_formats)
    write_formats(out, "users", users_table(), all_formats)
    write_formats(out, "nested", nested_table(rng), ["parquet", "orc", "json"])
    wide = out / "wide"
    wide.mkdir(parents=True, exist_ok=True)
    pq.write_table(wide_table(rng), wide / "wide.parquet", row_group_size=50_000)
    # a 2 MB file of sixteen columns in four row groups: one column's chunks lie about half a
    # megabyte apart, close enough for a careless reader to fetch everything between them
    columns16 = out / "columns16"
    columns16.mkdir(parents=True, exist_ok=True)
    pq.write_table(columns16_table(random.Random(16)), columns16 / "columns16.parquet", row_group_size=4_000)
    keyed(out)
    lookup(out)
    bad_objects(out, events)
    sales(out)
    daily(out)
    access_logs(out)
    answers = {"flat": expected(out, QUERIES), "nested": expected(out, NESTED_QUERIES)}
    (out / "expected.json").write_text(json.dumps(answers, indent=1))
    print(f"test data in {out}")


if __name__ == "__main__":
    main()
