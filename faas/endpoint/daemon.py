"""The endpoint daemon: registers the endpoint in the store, watches its queue, and drives the
provider (submit or cancel blocks). It never touches a task's payload; the dead-letter queue is
the one exception, so that a dead-lettered task's client learns why.

Run as ``python -m faas.endpoint.daemon NAME`` (what ``faas endpoint start`` does; the entry
point, which also picks the multi-user router for root, is faas/endpoint/__main__.py). The daemon
knows nothing of multi-user endpoints or flows: what those layers ask of a daemon (stop when
the router is gone, keep the flows runner up) comes in as ``should_stop`` and ``duties``.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import socket
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from .. import __version__, signing
from ..exceptions import StoreError, WorkerLost

# the endpoint's lock and pid file, as the chaos tests and older callers import them from here
from ..locks import AlreadyRunning, daemon_pid, is_running, lock_path, ready_path, setup_path  # noqa: F401
from ..messages import TaskMessage, dead_letter_key, result_key
from ..providers import BlockState, ProviderError, make_provider
from ..safe_open import replace_file
from ..store import create_queue, open_store
from . import config as ep_config
from . import outcomes, registry
from .server import EXIT_HOOK_FAILED, HookFailed, Server
from .strategy import BlockView, Limits, Observed, decide

log = logging.getLogger("faas.daemon")

PUBLISH_EVERY = 30.0
ENDED_KEPT = 10   # ended blocks listed by `faas endpoint status`


def run_hook(name: str, command: str, cwd: Path, beat=lambda: None, stop: threading.Event | None = None) -> int:
    """Run endpoint_setup / endpoint_teardown as Globus does (``/bin/sh -c``, its stdout and
    stderr logged); ``beat`` while it runs (it may take minutes: ``conda create``). Its exit code."""
    import subprocess
    import tempfile
    log.info("running %s: %s", name, command)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, shell=True, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        while True:
            try:
                code = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                beat()
                if stop is not None and stop.is_set():   # stopped while it runs: end it
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        for stream, f in (("stdout", out), ("stderr", err)):
            f.seek(0)
            text = f.read()[-20000:].decode(errors="replace").rstrip()
            if text:
                log.info("%s %s:\n%s", name, stream, text)
    if code:
        log.error("%s failed with exit code %d", name, code)
    return code


class Daemon(Server):
    cfg: ep_config.UserEndpointConfig

    def __init__(self, name: str, home: Path | None = None):
        super().__init__(name, home)
        self.cfg = ep_config.as_single_user(self.cfg)   # a multi-user endpoint's folder, run by a user
        #: asked each step: True stops the daemon (a user endpoint whose router is gone)
        self.should_stop: Callable[[], bool] = lambda: False
        #: called each step, each pacing itself (the flows runner's keeper on the embedded default)
        self.duties: list[Callable[[], None]] = []
        #: the endpoint's UUID (made here for an endpoint configured without one)
        self.endpoint_id = ep_config.endpoint_id(self.dir, create=True)
        self.exit_code = 0
        self.blocks_file = self.dir / "blocks.json"
        self.blocks: dict[str, dict] = {}   # block id -> {"job": job id, "keep_alive": bool}
        self.last_error: dict | None = None
        self.ended: list[dict] = []   # the last ENDED_KEPT blocks that ended, newest last (for status)
        self.last_states: dict[str, str] = {}   # job id -> block state, from the last status pass
        self.submit_after = 0.0
        self.submit_backoff = 0.0
        self.queue_busy_at = time.monotonic()
        self.cached_states: dict = {}
        self.states_at: float | None = None

    def record(self, status: str) -> dict:
        p = self.cfg.engine.provider
        return {"name": self.name, "endpoint_id": self.endpoint_id, "status": status, "queue": self.queue.url,
                "display_name": self.cfg.display_name or self.name, "host": socket.gethostname(), "pid": os.getpid(),
                "started_at": self.started_at, "provider": p.type,
                "max_workers_per_node": self.cfg.engine.max_workers_per_node,
                "nodes_per_block": p.nodes_per_block, "max_blocks": p.max_blocks,
                "blocks": len(self.blocks), "max_receives": self.cfg.max_receives, "version": __version__,
                # key ids are not secret (every signature names one): clients fail fast without one
                "signed_tasks": bool(self.keys), "signing_key_ids": sorted(self.keys),
                # None: any function may run (get_allowed_functions reads it from another machine)
                "allowed_functions": self.cfg.allowed_functions,
                "block_detail": self._block_detail()}

    def _block_detail(self) -> list[dict]:
        """Blocks as the last status pass saw them, for consoles on other machines (published
        with the record every PUBLISH_EVERY seconds: no extra store request)."""
        out = []
        for bid, b in sorted(self.blocks.items()):
            pools = self._pools(bid)
            workers = sum(p.get("workers") or 0 for p in pools)
            busy = sum(p.get("busy") or 0 for p in pools)
            out.append({"id": bid, "job": b["job"], "state": self.last_states.get(b["job"], "unknown"),
                        "keep_alive": b.get("keep_alive", False), "workers": workers, "busy": busy,
                        "idle": max(0, workers - busy), "pools": len(pools)})
        return out

    def run(self) -> int:
        self._lock()
        self.started_at = time.time()
        for note in self.cfg.no_effect_here:   # once, at each start: never silent
            log.warning("no effect here: %s", note)
        for note in self.cfg.chosen_here:
            log.info("chosen: %s", note)
        if log.isEnabledFor(logging.DEBUG):   # Globus's sentinel lines, for the same `sed -n` recipe
            text = (self.dir / "config.yaml").read_text(errors="replace").rstrip("\n")
            log.debug("Begin Compute endpoint configuration (%d lines):\n%s\nEnd Compute endpoint "
                      "configuration", text.count("\n") + 1, text)
        if self.cfg.endpoint_setup:
            setup_path(self.dir).write_text(str(os.getpid()))
            try:
                code = run_hook("endpoint_setup", self.cfg.endpoint_setup, self.dir, self.beat, self.stop_event)
            finally:
                setup_path(self.dir).unlink(missing_ok=True)
            if self.stop_event.is_set():
                log.info("stopped while endpoint_setup ran: not starting")
                return 0
            if code:
                raise HookFailed(f"endpoint_setup failed with exit code {code} (its output is in "
                                 f"{self.dir / 'endpoint.log'}); the endpoint does not start")
        self.store = open_store(self.cfg.store)
        self.queue = create_queue(self.cfg.queue_url(self.name, self.home),
                                  max_receives=self.cfg.max_receives,
                                  visibility_timeout=self.cfg.visibility_timeout)
        self.dlq = self.queue.dead_letters()
        self.keys = self.cfg.keyring(self.dir)
        if not self.keys:
            log.warning("task signing is off (no signing_keys): anyone who can send to %s can run "
                        "code as this user; see `faas endpoint configure --signing-key`", self.queue.url)
        self.provider = make_provider(self.cfg.engine.provider, self.dir)
        self._check_container()
        self._adopt()
        p = self.cfg.engine.provider
        for _ in range(max(p.init_blocks - len(self.blocks), 0)):
            if not self._submit():
                break
        self._save_blocks()
        self._write_status()
        self._publish("running", at_start=True)
        self._ready()
        log.info("endpoint %s started (pid %d, id %s): store %s, queue %s", self.name, os.getpid(),
                 self.endpoint_id, self.cfg.store, self.queue.url)
        last_publish = time.monotonic()
        while not self.stop_event.is_set():
            self.beat()
            try:
                if self.should_stop():
                    self.stop_event.set()
                    break
                self._step()
                if time.monotonic() - last_publish > PUBLISH_EVERY:
                    self._publish("running")
                    last_publish = time.monotonic()
            except Exception as e:  # noqa: BLE001 - a flaky store or queue must not end the endpoint
                log.exception("scaling step failed: %s", e)
            for duty in self.duties:
                try:
                    duty()
                except Exception as e:  # noqa: BLE001 - a duty for another layer never stops scaling
                    log.exception("%s failed: %s", getattr(duty, "__name__", duty), e)
            self.stop_event.wait(self.cfg.strategy_period)
        self.unwatch()   # stopping: its own bounds (stop_grace) apply from here
        self._shutdown()
        return self.exit_code

    # -- blocks ---------------------------------------------------------------------------
    def _save_blocks(self) -> None:
        replace_file(self.blocks_file, json.dumps(self.blocks))

    def _adopt(self) -> None:
        """Blocks a previous daemon started and that still run are ours now (no double submit)."""
        try:
            old = json.loads(self.blocks_file.read_text())
        except (OSError, ValueError):
            return
        try:
            states = self.provider.status([b["job"] for b in old.values()])
        except ProviderError as e:   # keep them: the next steps will learn their state
            self._error(f"reading the state of earlier blocks failed: {e}")
            states = {}
        self.blocks = {bid: b for bid, b in old.items() if states.get(b["job"], BlockState.UNKNOWN).active}
        if self.blocks:
            log.info("adopted running blocks %s", sorted(self.blocks))
        self._save_blocks()

    def _pool_command(self, block_id: str, keep: bool) -> str:
        p = self.cfg.engine.provider
        cmd = (f"{shlex.quote(sys.executable)} -m faas.endpoint.pool --endpoint-dir "
               f"{shlex.quote(str(self.dir))} --block-id {block_id}")
        if keep:
            cmd += " --keep-alive"
        if p.walltime_s:
            cmd += f" --walltime {p.walltime_s} --walltime-margin {p.walltime_margin:g}"
        if self.cfg.engine.container_type == "none":
            return cmd
        from ..providers import containers
        mounts = containers.required_mounts(self.cfg, self.home, self.name, block_id)
        return containers.wrap(self.cfg.engine, cmd, mounts=mounts.writable, read_only=mounts.read_only)

    def _check_container(self) -> None:
        """A container the blocks could not be wrapped in (a working_dir that holds what is
        mounted read-only, a mount path the runtime cannot bind) stops the start, saying why,
        rather than each block's submission."""
        if self.cfg.engine.container_type != "none":
            from ..providers import containers
            mounts = containers.required_mounts(self.cfg, self.home, self.name, "block-check", create=False)
            containers.wrap(self.cfg.engine, "true", mounts=mounts.writable, read_only=mounts.read_only)

    def _submit(self) -> bool:
        """Submit one block; on a scheduler error, log it, show it in ``faas endpoint status``,
        and back off (the daemon keeps running and tries again)."""
        if time.monotonic() < self.submit_after:
            return False
        keep = sum(1 for b in self.blocks.values() if b["keep_alive"]) < self.cfg.engine.provider.min_blocks
        block_id = f"block-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        try:
            job = self.provider.submit(self._pool_command(block_id, keep), block_id)
        except ProviderError as e:
            self.submit_backoff = min(max(self.submit_backoff * 2, 2.0), 120.0)
            self.submit_after = time.monotonic() + self.submit_backoff
            self._error(f"submitting a block failed: {e} (next try in {self.submit_backoff:.0f} s)")
            return False
        self.submit_backoff = 0.0
        self.blocks[block_id] = {"job": job, "keep_alive": keep, "submitted": time.time()}
        self._save_blocks()
        self._clear_error("submit")
        log.info("submitted %s (job %s%s)", block_id, job, ", keep-alive" if keep else "")
        return True

    def _publish(self, status: str, at_start: bool = False) -> None:
        """The endpoint's record in the store. One that another account's entry holds (in a
        shared store's ``endpoints/``, 1777, a folder of its name made first) is a reported
        error, retried each PUBLISH_EVERY: the endpoint still serves its queue (a multi-user
        endpoint routes to it without the record), and is not stopped by a stranger. Any other
        failure at start (a store it cannot write, wrong credentials) stops the start, as before."""
        try:
            registry.publish(self.store, self.record(status), self.keys.values())
        except StoreError as e:
            if at_start and not self._record_held_by_another():
                raise
            self._error(f"cannot publish the endpoint's record (clients look it up there): {e}")
        else:
            self._clear_error("cannot publish the endpoint's record")

    def _record_held_by_another(self) -> bool:
        """Whether the record's place in a file store is taken by something not ours to replace."""
        root = getattr(self.store, "root", None)
        if root is None:
            return False
        try:
            st = os.lstat(os.path.join(root, "endpoints", f"{self.name}.json"))
        except OSError:
            return False
        return not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()

    def _error(self, text: str) -> None:
        log.error("%s", text)
        self.last_error = {"time": time.time(), "error": text}
        self._write_status()

    def _clear_error(self, what: str) -> None:
        if self.last_error and what in self.last_error["error"]:
            self.last_error = None
            self._write_status()

    def _write_status(self, states: dict | None = None) -> None:
        """``daemon.status.json``: what ``faas endpoint status`` shows (blocks, last error)."""
        if states:
            self.last_states = {j: str(getattr(v, "value", v)) for j, v in states.items()}
        status = {"pid": os.getpid(), "time": time.time(), "last_error": self.last_error,
                  "blocks": {bid: dict(b, state=(states or {}).get(b["job"], "unknown"))
                             for bid, b in self.blocks.items()},
                  "ended_blocks": self.ended}
        replace_file(self.dir / "daemon.status.json", json.dumps(status, default=str))

    def _pools(self, block_id: str) -> list[dict]:
        out = []
        for f in (self.dir / "blocks" / block_id).glob("**/status.json"):
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def _view(self, block_id: str, b: dict, state: BlockState) -> BlockView:
        pools = self._pools(block_id)
        if state == BlockState.PENDING:
            kind = "pending"
        elif any(p.get("state") == "draining" for p in pools):
            kind = "draining"
        else:
            kind = "running"
        idle = None
        # every pool of the block has told its state (how many a node runs: its pools' word)
        per_node = max((p.get("pools_on_node", 1) for p in pools), default=1)
        if pools and len(pools) >= self.cfg.engine.pools_per_block * per_node and all(
                p.get("busy", 1) == 0 and p.get("held", 1) == 0 for p in pools):
            idle = min(p.get("idle_for", 0.0) + (time.time() - p.get("time", time.time())) for p in pools)
        return BlockView(id=block_id, state=kind, idle_for=idle, keep_alive=b.get("keep_alive", False))

    def _states(self) -> dict:
        """Block states, asked of the scheduler at most every ``status_interval`` seconds
        (and at once after a submit or cancel)."""
        now = time.monotonic()
        jobs = [b["job"] for b in self.blocks.values()]
        if self.states_at is None or now - self.states_at >= self.provider.status_interval \
                or set(jobs) - set(self.cached_states):
            self.cached_states = self.provider.status(jobs)
            self.states_at = now
        return self.cached_states

    def _step(self) -> None:
        try:
            states = self._states()
            self._clear_error("block status")
        except ProviderError as e:
            self._error(f"reading block status failed: {e}")
            return
        for bid, b in list(self.blocks.items()):
            st = states.get(b["job"], BlockState.UNKNOWN)
            if not st.active:
                log.info("block %s ended: %s (%s)", bid, st.value, st.meaning)
                self.ended = self.ended[-(ENDED_KEPT - 1):] + [
                    {"block": bid, "job": b["job"], "state": st.value, "meaning": st.meaning, "time": time.time()}]
                del self.blocks[bid]
                self._save_blocks()
        depth = self.queue.depth()
        load = depth["visible"] + depth["in_flight"]
        now = time.monotonic()
        if load:
            self.queue_busy_at = now
        p = self.cfg.engine.provider
        obs = Observed(visible=depth["visible"], in_flight=depth["in_flight"],
                       blocks=tuple(self._view(bid, b, states.get(b["job"], BlockState.UNKNOWN))
                                    for bid, b in self.blocks.items()),
                       queue_idle_for=now - self.queue_busy_at)
        decision = decide(obs, Limits(min_blocks=p.min_blocks, max_blocks=p.max_blocks,
                                      workers_per_block=self.cfg.engine.workers_per_block,
                                      parallelism=p.parallelism,
                                      max_idle_time=self.cfg.engine.max_idle_time))
        if decision.cancel:
            self.states_at = None
            jobs = [self.blocks[bid]["job"] for bid in decision.cancel]
            log.info("cancelling idle block(s) %s", ", ".join(decision.cancel))
            try:
                self.provider.cancel(jobs)
                self._clear_error("cancel")
            except ProviderError as e:
                self._error(f"cancelling blocks failed: {e}")
        for _ in range(decision.submit):
            if not self._submit():
                break
        self._write_status({self.blocks[v.id]["job"]: v.state for v in obs.blocks if v.id in self.blocks})
        self._drain_dead_letters()

    def _drain_dead_letters(self) -> None:
        """Fail each dead-lettered task for its client, keep its message in the store, and empty
        the dead-letter queue, so a task is never silently stuck there."""
        for m in self.dlq.receive(max_messages=10, wait=0):
            try:
                fields = json.loads(m.body)
                task = TaskMessage.model_validate(fields)
                why = signing.check_signature(fields, self.keys) if self.keys else None
            except Exception as e:  # noqa: BLE001 - a malformed message: keep it for inspection
                why = f"malformed: {e}"
            if why is not None:   # an unproven task id: keep the message, write no result for it
                outcomes.set_aside(self.store, m.id, why, m.body)
                log.error("dead letter %s set aside without a result: %s", m.id, why)
                self.dlq.delete([m.receipt])
                continue
            if not self.store.exists(result_key(task.id, task.cid)):
                outcomes.keep_dead_letter(self.store, task.id, m.body)
                err = WorkerLost(
                    f"task {task.id} was dead-lettered after {self.cfg.max_receives} deliveries "
                    f"without a result (its worker pool died or was killed each time); its message "
                    f"is kept at {dead_letter_key(task.id)} in the store", task_id=task.id)
                outcomes.fail_for_client(self.store, task, err, endpoint=self.name)
                log.error("task %s dead-lettered: failed for its client", task.id)
            self.dlq.delete([m.receipt])

    def _shutdown(self) -> None:
        self._not_ready()
        log.info("stopping: asking %d block(s) to hand back their tasks", len(self.blocks))
        jobs = [b["job"] for b in self.blocks.values()]
        deadline = time.monotonic() + self.cfg.stop_grace + 15
        try:
            if jobs:
                self.provider.cancel(jobs)
            while jobs and time.monotonic() < deadline:
                states = self.provider.status(jobs)
                jobs = [j for j in jobs if states[j].active]
                time.sleep(0.1 if self.cfg.engine.provider.type == "local" else 1.0)
        except ProviderError as e:
            log.error("stopping blocks: %s", e)
        if jobs:
            log.warning("blocks %s did not stop in time", jobs)
        self.blocks = {}
        self._save_blocks()
        self._publish("stopped")
        if self.cfg.endpoint_teardown and run_hook("endpoint_teardown", self.cfg.endpoint_teardown, self.dir):
            self.exit_code = EXIT_HOOK_FAILED
        log.info("endpoint %s stopped", self.name)


if __name__ == "__main__":   # the process keeps this name (see faas/endpoint/__main__.py)
    from faas.endpoint.__main__ import main
    sys.exit(main())
