"""Every system on the same workloads, one after the other, and one table with the ratios to
ProcessPoolExecutor(2) and the targets of the embedded default.

    python benchmarks/run_all.py                      # everything (about 7 minutes on 2 cores)
    python benchmarks/run_all.py --quick --only faas,ppe   # small sizes, 1 repeat: < 60 s (CI smoke)
    python benchmarks/run_all.py --only lithops --lithops-full   # Lithops at full size (hours)

Each system runs in its own process (bench_<name>.py), one at a time, so one system's processes
do not slow another's. Lithops and Parsl run in their own virtual environments under
``--venvs`` (default ~/.cache/faas-bench/venvs/{lithops,parsl}), made on first use with
``pip install`` of the pinned versions below and reused after. Results (JSON per system, each
runner's own table, the combined table) go to ``--out-dir`` (default: a new temporary folder).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as c  # noqa: E402

SYSTEMS = ("ppe", "faas", "parsl", "lithops")
#: what each venv gets; the versions the tables in BENCHMARKS.md were measured with
SPECS = {"lithops": "lithops==3.8.0", "parsl": "parsl==2026.10.26"}
BASE = "ProcessPoolExecutor(2)"

#: rows of the combined table, in order (a runner's other keys follow)
ROWS = ["cold first result (s)", "cold first result, endpoint up (s)", "cold import (s)",
        "warm p50 (ms)", "warm p95 (ms)", "warm p99 (ms)"]


def ensure_venv(root: Path, name: str, spec: str) -> Path:
    """A virtual environment with ``spec`` installed; made once, reused while the version matches."""
    d = root / name
    py = d / "bin" / "python"
    pkg, _, want = spec.partition("==")
    if py.exists():
        got = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({pkg!r}))"],
                             capture_output=True, text=True)
        if got.returncode == 0 and (not want or got.stdout.strip() == want):
            return py
    c.log(f"making {d} with {spec} (once) ...")
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", spec], check=True)
    return py


def python_for(name: str, args) -> str:
    if name in SPECS:
        return str(ensure_venv(Path(args.venvs).expanduser(), name, SPECS[name] if not args.latest
                               else SPECS[name].split("==")[0]))
    return sys.executable


class OtherLoad:
    """Samples /proc every second: CPU time used by processes that are not this run's (this run's
    carry BENCH_RUN_TOKEN=<token> in their environment, which every child inherits). A process that
    lives less than a second between two samples is missed, so this is a lower bound."""

    def __init__(self):
        self.token = uuid.uuid4().hex
        self.hz = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            self.t0_ticks = float(f.read().split()[0]) * self.hz
        self.seen: dict[tuple[int, int], tuple[bool, float]] = {}   # (pid, start) -> (ours, cpu)
        self.segment = "setup"
        self.other: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / self.hz
                key = (int(entry.name), int(fields[19]))
                if key not in self.seen:
                    try:
                        with open(f"/proc/{entry.name}/environ", "rb") as f:
                            ours = self.token.encode() in f.read()
                    except OSError:
                        ours = False
                    ours = ours or key[0] == os.getpid()
                    # Started before this run: count from now on; after: count all of it.
                    self.seen[key] = (ours, cpu if key[1] < self.t0_ticks else 0.0)
                ours, last = self.seen[key]
                if not ours and cpu > last:
                    self.other[self.segment] = self.other.get(self.segment, 0.0) + cpu - last
                self.seen[key] = (ours, cpu)
            except (OSError, ValueError, IndexError):
                continue

    def _run(self) -> None:
        t = time.monotonic()
        while not self._stop.wait(1.0):
            self._sample()
            now = time.monotonic()
            self.wall[self.segment] = self.wall.get(self.segment, 0.0) + now - t
            t = now

    def start(self) -> OtherLoad:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def cores(self, segment: str) -> float | None:
        w = self.wall.get(segment)
        return self.other.get(segment, 0.0) / w if w else None


def run_one(name: str, args, out_dir: Path, other: OtherLoad | None = None) -> dict:
    py = python_for(name, args)
    out = out_dir / f"{name}.json"
    cmd = [py, str(HERE / f"bench_{name}.py"), "--out", str(out)]
    if args.quick:
        cmd.append("--quick")
    if args.repeats:
        cmd += ["--repeats", str(args.repeats)]
    if args.queued is not None:
        cmd += ["--queued", str(args.queued)]
    if name == "lithops":
        if args.lithops_full:
            cmd.append("--full")
        cmd += ["--cap", str(args.lithops_cap)]
    env = dict(os.environ)
    if other is not None:
        env["BENCH_RUN_TOKEN"] = other.token
        other.segment = name
    if name in SPECS:   # the venv's bin/ first (Parsl starts its interchange and pools from it)
        env["PATH"] = str(Path(py).parent) + os.pathsep + env.get("PATH", "")
        env.pop("PYTHONPATH", None)
    c.log(f"\n== {name}: {' '.join(cmd)}")
    t = time.monotonic()
    with open(out_dir / f"{name}.txt", "w") as table:
        p = subprocess.run(cmd, stdout=table, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{name} failed (exit {p.returncode}); see above")
    c.log(f"== {name}: done in {time.monotonic() - t:.0f} s")
    res = json.loads(out.read_text())
    if other is not None:
        other.segment = "between"
        res["other_cores"] = other.cores(name)
        res["wall_s"] = time.monotonic() - t
    return res


# -- the combined table -------------------------------------------------------------------------
def cell(res: dict, key: str, base: dict | None) -> str:
    if key in res.get("skipped", {}) or key not in res["median"]:
        return "n/a" if key in res.get("skipped", {}) else ""
    v = res["median"][key]
    s = ("~" if key in res.get("estimated", {}) else "") + c.fmt(v)
    b = base["median"].get(key) if base and base is not res else None
    if b:
        s += f" ({v / b:,.1f}x)" if v / b < 100 else f" ({v / b:,.0f}x)"
    return s


def table(results: list[dict]) -> str:
    base = next((r for r in results if r["system"] == BASE), None)
    keys = [k for k in ROWS if any(k in r["median"] for r in results)]
    for r in results:
        keys += [k for k in r["median"] if k not in keys and not k.startswith("cold import,")]
    head = ["workload"] + [f"{r['system']} {r['version']}" if r["system"] != BASE else r["system"]
                           for r in results]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        lines.append("| " + " | ".join([k] + [cell(r, k, base) for r in results]) + " |")
    return "\n".join(lines)


def targets(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the embedded default; met is None when not measured."""
    f = next((r for r in results if r["system"].startswith("faas")), None)
    base = next((r for r in results if r["system"] == BASE), None)
    if f is None:
        return []
    m = f["median"]
    out = []
    ns = [n for n in f["sizes"]["ns"] if f"{n} submits (s)" in m]
    if ns and base:
        n = max(ns)
        k = f"{n} submits (s)"
        ratio = m[k] / base["median"][k]
        out.append((f"{n:,} no-op submits within 5x of ProcessPoolExecutor(2)",
                    f"{m[k]:.2f} s vs {base['median'][k]:.2f} s: {ratio:.1f}x", ratio <= 5))
    if "warm p50 (ms)" in m:
        out.append(("warm round trip p50 <= 10 ms", f"{m['warm p50 (ms)']:.2f} ms", m["warm p50 (ms)"] <= 10))
    k = "cold first result, endpoint up (s)"
    if k in m:
        out.append(("cold first result, endpoint already running, <= 0.5 s", f"{m[k]:.2f} s", m[k] <= 0.5))
    k = "cold first result (s)"
    if k in m:
        out.append(("cold first result, no endpoint running, <= 1.5 s", f"{m[k]:.2f} s", m[k] <= 1.5))
    s = f["sizes"]
    k = f"{s['sleeps']} x {int(s['sleep_s'] * 1000)} ms sleeps (s)"
    if k in m:
        floor = s["sleep_floor"]
        out.append((f"{s['sleeps']} x {int(s['sleep_s'] * 1000)} ms sleeps within 10% of the {floor:.1f} s floor",
                    f"{m[k]:.2f} s (+{(m[k] / floor - 1) * 100:.0f}%)", m[k] <= floor * 1.1))
    return out


def report(results: list[dict], load_before, load_after, args, elapsed: float) -> str:
    mc = results[0]["machine"]
    others = [r.get("other_cores") for r in results if r.get("other_cores") is not None]
    shared = any(x > 0.1 for x in others)
    lines = [f"Machine: {mc['cpu']}, {mc['cores']} cores, {mc['mem_gib']} GiB, {mc['os']}, "
             f"Python {mc['python']}",
             f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
             f"after: {', '.join(f'{x:.2f}' for x in load_after)} (after includes this run's own processes)",
             "CPU used by other processes while each system ran (cores of " + str(mc["cores"]) + "): "
             + ", ".join(f"{r['system']} {r['other_cores']:.2f}" for r in results if r.get("other_cores") is not None)
             + ("  (a shared machine: other work was running)" if shared else "  (the machine was otherwise idle)"),
             f"Sizes: {'--quick' if args.quick else 'full'}; median of {results[0]['sizes']['repeats']} "
             f"repeat(s) unless noted; ran {elapsed:.0f} s", ""]
    lines.append(table(results))
    notes = [(r["system"], n) for r in results for n in r.get("notes", [])]
    for system, n in notes:
        lines.append(f"- {system}: {n}")
    for r in results:
        for k, why in r.get("skipped", {}).items():
            lines.append(f"- {r['system']}: {k}: n/a: {why}")
    t = targets(results)
    if t:
        lines += ["", "Targets for the embedded default:", "", "| target | measured | |", "|---|---|---|"]
        lines += [f"| {name} | {got} | {'met' if ok else 'MISSED'} |" for name, got, ok in t]
    out = "\n".join(lines)
    import io
    buf = io.StringIO()
    for r in results:
        if "queued" in r:
            c.print_queued(r["system"], r["queued"], out=buf)
    return out + "\n" + buf.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repeat (CI smoke: --only faas,ppe < 60 s)")
    p.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--repeats", type=int, help="repeats per workload (default 3; --quick 1)")
    p.add_argument("--queued", type=int, help="queued calls (default 100,000; --quick 10,000; 0 skips)")
    p.add_argument("--venvs", default="~/.cache/faas-bench/venvs", help="where the Lithops/Parsl venvs live")
    p.add_argument("--latest", action="store_true", help="install the latest Lithops/Parsl, not the pinned ones")
    p.add_argument("--lithops-full", action="store_true", help="run Lithops at full size (hours)")
    p.add_argument("--lithops-cap", type=int, default=200, help="calls measured per Lithops submit/map workload")
    p.add_argument("--out-dir", help="folder for the JSON results and tables (default: a new temp folder)")
    args = p.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in SYSTEMS]
    if bad:
        p.error(f"unknown system(s) {bad}; choose from {SYSTEMS}")
    names = [n for n in SYSTEMS if n in names]     # PPE first: the baseline
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="faas-bench-results-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for n in names:                                 # venvs first, so installs are not timed
        python_for(n, args)
    load_before = os.getloadavg()
    t = time.monotonic()
    other = OtherLoad().start() if os.path.isdir("/proc/self") else None
    try:
        results = [run_one(n, args, out_dir, other) for n in names]
    finally:
        if other is not None:
            other.stop()
    text = report(results, load_before, os.getloadavg(), args, time.monotonic() - t)
    (out_dir / "report.md").write_text(text)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    print(text)
    print(f"(results: {out_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
