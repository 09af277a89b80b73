#!/usr/bin/env python3
"""An S3 client independent of the project's code, for tests to look into buckets.

boto3 (pinned; the venv at $GUARDIAN_CACHE/venv-s3 made by scripts/setup.d/31-s3-client.sh),
path-style addressing, SigV4. Each command prints JSON lines on stdout:

  s3-inspect.py [connection options] list-buckets
  s3-inspect.py ... list BUCKET [--prefix P]     one line per object: bucket, key, size, etag
  s3-inspect.py ... head BUCKET KEY              size, etag, content_type, metadata, ...
  s3-inspect.py ... get BUCKET KEY OUT           writes OUT ('-' for stdout: then no JSON)
  s3-inspect.py ... put BUCKET KEY FILE          multipart above --multipart-threshold
  s3-inspect.py ... mk-bucket BUCKET             succeeds when the bucket is already ours
  s3-inspect.py ... delete BUCKET KEY

Connection: --endpoint, --access-key, --secret-key, --region, or else the environment
variables GUARDIAN_S3_ENDPOINT, GUARDIAN_S3_ACCESS_KEY, GUARDIAN_S3_SECRET_KEY and
GUARDIAN_S3_REGION (`eval "$(scripts/radosgw.sh env)"` sets them).

Exit status: 0 done, 2 the bucket or key does not exist, 1 any other error (a JSON line
{"error": ...} on stderr).

Runs with any python3: when boto3 is not importable it re-executes itself with the venv's
python.
"""

import argparse
import hashlib
import json
import os
import sys

VENV = os.path.join(
    os.environ.get("GUARDIAN_CACHE", "/var/cache/private-ai-guardian"), "venv-s3"
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    from boto3.s3.transfer import TransferConfig
except ImportError:
    venv_python = os.path.join(VENV, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("s3-inspect: boto3 missing; run scripts/setup.sh 31-s3-client")

MIB = 1024 * 1024
NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def etag(value):
    return (value or "").strip('"')


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def client(args):
    missing = [
        name
        for name, value in (
            ("--endpoint / GUARDIAN_S3_ENDPOINT", args.endpoint),
            ("--access-key / GUARDIAN_S3_ACCESS_KEY", args.access_key),
            ("--secret-key / GUARDIAN_S3_SECRET_KEY", args.secret_key),
        )
        if not value
    ]
    if missing:
        raise SystemExit("s3-inspect: missing " + ", ".join(missing))
    config = botocore.config.Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # Only send/check the flexible checksums (CRC32 trailers, aws-chunked bodies) when an
        # operation requires them: older servers such as Ceph 16 reject or ignore them.
        request_checksum_calculation=args.checksums,
        response_checksum_validation=args.checksums,
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
        region_name=args.region,
        config=config,
    )


def cmd_list_buckets(s3, args):
    for bucket in s3.list_buckets().get("Buckets", []):
        emit({"bucket": bucket["Name"], "created": bucket["CreationDate"].isoformat()})


def cmd_list(s3, args):
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=args.bucket, Prefix=args.prefix):
        for obj in page.get("Contents", []):
            emit(
                {
                    "bucket": args.bucket,
                    "key": obj["Key"],
                    "size": obj["Size"],
                    "etag": etag(obj.get("ETag")),
                    "last_modified": obj["LastModified"].isoformat(),
                }
            )


def cmd_head(s3, args):
    head = s3.head_object(Bucket=args.bucket, Key=args.key)
    emit(
        {
            "bucket": args.bucket,
            "key": args.key,
            "size": head["ContentLength"],
            "etag": etag(head.get("ETag")),
            "content_type": head.get("ContentType"),
            "last_modified": head["LastModified"].isoformat(),
            "metadata": head.get("Metadata", {}),
        }
    )


def cmd_get(s3, args):
    response = s3.get_object(Bucket=args.bucket, Key=args.key)
    body = response["Body"]
    digest = hashlib.sha256()
    size = 0
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    try:
        for block in iter(lambda: body.read(MIB), b""):
            digest.update(block)
            size += len(block)
            out.write(block)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    if args.out != "-":
        emit(
            {
                "bucket": args.bucket,
                "key": args.key,
                "size": size,
                "etag": etag(response.get("ETag")),
                "sha256": digest.hexdigest(),
                "path": args.out,
            }
        )


def cmd_put(s3, args):
    transfer = TransferConfig(
        multipart_threshold=args.multipart_threshold * MIB,
        multipart_chunksize=args.part_size * MIB,
        use_threads=False,
    )
    s3.upload_file(args.file, args.bucket, args.key, Config=transfer)
    head = s3.head_object(Bucket=args.bucket, Key=args.key)
    size = os.path.getsize(args.file)
    emit(
        {
            "bucket": args.bucket,
            "key": args.key,
            "size": head["ContentLength"],
            "etag": etag(head.get("ETag")),
            "sha256": sha256_of(args.file),
            "multipart": size >= args.multipart_threshold * MIB,
        }
    )


def cmd_mk_bucket(s3, args):
    # radosgw answers 200 (not BucketAlreadyOwnedByYou) to a repeated create: ask first.
    try:
        s3.head_bucket(Bucket=args.bucket)
        emit({"bucket": args.bucket, "created": False})
        return
    except botocore.exceptions.ClientError as e:
        if str(e.response.get("Error", {}).get("Code")) not in NOT_FOUND:
            raise
    try:
        s3.create_bucket(Bucket=args.bucket)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    emit({"bucket": args.bucket, "created": True})


def cmd_delete(s3, args):
    s3.delete_object(Bucket=args.bucket, Key=args.key)
    emit({"bucket": args.bucket, "key": args.key, "deleted": True})


def parser():
    env = os.environ.get
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--endpoint", default=env("GUARDIAN_S3_ENDPOINT"))
    p.add_argument("--access-key", default=env("GUARDIAN_S3_ACCESS_KEY"))
    p.add_argument("--secret-key", default=env("GUARDIAN_S3_SECRET_KEY"))
    p.add_argument("--region", default=env("GUARDIAN_S3_REGION") or "us-east-1")
    p.add_argument(
        "--checksums",
        choices=["when_required", "when_supported"],
        default="when_required",
        help="boto3's flexible checksums (default when_required)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list-buckets").set_defaults(run=cmd_list_buckets)
    c = sub.add_parser("list")
    c.add_argument("bucket")
    c.add_argument("--prefix", default="")
    c.set_defaults(run=cmd_list)
    c = sub.add_parser("head")
    c.add_argument("bucket")
    c.add_argument("key")
    c.set_defaults(run=cmd_head)
    c = sub.add_parser("get")
    c.add_argument("bucket")
    c.add_argument("key")
    c.add_argument("out")
    c.set_defaults(run=cmd_get)
    c = sub.add_parser("put")
    c.add_argument("bucket")
    c.add_argument("key")
    c.add_argument("file")
    c.add_argument("--multipart-threshold", type=int, default=8, metavar="MIB")
    c.add_argument("--part-size", type=int, default=8, metavar="MIB")
    c.set_defaults(run=cmd_put)
    c = sub.add_parser("mk-bucket")
    c.add_argument("bucket")
    c.set_defaults(run=cmd_mk_bucket)
    c = sub.add_parser("delete")
    c.add_argument("bucket")
    c.add_argument("key")
    c.set_defaults(run=cmd_delete)
    return p


def main():
    args = parser().parse_args()
    s3 = client(args)
    try:
        args.run(s3, args)
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        print(
            json.dumps({"error": code, "message": error.get("Message") or str(e)}),
            file=sys.stderr,
        )
        return 2 if code in NOT_FOUND else 1
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
