"""boto3's Athena client pointed at the function's URL (GLAUX_URL): the requests travel as
Function URL events through the Lambda Runtime API to the `bootstrap` process, which answers
from its Glue catalog (web.daily) and S3."""
from conftest import athena, wait


def test_a_query_through_the_function_url():
    client = athena()
    qid = client.start_query_execution(
        QueryString="SELECT month, count(*) AS n FROM daily WHERE year = '2024' AND month IN ('01', '02') GROUP BY month ORDER BY month",
        QueryExecutionContext={"Database": "web", "Catalog": "AwsDataCatalog"},
    )["QueryExecutionId"]
    execution = wait(client, qid)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["Statistics"]["DataScannedInBytes"] > 0
    rows = client.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    values = [[c.get("VarCharValue") for c in r["Data"]] for r in rows]
    # four rows a day; 2024 is a leap year
    assert values == [["month", "n"], ["01", str(4 * 31)], ["02", str(4 * 29)]]
    assert "primary" in [g["Name"] for g in client.list_work_groups()["WorkGroups"]]
    ids = client.list_query_executions()["QueryExecutionIds"]
    assert qid in ids
