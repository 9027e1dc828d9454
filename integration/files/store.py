"""The blob store beside Redis: job files (uploads and file results) live here, not in Redis.

Two backends, chosen by `FILES_URL`:
- unset (or `file:///path`): a directory, `DATA_DIR/files` by default: one machine;
- `s3://bucket/prefix`: any S3-compatible bucket through boto3, for more than one machine
  (on Heroku each dyno has its own short-lived disk). boto3 reads the endpoint, region and
  credentials from the usual variables (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`,
  `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).

Every file lives under its job's id (`{job_id}/{name}`), so it goes with its job: a sweep
(`sweep.py`) removes the files of jobs whose record has expired.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

CHUNK = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_.-]{1,100}$")  # `{job_id}/{name}`, made by podrelay only


class FileMissing(LookupError):
    """The store has no such file (swept, or never written)."""


@dataclass(frozen=True)
class StoredFile:
    """What a job record keeps of a file: where it is and what it is, never its bytes."""

    key: str
    content_type: str
    size: int
    sha256: str

    FIELDS = ("file", "content_type", "bytes", "sha256")  # the reference's, on a result item

    def reference(self) -> dict:
        """The record's item: `{"file", "content_type", "bytes", "sha256"}`."""
        return {"file": self.key, "content_type": self.content_type, "bytes": self.size, "sha256": self.sha256}


def file_key(job_id: str, name: str) -> str:
    """The key of a job's file (ValueError for a name podrelay would not make)."""
    key = f"{job_id}/{name}"
    if not _KEY.match(key):
        raise ValueError(f"not a file key: {key!r}")
    return key


def _chunks(source: BinaryIO | bytes) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        for start in range(0, len(source), CHUNK):
            yield bytes(source[start : start + CHUNK])
        return
    while chunk := source.read(CHUNK):
        yield chunk


class DirectoryStore:
    """Files in a directory of this machine (written to a temporary name, then renamed)."""

    presigns = False  # a worker reaches these files through podrelay's own signed URL

    def __init__(self, root: str):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"directory {self.root}"

    def put(self, key: str, source: BinaryIO | bytes, content_type: str) -> StoredFile:
        """Write a file from bytes or a readable stream, chunk by chunk."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                for chunk in _chunks(source):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredFile(key, content_type, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        """The file, to read (FileMissing when it is gone)."""
        try:
            return open(self.root / key, "rb")  # noqa: SIM115 (the caller streams and closes it)
        except (FileNotFoundError, NotADirectoryError):
            raise FileMissing(key) from None

    def fetch_url(self, key: str, expires: int) -> str | None:
        """A URL a worker can fetch the file from without podrelay: none for a directory."""
        return None

    def groups(self) -> Iterator[tuple[str, float]]:
        """Each job id that has files, with when its newest file was written."""
        if not self.root.is_dir():
            return
        for entry in os.scandir(self.root):
            if entry.is_dir():
                newest = max((f.stat().st_mtime for f in os.scandir(entry.path)), default=entry.stat().st_mtime)
                yield entry.name, newest

    def delete_group(self, job_id: str) -> None:
        """Every file of a job."""
        shutil.rmtree(self.root / job_id, ignore_errors=True)

    def delete(self, key: str) -> None:
        """One file (nothing when it is gone)."""
        (self.root / key).unlink(missing_ok=True)


class S3Store:
    """Files in an S3-compatible bucket, under a prefix."""

    presigns = True  # a worker fetches inputs by presigned URL, straight from the bucket

    def __init__(self, bucket: str, prefix: str, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or _s3_client()

    def __repr__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, key: str, source: BinaryIO | bytes, content_type: str) -> StoredFile:
        """Upload from bytes or a readable stream (multipart for large files, by boto3)."""
        digest, size = hashlib.sha256(), 0

        class Counted:  # hashes and counts what boto3 reads, so the stream is read once
            def read(self, amount: int = -1) -> bytes:
                nonlocal size
                chunk = stream.read(amount)
                digest.update(chunk)
                size += len(chunk)
                return chunk

        stream = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
        self.client.upload_fileobj(Counted(), self.bucket, self.prefix + key, ExtraArgs={"ContentType": content_type})
        return StoredFile(key, content_type, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        """The object's body, streamed (FileMissing when it is gone)."""
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise FileMissing(key) from None
            raise

    def fetch_url(self, key: str, expires: int) -> str | None:
        """A presigned GET URL (SigV4 allows at most 7 days)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + key}, ExpiresIn=min(expires, 7 * 24 * 3600)
        )

    def groups(self) -> Iterator[tuple[str, float]]:
        """Each job id that has objects, with when its newest object was written."""
        newest: dict[str, float] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                job_id = item["Key"][len(self.prefix) :].split("/", 1)[0]
                newest[job_id] = max(newest.get(job_id, 0.0), item["LastModified"].timestamp())
        yield from newest.items()

    def delete(self, key: str) -> None:
        """One object (S3 answers a missing one as deleted too)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def delete_group(self, job_id: str) -> None:
        """Every object of a job."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{job_id}/")
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})


def _s3_client():
    """boto3's S3 client with time-outs; path-style addressing for a custom endpoint (MinIO, moto, R2)."""
    import boto3
    from botocore.config import Config

    custom = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 4, "mode": "standard"},
        s3={"addressing_style": "path" if custom else "auto"},
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", config=config)


def open_store(files_url: str, data_dir: str) -> DirectoryStore | S3Store:
    """The store `FILES_URL` names (ValueError for a scheme podrelay does not know)."""
    if not files_url:
        return DirectoryStore(os.path.join(data_dir, "files"))
    parts = urlsplit(files_url)
    if parts.scheme == "file":
        return DirectoryStore(parts.path)
    if parts.scheme == "s3" and parts.netloc:
        return S3Store(parts.netloc, parts.path)
    raise ValueError(files_url)
