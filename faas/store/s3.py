"""An S3 store, ``s3://bucket/optional/prefix``, on boto3 directly.

boto3 resolves the endpoint (``AWS_ENDPOINT_URL``, so moto's server, MinIO or Ceph work like AWS),
the region and the credentials by its usual chain; nothing here stores them.

Retries are ours, not botocore's, so their bound is clear: throttling (SlowDown, 503, 429), other
5xx replies and dropped connections are retried with exponential backoff and full jitter, at most
:attr:`S3Store.retry_attempts` times within :attr:`S3Store.retry_deadline` seconds. An endpoint
that cannot be reached at all is tried :attr:`S3Store.connect_attempts` times with a 5 s connect
timeout, so a wrong URL fails in seconds with an error naming it.

A single PUT replaces an object whole, so ``put`` is atomic for readers.
"""
from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from ..exceptions import ConfigError, CredentialsError, StoreError
from . import aws
from .aws import NO_CREDENTIALS, is_transient
from .base import KeyNotFound, Store
from .file import check_key, check_prefix

__all__ = ["NO_CREDENTIALS", "S3Store", "is_transient"]   # is_transient: from aws, as before


class S3Store(Store):
    connect_timeout = 5.0       # seconds to open a connection
    read_timeout = 60.0         # seconds without a byte before a request is abandoned (and retried)
    retry_attempts = 6          # tries in all for throttling, 5xx and dropped connections
    retry_deadline = 30.0       # ... and never retry past this many seconds
    retry_wait = 0.1            # backoff: random in [0, retry_wait * 2**n], capped at retry_wait_max
    retry_wait_max = 5.0
    connect_attempts = 2        # tries in all when the endpoint cannot be reached at all
    max_pool_connections = 64   # one client serves many threads

    def __init__(self, url: str, *, endpoint_url: str | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("s3", "s3a") or not parts.netloc:
            raise ConfigError(f"S3 store URL {url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX")
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        if prefix:
            check_prefix(prefix)
        self.prefix = prefix + "/" if prefix else ""
        self.url = f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"
        self._endpoint_arg = endpoint_url
        self.client = aws.client("s3", endpoint_url=endpoint_url,
                                 connect_timeout=self.connect_timeout,
                                 read_timeout=self.read_timeout,
                                 max_pool_connections=self.max_pool_connections)
        self.endpoint_url = self.client.meta.endpoint_url
        self._bucket_checked = False

    # -- calling S3 ------------------------------------------------------------------------------

    def _call(self, action: str, key: str | None, fn, **kwargs):
        retrying = aws.retrying(attempts=self.retry_attempts, deadline=self.retry_deadline,
                                connect_attempts=self.connect_attempts, wait=self.retry_wait,
                                wait_max=self.retry_wait_max)
        try:
            return retrying(fn, **kwargs)
        except ClientError as exc:
            raise self._client_error(action, key, exc) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise CredentialsError(NO_CREDENTIALS) from exc
        except aws.UNREACHABLE as exc:
            raise StoreError(
                f"cannot reach the S3 endpoint {self.endpoint_url} for store {self.url} ({exc}): "
                "check AWS_ENDPOINT_URL (or the endpoint_url setting) and the network") from exc
        except BotoCoreError as exc:
            raise StoreError(
                f"S3 store {self.url}: {action} {self._where(key)} failed after retries: {exc} "
                f"(endpoint {self.endpoint_url})") from exc

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key or ''}"

    def _no_bucket(self) -> StoreError:
        return StoreError(
            f"S3 bucket {self.bucket!r} does not exist (store {self.url}, endpoint "
            f"{self.endpoint_url}): create it (terraform apply in infra/terraform/, or "
            f"`aws s3 mb s3://{self.bucket}`) or fix the store URL")

    def _client_error(self, action: str, key: str | None, exc: ClientError) -> Exception:
        code = aws.code(exc)
        if code == "NoSuchBucket":
            return self._no_bucket()
        kind = aws.classify(exc)
        if kind == "credentials":
            return CredentialsError(
                f"AWS refused the credentials ({code}) for {self._where(key)}: check AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and that they are for this endpoint "
                f"({self.endpoint_url})")
        if kind == "denied":
            return StoreError(
                f"access denied to {self._where(key)} ({action}, bucket {self.bucket!r}): "
                "the AWS identity in use lacks permission; check its IAM policy and the bucket "
                "policy (s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket)")
        return StoreError(f"S3 store {self.url}: {action} {self._where(key)} failed: {code}: "
                          f"{exc.response.get('Error', {}).get('Message', exc)} "
                          f"(endpoint {self.endpoint_url})")

    def _check_bucket(self) -> None:
        """After a bare 404 (HEAD has no body to say why): is it the key or the whole bucket?"""
        if self._bucket_checked:
            return
        try:
            self._call("check bucket", None, self.client.head_bucket, Bucket=self.bucket)
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (aws.code(cause) in aws.NOT_FOUND
                                                   or aws.code(cause) == "NoSuchBucket"):
                raise self._no_bucket() from cause
            raise
        self._bucket_checked = True

    # -- the Store interface ---------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        k = self.prefix + check_key(key)
        self._call("put", key, self.client.put_object, Bucket=self.bucket, Key=k, Body=bytes(data))

    def _get(self, Key: str, limit: int | None = None, **kw) -> bytes:
        # Read the body inside the retried call: a connection dropped mid-body retries the GET.
        body = self.client.get_object(Bucket=self.bucket, Key=Key, **kw)["Body"]
        try:
            # ``limit``: never more than that from the socket, even from a server that ignores
            # the Range header and sends the whole object (closing drops the rest unread)
            return body.read() if limit is None else body.read(limit)
        finally:
            body.close()

    def get(self, key: str) -> bytes:
        return self._read(key)

    def get_head(self, key: str, nbytes: int) -> bytes:
        if nbytes <= 0:   # a Range cannot ask for nothing; the key must still exist
            if not self.exists(key):
                raise KeyNotFound(key)
            return b""
        return self._read(key, limit=nbytes, Range=f"bytes=0-{nbytes - 1}")

    def _read(self, key: str, **kw) -> bytes:
        k = self.prefix + check_key(key)
        try:
            return self._call("get", key, self._get, Key=k, **kw)
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and aws.code(cause) == "NoSuchKey":
                raise KeyNotFound(key) from None
            if isinstance(cause, ClientError) and aws.code(cause) == "InvalidRange" and "Range" in kw:
                return b""   # a ranged read of an empty object (S3 answers 416)
            raise

    def exists(self, key: str) -> bool:
        k = self.prefix + check_key(key)
        try:
            self._call("check", key, self.client.head_object, Bucket=self.bucket, Key=k)
            return True
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (aws.code(cause) in aws.NOT_FOUND
                                                   or aws.status(cause) == 404):
                self._check_bucket()
                return False
            raise

    def delete(self, key: str) -> None:
        k = self.prefix + check_key(key)
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=k)

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        return self._list(self.prefix + prefix)

    def _list(self, full_prefix: str) -> Iterator[str]:
        # list_objects_v2 page by page (what its paginator does), each page retried on its own,
        # so a throttled page does not restart the listing.
        n = len(self.prefix)
        kwargs = {"Bucket": self.bucket, "Prefix": full_prefix}
        while True:
            page = self._call("list", full_prefix[n:] + "*", self.client.list_objects_v2, **kwargs)
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                if not key.endswith("/"):  # skip "folder" markers made by consoles
                    yield key[n:]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def __reduce__(self) -> tuple:
        return (_reopen, (self.url, self._endpoint_arg))


def _reopen(url: str, endpoint_url: str | None) -> S3Store:
    return S3Store(url, endpoint_url=endpoint_url)
