"""Files behind a URL, for the transfer and delete actions (and the example flows' functions).

``s3://`` goes through boto3 (the same credential chain and ``AWS_ENDPOINT_URL`` as faas's S3
store, multipart uploads by boto3's transfer manager); every other URL (``file://``,
``memory://``, ``sftp://``, ``gs://`` with its package...) through fsspec. Both give the few
primitives a copy needs: ``info``, ``walk``, ``reader``, ``write`` (whole file, atomic for
readers), ``delete``, ``delete_tree``.
"""
from __future__ import annotations

import posixpath
import uuid
from datetime import datetime
from typing import IO, Iterator
from urllib.parse import urlsplit

CHUNK = 8 * 1024 * 1024


class Files:
    """One file system; paths are the URL's path (for S3: ``bucket/key``)."""

    def info(self, path: str) -> dict | None:
        """``{"type": "file"|"directory", "size", "mtime"}``, or None if nothing is there."""
        raise NotImplementedError

    def walk(self, path: str) -> Iterator[tuple[str, int]]:
        """``(relative path, size)`` of every file under the folder ``path``."""
        raise NotImplementedError

    def reader(self, path: str) -> IO[bytes]:
        raise NotImplementedError

    def write(self, path: str, source: IO[bytes]) -> None:
        """Write everything ``source.read(n)`` gives to ``path``; readers never see a part."""
        raise NotImplementedError

    def delete(self, path: str) -> None:
        raise NotImplementedError

    def delete_tree(self, path: str) -> None:
        raise NotImplementedError

    def read_bytes(self, path: str) -> bytes:
        with self.reader(path) as f:
            return f.read()


def _epoch(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.timestamp()
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class FsspecFiles(Files):
    def __init__(self, fs):
        self.fs = fs

    def info(self, path):
        try:
            i = self.fs.info(path)
        except FileNotFoundError:
            return None
        kind = "directory" if i.get("type") == "directory" else "file"
        return {"type": kind, "size": int(i.get("size") or 0),
                "mtime": _epoch(i.get("mtime") or i.get("created") or i.get("LastModified"))}

    def walk(self, path):
        base = path.rstrip("/")
        for p, i in sorted(self.fs.find(base, detail=True).items()):
            if i.get("type") == "file":
                yield posixpath.relpath(self.fs._strip_protocol(p), base), int(i.get("size") or 0)

    def reader(self, path):
        return self.fs.open(path, "rb")

    def write(self, path, source):
        parent = posixpath.dirname(path)
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex[:8]}.part")
        try:
            with self.fs.open(tmp, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
            self.fs.mv(tmp, path)      # a rename on local disks: no reader sees half a file
        except BaseException:
            try:
                self.fs.rm_file(tmp)
            except Exception:  # noqa: BLE001 - already failing; keep the first error
                pass
            raise

    def delete(self, path):
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def delete_tree(self, path):
        try:
            self.fs.rm(path.rstrip("/"), recursive=True)
        except FileNotFoundError:
            pass


class S3Files(Files):
    def __init__(self):
        import boto3
        from botocore.config import Config
        cfg = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 6},
                     max_pool_connections=16)
        self.client = boto3.session.Session().client("s3", config=cfg)

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def _not_found(self, e) -> bool:
        code = str(e.response.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def info(self, path):
        from botocore.exceptions import ClientError
        bucket, key = self._split(path)
        if key and not key.endswith("/"):
            try:
                h = self.client.head_object(Bucket=bucket, Key=key)
                return {"type": "file", "size": int(h["ContentLength"]),
                        "mtime": _epoch(h.get("LastModified"))}
            except ClientError as e:
                if not self._not_found(e):
                    raise
        prefix = key.rstrip("/") + "/" if key else ""
        page = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if page.get("KeyCount", 0) or not key:
            return {"type": "directory", "size": 0, "mtime": None}
        return None

    def walk(self, path):
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                if not obj["Key"].endswith("/"):
                    yield obj["Key"][len(prefix):], int(obj["Size"])

    def reader(self, path):
        from botocore.exceptions import ClientError
        bucket, key = self._split(path)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as e:
            if self._not_found(e):
                raise FileNotFoundError(f"s3://{path}") from None
            raise

    def write(self, path, source):
        from boto3.s3.transfer import TransferConfig
        bucket, key = self._split(path)
        self.client.upload_fileobj(source, bucket, key,
                                   Config=TransferConfig(multipart_chunksize=CHUNK, use_threads=False))

    def delete(self, path):
        bucket, key = self._split(path)
        self.client.delete_object(Bucket=bucket, Key=key)

    def delete_tree(self, path):
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def open_url(url: str) -> tuple[Files, str]:
    """``(files, path)`` for a full URL such as ``s3://bucket/a/b`` or ``file:///data/x``."""
    scheme = urlsplit(url).scheme
    if scheme in ("s3", "s3a"):
        parts = urlsplit(url)
        return S3Files(), parts.netloc + parts.path
    import fsspec
    fs, path = fsspec.core.url_to_fs(url)
    return FsspecFiles(fs), path


def join(base_url: str, path: str) -> str:
    """``base_url`` + a collection path (Globus style: ``/~/x`` and ``/x`` both mean ``x`` under
    the base). ``..`` is refused: a path cannot leave its collection."""
    p = path.strip()
    if p.startswith("/~/") or p == "/~":
        p = p[2:]
    elif p.startswith("~/"):
        p = p[1:]
    parts = [s for s in p.split("/") if s not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path {path!r}: '..' is not allowed (a path stays inside its collection)")
    trail = "/" if p.endswith("/") and parts else ""
    b = urlsplit(base_url)
    root = "/" + "/".join(s for s in b.path.split("/") if s)
    full = posixpath.join(root, *parts) if parts else root
    return f"{b.scheme}://{b.netloc}{full}{trail}"
