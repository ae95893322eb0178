"""The write half through the Athena API with boto3: CTAS, INSERT INTO and UNLOAD, their
statistics (StatementType DML, DataManifestLocation, the `rows` answer) and the files behind
them, checked against DuckDB over the same source files. (boto3 keeps only the fields of
Athena's model, so glaux's RowsWritten/BytesWritten are checked through the CLI.)"""
import time
import uuid

from conftest import BUCKET, RESULTS, athena, duck, failed, rows, run, s3, wait


def manifest_files(e):
    """The files a statement's manifest lists, with their sizes as S3 has them."""
    location = e["Statistics"]["DataManifestLocation"]
    bucket, key = location[len("s3://"):].split("/", 1)
    client = s3()
    listed = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode().split()
    sizes = {}
    for url in listed:
        b, k = url[len("s3://"):].split("/", 1)
        sizes[url] = client.head_object(Bucket=b, Key=k)["ContentLength"]
    return sizes


def objects_under(url):
    bucket, prefix = url[len("s3://"):].split("/", 1)
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])}


def test_ctas_insert_and_unload_report_what_they_wrote():
    client = athena()
    name = f"ctas_{uuid.uuid4().hex[:8]}"
    e = run(client, f"CREATE TABLE {name} WITH (format = 'PARQUET', partitioned_by = ARRAY['category']) "
                    "AS SELECT id, amount, category FROM events")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert e["StatementType"] == "DML"
    total = duck("SELECT count(*) FROM events")[0][0]
    assert e["Statistics"]["DataScannedInBytes"] > 0, "reading the source is billed"
    files = manifest_files(e)
    assert files and all(size > 0 for size in files.values())
    # the table lives under the results location, at tables/<QueryExecutionId>/, and holds
    # exactly the files the manifest lists
    location = f"{RESULTS}tables/{e['QueryExecutionId']}/"
    assert set(files) == objects_under(location)
    assert rows(client, e["QueryExecutionId"]) == [["rows"], [str(total)]]

    q = f"SELECT category, count(*), round(sum(amount), 6) FROM {name} GROUP BY category ORDER BY category"
    answer = run(client, q)
    expected = duck("SELECT category, count(*), round(sum(amount), 6) FROM events GROUP BY category ORDER BY category")
    got = rows(client, answer["QueryExecutionId"])[1:]
    assert got == [[c, str(n), str(s)] for c, n, s in expected]

    # INSERT INTO: new files only in its manifest, the rows added
    e = run(client, f"INSERT INTO {name} SELECT id, amount, category FROM events WHERE id < 10")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert e["StatementType"] == "DML"
    inserted = duck("SELECT count(*) FROM events WHERE id < 10")[0][0]
    assert rows(client, e["QueryExecutionId"]) == [["rows"], [str(inserted)]]
    new_files = manifest_files(e)
    assert new_files and not set(new_files) & set(files)
    count = run(client, f"SELECT count(*) FROM {name}")
    assert rows(client, count["QueryExecutionId"])[1] == [str(total + inserted)]

    # UNLOAD into an empty prefix; a second one into the same prefix is refused
    target = f"{RESULTS}unload-{uuid.uuid4().hex[:8]}/"
    e = run(client, f"UNLOAD (SELECT id, category FROM events WHERE id < 100) TO '{target}' WITH (format = 'JSON')")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert e["StatementType"] == "DML"
    assert set(manifest_files(e)) == objects_under(target)
    failed(run(client, f"UNLOAD (SELECT 1 AS a) TO '{target}'"), "already holds objects")

    run(client, f"DROP TABLE {name}")


def test_writes_stay_where_the_server_allows():
    client = athena()
    e = run(client, f"CREATE TABLE outside WITH (external_location = 's3://{BUCKET}/not-allowed/') AS SELECT 1 AS a")
    failed(e, "outside the locations this server allows writes to")
    e = run(client, f"UNLOAD (SELECT 1 AS a) TO 's3://{BUCKET}/not-allowed/'")
    failed(e, "outside the locations this server allows writes to")


def test_prepared_statements_are_kept_per_workgroup():
    client = athena()
    name = f"by_cat_{uuid.uuid4().hex[:6]}"
    client.create_prepared_statement(StatementName=name, WorkGroup="primary", Description="events of a category",
                                     QueryStatement="SELECT count(*) FROM events WHERE category = ?")
    got = client.get_prepared_statement(StatementName=name, WorkGroup="primary")["PreparedStatement"]
    assert got["QueryStatement"] == "SELECT count(*) FROM events WHERE category = ?"
    assert got["WorkGroupName"] == "primary" and got["Description"] == "events of a category"
    listed = client.list_prepared_statements(WorkGroup="primary")["PreparedStatements"]
    assert name in [s["StatementName"] for s in listed]
    # each query has a session of its own: EXECUTE finds the workgroup's statement
    e = run(client, f"EXECUTE {name} USING 'books'")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(client, e["QueryExecutionId"])[1] == [str(duck("SELECT count(*) FROM events WHERE category = 'books'")[0][0])]
    client.update_prepared_statement(StatementName=name, WorkGroup="primary",
                                     QueryStatement="SELECT count(*) + 1000000 FROM events WHERE category = ?")
    e = run(client, f"EXECUTE {name} USING 'books'")
    assert int(rows(client, e["QueryExecutionId"])[1][0]) > 1000000
    client.delete_prepared_statement(StatementName=name, WorkGroup="primary")
    try:
        client.get_prepared_statement(StatementName=name, WorkGroup="primary")
        raise AssertionError("the statement was deleted")
    except client.exceptions.ResourceNotFoundException:
        pass
    failed(run(client, f"EXECUTE {name} USING 'books'"), name)

    # PREPARE and DEALLOCATE through queries change the workgroup's statements too
    sql_name = f"plus_{uuid.uuid4().hex[:6]}"
    assert run(client, f"PREPARE {sql_name} FROM SELECT ? + 1 AS y")["Status"]["State"] == "SUCCEEDED"
    assert sql_name in [s["StatementName"] for s in client.list_prepared_statements(WorkGroup="primary")["PreparedStatements"]]
    e = run(client, f"EXECUTE {sql_name} USING 41")
    assert rows(client, e["QueryExecutionId"]) == [["y"], ["42"]]
    assert run(client, f"DEALLOCATE PREPARE {sql_name}")["Status"]["State"] == "SUCCEEDED"
    assert sql_name not in [s["StatementName"] for s in client.list_prepared_statements(WorkGroup="primary")["PreparedStatements"]]


def test_a_stopped_ctas_leaves_no_table_and_no_files():
    client = athena()
    name = f"stopped_{uuid.uuid4().hex[:8]}"
    # 1,500 partitions: their files are staged at once, then moved one by one — stopped then
    sql = (f"CREATE TABLE {name} WITH (partitioned_by = ARRAY['p']) AS "
           "SELECT id, amount, CAST(id % 1500 AS varchar) AS p FROM events")
    qid = client.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    location = f"{RESULTS}tables/{qid}/"
    deadline = time.time() + 60
    while not objects_under(location) and time.time() < deadline:
        time.sleep(0.05)
    assert objects_under(location), "the CTAS wrote nothing before it was stopped"
    client.stop_query_execution(QueryExecutionId=qid)
    e = wait(client, qid)
    assert e["Status"]["State"] == "CANCELLED", e["Status"]
    # what it wrote goes, staging included
    deadline = time.time() + 30
    while objects_under(location) and time.time() < deadline:
        time.sleep(0.2)
    assert not objects_under(location), sorted(objects_under(location))[:5]
    failed(run(client, f"SELECT count(*) FROM {name}"), name)
