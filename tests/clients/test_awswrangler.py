"""awswrangler, unmodified, against `glaux serve --catalog glue` with moto's S3 and Glue:
read_sql_query with and without the CTAS approach (which reads the CTAS manifest and drops
its temporary table through Glue), and unload — answers equal to each other and to DuckDB."""
import uuid

import awswrangler as wr
import boto3
import pandas as pd

from conftest import BUCKET, RESULTS, S3, URL, athena, duck, run

wr.config.athena_endpoint_url = URL
wr.config.s3_endpoint_url = S3
wr.config.glue_endpoint_url = S3
wr.config.sts_endpoint_url = S3

SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
DATABASE = f"wrangler_{uuid.uuid4().hex[:6]}"
SQL = "SELECT category, count(*) AS n, sum(quantity) AS quantity FROM events GROUP BY category"


def setup_module():
    client = athena()
    for sql in [f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
                f"CREATE EXTERNAL TABLE {DATABASE}.events (id bigint, user_id bigint, name string, category string, "
                f"amount double, quantity bigint, day string, flag boolean) STORED AS PARQUET "
                f"LOCATION 's3://{BUCKET}/events/parquet/'"]:
        e = run(client, sql)
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]


def expected():
    rows = duck(SQL + " ORDER BY category")
    return pd.DataFrame(rows, columns=["category", "n", "quantity"])


def tidy(frame):
    return frame.sort_values("category").reset_index(drop=True).astype({"n": "int64", "quantity": "int64", "category": "str"})


def test_read_sql_query_with_and_without_ctas():
    with_ctas = wr.athena.read_sql_query(SQL, database=DATABASE, ctas_approach=True, s3_output=RESULTS,
                                         boto3_session=SESSION)
    without = wr.athena.read_sql_query(SQL, database=DATABASE, ctas_approach=False, s3_output=RESULTS,
                                       boto3_session=SESSION)
    pd.testing.assert_frame_equal(tidy(with_ctas), tidy(without))
    pd.testing.assert_frame_equal(tidy(with_ctas), tidy(expected()))
    # the CTAS approach's temporary table is gone from Glue again
    glue = SESSION.client("glue", endpoint_url=S3)
    tables = [t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]]
    assert tables == ["events"], tables


def test_unload():
    path = f"{RESULTS}wrangler-unload-{uuid.uuid4().hex[:6]}/"
    metadata = wr.athena.unload(SQL, path=path, database=DATABASE, file_format="PARQUET", boto3_session=SESSION)
    assert metadata.raw_payload["Status"]["State"] == "SUCCEEDED"
    assert metadata.raw_payload["StatementType"] == "DML"
    frame = wr.s3.read_parquet(path, boto3_session=SESSION)
    pd.testing.assert_frame_equal(tidy(frame), tidy(expected()))
