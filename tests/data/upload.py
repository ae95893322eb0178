#!/usr/bin/env python3
"""Uploads a directory tree to a bucket on an S3-compatible server with boto3 (keys = relative paths).

Usage: upload.py ENDPOINT_URL DIR BUCKET
"""
import sys
from pathlib import Path

import boto3

endpoint, root, bucket = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket=bucket)
count = 0
for path in sorted(root.rglob("*")):
    if path.is_file() and not path.name.startswith("."):
        s3.upload_file(str(path), bucket, path.relative_to(root).as_posix())
        count += 1
print(f"uploaded {count} objects to s3://{bucket}/")
