"""POSIX ACLs on a collection's own files, for the set_permission action: a named local user or
group gets read ("r") or read/write ("rw") on a file or a folder (recursively, with default ACLs
so new files inherit it).

The runner may be root, and the collection is shared ground: its users can create files,
symlinks and hard links in it. So nothing here follows a path someone could have shaped:

* the target is reached one component at a time from the collection's root with
  ``O_PATH | O_NOFOLLOW`` (``openat``): a symlink anywhere on the way, or as the target, ``..``,
  or another file system (a mount point) is refused;
* ``setfacl`` is then given ``/proc/self/fd/N`` (the already opened file, passed to it), never a
  path it would resolve again, so swapping a folder for a symlink after the check changes
  nothing;
* a folder is walked here (not by ``setfacl -R``), with the same rules: symlinks, files with
  more than one hard link (one could be ``/etc/shadow``'s), devices, FIFOs and sockets and other
  file systems are skipped, and reported;
* principals are passed to ``setfacl`` as numeric ids, so no name is parsed by it.

Traverse (``x``) is added on each folder from the collection's root down to the target, for a
principal that has no entry there yet, so the grant is usable. Revoking removes the target's
entries (access and default); the traverse entries stay (another grant may need them).
"""
from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass, field

BATCH = 200       # files per setfacl call (each is one passed descriptor)
PERMISSIONS = {"r": "rX", "rw": "rwX"}


class UnsafePath(PermissionError):
    """The path leaves the collection, or goes through a symlink or onto another file system."""


@dataclass
class Result:
    files: int = 0                 # files and folders whose ACL was changed
    skipped: list = field(default_factory=list)   # [{"path", "reason"}] left untouched


def _components(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"path {rel!r}: '..' is not allowed (a path stays inside its collection)")
    return parts


def _open_chain(root: str, rel: str) -> tuple[list[int], int, os.stat_result]:
    """``(folder fds from the root down to the target's parent, the target's fd, its stat)``,
    every component opened with O_NOFOLLOW relative to the one before."""
    parts = _components(rel)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    chain, fd = [root_fd], root_fd
    dev = os.fstat(root_fd).st_dev
    try:
        for i, name in enumerate(parts):
            where = "/".join(parts[:i + 1])
            nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            st = os.fstat(nfd)
            if stat.S_ISLNK(st.st_mode):
                os.close(nfd)
                raise UnsafePath(f"{where} is a symbolic link: set_permission never follows one")
            if st.st_dev != dev:
                os.close(nfd)
                raise UnsafePath(f"{where} is on another file system than the collection")
            if i < len(parts) - 1:
                if not stat.S_ISDIR(st.st_mode):
                    os.close(nfd)
                    raise NotADirectoryError(f"{where} is not a folder")
                chain.append(nfd)
            fd = nfd
        if not parts:
            return chain[:-1], root_fd, os.fstat(root_fd)
        return chain, fd, os.fstat(fd)
    except BaseException:
        for c in chain:
            os.close(c)
        if fd not in chain:
            try:
                os.close(fd)
            except OSError:
                pass
        raise


def _setfacl(args: list[str], fds: list[int]) -> None:
    if not fds:
        return
    p = subprocess.run(["setfacl", *args, *[f"/proc/self/fd/{fd}" for fd in fds]],
                       pass_fds=tuple(fds), capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise OSError(f"setfacl {' '.join(args)} failed: {p.stderr.strip() or p.returncode}")


def _has_entry(fd: int, tag: str, ident: int, name: str) -> bool:
    p = subprocess.run(["getfacl", "-c", "-n", f"/proc/self/fd/{fd}"], pass_fds=(fd,),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise OSError(f"getfacl failed on {name}: {p.stderr.strip()}")
    word = "user" if tag == "u" else "group"
    return any(line.startswith(f"{word}:{ident}:") for line in p.stdout.splitlines())


def _walk(top_fd: int, top: str, dev: int, result: Result):
    """Yield ``(fd, is_dir)`` of every folder and file under the folder ``top_fd`` that may be
    touched; the caller closes the fds."""
    try:
        dir_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=top_fd)
    except OSError as e:
        result.skipped.append({"path": top, "reason": f"cannot open: {e.strerror}"})
        return
    try:
        with os.scandir(dir_fd) as it:
            names = sorted(e.name for e in it)
        for name in names:
            where = f"{top}/{name}" if top else name
            try:
                fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as e:
                result.skipped.append({"path": where, "reason": f"cannot open: {e.strerror}"})
                continue
            st = os.fstat(fd)
            reason = None
            if stat.S_ISLNK(st.st_mode):
                reason = "a symbolic link (never followed)"
            elif st.st_dev != dev:
                reason = "on another file system"
            elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                reason = f"a file with {st.st_nlink} hard links (one may be outside the collection)"
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                reason = "not a regular file or folder"
            if reason:
                os.close(fd)
                result.skipped.append({"path": where, "reason": reason})
                continue
            if stat.S_ISDIR(st.st_mode):
                yield fd, True
                yield from _walk(fd, where, dev, result)
            else:
                yield fd, False
    finally:
        os.close(dir_fd)


def _apply(root: str, rel: str, file_args, dir_args, ancestors_tag=None) -> Result:
    result = Result()
    chain, fd, st = _open_chain(root, rel)
    try:
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise UnsafePath(f"{rel} has {st.st_nlink} hard links: one may be a file outside the "
                             f"collection, so its permissions are not changed")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise UnsafePath(f"{rel} is not a regular file or folder")
        if ancestors_tag is not None:
            tag, ident = ancestors_tag
            need = [c for c in chain if not _has_entry(c, tag, ident, rel)]
            _setfacl(["-m", f"{tag}:{ident}:x"], need)
        if stat.S_ISDIR(st.st_mode):
            _setfacl(dir_args, [fd])
            result.files += 1
            batch: dict[bool, list[int]] = {True: [], False: []}
            try:
                for cfd, is_dir in _walk(fd, rel.strip("/"), st.st_dev, result):
                    batch[is_dir].append(cfd)
                    if len(batch[is_dir]) >= BATCH:
                        _setfacl(dir_args if is_dir else file_args, batch[is_dir])
                        result.files += len(batch[is_dir])
                        for c in batch[is_dir]:
                            os.close(c)
                        batch[is_dir] = []
                for is_dir, fds in batch.items():
                    _setfacl(dir_args if is_dir else file_args, fds)
                    result.files += len(fds)
            finally:
                for fds in batch.values():
                    for c in fds:
                        os.close(c)
        else:
            _setfacl(file_args, [fd])
            result.files += 1
    finally:
        for c in {*chain, fd}:
            os.close(c)
    return result


def grant(root: str, rel: str, tag: str, ident: int, permissions: str) -> Result:
    """Give user (``tag`` "u") or group ("g") ``ident`` ``permissions`` ("r" or "rw") on
    ``rel`` inside the collection folder ``root`` (recursively for a folder, with defaults)."""
    if tag not in ("u", "g"):
        raise ValueError(f"tag {tag!r}: expected 'u' or 'g'")
    perm = PERMISSIONS[permissions]
    entry = f"{tag}:{int(ident)}:{perm}"
    return _apply(os.path.realpath(root), rel, ["-m", entry], ["-m", f"{entry},d:{entry}"],
                  ancestors_tag=(tag, int(ident)))


def revoke(root: str, rel: str, tag: str, ident: int) -> Result:
    """Remove the entries of ``ident`` (access and default) on ``rel`` and below."""
    if tag not in ("u", "g"):
        raise ValueError(f"tag {tag!r}: expected 'u' or 'g'")
    entry = f"{tag}:{int(ident)}"
    return _apply(os.path.realpath(root), rel, ["-x", entry], ["-x", f"{entry},d:{entry}"])
