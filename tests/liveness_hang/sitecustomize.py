"""Loaded through PYTHONPATH into an endpoint's daemon and pools by tests/test_liveness.py: the
pool's receiver thread hangs on its HANG_TEST_RECEIVES-th receive, as a receive stuck on a dead
connection would."""
import os
import threading
import time

_after = int(os.environ.get("HANG_TEST_RECEIVES", "0"))
if _after:
    from faas.store.local_queue import LocalQueue

    _receive = LocalQueue.receive
    _calls = [0]

    def receive(self, *a, **kw):
        if threading.current_thread().name == "receiver":
            _calls[0] += 1
            if _calls[0] >= _after:
                time.sleep(3600)   # stuck: the watchdog must notice
        return _receive(self, *a, **kw)

    LocalQueue.receive = receive
