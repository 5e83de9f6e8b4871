"""Object storage (AWS S3 and S3-compatible servers): the client the settings describe, and the two conditional
writes that commits on an object store are made of.

An object store has no rename, no hard link, no fsync and no file lock; what it has (AWS S3 since 2024-08,
MinIO, moto's server) is the conditional PUT: ``If-None-Match: *`` creates a key only if it does not exist,
``If-Match: <etag>`` replaces it only if nobody replaced it since it was read. A store that ignores these
headers answers 200 to both and two writers can both "win": ``probe_conditional_writes`` tells them apart, and
the warehouse refuses to commit on a store that fails it.
"""

from __future__ import annotations

import threading

from holocrm_core.settings import Backends

_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


class PreconditionFailed(Exception):
    """A conditional write lost: the key existed (If-None-Match) or changed since it was read (If-Match)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``; ValueError naming a malformed URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket (expected s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def s3_client(backends: Backends | None = None):
    """A boto3 S3 client for the settings' endpoint and keys (one per configuration and process; boto3
    clients are thread-safe)."""
    kwargs = (backends or Backends.load()).s3_client_kwargs()
    key = tuple(sorted(kwargs.items()))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"})
            client = boto3.client("s3", config=config, **kwargs)
            _CLIENTS[key] = client
        return client


def _is_precondition_failure(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # 412: the condition failed; 409 ConditionalRequestConflict: a concurrent conditional write is in flight
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def put_if_absent(client, bucket: str, key: str, body: bytes) -> str:
    """Create ``key`` only if it does not exist; returns its ETag, raises PreconditionFailed if it exists."""
    try:
        return client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
    except Exception as exc:
        if _is_precondition_failure(exc):
            raise PreconditionFailed(f"s3://{bucket}/{key} already exists") from exc
        raise


def put_if_match(client, bucket: str, key: str, body: bytes, etag: str) -> str:
    """Replace ``key`` only if its ETag is still ``etag``; returns the new ETag or raises PreconditionFailed."""
    try:
        return client.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=etag)["ETag"]
    except Exception as exc:
        if _is_precondition_failure(exc):
            raise PreconditionFailed(f"s3://{bucket}/{key} changed since it was read") from exc
        raise


def get_object(client, bucket: str, key: str) -> tuple[bytes, str] | None:
    """(body, ETag) of ``key``, or None when it does not exist."""
    try:
        answer = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        return None
    return answer["Body"].read(), answer["ETag"]


def list_keys(client, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (all pages)."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def probe_conditional_writes(client, bucket: str, prefix: str = "") -> None:
    """Raise RuntimeError unless the store refuses a second ``If-None-Match: *`` PUT and a stale ``If-Match``
    PUT (a store that ignores them would let two commits both succeed). Leaves nothing behind."""
    import uuid

    key = f"{prefix.strip('/')}/_probe/{uuid.uuid4().hex}".lstrip("/")
    try:
        etag = put_if_absent(client, bucket, key, b"1")
        for attempt in (
            lambda: put_if_absent(client, bucket, key, b"2"),
            lambda: put_if_match(client, bucket, key, b"3", '"0"'),
        ):
            try:
                attempt()
            except PreconditionFailed:
                continue
            raise RuntimeError(
                f"the object store behind s3://{bucket} ignores conditional writes (If-None-Match / If-Match): "
                "commits there would not be atomic; use AWS S3, MinIO, or another store that honours them"
            )
        put_if_match(client, bucket, key, b"4", etag)
    finally:
        client.delete_object(Bucket=bucket, Key=key)
