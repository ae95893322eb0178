"""32 clients for 30 seconds: no errors, no lost queries, every query's reported bytes its own."""
import math
import os
import threading
import time

from conftest import athena, run

QUERIES = {
    "SELECT sum(amount) FROM events": None,
    "SELECT count(*), max(country) FROM users": None,
    "SELECT count(*) FROM nested WHERE cardinality(tags) > 1": None,
}


def same_rows(a, b):
    """Equal rows; floating-point sums may differ in the last digits, as the order partial sums
    are combined in depends on which partition finishes first."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for ca, cb in zip(ra["Data"], rb["Data"]):
            x, y = ca.get("VarCharValue"), cb.get("VarCharValue")
            if x == y:
                continue
            try:
                if not math.isclose(float(x), float(y), rel_tol=1e-12):
                    return False
            except (TypeError, ValueError):
                return False
    return True


def test_32_clients_for_30_seconds():
    client = athena()
    # each query's bytes alone (run twice: the first may also read what later runs reuse)
    solo = {}
    for sql in QUERIES:
        run(client, sql)
        e = run(client, sql)
        solo[sql] = (e["Statistics"]["DataScannedInBytes"], client.get_query_results(QueryExecutionId=e["QueryExecutionId"])["ResultSet"]["Rows"][1:])
    seconds = float(os.environ.get("GLAUX_LOAD_SECONDS", "30"))
    errors, done = [], []
    stop = time.time() + seconds

    def worker(n):
        c = athena()
        queries = list(QUERIES)
        i = n
        while time.time() < stop:
            sql = queries[i % len(queries)]
            i += 1
            try:
                e = run(c, sql)
                if e["Status"]["State"] != "SUCCEEDED":
                    errors.append(f"{sql}: {e['Status']}")
                    continue
                scanned = e["Statistics"]["DataScannedInBytes"]
                if scanned != solo[sql][0]:
                    errors.append(f"{sql}: scanned {scanned}, alone {solo[sql][0]}")
                got = c.get_query_results(QueryExecutionId=e["QueryExecutionId"])["ResultSet"]["Rows"][1:]
                if not same_rows(got, solo[sql][1]):
                    errors.append(f"{sql}: {got} != {solo[sql][1]}")
                done.append(e["QueryExecutionId"])
            except Exception as exc:  # every failure counts, none is swallowed
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert len(done) >= 32
    assert len(set(done)) == len(done)
    listed = set()
    for page in client.get_paginator("list_query_executions").paginate(WorkGroup="primary"):
        listed.update(page["QueryExecutionIds"])
    assert set(done) <= listed, "every query is listed"
    print(f"{len(done)} queries by 32 clients in {seconds:.0f} s")
