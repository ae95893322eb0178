"""DuckDB's side of the differential SQL suite.

  differential_duckdb.py data DIR          writes the fixed schema's tables as Parquet under DIR
  differential_duckdb.py run DIR QUERIES   runs each query of the JSON list QUERIES on DIR's files
                                           -> JSON on stdout: [{"rows": [[...]]} | {"error": "..."}]

The data is a pure function of the row number (no random source), so every run of every engine
sees the same files. Values are printed as Arrow prints them (glaux's side formats its Arrow
results with arrow's display), NULL as None, so results compare cell by cell.
"""
import datetime
import decimal
import json
import sys
from pathlib import Path

import duckdb

# name -> SELECT producing the table from range(n) as t(i); partitioned tables name their keys
TABLES = {
    "cust": """
        SELECT i::INT AS c_id, 'cust' || lpad(i::VARCHAR, 4, '0') AS c_name, (i % 7)::INT AS c_nation,
               ((i * 37) % 1000)::DOUBLE / 10 - 20 AS c_balance,
               CASE WHEN i % 11 = 0 THEN NULL ELSE ['AUTO', 'BUILD', 'MACH', 'HOUSE', 'FURN'][i % 5 + 1] END AS c_segment
        FROM range(1, 201) t(i)""",
    "orders": """
        SELECT i::BIGINT AS o_id, ((i * 13) % 200 + 1)::INT AS o_cust,
               CAST(((i * 7919) % 100000) / 100 AS DECIMAL(12, 2)) AS o_total,
               DATE '2020-01-01' + ((i * 17) % 1500)::INT AS o_date,
               ['O', 'F', 'P'][i % 3 + 1] AS o_status,
               TIMESTAMP '2020-01-01 00:00:00' + to_seconds(i * 12345) + to_microseconds((i % 4) * 250000) AS o_ts
        FROM range(1, 1001) t(i)""",
    "items": """
        SELECT (i % 1000 + 1)::BIGINT AS i_order, (i // 1000 + 1)::INT AS i_line, ((i * 31) % 50 + 1)::INT AS i_qty,
               CAST(((i * 104729) % 1000000) / 100 AS DECIMAL(10, 2)) AS i_price, (i % 11) / 100.0 AS i_disc,
               ['A', 'N', 'R'][(i * 7) % 3 + 1] AS i_flag, DATE '2020-01-01' + ((i * 29) % 1600)::INT AS i_ship
        FROM range(0, 4000) t(i)""",
    "nulls": """
        SELECT i::INT AS n_id,
               CASE WHEN i % 4 = 0 THEN NULL ELSE (i * 7) % 23 - 11 END::INT AS n_int,
               CASE WHEN i % 5 = 0 THEN NULL WHEN i % 7 = 0 THEN '' ELSE chr((97 + i % 26)::INT) || chr((97 + (i * 3) % 26)::INT) END AS n_str,
               CASE WHEN i % 6 = 0 THEN NULL ELSE ((i * 53) % 200 - 100) / 8.0 END::DOUBLE AS n_dbl,
               CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS n_bool,
               CASE WHEN i % 8 = 0 THEN NULL ELSE CAST(((i * 61) % 20000 - 10000) / 1000 AS DECIMAL(8, 3)) END AS n_dec,
               CASE WHEN i % 9 = 0 THEN NULL ELSE DATE '2021-06-01' + ((i * 5) % 400)::INT END AS n_date
        FROM range(1, 301) t(i)""",
    "nested": """
        SELECT i::INT AS id,
               CASE WHEN i % 10 = 0 THEN NULL ELSE list_transform(range(i % 4), lambda x: chr((97 + (i + x) % 5)::INT)) END AS tags,
               CASE WHEN i % 9 = 0 THEN NULL ELSE {'a': (i % 13)::INT, 'b': chr((65 + i % 6)::INT)} END AS attrs,
               list_transform(range(i % 3), lambda x: ((i * x) % 17)::INT) AS scores
        FROM range(1, 151) t(i)""",
    "part": """
        SELECT i::INT AS p_id, ((i * 19) % 500) / 4.0 AS p_val, 'p' || (i % 17)::VARCHAR AS p_name,
               (2021 + i % 3)::INT AS year, ['eu', 'us', 'ap'][(i // 3) % 3 + 1] AS region
        FROM range(1, 601) t(i)""",
}
PARTITIONS = {"part": ["year", "region"]}


def write_data(out: Path):
    con = duckdb.connect()
    for name, select in TABLES.items():
        keys = PARTITIONS.get(name)
        if keys:
            con.execute(f"COPY ({select}) TO '{out / name}' (FORMAT PARQUET, PARTITION_BY ({', '.join(keys)}))")
        else:
            (out / name).mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({select}) TO '{out / name / 'data.parquet'}' (FORMAT PARQUET, ROW_GROUP_SIZE 256)")


def text(v):
    """A value as arrow's display prints it."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        s = v.strftime("%Y-%m-%dT%H:%M:%S")
        if v.microsecond % 1000:
            s += f".{v.microsecond:06d}"
        elif v.microsecond:
            s += f".{v.microsecond // 1000:03d}"
        return s
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(text(x) or "" for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {text(x) or ''}" for k, x in v.items()) + "}"
    return str(v)


def connect(data: Path):
    con = duckdb.connect()
    for name in TABLES:
        keys = PARTITIONS.get(name)
        if keys:
            source = f"read_parquet('{data / name}/**/*.parquet', hive_partitioning = true, hive_types = {{'year': INT, 'region': VARCHAR}})"
        else:
            source = f"read_parquet('{data / name}/*.parquet')"
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    return con


def run(data: Path, queries: Path):
    con = connect(data)
    out = []
    for sql in json.loads(queries.read_text()):
        try:
            rows = con.execute(sql).fetchall()
            out.append({"rows": [[text(v) for v in r] for r in rows]})
        except duckdb.Error as e:
            message = str(e).splitlines()[0]
            # DuckDB's own bugs: an internal error invalidates the database; start afresh
            internal = message.startswith(("INTERNAL Error", "FATAL Error"))
            out.append({"error": message, "internal": internal})
            if internal:
                con = connect(data)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "data":
        write_data(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[2]), Path(sys.argv[3]))
