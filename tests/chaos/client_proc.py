"""A client in a process of its own, for the local-queue chaos test (which kill -9s it).

It sends the inputs not yet recorded in --ids in small batches (``submit_batch``), appends
``i gen task_id`` for each task of a batch once the batch was sent, writes --submitted when all
are sent, then waits for its own results (``get_result``), appending ``i gen ok|WRONG`` to --got.
A task id is recorded only after its message was sent, so a kill between the two leaves a task
that ran but that no one knows the id of; the next client sends its input again (new ``gen``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chaoslib  # noqa: E402

import faas  # noqa: E402


def recorded(path: str) -> dict[int, list[tuple[int, str]]]:
    out: dict[int, list[tuple[int, str]]] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and line.endswith("\n"):   # a torn last line is not a record
                    out.setdefault(int(parts[0]), []).append((int(parts[1]), parts[2]))
    except FileNotFoundError:
        pass
    return out


def append(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--gen", type=int, required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--got", required=True)
    p.add_argument("--submitted", required=True)
    p.add_argument("--exec-log", required=True)
    p.add_argument("--max-ms", type=int, default=20)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--pause", type=float, default=0.05)
    a = p.parse_args(argv)
    have = recorded(a.ids)
    todo = [i for i in range(a.n) if i not in have]
    c = faas.client(store=a.store, endpoint=a.endpoint)
    fid = c.register_function(chaoslib.task)
    mine = []
    for k in range(0, len(todo), a.batch):
        chunk = todo[k:k + a.batch]
        ids = c.submit_batch(endpoint=a.endpoint, tasks=[
            {"function_id": fid, "args": [i, a.gen, a.exec_log, a.max_ms]} for i in chunk])
        append(a.ids, "".join(f"{i} {a.gen} {t}\n" for i, t in zip(chunk, ids, strict=True)))
        mine += zip(chunk, ids, strict=True)
        time.sleep(a.pause)
    append(a.submitted, f"{a.gen} {len(mine)}\n")
    for i, t in mine:
        value = c.get_result(task_id=t, timeout=200)
        append(a.got, f"{i} {a.gen} {'ok' if value == chaoslib.expected(i) else 'WRONG'}\n")
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
