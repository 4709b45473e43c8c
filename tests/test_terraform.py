"""The Terraform site module (infra/terraform/) and ``--from-terraform``.

What runs where:
- ``terraform fmt -check``, and ``terraform init``/``validate``/``apply`` of the provider-free
  ``modules/site/policy`` module (names, ARNs, IAM policy documents): need only the terraform
  binary; skipped when it is not on PATH.
- ``terraform validate`` of ``modules/site`` and ``example/``: needs the hashicorp/aws provider.
  ``terraform init`` downloads it from registry.terraform.io; where that cannot be reached (as
  here) the test is skipped, saying so. A provider mirror in $TF_CLI_CONFIG_FILE makes it run.
- checkov (its own venv: it pins an older boto3): ``$FAAS_CHECKOV`` or ``checkov`` on PATH, else
  skipped. Zero failed checks; every skip is a ``#checkov:skip=ID:reason`` in the code.
- IAM exactness: two endpoints against the moto server (S3 + SQS), deployed the way the module
  deploys them (queues made beforehand with the module's attributes, config.yaml and the client
  profile made from Terraform outputs). Every AWS call of every process is recorded through
  botocore hooks (tests/aws_calls) with its role (client: this process; site:NAME: endpoint
  NAME's daemon, pools, workers and the site's CLI) and its resource; the policies rendered by
  terraform from the module must allow each call (each endpoint's by its own policy), each
  (action, resource) they allow must have been called (none missing, none extra), and no
  endpoint's calls or policy may touch the other's queues, record or journal.
- IAM enforced: a moto server of its own that checks the module's policies; one endpoint's role
  is refused (AccessDenied) the other's queues and record.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from faas.cli import terraform as tf
from faas.exceptions import ConfigError

HERE = Path(__file__).parent
ROOT = HERE.parent
INFRA = ROOT / "infra" / "terraform"
MODULE = INFRA / "modules" / "site"
POLICY_MODULE = MODULE / "policy"
EXAMPLE = INFRA / "example"
SAMPLE = HERE / "terraform_outputs.json"
TERRAFORM = shutil.which("terraform")

needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")

#: ``terraform init`` output that means the provider could not be downloaded (no network)
_NO_PROVIDER = re.compile(r"Failed to query available provider packages|could not connect to "
                          r"registry|Failed to install provider|no such host|dial tcp|"
                          r"Could not retrieve the list of available versions", re.I)


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory):
    """terraform's environment: no update check, no prompts, a CLI config file that exists."""
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")
    cfg = os.environ.get("TF_CLI_CONFIG_FILE")
    if not cfg or not Path(cfg).exists():   # keep a real one (it may name a provider mirror)
        empty = tmp_path_factory.mktemp("tfcli") / "terraformrc"
        empty.write_text("")
        env["TF_CLI_CONFIG_FILE"] = str(empty)
    return env


def _terraform(args: list[str], cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([TERRAFORM, *args, "-no-color"] if args[0] != "fmt" else [TERRAFORM, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# -- terraform fmt / validate -------------------------------------------------------------------

@needs_terraform
def test_terraform_fmt(tf_env):
    r = _terraform(["fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)], ROOT, tf_env)
    assert r.returncode == 0, ("terraform fmt -check failed (run `terraform fmt -recursive infra/terraform`):\n"
                               f"{r.stdout}{r.stderr}")


@needs_terraform
def test_policy_module_validates_offline(tf_env, tmp_path):
    """The provider-free part of the module: init and validate need no network."""
    work = tmp_path / "policy"
    shutil.copytree(POLICY_MODULE, work)
    r = _terraform(["init", "-backend=false", "-input=false"], work, tf_env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _terraform(["validate", "-json"], work, tf_env)
    result = json.loads(r.stdout)
    assert result["valid"] and result["error_count"] == 0, result


@needs_terraform
@pytest.mark.parametrize("root", ["modules/site", "example"])
def test_terraform_validate_needs_aws_provider(tf_env, tmp_path, root):
    """``terraform validate`` of the module and the example root. Skipped where the AWS provider
    cannot be downloaded (init fails within a second or two when DNS fails; bounded at 120 s)."""
    work = tmp_path / "tf"
    shutil.copytree(INFRA, work, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    cwd = work / root
    try:
        r = _terraform(["init", "-backend=false", "-input=false"], cwd, tf_env, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("terraform init did not finish in 120 s (no network to registry.terraform.io?): "
                    "validate needs the hashicorp/aws provider")
    if r.returncode != 0 and _NO_PROVIDER.search(r.stdout + r.stderr):
        pytest.skip("terraform validate needs the hashicorp/aws provider, which could not be "
                    "downloaded here (no access to registry.terraform.io); runs where it can, "
                    "or with a provider mirror in $TF_CLI_CONFIG_FILE")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _terraform(["validate", "-json"], cwd, tf_env)
    result = json.loads(r.stdout)
    assert result["valid"] and result["error_count"] == 0, json.dumps(result, indent=1)


# -- checkov ------------------------------------------------------------------------------------

def _checkov() -> str | None:
    exe = os.environ.get("FAAS_CHECKOV") or shutil.which("checkov")
    return exe if exe and Path(exe).exists() else None


@pytest.mark.skipif(_checkov() is None, reason="checkov is not installed: install it in its own venv "
                    "(python -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov) "
                    "and set FAAS_CHECKOV=/tmp/checkov-venv/bin/checkov")
def test_checkov_no_failed_checks(tmp_path):
    """Zero failed checks; each skipped one carries its reason in the code."""
    work = tmp_path / "tf"
    shutil.copytree(INFRA, work, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    r = subprocess.run([_checkov(), "-d", str(work), "--framework", "terraform", "--skip-download",
                        "-o", "json"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, BC_SKIP_MAPPING="TRUE"))
    try:
        report = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"checkov printed no JSON (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    reports = report if isinstance(report, list) else [report]
    terraform = [x for x in reports if x.get("check_type") == "terraform"]
    assert terraform, f"checkov found no Terraform to scan: {r.stdout[-2000:]}"
    summary = terraform[0]["summary"]
    results = terraform[0]["results"]
    failed = [f"{c['check_id']} {c['check_name']} on {c['resource']} ({c['file_path']})"
              for c in results["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0, summary
    # It did look at the module's resources, through the example root.
    checked = {c["resource"] for c in results["passed_checks"]}
    for resource in ("module.site.aws_s3_bucket.store", "module.site.aws_sqs_queue.tasks",
                     "module.site.aws_iam_policy.client", "module.site.aws_iam_policy.site"):
        assert resource in checked, f"checkov did not check {resource}"
    skipped = {c["check_id"]: c["check_result"].get("suppress_comment", "") for c in results["skipped_checks"]}
    for check_id, reason in skipped.items():
        assert len(reason.strip()) >= 20, f"checkov skip of {check_id} has no written reason"
    assert r.returncode == 0, r.stderr[-2000:]
    # ... and no skip is stale: without the comments, exactly the skipped checks fail.
    for tf_file in work.rglob("*.tf"):
        tf_file.write_text(re.sub(r"(?m)^\s*#checkov:skip=.*\n", "", tf_file.read_text()))
    r = subprocess.run([_checkov(), "-d", str(work), "--framework", "terraform", "--skip-download",
                        "-o", "json"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, BC_SKIP_MAPPING="TRUE"))
    bare = json.loads(r.stdout)
    bare = [x for x in (bare if isinstance(bare, list) else [bare]) if x.get("check_type") == "terraform"][0]
    assert {c["check_id"] for c in bare["results"]["failed_checks"]} == set(skipped)


# -- outputs -> config.yaml and profile ------------------------------------------------------------

def _sample() -> dict:
    return json.loads(SAMPLE.read_text())


def test_config_from_outputs():
    from faas.endpoint.config import UserEndpointConfig
    data = tf.config_from_outputs(_sample(), "mysite")
    assert data == {"store": "s3://faas-mysite-123456789012/faas",
                    "queue": "https://sqs.us-east-1.amazonaws.com/123456789012/faas-mysite",
                    "max_receives": 5, "visibility_timeout": 60}
    cfg = UserEndpointConfig.model_validate({**data, "engine": {"provider": {"type": "slurm", "partition": "cpu"}}})
    assert cfg.queue_url("mysite", Path("/home/x/.faas")) == data["queue"]
    # `terraform output -json faas` (the value alone) reads the same
    assert tf.config_from_outputs(_sample()["faas"]["value"], "mysite") == data
    with pytest.raises(ConfigError,
                       match=r"endpoint 'other' is not in the Terraform outputs \(endpoints there: mysite\)"):
        tf.config_from_outputs(_sample(), "other")
    bad = _sample()
    bad["faas"]["value"]["schema"] = 1     # one site role for every endpoint: apply the module again
    with pytest.raises(ConfigError, match="schema 1; this faas reads schema 2"):
        tf.config_from_outputs(bad, "mysite")
    with pytest.raises(ConfigError, match="no faas site output"):
        tf.config_from_outputs({"bucket": {"value": "b", "type": "string"}}, "mysite")


def test_profile_from_outputs_and_command(tmp_path, monkeypatch):
    section, values = tf.profile_from_outputs(_sample())
    assert section == "profile mysite"
    assert values == {"store": "s3://faas-mysite-123456789012/faas", "reply_queue_prefix": "faas-reply-",
                      "endpoint": "mysite"}
    assert tf.profile_from_outputs(_sample(), "default")[0] == "default"
    two = _with_endpoint(_sample(), "gpu")
    assert tf.profile_from_outputs(two, "x", "gpu")[1]["endpoint"] == "gpu"
    assert tf.profile_from_outputs(two, "x")[1]["endpoint"] == "mysite"    # named like the site
    two["faas"]["value"]["site"] = "elsewhere"
    assert "endpoint" not in tf.profile_from_outputs(two, "x")[1]
    with pytest.raises(ConfigError, match="endpoint 'cpu' is not in the Terraform outputs"):
        tf.profile_from_outputs(two, "x", "cpu")

    # the command, then the client settings it makes
    home = tmp_path / "home"
    for k in list(os.environ):
        if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
            monkeypatch.delenv(k)
    monkeypatch.setenv("FAAS_HOME", str(home))
    home.mkdir()
    (home / "config").write_text("[profile other]\nstore = file:///tmp/x\n")
    out = tmp_path / "outputs.json"
    out.write_text(SAMPLE.read_text())
    r = CliRunner().invoke(tf.profile, ["create", "tf", "--from-terraform", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote [profile tf]" in r.output
    assert "role_arn = arn:aws:iam::123456789012:role/faas-mysite-client" in r.output
    from faas.config import resolve
    s = resolve("tf")
    assert (s.store, s.endpoint, s.reply_queue_prefix) == (
        "s3://faas-mysite-123456789012/faas", "mysite", "faas-reply-")
    assert resolve("other").store == "file:///tmp/x"          # other sections kept
    r = CliRunner().invoke(tf.profile, ["create", "tf", "--from-terraform", str(out)])
    assert "updated [profile tf]" in r.output
    r = CliRunner().invoke(tf.profile, ["create", "tf", "--from-terraform", str(out), "--endpoint", "nope"])
    assert r.exit_code != 0 and "endpoint 'nope' is not in the Terraform outputs" in str(r.exception)
    assert (home / "config").stat().st_mode & 0o777 == 0o644
    # the endpoint's signing key, kept in the profile: the file becomes private
    signing = pytest.importorskip("faas.signing")
    key = signing.new_key("k1")
    r = CliRunner().invoke(tf.profile, ["create", "tf", "--from-terraform", str(out), "--signing-key", key])
    assert r.exit_code == 0, r.output
    assert key.split(":")[1] not in r.output and "signing_key = (secret)" in r.output
    assert (home / "config").stat().st_mode & 0o777 == 0o600
    assert resolve("tf").signing_key == key
    r = CliRunner().invoke(tf.profile, ["create", "tf", "--from-terraform", str(out), "--signing-key", "nokey"])
    assert r.exit_code != 0 and "expected ID:SECRET" in str(r.exception)


def _with_endpoint(outputs: dict, name: str) -> dict:
    """``outputs`` with a second endpoint ``name``, as the module makes it (its own queues, and
    its own role faas-SITE-site-NAME)."""
    site = outputs["faas"]["value"]
    first = site["endpoints"][site["site"]]
    entry = {k: v.replace(f"faas-{site['site']}", f"faas-{name}") for k, v in first.items()
             if k.endswith(("queue_url", "queue_arn"))}
    for key in ("site_role_arn", "site_policy_arn"):
        entry[key] = f"{first[key]}-{name}"
    entry["site_instance_profile"] = None
    site["endpoints"][name] = entry
    return outputs


def _configure(tmp_path: Path, monkeypatch, outputs: dict, name: str):
    """``faas endpoint configure NAME --from-terraform`` with ``outputs`` in a fresh FAAS_HOME."""
    from faas.cli.main import main
    for k in list(os.environ):
        if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
            monkeypatch.delenv(k)
    monkeypatch.setenv("FAAS_HOME", str(tmp_path / "home"))
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / "outputs.json"
    out.write_text(json.dumps(outputs))
    return CliRunner().invoke(main, ["endpoint", "configure", name, "--from-terraform", str(out),
                                     "--provider", "slurm", "--partition", "cpu"])


def test_endpoint_configure_from_terraform(tmp_path, monkeypatch):
    """``faas endpoint configure NAME --from-terraform``: config.yaml, and the AWS profile of the
    endpoint's own site role."""
    r = _configure(tmp_path, monkeypatch, _sample(), "mysite")
    assert r.exit_code == 0, r.output
    from faas.endpoint import config as ep_config
    cfg = ep_config.load(tmp_path / "home" / "endpoints" / "mysite" / "config.yaml")
    assert cfg.store == "s3://faas-mysite-123456789012/faas"
    assert cfg.queue == "https://sqs.us-east-1.amazonaws.com/123456789012/faas-mysite"
    assert (cfg.max_receives, cfg.visibility_timeout) == (5, 60)
    assert cfg.engine.provider.type == "slurm" and cfg.engine.provider.partition == "cpu"
    assert "[profile faas-mysite-site]\nrole_arn = arn:aws:iam::123456789012:role/faas-mysite-site\n" in r.output
    assert "AWS_PROFILE=faas-mysite-site faas endpoint start mysite" in r.output


def test_endpoint_configure_picks_the_endpoints_own_role(tmp_path, monkeypatch):
    """Each endpoint of a site runs as its own role; an endpoint the outputs give no role is
    refused, by name, before config.yaml is written."""
    r = _configure(tmp_path, monkeypatch, _with_endpoint(_sample(), "gpu"), "gpu")
    assert r.exit_code == 0, r.output
    assert "role_arn = arn:aws:iam::123456789012:role/faas-mysite-site-gpu\n" in r.output
    assert "faas-mysite-site\n" not in r.output
    assert "AWS_PROFILE=faas-mysite-site-gpu faas endpoint start gpu" in r.output
    outputs = _with_endpoint(_sample(), "cpu")
    del outputs["faas"]["value"]["endpoints"]["cpu"]["site_role_arn"]
    r = _configure(tmp_path / "2", monkeypatch, outputs, "cpu")
    assert r.exit_code != 0
    assert "no site role for endpoint 'cpu'" in r.output, r.output
    assert not (tmp_path / "2" / "home" / "endpoints" / "cpu" / "config.yaml").exists()
    with pytest.raises(ConfigError, match="endpoint 'cpu' is not in the Terraform outputs"):
        tf.site_role_lines(_sample(), "cpu")
    with_profile = _sample()
    with_profile["faas"]["value"]["endpoints"]["mysite"]["site_instance_profile"] = "faas-mysite-site"
    assert tf.site_role_lines(with_profile, "mysite").endswith("its instance profile faas-mysite-site)")


def test_sample_outputs_match_the_module():
    """tests/terraform_outputs.json (written by hand, as `terraform output -json` of example/
    prints it) has the keys that the module's `faas` output and the example root's outputs have."""
    text = (MODULE / "outputs.tf").read_text()
    block = text[text.index('output "faas"'):text.index('output "bucket"')]
    top = set(re.findall(r"^    (\w+)\s+=", block, re.M))
    per_endpoint = set(re.findall(r"^        (\w+)\s+=", block, re.M))
    sample = _sample()
    site = sample["faas"]["value"]
    assert set(site) == top
    assert set(site["endpoints"]["mysite"]) == per_endpoint
    example = set(re.findall(r'^output "(\w+)"', (EXAMPLE / "outputs.tf").read_text(), re.M))
    assert set(sample) == example
    for name, out in sample.items():
        assert set(out) == {"sensitive", "type", "value"}, name


def test_queue_attributes_match_what_the_daemon_declares():
    """The daemon re-declares its queues at start (CreateQueue with these attributes): the module
    must make them the same, or SQS refuses and the site role would need SetQueueAttributes."""
    main = (MODULE / "main.tf").read_text()
    dlq = main[main.index('resource "aws_sqs_queue" "dead_letters"'):main.index('resource "aws_sqs_queue" "tasks"')]
    tasks = main[main.index('resource "aws_sqs_queue" "tasks"'):
                 main.index('resource "aws_sqs_queue_redrive_allow_policy"')]
    import inspect

    from faas.store import sqs
    create = inspect.getsource(sqs.SQSQueue.create)
    assert '"MessageRetentionPeriod": "1209600"' in create
    assert re.search(r"message_retention_seconds\s+=\s+1209600", dlq)
    assert '"ReceiveMessageWaitTimeSeconds": "0"' in create and re.search(r"receive_wait_time_seconds\s+=\s+0\b", tasks)
    assert re.search(r"visibility_timeout_seconds\s+=\s+var\.visibility_timeout", tasks)
    assert re.search(r"maxReceiveCount\s+=\s+var\.max_receives", tasks)
    assert re.search(r"deadLetterTargetArn\s+=\s+aws_sqs_queue\.dead_letters\[each\.key\]\.arn", tasks)


# -- IAM: exactly the calls the code makes ----------------------------------------------------------

#: boto3 operation -> IAM action. An operation missing here fails the test: add it, and to the
#: policies in infra/terraform/modules/site/policy/main.tf if the code needs it.
OP_TO_ACTION = {
    ("s3", "PutObject"): "s3:PutObject",
    ("s3", "GetObject"): "s3:GetObject",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObject"): "s3:DeleteObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("sqs", "SendMessage"): "sqs:SendMessage",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "ReceiveMessage"): "sqs:ReceiveMessage",
    ("sqs", "DeleteMessage"): "sqs:DeleteMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibility"): "sqs:ChangeMessageVisibility",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("sqs", "GetQueueUrl"): "sqs:GetQueueUrl",
    ("sqs", "GetQueueAttributes"): "sqs:GetQueueAttributes",
    ("sqs", "SetQueueAttributes"): "sqs:SetQueueAttributes",
    ("sqs", "CreateQueue"): "sqs:CreateQueue",
    ("sqs", "DeleteQueue"): "sqs:DeleteQueue",
    ("sqs", "PurgeQueue"): "sqs:PurgeQueue",
}

#: calls the code makes that the module refuses on purpose, with the reason
DENIED_ON_PURPOSE = {
    ("site", "sqs:DeleteQueue"): "`faas endpoint delete` tries to delete the endpoint's queues; "
                                 "Terraform owns them (terraform destroy removes them), and the "
                                 "command goes on when AWS refuses",
}

ACCOUNT = "123456789012"   # moto's account, and the sample outputs'
REGION = "us-east-1"


def _iam_glob(pattern: str) -> re.Pattern:
    """An IAM Resource pattern: ``*`` any run of characters (``/`` too), ``?`` one character."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z")


def _resource_arn(rec: dict) -> str:
    if rec["service"] == "s3":
        return f"arn:aws:s3:::{rec['bucket']}" + (f"/{rec['key']}" if "key" in rec else "")
    return f"arn:aws:sqs:{rec.get('region') or REGION}:{rec.get('account') or ACCOUNT}:{rec['queue']}"


def _render_policies(env: dict, work: Path, site: dict) -> dict:
    """The module's policy documents for this deployment, rendered by terraform itself:
    ``{"client": DOC, "site": {ENDPOINT: DOC}}``."""
    work.mkdir(parents=True, exist_ok=True)
    prefix = site["store"].split("/", 3)[3] if site["store"].count("/") >= 3 else ""
    (work / "main.tf").write_text(f"""
module "policy" {{
  source             = {json.dumps(str(POLICY_MODULE))}
  partition          = {json.dumps(site["partition"])}
  region             = {json.dumps(site["region"])}
  account_id         = {json.dumps(site["account_id"])}
  bucket             = {json.dumps(site["bucket"])}
  store_prefix       = {json.dumps(prefix)}
  endpoints          = {json.dumps(sorted(site["endpoints"]))}
  reply_queue_prefix = {json.dumps(site["reply_queue_prefix"])}
}}
output "client" {{ value = module.policy.client_policy_json }}
output "site" {{ value = module.policy.site_policies_json }}
output "store_url" {{ value = module.policy.store_url }}
output "queues" {{ value = module.policy.queues }}
""")
    for args in (["init", "-backend=false", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        r = _terraform(args, work, env)
        assert r.returncode == 0, r.stdout + r.stderr
    r = _terraform(["output", "-json"], work, env)
    out = json.loads(r.stdout)
    assert out["store_url"]["value"] == site["store"]
    for name, ep in site["endpoints"].items():
        q = out["queues"]["value"][name]
        assert (q["arn"], q["dlq_arn"]) == (ep["queue_arn"], ep["dead_letter_queue_arn"])
        assert ep["queue_url"].endswith("/" + q["name"])
    assert set(out["site"]["value"]) == set(site["endpoints"]), "one site policy per endpoint"
    return {"client": json.loads(out["client"]["value"]),
            "site": {e: json.loads(doc) for e, doc in out["site"]["value"].items()}}


def _policy_of(policies: dict, role: str) -> dict:
    """The policy of a recorded role: ``client``, or ``site:ENDPOINT`` (that endpoint's own)."""
    return policies["client"] if role == "client" else policies["site"][role.split(":", 1)[1]]


def _all_policies(policies: dict) -> dict[str, dict]:
    return {"client": policies["client"], **{f"site:{e}": doc for e, doc in policies["site"].items()}}


@pytest.fixture(scope="module")
def two_endpoints(tmp_path_factory, tf_env):
    """A site of two endpoints as `terraform output -json` would give it, and the module's
    policies for it: ``(outputs, site, a, b, policies)``; ``a`` is named like the site."""
    if TERRAFORM is None:
        pytest.skip("terraform is not on PATH (it renders the module's policies)")
    root = tmp_path_factory.mktemp("tfsite")
    a = f"tf{uuid.uuid4().hex[:8]}"
    b = f"{a}x"
    # the sample's outputs for a site and endpoint of a fresh name, and a second endpoint; a
    # short visibility timeout (heartbeats within seconds) and 2 deliveries
    outputs = _with_endpoint(json.loads(SAMPLE.read_text().replace("mysite", a)), b)
    site = outputs["faas"]["value"]
    site.update(visibility_timeout=3, max_receives=2)
    return outputs, site, a, b, _render_policies(tf_env, root / "render", site)


def square(x):
    return x * x


def fails(x):
    raise KeyError(f"no {x}")


def nap(seconds):
    time.sleep(seconds)
    return seconds


@pytest.fixture(scope="module")
def recorded(moto_url, tmp_path_factory, two_endpoints):
    """Deploy two endpoints as the module does, run a workload that takes every AWS path of the
    code on the first (and a task on the second, beside it), and return (the deployment's `faas`
    outputs, the call records, the rendered policies). Each endpoint's processes record their
    calls as role ``site:NAME``."""
    import boto3

    import faas
    from faas.endpoint import config as ep_config
    from faas.endpoint import control
    from faas.exceptions import TaskCancelled, WorkerLost

    sys.path.insert(0, str(HERE / "aws_calls"))
    import sitecustomize as aws_calls  # the hook installer, also loaded by the subprocesses
    aws_calls.install()

    outputs, site, name, other, policies = two_endpoints
    root = tmp_path_factory.mktemp("tfrun")
    (root / "outputs.json").write_text(json.dumps(outputs))

    # What `terraform apply` makes, on the moto server: the bucket and each endpoint's queues.
    boto3.client("s3").create_bucket(Bucket=site["bucket"])
    for e, ep in site["endpoints"].items():
        _create_queues(boto3.client("sqs"), site, e, ep)

    home = root / "home"
    log = root / "aws-calls.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        mp.setenv("FAAS_AWS_CALL_LOG", str(log))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE / "aws_calls"), os.environ.get("PYTHONPATH", "")]))
        mp.setattr(aws_calls, "process_role", "client")   # this process: the client

        def start(endpoint: str) -> None:
            """The endpoint's daemon, and everything it starts, as its own site role."""
            mp.setenv("FAAS_AWS_CALL_ROLE", f"site:{endpoint}")
            control.start_detached(endpoint, home, wait=60)

        # `faas endpoint configure NAME --from-terraform` and `faas profile create --from-terraform`
        for e, blocks in ((name, 1), (other, 0)):
            data = tf.endpoint_settings(root / "outputs.json", e)
            data.update(stop_grace=10, engine={
                "max_workers_per_node": 2, "prefetch": 4, "max_idle_time": 300,
                "provider": {"type": "local", "init_blocks": blocks, "min_blocks": blocks, "max_blocks": 1}})
            ep_config.write(ep_config.endpoint_dir(e, home) / "config.yaml",
                            ep_config.UserEndpointConfig.model_validate(data))
        section, values = tf.profile_from_outputs(outputs, "tf")
        tf.write_profile(home, section, values)
        mp.setenv("FAAS_PROFILE", "tf")

        start(name)
        start(other)
        try:
            c = faas.client()
            assert c.settings.store == site["store"] and c.settings.endpoint == name
            assert {name, other} <= {e["name"] for e in c.list_endpoints()}
            assert "queue_depth" in c.describe_endpoint(name)
            assert "queue_depth" in c.describe_endpoint(other)
            with faas.Executor(other) as ex:     # the other endpoint scales up a block for it
                assert ex.submit(square, 5).result(timeout=90) == 25
            with faas.Executor(name) as ex:
                assert ex.submit(square, 3).result(timeout=60) == 9
                assert list(ex.map(square, range(30), chunksize=7)) == [i * i for i in range(30)]
                big = os.urandom(300 * 1024)             # over SQS's 256 KiB: spills to args/
                assert ex.submit(len, big).result(timeout=60) == len(big)
                assert len(ex.submit(os.urandom, 300 * 1024).result(timeout=60)) == 300 * 1024
                with pytest.raises(KeyError):
                    ex.submit(fails, "x").result(timeout=60)
                with pytest.raises(WorkerLost, match="dead-lettered"):
                    ex.submit(os._exit, 9).result(timeout=90)
            # cancel a running task; another client sees it running (running/ marker) first
            slow = c.run(function_id=c.register_function(nap), args=(60,))
            watcher = faas.client()
            deadline = time.monotonic() + 30
            while watcher.get_task(task_id=slow)["status"] != "running":
                assert time.monotonic() < deadline, "the slow task never showed as running"
                time.sleep(0.2)
            c.cancel(slow)
            with pytest.raises(TaskCancelled):
                c.get_result(task_id=slow, timeout=30)
            watcher.close()
            # a stop while the pool holds queued tasks: it hands them back; the restarted
            # endpoint (queues exist: declared again) runs them
            with faas.Executor(name) as ex:
                futures = [ex.submit(nap, 2.5) for _ in range(6)]   # 2 run, 4 wait in the pool
                deadline = time.monotonic() + 30
                while sum(ex.client.get_task(task_id=f.task_id)["status"] == "running" for f in futures) < 2 \
                        or c.describe_endpoint(name)["queue_depth"]["visible"] > 0:
                    assert time.monotonic() < deadline, "the pool never took the naps"
                    time.sleep(0.1)
                control.stop(name, home)
                start(name)
                assert [f.result(timeout=120) for f in futures] == [2.5] * 6
            # a task group, reloaded by another Executor (a restarted notebook) from its records
            tg = str(uuid.uuid4())
            with faas.Executor(name, task_group_id=tg) as ex:
                assert ex.submit(square, 4).result(timeout=60) == 16
            with faas.Executor(name, task_group_id=tg) as ex:
                assert [f.result(timeout=60) for f in ex.reload_tasks()] == [16]
            c.close()
            # the site admin's commands, as the endpoint's role
            mp.setenv("FAAS_AWS_CALL_ROLE", f"site:{name}")
            env = dict(os.environ)
            for args in (["endpoint", "status", name], ["endpoint", "delete", name, "--yes"]):
                r = subprocess.run([sys.executable, "-m", "faas.cli.main", *args], env=env,
                                   capture_output=True, text=True, timeout=120)
                assert r.returncode == 0, r.stdout + r.stderr
        finally:
            control.stop(name, home)
            control.stop(other, home)
            time.sleep(0.5)   # the last lines of the exiting processes
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return site, records, policies


def _create_queues(sqs, site: dict, name: str, ep: dict) -> None:
    """An endpoint's task and dead-letter queues with the attributes the module gives them."""
    sqs.create_queue(QueueName=f"faas-{name}-dlq", Attributes={
        "MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"})
    sqs.create_queue(QueueName=f"faas-{name}", Attributes={
        "VisibilityTimeout": str(site["visibility_timeout"]), "MessageRetentionPeriod": "345600",
        "ReceiveMessageWaitTimeSeconds": "0", "SqsManagedSseEnabled": "true",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": ep["dead_letter_queue_arn"],
                                     "maxReceiveCount": site["max_receives"]}, separators=(",", ":"))})


def _calls(site: dict, records: list[dict]) -> dict[tuple[str, str, str], int]:
    """(role, IAM action, resource ARN) -> number of calls."""
    out: dict[tuple[str, str, str], int] = {}
    unknown = sorted({(r["service"], r["op"]) for r in records if (r["service"], r["op"]) not in OP_TO_ACTION})
    assert not unknown, f"AWS operations with no IAM action in OP_TO_ACTION: {unknown}"
    roles = {"client"} | {f"site:{e}" for e in site["endpoints"]}
    nameless = [r for r in records if r.get("role") not in roles]
    assert not nameless, f"calls of no known role: {nameless[:5]}"
    for r in records:
        key = (r["role"], OP_TO_ACTION[(r["service"], r["op"])], _resource_arn(r))
        out[key] = out.get(key, 0) + 1
    return out


def _allows(policy: dict, action: str, arn: str) -> bool:
    return any(action in s["Action"] and any(_iam_glob(p).match(arn) for p in s["Resource"])
               for s in policy["Statement"])


def _endpoint_resources(site: dict, name: str) -> dict[str, str]:
    """What belongs to endpoint ``name`` alone, by kind: its queues, record and journal."""
    objects = f"arn:aws:s3:::{site['bucket']}/" + site["store"].split("/", 3)[3] + "/"
    ep = site["endpoints"][name]
    return {"queue": ep["queue_arn"], "dlq": ep["dead_letter_queue_arn"],
            "record": f"{objects}endpoints/{name}.json", "journal": f"{objects}journal/{name}/*"}


@pytest.mark.aws
def test_iam_policies_are_plain(recorded):
    """Allow statements with exact actions and listed resources only: what the other tests
    reason about (no wildcards in actions, no NotAction/NotResource/Condition/Deny)."""
    _, _, policies = recorded
    for role, policy in _all_policies(policies).items():
        for s in policy["Statement"]:
            assert set(s) == {"Sid", "Effect", "Action", "Resource"}, (role, s)
            assert s["Effect"] == "Allow" and isinstance(s["Action"], list) and isinstance(s["Resource"], list)
            for a in s["Action"]:
                assert re.fullmatch(r"(s3|sqs):[A-Za-z]+", a), (role, a)
            for res in s["Resource"]:
                assert res.startswith(("arn:aws:s3:::", "arn:aws:sqs:")) and res.count("*") <= 1, (role, res)


@pytest.mark.aws
def test_iam_resources_are_this_sites(recorded):
    """Each Resource is the bucket, one kind of object under the store's prefix (the kinds of
    faas.messages), the reply-queue pattern, or: for the client, any endpoint's queue or record;
    for an endpoint's role, its own queues, record and journal only. Nothing broader."""
    from faas import messages
    site, _, policies = recorded
    objects = f"arn:aws:s3:::{site['bucket']}/" + site["store"].split("/", 3)[3] + "/"
    tid, cid = "0" * 8 + "-0000-4000-8000-" + "0" * 12, "0" * 32
    kinds = {k.split("/")[0] for k in (
        messages.function_key("0" * 64, cid), messages.args_key(tid, cid), messages.result_key(tid, cid),
        messages.cancel_key(tid, cid), messages.running_key(tid, cid), messages.dead_letter_key("x"),
        messages.task_group_key(tid, cid, tid))}
    sqs = f"arn:aws:sqs:{site['region']}:{site['account_id']}:"
    shared = {f"arn:aws:s3:::{site['bucket']}", sqs + site["reply_queue_prefix"] + "*"}
    shared |= {objects + k + "/*" for k in kinds}
    allowed = {"client": shared | {objects + "endpoints/*"} |
               {ep["queue_arn"] for ep in site["endpoints"].values()}}
    for name in site["endpoints"]:
        allowed[f"site:{name}"] = shared | set(_endpoint_resources(site, name).values())
    for role, policy in _all_policies(policies).items():
        for s in policy["Statement"]:
            extra = set(s["Resource"]) - allowed[role]
            assert not extra, f"{role} {s['Sid']}: resources beyond its own: {sorted(extra)}"


@pytest.mark.aws
def test_iam_policies_allow_every_call(recorded):
    """None missing: every call of each role is allowed by that role's policy (each endpoint's
    by its own), but for the refusals documented in DENIED_ON_PURPOSE, each of which did happen."""
    site, records, policies = recorded
    calls = _calls(site, records)
    assert {r for r, _, _ in calls} == {"client"} | {f"site:{e}" for e in site["endpoints"]}
    denied = sorted((role, action, arn) for role, action, arn in calls
                    if not _allows(_policy_of(policies, role), action, arn))
    unexpected = [d for d in denied if (d[0].split(":")[0], d[1]) not in DENIED_ON_PURPOSE]
    assert not unexpected, "calls the module's IAM policies do not allow:\n" + "\n".join(map(str, unexpected))
    assert {(role.split(":")[0], action) for role, action, _ in denied} == set(DENIED_ON_PURPOSE)
    # and every object the code touched is under the store's prefix
    prefix = site["store"].split("/", 3)[3] + "/"
    for r in records:
        if r["service"] == "s3":
            assert r["bucket"] == site["bucket"]
            assert r.get("key", prefix).startswith(prefix) and r.get("prefix", prefix).startswith(prefix), r


@pytest.mark.aws
def test_each_endpoint_touches_only_its_own(recorded):
    """Two endpoints side by side: neither's processes call anything on the other's queues,
    record or journal."""
    site, records, _ = recorded
    calls = _calls(site, records)
    for name in site["endpoints"]:
        role = f"site:{name}"
        assert any(r == role for r, _, _ in calls), f"{role} made no calls"
        for other in set(site["endpoints"]) - {name}:
            theirs = [_iam_glob(p) for p in _endpoint_resources(site, other).values()]
            touched = [(a, arn) for r, a, arn in calls if r == role and any(rx.match(arn) for rx in theirs)]
            assert not touched, f"{role} called on {other}'s resources: {touched}"


def test_endpoint_policy_allows_nothing_on_another_endpoints(two_endpoints):
    """The attacker's view of the rendered documents: no action of endpoint A's policy is
    allowed on endpoint B's queues, record or journal (the old module's one site policy allowed
    every endpoint's queues to every endpoint), nor the other way round."""
    _, site, a, b, policies = two_endpoints
    for mine, other in ((a, b), (b, a)):
        policy = policies["site"][mine]
        actions = sorted({act for s in policy["Statement"] for act in s["Action"]})
        allowed = [f"{act} on {other}'s {kind} ({arn})" for kind, arn in _endpoint_resources(site, other).items()
                   for act in actions if _allows(policy, act, arn.replace("*", "x"))]
        assert not allowed, f"{mine}'s site policy allows:\n" + "\n".join(allowed)
        assert _allows(policy, "sqs:ReceiveMessage", site["endpoints"][mine]["queue_arn"])


@pytest.mark.aws
def test_iam_policies_allow_nothing_unused(recorded):
    """None extra: each (action, resource) of each statement was called by that role. The
    workload takes every path on the first endpoint; the second's policy must be the first's
    with its own queues, record and journal in their place."""
    site, records, policies = recorded
    calls = _calls(site, records)
    first, *others = sorted(site["endpoints"], key=lambda e: e != site["site"])
    unused = []
    for role, policy in (("client", policies["client"]), (f"site:{first}", policies["site"][first])):
        seen = [(a, arn) for (r, a, arn) in calls if r == role]
        for s in policy["Statement"]:
            for action in s["Action"]:
                for pattern in s["Resource"]:
                    rx = _iam_glob(pattern)
                    if not any(a == action and rx.match(arn) for a, arn in seen):
                        unused.append(f"{role} {s['Sid']}: {action} on {pattern}")
    assert not unused, "allowed but never called:\n" + "\n".join(unused)
    mine = _endpoint_resources(site, first)
    for other in others:
        theirs = _endpoint_resources(site, other)
        swap = {mine[k]: theirs[k] for k in mine}
        expected = [{**s, "Resource": [swap.get(res, res) for res in s["Resource"]]}
                    for s in policies["site"][first]["Statement"]]
        assert policies["site"][other]["Statement"] == expected


@pytest.mark.aws
def test_daemon_only_declares_the_terraform_queues(recorded):
    """The queues existed (Terraform's): each daemon's CreateQueue found its own as they are, so
    it never needed SetQueueAttributes, and nothing created a queue but the clients' reply queues."""
    site, records, _ = recorded
    ops = {(r["role"], r["op"], r.get("queue")) for r in records if r["service"] == "sqs"}
    assert not [o for o in ops if o[1] == "SetQueueAttributes"], ops
    created = {(role, q) for role, op, q in ops if op == "CreateQueue"}
    assert {role for role, _ in created} >= {f"site:{e}" for e in site["endpoints"]}
    for role, q in created:
        if role.startswith("site:"):
            name = role.split(":", 1)[1]
            assert q in (f"faas-{name}", f"faas-{name}-dlq")
        else:
            assert fnmatch.fnmatch(q, site["reply_queue_prefix"] + "*")


# -- IAM enforced: one endpoint's role against another endpoint's queue ------------------------------

@pytest.fixture
def enforcing_moto():
    """A moto server of this test's own, which enforces IAM once :func:`_enforce_iam` is called
    (enforcement is server-wide, so the session's shared server is never switched)."""
    from helpers import start_moto_server
    proc, url = start_moto_server()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _enforce_iam(url: str, on: bool = True) -> None:
    """From now on moto checks (or, ``on=False``, stops checking) every request against its
    principal's IAM policies."""
    req = urllib.request.Request(url + "/moto-api/reset-auth", data=b"0" if on else b"inf", method="POST",
                                 headers={"Content-Type": "text/plain"})   # not a form: moto reads the body
    assert json.load(urllib.request.urlopen(req, timeout=10))["status"] == "ok"


def _assume(session, url: str, site: dict, role: str, policy: dict) -> dict:
    """Make ``role`` with ``policy`` (as the module does) and return credentials that assume it."""
    iam = session.client("iam", endpoint_url=url)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{site['account_id']}:root"}}]}
    arn = iam.create_policy(PolicyName=role, PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    creds = session.client("sts", endpoint_url=url).assume_role(
        RoleArn=f"arn:aws:iam::{site['account_id']}:role/{role}", RoleSessionName="endpoint")["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def test_endpoint_role_is_refused_another_endpoints_queue(enforcing_moto, two_endpoints):
    """The attack: code running on endpoint A (any task there runs with A's credentials) reads
    endpoint B's task queue, whose messages carry B's tasks and their secrets (enough to forge
    their results), or writes B's record. Against moto enforcing the module's own policies, A's
    role gets AccessDenied on every such call, and is allowed the same calls on its own."""
    import boto3
    from botocore.exceptions import ClientError

    _, site, a, b, policies = two_endpoints
    admin = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name=site["region"])
    admin.client("s3", endpoint_url=enforcing_moto).create_bucket(Bucket=site["bucket"])
    sqs = admin.client("sqs", endpoint_url=enforcing_moto)
    for e, ep in site["endpoints"].items():
        _create_queues(sqs, site, e, ep)
    url = {e: sqs.get_queue_url(QueueName=f"faas-{e}")["QueueUrl"] for e in (a, b)}
    dlq = {e: sqs.get_queue_url(QueueName=f"faas-{e}-dlq")["QueueUrl"] for e in (a, b)}
    for e in (a, b):
        sqs.send_message(QueueUrl=url[e], MessageBody=f"a task of {e}, with its secret")
    as_a = boto3.Session(region_name=site["region"],
                         **_assume(admin, enforcing_moto, site, f"faas-{site['site']}-site", policies["site"][a]))
    _enforce_iam(enforcing_moto)
    sqs_a, s3_a = as_a.client("sqs", endpoint_url=enforcing_moto), as_a.client("s3", endpoint_url=enforcing_moto)
    prefix = site["store"].split("/", 3)[3]

    def refused(call, **kwargs) -> bool:
        """The call fails with AccessDenied (over SQS's JSON protocol moto sends its XML error,
        which botocore leaves in the message)."""
        try:
            answer = call(**kwargs)
        except ClientError as e:
            error = e.response["Error"]
            return e.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and \
                "AccessDenied" in f"{error.get('Code')} {error.get('Message')}"
        answer.pop("ResponseMetadata", None)
        pytest.fail(f"{a}'s role was allowed {call.__name__}({kwargs}): {answer}")

    # its own queue, record and journal: allowed
    got = sqs_a.receive_message(QueueUrl=url[a], WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in got] == [f"a task of {a}, with its secret"]
    sqs_a.change_message_visibility(QueueUrl=url[a], ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0)
    sqs_a.receive_message(QueueUrl=dlq[a], WaitTimeSeconds=0)
    s3_a.put_object(Bucket=site["bucket"], Key=f"{prefix}/endpoints/{a}.json", Body=b"{}")
    s3_a.put_object(Bucket=site["bucket"], Key=f"{prefix}/journal/{a}/x", Body=b"")
    # the other endpoint's: refused
    assert refused(sqs_a.receive_message, QueueUrl=url[b], WaitTimeSeconds=0)
    assert refused(sqs_a.receive_message, QueueUrl=dlq[b], WaitTimeSeconds=0)
    assert refused(sqs_a.send_message, QueueUrl=url[b], MessageBody="forged task")
    assert refused(sqs_a.get_queue_attributes, QueueUrl=url[b], AttributeNames=["All"])
    assert refused(s3_a.put_object, Bucket=site["bucket"], Key=f"{prefix}/endpoints/{b}.json",
                   Body=b"{}")
    assert refused(s3_a.put_object, Bucket=site["bucket"], Key=f"{prefix}/journal/{b}/x", Body=b"")
    # B's task is still there, unread
    _enforce_iam(enforcing_moto, on=False)
    attrs = sqs.get_queue_attributes(QueueUrl=url[b], AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"
