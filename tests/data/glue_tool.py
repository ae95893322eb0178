#!/usr/bin/env python3
"""Talks to the Glue server the tests use, with boto3, as other tools would.

Usage:
  glue_tool.py ENDPOINT seed-daily BUCKET    registers web.daily as a crawler would: Parquet SerDe
                                             class names, string partition keys, 1,096 partitions
  glue_tool.py ENDPOINT get-table DB TABLE   prints GetTable's Table as JSON
  glue_tool.py ENDPOINT partitions DB TABLE  prints the partitions' values as JSON
"""
import base64
import json
import sys
from datetime import date, timedelta

import boto3

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}


def glue(endpoint):
    return boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def seed_daily(g, bucket):
    try:
        g.create_database(DatabaseInput={"Name": "web"})
    except g.exceptions.AlreadyExistsException:
        pass
    try:
        g.delete_table(DatabaseName="web", Name="daily")
    except g.exceptions.EntityNotFoundException:
        pass
    columns = [{"Name": "id", "Type": "bigint"}, {"Name": "hits", "Type": "bigint"}]
    g.create_table(DatabaseName="web", TableInput={
        "Name": "daily",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in ("year", "month", "day")],
        "StorageDescriptor": {"Columns": columns, "Location": f"s3://{bucket}/daily/", **PARQUET},
    })
    inputs = []
    for n in range(1096):
        d = date(2024, 1, 1) + timedelta(days=n)
        values = [str(d.year), f"{d.month:02d}", f"{d.day:02d}"]
        location = f"s3://{bucket}/daily/year={values[0]}/month={values[1]}/day={values[2]}/"
        inputs.append({"Values": values, "StorageDescriptor": {"Columns": columns, "Location": location, **PARQUET}})
    for i in range(0, len(inputs), 100):
        out = g.batch_create_partition(DatabaseName="web", TableName="daily", PartitionInputList=inputs[i:i + 100])
        assert not out.get("Errors"), out["Errors"]
    print(json.dumps({"partitions": len(inputs)}))


def athena_view(g, database, name, sql, *columns):
    """Registers a view the way Athena writes one: VIRTUAL_VIEW, the Presto view document."""
    cols = [dict(zip(("name", "type"), c.split(":"))) for c in columns]
    doc = {"originalSql": sql, "catalog": "awsdatacatalog", "schema": database, "columns": cols,
           "owner": "arn:aws:iam::123456789012:user/analyst", "runAsInvoker": False, "properties": {}}
    text = "/* Presto View: " + base64.b64encode(json.dumps(doc).encode()).decode() + " */"
    hive = {"varchar": "string", "integer": "int"}
    g.create_table(DatabaseName=database, TableInput={
        "Name": name, "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "StorageDescriptor": {"Columns": [{"Name": c["name"], "Type": hive.get(c["type"], c["type"])} for c in cols],
                              "Location": "", "SerdeInfo": {}},
        "PartitionKeys": [], "ViewOriginalText": text, "ViewExpandedText": "/* Presto View */",
    })
    print(json.dumps({"created": f"{database}.{name}"}))


def main():
    endpoint, command, *args = sys.argv[1:]
    g = glue(endpoint)
    if command == "seed-daily":
        seed_daily(g, *args)
    elif command == "get-table":
        print(json.dumps(g.get_table(DatabaseName=args[0], Name=args[1])["Table"], default=str))
    elif command == "partitions":
        pages = g.get_paginator("get_partitions").paginate(DatabaseName=args[0], TableName=args[1])
        print(json.dumps(sorted(p["Values"] for page in pages for p in page["Partitions"])))
    elif command == "athena-view":
        athena_view(g, *args)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
