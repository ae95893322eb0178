"""The `serve` suite: glaux serve driven by its real clients — latency of a small query through
the Athena API (boto3) and the Trino protocol (trino client), and throughput with 32 clients —
beside DuckDB answering the same query in process, in the same run.

usage: serve_bench.py GLAUX_BINARY TPCH_DIR RESULTS_DIR [SECONDS]"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import duckdb
import trino

binary, data, results = sys.argv[1], Path(sys.argv[2]).resolve(), Path(sys.argv[3])
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20
SQL = ("SELECT r_name, count(*) AS nations, min(n_name) AS first FROM nation JOIN region "
       "ON n_regionkey = r_regionkey GROUP BY r_name ORDER BY r_name")
SAMPLES = int(os.environ.get("GLAUX_BENCH_SAMPLES", "200"))
CLIENTS = 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    warehouse = tempfile.mkdtemp(prefix="glaux-bench-serve-")
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    proc = subprocess.Popen([binary, "serve", "--bind", f"127.0.0.1:{port}", "--warehouse", warehouse,
                             "--allow-local-files", str(data), "--max-concurrent-queries", "8"],
                            env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url, warehouse
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("glaux serve did not start")
            time.sleep(0.05)


def athena(url):
    return boto3.client("athena", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def athena_query(client):
    qid = client.start_query_execution(QueryString=SQL)["QueryExecutionId"]
    while True:
        state = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        if state == "SUCCEEDED":
            break
        if state in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"query {qid} {state}")
        time.sleep(0.001)
    rows = client.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1:]
    return [tuple(c.get("VarCharValue") for c in r["Data"]) for r in rows]


def trino_connection(url):
    host, port = url.removeprefix("http://").split(":")
    return trino.dbapi.connect(host=host, port=int(port), user="bench", catalog="awsdatacatalog", schema="default")


def trino_query(conn):
    cursor = conn.cursor()
    cursor.execute(SQL)
    return [tuple(str(v) for v in r) for r in cursor.fetchall()]


def duck_connection():
    con = duckdb.connect()
    for table in ("nation", "region"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{data}/{table}/*.parquet')")
    return con


def duck_query(con):
    return [tuple(str(v) for v in r) for r in con.execute(SQL).fetchall()]


def latency(run, make):
    handle = make()
    for _ in range(5):
        run(handle)
    times = []
    for _ in range(SAMPLES):
        t = time.perf_counter()
        run(handle)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1], "samples": len(times)}


def throughput(run, make):
    done, errors = [0] * CLIENTS, []
    stop = time.time() + seconds

    def worker(n):
        handle = make()
        while time.time() < stop:
            try:
                run(handle)
                done[n] += 1
            except Exception as e:  # counted, never hidden
                errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - start
    return {"queries": sum(done), "errors": len(errors), "per_second": sum(done) / wall, "seconds": wall}


def main():
    proc, url, warehouse = start_server()
    try:
        client = athena(url)
        for table in ("nation", "region"):
            qid = client.start_query_execution(
                QueryString=f"CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{data}/{table}/'")["QueryExecutionId"]
            while client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in ("QUEUED", "RUNNING"):
                time.sleep(0.01)
        expected = duck_query(duck_connection())
        protocols = {
            "Athena API (boto3)": (athena_query, lambda: athena(url)),
            "Trino protocol (trino client)": (trino_query, lambda: trino_connection(url)),
            "DuckDB in process": (duck_query, lambda: duck_connection().cursor()),
        }
        for name, (run, make) in protocols.items():
            got = run(make())
            if got != expected:
                raise SystemExit(f"{name} answered {got}, DuckDB {expected}")
        report = {"query": SQL, "clients": CLIENTS, "seconds": seconds, "protocols": {}}
        for name, (run, make) in protocols.items():
            report["protocols"][name] = {"latency": latency(run, make), "throughput": throughput(run, make)}
            print(name, report["protocols"][name], flush=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(warehouse, ignore_errors=True)
    duck = report["protocols"]["DuckDB in process"]
    lines = ["# serve: glaux serve through its clients, beside DuckDB in process", "",
             f"Query: `{SQL}` over TPC-H `nation` and `region` (Parquet on local disk).",
             f"Latency: median and p95 of {SAMPLES} sequential runs after 5 warm-ups, the whole client round trip "
             "(Athena: start, poll every 1 ms, fetch results). Throughput: "
             f"{CLIENTS} client threads for {seconds:.0f} s, one Python process (the clients' own CPU counts).", "",
             "| client | median ms | p95 ms | ×DuckDB (median) | queries/s (32 clients) | ×DuckDB | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in report["protocols"].items():
        lat, thr = r["latency"], r["throughput"]
        lines.append(f"| {name} | {lat['median_ms']:.2f} | {lat['p95_ms']:.2f} | "
                     f"{lat['median_ms'] / duck['latency']['median_ms']:.1f} | {thr['per_second']:.1f} | "
                     f"{thr['per_second'] / duck['throughput']['per_second']:.2f} | {thr['errors']} |")
    results.mkdir(parents=True, exist_ok=True)
    (results / "serve.md").write_text("\n".join(lines) + "\n")
    (results / "serve.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(lines))
    if any(r["throughput"]["errors"] for r in report["protocols"].values()):
        raise SystemExit("errors under load")


main()
