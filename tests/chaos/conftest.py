"""The chaos suite: bounded in count and time (each test well under 4 minutes on 2 cores)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))   # chaoslib, for the tests and the client script


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos: kill -9 and fault-injection runs (tests/chaos/)")
