"""What a worker's node has: the function ``Executor.get_worker_hardware_details`` and the Globus
Client's ``get_worker_hardware_details`` run on an endpoint (its own module, below both)."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess


def hardware_report() -> str:
    """Host, platform, Python, CPUs and memory, and ``lscpu`` / ``nvidia-smi -L`` where present."""
    lines = [f"host: {platform.node()}", f"platform: {platform.platform()}",
             f"python: {platform.python_version()}", f"cpus: {os.cpu_count()}"]
    try:
        with open("/proc/meminfo") as f:
            lines.append(next(line.strip() for line in f if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        pass
    for cmd in (["lscpu"], ["nvidia-smi", "-L"]):
        if shutil.which(cmd[0]):
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            lines.append(f"$ {' '.join(cmd)}\n{out}")
    return "\n".join(lines)
