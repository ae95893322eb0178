"""The CTAS suite: TPC-H lineitem from CSV into Parquet partitioned by the year and month of
l_shipdate — glaux's CTAS through the CLI over a local-catalog table (the path users take),
beside DuckDB's COPY … (FORMAT PARQUET, PARTITION_BY …) on the same files in the same run.
Each side runs in a process of its own; its wall time and peak RSS (wait4) are reported, and
both outputs are read back and checked equal.

Usage: ctas.py GLAUX CSV_DIR WORK OUT_DIR RUNS
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = ("l_orderkey bigint, l_partkey bigint, l_suppkey bigint, l_linenumber int, l_quantity decimal(15,2), "
           "l_extendedprice decimal(15,2), l_discount decimal(15,2), l_tax decimal(15,2), l_returnflag string, "
           "l_linestatus string, l_shipdate date, l_commitdate date, l_receiptdate date, l_shipinstruct string, "
           "l_shipmode string, l_comment string")
NAMES = [c.split()[0] for c in COLUMNS.split(", ")]
SELECT = ", ".join(NAMES) + ", CAST(EXTRACT(YEAR FROM l_shipdate) AS varchar) AS year, CAST(EXTRACT(MONTH FROM l_shipdate) AS varchar) AS month"


def measured(args, env=None):
    """Runs a process; returns (seconds, peak RSS in MB)."""
    started = time.perf_counter()
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{args[0]} failed: {p.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def glaux(binary, csv_dir, work, run):
    warehouse = work / f"warehouse-{run}"
    target = work / f"glaux-{run}"
    shutil.rmtree(warehouse, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    env = dict(os.environ, GLAUX_WAREHOUSE=str(warehouse))
    ddl = (f"CREATE EXTERNAL TABLE lineitem_csv ({COLUMNS}) ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' "
           f"STORED AS TEXTFILE LOCATION '{csv_dir}/' TBLPROPERTIES ('skip.header.line.count' = '1')")
    subprocess.run([binary, "query", ddl], env=env, check=True, stdout=subprocess.DEVNULL)
    ctas = (f"CREATE TABLE lineitem WITH (format = 'PARQUET', write_compression = 'SNAPPY', "
            f"external_location = '{target}/', partitioned_by = ARRAY['year', 'month']) "
            f"AS SELECT {SELECT} FROM lineitem_csv")
    return measured([binary, "query", ctas], env), target


def duckdb_copy(csv_dir, work, run):
    target = work / f"duckdb-{run}"
    shutil.rmtree(target, ignore_errors=True)
    script = (f"import duckdb; duckdb.sql(\"COPY (SELECT {SELECT.replace('varchar', 'VARCHAR')} FROM "
              f"read_csv('{csv_dir}/*.csv', header = true)) TO '{target}' (FORMAT PARQUET, COMPRESSION SNAPPY, "
              f"PARTITION_BY (year, month))\")")
    return measured([sys.executable, "-c", script]), target


def summary(target):
    import duckdb
    return duckdb.sql(f"SELECT year, month, count(*), round(sum(CAST(l_extendedprice AS DOUBLE)), 2) FROM read_parquet('{target}/**/*.parquet', "
                      f"hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()


def main():
    binary, csv_dir, work, out, runs = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
    work.mkdir(parents=True, exist_ok=True)
    results = {"glaux": [], "duckdb": []}
    for run in range(runs):
        (g, g_target) = glaux(binary, csv_dir, work, run)
        (d, d_target) = duckdb_copy(csv_dir, work, run)
        results["glaux"].append(g)
        results["duckdb"].append(d)
    assert summary(g_target) == summary(d_target), "glaux's and DuckDB's tables differ"
    partitions = len(summary(g_target))
    med = {k: (statistics.median(s for s, _ in v), max(m for _, m in v)) for k, v in results.items()}
    csv_mb = sum(f.stat().st_size for f in csv_dir.glob("*.csv")) / 1e6
    import duckdb
    (out / "ctas.json").write_text(json.dumps({"runs": results, "median": med, "partitions": partitions, "csv_mb": csv_mb,
                                               "duckdb": duckdb.__version__}, indent=2))
    ratio = med["glaux"][0] / med["duckdb"][0]
    (out / "ctas.md").write_text(
        "# CTAS: TPC-H lineitem CSV → Parquet partitioned by year and month\n\n"
        f"{csv_mb:.0f} MB of CSV, {partitions} partitions; median of {runs} runs, each side a process of its own, "
        "peak RSS from wait4 (DuckDB's includes the Python interpreter that drives it). Both outputs read back "
        "and checked equal.\n\n"
        "| | seconds | peak RSS (MB) |\n|---|---|---|\n"
        f"| glaux `CREATE TABLE … WITH (partitioned_by …) AS SELECT` | {med['glaux'][0]:.2f} | {med['glaux'][1]:.0f} |\n"
        f"| DuckDB {duckdb.__version__} `COPY … (FORMAT PARQUET, PARTITION_BY …)` | {med['duckdb'][0]:.2f} | {med['duckdb'][1]:.0f} |\n\n"
        f"glaux / DuckDB: **{ratio:.2f}×** the time.\n")
    print((out / "ctas.md").read_text())


if __name__ == "__main__":
    main()
