"""Bad requests get each protocol's own error shape: never a 500 or a dropped connection."""
import json
import os
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from conftest import URL, athena, run


def call(path, body, headers, method="POST"):
    request = urllib.request.Request(URL + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def athena_call(operation, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call("/", raw, {"X-Amz-Target": f"AmazonAthena.{operation}", "Content-Type": "application/x-amz-json-1.1"})


def test_athena_errors_have_athena_shape():
    status, body = athena_call("NoSuchOperation", {})
    assert status == 400 and json.loads(body)["__type"] == "UnknownOperationException"
    status, body = athena_call("StartQueryExecution", b"{not json")
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"
    status, body = athena_call("StartQueryExecution", {"QueryString": 5})
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"
    status, body = athena_call("GetQueryExecution", {"QueryExecutionId": "no-such-id"})
    assert status == 400 and json.loads(body) == {"__type": "InvalidRequestException", "Message": "QueryExecution no-such-id was not found"}
    status, body = athena_call("GetQueryResults", {"QueryExecutionId": "x", "MaxResults": 5000})
    assert status == 400 and json.loads(body)["__type"] == "InvalidRequestException"


def test_oversize_query_through_boto3():
    client = athena()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.start_query_execution(QueryString="SELECT 1 -- " + "x" * 262_144)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "262144" in err.value.response["Error"]["Message"]


def test_trino_errors():
    status, body = call("/v1/statement", b"SELECT 1", {})
    assert status == 400 and "X-Trino-User" in body
    status, _ = call("/v1/statement/executing/nope/nope/0", None, {"X-Trino-User": "u"}, method="GET")
    assert status == 404
    status, body = call("/v1/statement", b"SELECT 1", {"X-Trino-User": "u", "X-Trino-Catalog": "hive"})
    reply = json.loads(body)
    assert status == 200 and reply["error"]["errorName"] == "NOT_FOUND" and "hive" in reply["error"]["message"]
    status, body = call("/v1/info", None, {}, method="GET")
    assert status == 200 and json.loads(body)["coordinator"] is True


def metric(body, name):
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} missing from /metrics")


def test_health_and_metrics():
    status, body = call("/health", None, {}, method="GET")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, before = call("/metrics", None, {}, method="GET")
    assert status == 200
    e = run(athena(), "SELECT sum(amount) FROM events")
    failed = run(athena(), "SELECT no_such_column FROM events")
    status, after = call("/metrics", None, {}, method="GET")
    succeeded = 'glaux_queries_total{state="SUCCEEDED"}'
    assert metric(after, succeeded) == metric(before, succeeded) + 1
    assert metric(after, 'glaux_queries_total{state="FAILED"}') == metric(before, 'glaux_queries_total{state="FAILED"}') + 1
    assert failed["Status"]["State"] == "FAILED"
    scanned = e["Statistics"]["DataScannedInBytes"]
    assert scanned > 0
    assert metric(after, "glaux_bytes_scanned_total") == metric(before, "glaux_bytes_scanned_total") + scanned
    assert metric(after, "glaux_query_duration_seconds_count") == metric(before, "glaux_query_duration_seconds_count") + 2
    assert metric(after, 'glaux_query_duration_seconds_bucket{le="+Inf"}') == metric(after, "glaux_query_duration_seconds_count")
    assert metric(after, "glaux_queries_queued") == 0 and metric(after, "glaux_queries_running") == 0
