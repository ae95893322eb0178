"""A result far larger than the server's memory (GLAUX_SERVER_PID runs with --memory-limit 256M):
the query finishes, its pages read back from the spill file, and the server's peak memory stays
far below the result's size."""
import json
import os
import time
import urllib.request

from conftest import URL

ROWS = 2_000_000
PAD = 1000  # bytes a row: 2 GB in all


def call(url, method="GET", body=None):
    request = urllib.request.Request(url, data=body, method=method, headers={"X-Trino-User": "big"})
    with urllib.request.urlopen(request, timeout=300) as r:
        return json.loads(r.read().decode())


def peak_rss_bytes(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_two_gigabytes_through_a_256_megabyte_server():
    sql = f"SELECT value AS n, repeat('x', {PAD}) AS pad FROM generate_series(1, {ROWS})"
    reply = call(URL + "/v1/statement", "POST", sql.encode())
    next_uri = reply["nextUri"]
    deadline = time.time() + 600
    while True:
        assert time.time() < deadline, "the query did not finish"
        reply = call(next_uri)
        assert "error" not in reply, reply["error"]
        if reply["stats"]["state"] != "QUEUED" and "data" in reply:
            break
        next_uri = reply["nextUri"]
    first = reply["data"]
    assert first[0][0] == 1 and len(first[0][1]) == PAD and len(first) == 1000
    # the last page, read back from disk
    last_page = next_uri.rsplit("/", 1)[0] + f"/{ROWS // 1000 - 1}"
    last = call(last_page)["data"]
    assert [row[0] for row in last] == list(range(ROWS - 999, ROWS + 1))
    peak = peak_rss_bytes(int(os.environ["GLAUX_SERVER_PID"]))
    assert peak < 700 * 1024 * 1024, f"peak RSS {peak} bytes for a {ROWS * PAD} byte result"
