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
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import URL

TOKEN = os.environ["GLAUX_AUTH_TOKEN"]
ALLOWED_KEY = os.environ["GLAUX_AUTH_ACCESS_KEY"]
ALLOWED_SECRET = os.environ["GLAUX_AUTH_SECRET_KEY"]
KEY_ONLY = os.environ["GLAUX_AUTH_KEY_ONLY"]


def call(path, body, headers, method="POST"):
    request = urllib.request.Request(URL + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def client(key, secret=ALLOWED_SECRET):
    return boto3.client("athena", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret)


def test_athena_credentials():
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client("AKIAWRONG").list_work_groups()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert "AKIAWRONG" not in err.value.response["Error"]["Message"]
    assert "primary" in [g["Name"] for g in client(ALLOWED_KEY).list_work_groups()["WorkGroups"]]
    # a key whose secret the server holds must sign with that secret
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client(ALLOWED_KEY, "not-the-secret").list_work_groups()
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert ALLOWED_SECRET not in err.value.response["Error"]["Message"]
    # a key listed without a secret is taken on its id
    assert "primary" in [g["Name"] for g in client(KEY_ONLY, "anything").list_work_groups()["WorkGroups"]]
    status, body = call("/", b"{}", {"X-Amz-Target": "AmazonAthena.ListWorkGroups", "Authorization": "Bearer wrong-token"})
    assert status == 403 and json.loads(body)["__type"] == "UnrecognizedClientException" and "wrong-token" not in body
    status, _ = call("/", b"{}", {"X-Amz-Target": "AmazonAthena.ListWorkGroups", "Authorization": f"Bearer {TOKEN}"})
    assert status == 200


def signed(body, secret=ALLOWED_SECRET):
    request = AWSRequest(method="POST", url=URL + "/", data=body,
                         headers={"X-Amz-Target": "AmazonAthena.ListWorkGroups", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ALLOWED_KEY, secret), "athena", "us-east-1").add_auth(request)
    return dict(request.headers)


def test_signatures_cover_the_body():
    headers = signed(b'{"MaxResults": 5}')
    status, body = call("/", b'{"MaxResults": 5}', headers)
    assert status == 200, body
    # the same signature on another body is refused
    status, body = call("/", b'{"MaxResults": 50}', headers)
    assert status == 403 and json.loads(body)["__type"] == "InvalidSignatureException", body
    # and an old signature: X-Amz-Date an hour ago
    stale = dict(headers)
    stale["X-Amz-Date"] = "20200101T000000Z"
    status, body = call("/", b'{"MaxResults": 5}', stale)
    assert status == 403 and "expired" in json.loads(body)["Message"], body


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
