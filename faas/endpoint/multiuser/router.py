"""The root side of a multi-user endpoint: take each task from the transport with an identity
its sender cannot choose, map it to a local account, refuse it (a clear error on the client's
future and a line in the audit log) or hand it to that user's endpoint, started on demand.

Root only routes: it reads the message's plain JSON fields (id, function id, reply queue,
``uec`` variables) and never loads a payload, nor runs anything of a user's.
"""
from __future__ import annotations

import json
import logging
import math
import os
import pwd
import time
from pathlib import Path

import yaml

from ... import safe_open, serialize
from ...exceptions import ConfigError, FunctionNotAllowed
from ...messages import TaskMessage, cancel_key, result_key
from ...store import KeyNotFound, open_store
from .. import config as ep_config
from .. import outcomes, registry
from ..server import Server
from . import files, lifecycle, spool, templates, user_endpoints
from .audit import AuditLog
from .errors import TaskRefused  # noqa: F401 - re-exported
from .mapping import IdentityMapper, Mapped
from .privileges import AsUser
from .transports import Incoming, SignedQueueTransport, SpoolTransport
from .user_endpoints import UserEndpoint

log = logging.getLogger("faas.multiuser.router")

STATE = files.STATE
STATUS = "multiuser.status.json"
#: one line per block a user endpoint ran (user, node_seconds): the node-hours of ``usage``
BLOCKS_LOG = "blocks.log"
#: the most root reads of a user's result (its header) and of a user endpoint's status file
HEADER_LIMIT = 1 << 20
STATUS_LIMIT = 1 << 20
#: the most root reads of a user endpoint's config.yaml (to see which store it serves)
CONFIG_LIMIT = 1 << 16
#: seconds a step waits for a hand-over it started (most take milliseconds: acknowledged in the
#: same step); longer ones are looked at on later steps, never waited for
HAND_OVER_GLANCE = 0.5
#: seconds a user endpoint's tasks wait in the spool after a hand-over to it failed
HAND_OVER_BACKOFF = 10.0
#: seconds a child telling a sender of its refused tasks may take before it is killed
TELL_TIMEOUT = 30.0
#: the longest block id root takes from a user endpoint's status file (its own are ~10 characters)
BLOCK_ID_LIMIT = 64




class Router(Server):
    cfg: ep_config.ManagerEndpointConfig

    def __init__(self, name: str, home: Path | None = None):
        super().__init__(name, home)
        if not isinstance(self.cfg, ep_config.ManagerEndpointConfig):   # its template went since start began
            raise ConfigError(f"{self.dir / 'config.yaml'}: endpoint {name} is not multi-user (no "
                              f"{files.TEMPLATE} beside it); `faas endpoint configure {name} --multi-user` "
                              f"writes one")
        self.mapper = IdentityMapper(self._path(self.cfg.identity_mapping_path),
                                     self.cfg.allowed_users, self.cfg.denied_users, endpoint_id=self.name)
        self.schema = templates.load_schema(self.dir / files.SCHEMA)
        self.template = files.read_template(self.dir)
        self.environment = files.read_environment(self.dir)
        self.endpoints: dict[str, UserEndpoint] = {}
        self.seen: dict[str, str] = {}    # recent task id -> identity (a reused id is refused)
        self.last_publish = 0.0
        self.last_check = 0.0
        self.handing: dict[str, tuple] = {}   # user endpoint key -> (its hand-over's child, its (entry, task)s)
        self.refusals: dict[int, list] = {}   # sender's uid -> (task id, deliver) told after this step
        self.telling: dict[int, AsUser] = {}  # sender's uid -> the child telling it its refusals
        self.hand_over_after: dict[str, float] = {}   # user endpoint key -> no hand-over before (monotonic)
        self.nodes_per_block: dict[str, int] = {}   # user endpoint key -> nodes per block (_nodes)
        self.block_warned: set[str] = set()          # user endpoints whose extra blocks were logged
        # this root endpoint's site: its user endpoints' names carry it; a running user endpoint
        # of another site (same name, another store or queue) is never taken as ours
        self.site = lifecycle.site_tag(self.name, self.cfg.store, self.cfg.queue_url(self.name, self.home))
        self.stamp = lifecycle.router_stamp(self.name, self.site)

    def _path(self, p: str) -> Path:
        return Path(p) if os.path.isabs(p) else self.dir / p

    # -- lifecycle ----------------------------------------------------------------------
    def record(self, status: str) -> dict:
        return {"name": self.name, "status": status, "multi_user": True,
                "endpoint_id": ep_config.endpoint_id(self.dir, create=True),
                "queue": self.transport.address, "display_name": self.cfg.display_name,
                "host": os.uname().nodename, "pid": os.getpid(), "started_at": self.started_at,
                "user_endpoints": sum(1 for u in self.endpoints.values() if u.state == "running")}

    def _record_keys(self) -> list:
        """The per-user signing keys (S3/SQS): each user's client checks the record's MAC under
        its own (faas/endpoint/registry.py); the spool's clients check who wrote the file."""
        return [k for _, k in getattr(self.transport, "keys", {}).values() if k is not None]

    def run(self) -> int:
        self._lock()
        self.started_at = time.time()
        for note in self.cfg.no_effect_here:   # Globus's manager keys (public, pam, ...): never silent
            log.warning("no effect here: %s", note)
        self.store = open_store(self.cfg.store)
        self.transport: SpoolTransport | SignedQueueTransport
        if spool.store_root(self.cfg.store) is not None:   # shared file store: the writer's uid
            self.transport = SpoolTransport(self.cfg.store, self.name, self.dir)
        else:                                                 # S3/SQS: per-user signatures
            self.transport = SignedQueueTransport(self.cfg.queue_url(self.name, self.home), self.dir, self.store,
                                                  self.cfg.max_receives, self.cfg.visibility_timeout)
        self.audit = AuditLog(self._path(self.cfg.audit_log_path))
        self.blocks_log = AuditLog(self.dir / BLOCKS_LOG)
        self._load_state()
        registry.publish(self.store, self.record("running"), self._record_keys())
        self.last_publish = time.monotonic()
        self._ready()
        log.info("endpoint %s started multi-user (pid %d): tasks from %s, store %s, %d user endpoint(s) known",
                 self.name, os.getpid(), self.transport.address, self.cfg.store, len(self.endpoints))
        while not self.stop_event.is_set():
            self.beat()
            try:
                busy = self.step()
            except Exception as e:  # noqa: BLE001 - one bad step must not end the endpoint
                log.exception("routing step failed: %s", e)
                busy = False
            if not busy:
                self.transport.wait(self.stop_event)
        self.unwatch()   # stopping: its own bounds (stop_grace) apply from here
        self._shutdown()
        return 0

    def _shutdown(self) -> None:
        self._not_ready()
        deadline = time.monotonic() + HAND_OVER_GLANCE * 10
        for key in list(self.handing):   # what was handed over is acknowledged; the rest stays in the spool
            if not self._handed_over(key, wait=max(0.0, deadline - time.monotonic())):
                self.handing.pop(key)[0].kill()
        self._told(until=deadline)
        for child in self.telling.values():
            child.kill()
        self._stop_all()
        self._save_state()
        self._write_status()
        registry.publish(self.store, self.record("stopped"), self._record_keys())
        self.audit.close()
        self.blocks_log.close()
        log.info("endpoint %s stopped", self.name)

    def _stop_all(self) -> None:
        """Stop every user endpoint at once (each hands back what its pools hold) and wait for
        them together: one that does not stop is killed at its own deadline."""
        for ue in self.endpoints.values():
            if ue.state == "running":
                user_endpoints.begin_stop(ue, self.cfg.stop_grace + 45)
        stopping = [ue for ue in self.endpoints.values() if ue.state == "stopping"]
        while stopping:
            stopping = [ue for ue in stopping if not user_endpoints.check_stop(ue)]
            if stopping:
                time.sleep(0.05)

    # -- state ----------------------------------------------------------------------------
    def _load_state(self) -> None:
        try:
            data = json.loads((self.dir / STATE).read_text())
        except (OSError, ValueError):
            data = {}
        for key, d in data.get("endpoints", {}).items():
            try:
                ue = UserEndpoint(**d)
            except TypeError as exc:
                log.error("user endpoint %s in %s not understood (%s): forgotten", key, STATE, exc)
                continue
            # task id -> [function id, client id]; a state from before client ids cannot be checked
            ue.outstanding = {t: v for t, v in ue.outstanding.items() if isinstance(v, list) and len(v) == 2}
            if ue.state in ("running", "stopping") and not user_endpoints.running(ue):
                ue.state, ue.pid, ue.stop_deadline = "stopped", None, None
            why = self._not_ours(ue)
            if why is not None:
                self._forget(ue, why)
                continue
            # an old name: this site's from now on
            if ue.site is None and ue.state != "running" and not ue.outstanding:
                ue.name = lifecycle.user_endpoint_name(self.name, self.site, ue.uid, ue.vhash)
            ue.site = self.site
            if ue.state == "running":
                log.info("adopted the running user endpoint %s of %s (pid %s)", ue.name, ue.user, ue.pid)
                self._claim(ue)
            self.endpoints[key] = ue
        self.seen = data.get("seen", {})

    def _not_ours(self, ue: UserEndpoint) -> str | None:
        """Why the user endpoint ``ue`` (from the state, or found running under its name) is
        not this site's, or None. A user endpoint serves this site when it was started for it
        (its name and record carry the site) and its config.yaml names this endpoint's store
        and the user endpoint's own local queue (what ``_render`` writes)."""
        if ue.site is not None and ue.site != self.site:
            return (f"it was started for another site ({ue.site}; this endpoint's is {self.site}: "
                    f"another store or queue)")
        if ue.site is None and ue.state != "running" and not ue.outstanding:
            return None   # from before sites were recorded, and nothing waits in it: ours from now on
        try:   # the user's file, in the user's home: no link followed, bounded, plain data only
            rel = str((ue.dir / "config.yaml").relative_to(ue.home))
            raw = yaml.safe_load(safe_open.read_beneath(ue.home, rel, CONFIG_LIMIT))
        except Exception as exc:  # noqa: BLE001 - anything a user could plant there: not ours
            return f"its config.yaml cannot be read ({type(exc).__name__}: {exc})"
        if not isinstance(raw, dict):
            return "its config.yaml is not a mapping"
        if raw.get("store") != self.cfg.store or raw.get("queue", "local") != "local":
            return (f"it serves store {raw.get('store')!r} and queue {raw.get('queue', 'local')!r}, not this "
                    f"endpoint's store {self.cfg.store!r} and a local queue")
        return None

    def _forget(self, ue: UserEndpoint, why: str) -> None:
        """Not adopted: left running, if it runs. It may belong to another root endpoint of the
        same name that still runs (stopping it would break that site); if its own router is
        gone, it stops by itself after FAAS_ROUTER_GONE_GRACE. Its tasks are its site's."""
        if ue.state == "running":
            log.warning("not adopting the running user endpoint %s of %s (pid %s): %s. It is left running: "
                        "its own root endpoint may still run (if not, it stops by itself once that one has "
                        "been gone for %s); this endpoint starts its own for %s's next task%s",
                        ue.name, ue.user, ue.pid, why, lifecycle.GONE_GRACE_ENV, ue.user,
                        f"; {len(ue.outstanding)} task(s) handed to it stay with it" if ue.outstanding else "")
        else:
            log.info("forgetting the stopped user endpoint %s of %s: %s", ue.name, ue.user, why)

    def _claim(self, ue: UserEndpoint) -> None:
        ok, why = user_endpoints.claim(ue, self.stamp)
        if not ok:
            ue.last_error = f"could not tell it which router it has now: {why}"
            log.warning("user endpoint %s of %s: %s; it stops by itself once the router that started it "
                        "has been gone for %s", ue.name, ue.user, ue.last_error, lifecycle.GONE_GRACE_ENV)

    def _start(self, ue: UserEndpoint, config: dict) -> None:
        """Start ``ue``; a daemon of that name already running as the user (a router whose
        state was lost, or one of another site under an old name) is adopted if it serves this
        site, else the start fails with why (the task is refused, not sent to a stranger)."""
        others = lifecycle.daemon_pids(ue.name, ue.uid)
        if others:
            found = UserEndpoint(**{**ue.to_json(), "pid": others[0], "state": "running", "site": None})
            why = self._not_ours(found)
            if why is not None:
                raise OSError(f"a user endpoint named {ue.name} already runs as {ue.user} (pid {others[0]}) "
                              f"and is not this endpoint's: {why}; stop it, or wait until it stops")
            ue.pid, ue.state, ue.started_at, ue.last_error = others[0], "running", time.time(), None
            ue.last_activity, ue.site = time.time(), self.site
            log.info("adopted the running user endpoint %s of %s (pid %s), found running", ue.name, ue.user, ue.pid)
            self._claim(ue)
            return
        ue.site = self.site
        user_endpoints.start(ue, config, self.environment, router=self.stamp)

    def _save_state(self) -> None:
        if len(self.seen) > 20_000:   # keep the newest half (an id is reused within minutes, if ever)
            self.seen = dict(list(self.seen.items())[10_000:])
        write_private(self.dir / STATE, json.dumps({"endpoints": {k: u.to_json() for k, u in self.endpoints.items()},
                                                    "seen": self.seen}))

    # -- one step ---------------------------------------------------------------------------
    def step(self) -> bool:
        self.mapper.reload_if_changed()
        settled = [key for key in list(self.handing) if self._handed_over(key)]
        self._told()
        entries = self.transport.take()
        batches: dict[str, list] = {}
        for e in entries:
            self._take(e, batches)
        self._tell_refused()
        for key, items in batches.items():
            self._deliver(self.endpoints[key], items)
        now = time.monotonic()
        if now - self.last_check >= 1.0 or batches:
            self.last_check = now
            self._check_endpoints()
        if batches or settled:
            self._save_state()
        if now - self.last_publish > 30:
            registry.publish(self.store, self.record("running"), self._record_keys())
            self.last_publish = now
        return bool(entries) and bool(batches)

    def _take(self, e: Incoming, batches: dict) -> None:
        """Route one message. Whatever goes wrong while handling it (a bug, a value that breaks
        a library: RecursionError, MemoryError) sets that message aside, with the reason, and
        routing goes on: one message left in the spool would be taken again, and fail again,
        on every step, before every other user's."""
        try:
            self._route(e, batches)
        except Exception as exc:  # noqa: BLE001 - one message never stops routing for everyone
            log.exception("handling message %s from %s failed", e.label, e.identity)
            self._set_aside(e, e.identity, f"handling it failed ({type(exc).__name__}: {str(exc)[:500]}); "
                                           f"it was set aside so that routing goes on")

    def _route(self, e: Incoming, batches: dict) -> None:
        identity = e.identity
        if e.problem:
            self._set_aside(e, identity, e.problem)
            return
        assert e.body is not None   # every transport gives one to a message without a problem
        try:
            fields = json.loads(e.body)
            task = TaskMessage.model_validate(fields)
        except Exception as exc:  # noqa: BLE001 - whatever the sender wrote, it is set aside, never run
            self._set_aside(e, identity, f"not a task message: {exc}")
            return
        earlier = self.seen.get(task.id)
        if earlier is not None and earlier != identity:
            self._set_aside(e, identity, f"task id {task.id} was already used by another identity")
            return
        mapped = self.mapper.map(identity)
        if mapped.user is None:
            return self._refuse(e, task, mapped, mapped.why)
        if self.cfg.allowed_functions is not None and task.fn not in self.cfg.allowed_functions:
            return self._refuse(e, task, mapped, f"function {task.fn} is not in this endpoint's "
                                                 f"allowed_functions; ask its administrator to add it",
                                FunctionNotAllowed)
        try:
            if task.res is not None:   # passed on to the user endpoint: bounded like the variables
                templates.check_shape(task.res, "resource_specification")
            variables = templates.check_variables(fields.get("uec"), self.schema)
            ue = self._endpoint_for(mapped, variables)
        except (ConfigError, OSError) as exc:   # OSError: the user endpoint could not start
            return self._refuse(e, task, mapped, str(exc))
        if ue is None:   # over max_user_endpoints, and the policy is to wait: stays in the spool
            return
        if ue.key in self.handing or time.monotonic() < self.hand_over_after.get(ue.key, 0.0):
            return   # a hand-over to it runs (this message may be in it), or failed lately: stays in the spool
        self.seen[task.id] = identity
        batches.setdefault(ue.key, []).append((e, task))

    def _endpoint_for(self, mapped: Mapped, variables: dict) -> UserEndpoint | None:
        user, uid, gid, home = mapped.user, mapped.uid, mapped.gid, mapped.home
        # _take refused an identity that maps to no account; one that maps has all four
        assert user is not None and uid is not None and gid is not None and home is not None
        vhash = templates.variables_hash(variables)
        key = f"{user}/{vhash}"
        ue = self.endpoints.get(key)
        if ue is not None and ue.state == "stopping":   # its tasks wait in the spool until it stopped
            return None
        if ue is None:
            ue = UserEndpoint(key=key, name=lifecycle.user_endpoint_name(self.name, self.site, uid, vhash),
                              user=user, uid=uid, gid=gid, home=home,
                              variables=variables, vhash=vhash, site=self.site, identity=mapped.identity)
        if ue.state != "running" or not user_endpoints.running(ue):
            active = [u for u in self.endpoints.values() if u.state in ("running", "stopping") and u.key != key]
            why = None
            if len(active) >= self.cfg.max_user_endpoints:
                why = (f"this endpoint runs its limit of {self.cfg.max_user_endpoints} user endpoints "
                       f"(max_user_endpoints)")
            elif sum(1 for u in active if u.uid == uid) >= self.cfg.max_user_endpoints_per_user:
                why = (f"{user} runs the limit of {self.cfg.max_user_endpoints_per_user} user endpoints of "
                       f"one user (max_user_endpoints_per_user; each set of variables is one)")
            if why is not None:
                if self.cfg.over_limit == "refuse":
                    raise ConfigError(why + "; try again later")
                return None
            config = self._render(ue)   # a refused config refuses the task: nothing started
            self.endpoints[key] = ue
            self._start(ue, config)
        self.endpoints[key] = ue
        return ue

    def _render(self, ue: UserEndpoint) -> dict:
        reserved = templates.reserved(self.name, ue.user, ue.uid, ue.home, parent_config=self.cfg,
                                      identity=ue.identity)
        return templates.user_config(self.template, ue.variables, reserved, store=self.cfg.store,
                                     max_blocks=self.cfg.max_blocks_per_user,
                                     allowed_functions=self.cfg.allowed_functions,
                                     template_path=str(self.dir / files.TEMPLATE))

    def _deliver(self, ue: UserEndpoint, items: list) -> None:
        """Hand the tasks over in a child running as the user, looked at on later steps
        (:meth:`_handed_over`): the router never waits on a user's queue."""
        child = user_endpoints.begin_hand_over(ue, [e.body for e, _ in items], self.cfg.max_receives,
                                               self.cfg.visibility_timeout)
        self.handing[ue.key] = (child, items)
        self._handed_over(ue.key, wait=HAND_OVER_GLANCE)

    def _handed_over(self, key: str, wait: float = 0.0) -> bool:
        """Settle the hand-over to the user endpoint ``key`` if it has ended: its messages
        acknowledged, or (it failed, or took too long) left in the spool for a later try, and
        that user endpoint's tasks wait HAND_OVER_BACKOFF meanwhile. True once settled."""
        child, items = self.handing[key]
        outcome = child.poll(wait)
        if outcome is None:
            return False
        del self.handing[key]
        ue = self.endpoints.get(key)
        ok, why = outcome
        if not ok:   # the messages stay in the spool: a later step tries again
            if ue is not None:
                ue.last_error = f"handing tasks over failed: {why}"
                log.error("user endpoint %s: %s; its tasks wait %.0f s in the spool", ue.name,
                          ue.last_error, HAND_OVER_BACKOFF)
            self.hand_over_after[key] = time.monotonic() + HAND_OVER_BACKOFF
            return True
        for e, task in items:
            if ue is not None:
                ue.outstanding[task.id] = [task.fn, task.cid]
                ue.routed += 1
            e.ack()
        if ue is not None:
            ue.last_activity = time.time()
        return True

    # -- refusals ----------------------------------------------------------------------------
    def _set_aside(self, e: Incoming, identity: str, why: str) -> None:
        """A message whose sender or task id cannot be trusted: no result is written for it (it
        could be someone else's task id); it is kept out of the way for inspection (or, if
        that fails, removed: a message left in place would come back on every step)."""
        try:
            e.aside(why)
        except Exception as exc:  # noqa: BLE001 - a message that cannot be moved is dropped
            log.error("message %s could not be set aside (%s: %s): removed", e.label, type(exc).__name__, exc)
            try:
                e.ack()
            except Exception as exc2:  # noqa: BLE001 - logged; the next step tries again
                log.error("message %s could not be removed either: %s: %s", e.label, type(exc2).__name__, exc2)
        log.error("message %s set aside (from %s): %s", e.label, identity, why)
        self.audit.write(identity=identity, user=None, function=None, task=e.label, outcome="refused", reason=why)

    def _refuse(self, e: Incoming, task: TaskMessage, mapped: Mapped, why: str,
                kind: type = TaskRefused) -> None:
        err = kind(f"task {task.id} refused by multi-user endpoint {self.name!r}: {why}", task_id=task.id,
                   remote_type=serialize.type_name(kind))
        # From the spool, the store's folders and the local reply queue are the sender's ground:
        # root writes nothing there itself (a link planted in them would aim root's write
        # anywhere); a child dropped to the sender writes the result and the notice. From a
        # signed queue (S3/SQS), root writes to the store and the reply queue the signature covers.
        local_reply = task.reply is not None and task.reply.startswith("local:")

        def deliver(store) -> None:
            outcomes.fail_for_client(store, task, err, notify=e.notify_uid is None or local_reply,
                                     endpoint=self.name)
        uid = e.notify_uid
        if uid is not None and uid != 0:   # told by a child as the sender, beside the loop (_tell_refused)
            if uid in self.telling:   # an earlier refusal is still being told: this one waits in the spool
                return
            self.refusals.setdefault(uid, []).append((task.id, deliver))
        else:
            ok, problem = _attempt(lambda: deliver(self.store))
            if not ok:
                log.error("could not tell the sender of task %s that it was refused: %s", task.id, problem)
        self.audit.write(identity=mapped.identity, user=mapped.user, function=task.fn, task=task.id,
                         outcome="refused", reason=why)
        log.warning("task %s from %s refused: %s", task.id, mapped.identity, why)
        e.ack()

    def _tell_refused(self) -> None:
        """The refusals of this step, told to each sender by one child running as that sender
        (their store folders and reply queue are theirs: a link or a lock there is theirs too),
        looked at on later steps (:meth:`_told`), never waited for."""
        for uid, items in self.refusals.items():
            try:
                pw = pwd.getpwuid(uid)
            except KeyError:
                log.error("could not tell uid %d of %d refusal(s): it has no account name", uid, len(items))
                continue

            def tell(items: list = items) -> None:
                store = open_store(self.cfg.store)   # the child holds none of root's descriptors
                failed = []
                for tid, deliver in items:
                    try:
                        deliver(store)
                    except Exception as exc:  # noqa: BLE001 - told for the others; reported to the router
                        failed.append(f"{tid}: {type(exc).__name__}: {exc}"[:300])
                if failed:
                    raise OSError("; ".join(failed))
            self.telling[uid] = AsUser(pw.pw_name, uid, pw.pw_gid, tell, timeout=TELL_TIMEOUT)
        self.refusals.clear()

    def _told(self, until: float = 0.0) -> None:
        """Settle the children telling refusals that have ended (waiting for them up to the
        monotonic time ``until``: at shutdown)."""
        for uid, child in list(self.telling.items()):
            outcome = child.poll(max(0.0, until - time.monotonic()))
            if outcome is None:
                continue
            del self.telling[uid]
            if not outcome[0]:
                log.error("could not tell uid %d that its task(s) were refused: %s", uid, outcome[1])

    # -- watching user endpoints ----------------------------------------------------------------
    def _check_endpoints(self) -> None:
        now = time.time()
        for ue in self.endpoints.values():
            try:   # one user's broken endpoint or files never stop the others'
                self._check_endpoint(ue, now)
            except Exception as exc:  # noqa: BLE001 - one user's broken endpoint never stops the others'
                ue.last_error = f"checking it failed: {type(exc).__name__}: {exc}"
                log.exception("checking user endpoint %s of %s failed", ue.name, ue.user)
        self._save_state()
        try:
            self._write_status()
        except Exception as exc:  # noqa: BLE001 - the status file is a report: routing goes on
            log.exception("writing %s failed: %s", STATUS, exc)

    def _check_endpoint(self, ue: UserEndpoint, now: float) -> None:
        if ue.state == "stopping":   # asked to stop on an earlier step: gone, or killed once past its deadline
            user_endpoints.check_stop(ue)
        user_endpoints.reap(ue)
        for tid, (fn, cid) in list(ue.outstanding.items()):
            try:
                outcome, run_s = self._outcome(tid, cid)
            except Exception as exc:  # noqa: BLE001 - a file a user planted: noted, not fatal
                log.warning("task %s of %s: its result cannot be read as an outcome (%s: %s); "
                            "counted as failed", tid, ue.user, type(exc).__name__, exc)
                outcome, run_s = "failed", None
            if outcome is None:
                continue
            del ue.outstanding[tid]
            ue.last_activity = now
            ue.failures = 0
            if outcome == "success":
                ue.done += 1
            else:
                ue.failed += 1
            self.audit.write(identity=self._identity_of(tid, ue),
                             user=ue.user, function=fn, task=tid, outcome=outcome,
                             run_seconds=run_s, user_endpoint=ue.name)
        alive = user_endpoints.running(ue)
        if ue.state == "running" and not alive:
            user_endpoints.reap(ue)
            ue.failures += 1
            ue.retry_at = now + min(2.0 ** ue.failures, 120.0)
            ue.last_error = (f"ended on its own (pid {ue.pid}); next start in "
                             f"{ue.retry_at - now:.0f} s; see {ue.dir / 'daemon.out'} and endpoint.log")
            log.warning("user endpoint %s of %s %s", ue.name, ue.user, ue.last_error)
            ue.state, ue.pid = "failed", None
        if ue.state == "running" and not ue.outstanding and \
                now - ue.last_activity > self.cfg.user_endpoint_idle_timeout:
            log.info("user endpoint %s of %s idle for %.0f s: stopping it", ue.name, ue.user,
                     now - ue.last_activity)
            user_endpoints.begin_stop(ue, self.cfg.stop_grace + 45)
        if ue.state in ("stopped", "failed") and ue.outstanding and now >= ue.retry_at:
            # tasks wait in its queue (handed back, or handed over before it died): bring it back
            try:
                self._start(ue, self._render(ue))
            except Exception as exc:  # noqa: BLE001 - a failed restart is retried with backoff, whatever broke it
                ue.failures += 1
                ue.retry_at = now + min(2.0 ** ue.failures, 120.0)
                ue.last_error = str(exc)
                log.error("restarting user endpoint %s: %s (next try in %.0f s)", ue.name, exc, ue.retry_at - now)

    def _identity_of(self, task_id: str, ue: UserEndpoint) -> str:
        return self.seen.get(task_id, f"local:{ue.user}")

    def _outcome(self, task_id: str, cid: str) -> tuple[str | None, float | None]:
        """From the result's header only (bounded read; the payload is never loaded). For the
        audit log and idle accounting; the client authenticates the result itself."""
        try:
            data = self.store.get_head(result_key(task_id, cid), HEADER_LIMIT)
        except KeyNotFound:
            return ("cancelled", None) if self.store.exists(cancel_key(task_id, cid)) else (None, None)
        header, _ = serialize.unframe(data)
        started, finished = header.get("started"), header.get("finished")
        run_s = round(finished - started, 6) if started and finished else None
        return header.get("status", "success"), run_s

    def _account_blocks(self, ue: UserEndpoint, now: float) -> int:
        """Note the blocks the user endpoint says it runs (its daemon.status.json: a file the
        user writes, so the user's word, read bounded and checked); one line in blocks.log per
        block that ended: its nodes (the administrator's template) x the time root saw it run.
        At most ``max_blocks_per_user`` blocks are counted, so what a user can make root
        record is bounded by real time, whatever the file says. Returns the blocks counted."""
        current = self._reported_blocks(ue) if ue.state == "running" else {}
        if current is None:
            return len(ue.blocks)
        for bid, submitted in current.items():
            if bid not in ue.blocks:
                ue.blocks[bid] = {"since": now, "nodes": self._nodes(ue), "reported_submitted": submitted}
        for bid in [b for b in ue.blocks if b not in current]:
            self._block_ended(ue, bid, ue.blocks.pop(bid), now)
        return len(current)

    def _reported_blocks(self, ue: UserEndpoint) -> dict[str, float | None] | None:
        """Block id -> the submission time it claims, from the user endpoint's
        daemon.status.json; None when the file cannot be read (the blocks known stay). Ids that
        are not short strings, and entries that are not objects, are skipped; at most
        ``max_blocks_per_user`` are kept (no user endpoint may run more)."""
        try:   # the user's own file, in the user's home: no link followed, bounded, no FIFO
            rel = (ue.dir / "daemon.status.json").relative_to(ue.home)
            data = json.loads(safe_open.read_beneath(ue.home, str(rel), STATUS_LIMIT))
            blocks = data.get("blocks", {}) if isinstance(data, dict) else None
            if not isinstance(blocks, dict):
                raise ValueError("'blocks' is not an object of block id -> block")
        except (OSError, ValueError, RecursionError) as exc:
            log.debug("user endpoint %s: no block status (%s)", ue.name, exc)
            return None
        cap = self.cfg.max_blocks_per_user
        out: dict[str, float | None] = {}
        skipped = 0
        for bid, b in blocks.items():
            if len(out) >= cap or not isinstance(b, dict) or len(bid) > BLOCK_ID_LIMIT or not bid.isprintable():
                skipped += 1
                continue
            out[bid] = _number(b.get("submitted"))
        if skipped and ue.key not in self.block_warned:
            self.block_warned.add(ue.key)
            log.warning("user endpoint %s of %s: its daemon.status.json lists %d block(s) that are not "
                        "counted (over max_blocks_per_user=%d, an id over %d characters, or not an object)",
                        ue.name, ue.user, skipped, cap, BLOCK_ID_LIMIT)
        return out

    def _block_ended(self, ue: UserEndpoint, bid: str, b: dict, now: float) -> None:
        """One line in blocks.log. Its node-seconds are root's own observation (the nodes the
        template gives, the time root saw the block); the block id and the submission time it
        claimed are the user's word, and the line says so."""
        try:
            since, nodes = float(b["since"]), int(b["nodes"])
        except (KeyError, TypeError, ValueError):   # a state from another version: nothing to count
            return
        self.blocks_log.write(identity=f"local:{ue.user}", user=ue.user, function=None, task=None,
                              outcome="block", block=bid, user_endpoint=ue.name,
                              node_seconds=round(max(0.0, now - since) * nodes, 3),
                              reported_by_user={"block": bid, "submitted": b.get("reported_submitted"),
                                                "file": "daemon.status.json"})

    def _nodes(self, ue: UserEndpoint) -> int:
        """Nodes per block of ``ue``, from the administrator's template (rendered once per user
        endpoint: the template and the variables do not change while the router runs)."""
        nodes = self.nodes_per_block.get(ue.key)
        if nodes is None:
            try:
                nodes = int(self._render(ue)["engine"]["provider"].get("nodes_per_block", 1))
            except Exception:  # noqa: BLE001 - accounting must not stop routing
                nodes = 1
            self.nodes_per_block[ue.key] = nodes
        return nodes

    def _write_status(self) -> None:
        """multiuser.status.json: one row per user endpoint. A user's files that cannot be
        accounted for spoil that user's row only, never the file (nor the steps after it)."""
        rows = []
        now = time.time()
        for ue in self.endpoints.values():
            try:
                blocks = self._account_blocks(ue, now)
            except Exception as exc:  # noqa: BLE001 - one user's files never stop the status of all
                log.warning("user endpoint %s of %s: its blocks cannot be accounted for (%s: %s)",
                            ue.name, ue.user, type(exc).__name__, exc)
                blocks = len(ue.blocks)
            rows.append({"user": ue.user, "name": ue.name, "variables_hash": ue.vhash,
                         "variables": ue.variables, "state": ue.state, "pid": ue.pid,
                         "blocks": blocks if ue.state == "running" else 0,
                         "tasks_running": len(ue.outstanding), "tasks_done": ue.done,
                         "tasks_failed": ue.failed, "tasks_routed": ue.routed,
                         "last_activity": ue.last_activity, "last_error": ue.last_error})
        write_private(self.dir / STATUS, json.dumps({"pid": os.getpid(), "time": time.time(),
                                                     "tasks_from": self.transport.address, "user_endpoints": rows}))


def _number(value: object) -> float | None:
    """``value`` if it is a finite number (not a bool), else None: a field of a user's file."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 600 (it names every user and their variables)."""
    safe_open.replace_file(path, text, mode=0o600)


def _attempt(fn) -> tuple[bool, str]:
    try:
        fn()
        return True, ""
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        return False, f"{type(exc).__name__}: {exc}"

