"""The `load` suite: 64 clients for a few minutes against one `glaux serve` with a memory limit,
through its real clients — boto3 (the Athena API) and the trino client — with a mix of small
queries, large scans, cancels, DDL and paged results. Checks: no unexpected errors (a throttled
submission is the server's backpressure, counted apart), every run started is in the history
exactly once with a final state, the queue stays under its bound, the server's RSS stays under
the memory limit plus a stated overhead. Writes load.md, load.json and load.svg (throughput,
p50/p99 latency and RSS over time).

usage: load.py GLAUX_BINARY TPCH_DIR RESULTS_DIR [SECONDS] [CLIENTS]"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import botocore
import trino

binary, data, results = sys.argv[1], Path(sys.argv[2]).resolve(), Path(sys.argv[3])
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 300
CLIENTS = int(sys.argv[5]) if len(sys.argv) > 5 else 64
MEMORY_LIMIT_MB = 512
# what the process holds beyond the query memory pool: code, the runtime, result pages in memory
# (16 MB each, 8 running), HTTP buffers, allocator slack
OVERHEAD_MB = 400
MAX_QUEUED = 32
SMALL = ("SELECT r_name, count(*) AS nations FROM nation JOIN region ON n_regionkey = r_regionkey "
         "GROUP BY r_name ORDER BY r_name")
LARGE = ("SELECT l_returnflag, l_linestatus, sum(l_extendedprice * (1 - l_discount)) AS revenue, count(*) AS n "
         "FROM lineitem GROUP BY l_returnflag, l_linestatus ORDER BY 1, 2")
PAGED = "SELECT o_orderkey, o_totalprice FROM orders WHERE o_orderkey < 20000 ORDER BY o_orderkey"
PAGED_ROWS = [0]  # counted once the tables are there


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    warehouse = tempfile.mkdtemp(prefix="glaux-bench-load-")
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    proc = subprocess.Popen([binary, "serve", "--bind", f"127.0.0.1:{port}", "--warehouse", warehouse,
                             "--allow-local-files", str(data), "--max-concurrent-queries", "8",
                             "--max-queued-queries", str(MAX_QUEUED), "--memory-limit", f"{MEMORY_LIMIT_MB}M"],
                            env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("glaux serve did not start")
            time.sleep(0.05)


def athena(url):
    config = botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=4)
    return boto3.session.Session().client("athena", endpoint_url=url, region_name="us-east-1",
                                          aws_access_key_id="bench", aws_secret_access_key="bench", config=config)


def wait(client, qid):
    while True:
        status = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] not in ("QUEUED", "RUNNING"):
            return status
        time.sleep(0.02)


class Throttled(Exception):
    pass


def start(client, sql):
    try:
        return client.start_query_execution(QueryString=sql)["QueryExecutionId"]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "TooManyRequestsException":
            raise Throttled() from e
        raise


def athena_run(client, sql, started):
    qid = start(client, sql)
    started.append(qid)
    status = wait(client, qid)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"{qid} {status}")
    return qid


def athena_paged(client, started):
    qid = athena_run(client, PAGED, started)
    rows, token, pages = 0, None, 0
    while True:
        kwargs = {"QueryExecutionId": qid, "MaxResults": 1000}
        if token:
            kwargs["NextToken"] = token
        page = client.get_query_results(**kwargs)
        rows += len(page["ResultSet"]["Rows"])
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    # the first page starts with the header row, as Athena's does
    if rows != PAGED_ROWS[0] + 1 or pages < PAGED_ROWS[0] // 1000:
        raise RuntimeError(f"paged {qid}: {rows} rows in {pages} pages, {PAGED_ROWS[0]} + 1 expected")


def athena_cancel(client, started):
    qid = start(client, LARGE)
    started.append(qid)
    time.sleep(random.random() * 0.3)
    client.stop_query_execution(QueryExecutionId=qid)
    state = wait(client, qid)["State"]
    if state not in ("CANCELLED", "SUCCEEDED"):
        raise RuntimeError(f"cancelled {qid}: {state}")


def athena_ddl(client, started, n):
    name = f"ld_{n}_{random.randrange(1 << 30)}"
    athena_run(client, f"CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{data}/nation/'", started)
    athena_run(client, f"SELECT count(*) FROM {name}", started)
    athena_run(client, f"DROP TABLE {name}", started)


def trino_submit(conn, sql, started):
    """A cursor with `sql` submitted; a submission the full queue refused is Throttled (its id
    never names a run, so it is not counted as started)."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
    except trino.exceptions.TrinoQueryError as e:
        if "QUEUE_FULL" in str(e) or "Too many queued" in str(e):
            raise Throttled() from e
        if cursor.query_id:
            started.append(cursor.query_id)
        raise
    if cursor.query_id:
        started.append(cursor.query_id)
    return cursor


def trino_run(conn, sql, started):
    return trino_submit(conn, sql, started).fetchall()


def trino_cancel(conn, started):
    cursor = trino_submit(conn, LARGE, started)
    time.sleep(random.random() * 0.3)
    cursor.cancel()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def gauge(url, name):
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return next(float(l.split()[1]) for l in text.splitlines() if l.startswith(name + " "))


def svg(windows, path):
    """Throughput, p50/p99 latency and RSS per window as one SVG of three small charts."""
    w, h, pad = 720, 160, 40
    charts = [("completed runs per second", [x["per_second"] for x in windows], "#1f77b4"),
              ("p50 / p99 latency (ms)", [x["p99_ms"] for x in windows], "#d62728"),
              ("server RSS (MB)", [x["rss_mb"] for x in windows], "#2ca02c")]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{3 * (h + pad)}" font-family="sans-serif" font-size="11">']
    for i, (title, values, color) in enumerate(charts):
        top = i * (h + pad) + pad
        peak = max(values + [1])
        def xy(j, v):
            return pad + j * (w - 2 * pad) / max(1, len(values) - 1), top + h - v / peak * h
        out.append(f'<text x="{pad}" y="{top - 8}">{title} (max {peak:.0f})</text>')
        out.append(f'<rect x="{pad}" y="{top}" width="{w - 2 * pad}" height="{h}" fill="none" stroke="#ccc"/>')
        series = [(values, color)]
        if i == 1:
            series.append(([x["p50_ms"] for x in windows], "#ff7f0e"))
        for vals, c in series:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(j, v) for j, v in enumerate(vals)))
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>')
    out.append("</svg>")
    path.write_text("\n".join(out))


def main():
    proc, url = start_server()
    random.seed(20261129)
    setup = athena(url)
    for table in ("nation", "region", "lineitem", "orders"):
        athena_run(setup, f"CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{data}/{table}/'", [])
    qid = athena_run(setup, f"SELECT count(*) FROM ({PAGED})", [])
    PAGED_ROWS[0] = int(setup.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"])
    host, port = url.removeprefix("http://").split(":")
    runs, errors, throttled, started_ids, kinds_of = [], [], [0], [], {}
    lock = threading.Lock()
    stop = time.time() + SECONDS
    t0 = time.time()

    def client_loop(n):
        rng = random.Random(n)
        client = athena(url)
        conn = trino.dbapi.connect(host=host, port=int(port), user=f"load{n}", catalog="awsdatacatalog", schema="default")
        started = []
        while time.time() < stop:
            kind = rng.choices(["small", "large", "paged", "cancel", "ddl", "t-small", "t-large", "t-cancel"],
                               weights=[30, 8, 10, 6, 4, 25, 8, 4])[0]
            t = time.time()
            before = len(started)
            try:
                if kind == "small":
                    athena_run(client, SMALL, started)
                elif kind == "large":
                    athena_run(client, LARGE, started)
                elif kind == "paged":
                    athena_paged(client, started)
                elif kind == "cancel":
                    athena_cancel(client, started)
                elif kind == "ddl":
                    athena_ddl(client, started, n)
                elif kind == "t-small":
                    if len(trino_run(conn, SMALL, started)) != 5:
                        raise RuntimeError("trino small: wrong rows")
                elif kind == "t-large":
                    if len(trino_run(conn, LARGE, started)) != 4:
                        raise RuntimeError("trino large: wrong rows")
                else:
                    trino_cancel(conn, started)
                with lock:
                    runs.append((t - t0, time.time() - t, kind))
            except Throttled:
                with lock:
                    throttled[0] += 1
                time.sleep(0.2)
            except Exception as e:  # counted and shown, never hidden
                with lock:
                    errors.append(f"{kind}: {e!r}"[:300])
            with lock:
                kinds_of.update({q: kind for q in started[before:]})
        with lock:
            started_ids.extend(started)


    samples = []

    def sampler():
        while time.time() < stop + 2:
            try:
                samples.append((time.time() - t0, rss_mb(proc.pid), gauge(url, "glaux_queries_queued"),
                                gauge(url, "glaux_queries_running")))
            except OSError:
                pass
            time.sleep(1)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    watcher = threading.Thread(target=sampler)
    watcher.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    watcher.join()
    wall = time.time() - t0
    # every run started is in the history exactly once, with a final state
    time.sleep(1)
    ids = set()
    token, listed = None, []
    while True:
        kwargs = {"MaxResults": 50}
        if token:
            kwargs["NextToken"] = token
        page = setup.list_query_executions(**kwargs)
        listed += page["QueryExecutionIds"]
        token = page.get("NextToken")
        if not token:
            break
    duplicates = len(listed) - len(set(listed))
    ids = set(listed)
    lost = [q for q in started_ids if q not in ids]
    dup_started = len(started_ids) - len(set(started_ids))
    unfinished = []
    for i in range(0, len(started_ids), 50):
        batch = setup.batch_get_query_execution(QueryExecutionIds=started_ids[i:i + 50])
        unfinished += [e["QueryExecutionId"] for e in batch["QueryExecutions"]
                       if e["Status"]["State"] in ("QUEUED", "RUNNING")]
    proc.terminate()
    proc.wait(timeout=30)

    window = 10
    windows = []
    for start in range(0, int(wall) + 1, window):
        lat = sorted(d * 1000 for (s, d, _) in runs if start <= s < start + window)
        rss = [r for (s, r, _, _) in samples if start <= s < start + window]
        if not lat:
            continue
        windows.append({"t": start, "per_second": len(lat) / window, "p50_ms": lat[len(lat) // 2],
                        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "rss_mb": max(rss or [0])})
    lat = sorted(d * 1000 for (_, d, _) in runs)
    peak_rss = max(r for (_, r, _, _) in samples)
    peak_queue = max(q for (_, _, q, _) in samples)
    by_kind = {}
    for (_, d, k) in runs:
        by_kind.setdefault(k, []).append(d * 1000)
    report = {
        "clients": CLIENTS, "seconds": wall, "runs": len(runs), "per_second": len(runs) / wall,
        "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)], "unexpected_errors": errors,
        "throttled": throttled[0], "queries_started": len(started_ids), "lost": [(q, kinds_of.get(q)) for q in lost[:20]], "lost_count": len(lost),
        "duplicated_in_history": duplicates, "duplicated_ids": dup_started, "unfinished": unfinished[:10],
        "peak_rss_mb": peak_rss, "memory_limit_mb": MEMORY_LIMIT_MB, "overhead_mb": OVERHEAD_MB,
        "peak_queued": peak_queue, "max_queued": MAX_QUEUED, "windows": windows,
        "by_kind": {k: {"runs": len(v), "p50_ms": sorted(v)[len(v) // 2]} for k, v in by_kind.items()},
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "load.json").write_text(json.dumps(report, indent=1))
    svg(windows, results / "load.svg")
    ok = (not errors and not lost and not duplicates and not dup_started and not unfinished
          and peak_rss <= MEMORY_LIMIT_MB + OVERHEAD_MB and peak_queue <= MAX_QUEUED)
    kinds = "\n".join(f"| {k} | {v['runs']} | {v['p50_ms']:.0f} |" for k, v in sorted(report["by_kind"].items()))
    md = f"""# Load: {CLIENTS} clients against one glaux serve

`bench/run load` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, release build): {CLIENTS} clients for
{wall:.0f} s against `glaux serve --memory-limit {MEMORY_LIMIT_MB}M --max-concurrent-queries 8
--max-queued-queries {MAX_QUEUED}` over TPC-H SF1 Parquet, through boto3 (Athena API) and the trino
client: small joins, lineitem scans, cancels, DDL (create, query, drop) and results paged 1,000
rows at a time.

| | |
|---|---:|
| runs completed | {len(runs)} ({len(runs) / wall:.1f}/s) |
| latency p50 / p99 | {report['p50_ms']:.0f} / {report['p99_ms']:.0f} ms |
| unexpected errors | {len(errors)} |
| submissions throttled (queue full: backpressure) | {throttled[0]} |
| queries started / lost / duplicated / unfinished | {len(started_ids)} / {len(lost)} / {duplicates + dup_started} / {len(unfinished)} |
| peak queued (bound) | {peak_queue:.0f} ({MAX_QUEUED}) |
| peak RSS (memory limit + stated overhead) | {peak_rss:.0f} MB ({MEMORY_LIMIT_MB} + {OVERHEAD_MB} MB) |
| verdict | {'held' if ok else 'NOT held'} |

| kind | runs | p50 ms |
|---|---:|---:|
{kinds}

Over time, per {window} s: ![throughput, latency and RSS](load.svg)

{chr(10).join('- ' + e for e in errors[:20])}
"""
    (results / "load.md").write_text(md)
    print(md)
    if not ok:
        raise SystemExit("the load was not held")


if __name__ == "__main__":
    main()
