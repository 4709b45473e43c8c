"""An endpoint that runs only its ``allowed_functions``, as a sender holding its signing key sees
it: the administrator lets that key run these functions, and nothing else.

Before, the boundary was the function id alone. The arguments were unpickled with dill, so an
argument whose ``__reduce__`` names ``os.system`` ran its command as the endpoint's user while
they loaded, before the allowed function was called; and a ShellFunction's ``{fields}`` were
formatted into its command as they came, so ``word="hi; touch FILE"`` added a command to an
allowed ``echo {word}``. Now such an endpoint loads arguments as plain data only (numbers, text,
bytes, containers and a few stdlib value types: faas/plain_data.py), and a command refers to
each field's value through an environment variable, which the shell never parses as code (a
first fix quoted the value as one word, which "{field}" in the command undid). MPI
launcher_options: tests/globus_compat/test_shell_mpi.py."""
from __future__ import annotations

import datetime
import decimal
import os
import uuid

import pytest
from helpers import running_endpoint

import faas
from faas import ShellFunction
from faas.exceptions import SerializationError

pytestmark = pytest.mark.slow


def echo(x):
    return x


class Pwn:
    """Runs a command where it is unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_restricted_endpoint_runs_no_code_of_the_senders(tmp_path):
    home = tmp_path / "h"
    shell = ShellFunction('echo {word} "{word}"')
    probe = faas.client(store=(home / "store").as_uri(), home=str(home))   # the same user: the same keys
    allowed = [probe.register_function(echo), probe.register_function(shell)]
    probe.close()
    pwned = tmp_path / "PWNED"
    with running_endpoint(home, name="strict", allowed_functions=allowed):
        c = faas.client(endpoint="strict")
        # the allowed function, with an argument whose loading runs a command
        tid = c.run(function_id=allowed[0], args=(Pwn(pwned),))
        with pytest.raises(SerializationError, match=r"the arguments hold posix\.system, which is not plain data"):
            c.get_result(task_id=tid, timeout=60)
        # the allowed command, with a field that adds one (where it stands bare, and in "...")
        for word in (f"hi; touch {pwned}", f"$(touch {pwned})", f'"; touch {pwned}; "', f"`touch {pwned}`"):
            r = c.get_result(task_id=c.run(function_id=allowed[1], kwargs={"word": word}), timeout=60)
            assert r.stdout.strip() == f"{word} {word}", r
        assert not pwned.exists(), "a sender's argument ran a command on a restricted endpoint"

        # plain data still goes through, as it came
        plain = [1, 2.5, 3 + 4j, "text", b"\x00bytes", bytearray(b"ba"), (1, [2, {"k": {3}}]),
                 frozenset({"f"}), None, True, datetime.datetime(2026, 12, 6, 5, 0, tzinfo=datetime.timezone.utc),
                 datetime.date(2026, 1, 2), datetime.timedelta(seconds=3), decimal.Decimal("1.10"),
                 uuid.UUID(int=7), 10 ** 40]
        assert c.get_result(task_id=c.run(function_id=allowed[0], args=(plain,)), timeout=60) == plain
        r = c.get_result(task_id=c.run(function_id=allowed[1], kwargs={"word": "plain words"}), timeout=60)
        assert r.stdout.strip() == "plain words plain words"
        c.close()
