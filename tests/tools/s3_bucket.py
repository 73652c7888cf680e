"""Fills an S3 bucket as Hydra and CI set-ups do, with boto3 (the AWS SDK for Python), so the
tests' buckets are written by an S3 client that is not nixpush.

    s3_bucket.py create BUCKET
    s3_bucket.py upload BUCKET DIR     # every file under DIR, keyed by its path below DIR

The endpoint comes from S3_ENDPOINT, the credentials from the usual AWS_* variables;
path-style addressing, as SeaweedFS and MinIO on a bare host:port need.
"""

import os
import sys

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def main():
    command, bucket = sys.argv[1], sys.argv[2]
    s3 = client()
    if command == "create":
        s3.create_bucket(Bucket=bucket)
    elif command == "upload":
        root = sys.argv[3]
        for folder, _, files in os.walk(root):
            for name in sorted(files):
                path = os.path.join(folder, name)
                key = os.path.relpath(path, root)
                s3.upload_file(path, bucket, key)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
