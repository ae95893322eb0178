"""dbt-core with dbt-athena-community, unmodified, against `glaux serve --catalog glue`: the
project in tests/dbt (a seed, a view, a partitioned Parquet table, incremental models with
insert_overwrite and append) builds twice in a row — the second run takes the incremental
path — and its tables equal what the same SQL gives in DuckDB over the seed."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import uuid

import duckdb

from conftest import RESULTS, S3, URL, athena, rows, run

PROJECT = pathlib.Path(__file__).resolve().parent.parent / "dbt"
SEED = PROJECT / "seeds" / "seed_events.csv"
SCHEMA = f"dbt_{uuid.uuid4().hex[:6]}"


def dbt(*args):
    work = pathlib.Path(tempfile.mkdtemp(prefix="glaux-dbt-"))
    (work / "profiles.yml").write_text(f"""
glaux:
  target: dev
  outputs:
    dev:
      type: athena
      s3_staging_dir: {RESULTS}dbt-staging/
      s3_data_dir: {RESULTS}dbt-data/
      s3_data_naming: schema_table_unique
      region_name: us-east-1
      database: awsdatacatalog
      schema: {SCHEMA}
      work_group: primary
      threads: 1
      num_retries: 0
""")
    env = dict(os.environ, AWS_ENDPOINT_URL_ATHENA=URL, AWS_ENDPOINT_URL_GLUE=S3, AWS_ENDPOINT_URL_S3=S3,
               AWS_ENDPOINT_URL_STS=S3, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", GLAUX_DBT_TARGET=str(work / "target"), DBT_SEND_ANONYMOUS_USAGE_STATS="false",
               # dbt does not render env_var() in log-path: its logs go to the test's folder this way
               DBT_LOG_PATH=str(work / "logs"))
    env.pop("AWS_ENDPOINT_URL", None)
    try:
        out = subprocess.run([os.environ["GLAUX_DBT"], *args, "--project-dir", str(PROJECT), "--profiles-dir", str(work)],
                             env=env, capture_output=True, text=True, timeout=600)
    finally:
        # the profile, dbt's logs and compiled SQL: nothing the test reads afterwards
        shutil.rmtree(work, ignore_errors=True)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    return out.stdout


def table(sql):
    client = athena()
    e = run(client, sql, QueryExecutionContext={"Database": SCHEMA})
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    return rows(client, e["QueryExecutionId"])[1:]


def duck(sql):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW seed_events AS SELECT * FROM read_csv_auto('{SEED}')")
    return [[str(v) for v in r] for r in con.execute(sql).fetchall()]


def test_dbt_build_twice_gives_duckdbs_tables():
    first = dbt("build")
    assert "Completed successfully" in first, first[-3000:]
    second = dbt("build")
    assert "Completed successfully" in second, second[-3000:]
    assert table("SELECT category, n, total FROM category_counts ORDER BY category") == duck(
        "SELECT category, count(*), sum(amount) FROM seed_events GROUP BY category ORDER BY category")
    assert table("SELECT id, amount, category FROM events_by_category ORDER BY id") == duck(
        "SELECT id, amount, category FROM seed_events ORDER BY id")
    # insert_overwrite: the second run replaced two partitions with the same rows
    assert table("SELECT id, amount, category FROM events_overwrite ORDER BY id") == duck(
        "SELECT id, amount * 2, category FROM seed_events ORDER BY id")
    # append: the second run added the rows past max(id) - 5 once more
    assert table("SELECT id, amount FROM events_append ORDER BY id, amount") == duck(
        "SELECT id, amount FROM (SELECT id, amount FROM seed_events UNION ALL "
        "SELECT id, amount FROM seed_events WHERE id > 35) ORDER BY id, amount")
