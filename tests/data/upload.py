#!/usr/bin/env python3
"""Uploads a directory tree to a bucket on an S3-compatible server with boto3 (keys = relative paths).

Usage: upload.py ENDPOINT_URL DIR BUCKET
"""
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

endpoint, root, bucket = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket=bucket)
files = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")]
# many small objects (a thousand daily partitions): upload several at a time
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda p: s3.upload_file(str(p), bucket, p.relative_to(root).as_posix()), files))
print(f"uploaded {len(files)} objects to s3://{bucket}/")
