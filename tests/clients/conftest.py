"""Shared setup for the client tests: a running `glaux serve` (GLAUX_URL, started by the Rust
test that runs pytest), the moto S3 server with the test data, and DuckDB over the same files."""
import os
import time

import boto3
import duckdb
import pytest

URL = os.environ["GLAUX_URL"]
S3 = os.environ["GLAUX_TEST_S3_ENDPOINT"]
BUCKET = os.environ["GLAUX_TEST_BUCKET"]
DATA = os.environ["GLAUX_TEST_DATA"]
RESULTS = f"s3://{BUCKET}-results/{os.environ.get('GLAUX_RUN', 'run')}/"
DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}


def athena(**kw):
    return boto3.client("athena", endpoint_url=URL, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing", **kw)


def s3():
    return boto3.client("s3", endpoint_url=S3, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def wait(client, qid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        execution = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if execution["Status"]["State"] in DONE:
            return execution
        time.sleep(0.05)
    raise AssertionError(f"query {qid} did not finish in {timeout} s")


def run(client, sql, **kw):
    kw.setdefault("ResultConfiguration", {"OutputLocation": RESULTS})
    qid = client.start_query_execution(QueryString=sql, **kw)["QueryExecutionId"]
    return wait(client, qid)


def failed(e, *words):
    """A FAILED record whose reason holds each of `words`; returns the reason."""
    assert e["Status"]["State"] == "FAILED", e["Status"]
    reason = e["Status"]["StateChangeReason"]
    for w in words:
        assert w in reason, reason
    return reason


def rows(client, qid):
    """Every row of a result through GetQueryResults' pages, header row first."""
    out = []
    for page in client.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
        out += [[c.get("VarCharValue") for c in r["Data"]] for r in page["ResultSet"]["Rows"]]
    return out


def duck(sql):
    """DuckDB over the same files: views named like glaux's tables."""
    con = duckdb.connect()
    for table in ["events", "users", "nested"]:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{DATA}/{table}/parquet/*.parquet')")
    con.execute(f"CREATE VIEW wide AS SELECT * FROM read_parquet('{DATA}/wide/*.parquet')")
    return con.execute(sql).fetchall()


TABLES = {
    "events": "(id bigint, user_id bigint, name string, category string, amount double, quantity bigint, day string, flag boolean)",
    "users": "(id bigint, country string)",
    "nested": "(id bigint, tags array<string>, attrs struct<k:string,v:bigint>)",
}


@pytest.fixture(scope="session", autouse=True)
def tables():
    """A bucket for results, and the test tables, registered through the Athena API itself."""
    # every file's server writes results there, whichever test runs first
    try:
        s3().create_bucket(Bucket=f"{BUCKET}-results")
    except s3().exceptions.BucketAlreadyOwnedByYou:
        pass
    if os.environ.get("GLAUX_AUTH_TOKEN") or os.environ.get("GLAUX_NO_TABLES"):
        return  # the auth tests and the Lambda's (Glue tables of its own) need none
    client = athena()
    for table, columns in TABLES.items():
        e = run(client, f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} {columns} STORED AS PARQUET "
                        f"LOCATION 's3://{BUCKET}/{table}/parquet/'")
        assert e["Status"]["State"] == "SUCCEEDED", e
    e = run(client, f"CREATE EXTERNAL TABLE IF NOT EXISTS wide STORED AS PARQUET LOCATION 's3://{BUCKET}/wide/'")
    assert e["Status"]["State"] == "SUCCEEDED", e
