"""PyAthena, unmodified: cursors with parameters (client-side pyformat and server-side qmark
ExecutionParameters), and the pandas cursor reading the result CSV from S3; values and types as
DuckDB gives them on the same files."""
import datetime

from pyathena import connect
from pyathena.pandas.cursor import PandasCursor

from conftest import RESULTS, duck

# boto3 takes service endpoints from the environment: AWS_ENDPOINT_URL_ATHENA is glaux,
# AWS_ENDPOINT_URL_S3 the S3 server (set by the Rust test that starts pytest)


def connection(**kw):
    return connect(s3_staging_dir=RESULTS, region_name="us-east-1", schema_name="default", **kw)


SQL = "SELECT id, name, amount, quantity, flag, day FROM events WHERE category = {} AND quantity > {} ORDER BY id LIMIT 200"


def test_cursor_with_parameters_equals_duckdb():
    expected = duck(SQL.format("'games'", 5))
    cursor = connection().cursor()
    cursor.execute(SQL.format("%(category)s", "%(q)d"), {"category": "games", "q": 5})
    got = cursor.fetchall()
    assert got == expected
    assert [d[0] for d in cursor.description] == ["id", "name", "amount", "quantity", "flag", "day"]
    assert [d[1] for d in cursor.description] == ["bigint", "varchar", "double", "bigint", "boolean", "varchar"]
    assert isinstance(got[0][0], int) and isinstance(got[0][2], float) and isinstance(got[0][4], bool)
    assert cursor.data_scanned_in_bytes > 0


def test_server_side_parameters():
    cursor = connection().cursor()
    # qmark sends the values as ExecutionParameters: glaux binds them, not the client
    cursor.execute(SQL.format("?", "?"), ["'games'", "5"], paramstyle="qmark")
    assert cursor.fetchall() == duck(SQL.format("'games'", 5))


def test_dates_and_decimals():
    cursor = connection().cursor()
    cursor.execute("SELECT DATE '2024-02-29' AS d, CAST('12.30' AS decimal(10,2)) AS m, CAST(NULL AS bigint) AS n")
    assert cursor.fetchall() == [(datetime.date(2024, 2, 29), __import__("decimal").Decimal("12.30"), None)]


def test_pandas_cursor_reads_the_result_file():
    cursor = connection(cursor_class=PandasCursor).cursor()
    frame = cursor.execute(SQL.format("'books'", 3)).as_pandas()
    expected = duck(SQL.format("'books'", 3))
    assert len(frame) == len(expected) > 0
    # pandas holds a missing string as NaN: compare it as the NULL it is
    got = [tuple(None if v != v else v for v in r) for r in frame.astype(object).itertuples(index=False)]
    assert got == expected
    assert str(frame.dtypes["id"]) == "Int64" or str(frame.dtypes["id"]) == "int64"
    assert cursor.output_location.endswith(".csv")
