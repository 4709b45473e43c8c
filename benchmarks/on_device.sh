#!/bin/bash
# Issue 18's many-core figures on a lent machine, as one prepared script (see BENCHMARKS.md,
# "On a many-core machine"). The device has no network and, of faas's dependencies, only click,
# fsspec, jinja2, pyyaml and psutil. Prepare the wheels here first (git-ignored folder .whl/):
#
#   pip download --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl boto3 dill tblib pydantic pydantic-settings \
#     tenacity tqdm jsonschema globus-identity-mapping inotify_simple parsl httpx cryptography
#
# then run it there with the run tool: command "bash benchmarks/on_device.sh", carry [".whl"],
# timeout_s 600; then, on the still warm machine, "bash benchmarks/on_device.sh pools" (one pool
# per node beside two and four at 16 workers: engine.pools_per_node). Everything it prints is
# also written under $OUT (scale.json, scale.txt, profile.txt; pools.json, pools.txt); each
# call's workloads stop at ~540 s so the files come back.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
else
  export PYTHONPATH=$PWD
fi
OUT=${OUT:-/tmp/faas-device-out}
mkdir -p "$OUT"
python - <<'PY' | tee "$OUT/machine.txt"
import os, platform, sys
print(f"{platform.node()}: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
      f"Python {sys.version.split()[0]}, {platform.platform()}")
PY
# where FAAS_HOME (tempfile.mkdtemp) lands: a file per result, so its file system counts
df -T "${TMPDIR:-/tmp}" 2>&1 | tee -a "$OUT/machine.txt"
if [ "${1:-table}" = pools ]; then
  timeout 540 python benchmarks/scale.py --workers 16 --pools 1 2 4 --out "$OUT/pools.json" 2>&1 | tee "$OUT/pools.txt"
  exit
fi
# where each microsecond goes, by process and thread, at the machine's default worker count
timeout 90 python benchmarks/profile_faas.py --n 20000 --rounds 2 2>&1 | tee "$OUT/profile.txt"
# the issue's table for 2, 4, 8 and 16 workers beside ProcessPoolExecutor, and K clients at once
timeout 450 python benchmarks/scale.py --workers 2 4 8 16 --out "$OUT/scale.json" 2>&1 | tee "$OUT/scale.txt"
