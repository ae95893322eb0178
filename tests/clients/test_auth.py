"""A server with credentials (GLAUX_AUTH_*): wrong or missing ones are refused in each protocol's
shape, right ones pass, and no credential is echoed back."""
import base64
import json
import os
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest

from conftest import URL

TOKEN = os.environ["GLAUX_AUTH_TOKEN"]
ALLOWED_KEY = os.environ["GLAUX_AUTH_ACCESS_KEY"]


def call(path, body, headers, method="POST"):
    request = urllib.request.Request(URL + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def client(key):
    return boto3.client("athena", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key="secret")


def test_athena_credentials():
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client("AKIAWRONG").list_work_groups()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert "AKIAWRONG" not in err.value.response["Error"]["Message"]
    assert "primary" in [g["Name"] for g in client(ALLOWED_KEY).list_work_groups()["WorkGroups"]]
    status, body = call("/", b"{}", {"X-Amz-Target": "AmazonAthena.ListWorkGroups", "Authorization": "Bearer wrong-token"})
    assert status == 403 and json.loads(body)["__type"] == "UnrecognizedClientException" and "wrong-token" not in body
    status, _ = call("/", b"{}", {"X-Amz-Target": "AmazonAthena.ListWorkGroups", "Authorization": f"Bearer {TOKEN}"})
    assert status == 200


def test_trino_credentials():
    basic = base64.b64encode(b"alice:wrong").decode()
    status, body = call("/v1/statement", b"SELECT 1", {"X-Trino-User": "alice", "Authorization": f"Basic {basic}"})
    assert status == 401 and "wrong" not in body
    status, _ = call("/v1/statement", b"SELECT 1", {"X-Trino-User": "alice"})
    assert status == 401
    good = base64.b64encode(b"alice:s3cret").decode()
    status, body = call("/v1/statement", b"SELECT 1", {"X-Trino-User": "alice", "Authorization": f"Basic {good}"})
    assert status == 200 and "nextUri" in json.loads(body)
    status, _ = call("/health", None, {}, method="GET")
    assert status == 200, "health needs no credentials"
