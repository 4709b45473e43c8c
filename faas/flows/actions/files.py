"""Files behind a URL, for the transfer and delete actions (and the example flows' functions).

``s3://`` goes through boto3 (the same credential chain and ``AWS_ENDPOINT_URL`` as faas's S3
store, its client and retry policy: faas/store/aws.py); every other URL (``file://``,
``memory://``, ``sftp://``, ``gs://`` with its package...) through fsspec. Both give the few
primitives a copy needs: ``info``, ``walk``, ``reader``, ``write`` (whole file, atomic for
readers), ``delete``, ``delete_tree``; and those of Globus's file operations: ``listdir``,
``mkdir``, ``rename``, ``set_mtime`` (where the file system can set one). ``local_path`` says
whether a URL is a POSIX path on this machine (what ``set_permission`` needs).

Local paths (``file://``) go through :class:`LocalFiles`, rooted at their collection: every
path is walked from the root with ``O_NOFOLLOW`` (openat), so a user who owns a folder in the
collection cannot steer the runner, which may have more rights, through a symlink swapped in
after a check.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_mod
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from urllib.parse import urlsplit

from faas import accounts

from ... import safe_open

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

    def listdir(self, path: str) -> list[dict]:
        """The entries of the folder ``path``: ``{name, type ("file"|"dir"), size, mtime,
        permissions, user, group, link_target}`` (None where the file system has no such thing).
        FileNotFoundError / NotADirectoryError as the OS gives them."""
        raise NotImplementedError

    def mkdir(self, path: str) -> None:
        """Make the folder ``path`` (and its parents); FileExistsError if something is there."""
        raise NotImplementedError

    def rename(self, old: str, new: str) -> None:
        """Move a file or folder within this file system; FileExistsError if ``new`` exists."""
        raise NotImplementedError

    def set_mtime(self, path: str, mtime: float) -> bool:
        """Set a file's modification time; False where the file system cannot (object stores)."""
        return False


def _epoch(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.timestamp()
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _entry_at(st: os.stat_result, name: str, target: str | None) -> dict:
    return {"name": name, "type": "dir" if stat_mod.S_ISDIR(st.st_mode) else "file",
            "size": st.st_size, "mtime": st.st_mtime,
            "permissions": f"{stat_mod.S_IMODE(st.st_mode):04o}",
            "user": accounts.user_name(st.st_uid), "group": accounts.group_name(st.st_gid), "link_target": target}


def _local_entry(dir_fd: int, name: str) -> dict:
    """A listing entry of ``name`` in the folder ``dir_fd``, from ``lstat``: a symlink is
    described as itself with ``link_target`` set, never by its target (which may be a file
    outside the collection that the caller may not even see)."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    target = os.readlink(name, dir_fd=dir_fd) if stat_mod.S_ISLNK(st.st_mode) else None
    return _entry_at(st, name, target)


class FsspecFiles(Files):
    """Any other fsspec file system (never a local one: :func:`open_url` gives those to
    :class:`LocalFiles`)."""

    def __init__(self, fs: Any) -> None:   # an fsspec AbstractFileSystem
        self.fs = fs

    def listdir(self, path: str) -> list[dict]:
        i = self.fs.info(path)
        if i.get("type") != "directory":
            raise NotADirectoryError(path)
        out = []
        for e in sorted(self.fs.ls(path, detail=True), key=lambda x: x["name"]):
            p = e["name"]
            out.append({"name": posixpath.basename(p.rstrip("/")),
                        "type": "dir" if e.get("type") == "directory" else "file",
                        "size": int(e.get("size") or 0),
                        "mtime": _epoch(e.get("mtime") or e.get("created") or e.get("LastModified")),
                        "permissions": None, "user": None, "group": None, "link_target": None})
        return out

    def mkdir(self, path: str) -> None:
        if self.fs.exists(path):
            raise FileExistsError(f"{path} already exists")
        self.fs.makedirs(path, exist_ok=False)

    def rename(self, old: str, new: str) -> None:
        if not self.fs.exists(old):
            raise FileNotFoundError(f"{old} does not exist")
        if self.fs.exists(new):
            raise FileExistsError(f"{new} already exists")
        self.fs.mv(old, new, recursive=True)

    def info(self, path: str) -> dict | None:
        try:
            i = self.fs.info(path)
        except FileNotFoundError:
            return None
        kind = "directory" if i.get("type") == "directory" else "file"
        return {"type": kind, "size": int(i.get("size") or 0),
                "mtime": _epoch(i.get("mtime") or i.get("created") or i.get("LastModified"))}

    def walk(self, path: str) -> Iterator[tuple[str, int]]:
        base = path.rstrip("/")
        for p, i in sorted(self.fs.find(base, detail=True).items()):
            if i.get("type") == "file":
                yield posixpath.relpath(self.fs._strip_protocol(p), base), int(i.get("size") or 0)

    def reader(self, path: str) -> IO[bytes]:
        return self.fs.open(path, "rb")

    def write(self, path: str, source: IO[bytes]) -> None:
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

    def delete(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def delete_tree(self, path: str) -> None:
        try:
            self.fs.rm(path.rstrip("/"), recursive=True)
        except FileNotFoundError:
            pass


_NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LISTABLE = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _norm_local(path: str) -> str:
    return "/" + "/".join(s for s in path.split("/") if s)


class LocalFiles(Files):
    """A ``file://`` collection, every path reached from its root (configured, trusted) one
    component at a time with ``O_NOFOLLOW`` (openat): the runner may have more rights than the
    users who own folders in the collection, so a folder swapped for a symlink between a check and
    a use is refused, never followed. Symlinks are never followed at all (walks skip them, a read
    of one is refused, a write or delete replaces the link itself)."""

    local = True

    def __init__(self, root: str) -> None:
        self.root = _norm_local(root)

    def _parts(self, path: str) -> list[str]:
        p, r = _norm_local(path), self.root
        if p == r:
            return []
        prefix = r.rstrip("/") + "/"
        if not p.startswith(prefix):
            raise PermissionError(errno.EACCES, f"{path} is outside the collection {r}")
        parts = p[len(prefix):].split("/")
        if any(s in (".", "..") for s in parts):
            raise PermissionError(errno.EACCES, f"{path}: '.' and '..' are not allowed")
        return parts

    def _dir(self, parts: list[str], path: str, create: bool = False, listable: bool = False) -> int:
        """A descriptor of the folder ``root/parts...``, never through a symlink."""
        if create:
            os.makedirs(self.root, exist_ok=True)   # the configured root: trusted, as before
        try:
            return safe_open.open_dir(self.root, parts, create, 0o777, trust_uid=None,
                                      listable=listable)
        except safe_open.NotRegular:
            raise PermissionError(errno.EACCES, f"{path}: a folder on its way is a symbolic link "
                                                f"(never followed)") from None

    def _parent(self, path: str, create: bool = False) -> tuple[int, str]:
        parts = self._parts(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, f"{path} is the collection's root")
        return self._dir(parts[:-1], path, create), parts[-1]

    def _lstat(self, path: str) -> os.stat_result:
        parts = self._parts(path)
        if not parts:
            return os.stat(self.root)
        fd, name = self._parent(path)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def info(self, path: str) -> dict | None:
        try:
            st = self._lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = ("directory" if stat_mod.S_ISDIR(st.st_mode) else
                "file" if stat_mod.S_ISREG(st.st_mode) else
                "symlink" if stat_mod.S_ISLNK(st.st_mode) else "other")
        return {"type": kind, "size": st.st_size, "mtime": st.st_mtime}

    def entry(self, path: str) -> dict:
        """``path``'s listing entry (as :meth:`listdir` gives them)."""
        parts = self._parts(path)
        if not parts:
            return _entry_at(os.stat(self.root), posixpath.basename(self.root) or "/", None)
        fd, name = self._parent(path)
        try:
            return _local_entry(fd, name)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[dict]:
        fd = self._dir(self._parts(path), path, listable=True)
        try:
            names = sorted(os.listdir(fd))
            return [_local_entry(fd, n) for n in names]
        finally:
            os.close(fd)

    def walk(self, path: str) -> Iterator[tuple[str, int]]:
        out: list[tuple[str, int]] = []

        def visit(fd: int, rel: str) -> None:
            with os.scandir(fd) as it:
                entries = list(it)
            for e in entries:
                r = f"{rel}{e.name}"
                if e.is_dir(follow_symlinks=False):
                    try:
                        sub = os.open(e.name, _LISTABLE, dir_fd=fd)
                    except OSError:   # swapped for a link meanwhile: not followed
                        continue
                    try:
                        visit(sub, r + "/")
                    finally:
                        os.close(sub)
                elif e.is_file(follow_symlinks=False):
                    out.append((r, e.stat(follow_symlinks=False).st_size))
        top = self._dir(self._parts(path), path, listable=True)
        try:
            visit(top, "")
        finally:
            os.close(top)
        yield from sorted(out)

    def reader(self, path: str) -> IO[bytes]:
        fd, name = self._parent(path)
        try:
            f = os.open(name, _NOFOLLOW_READ, dir_fd=fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PermissionError(errno.EACCES, f"{path} is a symbolic link (never followed)") from None
            raise
        finally:
            os.close(fd)
        if not stat_mod.S_ISREG(os.fstat(f).st_mode):
            os.close(f)
            raise PermissionError(errno.EACCES, f"{path} is not a regular file")
        return os.fdopen(f, "rb")

    def write(self, path: str, source: IO[bytes]) -> None:
        fd, name = self._parent(path, create=True)
        tmp = f".{name}.{uuid.uuid4().hex[:8]}.part"
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o666, dir_fd=fd)
            try:
                with os.fdopen(out, "wb") as f:
                    while chunk := source.read(CHUNK):
                        f.write(chunk)
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)   # replaces a link, never follows
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=fd)
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)

    def delete(self, path: str) -> None:
        try:
            fd, name = self._parent(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)

    def delete_tree(self, path: str) -> None:
        parts = self._parts(path)
        try:
            fd = self._dir(parts[:-1], path) if parts else None
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            if fd is None:                 # the collection's root: its contents
                top = os.open(self.root, _LISTABLE & ~os.O_NOFOLLOW)
                try:
                    _empty_tree(top)
                finally:
                    os.close(top)
            else:
                _remove_tree(fd, parts[-1])
        finally:
            if fd is not None:
                os.close(fd)

    def mkdir(self, path: str) -> None:
        parts = self._parts(path)
        if not parts:
            raise FileExistsError(errno.EEXIST, f"{path} already exists")
        fd = self._dir(parts[:-1], path, create=True)
        try:
            os.mkdir(parts[-1], 0o777, dir_fd=fd)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, f"{path} already exists") from None
        finally:
            os.close(fd)

    def rename(self, old: str, new: str) -> None:
        ofd, oname = self._parent(old)
        try:
            nfd, nname = self._parent(new)
            try:
                os.stat(oname, dir_fd=ofd, follow_symlinks=False)   # FileNotFoundError
                try:
                    os.stat(nname, dir_fd=nfd, follow_symlinks=False)
                except FileNotFoundError:
                    pass
                else:
                    raise FileExistsError(errno.EEXIST, f"{new} already exists")
                os.rename(oname, nname, src_dir_fd=ofd, dst_dir_fd=nfd)
            finally:
                os.close(nfd)
        finally:
            os.close(ofd)

    def set_mtime(self, path: str, mtime: float) -> bool:
        fd, name = self._parent(path)
        try:
            os.utime(name, (mtime, mtime), dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)
        return True


def _remove_tree(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` and all below it, never through a symlink (a link is
    removed itself)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat_mod.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _LISTABLE, dir_fd=dir_fd)
    try:
        if not os.path.samestat(st, os.fstat(fd)):
            raise PermissionError(errno.EACCES, f"{name} changed while it was being removed")
        _empty_tree(fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _empty_tree(fd: int) -> None:
    for n in os.listdir(fd):
        _remove_tree(fd, n)


class S3Files(Files):
    """S3 through faas's one AWS module: a client with botocore's retries off and the S3 store's
    retry policy (tenacity) around every call, so S3 has one retry policy."""

    def __init__(self) -> None:
        from ...store import aws
        self.client = aws.client("s3", connect_timeout=5, read_timeout=60, max_pool_connections=16)

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` retried as the S3 store retries its calls (same numbers)."""
        from ...store import aws
        from ...store.s3 import S3Store as S
        return aws.retrying(attempts=S.retry_attempts, deadline=S.retry_deadline,
                            connect_attempts=S.connect_attempts, wait=S.retry_wait,
                            wait_max=S.retry_wait_max)(fn, *args, **kwargs)

    def _pages(self, **kwargs: Any) -> Iterator[dict]:
        """list_objects_v2 page by page, each page retried on its own (what its paginator does,
        without restarting the listing when one page is throttled)."""
        while True:
            page = self._call(self.client.list_objects_v2, **kwargs)
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def _not_found(self, e) -> bool:
        from ...store import aws
        return aws.code(e) in aws.NOT_FOUND

    def info(self, path: str) -> dict | None:
        from botocore.exceptions import ClientError
        bucket, key = self._split(path)
        if key and not key.endswith("/"):
            try:
                h = self._call(self.client.head_object, Bucket=bucket, Key=key)
                return {"type": "file", "size": int(h["ContentLength"]),
                        "mtime": _epoch(h.get("LastModified"))}
            except ClientError as e:
                if not self._not_found(e):
                    raise
        prefix = key.rstrip("/") + "/" if key else ""
        page = self._call(self.client.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if page.get("KeyCount", 0) or not key:
            return {"type": "directory", "size": 0, "mtime": None}
        return None

    def walk(self, path: str) -> Iterator[tuple[str, int]]:
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        for page in self._pages(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                if not obj["Key"].endswith("/"):
                    yield obj["Key"][len(prefix):], int(obj["Size"])

    def reader(self, path: str) -> IO[bytes]:
        from botocore.exceptions import ClientError
        bucket, key = self._split(path)
        try:
            return self._call(self.client.get_object, Bucket=bucket, Key=key)["Body"]
        except ClientError as e:
            if self._not_found(e):
                raise FileNotFoundError(f"s3://{path}") from None
            raise

    def write(self, path: str, source: IO[bytes]) -> None:
        """One PUT, or a multipart upload in CHUNK-sized parts (as boto3's transfer manager does
        with use_threads=False); each part is in memory, so each is retried on its own."""
        bucket, key = self._split(path)
        chunk = _read_full(source, CHUNK)
        if len(chunk) < CHUNK:
            self._call(self.client.put_object, Bucket=bucket, Key=key, Body=chunk)
            return
        upload = self._call(self.client.create_multipart_upload, Bucket=bucket, Key=key,
                            ChecksumAlgorithm="CRC32")["UploadId"]
        try:
            parts: list[dict] = []
            while chunk:
                done = self._call(self.client.upload_part, Bucket=bucket, Key=key, UploadId=upload,
                                  PartNumber=len(parts) + 1, Body=chunk, ChecksumAlgorithm="CRC32")
                part = {"PartNumber": len(parts) + 1, "ETag": done["ETag"]}
                if done.get("ChecksumCRC32"):
                    part["ChecksumCRC32"] = done["ChecksumCRC32"]
                parts.append(part)
                chunk = _read_full(source, CHUNK)
            self._call(self.client.complete_multipart_upload, Bucket=bucket, Key=key,
                       UploadId=upload, MultipartUpload={"Parts": parts})
        except BaseException:
            try:   # leave no billed parts behind; the original error is what matters
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            except Exception:  # noqa: BLE001 - best effort; the upload's own error is raised
                pass
            raise

    def delete(self, path: str) -> None:
        bucket, key = self._split(path)
        self._call(self.client.delete_object, Bucket=bucket, Key=key)

    def delete_tree(self, path: str) -> None:
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        for page in self._pages(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                self._call(self.client.delete_objects, Bucket=bucket,
                           Delete={"Objects": keys, "Quiet": True})

    def listdir(self, path: str) -> list[dict]:
        info = self.info(path)
        if info is None:
            raise FileNotFoundError(f"s3://{path}")
        if info["type"] != "directory":
            raise NotADirectoryError(f"s3://{path}")
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        out = []
        for page in self._pages(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", ()):
                out.append({"name": cp["Prefix"][len(prefix):].rstrip("/"), "type": "dir", "size": 0,
                            "mtime": None, "permissions": None, "user": None, "group": None,
                            "link_target": None})
            for o in page.get("Contents", ()):
                if o["Key"] == prefix:        # a folder's own marker (mkdir)
                    continue
                out.append({"name": o["Key"][len(prefix):], "type": "file", "size": int(o["Size"]),
                            "mtime": _epoch(o.get("LastModified")), "permissions": None,
                            "user": None, "group": None, "link_target": None})
        return sorted(out, key=lambda e: e["name"])

    def mkdir(self, path: str) -> None:
        """An object store has no folders: a zero-byte ``prefix/`` marker makes one visible."""
        if self.info(path) is not None and self._split(path)[1].strip("/"):
            raise FileExistsError(f"s3://{path} already exists")
        bucket, key = self._split(path)
        self._call(self.client.put_object, Bucket=bucket, Key=key.rstrip("/") + "/", Body=b"")

    def rename(self, old: str, new: str) -> None:
        """Copy then delete, object by object (S3 has no rename)."""
        src = self.info(old)
        if src is None:
            raise FileNotFoundError(f"s3://{old} does not exist")
        if self.info(new) is not None:
            raise FileExistsError(f"s3://{new} already exists")
        ob, ok = self._split(old)
        nb, nk = self._split(new)
        if src["type"] == "file":
            pairs = [(ok, nk)]
        else:
            op, np_ = ok.rstrip("/") + "/", nk.rstrip("/") + "/"
            pairs = [(o["Key"], np_ + o["Key"][len(op):])
                     for page in self._pages(Bucket=ob, Prefix=op)
                     for o in page.get("Contents", ())]
        for a, b in pairs:   # a managed copy starts over from the source: safe to retry whole
            self._call(self.client.copy, {"Bucket": ob, "Key": a}, nb, b)
        for a, _ in pairs:
            self._call(self.client.delete_object, Bucket=ob, Key=a)


def _read_full(source: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end (a stream's read may return less)."""
    parts, have = [], 0
    while have < n:
        b = source.read(n - have)
        if not b:
            break
        parts.append(b)
        have += len(b)
    return b"".join(parts)


def open_url(url: str, root: str | None = None) -> tuple[Files, str]:
    """``(files, path)`` for a full URL such as ``s3://bucket/a/b`` or ``file:///data/x``.
    ``root``: the collection's base URL; a local path is then reached from it without following
    a symlink on the way (:class:`LocalFiles`); without one, from ``/``."""
    scheme = urlsplit(url).scheme
    if scheme in ("s3", "s3a"):
        parts = urlsplit(url)
        return S3Files(), parts.netloc + parts.path
    lp = _raw_local(url)
    if lp is not None:
        base = _raw_local(root) if root is not None else None
        return LocalFiles(base if base is not None else "/"), lp
    import fsspec
    from fsspec.implementations.local import LocalFileSystem
    fs, path = fsspec.core.url_to_fs(url)
    if isinstance(fs, LocalFileSystem):   # file://host/..., whatever else fsspec reads as local
        return LocalFiles("/"), path
    return FsspecFiles(fs), path


def _raw_local(url: str) -> str | None:
    """The path of a local URL as fsspec reads it (not unquoted), None for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file", "local") and parts.netloc in ("", "localhost"):
        return parts.path or "/"
    return None


def local_path(url: str) -> str | None:
    """The POSIX path of a ``file://`` URL (or a bare path), None for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file") and parts.netloc in ("", "localhost"):
        from urllib.parse import unquote
        return unquote(parts.path) or "/"
    return None


def inside(base_url: str, url: str) -> bool:
    """Whether a ``file://`` URL, its symlinks resolved, is still within the collection
    ``base_url`` (its own symlinks resolved too); True for other schemes (no symlinks there)."""
    lp, root = local_path(url), local_path(base_url)
    if lp is None or root is None:
        return True
    real, root_real = os.path.realpath(lp), os.path.realpath(root)
    return real == root_real or real.startswith(root_real.rstrip("/") + "/")


def join(base_url: str, path: str) -> str:
    """``base_url`` + a collection path (Globus style: ``/~/x`` and ``/x`` both mean ``x`` under
    the base). ``..`` is refused, and so is a path that leaves the collection through a symlink:
    a path cannot leave its collection."""
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
    url = f"{b.scheme}://{b.netloc}{full}{trail}"
    if not inside(base_url, url):
        raise ValueError(f"path {path!r}: leaves its collection through a symbolic link")
    return url
