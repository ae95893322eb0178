"""A shared `glaux serve` keeps its clients apart: principals from an auth file (GLAUX_AUTH_FILE's
alice, bob and the admin root), boto3 and the trino client unmodified. What one changes
(settings, database, session views, prepared statements) the other never sees; a user sees only
their own queries; writes go only where --allow-write says; a panic fails one query only;
parameters are values; a full queue throttles."""
import json
import os
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
import pytest
import trino

from conftest import BUCKET, URL, failed, s3, wait

ALLOWED_WRITE = f"s3://{BUCKET}-results/allowed/"
LOCAL = os.environ["GLAUX_ALLOWED_DIR"]
KEYS = {"alice": ("AKIAALICE", "alice-secret"), "bob": ("AKIABOB", "bob-secret"), "root": ("AKIAROOT", "root-secret")}
TOKENS = {"alice": "tok-alice#1", "bob": "tok-bob", "root": "tok-root"}


def athena(who):
    key, secret = KEYS[who]
    # no retries: a throttled call must show as such
    config = botocore.config.Config(retries={"total_max_attempts": 1})
    return boto3.client("athena", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=config)


def trino_cursor(who, user=None):
    url = urllib.parse.urlparse(URL)
    conn = trino.dbapi.connect(host=url.hostname, port=url.port, user=user or who, catalog="awsdatacatalog",
                               schema="default", http_scheme="http",
                               http_headers={"Authorization": f"Bearer {TOKENS[who]}"})
    return conn.cursor()


def run(client, sql, **kw):
    kw.setdefault("ResultConfiguration", {"OutputLocation": ALLOWED_WRITE})
    qid = client.start_query_execution(QueryString=sql, **kw)["QueryExecutionId"]
    return wait(client, qid)


def ok(e):
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    return e


def values(client, e):
    rows = client.get_query_results(QueryExecutionId=e["QueryExecutionId"])["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in rows[1:]]


def code(err):
    return err.value.response["Error"]["Code"]


@pytest.fixture(scope="module", autouse=True)
def tables():
    s3().create_bucket(Bucket=f"{BUCKET}-results")
    root = athena("root")
    ok(run(root, f"CREATE EXTERNAL TABLE IF NOT EXISTS users (id bigint, country string) STORED AS PARQUET "
                 f"LOCATION 's3://{BUCKET}/users/parquet/'"))
    ok(run(root, "CREATE DATABASE IF NOT EXISTS other"))
    ok(run(root, "CREATE EXTERNAL TABLE IF NOT EXISTS other.users (id bigint, country string) STORED AS PARQUET "
                 f"LOCATION 's3://{BUCKET}/users/parquet/'"))


def test_sessions_are_the_clients_own():
    alice, bob = athena("alice"), trino_cursor("bob")
    users = ok(run(alice, "SELECT count(*) FROM users"))
    count = values(alice, users)[0][0]
    default_batch = values(alice, ok(run(alice, "SHOW datafusion.execution.batch_size")))[0][1]
    # bob's settings, database, session views and prepared statements stay in bob's session ...
    bob.execute("SET datafusion.execution.batch_size = 77")
    bob.fetchall()
    bob.execute("SHOW datafusion.execution.batch_size")
    assert bob.fetchall()[0][1] == "77"
    bob.execute("CREATE TEMPORARY VIEW users AS SELECT 42 AS id, 'shadow' AS country")
    bob.fetchall()
    bob.execute("SELECT id, country FROM users")
    assert bob.fetchall() == [[42, "shadow"]]
    bob.execute("CREATE TEMPORARY VIEW mine AS SELECT 1 AS x")
    bob.fetchall()
    bob.execute("PREPARE plus_one FROM SELECT ? + 1 AS y")
    bob.fetchall()
    bob.execute("EXECUTE plus_one USING 41")
    assert bob.fetchall() == [[42]]
    bob.execute("USE other")
    bob.fetchall()
    bob.execute("SELECT count(*) FROM users")
    assert str(bob.fetchall()[0][0]) == count, "bob's USE took him to other.users"
    # ... and alice, before and after, sees none of it
    assert values(alice, ok(run(alice, "SHOW datafusion.execution.batch_size")))[0][1] == default_batch != "77"
    assert values(alice, ok(run(alice, "SELECT count(*) FROM users"))) == [[count]]
    failed(run(alice, "SELECT * FROM mine"), "mine")
    failed(run(alice, "EXECUTE plus_one USING 1"), "plus_one")
    # nor does a second trino client of bob's own (a new session)
    fresh = trino_cursor("bob")
    fresh.execute("SELECT count(*) FROM users")
    assert str(fresh.fetchall()[0][0]) == count
    # a setting the process owns is not a session's to change
    failed(run(alice, "SET datafusion.runtime.memory_limit = '100G'"), "not allowed")


def test_users_see_only_their_own_queries():
    alice, bob, root = athena("alice"), athena("bob"), athena("root")
    mine = ok(run(alice, "SELECT 1 AS x"))["QueryExecutionId"]
    long = alice.start_query_execution(QueryString="SELECT count(*) FROM generate_series(1, 20000000000)",
                                       ResultConfiguration={"OutputLocation": ALLOWED_WRITE})["QueryExecutionId"]
    for call in (lambda: bob.get_query_execution(QueryExecutionId=mine),
                 lambda: bob.get_query_results(QueryExecutionId=mine),
                 lambda: bob.stop_query_execution(QueryExecutionId=long)):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        assert code(err) == "InvalidRequestException" and "not found" in str(err.value)
    batch = bob.batch_get_query_execution(QueryExecutionIds=[mine])
    assert batch["QueryExecutions"] == [] and batch["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == mine
    listed = bob.list_query_executions(WorkGroup="primary", MaxResults=50)["QueryExecutionIds"]
    assert mine not in listed and long not in listed
    history = values(bob, ok(run(bob, "SELECT query_execution_id, \"user\" FROM system.query_history")))
    assert history and all(user == "bob" for _, user in history), history
    assert mine not in [i for i, _ in history]
    assert alice.get_query_execution(QueryExecutionId=long)["QueryExecution"]["Status"]["State"] in ("QUEUED", "RUNNING")
    # the trino nextUri of alice's query is hers too
    cursor = trino_cursor("alice")
    cursor.execute("SELECT 7")
    assert cursor.fetchall() == [[7]]
    # an admin sees, reads and stops anyone's; the history names the authenticated principal
    assert root.get_query_execution(QueryExecutionId=mine)["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    assert values(root, root.get_query_execution(QueryExecutionId=mine)["QueryExecution"]) == [["1"]]
    listed = root.list_query_executions(WorkGroup="primary", MaxResults=50)["QueryExecutionIds"]
    assert mine in listed
    who = values(root, ok(run(root, f"SELECT \"user\" FROM system.query_history WHERE query_execution_id = '{mine}'")))
    assert who == [["alice"]]
    root.stop_query_execution(QueryExecutionId=long)
    assert wait(alice, long, timeout=60)["Status"]["State"] == "CANCELLED"


def test_trino_user_must_be_the_principal():
    with pytest.raises(trino.exceptions.HttpError):
        cursor = trino_cursor("bob", user="alice")
        cursor.execute("SELECT 1")
        cursor.fetchall()
    # an admin may run as another user, and the query is that user's
    cursor = trino_cursor("root", user="alice")
    cursor.execute("SELECT 3")
    assert cursor.fetchall() == [[3]]
    e = athena("alice").get_query_execution(QueryExecutionId=cursor.query_id)["QueryExecution"]
    assert e["Status"]["State"] == "SUCCEEDED"


def test_workgroups_are_changed_by_admins_only():
    bob, root = athena("bob"), athena("root")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        bob.update_work_group(WorkGroup="primary", ConfigurationUpdates={"RemoveBytesScannedCutoffPerQuery": True})
    assert code(err) == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        bob.create_work_group(Name="bobs")
    assert code(err) == "AccessDeniedException"
    # alice holds a grant for the etl workgroup
    root.create_work_group(Name="etl")
    athena("alice").update_work_group(WorkGroup="etl", Description="nightly loads")
    assert root.get_work_group(WorkGroup="etl")["WorkGroup"]["Description"] == "nightly loads"
    root.update_work_group(WorkGroup="etl", State="DISABLED")
    assert root.get_work_group(WorkGroup="etl")["WorkGroup"]["State"] == "DISABLED"


def test_workgroup_prepared_statements_are_changed_by_admins_only():
    bob, root = athena("bob"), athena("root")
    root.create_prepared_statement(StatementName="shared_one", WorkGroup="primary", QueryStatement="SELECT 1 AS one")
    for change in [lambda: bob.create_prepared_statement(StatementName="bobs", WorkGroup="primary", QueryStatement="SELECT 2"),
                   lambda: bob.update_prepared_statement(StatementName="shared_one", WorkGroup="primary", QueryStatement="SELECT 666"),
                   lambda: bob.delete_prepared_statement(StatementName="shared_one", WorkGroup="primary")]:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            change()
        assert code(err) == "AccessDeniedException"
    # bob reads and runs the workgroup's statement; his own PREPARE stays with his query
    assert bob.get_prepared_statement(StatementName="shared_one", WorkGroup="primary")["PreparedStatement"]["QueryStatement"] == "SELECT 1 AS one"
    assert values(bob, ok(run(bob, "EXECUTE shared_one"))) == [["1"]]
    ok(run(bob, "PREPARE shared_one FROM SELECT 666 AS one"))
    names = [p["StatementName"] for p in root.list_prepared_statements(WorkGroup="primary")["PreparedStatements"]]
    assert names == ["shared_one"]
    assert values(root, ok(run(root, "EXECUTE shared_one"))) == [["1"]]
    root.delete_prepared_statement(StatementName="shared_one", WorkGroup="primary")


def test_writes_only_where_allowed():
    alice = athena("alice")
    storage = s3()
    key = storage.list_objects_v2(Bucket=BUCKET, Prefix="users/parquet/")["Contents"][0]["Key"]
    before = storage.head_object(Bucket=BUCKET, Key=key)["ETag"]
    # over a table's data file, and beside it: refused, nothing written
    failed(run(alice, f"COPY (SELECT 1 AS x) TO 's3://{BUCKET}/{key}' STORED AS CSV"), "not allowed", key)
    failed(run(alice, f"COPY (SELECT 1 AS x) TO 's3://{BUCKET}/users/parquet/extra.csv' STORED AS CSV"), "not allowed")
    assert storage.head_object(Bucket=BUCKET, Key=key)["ETag"] == before
    assert "extra.csv" not in str(storage.list_objects_v2(Bucket=BUCKET, Prefix="users/parquet/"))
    assert values(alice, ok(run(alice, "SELECT count(*) FROM users")))[0][0] != "0"
    # result files cannot be aimed at a table's location either
    failed(run(alice, "SELECT 1", ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/users/parquet/"}), "not allowed")
    # under --allow-write: written
    ok(run(alice, f"COPY (SELECT 1 AS x) TO '{ALLOWED_WRITE}copy/out.csv' STORED AS CSV"))
    body = storage.get_object(Bucket=f"{BUCKET}-results", Key="allowed/copy/out.csv")["Body"].read().decode()
    assert body.split() == ["x", "1"]
    failed(run(alice, f"COPY (SELECT 1 AS x) TO 's3://{BUCKET}-results/elsewhere/out.csv' STORED AS CSV"), "outside")
    # a link inside the allowed folder that points outside it is outside, for reads and results
    failed(run(alice, f"SELECT * FROM '{LOCAL}/link/secret.csv'"), "outside the folder")
    e = run(alice, "SELECT 1", ResultConfiguration={"OutputLocation": f"{LOCAL}/link/results/"})
    failed(e, "outside the folder")
    assert not pathlib.Path(LOCAL, "link", "results").exists()


def test_a_bad_projection_is_refused_at_create_and_a_panic_fails_one_query():
    root = athena("root")
    bad = ("CREATE EXTERNAL TABLE proj (x bigint) PARTITIONED BY (dt string) STORED AS PARQUET "
           f"LOCATION 's3://{BUCKET}/users/parquet/' TBLPROPERTIES ('projection.enabled'='true', "
           "'projection.dt.type'='date', 'projection.dt.format'='yyyy-MM-dd', 'projection.dt.range'='NOW\u22123YEARS,NOW')")
    failed(run(root, bad), "projection.dt.range", "proj")
    failed(run(root, "SELECT * FROM proj"), "proj")
    e = run(root, "SELECT glaux_test_panic()")
    failed(e, "internal error")
    # the server goes on serving, its gauges right
    assert values(root, ok(run(root, "SELECT 5"))) == [["5"]]
    request = urllib.request.Request(URL + "/metrics", headers={"Authorization": "Bearer tok-root"})
    metrics = urllib.request.urlopen(request, timeout=30).read().decode()
    running = [l for l in metrics.splitlines() if l.startswith("glaux_queries_running")]
    assert running and running[0].split()[-1] == "0", running


def test_parameters_are_values():
    alice = athena("alice")
    table = "(VALUES ('O''Brien'), ('x'' OR ''1''=''1'), ('other')) AS t(x)"
    sql = f"SELECT x FROM {table} WHERE x = ? ORDER BY x"
    assert values(alice, ok(run(alice, sql, ExecutionParameters=["'O''Brien'"]))) == [["O'Brien"]]
    assert values(alice, ok(run(alice, sql, ExecutionParameters=["'x'' OR ''1''=''1'"]))) == [["x' OR '1'='1"]]
    failed(run(alice, sql, ExecutionParameters=["x' OR '1'='1"]), "not a single SQL literal")
    failed(run(alice, sql, ExecutionParameters=["'a' OR 1=1"]), "not a single SQL literal")
    # the trino client binds its parameters with PREPARE and EXECUTE … USING
    cursor = trino_cursor("alice")
    cursor.execute(sql, ["O'Brien"])
    assert cursor.fetchall() == [["O'Brien"]]
    cursor.execute(sql, ["' OR '1'='1"])
    assert cursor.fetchall() == []


def test_wrong_host_and_token_prefix_are_refused():
    def call(headers):
        request = urllib.request.Request(URL + "/", data=b"{}", method="POST",
                                         headers={"X-Amz-Target": "AmazonAthena.ListWorkGroups", **headers})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    assert call({"Authorization": f"Bearer {TOKENS['alice']}"})[0] == 200
    # the token holds a '#': what comes before it is not the token
    status, body = call({"Authorization": "Bearer tok-alice"})
    assert status == 403, body
    # a page elsewhere making the browser call localhost names its own host
    status, body = call({"Authorization": f"Bearer {TOKENS['alice']}", "Host": "attacker.example"})
    assert status == 403 and "host" in json.loads(body)["Message"], body


def test_a_full_queue_throttles():
    # the server runs two queries at a time and lets one wait
    alice = athena("alice")
    endless = "SELECT count(*) FROM generate_series(1, 20000000000)"
    state = lambda qid: alice.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    started = []
    for expected in ("RUNNING", "RUNNING", "QUEUED"):
        qid = alice.start_query_execution(QueryString=endless, ResultConfiguration={"OutputLocation": ALLOWED_WRITE})
        started.append(qid["QueryExecutionId"])
        deadline = time.time() + 30
        while state(started[-1]) != expected:
            assert time.time() < deadline, [state(q) for q in started]
            time.sleep(0.05)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        alice.start_query_execution(QueryString="SELECT 1", ResultConfiguration={"OutputLocation": ALLOWED_WRITE})
    assert code(err) == "TooManyRequestsException"
    cursor = trino_cursor("alice")
    with pytest.raises(trino.exceptions.TrinoQueryError) as err:
        cursor.execute("SELECT 1")
        cursor.fetchall()
    assert err.value.error_name == "QUERY_QUEUE_FULL"
    for qid in started:
        alice.stop_query_execution(QueryExecutionId=qid)
    for qid in started:
        assert wait(alice, qid, timeout=60)["Status"]["State"] == "CANCELLED"
    assert values(alice, ok(run(alice, "SELECT 2"))) == [["2"]]
