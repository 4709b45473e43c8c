"""Globus Compute's Executor, as its Executor user guide and the talk in shared/seeds write it,
with only the import changed (``from faas import Executor``), against the embedded default
endpoint: every constructor keyword, the settable properties, ``register_function`` /
``submit_to_registered_function``, and ``reload_tasks`` in a new process."""
from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from helpers import running_endpoint, wait_until

import faas
from faas import Client, Executor
from faas.exceptions import FunctionNotFound, SerializationError
from faas.serialize import ComputeSerializer, JSONData

ep_id = "local"


# -- the Executor user guide's examples ------------------------------------------------------

def double(x):
    return x * 2


def test_basic_example(home):
    tutorial_endpoint_id = ep_id
    with Executor(endpoint_id=tutorial_endpoint_id) as gce:
        fut = gce.submit(double, 7)
        assert fut.result() == 14
        assert isinstance(fut.task_id, str) and uuid.UUID(fut.task_id)


def generate_collatz_sequence(N: int, sequence_limit=10_000):
    seq = [N]
    while N != 1 and len(seq) < sequence_limit:
        if N % 2:
            N = 3 * N + 1
        else:
            N //= 2  # okay because guaranteed integer result
        seq.append(N)
    return seq


def test_multiple_function_invocations(home):
    generate_from = 1
    generate_through = 100
    futs, results, disproof_candidates = [], [], []
    with Executor(endpoint_id=ep_id) as gce:
        for n in range(generate_from, generate_through + 1):
            futs.append(gce.submit(generate_collatz_sequence, n))
    for f in futs:
        r = f.result()
        results.append(r)
        if r[-1] != 1:
            disproof_candidates.append(r[0])
    assert len(results) == 100 and not disproof_candidates
    assert results[5] == [6, 3, 10, 5, 16, 8, 4, 2, 1]


def generate_collatz_sequence_or_fail(N: int, sequence_limit=100):
    seq = [N]
    while N != 1 and len(seq) < sequence_limit:
        if N % 2:
            N = 3 * N + 1
        else:
            N //= 2
        seq.append(N)
    if N != 1:
        raise ValueError(f"Sequence not terminated in {sequence_limit} steps")
    return seq


def test_handling_exceptions(home):
    with Executor(endpoint_id=ep_id) as gce:
        future = gce.submit(generate_collatz_sequence_or_fail, 1234567890)
    assert future.done()          # the with block waited for it
    try:
        print(future.result())
        pytest.fail("the task should have raised")
    except Exception as exc:  # noqa: BLE001 - Globus's tutorial code, verbatim: the type is asserted next
        assert isinstance(exc, ValueError) and "not terminated in 100 steps" in str(exc)


def slow_double(x):
    import random
    import time
    time.sleep(x * random.random() / 20)
    return f"{x} -> {x * 2}"


def test_results_as_they_arrive(home):
    with Executor(endpoint_id=ep_id) as gce:
        futs = [gce.submit(lambda x: f"{x} -> {x * 2}", i) for i in range(10)]
        assert [f.result() for f in futs] == [f"{i} -> {i * 2}" for i in range(10)]
        futs = [gce.submit(slow_double, i) for i in range(10, 20)]
        received = [f.result() for f in concurrent.futures.as_completed(futs)]
        assert sorted(received) == sorted(f"{i} -> {i * 2}" for i in range(10, 20))


# -- reloading tasks: a process submits and dies; a new one gets the futures back -----------

SUBMITTER = textwrap.dedent("""
    import os, signal, sys, time
    from faas import Executor

    def task_kernel(num, delay):
        import time
        time.sleep(delay)
        return f"your Globus Compute logic result, from task: {num}"

    task_group_id, num_tasks = sys.argv[1], int(sys.argv[2])
    with Executor(endpoint_id="local", task_group_id=task_group_id) as gce:
        futures = [gce.submit(task_kernel, i + 1, 0.1 if i == 0 else 2.0) for i in range(num_tasks)]
        # Ensure all tasks have been sent upstream ...
        while gce.task_count_submitted < num_tasks:
            time.sleep(0.05)
        print(f"submitted {gce.task_count_submitted} to {gce.task_group_id}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)   # ... before script death
""")


def test_reload_tasks_in_a_new_process(home, tmp_path):
    script = tmp_path / "reload_me.py"
    script.write_text(SUBMITTER)
    task_group_id = str(uuid.uuid4())
    num_tasks = 5
    proc = subprocess.run([sys.executable, str(script), task_group_id, str(num_tasks)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert f"submitted {num_tasks} to {task_group_id}" in proc.stdout

    with Executor(endpoint_id=ep_id) as gce:
        gce.task_group_id = task_group_id
        futures = list(gce.reload_tasks())
        assert len(futures) == num_tasks and all(uuid.UUID(f.task_id) for f in futures)
        assert not all(f.done() for f in futures)         # the 2 s tasks are still running
        results, exceptions = [], []
        for f in futures:
            try:
                results.append(f.result(timeout=60))
            except Exception as exc:  # noqa: BLE001 - Globus's tutorial code: collects any task failure
                exceptions.append(exc)
    assert not exceptions
    assert sorted(results) == [f"your Globus Compute logic result, from task: {i}" for i in range(1, 6)]

    # once done, a reload completes every future at once, from the results in the store
    with Executor(endpoint_id=ep_id, task_group_id=task_group_id) as gce:
        again = gce.reload_tasks()
        assert all(f.done() for f in again) and sorted(f.result() for f in again) == sorted(results)


def test_reload_needs_a_task_group(home, caplog, monkeypatch):
    monkeypatch.setattr(Executor, "_default_task_group_id", None)   # a fresh process: none yet
    with Executor(endpoint_id=ep_id) as gce:
        assert gce.task_group_id is None
        with pytest.raises(ValueError, match="task_group_id"):
            gce.reload_tasks()
        with caplog.at_level(logging.WARNING, logger="faas.executor"):
            assert list(gce.reload_tasks(str(uuid.uuid4()))) == []
        assert "Received no tasks" in caplog.text


# -- every constructor keyword, and the properties ------------------------------------------

def test_every_globus_keyword_is_accepted(home, caplog):
    tg = uuid.uuid4()
    faas.executor._SAID.clear()   # each is said once a process: this test wants to hear them
    with caplog.at_level(logging.DEBUG, logger="faas.executor"):
        gce = Executor(endpoint_id=ep_id, client=Client(), task_group_id=tg, resource_specification=None,
                       user_endpoint_config=None, label="compat", batch_size=4, amqp_port=443,
                       api_burst_limit=2, api_burst_window_s=8, serializer=ComputeSerializer(),
                       result_serializers=[JSONData()])
    with gce:
        assert "amqp_port=443): no effect here" in caplog.text and "serializer: no effect here" in caplog.text
        assert repr(gce) == f"faas.Executor<compat; ep_id:local; tg_id:{tg}; bs:4>"
        assert gce.task_group_id == tg and gce.batch_size == 4 and gce.amqp_port == 443
        queue = gce.client.boto_client._endpoint_queue(ep_id)
        sends, send = [], queue.send
        queue.send = lambda bodies: (sends.append(len(bodies)), send(bodies))[1]   # watch each send
        try:   # map hands the sender its 10 tasks at once: without batch_size, one send of 10
            assert list(gce.map(double, range(10))) == [2 * i for i in range(10)]
        finally:
            del queue.send
        assert sends == [4, 4, 2]                        # batch_size acts: at most 4 tasks a send
        futs = [gce.submit(double, i) for i in range(5)]
        assert [f.result(timeout=60) for f in futs] == [2 * i for i in range(5)]
        wait_until(lambda: gce.task_count_submitted == 15, 10, "the tasks to be recorded in their group")
        records = gce.client.boto_client.group_tasks(str(tg))
        recorded = {t for _, _, ids in records.values() for t in ids}
        assert len(recorded) == 15 and {f.task_id for f in futs} <= recorded
    gce.client.close()


def test_serializer_and_result_serializers_are_checked_as_globus_checks_them(home):
    """Globus's Executor: ``serializer`` must be a ComputeSerializer (TypeError), each result
    serializer a known strategy (SerdeError, here SerializationError); both then have no effect."""
    with pytest.raises(TypeError, match="Expected ComputeSerializer, got object"):
        Executor(endpoint_id=ep_id, serializer=object())
    with pytest.raises(SerializationError, match="Invalid strategy-like"):
        Executor(endpoint_id=ep_id, result_serializers=[object()])
    with Executor(endpoint_id=ep_id, result_serializers=["faas.serialize.JSONData"]) as gce:
        with pytest.raises(TypeError, match="Expected ComputeSerializer, got str"):
            gce.serializer = "DillCode"
        assert gce.submit(double, 21).result() == 42


def test_properties_take_effect_for_later_submits(home):
    with running_endpoint(home, name="other"):
        with Executor(endpoint_id=ep_id) as gce:
            first = gce.submit(os.getenv, "FAAS_HOME")
            gce.endpoint_id = "other"
            assert gce.endpoint_id == "other"
            second = gce.submit(double, 21)
            new_tg = uuid.uuid4()
            gce.task_group_id = str(new_tg)
            assert gce.task_group_id == new_tg
            third = gce.submit(double, 1)
            assert first.result(timeout=60) and second.result(timeout=60) == 42 and third.result(timeout=60) == 2
            api = gce.client
            assert api.get_task(task_id=first.task_id)["endpoint"] == "local"
            assert api.get_task(task_id=second.task_id)["endpoint"] == "other"
            # a task is in its group's records once task_count_submitted counts it (<= 0.5 s)
            wait_until(lambda: gce.task_count_submitted == 3, 10, "the tasks to be recorded in their groups")
            assert [f.task_id for f in gce.reload_tasks()] == [third.task_id]   # the new group's
        with Executor(endpoint_id="other", task_group_id=new_tg) as fresh:
            assert [f.task_id for f in fresh.reload_tasks()] == [third.task_id]
        gce.resource_specification = {"num_nodes": 2, "ranks_per_node": 4}
        assert gce.resource_specification == {"num_nodes": 2, "ranks_per_node": 4}
        gce.user_endpoint_config = {"account": "abc"}
        assert gce.user_endpoint_config == {"account": "abc"}


def test_register_function_and_submit_to_registered_function(home):
    with Executor(endpoint_id=ep_id) as gce:
        fn_id = gce.register_function(double)
        with pytest.raises(ValueError, match="already registered"):
            gce.register_function(double)
        assert gce.register_function(double, function_id=fn_id) == fn_id
        futs = [gce.submit_to_registered_function(function_id=fn_id, args=(i,)) for i in range(5)]
        assert [f.result(timeout=60) for f in futs] == [0, 2, 4, 6, 8]
        assert gce.submit_to_registered_function(fn_id, kwargs={"x": 5}).result(timeout=60) == 10
        assert gce.submit(double, 3).result(timeout=60) == 6        # submit uses the registered id


# -- bad input -----------------------------------------------------------------------------

def test_bad_input(home):
    with pytest.raises(TypeError, match="did you mean 'task_group_id'"):
        Executor(endpoint_id=ep_id, task_grup_id=str(uuid.uuid4()))
    with pytest.raises(TypeError, match="did you mean 'amqp_port'"):
        Executor(amqp_prot=443)
    with pytest.raises(ValueError, match="task_group_id 'abc' is not a UUID"):
        Executor(endpoint_id=ep_id, task_group_id="abc")
    with pytest.raises(TypeError, match="resource_specification must be a dict"):
        Executor(endpoint_id=ep_id, resource_specification=[("num_nodes", 2)])
    with pytest.raises(TypeError, match="user_endpoint_config must be JSON-serializable"):
        Executor(endpoint_id=ep_id, user_endpoint_config={"x": object()})
    with pytest.raises(TypeError, match="endpoint_id must be"):
        Executor(endpoint_id=42)
    with pytest.raises(TypeError, match="client must be"):
        Executor(endpoint_id=ep_id, client="my-client")
    with pytest.raises(TypeError, match="batch_size must be an int"):
        Executor(endpoint_id=ep_id, batch_size="128")
    with Executor(endpoint_id=ep_id) as gce:
        with pytest.raises(FunctionNotFound):
            gce.submit_to_registered_function("0" * 64)
        with pytest.raises(TypeError, match="args: expected a tuple"):
            gce.submit_to_registered_function(gce.register_function(double), args=5)
        with pytest.raises(TypeError, match="kwargs: expected a dict"):
            gce.submit_to_registered_function(gce.register_function(generate_collatz_sequence), kwargs=[1])
        with pytest.raises(TypeError):
            gce.task_group_id = 12
    with pytest.raises(RuntimeError, match="shutdown"):
        gce.register_function(slow_double)
