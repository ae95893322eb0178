"""A server's own disk: readable only inside the folder given with --allow-local-files
(GLAUX_ALLOWED_DIR here), and not at all without it (GLAUX_ALLOWED_DIR unset)."""
import csv
import os
import pathlib

from conftest import athena, failed, run

ALLOWED = os.environ.get("GLAUX_ALLOWED_DIR")
OUTSIDE = os.environ["GLAUX_OUTSIDE_DIR"]


def test_local_paths():
    client = athena()
    secret = f"{OUTSIDE}/secret.csv"
    if ALLOWED is None:
        failed(run(client, f"SELECT * FROM '{secret}'"))
        e = run(client, f"CREATE EXTERNAL TABLE IF NOT EXISTS sneaky (x bigint) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                        f"LOCATION '{OUTSIDE}/'")
        if e["Status"]["State"] == "SUCCEEDED":
            failed(run(client, "SELECT * FROM sneaky"), "not readable")
        e = run(client, "SELECT 1", ResultConfiguration={"OutputLocation": f"{OUTSIDE}/results/"})
        failed(e, "does not write to its own disk")
        return
    # inside the folder: read, and results written there
    out = f"{ALLOWED}/results"
    e = run(client, f"SELECT sum(x) AS total FROM '{ALLOWED}/numbers.csv'", ResultConfiguration={"OutputLocation": out})
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    expected = sum(int(r["x"]) for r in csv.DictReader(open(f"{ALLOWED}/numbers.csv")))
    assert client.get_query_results(QueryExecutionId=e["QueryExecutionId"])["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == str(expected)
    written = pathlib.Path(out, f"{e['QueryExecutionId']}.csv").read_text()
    assert written.splitlines() == ['"total"', f'"{expected}"']
    # outside it: refused, naming the file, with nothing read
    e = run(client, f"SELECT * FROM '{secret}'")
    failed(e, "secret.csv", "outside the folder")
    assert e["Statistics"]["DataScannedInBytes"] == 0
    failed(run(client, f"SELECT * FROM '{ALLOWED}/../{pathlib.Path(OUTSIDE).name}/secret.csv'"), "outside the folder")
    e = run(client, "SELECT 1", ResultConfiguration={"OutputLocation": f"{OUTSIDE}/results/"})
    failed(e, "outside the folder this server allows")
    assert not pathlib.Path(OUTSIDE, "results").exists()
