"""The examples, run as a newcomer runs them: a subprocess, a fresh FAAS_HOME, and the embedded
`local` endpoint started on demand (and stopped at the end of each test)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CI_BATCH = EXAMPLES / "ci_batch"


def run(home: Path, *args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env.update(FAAS_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")   # nothing written into examples/
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def home(tmp_path):
    """A private FAAS_HOME; the example starts `local` in it; stopped (and checked) at the end."""
    home = tmp_path / "faas-home"
    yield home
    r = run(home, "-m", "faas.cli.main", "endpoint", "stop", "local")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "endpoint local stopped", r.stdout   # the example had started it


def test_hello(home):
    r = run(home, str(EXAMPLES / "hello.py"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["Hello, you!"]
    assert (home / "endpoints" / "local" / "config.yaml").exists()


@pytest.mark.slow
def test_pi(home):
    r = run(home, str(EXAMPLES / "pi.py"), "--tasks", "40", "--points", "2000", "--chunksize", "8")
    assert r.returncode == 0, r.stderr
    lines = {m.group(1): (float(m.group(2)), float(m.group(3)), int(m.group(4)))
             for m in re.finditer(r"^(\S+) +pi ~ ([\d.]+) +error ([\d.]+) +\((\d+) tasks in [\d.]+ s\)$",
                                  r.stdout, re.M)}
    assert set(lines) == {"submit", "map(chunksize=8)", "client.submit_batch"}, r.stdout
    for label, (estimate, error, tasks) in lines.items():
        assert abs(estimate - math.pi) < 0.1, (label, r.stdout)
        assert error == pytest.approx(abs(estimate - math.pi), abs=2e-6)
        assert tasks == 40
    assert re.search(r"^endpoint ready in [\d.]+ s$", r.stdout, re.M)


@pytest.mark.slow
def test_thumbnails_with_samples_and_a_bad_file(home, tmp_path):
    from PIL import Image
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "notes.txt").write_text("not an image\n")
    r = run(home, str(EXAMPLES / "thumbnails.py"), str(src), str(dst), "--size", "64", "--make-samples", "6")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "wrote 6 sample images" in r.stdout
    assert "6 thumbnail(s) written" in r.stdout and "1 failed" in r.stdout
    assert re.search(r"^notes\.txt: failed: UnidentifiedImageError", r.stderr, re.M), r.stderr
    samples = sorted(p for p in src.iterdir() if p.name.startswith("sample_"))
    assert len(samples) == 6
    thumbs = sorted(dst.iterdir())
    assert [t.stem for t in thumbs] == [s.stem for s in samples]
    for s, t in zip(samples, thumbs, strict=True):
        with Image.open(s) as orig, Image.open(t) as im:
            assert max(orig.size) > 64
            assert max(im.size) <= 64 and max(im.size) >= 60, (t, im.size)
            assert abs(im.size[0] / im.size[1] - orig.size[0] / orig.size[1]) < 0.1   # aspect kept
            # transparent PNG samples stay PNG (RGBA); opaque ones become JPEG
            assert (im.format, im.mode) == (("PNG", "RGBA") if orig.mode == "RGBA" else ("JPEG", "RGB"))
            assert t.suffix == (".png" if im.format == "PNG" else ".jpg")


@pytest.mark.slow
def test_ci_batch_with_faas_submit(home, tmp_path):
    out = tmp_path / "results.jsonl"
    r = run(home, "-m", "faas.cli.main", "submit", "--function", "tasks:score", "--input", "calls.jsonl",
            "--output", str(out), "--chunksize", "4", cwd=CI_BATCH)
    assert r.returncode == 0, r.stderr
    assert "12 call(s): 12 succeeded, 0 failed" in r.stderr
    spec = importlib.util.spec_from_file_location("ci_batch_tasks", CI_BATCH / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    calls = [json.loads(line) for line in (CI_BATCH / "calls.jsonl").read_text().splitlines() if line.strip()]
    assert len(calls) == 12
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["index"] for x in results] == list(range(12))
    assert [x["result"] for x in results] == [tasks.score(*c.get("args", []), **c.get("kwargs", {}))
                                              for c in calls]
    assert len({x["task_id"] for x in results}) == 3     # 12 calls, 4 per task message
    assert not (CI_BATCH / "results.jsonl").exists()


def test_ci_workflow_is_well_formed():
    wf = yaml.safe_load((CI_BATCH / "workflow.yml").read_text())
    assert isinstance(wf, dict) and wf["name"]
    triggers = wf.get("on", wf.get(True))          # YAML 1.1 reads the key `on` as true
    assert "workflow_dispatch" in triggers
    job = wf["jobs"]["batch"]
    assert job["runs-on"]
    env = job["env"]
    for key in ("FAAS_STORE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FAAS_SIGNING_KEY"):
        assert env[key] == f"${{{{ secrets.{key} }}}}"
    steps = job["steps"]
    assert all(isinstance(s, dict) and ("uses" in s) != ("run" in s) for s in steps), steps
    assert steps[0]["uses"].startswith("actions/checkout@")

    # the batch step: a real `faas submit` command line, with options the CLI accepts
    (submit,) = [s for s in steps if "faas submit" in s.get("run", "")]
    argv = shlex.split(submit["run"])
    assert argv[:2] == ["faas", "submit"] and "continue-on-error" not in submit
    from faas.cli.main import submit as submit_cmd
    ctx = submit_cmd.make_context("submit", argv[2:])
    assert ctx.params["endpoint_name"] == "mysite"
    assert ctx.params["function_spec"] == "tasks:score"
    assert ctx.params["input_path"] == "calls.jsonl" and ctx.params["output_path"] == "results.jsonl"
    wd = Path(job["defaults"]["run"]["working-directory"])
    assert (EXAMPLES.parent / wd / "calls.jsonl").exists() and (EXAMPLES.parent / wd / "tasks.py").exists()

    # the endpoint check is valid Python
    (check,) = [s for s in steps if "describe_endpoint" in s.get("run", "")]
    code = check["run"].split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    compile(code, "workflow.yml: endpoint check", "exec")

    # results are uploaded even when the batch failed
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == str(wd / "results.jsonl")
    assert steps.index(upload) > steps.index(submit)


def _workflow_steps(secrets: dict, workdir: Path, home: Path) -> tuple[dict, list[dict]]:
    """The batch job's environment (its ``${{ secrets.X }}`` filled in from ``secrets``, an empty
    string where the repository has none, as Actions does) and its ``run`` steps."""
    job = yaml.safe_load((CI_BATCH / "workflow.yml").read_text())["jobs"]["batch"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home),
           "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]}
    for k, v in job["env"].items():
        m = re.fullmatch(r"\$\{\{ secrets\.(\w+) \}\}", v)
        env[k] = secrets.get(m.group(1), "") if m else "us-east-1"
    return env, [s for s in job["steps"] if "run" in s and "pip install" not in s["run"]]


@pytest.mark.slow
@pytest.mark.aws
def test_ci_workflow_runs_as_a_runner_runs_it(tmp_path, moto_url, s3_bucket, monkeypatch):
    """The workflow's own steps, in a fresh HOME on another "machine" (nothing of the site's
    FAAS_HOME): with the signing key as a secret the batch runs; without it, it fails at once
    and says which variable to set."""
    import shutil

    from faas import signing
    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import running_endpoint
    key = signing.new_key("ci1")
    store = f"s3://{s3_bucket}/faas"
    work = tmp_path / "repo" / "examples" / "ci_batch"
    shutil.copytree(CI_BATCH, work)
    with running_endpoint(tmp_path / "site", name="mysite", store=store, queue="sqs", signing_keys=[key]):
        secrets = {"FAAS_STORE": store, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        for with_key in (True, False):
            env, steps = _workflow_steps(dict(secrets, **({"FAAS_SIGNING_KEY": key} if with_key else {})),
                                         work, tmp_path / f"runner-home-{with_key}")
            outs = []
            for step in steps:
                p = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=240)
                outs.append(p)
                if p.returncode != 0:
                    break
            if with_key:
                assert all(p.returncode == 0 for p in outs), [(p.stdout, p.stderr) for p in outs]
                results = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
                assert len(results) == 12 and all("result" in r for r in results), results[:2]
                (work / "results.jsonl").unlink()
            else:
                assert outs[-1].returncode != 0, outs[-1].stdout
                assert "FAAS_SIGNING_KEY" in outs[-1].stderr and "ci1" in outs[-1].stderr, outs[-1].stderr
