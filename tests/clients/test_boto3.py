"""Athena's API through boto3, unmodified: a SELECT's whole life, DDL, failures, cancellation,
pagination, workgroups with a scan cutoff, listing."""
import csv
import io
import time

import botocore.exceptions
import pytest

from conftest import BUCKET, RESULTS, athena, duck, rows, run, s3, wait


def test_select_lifecycle_results_and_result_file():
    client = athena()
    sql = "SELECT category, count(*) AS n, sum(amount) AS total, min(day) AS first_day FROM events GROUP BY category ORDER BY category"
    qid = client.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": "default", "Catalog": "AwsDataCatalog"},
        ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    first = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    assert first in {"QUEUED", "RUNNING", "SUCCEEDED"}
    e = wait(client, qid)
    assert e["Status"]["State"] == "SUCCEEDED", e
    assert e["StatementType"] == "DML"
    stats = e["Statistics"]
    assert stats["DataScannedInBytes"] > 0
    assert stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"] >= 0
    assert "QueryQueueTimeInMillis" in stats and "QueryPlanningTimeInMillis" in stats
    assert e["QueryExecutionContext"]["Database"] == "default"
    assert e["ResultConfiguration"]["OutputLocation"] == f"{RESULTS}{qid}.csv"

    result = client.get_query_results(QueryExecutionId=qid)
    columns = result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        ("category", "varchar"), ("n", "bigint"), ("total", "double"), ("first_day", "varchar")]
    got = rows(client, qid)
    assert got[0] == ["category", "n", "total", "first_day"]
    expected = duck(sql)
    assert len(got) == len(expected) + 1
    for ours, theirs in zip(got[1:], expected):
        assert ours[0] == theirs[0] and int(ours[1]) == theirs[1] and ours[3] == theirs[3]
        assert abs(float(ours[2]) - theirs[2]) < 1e-6 * abs(theirs[2])

    # the result file: header, every value quoted, the same rows
    key = f"{RESULTS}{qid}.csv".removeprefix("s3://").split("/", 1)
    body = s3().get_object(Bucket=key[0], Key=key[1])["Body"].read().decode()
    assert body.splitlines()[0] == '"category","n","total","first_day"'
    assert list(csv.reader(io.StringIO(body))) == got
    s3().head_object(Bucket=key[0], Key=key[1] + ".metadata")


def test_nulls_and_empty_strings_stay_apart():
    client = athena()
    e = run(client, "SELECT CAST(NULL AS varchar) AS missing, '' AS empty, 'x' AS present")
    got = client.get_query_results(QueryExecutionId=e["QueryExecutionId"])["ResultSet"]["Rows"][1]["Data"]
    assert got == [{}, {"VarCharValue": ""}, {"VarCharValue": "x"}]
    key = e["ResultConfiguration"]["OutputLocation"].removeprefix("s3://").split("/", 1)
    body = s3().get_object(Bucket=key[0], Key=key[1])["Body"].read().decode()
    assert body.splitlines()[1] == ',"","x"'


def test_ddl_and_catalog_metadata():
    client = athena()
    e = run(client, f"CREATE EXTERNAL TABLE IF NOT EXISTS users_again (id bigint, country string) "
                    f"STORED AS PARQUET LOCATION 's3://{BUCKET}/users/parquet/'")
    assert e["Status"]["State"] == "SUCCEEDED" and e["StatementType"] == "DDL"
    meta = client.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="default", TableName="users_again")
    assert [(c["Name"], c["Type"]) for c in meta["TableMetadata"]["Columns"]] == [("id", "bigint"), ("country", "string")]
    names = [t["Name"] for t in client.list_table_metadata(CatalogName="awsdatacatalog", DatabaseName="default")["TableMetadataList"]]
    assert {"events", "users", "nested", "users_again"} <= set(names)
    assert "default" in [d["Name"] for d in client.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]]
    assert client.get_database(CatalogName="AwsDataCatalog", DatabaseName="default")["Database"]["Name"] == "default"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="default", TableName="nope")
    assert err.value.response["Error"]["Code"] == "MetadataException"
    assert "default.nope" in err.value.response["Error"]["Message"]


def test_failing_query_says_why():
    client = athena()
    e = run(client, "SELECT nope FROM events")
    assert e["Status"]["State"] == "FAILED"
    assert "nope" in e["Status"]["StateChangeReason"]
    # Athena's AthenaError: a user error, not retryable, with the message
    error = e["Status"]["AthenaError"]
    assert error["ErrorCategory"] == 2 and error["Retryable"] is False and "nope" in error["ErrorMessage"], error
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_query_results(QueryExecutionId=e["QueryExecutionId"])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "FAILED" in err.value.response["Error"]["Message"]


def test_cancelled_query():
    client = athena()
    endless = "SELECT count(*) FROM events a, events b, events c WHERE a.id + b.id + c.id = -1"
    qid = client.start_query_execution(QueryString=endless, ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    deadline = time.time() + 30
    while client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "QUEUED":
        assert time.time() < deadline
        time.sleep(0.05)
    client.stop_query_execution(QueryExecutionId=qid)
    e = wait(client, qid, timeout=30)
    assert e["Status"]["State"] == "CANCELLED", e
    assert e["Status"]["StateChangeReason"]


def test_pagination_over_5000_rows():
    client = athena()
    e = run(client, "SELECT id, name FROM events ORDER BY id LIMIT 5000")
    assert e["Status"]["State"] == "SUCCEEDED", e
    pages = list(client.get_paginator("get_query_results").paginate(
        QueryExecutionId=e["QueryExecutionId"], PaginationConfig={"PageSize": 1000}))
    assert [len(p["ResultSet"]["Rows"]) for p in pages] == [1000, 1000, 1000, 1000, 1000, 1]
    got = [[c.get("VarCharValue") for c in r["Data"]] for p in pages for r in p["ResultSet"]["Rows"]]
    assert got[0] == ["id", "name"]
    expected = duck("SELECT id, name FROM events ORDER BY id LIMIT 5000")
    assert [(int(i), n) for i, n in got[1:]] == expected


def test_workgroup_cutoff_cancels_the_query():
    client = athena()
    client.create_work_group(Name="capped", Description="small scans only",
                             Configuration={"BytesScannedCutoffPerQuery": 10_000_000})
    group = client.get_work_group(WorkGroup="capped")["WorkGroup"]
    assert group["Configuration"]["BytesScannedCutoffPerQuery"] == 10_000_000
    assert "capped" in [g["Name"] for g in client.list_work_groups()["WorkGroups"]]
    columns = ", ".join(f"sum(c{i})" for i in range(10))
    e = run(client, f"SELECT {columns} FROM wide", WorkGroup="capped")
    assert e["Status"]["State"] == "CANCELLED", e
    assert e["Status"]["StateChangeReason"] == "Bytes scanned limit was exceeded"
    scanned = e["Statistics"]["DataScannedInBytes"]
    assert 10_000_000 < scanned < 20_000_000
    # lifted, the same query runs
    client.update_work_group(WorkGroup="capped", ConfigurationUpdates={"RemoveBytesScannedCutoffPerQuery": True})
    assert run(client, f"SELECT {columns} FROM wide", WorkGroup="capped")["Status"]["State"] == "SUCCEEDED"
    client.delete_work_group(WorkGroup="capped")
    with pytest.raises(botocore.exceptions.ClientError):
        client.get_work_group(WorkGroup="capped")


def test_list_and_batch_get_query_executions():
    client = athena()
    ids = [run(client, f"SELECT {i}")["QueryExecutionId"] for i in range(3)]
    listed = []
    for page in client.get_paginator("list_query_executions").paginate(WorkGroup="primary"):
        listed += page["QueryExecutionIds"]
    assert set(ids) <= set(listed)
    assert listed.index(ids[2]) < listed.index(ids[0]), "newest first"
    got = client.batch_get_query_execution(QueryExecutionIds=ids + ["no-such-id"])
    assert sorted(e["QueryExecutionId"] for e in got["QueryExecutions"]) == sorted(ids)
    assert [u["QueryExecutionId"] for u in got["UnprocessedQueryExecutionIds"]] == ["no-such-id"]


def test_client_request_token_is_idempotent():
    client = athena()
    a = client.start_query_execution(QueryString="SELECT 1", ClientRequestToken="t" * 32)["QueryExecutionId"]
    b = client.start_query_execution(QueryString="SELECT 1", ClientRequestToken="t" * 32)["QueryExecutionId"]
    assert a == b
