"""Athena's API through boto3 against `glaux serve --workers`: the coordinator spreads a plan
over the workers, and the answer and the bill are those of one process."""
from conftest import athena, duck, rows, run


def test_a_query_through_the_server_is_spread_over_the_workers():
    client = athena()
    sql = "SELECT category, count(*) AS n, sum(quantity) AS q FROM events GROUP BY category ORDER BY category"
    plan = run(client, f"EXPLAIN {sql}")
    assert plan["Status"]["State"] == "SUCCEEDED", plan
    lines = rows(client, plan["QueryExecutionId"])[1:]
    kinds = {line[0]: line[1] for line in lines}
    assert "DistributedExec" in kinds["physical_plan"], kinds
    assert "the stages' tasks run on 2 workers" in kinds["glaux_workers"], kinds

    e = run(client, sql)
    assert e["Status"]["State"] == "SUCCEEDED", e
    got = rows(client, e["QueryExecutionId"])[1:]
    assert [[c, int(n), int(q)] for c, n, q in got] == [list(r) for r in duck(sql)]
    assert e["Statistics"]["DataScannedInBytes"] > 0
