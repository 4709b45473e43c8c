"""Globus Compute's ShellFunction, ShellResult and MPIFunction, and its engine types, as a Globus
user writes them (only the import changed): ShellFunctions on the embedded default endpoint,
MPIFunctions with MPICH's mpiexec on a local-provider GlobusMPIEngine endpoint, and with srun on
CI's real Slurm (.ci/slurm.sh). The examples are from Globus Compute's docs (executor user guide,
MPI tutorial, changelog)."""
from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from helpers import running_endpoint

import faas
from faas import MPIFunction, ShellFunction, ShellResult, serialize
from faas.endpoint import config as ep_config
from faas.endpoint import control, mpi
from faas.exceptions import ConfigError, TaskTimeout

WAIT = 90


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    """An Executor on the embedded default endpoint (nothing configured: started on demand)."""
    home = tmp_path_factory.mktemp("shell") / "faas-home"
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k not in ("FAAS_TEST_MOTO_URL", "FAAS_TEST_AWS_URL"):
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        try:
            with faas.Executor() as executor:
                executor.home = home
                yield executor
        finally:
            control.stop("local", home)


def alive_with(marker: str) -> list[str]:
    """Command lines of live processes that contain ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state != "Z" and "pytest" not in cmdline:
            found.append(cmdline)
    return found


# -- ShellFunction / ShellResult on the embedded default ---------------------------------------
def test_docs_example_formats_cmd_with_the_calls_kwargs(ex):
    # docs/sdk/executor_user_guide.rst, "Shell Functions"
    bf = ShellFunction("echo '{message}'")
    for msg in ("hello", "hola", "bonjour"):
        future = ex.submit(bf, message=msg)
        shell_result = future.result(timeout=WAIT)  # ShellFunctions return ShellResults
        assert isinstance(shell_result, ShellResult)
        assert shell_result.stdout == f"{msg}\n"
        assert shell_result.cmd == f"echo '{msg}'"
        assert shell_result.returncode == 0 and shell_result.exception_name is None
    assert str(ex.submit(ShellFunction("echo x={x}"), x=1).result(timeout=WAIT)).startswith(
        "exit code: 0\n   stdout:\nx=1")


def test_stdout_stderr_and_returncode_of_a_failing_command(ex):
    r = ex.submit(ShellFunction("echo out; echo err >&2; exit 3")).result(timeout=WAIT)
    assert (r.returncode, r.stdout, r.exception_name) == (3, "out\n", "subprocess.CalledProcessError")
    assert r.stderr.endswith("err\n")
    # Globus's sandbox advice, in the stderr of every task of an endpoint without run_in_sandbox
    assert r.stderr.startswith("WARNING: Task sandboxing will not work")
    assert "exit code: 3" in str(r) and "\n   stderr:\n" in str(r)
    assert "exception: subprocess.CalledProcessError" in str(r)
    assert repr(r).startswith("ShellResult(returncode=3, cmd='echo out; echo err >&2; exit 3', "
                              "exception_name='subprocess.CalledProcessError', stdout='out\\n'")


def test_walltime_gives_124_and_stops_the_command(ex):
    # docs: "Limit execution to 1s"
    bf = ShellFunction("sleep 2", walltime=1)
    assert ex.submit(bf).result(timeout=WAIT).returncode == 124

    t0 = time.monotonic()
    r = ex.submit(ShellFunction("echo started; sleep 317.25; echo never", walltime=1)).result(timeout=WAIT)
    assert (r.returncode, r.exception_name) == (124, "subprocess.TimeoutExpired")
    assert r.stdout == "started\n"
    assert time.monotonic() - t0 < 30
    assert alive_with("317.25") == [], "the command outlived its walltime"


def test_snippet_lines(ex):
    r = ex.submit(ShellFunction("seq 1 5000; seq 1 3 >&2", snippet_lines=10)).result(timeout=WAIT)
    assert r.stdout.splitlines() == [str(i) for i in range(4991, 5001)]
    assert r.stderr.splitlines()[-3:] == ["1", "2", "3"]
    r = ex.submit(ShellFunction("seq 1 5000")).result(timeout=WAIT)   # default: 1000 lines
    assert r.stdout.splitlines() == [str(i) for i in range(4001, 5001)]
    assert ex.submit(ShellFunction("seq 1 5", snippet_lines=0)).result(timeout=WAIT).stdout == ""
    assert "truncated; see .stdout" in str(r)   # str shows the last 10 lines, as Globus's


def test_a_name_without_a_kwarg_is_an_error_naming_it(ex):
    bf = ShellFunction("cp {source} {dest}")
    with pytest.raises(KeyError) as e:
        ex.submit(bf, source="a").result(timeout=WAIT)
    assert "{dest}" in str(e.value) and "dest=" in str(e.value)
    with pytest.raises(ValueError, match="keyword arguments only"):
        ex.submit(ShellFunction("echo {}")).result(timeout=WAIT)


def test_return_dict_and_output_files(ex):
    # docs: "To return a JSON-compatible dict instead of a ShellResult object"
    func = ShellFunction("echo '{message}'", return_dict=True)
    res = ex.submit(func, message="hello").result(timeout=WAIT)
    assert isinstance(res, dict) and "hello" in res["stdout"]
    assert set(res) == {"cmd", "stdout", "stderr", "returncode", "exception_name"}

    # relative stdout/stderr files land in the tasks' working folder, Globus's tasks_working_dir
    r = ex.submit(ShellFunction("pwd; echo oops >&2", stdout="out/run.out", stderr="run.err")).result(timeout=WAIT)
    work = ex.home / "endpoints" / "local" / "tasks_working_dir"
    assert r.stdout == f"{work}\n"
    assert (work / "out" / "run.out").read_text() == f"{work}\n"
    assert (work / "run.err").read_text().endswith("oops\n")


def test_task_timeout_stops_the_command_too(ex):
    with faas.Executor(task_timeout=2) as ex2:
        with pytest.raises(TaskTimeout):
            ex2.submit(ShellFunction("sleep 313.75")).result(timeout=WAIT)
    time.sleep(0.5)
    assert alive_with("313.75") == [], "the command outlived the worker stopped by task_timeout"


def test_mpi_function_needs_the_mpi_engine(ex):
    with pytest.raises(mpi.NotAnMPIEngine, match="GlobusMPIEngine"):
        ex.submit(MPIFunction("hostname")).result(timeout=WAIT)
    # With a resource_specification: what Globus's GlobusComputeEngine (Parsl's HTEX) raises
    c = ex.client
    fid = c.register_function(MPIFunction("hostname"))
    [st] = c.submit_tasks("local", fid, [[((), {})]], resource_specification={"num_nodes": 2})
    with pytest.raises(mpi.InvalidResourceSpecification) as e:
        c.get_result(task_id=st.task_id, timeout=WAIT)
    assert str(e.value).startswith("Invalid Resource Specification Supplied: {'num_nodes'}. Task "
                                   "resource specification only accepts these types of resources: priority")


# -- the classes themselves (Globus's str/repr and argument checks) ----------------------------
def test_shell_function_str_repr_and_arguments():
    sf = ShellFunction("lammps -in {f}", walltime=15.7, stdout="/o", snippet_lines=12, name="lmp")
    assert repr(sf) == "ShellFunction(name='lmp', walltime=15.7, stdout='/o', snippet_lines=12, cmd='lammps -in {f}')"
    assert str(sf) == "lmp\n wall time: 15.7\n    stdout: '/o'\n     lines: 12\n   command: lammps -in {f}"
    assert ShellFunction("pwd").__name__ == "ShellFunction" and MPIFunction("x").__name__ == "MPIFunction"
    assert "   command: -----\n" in str(ShellFunction("a\nb"))
    with pytest.raises(ValueError):
        ShellFunction("pwd", name="for")
    with pytest.raises(AssertionError):   # Globus asserts; ours is a ValueError too
        ShellFunction("pwd", walltime=-1)
    with pytest.raises(ValueError, match="snippet_lines"):
        ShellFunction("pwd", snippet_lines=-1)
    with pytest.raises(TypeError, match="cmd must be a command line"):
        ShellFunction(["echo", "hi"])
    r = ShellResult("c", "o\n" * 20, "e", 1, "X")
    assert str(r).startswith("exit code: 1\n   stdout:\n[... truncated; see .stdout for full output ...]")
    assert str(r).endswith("\n\n   stderr:\ne\n\nexception: X")


# -- engine.type and the engine keys -----------------------------------------------------------
def engine(section: dict) -> ep_config.EngineConfig:
    return ep_config.EngineConfig.model_validate(section)


def test_engine_type_names_a_real_engine(tmp_path):
    assert engine({}).type == "GlobusComputeEngine"
    assert engine({"type": "faas"}).type == "GlobusComputeEngine"   # config.yaml files written before
    path = tmp_path / "config.yaml"
    for bad, hint in (("Bogus", ""), ("GlobusMPIEngin", " (did you mean GlobusMPIEngine?)"),
                      ("threadpoolengine", " (did you mean ThreadPoolEngine?)")):
        path.write_text(yaml.safe_dump({"store": "/tmp/s", "engine": {"type": bad}}))
        with pytest.raises(ConfigError) as e:
            ep_config.load(path)
        assert "engine.type: " in str(e.value)
        assert (f"{bad!r} is not a valid engine. Valid options are: GlobusComputeEngine, "
                f"GlobusMPIEngine, ProcessPoolEngine, ThreadPoolEngine{hint}") in str(e.value)


def test_thread_and_process_pool_engines_take_max_workers():
    tp = engine({"type": "ThreadPoolEngine", "max_workers": 3})
    assert (tp.workers_per_node, tp.provider.type, tp.provider.min_blocks, tp.provider.max_blocks) == (3, "local", 1, 1)
    assert engine({"type": "ThreadPoolEngine"}).max_workers == min(32, (os.cpu_count() or 1) + 4)
    assert engine({"type": "ProcessPoolEngine"}).workers_per_node == (os.cpu_count() or 1)
    assert engine(tp.model_dump(exclude_none=True)) == tp   # written back and read again: the same
    for section, words in (
            ({"type": "ThreadPoolEngine", "provider": {"type": "SlurmProvider"}}, "takes no provider"),
            ({"type": "ProcessPoolEngine", "max_workers": 2, "max_workers_per_node": 4}, "takes max_workers"),
            ({"type": "GlobusComputeEngine", "max_workers": 2}, "max_workers is a key of ThreadPoolEngine"),
            ({"type": "GlobusComputeEngine", "mpi_launcher": "srun"},
             "MPI mode is not supported on GlobusComputeEngine. Use GlobusMPIEngine instead."),
            ({"provider": {"nodes_per_block": 2}}, "needs a multi-node launcher")):
        with pytest.raises(ValueError, match=words):
            engine(section)


def test_globus_mpi_configs_from_the_docs_load():
    # docs/endpoints/endpoints.rst, "Configuring for MPI": the PBS and Slurm stubs (Globus puts
    # max_workers_per_block under provider there)
    pbs = engine(yaml.safe_load("""
      type: GlobusMPIEngine
      mpi_launcher: mpiexec

      provider:
        type: PBSProProvider

        max_workers_per_block: 3
        nodes_per_block: 6

        launcher:
          type: SimpleLauncher
    """))
    assert (pbs.mpi_launcher, pbs.max_workers_per_block, pbs.workers_per_node, pbs.pools_per_block,
            pbs.provider.nodes_per_block) == ("mpiexec", 3, 3, 1, 6)
    slurm = engine(yaml.safe_load("""
      type: GlobusMPIEngine
      mpi_launcher: srun

      provider:
        type: SlurmProvider

        max_workers_per_block: 3
        nodes_per_block: 6

        launcher:
          type: SimpleLauncher
    """))
    assert (slurm.mpi_launcher, slurm.provider.type, slurm.workers_per_block) == ("srun", "slurm", 3)
    # docs/tutorials/mpi.rst, the first GlobusMPIEngine step
    tut = engine(yaml.safe_load("""
        type: GlobusMPIEngine
        max_workers_per_node: 1

        provider:
            type: LocalProvider

            launcher:
                type: SimpleLauncher

            min_blocks: 0
            max_blocks: 1
            init_blocks: 1
    """))
    assert (tut.mpi_launcher, tut.max_workers_per_block) == ("mpiexec", 1)
    with pytest.raises(ValueError, match="SimpleLauncher"):
        engine({"type": "GlobusMPIEngine", "provider": {"launcher": {"type": "SrunLauncher"}}})


def test_resource_specification_checks_and_prefixes():
    ok = mpi.check_spec("GlobusMPIEngine", {"num_nodes": 2, "ranks_per_node": 2}, block_nodes=4)
    assert ok == {"num_nodes": 2, "ranks_per_node": 2, "num_ranks": 4, "launcher_options": ""}
    assert mpi.check_spec("GlobusMPIEngine", {"num_ranks": 5, "num_nodes": "2"}, 4)["ranks_per_node"] == 3
    assert mpi.check_spec("GlobusMPIEngine", {"num_ranks": 1, "num_nodes": 8}, 8)["ranks_per_node"] == 1
    for res, words in (({}, "MPI mode requires"), ({"num_node": 2}, "did you mean 'num_nodes'"),
                       ({"num_nodes": 5}, "num_nodes=5 but a block of this endpoint has 4"),
                       ({"num_nodes": 1.5}, "whole number"), ({"ranks_per_node": True}, "whole number"),
                       ({"num_nodes": 1, "ranks_per_node": 2, "num_ranks": 3}, "does not fit"),
                       ({"launcher_options": ["-l"]}, "must be a string")):
        with pytest.raises(mpi.InvalidResourceSpecification, match=words):
            mpi.check_spec("GlobusMPIEngine", res, block_nodes=4)
    with pytest.raises(ValueError, match="not supported on ThreadPoolEngine.  For MPI apps, use GlobusMPIEngine."):
        mpi.check_spec("ThreadPoolEngine", {"num_nodes": 1})
    assert mpi.check_spec("GlobusComputeEngine", {"priority": 1}) is None
    env = mpi.task_env("srun", {**ok, "launcher_options": "--overlap"}, ["n1", "n2"])
    assert env["PARSL_MPI_PREFIX"] == env["PARSL_SRUN_PREFIX"] == \
        "srun --ntasks 4 --ntasks-per-node 2 --nodelist n1,n2 --nodes 2 --overlap"
    assert env["PARSL_MPIEXEC_PREFIX"] == "mpiexec -n 4 -ppn 2 -hosts n1,n2 --overlap"
    assert env["PARSL_APRUN_PREFIX"] == "aprun -n 4 -N 2 -node-list n1,n2 --overlap"
    assert (env["PARSL_NUM_RANKS"], env["PARSL_MPI_NODELIST"]) == ("4", "n1,n2")


# -- MPIFunction with MPICH's mpiexec on a local-provider GlobusMPIEngine ----------------------
def run_with(client, endpoint: str, fn, resource_specification: dict, **kwargs):
    fid = client.register_function(fn)
    [st] = client.submit_tasks(endpoint, fid, [[((), kwargs)]], resource_specification=resource_specification)
    return st.task_id


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (MPICH) on PATH")
def test_mpi_function_with_mpiexec_on_a_local_block(tmp_path):
    home = tmp_path / "home"
    # Globus's MPI tutorial config (LocalProvider, SimpleLauncher), a block of 2 (local) nodes
    engine_cfg = {"type": "GlobusMPIEngine", "max_workers_per_node": 2, "max_workers_per_block": 2,
                  "provider": {"type": "LocalProvider", "launcher": {"type": "SimpleLauncher"},
                               "nodes_per_block": 2, "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}
    with running_endpoint(home, "mpi", engine=engine_cfg):
        c = faas.client()
        host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
        # changelog example: MPIFunction("hostname") on 2 nodes x 2 ranks
        tid = run_with(c, "mpi", MPIFunction("hostname"), {"num_nodes": 2, "ranks_per_node": 2})
        r = c.get_result(task_id=tid, timeout=WAIT)
        assert r.returncode == 0 and r.stdout.split() == [host] * 4, r
        assert r.cmd == "$PARSL_MPI_PREFIX hostname"

        tid = run_with(c, "mpi", MPIFunction("bash -c 'echo rank=$PMI_RANK of $PMI_SIZE'"), {"num_ranks": 3})
        r = c.get_result(task_id=tid, timeout=WAIT)
        assert sorted(r.stdout.splitlines()) == [f"rank={i} of 3" for i in range(3)], r

        # kwargs format the command; the launcher's options come from launcher_options
        tid = run_with(c, "mpi", MPIFunction("echo {word}"), {"num_nodes": 1, "ranks_per_node": 2,
                                                              "launcher_options": "-prepend-rank"},
                       word="hi")
        assert sorted(c.get_result(task_id=tid, timeout=WAIT).stdout.split()) == ["[0]", "[1]", "hi", "hi"]

        # Bad specifications fail their task at once, with what was wrong
        for res, words in (({"num_nodes": 3}, "num_nodes=3 but a block of this endpoint has 2 node"),
                           ({"num_node": 2}, "{'num_node'}"), ({}, "MPI mode requires"),
                           ({"num_ranks": "many"}, "whole number")):
            tid = run_with(c, "mpi", MPIFunction("hostname"), res)
            with pytest.raises(mpi.InvalidResourceSpecification, match=words):
                c.get_result(task_id=tid, timeout=WAIT)

        # Nodes are lent, not shared: 2-node tasks run one at a time; 1-node tasks two at once
        # (each waits for the other's file: both succeed only if they ran together)
        span = ShellFunction("echo $(date +%s.%N) $PARSL_NUM_NODES; sleep 1; date +%s.%N")
        ids = [run_with(c, "mpi", span, {"num_nodes": 2}) for _ in range(3)]
        spans = sorted(tuple(float(x) for x in c.get_result(task_id=t, timeout=WAIT).stdout.split()[::2])
                       for t in ids)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
        meet = ShellFunction("touch {me}; for i in $(seq 300); do [ -e {other} ] && exit 0; sleep 0.1; done; exit 1")
        a, b = tmp_path / "a", tmp_path / "b"
        ids = [run_with(c, "mpi", meet, {"num_nodes": 1}, me=a, other=b),
               run_with(c, "mpi", meet, {"num_nodes": 1}, me=b, other=a)]
        assert [c.get_result(task_id=t, timeout=WAIT).returncode for t in ids] == [0, 0]

        # a plain function on GlobusMPIEngine needs a resource_specification too (as Parsl's)
        with faas.Executor("mpi") as ex:
            with pytest.raises(mpi.InvalidResourceSpecification, match="MPI mode requires"):
                ex.submit(os.getpid).result(timeout=WAIT)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (MPICH) on PATH")
def test_launcher_options_cannot_run_another_program_where_functions_are_restricted(tmp_path):
    """An endpoint that runs only its allowed_functions (here MPIFunction("hostname")): a sender
    holding its key put a program in launcher_options, which $PARSL_MPI_PREFIX hands to mpiexec
    as the program to run: before, mpiexec ran ``touch PWNED hostname`` (any command, as the
    endpoint's user). Now a task's launcher_options are refused there, by name."""
    home = tmp_path / "home"
    allowed = MPIFunction("hostname")
    fid, _ = serialize.function_bytes(allowed)
    engine_cfg = {"type": "GlobusMPIEngine", "max_workers_per_node": 1,
                  "provider": {"type": "LocalProvider", "launcher": {"type": "SimpleLauncher"},
                               "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}
    pwned = tmp_path / "PWNED"
    with running_endpoint(home, "mpi", engine=engine_cfg, allowed_functions=[fid]):
        c = faas.client()
        tid = run_with(c, "mpi", allowed, {"num_ranks": 1, "launcher_options": f"touch {pwned}"})
        with pytest.raises(mpi.InvalidResourceSpecification, match="launcher_options"):
            c.get_result(task_id=tid, timeout=WAIT)
        tid = run_with(c, "mpi", allowed, {"num_ranks": 1})
        assert c.get_result(task_id=tid, timeout=WAIT).returncode == 0
    assert not pwned.exists(), "launcher_options ran a program of the sender's"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (MPICH) on PATH")
@pytest.mark.skipif("resource_specification" not in inspect.signature(faas.Executor).parameters,
                    reason="Executor(resource_specification=) is issue 16 part 2 (another change)")
def test_mpi_tutorial_with_the_executor(tmp_path):
    # docs/tutorials/mpi.rst, "Submit Tasks from the SDK" (2-node blocks here, not 8)
    home = tmp_path / "home"
    engine_cfg = {"type": "GlobusMPIEngine", "max_workers_per_node": 1,
                  "provider": {"type": "LocalProvider", "launcher": {"type": "SimpleLauncher"},
                               "nodes_per_block": 2, "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}
    with running_endpoint(home, "mpi", engine=engine_cfg):
        mpi_func = MPIFunction("hostname")
        with faas.Executor(endpoint_id="mpi") as ex:
            ex.resource_specification = {"num_ranks": 1, "num_nodes": 2}
            assert len(ex.submit(mpi_func).result(timeout=WAIT).stdout.split()) == 1
            for ranks in range(1, 4):
                ex.resource_specification = {"ranks_per_node": ranks, "num_nodes": 2}
                mpi_result = ex.submit(mpi_func).result(timeout=WAIT)
                assert len(mpi_result.stdout.split()) == 2 * ranks


@pytest.mark.slow
def test_thread_pool_engine_with_sandbox(tmp_path):
    home = tmp_path / "home"
    engine_cfg = {"type": "ThreadPoolEngine", "max_workers": 2, "run_in_sandbox": True}
    with running_endpoint(home, "tp", engine=engine_cfg):
        with faas.Executor("tp") as ex:
            f = ex.submit(ShellFunction("pwd; echo $GC_TASK_UUID"))
            r = f.result(timeout=WAIT)
            work = ep_config.endpoint_dir("tp", home) / "tasks_working_dir" / f.task_id
            assert r.stdout.split() == [str(work), f.task_id] and r.stderr == ""
            # Globus's names: <task id>.<random>.stdout / .stderr
            assert sorted(x.name.split(".")[::2] for x in work.iterdir()) == [
                [f.task_id, "stderr"], [f.task_id, "stdout"]]
        c = faas.client()
        tid = run_with(c, "tp", ShellFunction("true"), {"num_nodes": 1})
        with pytest.raises(ValueError, match="resource_specification is not supported on ThreadPoolEngine"):
            c.get_result(task_id=tid, timeout=WAIT)


# -- MPIFunction with srun on a real Slurm -----------------------------------------------------
@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("sinfo") is None,
                    reason="no Slurm here (sinfo not on PATH); `bash .ci/slurm.sh` (as root) starts one")
def test_mpi_function_with_srun_in_a_slurm_block(tmp_path):
    r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix") for s in r.stdout.split()):
        pytest.fail(f"Slurm is installed but has no idle node (sinfo: {(r.stdout + r.stderr).strip()!r}); "
                    f"start it with `bash .ci/slurm.sh`")
    home = tmp_path / "home"
    # Globus's "MPI on a Slurm system" stub; exclusive: the job gets the node's every CPU, so a
    # task's srun may start several ranks on it
    engine_cfg = {"type": "GlobusMPIEngine", "mpi_launcher": "srun", "max_workers_per_node": 1,
                  "max_idle_time": 30,
                  "provider": {"type": "SlurmProvider", "partition": "debug", "exclusive": True,
                               "launcher": {"type": "SimpleLauncher"}, "nodes_per_block": 1,
                               "init_blocks": 0, "min_blocks": 0, "max_blocks": 1}}
    with running_endpoint(home, "mpi-slurm", engine=engine_cfg, visibility_timeout=30):
        c = faas.client()
        tid = run_with(c, "mpi-slurm", MPIFunction("bash -c 'echo rank=$SLURM_PROCID job=$SLURM_JOB_ID'"),
                       {"num_nodes": 1, "ranks_per_node": 2})
        try:
            r = c.get_result(task_id=tid, timeout=180)
        except TimeoutError:
            edir = ep_config.endpoint_dir("mpi-slurm", home)
            logs = [f.read_text(errors="replace")[-2000:] for f in
                    [edir / "endpoint.log", *edir.glob("submit_scripts/*.stderr"), *edir.glob("blocks/*/pool.log")]]
            pytest.fail("no result within 180 s\n" + "\n----\n".join(logs))
        lines = sorted(r.stdout.splitlines())
        assert [line.split()[0] for line in lines] == ["rank=0", "rank=1"], r
        job = lines[0].split("job=")[1]
        assert job and all(line.endswith(f"job={job}") for line in lines), "ranks ran outside the block's job"
        assert r.cmd == "$PARSL_MPI_PREFIX bash -c 'echo rank=$SLURM_PROCID job=$SLURM_JOB_ID'"

        tid = run_with(c, "mpi-slurm", ShellFunction("echo $PARSL_MPI_PREFIX"), {"num_ranks": 2})
        assert c.get_result(task_id=tid, timeout=WAIT).stdout.startswith(
            "srun --ntasks 2 --ntasks-per-node 2 --nodelist ")
