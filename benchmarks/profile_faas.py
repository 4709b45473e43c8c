"""Where the embedded default spends its CPU on a burst of no-op submits: per process (client,
daemon, pool, each worker), CPU time and context switches per task, and the client's and the
pool's by thread (the pool names its loops: faas-receiver, faas-outbox, faas-monitor; "python"
is the main loop); optionally a py-spy profile of each process.

    python benchmarks/profile_faas.py [--n 5000] [--rounds 2] [--py-spy OUT_PREFIX] [--cprofile OUT_PREFIX]

With ``--py-spy`` (``pip install py-spy``), each process is sampled while it holds the GIL
(``--gil``, so waiting is left out) and written as collapsed stacks to ``OUT_PREFIX.<role>.txt``,
then summarised (self and inclusive share per function). With ``--cprofile``, the pool process
runs each of its loops (main, receiver, outbox, monitor) under cProfile (``FAAS_POOL_CPROFILE``)
and the merged profile is printed as microseconds per task, by function. Uses a private FAAS_HOME and stops its
endpoint at the end.
"""
from __future__ import annotations

import argparse
import collections
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from _common import proc_cpu, settle_disk


def inc(x):
    return x + 1


def _stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, context switches of all its threads)."""
    got = proc_cpu(f"/proc/{pid}/stat")
    if got is None:
        return None
    cpu = got[1]
    try:
        ctx = 0
        for st in glob.glob(f"/proc/{pid}/task/*/status"):
            with open(st) as f:
                ctx += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        return cpu, ctx
    except OSError:
        return None


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` by its OS name (the pool names its loops
    faas-receiver, faas-outbox, ...; proctree.name_os_thread); threads of one name summed."""
    out: collections.Counter[str] = collections.Counter()
    for got in map(proc_cpu, glob.glob(f"/proc/{pid}/task/*/stat")):
        if got:
            out[got[0]] += got[1]
    return dict(out)


def _processes(home: str) -> dict[int, str]:
    """This process and the endpoint's (daemon, pool, forkserver, workers), by role."""
    cmd, parent = {}, {}
    for p in glob.glob("/proc/[0-9]*"):
        pid = int(p.rsplit("/", 1)[1])
        try:
            with open(f"{p}/cmdline", "rb") as f:
                cmd[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"{p}/stat") as f:
                parent[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    roles = {os.getpid(): "client"}
    for pid, c in cmd.items():
        if home in c and "faas.endpoint.daemon" in c:
            roles[pid] = "daemon"
        elif home in c and "faas.endpoint.pool" in c:
            roles[pid] = "pool"
    for _ in range(3):   # forkserver (child of the pool), workers (children of the forkserver)
        for pid, pp in parent.items():
            if pid not in roles and pp in roles and roles[pp] in ("pool", "forkserver"):
                roles[pid] = "forkserver" if roles[pp] == "pool" else "worker"
    n = 0
    for pid in sorted(roles):
        if roles[pid] == "worker":
            n += 1
            roles[pid] = f"worker{n}"
    return roles


def summarise(path: str, top: int = 15) -> str:
    total, own, incl = 0, collections.Counter(), collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            total += int(n)
            own[frames[-1]] += int(n)
            for fr in set(frames):
                incl[fr] += int(n)
    out = [f"  {total} samples holding the GIL; self:"]
    out += [f"    {100 * v / total:5.1f}% {k}" for k, v in own.most_common(top)]
    return "\n".join(out)


def pool_profile(prefix: str, tasks: int, top: int = 25) -> str:
    """The pool's loops' cProfile files merged: CPU microseconds per task by function (own time,
    and with what it calls), busiest first. The profiler's own overhead inflates every figure
    (about 2x for small functions): read them as shares, and the /proc figures as the totals."""
    import pstats
    deadline = time.monotonic() + 30   # the pool writes its files as it stops
    while len(glob.glob(f"{prefix}.*.prof")) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    files = sorted(glob.glob(f"{prefix}.*.prof"))
    if not files:
        return f"no pool profile under {prefix}.*.prof"
    st = pstats.Stats(*files)
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)   # by own time
    total = sum(v[2] for _, v in rows)
    out = [f"\npool, cProfile of its loops ({len(files)} files, {tasks} tasks): "
           f"{total / tasks * 1e6:.0f} us/task of own time under the profiler; by function:",
           f"  {'own us/task':>11} {'incl us/task':>12} {'calls/task':>10}  function"]
    for (file, line, fn), (_, nc, tt, ct, _) in rows[:top]:
        where = f"{os.path.basename(file)}:{line}({fn})" if line else fn
        out.append(f"  {tt / tasks * 1e6:11.1f} {ct / tasks * 1e6:12.1f} {nc / tasks:10.2f}  {where}")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--py-spy", dest="pyspy", metavar="OUT_PREFIX")
    p.add_argument("--cprofile", metavar="OUT_PREFIX",
                   help="cProfile the pool's loops; print microseconds per task by function")
    a = p.parse_args()
    home = tempfile.mkdtemp(prefix="faas-profile-")
    for k in [k for k in os.environ if k.startswith("FAAS_")]:
        del os.environ[k]
    os.environ["FAAS_HOME"] = home
    if a.cprofile:
        a.cprofile = os.path.abspath(a.cprofile)
        for old in glob.glob(f"{a.cprofile}.*.prof"):
            os.remove(old)
        os.environ["FAAS_POOL_CPROFILE"] = a.cprofile
    import faas
    from faas.endpoint import control
    spies = []
    try:
        with faas.Executor() as ex:
            ex.submit(inc, 0).result()
            time.sleep(1.0)
            roles = _processes(home)
            if a.pyspy:
                exe = shutil.which("py-spy") or "py-spy"
                for pid, role in roles.items():
                    if role in ("client", "pool", "worker1"):
                        spies.append(subprocess.Popen(
                            [exe, "record", "--pid", str(pid), "--gil", "--nonblocking", "--rate", "250",
                             "--format", "raw", "-o", f"{a.pyspy}.{role}.txt"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(1.5)
            for r in range(a.rounds):
                before = {pid: _stat(pid) for pid in roles}
                threads_before = {pid: _threads(pid) for pid, role in roles.items() if role in ("client", "pool")}
                t = time.perf_counter()
                fs = [ex.submit(inc, i) for i in range(a.n)]
                t_sub = time.perf_counter() - t
                assert sum(f.result() for f in fs) == a.n * (a.n + 1) // 2
                wall = time.perf_counter() - t
                print(f"round {r + 1}: {a.n} no-op submits, submit loop {t_sub:.2f} s, all results {wall:.2f} s "
                      f"({a.n / wall:,.0f}/s); load average {os.getloadavg()[0]:.2f}")
                total = 0.0
                for pid, role in sorted(roles.items(), key=lambda x: x[1]):
                    now, was = _stat(pid), before.get(pid)
                    if not now or not was:
                        continue
                    cpu, ctx = now[0] - was[0], now[1] - was[1]
                    total += cpu
                    print(f"  {role:10} {cpu:6.2f} s CPU = {cpu / a.n * 1e6:6.0f} us/task, "
                          f"{ctx / a.n:5.1f} context switches/task")
                    if pid in threads_before:   # which thread of it: us/task each
                        was_t = threads_before[pid]
                        per = {k: (v - was_t.get(k, 0.0)) / a.n * 1e6 for k, v in _threads(pid).items()}
                        shown = [f"{k} {v:.0f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.5]
                        if shown:
                            print("  " + " " * 10 + ", ".join(shown))
                print(f"  {'all':10} {total:6.2f} s CPU = {total / a.n * 1e6:6.0f} us/task: "
                      f"{total / wall:.2f} of {os.cpu_count()} cores busy")
    finally:
        for s in spies:
            s.send_signal(signal.SIGINT)
        for s in spies:
            s.wait(60)
        control.stop("local")
        shutil.rmtree(home, ignore_errors=True)
        settle_disk()   # the next run must not pay for this cleanup
    if a.cprofile:
        print(pool_profile(a.cprofile, 1 + a.rounds * a.n))
    if a.pyspy:
        for role in ("client", "pool", "worker1"):
            path = f"{a.pyspy}.{role}.txt"
            if os.path.exists(path):
                print(f"\n{role} ({path}):\n{summarise(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
