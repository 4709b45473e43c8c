"""Blocks as PBS Professional / OpenPBS batch jobs: ``qsub`` / ``qstat -x -f -F json`` / ``qdel``.

**No PBS server could be run where this was written** (none is packaged for Debian), so this
provider is tested against recorded ``qsub`` / ``qstat`` / ``qdel`` outputs in the formats the
sources below describe, replayed by small fake commands (``tests/pbs_recorded/``), not against a
live scheduler. Those recordings are reconstructions; ``tests/pbs_recorded/README.md`` says which
parts come from which source and which parts are less certain. The OpenPBS source files and
GitHub threads cited below were read for this; the PBS Professional Reference Guide is cited by
section name, as best known, not re-read here.

Commands (each one call, within ``cmd_timeout``; see ``Provider.run``)
-----------------------------------------------------------------------
``qsub SCRIPT``
    The script is ``submit_scripts/BLOCK.sh``, rendered from ``template.sh.j2`` (``#PBS -N``,
    ``-o``/``-e`` to ``submit_scripts/BLOCK.stdout``/``.stderr``, ``-j n``,
    ``-l select=N:ncpus=C:mem=Mgb:ngpus=G:SELECT_OPTIONS`` with only the parts configured
    (``select_options`` as Parsl's PBSProProvider appends it), ``-l walltime=HH:MM:SS`` (from
    any of Slurm's formats the config used), ``-l place=scatter[:excl]``, ``-q``, ``-A``, then
    ``scheduler_options`` verbatim, ``worker_init``, and ``exec`` of the launcher's command).
    qsub prints the job id (``1234.pbs-server``) on stdout; that id is returned as printed.
    A refusal is a ProviderError quoting qsub, e.g. ``qsub: Unknown queue`` (exit 170: qsub exits
    with ``pbs_errno``, PBSE_UNKQUE = 15018, and 15018 mod 256 = 170; OpenPBS
    ``src/include/pbs_error.h``).
``qstat -x -f -F json ID...``
    One call for all blocks. ``-x`` includes finished (history) jobs, ``-f`` all attributes,
    ``-F json`` the JSON form: ``{"timestamp":..., "pbs_version":..., "pbs_server":...,
    "Jobs": {ID: {"Job_Name":..., "job_state":..., "Exit_status":..., "substate":...,
    "comment":..., ...}}}`` (PBS Professional 2022.1 Reference Guide, "qstat", options ``-F`` and
    ``-x``; OpenPBS ``qstat(1B)``). Ids the server no longer knows (history disabled or expired)
    are missing from ``Jobs`` and named on stderr as ``qstat: Unknown Job Id ID`` (exit 153 =
    PBSE_UNKJOBID 15001 mod 256; without ``-x``, finished jobs give ``qstat: ID Job has
    finished, use -x or -H to obtain historical job information``, exit 35 = PBSE_HISTJOBID
    15139 mod 256). Those ids are reported COMPLETED (the job is gone, so no pool of it runs);
    any other failure of qstat (server down, ...) is a ProviderError, never "all completed".
``qdel ID...``
    Ids that are already finished or unknown (``qdel: Unknown Job Id ID``, ``qdel: Job has
    finished ID``; OpenPBS ``src/cmds/qdel.c`` prints ``qdel: <error text> <id>``) are not
    errors: the block is over either way. A running job's pools get SIGTERM from the MoM and
    hand back what they hold.

State mapping (``job_state``; PBS Professional Reference Guide, "Job States" table)
---------------------------------------------------------------------------------
* ``Q`` queued, ``H`` held, ``W`` waiting for its start time, ``T`` transiting, ``S`` suspended,
  ``U`` suspended (workstation busy) -> PENDING
* ``R`` running, ``E`` exiting (still ending its run: treated as running), ``B`` array job
  begun -> RUNNING
* ``X`` subjob finished -> COMPLETED
* ``F`` finished, by ``Exit_status``: 0 -> COMPLETED; 271 (256 + SIGTERM, what ``qdel`` of a
  running job gives in PBS Pro; servers older than the -29 codes gave it for limit kills too)
  -> CANCELLED; a ``comment`` saying the job was deleted ->
  CANCELLED; no ``Exit_status`` (never ran) with ``substate`` 91 (JOB_SUBSTATE_TERMINATED,
  OpenPBS ``src/include/job.h``) -> CANCELLED; anything else (1, -29 = walltime kill, no
  ``Exit_status`` otherwise) -> FAILED
* ``M`` moved to another server, or a letter not listed -> UNKNOWN (counts as still active)
* an id qstat calls unknown -> COMPLETED (see above); an id neither listed nor named -> UNKNOWN

Older PBS versions print invalid JSON for some string values (environment variables in
``Variable_List`` with ``\\'`` or ``\\,`` escapes: openpbs/openpbs PR #2049; numbers with
leading zeros such as ``005``: issue #1255; unescaped quotes in comments: PR #830; seen in
the wild by argonne-lcf/balsam issue #324). :func:`parse_qstat_json` therefore tries strict
JSON, then JSON with those escapes repaired, then a regular expression per job that only
reads ``job_state``, ``Exit_status``, ``substate`` and ``comment``.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from ..base import BlockState, ClusterProvider, ProviderError

if TYPE_CHECKING:   # the endpoint's config model: an upper layer, for annotations only
    from ...endpoint.provider_config import PBSProviderConfig

_PENDING = frozenset("QHWTSU")
_RUNNING = frozenset("REB")
#: 256 + SIGTERM: the Exit_status of a running job deleted with qdel (PBS Pro)
EXIT_DELETED = 271
#: JOB_SUBSTATE_TERMINATED (OpenPBS src/include/job.h): a history job that was deleted
SUBSTATE_TERMINATED = 91

#: a job id as qsub prints it: ``1234.server``, ``1234[].server`` (arrays), or a bare ``1234``
_JOB_ID = re.compile(r"^\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.\-]+)?$")
#: qstat / qdel lines that name an id the server does not have (any more)
_GONE = (re.compile(r"Unknown Job Id (?:Error )?(\S+)"),
         re.compile(r"(?:qstat|qdel): (\S+) Job has finished"),
         re.compile(r"qdel: Job has finished (\S+)"))
#: qdel lines that mean "nothing left to cancel"
_QDEL_BENIGN = (re.compile(r"Unknown Job Id"), re.compile(r"Job has finished"),
                re.compile(r"Request invalid for state of job"),
                re.compile(r"Job (?:is )?already in exit state"))


class PBSProvider(ClusterProvider):
    """PBS Professional / OpenPBS (``type: pbs``; ``PBSProProvider`` is accepted as a synonym)."""

    template = str(Path(__file__).with_name("template.sh.j2"))
    status_interval = 5.0
    cfg: PBSProviderConfig

    # -- submit -----------------------------------------------------------------------------
    def submit(self, command: str, block_id: str) -> str:
        script = self.script(command, block_id, **self.template_vars(block_id))
        out = self.run(["qsub", str(script)])
        return parse_qsub(out)

    def template_vars(self, block_id: str) -> dict:
        """What the template needs beyond ``cfg``: the job name, memory and walltime in the
        spellings PBS accepts (sizes are integers with a unit; walltime has no days field)."""
        cfg = self.cfg
        return {"job_name": job_name(block_id),
                "mem": pbs_size_gb(cfg.mem_per_node) if cfg.mem_per_node else None,
                "walltime": pbs_walltime(cfg.walltime_s) if cfg.walltime_s is not None else None}

    # -- status -----------------------------------------------------------------------------
    def status(self, job_ids: list[str]) -> dict[str, BlockState]:
        if not job_ids:
            return {}
        args = ["qstat", "-x", "-f", "-F", "json", *job_ids]
        r = self.run_result(args)
        gone = _gone_ids(r.stderr)
        if r.returncode != 0 and not gone:
            raise ProviderError(f"qstat failed (exit {r.returncode}): {_said(r)}")
        jobs = parse_qstat_json(r.stdout) if r.stdout.strip() else {}
        out = {}
        for jid in job_ids:
            attrs = _lookup(jobs, jid)
            if attrs is not None:
                out[jid] = job_state(attrs)
            elif _lookup(dict.fromkeys(gone, {}), jid) is not None:
                out[jid] = BlockState.COMPLETED      # the server no longer knows it: it ended
            else:
                out[jid] = BlockState.UNKNOWN
        return out

    # -- cancel -----------------------------------------------------------------------------
    def cancel(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        r = self.run_result(["qdel", *job_ids])
        if r.returncode == 0:
            return
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        if lines and all(any(p.search(ln) for p in _QDEL_BENIGN) for ln in lines):
            return          # already finished or gone: nothing left to cancel
        raise ProviderError(f"qdel failed (exit {r.returncode}): {_said(r)}")


# -- pure functions (tested against the recordings) ---------------------------------------------
def job_name(block_id: str) -> str:
    """``faas-<short>``: the block id's random suffix (PBS job names start with a letter, have no
    whitespace, and older servers keep only 15 characters)."""
    short = re.sub(r"[^A-Za-z0-9_.-]", "", block_id.rsplit("-", 1)[-1])[:10] or "block"
    return f"faas-{short}"


def pbs_size_gb(gb: float) -> str:
    """A memory size in GB as PBS spells sizes: an integer with a unit (``16gb``, ``7680mb``)."""
    if float(gb).is_integer():
        return f"{int(gb)}gb"
    return f"{max(1, round(gb * 1024))}mb"


def pbs_walltime(seconds: int) -> str:
    """``HH:MM:SS`` (hours may pass 24): PBS has no ``D-`` days field."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def parse_qsub(stdout: str) -> str:
    """The job id qsub printed (the last line that looks like one; site wrappers may print
    banners before it)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if _JOB_ID.match(ln):
            return ln
    raise ProviderError(f"qsub printed no job id (expected a line like 1234.pbs-server): "
                        f"{stdout.strip()[-500:] or '(no output)'}")


def job_state(attrs: dict) -> BlockState:
    """One job's attributes from ``qstat -x -f -F json`` -> the block's state (table above)."""
    letter = str(attrs.get("job_state", "")).strip()[:1].upper()
    if letter in _PENDING:
        return BlockState.PENDING
    if letter in _RUNNING:
        return BlockState.RUNNING
    if letter == "X":
        return BlockState.COMPLETED
    if letter == "F":
        code = _int(attrs.get("Exit_status"))
        deleted = "delet" in str(attrs.get("comment", "")).lower()
        if code == 0:
            return BlockState.COMPLETED
        if code == EXIT_DELETED or deleted:
            return BlockState.CANCELLED
        if code is None and _int(attrs.get("substate")) == SUBSTATE_TERMINATED:
            return BlockState.CANCELLED
        return BlockState.FAILED
    return BlockState.UNKNOWN


def parse_qstat_json(text: str) -> dict[str, dict]:
    """``Jobs`` of a ``qstat -f -F json`` output: job id -> attributes. Strict JSON first; then
    with the known bad escapes repaired; then a regex per job (only the attributes the state
    needs). Empty if there are no jobs (qstat then omits ``Jobs``)."""
    for candidate in (text, _repair(text)):
        try:
            data = json.loads(candidate, strict=False)   # strict=False: raw control characters
        except ValueError:
            continue
        jobs = data.get("Jobs") if isinstance(data, dict) else None
        return jobs if isinstance(jobs, dict) else {}
    return _regex_jobs(text)


def _repair(text: str) -> str:
    # 1. a backslash before a character JSON does not escape (\' \, \x ...): drop the backslash;
    #    valid pairs (\\ \" \n \uXXXX ...) are matched first and kept as they are.
    text = re.sub(r'\\(.)', lambda m: m.group(0) if m.group(1) in '"\\/bfnrtu' else m.group(1),
                  text, flags=re.S)
    # 2. bare numbers with leading zeros (an environment variable ``005``) become strings
    return re.sub(r'(:\s*)(-?0\d+)(\s*[,}\n])', r'\1"\2"\3', text)


_JOB_KEY = re.compile(r'"(\d+(?:\[\d*\])?(?:\.[^"\s]*)?)"\s*:\s*\{')
_FIELDS = {"job_state": re.compile(r'"job_state"\s*:\s*"([A-Za-z])"'),
           "Exit_status": re.compile(r'"Exit_status"\s*:\s*"?(-?\d+)'),
           "substate": re.compile(r'"substate"\s*:\s*"?(\d+)'),
           "comment": re.compile(r'"comment"\s*:\s*"([^\n]*)"\s*,?\s*$', re.M)}


def _regex_jobs(text: str) -> dict[str, dict]:
    """Last resort for output no repair makes valid: cut it at each job id key (``"1234.srv":{``;
    environment variable names never start with a digit) and read the few fields we need."""
    keys = list(_JOB_KEY.finditer(text))
    jobs: dict[str, dict] = {}
    for i, m in enumerate(keys):
        chunk = text[m.end(): keys[i + 1].start() if i + 1 < len(keys) else len(text)]
        attrs = {}
        for name, rx in _FIELDS.items():
            found = rx.search(chunk)
            if found:
                attrs[name] = found.group(1)
        if "job_state" in attrs:
            jobs[m.group(1)] = attrs
    return jobs


def _lookup(jobs: dict, jid: str):
    """A job's entry by the id qsub printed; else by its sequence number alone, when exactly
    one entry has it (the server may print a longer server name than qsub did)."""
    if jid in jobs:
        return jobs[jid]
    seq = jid.split(".", 1)[0]
    same = [k for k in jobs if k.split(".", 1)[0] == seq]
    return jobs[same[0]] if len(same) == 1 else None


def _gone_ids(stderr: str) -> list[str]:
    out = []
    for line in stderr.splitlines():
        for rx in _GONE:
            m = rx.search(line)
            if m:
                out.append(m.group(1))
                break
    return out


def _said(r: subprocess.CompletedProcess) -> str:
    return (r.stderr.strip() or r.stdout.strip() or "(no output)")[-1500:]


def _int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


__all__ = ["PBSProvider", "job_state", "parse_qstat_json", "parse_qsub"]
