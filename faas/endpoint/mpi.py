"""MPI tasks on a GlobusMPIEngine block (after Parsl's MPIExecutor, which Globus's engine wraps):
each task's ``resource_specification`` is checked, given ``num_nodes`` of the block's nodes, and
run with ``$PARSL_MPI_PREFIX`` (and Parsl's other ``PARSL_*`` variables) set for its launcher.

Pure functions, but for :func:`block_nodes`, which asks the scheduler which nodes the block has.
"""
from __future__ import annotations

import difflib
import os
import socket
import subprocess
from collections.abc import Iterable

from ..exceptions import FaasError

LEGAL_KEYS = ("num_nodes", "ranks_per_node", "num_ranks", "launcher_options")
LAUNCHERS = ("mpiexec", "srun", "aprun")


class InvalidResourceSpecification(FaasError, ValueError):
    """A task's resource_specification cannot run here (Parsl's error of the same name)."""

    code = "InvalidResourceSpecification"

    def __init__(self, invalid_keys: Iterable[str], message: str = "") -> None:
        super().__init__(invalid_keys, message)   # args rebuild it on the client
        self.invalid_keys = invalid_keys
        self.message = message

    def __str__(self) -> str:
        return f"Invalid Resource Specification Supplied: {self.invalid_keys}. {self.message}"


class NotAnMPIEngine(FaasError, RuntimeError):
    """An MPIFunction sent to an endpoint whose engine does not set ``$PARSL_MPI_PREFIX``
    (Globus's would run the command once, without MPI)."""

    code = "NotAnMPIEngine"


def check_spec(engine_type: str, res: dict | None, block_nodes: int = 1) -> dict | None:
    """The normalized spec of an MPI task (all of num_nodes, ranks_per_node, num_ranks, ints;
    launcher_options), None for a task that needs none; raises what Globus's engine of that type
    raises for a spec it cannot run."""
    res = res or {}
    if engine_type in ("ThreadPoolEngine", "ProcessPoolEngine"):
        if res:   # Globus's own words
            raise ValueError(f"resource_specification is not supported on {engine_type}."
                             "  For MPI apps, use GlobusMPIEngine.")
        return None
    if engine_type != "GlobusMPIEngine":
        extra = set(res) - {"priority"}   # HighThroughputExecutor's one key (no effect here)
        if extra:
            raise InvalidResourceSpecification(
                extra, "Task resource specification only accepts these types of resources: priority "
                       "(num_nodes, ranks_per_node and num_ranks need an endpoint whose engine.type "
                       "is GlobusMPIEngine)")
        return None
    if not res:
        raise InvalidResourceSpecification(
            set(), "MPI mode requires optional parsl_resource_specification keyword argument to be "
                   "configured: give the task a resource_specification such as {'num_nodes': 2, "
                   "'ranks_per_node': 4} (Executor.resource_specification)")
    unknown = set(res) - set(LEGAL_KEYS)
    if unknown:
        hints = [f"{k!r}: did you mean {m[0]!r}?" for k in sorted(unknown)
                 if (m := difflib.get_close_matches(k, LEGAL_KEYS, n=1, cutoff=0.6))]
        raise InvalidResourceSpecification(
            unknown, f"valid keys: {', '.join(LEGAL_KEYS)}" + (f" ({'; '.join(hints)})" if hints else ""))
    nums = {k: _count(k, res[k]) for k in ("num_nodes", "ranks_per_node", "num_ranks") if k in res}
    nodes = nums.get("num_nodes", 1)
    if "ranks_per_node" in nums and "num_ranks" in nums:
        per_node, ranks = nums["ranks_per_node"], nums["num_ranks"]
        if ranks > nodes * per_node:
            raise InvalidResourceSpecification(
                {"num_ranks"}, f"num_ranks={ranks} does not fit num_nodes={nodes} x "
                               f"ranks_per_node={per_node}")
    elif "ranks_per_node" in nums:
        per_node = nums["ranks_per_node"]
        ranks = nodes * per_node
    elif "num_ranks" in nums:
        ranks = nums["num_ranks"]
        per_node = -(-ranks // nodes)
    else:
        per_node, ranks = 1, nodes
    if nodes > block_nodes:
        raise InvalidResourceSpecification(
            {"num_nodes"}, f"num_nodes={nodes} but a block of this endpoint has {block_nodes} "
                           f"node(s) (engine.provider.nodes_per_block); ask for at most {block_nodes}")
    options = res.get("launcher_options", "")
    if not isinstance(options, str):
        raise InvalidResourceSpecification(
            {"launcher_options"}, f"launcher_options must be a string of options for the launcher, "
                                  f"got {type(options).__name__}")
    return {"num_nodes": nodes, "ranks_per_node": per_node, "num_ranks": ranks,
            "launcher_options": options}


def _count(key: str, value) -> int:
    """A positive whole number (an int, or its digits as text as Parsl accepts)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidResourceSpecification({key}, f"{key} must be a whole number >= 1, got {value!r}")
    return value


def prefixes(launcher: str, spec: dict, nodes: list[str]) -> dict[str, str]:
    """Parsl's variables for a task on ``nodes``: every launcher's prefix, and
    ``PARSL_MPI_PREFIX`` for ``launcher``."""
    hosts, n, ppn, opts = ",".join(nodes), spec["num_ranks"], spec["ranks_per_node"], spec["launcher_options"]
    table = {
        "PARSL_MPIEXEC_PREFIX": f"mpiexec -n {n} -ppn {ppn} -hosts {hosts} {opts}",
        "PARSL_SRUN_PREFIX": f"srun --ntasks {n} --ntasks-per-node {ppn} --nodelist {hosts} "
                             f"--nodes {len(nodes)} {opts}",
        "PARSL_APRUN_PREFIX": f"aprun -n {n} -N {ppn} -node-list {hosts} {opts}",
    }
    table = {k: v.strip() for k, v in table.items()}
    table["PARSL_MPI_PREFIX"] = table[f"PARSL_{launcher.upper()}_PREFIX"]
    return table


def task_env(launcher: str, spec: dict, nodes: list[str]) -> dict[str, str]:
    """What the worker sets around one task (Parsl's ``_init_mpi_env``)."""
    env = {f"PARSL_{k.upper()}": str(v) for k, v in spec.items()}
    env["PARSL_MPI_NODELIST"] = ",".join(nodes)
    env.update(prefixes(launcher, spec, nodes))
    return env


def block_nodes(nodes_per_block: int) -> list[str]:
    """The nodes of the block this pool runs in: Slurm's (``scontrol show hostnames``), PBS's
    (``$PBS_NODEFILE``), or, on the local provider, this host once per node of the block."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if nodelist:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
        if out:
            return out
    if os.environ.get("PBS_NODEFILE"):
        with open(os.environ["PBS_NODEFILE"]) as f:
            hosts = [line.strip() for line in f if line.strip()]
        return list(dict.fromkeys(hosts))   # a host is listed once per slot
    return [socket.gethostname()] * nodes_per_block


def launcher_problem(launcher: str) -> str | None:
    """Why ``launcher`` cannot start tasks from this pool, if it cannot."""
    if launcher == "srun" and not os.environ.get("SLURM_JOB_ID"):
        return ("mpi_launcher: srun starts a task's ranks inside the block's Slurm job, but this pool "
                "is not in one (no $SLURM_JOB_ID): use provider type slurm, or mpi_launcher: mpiexec")
    return None
