"""Globus Compute's ShellFunction, ShellResult and MPIFunction: a command line run on the
endpoint, formatted with the call's keyword arguments, whose exit code and last lines of output
come back as a :class:`ShellResult`.

Submitted like any function (``ex.submit(ShellFunction("echo {x}"), x=1)``); dill pickles the
instance with its class by reference, so the worker imports this module (faas is there).
Attributes, ``str``/``repr`` and return codes are Globus's (globus_compute_sdk 4.x); the
differences (a missing ``{name}`` names itself, a walltime also stops the command) are
in the docstrings below.
"""
from __future__ import annotations

import keyword
import os
import signal
import string
import subprocess
import tempfile
import uuid
from typing import Any

TIMEOUT_RETURNCODE = 124   # as timeout(1) and Globus: the command ran out of walltime
_fields_as_data = False     # set by a worker of an endpoint with allowed_functions (fields_as_data)


def _quote_state(text: str, state: str | None) -> str | None:
    """The quoting a shell is in after ``text``, starting in ``state`` (None: unquoted; ``'``,
    ``"`` or ``$'``). Only how a field's value reads depends on it, never whether it is data
    (:func:`_format_by_reference`)."""
    i = 0
    while i < len(text):
        c = text[i]
        if state is None:
            if c == "\\":
                i += 1
            elif c in "'\"":
                state = c
            elif c == "$" and text[i + 1:i + 2] == "'":
                state, i = "$'", i + 1
        elif state == "'":
            if c == "'":
                state = None
        elif c == "\\":   # in "..." and $'...' a backslash escapes the next character
            i += 1
        elif c == state[-1]:
            state = None
        i += 1
    return state


#: how a field's variable is referred to where the command stands: quoted as one word, and
#: closing and reopening a single-quoted string around it
_REFERENCE = {None: '"${{{0}}}"', '"': "${{{0}}}", "'": "'\"${{{0}}}\"'", "$'": "'\"${{{0}}}\"$'"}


def _format_by_reference(cmd: str, kwargs: dict) -> tuple[str, dict[str, str]]:
    """``cmd`` with each field a reference to an environment variable that holds its text, and
    those variables. The shell expands a variable after it has parsed the command, and never
    parses what it expands again, so a value is data wherever its field stands (in "...", in
    $(...), in backquotes) and whatever it holds; where the field stands only decides how the
    reference is quoted (one word)."""
    fmt, out, state = string.Formatter(), [], None
    env: dict[str, str] = {}
    for literal, field, spec, conversion in fmt.parse(cmd):
        out.append(literal)
        state = _quote_state(literal, state)
        if field is not None:
            value = fmt.convert_field(fmt.get_field(field, (), kwargs)[0], conversion)
            name = f"FAAS_FIELD_{len(env)}"
            env[name] = fmt.format_field(value, spec or "")
            out.append(_REFERENCE[state].format(name))
    return "".join(out), env


def fields_as_data(on: bool) -> None:
    """Make each ``{field}`` of a command data, one word, in this process (a worker of an
    endpoint that runs only its allowed_functions: a value must not add commands to an allowed
    one): the command refers to an environment variable that holds the value."""
    global _fields_as_data
    _fields_as_data = on

KILL_GRACE = 2.0           # seconds between SIGTERM and SIGKILL when the walltime is up


class ShellResult:
    """What a ShellFunction returns: the command line that ran, its exit code, and snippets of
    its stdout and stderr (the last ``snippet_lines`` lines)."""

    def __init__(self, cmd: str, stdout: str, stderr: str, returncode: int,
                 exception_name: str | None = None):
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode
        self.exception_name = exception_name

    def __str__(self) -> str:
        rc = self.returncode
        msg = f"exit code: {rc}\n   stdout:\n{_tail_for_display(self.stdout, 'stdout')}"
        if rc != 0:
            msg += f"\n\n   stderr:\n{_tail_for_display(self.stderr, 'stderr')}"
            if self.exception_name:
                msg += f"\n\nexception: {self.exception_name}"
        return msg

    def __repr__(self) -> str:
        parts = [f"returncode={self.returncode!r}", f"cmd={self.cmd!r}"]
        if self.exception_name is not None:
            parts.append(f"exception_name={self.exception_name!r}")
        parts.extend((f"stdout={self.stdout!r}", f"stderr={self.stderr!r}"))
        return f"{type(self).__name__}({', '.join(parts)})"


def _tail_for_display(text: str, stream: str) -> str:
    """The last 10 lines (and at most 1024 characters) of a snippet, as Globus prints them."""
    whole = text.lstrip("\n").rstrip()
    shown = "\n".join(whole[-1024:].splitlines()[-10:])
    if shown != whole:
        shown = f"[... truncated; see .{stream} for full output ...]\n{shown}"
    return shown


class MissingCommandArgument(KeyError):
    """A ``{name}`` in a ShellFunction's command that the call gave no keyword argument for
    (a KeyError, as Globus's ``str.format`` raises, with a message that says what to do)."""

    def __init__(self, name: str, cmd: str):
        super().__init__(name, cmd)
        self.name, self.cmd = name, cmd

    def __str__(self) -> str:
        return (f"the command {self.cmd[:200]!r} has {{{self.name}}} but the call gave no keyword "
                f"argument {self.name!r}: submit it as ex.submit(fn, {self.name}=...); to keep a "
                f"literal brace in the command, double it ({{{{ and }}}})")


class _NegativeWalltime(ValueError, AssertionError):
    """A ValueError, and the AssertionError Globus raises for it."""


class ShellFunction:
    """A command line to run on the endpoint with ``/bin/bash``.

    ``cmd`` is formatted with the call's keyword arguments (``"lammps -in {input_file}"``);
    ``stdout``/``stderr``: files on the endpoint to append the streams to (default: files named
    ``<task id>.stdout``/``.stderr`` in the task's working folder); ``walltime``: seconds after
    which the command is stopped and the result's returncode is 124; ``snippet_lines``: how many
    of the last lines of each stream the result carries; ``name``: the function's name (default
    the class name); ``return_dict``: return a JSON-able dict instead of a ShellResult.

    Unlike Globus's, a walltime also stops the command and what it started (SIGTERM, SIGKILL
    2 s later), as timeout(1) does, instead of leaving it running.
    """

    def __init__(self, cmd: str, stdout: str | None = None, stderr: str | None = None,
                 walltime: float | None = None, snippet_lines: int = 1000,
                 name: str | None = None, return_dict: bool = False) -> None:
        if not isinstance(cmd, str):
            raise TypeError(f"{type(self).__name__}: cmd must be a command line (str), "
                            f"got {type(cmd).__name__}")
        if walltime is not None and walltime < 0:
            raise _NegativeWalltime(f"Negative walltime={walltime} is not allowed")
        if isinstance(snippet_lines, bool) or not isinstance(snippet_lines, int) or snippet_lines < 0:
            raise ValueError(f"snippet_lines must be a whole number >= 0, got {snippet_lines!r}")
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.walltime = walltime
        self.snippet_lines = snippet_lines
        name = name or type(self).__name__
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.__name__ = self.valid_function_name(name)
        self.return_dict = return_dict

    def __str__(self) -> str:
        parts = []
        if self.walltime is not None:
            parts.append(f" wall time: {self.walltime}")
        if self.stdout is not None:
            parts.append(f"    stdout: {self.stdout!r}")
        if self.stderr is not None:
            parts.append(f"    stderr: {self.stderr!r}")
        parts.append(f"     lines: {self.snippet_lines!r}")
        header = "   command: "
        whole = self.cmd.strip()
        cmd = "\n".join(whole[:1024].splitlines()[:10])
        if cmd != whole:
            cmd += "\n[... truncated; see .cmd for full script ...]"
        if "\n" in cmd:
            indent = "\n" + len(header) * " "
            cmd = cmd.strip().replace("\n", indent)
            cmd = f"-----{indent}{cmd}{indent}-----"
        parts.append(f"{header}{cmd}")
        return f"{self.__name__}\n" + "\n".join(parts)

    def __repr__(self) -> str:
        parts = []
        if self.__name__ != type(self).__name__:
            parts.append(f"name={self.__name__!r}")
        if self.walltime is not None:
            parts.append(f"walltime={self.walltime!r}")
        if self.stdout is not None:
            parts.append(f"stdout={self.stdout!r}")
        if self.stderr is not None:
            parts.append(f"stderr={self.stderr!r}")
        parts.append(f"snippet_lines={self.snippet_lines}")
        parts.append(f"cmd={self.cmd!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def valid_function_name(self, v: str) -> str:
        if not (v.isidentifier() and not keyword.iskeyword(v)):
            raise ValueError(f"Function name must be valid python name, got {v!r}")
        return v

    # -- on the endpoint -----------------------------------------------------------------------
    def format_cmd(self, kwargs: dict) -> str:
        """``cmd`` with the call's keyword arguments; a ``{name}`` without one is a
        :class:`MissingCommandArgument` naming it."""
        return self._command(kwargs)[0]

    def _command(self, kwargs: dict) -> tuple[str, dict[str, str] | None]:
        """The command line and the variables it refers to: on an endpoint that runs only its
        allowed_functions each field is data (:func:`fields_as_data`), elsewhere text as Globus
        formats it."""
        try:
            if _fields_as_data:
                return _format_by_reference(self.cmd, kwargs)
            return self.cmd.format(**kwargs), None
        except KeyError as e:
            raise MissingCommandArgument(str(e.args[0]), self.cmd) from None
        except IndexError:
            positional = [f for _, f, _, _ in string.Formatter().parse(self.cmd)
                          if f is not None and (f == "" or f.isdigit())]
            raise ValueError(f"the command {self.cmd[:200]!r} has a positional field "
                             f"{{{positional[0] if positional else ''}}}: a ShellFunction takes keyword "
                             f"arguments only; name the field ({{x}}) and pass x=...") from None

    def open_std_fd(self, fname, mode: str = "a+"):
        if fname is None:
            return None
        if os.path.dirname(fname):
            os.makedirs(os.path.dirname(fname), exist_ok=True)
        return open(fname, mode)

    def get_snippet(self, file_obj) -> str:
        """The last ``snippet_lines`` lines of ``file_obj``, read from its end (a large output
        is not read whole)."""
        n = self.snippet_lines
        if n <= 0:
            return ""
        file_obj.flush()
        raw = file_obj.buffer if hasattr(file_obj, "buffer") else file_obj
        raw.seek(0, os.SEEK_END)
        end = pos = raw.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(65536, pos)
            pos -= step
            raw.seek(pos)
            data = raw.read(step) + data
        lines = data.splitlines(keepends=True)
        if pos > 0 or len(lines) > n:
            lines = lines[-n:]
        raw.seek(end)
        return b"".join(lines).decode(errors="replace")

    def get_and_close_streams(self, stdout, stderr) -> tuple[str, str]:
        try:
            return self.get_snippet(stdout), self.get_snippet(stderr)
        finally:
            stdout.close()
            stderr.close()

    def execute_cmd_line(self, cmd: str, fields: dict[str, str] | None = None) -> ShellResult | dict:
        """Run ``cmd`` with bash; ``fields``: the variables its field references name."""
        sandbox_warning = None
        run_dir = os.environ.get("GC_TASK_SANDBOX_DIR")
        if run_dir:
            os.makedirs(run_dir, exist_ok=True)
            os.chdir(run_dir)
        else:   # Globus's words, in every unsandboxed result's stderr
            sandbox_warning = ("WARNING: Task sandboxing will not work due to endpoint "
                               "misconfiguration. Please enable sandboxing on the remote endpoint. ")
        prefix = os.environ.get("GC_TASK_UUID", str(uuid.uuid4())[-10:]) + "."
        stdout_path = self.stdout or _new_file(prefix, ".stdout")
        stderr_path = self.stderr or _new_file(prefix, ".stderr")
        std_out = self.open_std_fd(stdout_path)
        std_err = self.open_std_fd(stderr_path)
        if sandbox_warning:
            print(sandbox_warning, file=std_err, flush=True)
        exception_name = None
        try:
            proc = subprocess.Popen(cmd, stdout=std_out, stderr=std_err, stdin=subprocess.DEVNULL,
                                    shell=True, executable="/bin/bash",
                                    env={**os.environ, **fields} if fields else None)
            try:
                proc.wait(timeout=self.walltime)
                returncode = proc.returncode
                if returncode != 0:
                    exception_name = "subprocess.CalledProcessError"
            except subprocess.TimeoutExpired:
                _stop(proc)
                returncode = TIMEOUT_RETURNCODE
                exception_name = "subprocess.TimeoutExpired"
            except BaseException:   # the worker is being stopped: take the command with it
                _stop(proc, grace=0.0)
                raise
        finally:
            stdout_snippet, stderr_snippet = self.get_and_close_streams(std_out, std_err)
        if self.return_dict:
            return {"cmd": cmd, "stdout": stdout_snippet, "stderr": stderr_snippet,
                    "returncode": returncode, "exception_name": exception_name}
        return ShellResult(cmd, stdout_snippet, stderr_snippet, returncode, exception_name)

    def __call__(self, **kwargs: Any) -> ShellResult | dict:
        """Run ``cmd`` formatted with ``kwargs`` (on the endpoint, when submitted)."""
        return self.execute_cmd_line(*self._command(kwargs))


def _new_file(prefix: str, suffix: str) -> str:
    """A new file in the working folder, ``<task id>.<random><suffix>`` (as Globus names them;
    each call of a task, or a re-run of it, gets its own)."""
    fd, path = tempfile.mkstemp(dir=os.getcwd(), prefix=prefix, suffix=suffix)
    os.close(fd)
    return path


def _stop(proc: subprocess.Popen, grace: float = KILL_GRACE) -> None:
    """SIGTERM to the command and everything it started, SIGKILL to what is left after
    ``grace`` seconds, then reap it."""
    from .proctree import descendants, signal_all
    tree = [proc.pid, *descendants(proc.pid)]
    signal_all(tree, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is None:   # still there: what it started meanwhile too
        tree = list(dict.fromkeys(tree + descendants(proc.pid)))
    signal_all(tree, signal.SIGKILL)
    proc.wait()


class MPIFunction(ShellFunction):
    """A ShellFunction whose command runs under ``$PARSL_MPI_PREFIX``, the MPI launcher line the
    endpoint sets for each task from its resource_specification (``num_nodes``,
    ``ranks_per_node``, ``num_ranks``): it needs an endpoint whose engine.type is
    GlobusMPIEngine. A multi-line command gets the prefix once, in front; use
    ``$PARSL_MPI_PREFIX`` yourself for more launches."""

    def __call__(self, **kwargs: Any) -> ShellResult | dict:
        cmd, fields = self._command(kwargs)
        return self.execute_cmd_line("$PARSL_MPI_PREFIX " + cmd, fields)
