"""The trino client (DB-API), unmodified: a join with nested types and NULLs equal to DuckDB's,
a cancelled query, USE schema."""
import threading
import time
import urllib.parse

import pytest
import trino

from conftest import BUCKET, URL, athena, duck, run


def connection(**kw):
    url = urllib.parse.urlparse(URL)
    kw.setdefault("schema", "default")
    return trino.dbapi.connect(host=url.hostname, port=url.port, user="tester", catalog="awsdatacatalog",
                               http_scheme="http", **kw)


def test_join_with_nested_types_and_nulls():
    sql = "SELECT n.id, n.tags, n.attrs, u.country FROM nested n LEFT JOIN users u ON n.id = u.id ORDER BY n.id LIMIT 60"
    cursor = connection().cursor()
    cursor.execute(sql)
    got = cursor.fetchall()
    types = [d[1] for d in cursor.description]
    assert types == ["bigint", "array(varchar)", "row(k varchar, v bigint)", "varchar"]
    expected = duck(sql)
    assert len(got) == len(expected) == 60
    for ours, theirs in zip(got, expected):
        attrs = None if theirs[2] is None else [theirs[2]["k"], theirs[2]["v"]]
        assert [ours[0], ours[1], None if ours[2] is None else list(ours[2]), ours[3]] == [theirs[0], theirs[1], attrs, theirs[3]]
    assert any(r[3] is None for r in got) and any(r[3] is not None for r in got), "some users are missing"
    assert cursor.stats["physicalInputBytes"] > 0
    # the bytes the protocol reports are the query's record's
    e = athena().get_query_execution(QueryExecutionId=cursor.query_id)["QueryExecution"]
    assert e["Statistics"]["DataScannedInBytes"] == cursor.stats["physicalInputBytes"]


def test_values_are_encoded_as_trino_sends_them():
    cursor = connection().cursor()
    cursor.execute("SELECT CAST(12.5 AS decimal(10,2)), DATE '2024-01-31', TRUE, 1.5e0, CAST(NULL AS varchar), map(['a'], [1])")
    row = cursor.fetchone()
    import datetime, decimal
    assert row == [decimal.Decimal("12.50"), datetime.date(2024, 1, 31), True, 1.5, None, {"a": 1}]


def test_cancel_a_running_query():
    # the client's execute() waits for the first rows, so it runs in a thread while this one cancels
    cursor = connection().cursor()
    errors = []

    def execute():
        try:
            cursor.execute("SELECT count(*) FROM events a, events b, events c WHERE a.id + b.id + c.id = -1")
        except Exception as e:  # what execute() says once cancelled
            errors.append(e)

    worker = threading.Thread(target=execute)
    worker.start()
    client = athena()
    deadline = time.time() + 30
    while cursor.query_id is None or client.get_query_execution(
            QueryExecutionId=cursor.query_id)["QueryExecution"]["Status"]["State"] != "RUNNING":
        assert time.time() < deadline, "the query never ran"
        time.sleep(0.05)
    time.sleep(0.3)
    cursor.cancel()
    worker.join(30)
    assert not worker.is_alive(), "execute() did not return after the cancel"
    qid = cursor.query_id
    while client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] not in {"CANCELLED", "FAILED", "SUCCEEDED"}:
        assert time.time() < deadline + 30, "the cancelled query kept running"
        time.sleep(0.05)
    e = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert e["Status"]["State"] == "CANCELLED", e["Status"]


def test_use_schema():
    client = athena()
    assert run(client, "CREATE DATABASE IF NOT EXISTS trino_other")["Status"]["State"] == "SUCCEEDED"
    e = run(client, f"CREATE EXTERNAL TABLE IF NOT EXISTS trino_other.people (id bigint, country string) "
                    f"STORED AS PARQUET LOCATION 's3://{BUCKET}/users/parquet/'")
    assert e["Status"]["State"] == "SUCCEEDED", e
    conn = connection()
    cursor = conn.cursor()
    cursor.execute("USE trino_other")
    cursor.fetchall()
    cursor = conn.cursor()
    cursor.execute("SELECT count(*) FROM people")
    assert cursor.fetchall() == [[duck("SELECT count(*) FROM users")[0][0]]]
    with pytest.raises(trino.exceptions.TrinoUserError) as err:
        cursor = conn.cursor()
        cursor.execute("USE no_such_schema")
        cursor.fetchall()
    assert "no_such_schema" in str(err.value)


def test_failed_query_has_error_name_and_type():
    cursor = connection().cursor()
    with pytest.raises(trino.exceptions.TrinoUserError) as err:
        cursor.execute("SELECT nope FROM events")
        cursor.fetchall()
    assert err.value.error_type == "USER_ERROR"
    assert "nope" in err.value.message
    # the error's name comes from its kind, not from its text
    with pytest.raises(trino.exceptions.TrinoUserError) as err:
        cursor.execute("SELECT id FORM events")
        cursor.fetchall()
    assert err.value.error_name == "SYNTAX_ERROR", err.value
    with pytest.raises(trino.exceptions.TrinoUserError) as err:
        cursor.execute("EXECUTE never_prepared USING 1")
        cursor.fetchall()
    assert err.value.error_name == "NOT_FOUND", err.value
