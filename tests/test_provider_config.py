"""``engine.provider`` is typed per provider (faas/endpoint/provider_config.py): each type's model
holds the keys its provider reads, config.yaml picks the model by ``type`` (Globus's and Parsl's
class names too), and errors name the key as config.yaml spells it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from faas.endpoint import config as ep_config
from faas.endpoint.provider_config import (
    BaseProviderConfig,
    LocalProviderConfig,
    PBSProviderConfig,
    PluginProviderConfig,
    SlurmProviderConfig,
)
from faas.exceptions import ConfigError
from faas.providers import PROVIDERS, make_provider, register_provider
from faas.providers.local import LocalProvider
from faas.providers.pbs import PBSProvider
from faas.providers.slurm import SlurmProvider

PROVIDERS_DIR = Path(ep_config.__file__).resolve().parent.parent / "providers"


def write_config(home: Path, name: str, text: str) -> Path:
    path = ep_config.endpoint_dir(name, home) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_text(home: Path, text: str, name: str = "ep"):
    return ep_config.load(write_config(home, name, text))


def problems(home: Path, text: str) -> list[str]:
    """The lines of the error load() raises, without the file name and the closing hint."""
    with pytest.raises(ConfigError) as e:
        load_text(home, text)
    return [line.strip() for line in str(e.value).splitlines()[1:] if not line.strip().startswith("(keys")]


# -- each type: its model, its provider, its round trip ------------------------------------------
ROUND_TRIPS = {
    "local": ("    type: local\n    max_blocks: 2\n    walltime: '1:00:00'\n    worker_init: module load x\n",
              LocalProviderConfig, LocalProvider),
    "slurm": ("    type: slurm\n    partition: cpu\n    account: proj1\n    qos: normal\n    constraint: 'a&b'\n"
              "    clusters: c2\n    gres: gpu:a100:4\n    cores_per_node: 32\n    mem_per_node: 1.5\n"
              "    exclusive: true\n    scheduler_options: '#SBATCH --mail-type=NONE'\n    cmd_timeout: 45\n"
              "    nodes_per_block: 2\n    launcher: {type: srun, overrides: --cpu-bind=none}\n",
              SlurmProviderConfig, SlurmProvider),
    "pbs": ("    type: pbs\n    queue: workq\n    account: ABC\n    select_options: ngpus=4\n    gpus_per_node: 4\n"
            "    walltime: 2-0\n    walltime_margin: 300\n",
            PBSProviderConfig, PBSProvider),
}


@pytest.mark.parametrize("kind", sorted(ROUND_TRIPS))
def test_each_type_loads_as_its_own_model_and_writes_back_the_same(faas_home, kind):
    text, model, provider_class = ROUND_TRIPS[kind]
    cfg = load_text(faas_home, "engine:\n  provider:\n" + text, kind)
    provider = cfg.engine.provider
    assert type(provider) is model and provider.type == kind and cfg.no_effect_here == []
    assert type(make_provider(provider, faas_home / kind)) is provider_class
    path = ep_config.endpoint_dir(kind, faas_home) / "config.yaml"
    ep_config.write(path, cfg)
    written = ep_config.yaml_load(path.read_text())["engine"]["provider"]
    assert set(written) <= set(model.model_fields)   # only its own keys: no other scheduler's
    again = ep_config.load(path)
    assert again.engine.provider == provider and again.no_effect_here == []


@pytest.mark.parametrize("alias, model", [
    ("LocalProvider", LocalProviderConfig), ("SlurmProvider", SlurmProviderConfig),
    ("PBSProProvider", PBSProviderConfig), ("TorqueProvider", PBSProviderConfig), ("PBSProvider", PBSProviderConfig),
])
def test_globus_and_parsl_class_names_pick_the_model(faas_home, alias, model):
    cfg = load_text(faas_home, f"engine:\n  provider:\n    type: {alias}\n")
    assert type(cfg.engine.provider) is model
    assert cfg.engine.provider.type == model.model_fields["type"].default   # written back in faas's spelling


def test_no_type_is_the_local_provider(faas_home):
    cfg = load_text(faas_home, "engine:\n  provider:\n    max_blocks: 3\n")
    assert type(cfg.engine.provider) is LocalProviderConfig
    assert type(ep_config.EngineConfig().provider) is LocalProviderConfig


# -- a plugin's type -------------------------------------------------------------------------------
@pytest.fixture
def lsf(tmp_path, monkeypatch):
    (tmp_path / "lsf_plugin_for_provider_tests.py").write_text(
        "from faas.providers import ClusterProvider\n\n\n"
        "class LSFProvider(ClusterProvider):\n"
        "    def submit(self, command, block_id):\n        return self.run(['bsub', self.cfg.lsf_queue])\n"
        "    def status(self, job_ids):\n        return {}\n"
        "    def cancel(self, job_ids):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    register_provider("lsf", "lsf_plugin_for_provider_tests:LSFProvider")
    yield "lsf"
    PROVIDERS.unregister("lsf")


def test_a_plugin_type_keeps_its_own_keys_and_types_the_schedulers_common_ones(faas_home, lsf):
    cfg = load_text(faas_home, "engine:\n  provider:\n    type: lsf\n    lsf_queue: short\n    account: p1\n"
                               "    cmd_timeout: 5\n    max_blocks: 4\n")
    provider = cfg.engine.provider
    assert type(provider) is PluginProviderConfig and provider.type == "lsf"
    assert provider.model_extra == {"lsf_queue": "short"} and provider.account == "p1" and provider.cmd_timeout == 5
    assert type(make_provider(provider, faas_home / "lsf")).__name__ == "LSFProvider"
    path = ep_config.endpoint_dir("ep", faas_home) / "config.yaml"
    ep_config.write(path, cfg)
    assert ep_config.load(path).engine.provider == provider   # its own key written back too
    assert problems(faas_home, "engine:\n  provider:\n    type: lsf\n    cmd_timeout: -1\n") == [
        "engine.provider.cmd_timeout: Input should be greater than 0 (got -1)"]


def test_an_unknown_type_names_the_types_there_are_and_the_keys_no_provider_has(faas_home, lsf):
    """The keys are judged by the built-in model that knows most of them (here PBS's)."""
    found = problems(faas_home, "engine:\n  provider:\n    type: condor\n    queue: long\n    select_options: a=1\n"
                                "    universe: vanilla\n")
    assert len(found) == 2, found
    assert found[0].startswith("engine.provider.type: expected 'local' (LocalProvider), 'slurm' (SlurmProvider) "
                               "or 'pbs' (PBSProProvider, TorqueProvider), or one a site plugin registered (lsf)")
    assert found[0].endswith("(got 'condor')")
    assert found[1] == "engine.provider.universe: unknown key (got 'vanilla')"


# -- errors name the key as config.yaml spells it, with the type's own did-you-mean ---------------
@pytest.mark.parametrize("kind, typo, meant", [
    ("local", "worker_int", "worker_init"), ("local", "max_block", "max_blocks"),
    ("slurm", "partiton", "partition"), ("slurm", "constraints", "constraint"),
    ("pbs", "queu", "queue"), ("pbs", "select_option", "select_options"),
    ("SlurmProvider", "cpus_per_nod", "cpus_per_node"),   # Globus's name (it acts as cores_per_node)
])
def test_an_unknown_key_gets_the_nearest_key_of_its_type(faas_home, kind, typo, meant):
    assert problems(faas_home, f"engine:\n  provider:\n    type: {kind}\n    {typo}: 1\n") == [
        f"engine.provider.{typo}: unknown key (got 1); did you mean {meant}?"]


def test_a_bad_value_is_named_under_engine_provider_for_each_type(faas_home):
    for kind in ("local", "slurm", "pbs"):
        assert problems(faas_home, f"engine:\n  provider:\n    type: {kind}\n    max_blocks: 0\n") == [
            "engine.provider.max_blocks: Input should be greater than or equal to 1 (got 0)"]
    assert problems(faas_home, "engine:\n  provider:\n    type: slurm\n    mem_per_node: lots\n") == [
        "engine.provider.mem_per_node: Input should be a valid number, unable to parse string as a number "
        "(got 'lots')"]


# -- values written into one line of the job script ----------------------------------------------
#: every key whose value becomes (part of) one #SBATCH / #PBS directive, with a value its scheduler takes
DIRECTIVE_KEYS = [("slurm", "account", "proj1"), ("slurm", "partition", "cpu,gpu"), ("slurm", "qos", "normal"),
                  ("slurm", "constraint", "intel&(ib|opa)"), ("slurm", "clusters", "c1,c2"),
                  ("slurm", "gres", "gpu:a100:4"), ("pbs", "account", "ABC-123"), ("pbs", "queue", "workq@pbs1"),
                  ("pbs", "select_options", "ngpus=4:mpiprocs=1")]
#: what would end the directive early or add to it: a line (another directive, a shell command), an
#: option (sbatch and qsub split a directive like a shell), a continued line (qsub: a final backslash)
NOT_IN_A_DIRECTIVE = [("\n#SBATCH --qos=admin", "a line break ('\\n')"), ("\r", "a carriage return ('\\r')"),
                      ("\x00", "a NUL character ('\\x00')"), ("\x1b[2K", "a control or line-separator character "
                                                                       "('\\x1b')"),
                      ("\u2028", "a control or line-separator character ('\\u2028')"),
                      (" -q admin", "a space (' ')"), ("\t", "a tab ('\\t')"), ('"', "a double quote ('\"')"),
                      ("\\", "a backslash ('\\\\')")]


def yaml_value(value: str) -> str:
    return json.dumps(value)   # a JSON string is a YAML double-quoted scalar, escapes and all


def job_script(cfg: BaseProviderConfig, folder: Path) -> str:
    """The submit script the provider of ``cfg`` writes for one block."""
    provider = make_provider(cfg, folder)
    extra = provider.template_vars("b1") if isinstance(provider, PBSProvider) else {"mem": None, "workdir": str(folder)}
    return provider.script("python -m pool", "b1", **extra).read_text()


@pytest.mark.parametrize("kind, key, good", DIRECTIVE_KEYS)
def test_a_directive_value_is_one_word(faas_home, kind, key, good):
    """Each is written into a directive of the job script (``#SBATCH --account=VALUE``, ``#PBS
    -q VALUE``): whatever would give it a line or an option of its own is refused, naming the key,
    what was found and where; the scheduler's own syntax passes, and renders as one directive."""
    for bad, found in NOT_IN_A_DIRECTIVE:
        value = good + bad
        assert problems(faas_home, f"engine:\n  provider:\n    type: {kind}\n    {key}: {yaml_value(value)}\n") == [
            f"engine.provider.{key}: expected one word with no spaces, quotes, backslashes or control characters "
            f"(it is written into a #SBATCH / #PBS directive, where these would add options or lines); found "
            f"{found} at character {len(good) + 1}: remove it; extra directives belong in scheduler_options "
            f"(got {value!r})"], repr(bad)
    cfg = load_text(faas_home, f"engine:\n  provider:\n    type: {kind}\n    {key}: {yaml_value(good)}\n")
    assert getattr(cfg.engine.provider, key) == good
    script = job_script(cfg.engine.provider, faas_home / kind)
    assert [line for line in script.splitlines() if good in line] == [
        {"account": f"#SBATCH --account={good}" if kind == "slurm" else f"#PBS -A {good}",
         "partition": f"#SBATCH --partition={good}", "qos": f"#SBATCH --qos={good}",
         "constraint": f'#SBATCH --constraint="{good}"', "clusters": f"#SBATCH --clusters={good}",
         "gres": f"#SBATCH --gres={good}", "queue": f"#PBS -q {good}",
         "select_options": f"#PBS -l select=1:{good}"}[key]]


def test_launcher_overrides_are_one_line_and_scripts_lines_stay_many(faas_home):
    """launcher.overrides goes on the launch command's line: options with spaces pass, a line
    break does not, but after a backslash (the shell's continuation: Globus's docs end a folded
    overrides so). worker_init and scheduler_options are lines of their own by design."""
    text = ("engine:\n  provider:\n    type: slurm\n    nodes_per_block: 2\n"
            "    launcher: {{type: srun, overrides: {}}}\n"
            "    worker_init: \"module load x\\nconda activate y\"\n"
            "    scheduler_options: \"#SBATCH --mail-type=NONE\\n#SBATCH --requeue\"\n")
    cfg = load_text(faas_home, text.format(yaml_value("--cpu-bind=none --mpi=pmix")))
    lines = job_script(cfg.engine.provider, faas_home / "s").splitlines()
    assert "exec srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpu-bind=none --mpi=pmix python -m pool" in lines
    assert {"module load x", "conda activate y", "#SBATCH --mail-type=NONE", "#SBATCH --requeue"} <= set(lines)
    for value, at in (("--cpu-bind=none\nrm -rf ~", 16), ("--cpu-bind=none \\\\\nrm -rf ~", 19)):  # \\: escaped
        assert problems(faas_home, text.format(yaml_value(value))) == [
            "engine.provider.launcher.overrides: expected one line with no line breaks (but a backslash's "
            "continuation) or other control characters (it is written into one line of the job script); found a "
            f"line break ('\\n') at character {at}: remove it; commands to run before the pools belong in "
            f"worker_init (got {value!r})"]
    cfg = load_text(faas_home, text.format(yaml_value("--cpu-bind=none \\\n")))
    assert "exec srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpu-bind=none \\" in job_script(
        cfg.engine.provider, faas_home / "s").splitlines()


# -- another scheduler's key ----------------------------------------------------------------------
def test_another_schedulers_key_in_config_yaml_has_no_effect_and_says_why(faas_home):
    """config.yaml (faas's or Globus's: the same reader) lists a key of another provider's model
    as having no effect, keeps it through a rewrite, and never passes it to the provider."""
    cfg = load_text(faas_home, "engine:\n  provider:\n    type: pbs\n    queue: workq\n    partition: cpu\n")
    assert cfg.no_effect_here == ["engine.provider.partition (a slurm key; the pbs provider does not read it)"]
    assert not hasattr(cfg.engine.provider, "partition")
    path = ep_config.endpoint_dir("ep", faas_home) / "config.yaml"
    ep_config.write(path, cfg)
    assert ep_config.yaml_load(path.read_text())["engine"]["provider"]["partition"] == "cpu"
    cfg = load_text(faas_home, "engine:\n  provider:\n    type: slurm\n    select_options: ngpus=2\n")
    assert cfg.no_effect_here == ["engine.provider.select_options (a pbs key; the slurm provider does not read it)"]
    cfg = load_text(faas_home, "engine:\n  provider:\n    type: local\n    account: p1\n")
    assert cfg.no_effect_here == ["engine.provider.account (the local provider starts processes on this host; "
                                  "no scheduler reads it)"]


def test_in_python_the_models_are_strict(faas_home):
    """Built in Python (no config.yaml, no Globus reading), another scheduler's key is an error."""
    with pytest.raises(ValidationError, match="partition"):
        PBSProviderConfig(partition="cpu")
    with pytest.raises(ValidationError, match=r"provider\.pbs\.partition"):
        ep_config.EngineConfig.model_validate({"provider": {"type": "pbs", "partition": "cpu"}})
    with pytest.raises(ValidationError, match="SlurmProviderConfig does not hold a 'pbs' provider; "
                                              "PBSProviderConfig does"):
        SlurmProviderConfig(type="pbs")


def test_a_config_written_before_providers_were_typed_still_loads(faas_home):
    """faas used to write every provider's keys at their defaults (exclusive: false,
    select_options: '', cmd_timeout: 30.0 on a local provider): they asked for nothing, so they
    load without a note and a rewrite leaves them out."""
    cfg = load_text(faas_home, "engine:\n  provider:\n    type: local\n    init_blocks: 1\n    min_blocks: 0\n"
                               "    max_blocks: 1\n    nodes_per_block: 1\n    parallelism: 1.0\n"
                               "    walltime_margin: 60.0\n    select_options: ''\n    exclusive: false\n"
                               "    scheduler_options: ''\n    worker_init: ''\n    cmd_timeout: 30.0\n"
                               "    launcher:\n      type: single_node\n      overrides: ''\n")
    assert type(cfg.engine.provider) is LocalProviderConfig and cfg.no_effect_here == []
    path = ep_config.endpoint_dir("ep", faas_home) / "config.yaml"
    ep_config.write(path, cfg)
    assert set(ep_config.yaml_load(path.read_text())["engine"]["provider"]) <= set(LocalProviderConfig.model_fields)


# -- each model is what its provider reads ---------------------------------------------------------
@pytest.mark.parametrize("model, folder", [(SlurmProviderConfig, "slurm"), (PBSProviderConfig, "pbs")])
def test_each_scheduler_model_holds_the_keys_its_provider_reads(model, folder):
    """Every key a scheduler's model adds to the common ones is read by its provider (module or
    submit-script template), and every ``cfg.KEY`` they read is in its model."""
    source = "".join((PROVIDERS_DIR / f).read_text() for f in (f"{folder}/__init__.py", f"{folder}/template.sh.j2",
                                                               "base.py"))   # base.py: cmd_timeout
    read = set(re.findall(r"\bcfg\.(\w+)", source))
    own = set(model.model_fields) - set(BaseProviderConfig.model_fields)
    assert own - read == set(), f"keys of {model.__name__} that its provider never reads"
    known = set(model.model_fields) | {name for name in dir(model) if isinstance(getattr(model, name), property)}
    assert read - known == set(), f"keys the {folder} provider reads that {model.__name__} lacks"
