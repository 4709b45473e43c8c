"""Fake ``qsub`` / ``qstat`` / ``qdel`` that replay the recordings one folder up.

NOT a PBS server: no PBS server could be run here (none is packaged for Debian). These fakes
only print what the recordings in ``tests/pbs_recorded/`` show a real PBS Pro / OpenPBS
printing, and keep a tiny JSON state file so a job moves Q -> R -> F across calls:

* ``qstat`` call 1 after qsub shows the job Q, calls 2-3 show R, call 4 and later F with
  ``Exit_status`` 0 (a block whose pools went idle and exited);
* ``qdel`` of a running job makes it F with ``Exit_status`` 271 (256 + SIGTERM), of a queued
  job F with ``substate`` 91 and no ``Exit_status``; of a finished job it prints
  ``qdel: Job has finished ID`` (exit 35), of an unknown one ``qdel: Unknown Job Id ID`` (153).

Environment:
  FAKE_PBS_STATE   path of the state file (required)
  FAKE_PBS_QUEUES  comma-separated queues qsub accepts (default ``workq,debug``); any other
                   ``#PBS -q`` gets the recorded ``qsub: Unknown queue`` and exit 170
  FAKE_PBS_SLEEP   seconds to sleep before answering (to test ``cmd_timeout``)
  FAKE_PBS_LOG     file to which each call appends its command line (to count calls)
  FAKE_QSTAT_REPLAY / FAKE_QSTAT_STDERR / FAKE_QSTAT_RC
                   make qstat print a recorded file as is, with that stderr and exit code
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent          # tests/pbs_recorded
RECORDED = json.loads((HERE / "qstat_x_f_F_json.json").read_text())
SERVER = RECORDED["pbs_server"]
# one recorded job per state, used as the shape of the fake's answers
TEMPLATES = {"Q": RECORDED["Jobs"]["1230.pbs-server"], "R": RECORDED["Jobs"]["1231.pbs-server"],
             "F0": RECORDED["Jobs"]["1232.pbs-server"], "F271": RECORDED["Jobs"]["1233.pbs-server"]}
EXIT_UNKNOWN_JOB = 153      # PBSE_UNKJOBID 15001 & 0xff
EXIT_HISTORY_JOB = 35       # PBSE_HISTJOBID 15139 & 0xff
EXIT_UNKNOWN_QUEUE = 170    # PBSE_UNKQUE 15018 & 0xff


def _pause(argv0: str, argv: list[str]) -> None:
    if os.environ.get("FAKE_PBS_LOG"):
        Path(os.environ["FAKE_PBS_LOG"]).parent.mkdir(parents=True, exist_ok=True)
        with open(os.environ["FAKE_PBS_LOG"], "a") as f:
            f.write(json.dumps([argv0, *argv]) + "\n")
    if os.environ.get("FAKE_PBS_SLEEP"):
        time.sleep(float(os.environ["FAKE_PBS_SLEEP"]))


@contextmanager
def _state():
    path = Path(os.environ["FAKE_PBS_STATE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        state = json.loads(text) if text.strip() else {"next": 1234, "jobs": {}}
        yield state
        f.seek(0)
        f.truncate()
        f.write(json.dumps(state, indent=1))


def _phase(job: dict) -> str:
    """Q, R, F0 (finished, exit 0), F271 (deleted while running), FQDEL (deleted while queued)."""
    if job.get("deleted"):
        return job["deleted"]
    polls = job["polls"]
    return "Q" if polls <= 1 else "R" if polls <= 3 else "F0"


def _render(jid: str, job: dict) -> dict:
    phase = _phase(job)
    if phase == "FQDEL":
        out = copy.deepcopy(TEMPLATES["Q"])
        out.update(job_state="F", substate=91, comment="Job deleted before it ran")
    else:
        out = copy.deepcopy(TEMPLATES[phase])
    out["Job_Name"] = job["name"]
    out["queue"] = job["queue"]
    for key in ("Output_Path", "Error_Path"):
        out[key] = "login01.cluster.example.org:" + job["paths"][key]
    if job.get("select"):
        out["Resource_List"]["select"] = job["select"]
    return out


def qsub(argv: list[str]) -> int:
    _pause("qsub", argv)
    script = Path(argv[-1])
    text = script.read_text()
    directives = re.findall(r"^#PBS\s+(.*)$", text, flags=re.M)
    opts = {"-q": "workq", "-N": script.stem, "-o": "", "-e": ""}
    select = None
    for d in directives:
        flag, _, value = d.strip().partition(" ")
        if flag in opts:
            opts[flag] = value.strip()
        if flag == "-l" and value.startswith("select="):
            select = value[len("select="):]
    queues = os.environ.get("FAKE_PBS_QUEUES", "workq,debug").split(",")
    if opts["-q"] not in queues:
        sys.stderr.write((HERE / "qsub_unknown_queue.stderr").read_text())
        return EXIT_UNKNOWN_QUEUE
    with _state() as st:
        jid = f"{st['next']}.{SERVER}"
        st["next"] += 1
        st["jobs"][jid] = {"name": opts["-N"], "queue": opts["-q"], "select": select, "polls": 0,
                           "paths": {"Output_Path": opts["-o"], "Error_Path": opts["-e"]}}
    print(jid)
    return 0


def qstat(argv: list[str]) -> int:
    _pause("qstat", argv)
    if os.environ.get("FAKE_QSTAT_REPLAY"):
        sys.stdout.write(Path(os.environ["FAKE_QSTAT_REPLAY"]).read_text())
        if os.environ.get("FAKE_QSTAT_STDERR"):
            sys.stderr.write(Path(os.environ["FAKE_QSTAT_STDERR"]).read_text())
        return int(os.environ.get("FAKE_QSTAT_RC", "0"))
    if "-F" not in argv or argv[argv.index("-F") + 1] != "json" or "-f" not in argv:
        sys.stderr.write("fake qstat: only `qstat [-x] -f -F json ID...` is recorded\n")
        return 2
    ids = [a for a in argv if not a.startswith("-") and a != "json"]
    rc = 0
    jobs = {}
    with _state() as st:
        for jid in ids:
            job = st["jobs"].get(jid)
            if job is None:
                sys.stderr.write(f"qstat: Unknown Job Id {jid}\n")
                rc = EXIT_UNKNOWN_JOB
                continue
            job["polls"] += 1
            if _phase(job).startswith("F") and "-x" not in argv:
                sys.stderr.write(f"qstat: {jid} Job has finished, use -x or -H to obtain "
                                 f"historical job information\n")
                rc = EXIT_HISTORY_JOB
                continue
            jobs[jid] = _render(jid, job)
    doc = {"timestamp": int(time.time()), "pbs_version": RECORDED["pbs_version"], "pbs_server": SERVER}
    if jobs:
        doc["Jobs"] = jobs
    print(json.dumps(doc, indent=4, separators=(",", ":")))
    return rc


def qdel(argv: list[str]) -> int:
    _pause("qdel", argv)
    rc = 0
    with _state() as st:
        for jid in (a for a in argv if not a.startswith("-")):
            job = st["jobs"].get(jid)
            if job is None:
                sys.stderr.write(f"qdel: Unknown Job Id {jid}\n")
                rc = EXIT_UNKNOWN_JOB
            elif _phase(job).startswith("F"):
                sys.stderr.write(f"qdel: Job has finished {jid}\n")
                rc = EXIT_HISTORY_JOB
            else:
                job["deleted"] = "F271" if _phase(job) == "R" else "FQDEL"
    return rc
