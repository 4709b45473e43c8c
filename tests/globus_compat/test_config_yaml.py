"""Globus Compute endpoint config.yaml files load unchanged: the talk's, and those of Globus's
documentation ("Example configurations" and the endpoint docs), pasted as they are.

Each is written to ``$FAAS_HOME/endpoints/NAME/config.yaml`` and read by ``config.load``, the
path ``faas endpoint start`` takes. The checks: the keys that mean something here act (their
values land where faas reads them, and the submit scripts say so), and the keys that only mean
something to Globus's hosted service or to Parsl's interchange are listed as "no effect here".

The documentation's files hold placeholders (``{{ ACCOUNT }}``) that its readers replace before
use; :func:`fill` replaces them with what a reader would type, and changes nothing else.
"""
from __future__ import annotations

import json
import re

import jinja2
import pytest
from click.testing import CliRunner
from helpers import wait_until

import faas
from faas.cli.main import main as faas_cli
from faas.endpoint import config as ep_config
from faas.endpoint import control
from faas.exceptions import ConfigError
from faas.providers import make_provider

#: What a reader of Globus's docs puts in place of each placeholder.
FILLS = {
    "ACCOUNT": "abc123", "ACCOUNT NAME": "bbka-delta-cpu", "FRONTERA_ACCOUNT": "EAR22001",
    "NERSC_ACCOUNT": "m0000", "POLARIS_ACCOUNT": "myproject", "TACC_ALLOCATION": "EAR22001",
    "PARTITION": "compute", "OPTIONS": '"#SBATCH --constraint=cpu"',
    "COMMAND": '"source ~/venv/bin/activate"', "CONTAINER_URI": "/apps/compute-worker.sif",
    "TOTAL_WORKERS": "2", "WORKERS_PER_NODE": "2", "GPUS_PER_WORKER": "1", "GPU_MAP": "0,1",
    "NAMESPACE": "default", "IMAGE": "python:3.12-bookworm", "SECRET": "regcred",
    "PROJECT_NAME": "MyProject", "APPTAINER_IMAGE_PATH": '"osdf:///ospool/ap20/data/me/gc.sif"',
}


def fill(text: str) -> str:
    return re.sub(r"\{\{ ([A-Z_ ]+?) \}\}", lambda m: FILLS[m.group(1)], text)


def load_as_start_does(home, name: str, text: str) -> ep_config.EndpointConfig:
    """Write config.yaml where `faas endpoint configure` would, and read it as `start` does."""
    path = ep_config.endpoint_dir(name, home) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return ep_config.load(path)


def no_effect_keys(cfg) -> set[str]:
    return {note.split(" (", 1)[0] for note in cfg.no_effect_here}


def value(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def slurm_script(cfg, tmp_path) -> str:
    p = make_provider(cfg.engine.provider, tmp_path / "ep")
    return p.script("POOL", "block-1", mem=None, workdir=str(tmp_path / "ep")).read_text()


# -- Globus's documentation: "Example configurations" (docs/endpoints/configs/ at globus-compute
#    commit 845796fc), pasted as they are ----------------------------------------------------
# docs/endpoints/configs/anvil.yaml
ANVIL = r"""amqp_port: 443
engine:
  type: GlobusComputeEngine
  max_workers_per_node: 2

  address:
    type: address_by_interface
    ifname: ib0

  provider:
    type: SlurmProvider
    partition: debug

    account: {{ ACCOUNT }}
    launcher:
        type: SrunLauncher

    # string to prepend to #SBATCH blocks in the submit
    # script to the scheduler
    # e.g., "#SBATCH --constraint=knl,quad,cache"
    scheduler_options: {{ OPTIONS }}

    # Command to be run before starting a worker
    # e.g., "module load anaconda; source activate gce_env
    worker_init: {{ COMMAND }}

    init_blocks: 1
    max_blocks: 1
    min_blocks: 0

    walltime: 00:05:00
"""

# docs/endpoints/configs/bebop.yaml
BEBOP = r"""engine:
    type: GlobusComputeEngine
    max_workers_per_node: 2
    worker_debug: False

    address:
        type: address_by_interface
        ifname: ib0

    provider:
        type: SlurmProvider
        partition: {{ PARTITION }}  # e.g., bdws
        launcher:
          type: SrunLauncher

        # Command to be run before starting a worker
        # e.g., "module load anaconda; source activate gce_env"
        worker_init: {{ COMMAND }}

        nodes_per_block: 1
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1
        walltime: 00:30:00
"""

# docs/endpoints/configs/bridges-2.yaml
BRIDGES_2 = r"""engine:
    type: GlobusComputeEngine
    max_workers_per_node: 2
    worker_debug: False

    address:
      type: address_by_interface
      ifname: ens3f0

    provider:
        type: SlurmProvider
        partition: RM-small

        launcher:
            type: SrunLauncher

        # string to prepend to #SBATCH blocks in the submit
        # script to the scheduler
        # e.g., "#SBATCH --constraint=knl,quad,cache"
        scheduler_options: {{ OPTIONS }}

        # Command to be run before starting a worker
        # e.g., module load Anaconda; source activate parsl_env
        worker_init: {{ COMMAND }}

        # Scale between 0-1 blocks with 2 nodes per block
        nodes_per_block: 2
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 30 minutes
        walltime: 00:30:00
"""

# docs/endpoints/configs/delta.yaml
DELTA = r"""amqp_port: 443
engine:
    type: GlobusComputeEngine
    max_workers_per_node: 2

    address:
        type: address_by_interface
        ifname: eth6.560

    provider:
        type: SlurmProvider
        partition: cpu
        account: {{ ACCOUNT NAME }}

        launcher:
            type: SrunLauncher

        # Command to be run before starting a worker
        # e.g., "module load anaconda3; source activate gce_env"
        worker_init: {{ COMMAND }}

        init_blocks: 1
        min_blocks: 0
        max_blocks: 1

        walltime: 00:30:00
"""

# docs/endpoints/configs/expanse.yaml
EXPANSE = r"""engine:
    type: GlobusComputeEngine
    max_workers_per_node: 2
    worker_debug: False

    address:
        type: address_by_interface
        ifname: ib0

    provider:
        type: SlurmProvider
        partition: compute
        account: {{ ACCOUNT }}

        launcher:
            type: SrunLauncher

        # string to prepend to #SBATCH blocks in the submit
        # script to the scheduler
        # e.g., "#SBATCH --constraint=knl,quad,cache"
        scheduler_options: {{ OPTIONS }}

        # Command to be run before starting a worker
        # e.g., "module load anaconda3; source activate gce_env"
        worker_init: {{ COMMAND }}

        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        walltime: 00:05:00
"""

# docs/endpoints/configs/expanse_mpi.yaml
EXPANSE_MPI = r"""engine:
    type: GlobusMPIEngine
    mpi_launcher: srun

    address:
        type: address_by_interface
        ifname: ib0

    provider:
        type: SlurmProvider
        partition: compute
        account: {{ ACCOUNT }}

        launcher:
            type: SimpleLauncher

        # string to prepend to #SBATCH blocks in the submit
        # script to the scheduler
        # e.g., "#SBATCH --constraint=knl,quad,cache"
        scheduler_options: {{ OPTIONS }}

        # Command to be run before starting a worker
        # e.g., "module load anaconda3; source activate gce_env"
        worker_init: {{ COMMAND }}

        nodes_per_block: 4
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        walltime: 00:05:00
"""

# docs/endpoints/configs/faster.yaml
FASTER = r"""amqp_port: 443
engine:
    type: GlobusComputeEngine
    worker_debug: False

    strategy:
        type: SimpleStrategy
        max_idletime: 90

    address:
        type: address_by_interface
        ifname: eno8303

    provider:
        type: SlurmProvider
        partition: cpu
        mem_per_node: 128

        launcher:
            type: SrunLauncher

        scheduler_options: {{ OPTIONS }}

        worker_init: {{ COMMAND }}

        # increase the command timeouts
        cmd_timeout: 120

        # Scale between 0-1 blocks with 1 nodes per block
        nodes_per_block: 1
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 10 minutes
        walltime: 00:10:00
"""

# docs/endpoints/configs/frontera.yaml
FRONTERA = r"""engine:
    type: GlobusComputeEngine
    max_workers_per_node: 2
    worker_debug: False

    address:
      type: address_by_interface
      ifname: ib0

    provider:
        type: SlurmProvider

        # e.g., EAR22001
        account: {{ FRONTERA_ACCOUNT }}

        # e.g., development
        partition: {{ PARTITION }}

        launcher:
            type: SrunLauncher

        # Enter scheduler_options if needed
        scheduler_options: {{ OPTIONS }}

        # Command to be run before starting a worker
        # e.g., "module load Anaconda; source activate parsl_env"
        worker_init: {{ COMMAND }}

        # Add extra time for slow scheduler responses
        cmd_timeout: 60

        # Scale between 0-1 blocks with 2 nodes per block
        nodes_per_block: 2
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 30 minutes
        walltime: 00:30:00
"""

# docs/endpoints/configs/kube.yaml
KUBE = r"""heartbeat_period: 15
heartbeat_threshold: 200

engine:
    type: GlobusComputeEngine
    max_workers_per_node: 1

    # Encryption is not currently supported for KubernetesProvider
    encrypted: false

    address:
      type: address_by_route

    provider:
        type: KubernetesProvider
        init_blocks: 0
        min_blocks: 0
        max_blocks: 2
        init_cpu: 1
        max_cpu: 4
        init_mem: 1024Mi
        max_mem: 4096Mi

        # e.g., default
        namespace: {{ NAMESPACE }}

        # e.g., python:3.12-bookworm
        image: {{ IMAGE }}

        # The secret key to download the image
        secret: {{ SECRET }}

        # e.g., "pip install --force-reinstall globus-compute-endpoint"
        worker_init: {{ COMMAND }}"""

# docs/endpoints/configs/midway.yaml
MIDWAY = r"""engine:
    type: GlobusComputeEngine
    label: Midway@RCC.UChicago
    max_workers_per_node: 2

    address:
        type: address_by_interface
        ifname: bond0

    provider:
        type: SlurmProvider

        launcher:
            type: SrunLauncher

        # e.g., pi-compute
        account: {{ ACCOUNT }}

        # e.g., caslake
        partition: {{ PARTITION }}

        # string to prepend to #SBATCH blocks in the submit
        # script to the scheduler
        # e.g., "#SBATCH --gres=gpu:4"
        scheduler_options: {{ OPTIONS }}

        # Command to be run before starting a worker
        # e.g., "module load Anaconda; source activate compute-env"
        worker_init: {{ COMMAND }}

        # Scale between 0-1 blocks with 2 nodes per block
        nodes_per_block: 2
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 30 minutes
        walltime: 00:30:00
"""

# docs/endpoints/configs/midway_apptainer.yaml
MIDWAY_APPTAINER = r"""engine:
    type: GlobusComputeEngine
    label: Midway@RCC.UChicago
    max_workers_per_node: 10

    address:
        type: address_by_interface
        ifname: bond0

    container_type: apptainer
    container_cmd_options: -H /home/$USER
    container_uri: {{ CONTAINER_URI }}

    provider:
        type: SlurmProvider

        launcher:
            type: SrunLauncher

        # e.g., pi-compute
        account: {{ ACCOUNT }}

        # e.g., caslake
        partition: {{ PARTITION }}

        # string to prepend to #SBATCH blocks in the submit
        # script to the scheduler
        # e.g., "#SBATCH --gres=gpu:4"
        scheduler_options: {{ OPTIONS }}

        # Command to be run before starting a worker
        # e.g., "module load Anaconda; source activate compute-env"
        worker_init: {{ COMMAND }}

        # Scale between 0-1 blocks with 2 nodes per block
        nodes_per_block: 2
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 30 minutes
        walltime: 00:30:00
"""

# docs/endpoints/configs/ospool.yaml
OSPOOL = r"""engine:
  type: GlobusComputeEngine
  max_workers_per_node: 1

  # This config uses apptainer containerization to ensure a consistent
  # python environment on the worker side. Since apptainer limits writable
  # directory paths, set working directory paths paths used by the worker to /tmp
  # P.S: These filepaths remain private to the container and will not be
  #      accessible on the host system
  worker_logdir_root: /tmp/logs
  working_dir: /tmp/tasks_dir

  # GlobusComputeEngine relies on a shared-filesystem to distribute keys used
  # for encrypting communication between the endpoint and workers.
  # Since OSPool does not support a writable shared-filesystem,
  # **encryption** is disabled in the configuration below.
  encrypted: False

  provider:

    type: CondorProvider
    init_blocks: 1
    max_blocks: 1
    min_blocks: 0

    # Specify ProjectName and Apptainer image
    scheduler_options: >
      +ProjectName = {{ PROJECT_NAME }}

      # To use apptainer on OSPool, build an apptainer image and copy it to
      # OSDF and specify the full Specify the apptainer image path for eg.:
      # "osdf:///ospool/ap20/data/USERNAME/globus_compute_py3.11.v1.sif"

      +SingularityImage = {{ APPTAINER_IMAGE_PATH }}

      # Add a condor requirement to guarantee that worker nodes support apptainer

      Requirements = HAS_SINGULARITY == True && OSG_HOST_KERNEL_VERSION >= 31000
"""

# docs/endpoints/configs/perlmutter.yaml
PERLMUTTER = r"""engine:
    type: GlobusComputeEngine
    worker_debug: False

    address:
        type: address_by_interface
        ifname: hsn0

    provider:
        type: SlurmProvider
        partition: debug

        # We request all hyperthreads on a node.
        # GPU nodes have 128 threads, CPU nodes have 256 threads
        launcher:
            type: SrunLauncher
            overrides: -c 128

        # string to prepend to #SBATCH blocks in the submit
        # script to the scheduler
        # For GPUs in the debug qos eg: "#SBATCH --constraint=gpu\n#SBATCH --gpus-per-node=4"
        scheduler_options: {{ OPTIONS }}

        # Your NERSC account, eg: "m0000"
        account: {{ NERSC_ACCOUNT }}

        # Command to be run before starting a worker
        # e.g., "module load Anaconda; source activate parsl_env"
        worker_init: {{ COMMAND }}

        # increase the command timeouts
        cmd_timeout: 120

        # Scale between 0-1 blocks with 2 nodes per block
        nodes_per_block: 2
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 10 minutes
        walltime: 00:10:00
"""

# docs/endpoints/configs/polaris.yaml
POLARIS = r"""engine:
  type: GlobusComputeEngine
  max_workers_per_node: 4

  # Un-comment to give each worker exclusive access to a single GPU
  # available_accelerators: 4

  address:
    type: address_by_interface
    ifname: hsn0

  provider:
    type: PBSProProvider

    launcher:
      type: MpiExecLauncher
      # Ensures 1 manager per node, work on all 64 cores
      bind_cmd: --cpu-bind
      overrides: --depth=64 --ppn 1

    account: {{ POLARIS_ACCOUNT }}
    queue: debug-scaling
    cpus_per_node: 32
    select_options: ngpus=4

    # e.g., "#PBS -l filesystems=home:grand:eagle\n#PBS -k doe"
    scheduler_options: "#PBS -l filesystems=home:grand:eagle"

    # Node setup: activate necessary conda environment and such
    worker_init: {{ COMMAND }}

    walltime: 01:00:00
    nodes_per_block: 1
    init_blocks: 0
    min_blocks: 0
    max_blocks: 2
"""

# docs/endpoints/configs/stampede3.yaml
STAMPEDE3 = r"""engine:
  type: GlobusComputeEngine
  max_workers_per_node: 2

  address:
    type: address_by_interface
    ifname: ibp10s0

  provider:
    type: SlurmProvider

    # e.g., EAR22001
    account: {{ TACC_ALLOCATION }}

    # e.g., skx-dev
    partition: {{ PARTITION }}

    launcher:
      type: SrunLauncher

    # Enter scheduler_options if needed
    scheduler_options: {{ OPTIONS }}

    # Command to be run before starting a worker
    # e.g., "module load Anaconda; source activate parsl_env"
    worker_init: {{ COMMAND }}

    # Add extra time for slow scheduler responses
    cmd_timeout: 60

    # Scale between 0-1 blocks with 1 node per block
    nodes_per_block: 1
    init_blocks: 0
    min_blocks: 0
    max_blocks: 1

    # Hold blocks for 30 minutes
    walltime: 00:30:00"""

# docs/endpoints/configs/uchicago_ai_cluster.yaml
UCHICAGO_AI_CLUSTER = r"""engine:
    type: GlobusComputeEngine
    label: fe.cs.uchicago
    worker_debug: False

    address:
        type: address_by_interface
        ifname: ens2f1

    provider:
        type: SlurmProvider
        partition: general

        # This is a hack. We use hostname ; to terminate the srun command, and
        # start our own.
        launcher:
            type: SrunLauncher
            overrides: >
                hostname; srun --ntasks={{ TOTAL_WORKERS }}
                --ntasks-per-node={{ WORKERS_PER_NODE }}
                --gpus-per-task=rtx2080ti:{{ GPUS_PER_WORKER }}
                --gpu-bind=map_gpu:{{ GPU_MAP }} \
            # To request a single gpu, use the following:
            #   hostname; srun --ntasks=1
            #   --ntasks-per-node=1
            #   --gres=gpu:1 \

        # Scale between 0-1 blocks with 2 nodes per block
        nodes_per_block: 1
        init_blocks: 0
        min_blocks: 0
        max_blocks: 1

        # Hold blocks for 30 minutes
        walltime: 00:30:00
"""

# docs/endpoints/configs/worker_pinning.yaml
WORKER_PINNING = r"""engine:
    type: GlobusComputeEngine
    max_workers_per_node: 4

    # `available_accelerators` may be a natural number or a list of strings.
    # If an integer, then each worker launched will have an automatically
    # generated environment variable. In this case, one of 0, 1, 2, or 3.
    # Alternatively, specific strings may be utilized.
    available_accelerators: 4
    # available_accelerators: ["opencl:gpu:1", "opencl:gpu:2"]  # alternative

    provider:
        type: LocalProvider
        init_blocks: 1
        min_blocks: 0
        max_blocks: 1
"""

# -- Globus's documentation: the endpoint docs (docs/endpoints/endpoints.rst) and the files
#    `globus-compute-endpoint configure` writes -------------------------------------------------
# endpoints.rst, "Default config.yaml configuration"
DOCS_DEFAULT = """amqp_port: 443
display_name: null
"""
# compute_endpoint/globus_compute_endpoint/endpoint/config/default_config.yaml: what `configure`
# writes today (update_config_file dumps it); with nothing in it, configure writes the comment
SOURCE_DEFAULT = """display_name: null
"""
GENERATED_EMPTY = "# The generated config file is currently empty\n"
# endpoint/config/user_config_template.yaml.j2 (its comments left out): a user endpoint's config
# is this template rendered; with no user variables both defaults are empty
DEFAULT_TEMPLATE = """endpoint_setup: {{ endpoint_setup|default() }}

engine:
  type: GlobusComputeEngine
  max_workers_per_node: 1

  provider:
    type: LocalProvider

    min_blocks: 0
    max_blocks: 1
    init_blocks: 1

    worker_init: {{ worker_init|default() }}

# Endpoints will be restarted when a user submits new tasks to the
# web-services, so eagerly shut down if endpoint is idle.  At 30s/hb (default
# value), 10 heartbeats is 300s.
idle_heartbeats_soft: 10

# If endpoint is *apparently* idle (e.g., outstanding tasks, but no movement)
# for this many heartbeats, then shutdown anyway.  At 30s/hb (default value),
# 5,760 heartbeats == "48 hours".  (Note that this value will be ignored if
# idle_heartbeats_soft is 0 or not set.)
idle_heartbeats_hard: 5760
"""
# endpoints.rst, "Python-Based Environments": endpoint_setup, then endpoint_teardown
SETUP_TEARDOWN = """endpoint_setup: |
  conda create -n my-conda-env
  conda activate my-conda-env
  pip install -r requirements.txt

endpoint_teardown: |
  conda remove -n my-conda-env --all
"""
# endpoints.rst, "Containerized Environments"
DOCKER = """display_name: Docker
engine:
  type: GlobusComputeEngine
  container_type: docker
  container_uri: compute-worker:4.0.0
  container_cmd_options: -v /tmp:/tmp
"""
# endpoints.rst, "Debugging User Endpoint Processes" (its "engine: ..." is the docs' ellipsis)
DEBUG = """debug: true
display_name: Debugging template
idle_heartbeats_soft: 10
idle_heartbeats_hard: 5760
"""
# endpoints.rst, "High-Assurance" and "Apply an Existing Authentication Policy" (the three keys
# of the HA example, without its "..." ellipsis lines)
HIGH_ASSURANCE = """subscription_id: 2c94f030-d346-11e9-939f-02ff96a5aa76
high_assurance: true
authentication_policy: 8e6529c8-a7ce-4310-b895-244e1b33702a
"""
# endpoints.rst, restricting serialization strategies: the allowlist that is "functionally
# equivalent to a config that omits allowed_serializers", and the restricted one
SERIALIZERS_ALL = """engine:
   allowed_serializers:
      - globus_compute_sdk.*Code
      - globus_compute_sdk.*Data
"""
SERIALIZERS_NO_DILL = """engine:
   type: GlobusComputeEngine
   allowed_serializers:
      - globus_compute_sdk.serialize.PureSourceTextInspect
      - globus_compute_sdk.serialize.JSONData
"""

# -- the talk (../shared/seeds/, "Configuring endpoints"): its slides' config.yaml files. The
#    seed text is OCR of the slides: underscores read as spaces ("max workers per node") and
#    indentation lost; they are written here as the slides show them, nothing else changed ------
# "Configuring a single user compute endpoint"
TALK_SINGLE_USER = """amqp_port: 443
display_name: My Endpoint
engine:
  type: GlobusComputeEngine
  provider:
    type: LocalProvider
"""
# the talk's copy of Globus's Delta example
TALK_DELTA = """amqp_port: 443
display_name: NCSA Delta 2 CPU
engine:
    type: GlobusComputeEngine
    max_workers_per_node: 2

    address:
        type: address_by_interface
        ifname: eth6.560

    provider:
        type: SlurmProvider
        partition: cpu
        account: {{ ACCOUNT NAME }}

        launcher:
            type: SrunLauncher

        # Command to be run before starting a worker
        # e.g., "module load anaconda3; source activate gce_env"
        worker_init: {{ COMMAND }}
"""
# "Configuring endpoints - Scaling"
TALK_SCALING = """amqp_port: 443
display_name: My Endpoint
engine:
  type: GlobusComputeEngine
  max_workers_per_node: 8
  provider:
    type: LocalProvider
"""
# "Managing the Execution Environment"
TALK_CONTAINER = """display_name: My Endpoint
engine:
  type: GlobusComputeEngine
  container_type: docker
  container_uri: python:3.12.10-bookworm
  container_cmd_options: -v /tmp:/tmp
  provider:
    type: LocalProvider
    worker_init: conda activate pearc-conda
"""
# "Configuring endpoints - Batch Schedulers"
TALK_BATCH = """amqp_port: 443
display_name: My Endpoint
engine:
  type: GlobusComputeEngine
  max_workers_per_node: 8
  provider:
    type: SlurmProvider
    partition: compute
    account: {{ ACCOUNT }}
    launcher:
      type: SrunLauncher
    scheduler_options: {{ OPTIONS }}
    worker_init: {{ COMMAND }}
    walltime: 01:00:00
    nodes_per_block: 1
"""
# the talk's copy of Globus's Expanse example
TALK_EXPANSE = """display_name: Expanse@SDSC
engine:
   type: GlobusComputeEngine
   max_workers_per_node: 2
   worker_debug: False
   address:
       type: address_by_interface
       ifname: ib0
   provider:
       type: SlurmProvider
       partition: compute
       account: {{ ACCOUNT }}
       launcher:
           type: SrunLauncher
       # string to prepend to #SBATCH blocks in the submit
       # script to the scheduler
       # e.a., "#SBATCH --constraint=knl, quad, cache"
       scheduler_options: {{ OPTIONS }}
       # Command to be run before starting a worker
       # e.g., "module load anaconda3; source activate gce_env"
       worker_init: {{ COMMAND }}
"""
# "Configuring endpoints - Scaling Batch Schedulers": 8 nodes a block, no launcher given
TALK_SCALING_BATCH = """amqp_port: 443
display_name: My Endpoint
engine:
  type: GlobusComputeEngine
  max_workers_per_node: 8
  provider:
    type: SlurmProvider
    partition: compute
    nodes_per_block: 8
    init_blocks: 1
    min_blocks: 0
    max_blocks: 4
"""

SLURM = {"engine.provider.type": "slurm"}
SRUN = {"engine.provider.launcher.type": "srun"}
WORKER_INIT = {"engine.provider.worker_init": "source ~/venv/bin/activate"}
OPTIONS = {"engine.provider.scheduler_options": "#SBATCH --constraint=cpu"}
BLOCKS_0_0_1 = {"engine.provider.init_blocks": 0, "engine.provider.min_blocks": 0,
                "engine.provider.max_blocks": 1}

# (name, text, the values that act, the keys with no effect here)
CASES = [
    ("anvil", ANVIL, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, "engine.max_workers_per_node": 2,
                      "engine.provider.partition": "debug", "engine.provider.account": "abc123",
                      "engine.provider.init_blocks": 1, "engine.provider.max_blocks": 1,
                      "engine.provider.walltime_s": 300},
     {"amqp_port", "engine.address"}),
    ("bebop", BEBOP, {**SLURM, **SRUN, **WORKER_INIT, **BLOCKS_0_0_1, "engine.max_workers_per_node": 2,
                      "engine.provider.partition": "compute", "engine.provider.nodes_per_block": 1,
                      "engine.provider.walltime_s": 1800},
     {"engine.worker_debug", "engine.address"}),
    ("bridges-2", BRIDGES_2, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, **BLOCKS_0_0_1,
                              "engine.provider.partition": "RM-small", "engine.provider.nodes_per_block": 2,
                              "engine.provider.walltime_s": 1800},
     {"engine.worker_debug", "engine.address"}),
    ("delta", DELTA, {**SLURM, **SRUN, **WORKER_INIT, "engine.max_workers_per_node": 2,
                      "engine.provider.partition": "cpu", "engine.provider.account": "bbka-delta-cpu",
                      "engine.provider.init_blocks": 1, "engine.provider.walltime_s": 1800},
     {"amqp_port", "engine.address"}),
    ("expanse", EXPANSE, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, **BLOCKS_0_0_1,
                          "engine.provider.account": "abc123", "engine.provider.walltime_s": 300},
     {"engine.worker_debug", "engine.address"}),
    ("expanse_mpi", EXPANSE_MPI, {**SLURM, **WORKER_INIT, **OPTIONS, "engine.type": "GlobusMPIEngine",
                                  "engine.provider.launcher.type": "single_node",
                                  "engine.provider.nodes_per_block": 4, "engine.provider.walltime_s": 300},
     {"engine.address"}),
    ("faster", FASTER, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, **BLOCKS_0_0_1,
                        "engine.max_idle_time": 90.0,           # strategy.max_idletime acts
                        "engine.provider.mem_per_node": 128, "engine.provider.cmd_timeout": 120,
                        "engine.provider.walltime_s": 600},
     {"amqp_port", "engine.worker_debug", "engine.strategy", "engine.address"}),
    ("frontera", FRONTERA, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, **BLOCKS_0_0_1,
                            "engine.provider.account": "EAR22001", "engine.provider.cmd_timeout": 60,
                            "engine.provider.nodes_per_block": 2, "engine.provider.walltime_s": 1800},
     {"engine.worker_debug", "engine.address"}),
    ("midway", MIDWAY, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, "engine.provider.nodes_per_block": 2},
     {"engine.label", "engine.address"}),
    ("midway_apptainer", MIDWAY_APPTAINER, {**SLURM, **SRUN, "engine.max_workers_per_node": 10,
                                            "engine.container_type": "apptainer",
                                            "engine.container_uri": "/apps/compute-worker.sif",
                                            "engine.container_cmd_options": "-H /home/$USER"},
     {"engine.label", "engine.address"}),
    ("perlmutter", PERLMUTTER, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, "engine.provider.partition": "debug",
                                "engine.provider.launcher.overrides": "-c 128",
                                "engine.provider.account": "m0000", "engine.provider.nodes_per_block": 2,
                                "engine.provider.walltime_s": 600},
     {"engine.worker_debug", "engine.address"}),
    ("polaris", POLARIS, {**WORKER_INIT, "engine.provider.type": "pbs", "engine.max_workers_per_node": 4,
                          "engine.provider.launcher.type": "mpiexec",
                          "engine.provider.launcher.overrides": "--depth=64 --ppn 1",
                          "engine.provider.account": "myproject", "engine.provider.queue": "debug-scaling",
                          "engine.provider.cores_per_node": 32,    # PBSProProvider's cpus_per_node
                          "engine.provider.select_options": "ngpus=4",
                          "engine.provider.scheduler_options": "#PBS -l filesystems=home:grand:eagle",
                          "engine.provider.walltime_s": 3600, "engine.provider.max_blocks": 2},
     {"engine.address", "engine.provider.launcher.bind_cmd"}),
    ("stampede3", STAMPEDE3, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, **BLOCKS_0_0_1,
                              "engine.provider.account": "EAR22001", "engine.provider.cmd_timeout": 60,
                              "engine.provider.walltime_s": 1800},
     {"engine.address"}),
    ("uchicago_ai_cluster", UCHICAGO_AI_CLUSTER, {**SLURM, **SRUN, "engine.provider.partition": "general",
                                                  "engine.provider.walltime_s": 1800},
     {"engine.label", "engine.worker_debug", "engine.address"}),
    ("worker_pinning", WORKER_PINNING, {"engine.provider.type": "local", "engine.max_workers_per_node": 4,
                                        "engine.available_accelerators": ["0", "1", "2", "3"],
                                        "engine.workers_per_node": 4, "engine.provider.init_blocks": 1},
     set()),
    # the endpoint docs
    ("docs_default", DOCS_DEFAULT, {"display_name": None, "engine.provider.type": "local"}, {"amqp_port"}),
    ("source_default", SOURCE_DEFAULT, {"display_name": None, "engine.provider.type": "local"}, set()),
    ("generated_empty", GENERATED_EMPTY, {"engine.provider.type": "local"}, set()),
    ("default_template", jinja2.Template(DEFAULT_TEMPLATE).render(),
     {"endpoint_setup": None, "engine.max_workers_per_node": 1, "engine.provider.worker_init": "",
      "engine.provider.init_blocks": 1}, {"idle_heartbeats_soft", "idle_heartbeats_hard"}),
    ("setup_teardown", SETUP_TEARDOWN,
     {"endpoint_setup": "conda create -n my-conda-env\nconda activate my-conda-env\n"
                        "pip install -r requirements.txt\n",
      "endpoint_teardown": "conda remove -n my-conda-env --all\n"}, set()),
    ("docker", DOCKER, {"display_name": "Docker", "engine.container_type": "docker",
                        "engine.container_uri": "compute-worker:4.0.0",
                        "engine.container_cmd_options": "-v /tmp:/tmp"}, set()),
    ("debug", DEBUG, {"debug": True, "display_name": "Debugging template"},
     {"idle_heartbeats_soft", "idle_heartbeats_hard"}),
    ("high_assurance", HIGH_ASSURANCE, {}, {"subscription_id", "high_assurance", "authentication_policy"}),
    ("serializers_all", SERIALIZERS_ALL, {"allowed_serializers": ["dill"]}, set()),
    # the talk
    ("talk_single_user", TALK_SINGLE_USER, {"display_name": "My Endpoint", "engine.provider.type": "local"},
     {"amqp_port"}),
    ("talk_delta", TALK_DELTA, {**SLURM, **SRUN, **WORKER_INIT, "engine.provider.partition": "cpu",
                                "engine.provider.account": "bbka-delta-cpu"},
     {"amqp_port", "engine.address"}),
    ("talk_scaling", TALK_SCALING, {"engine.max_workers_per_node": 8, "engine.provider.type": "local"},
     {"amqp_port"}),
    ("talk_container", TALK_CONTAINER, {"engine.container_type": "docker",
                                        "engine.container_uri": "python:3.12.10-bookworm",
                                        "engine.container_cmd_options": "-v /tmp:/tmp",
                                        "engine.provider.worker_init": "conda activate pearc-conda"}, set()),
    ("talk_batch", TALK_BATCH, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, "engine.max_workers_per_node": 8,
                                "engine.provider.partition": "compute", "engine.provider.account": "abc123",
                                "engine.provider.walltime_s": 3600},
     {"amqp_port"}),
    ("talk_expanse", TALK_EXPANSE, {**SLURM, **SRUN, **WORKER_INIT, **OPTIONS, "display_name": "Expanse@SDSC"},
     {"engine.worker_debug", "engine.address"}),
    ("talk_scaling_batch", TALK_SCALING_BATCH, {**SLURM, **SRUN, "engine.provider.nodes_per_block": 8,
                                                "engine.provider.max_blocks": 4},
     {"amqp_port"}),
]


@pytest.mark.parametrize("name, text, acts, no_effect", CASES, ids=[c[0] for c in CASES])
def test_globus_config_loads_unchanged(faas_home, name, text, acts, no_effect):
    cfg = load_as_start_does(faas_home, name.replace("_", "-"), fill(text))
    for dotted, expected in acts.items():
        assert value(cfg, dotted) == expected, dotted
    assert no_effect_keys(cfg) == no_effect
    for note in cfg.no_effect_here:   # each says why
        assert re.match(r"^[\w.]+ \(.{20,}\)$", note), note
    # no store: the embedded store of this FAAS_HOME, as `faas endpoint configure` without --store
    assert cfg.store == (faas_home / "store").as_uri() and cfg.queue == "local"


@pytest.mark.parametrize("name, text, kind", [("kube", KUBE, "KubernetesProvider"),
                                              ("ospool", OSPOOL, "CondorProvider")], ids=["kube", "ospool"])
def test_providers_faas_does_not_have_are_a_clear_error(faas_home, name, text, kind):
    """Kubernetes pods and HTCondor jobs are not blocks faas can start: an error, never a
    silent local block."""
    with pytest.raises(ConfigError) as e:
        load_as_start_does(faas_home, name, fill(text))
    assert "engine.provider.type: expected 'local' (LocalProvider), 'slurm' (SlurmProvider) or 'pbs'" in str(e.value)
    assert f"(got '{kind}')" in str(e.value) and str(ep_config.endpoint_dir(name, faas_home)) in str(e.value)


def test_the_submit_scripts_say_what_the_configs_ask(faas_home, tmp_path):
    polaris = load_as_start_does(faas_home, "polaris", fill(POLARIS))
    script = make_provider(polaris.engine.provider, tmp_path / "p").script(
        "POOL", "block-1", job_name="faas-1", mem=None, walltime="01:00:00").read_text()
    assert "#PBS -l select=1:ncpus=32:ngpus=4\n" in script and "#PBS -l walltime=01:00:00\n" in script
    assert "#PBS -A myproject\n" in script and "#PBS -q debug-scaling\n" in script
    assert "#PBS -l filesystems=home:grand:eagle\n" in script and "source ~/venv/bin/activate\n" in script
    assert "mpiexec -n 1 -ppn 1 --depth=64 --ppn 1 POOL" in script
    perlmutter = load_as_start_does(faas_home, "perlmutter", fill(PERLMUTTER))
    script = slurm_script(perlmutter, tmp_path)
    for line in ("#SBATCH --nodes=2", "#SBATCH --partition=debug", "#SBATCH --account=m0000",
                 "#SBATCH --time=00:10:00", "#SBATCH --constraint=cpu"):
        assert line + "\n" in script, line
    assert "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 -c 128 POOL" in script


def test_a_multi_node_block_never_uses_one_node(faas_home, tmp_path):
    """Globus's default launcher (Parsl's SingleNodeLauncher) starts every pool of a block on its
    first node. Without a launcher, faas starts one pool on each node (srun on Slurm, mpiexec on
    PBS) and says so; a single-node launcher given with nodes_per_block > 1 is an error."""
    cfg = load_as_start_does(faas_home, "talk-scaling-batch", TALK_SCALING_BATCH)
    assert cfg.chosen_here == [
        "engine.provider.launcher: srun (not given; nodes_per_block 8 on slurm: one pool on each node, "
        "where Globus's default SingleNodeLauncher would start all 8 on the first)"]
    assert "srun --nodes=8 --ntasks=8 --ntasks-per-node=1 POOL" in slurm_script(cfg, tmp_path)
    pbs = load_as_start_does(faas_home, "pbs", "engine:\n  provider:\n    type: PBSProProvider\n"
                                              "    nodes_per_block: 3\n")
    assert pbs.engine.provider.launcher.type == "mpiexec"
    for text in ("engine:\n  provider:\n    type: SlurmProvider\n    nodes_per_block: 2\n"
                 "    launcher:\n      type: SingleNodeLauncher\n",
                 "engine:\n  provider:\n    type: LocalProvider\n    nodes_per_block: 2\n"):
        with pytest.raises(ConfigError, match="nodes_per_block > 1 needs a multi-node launcher"):
            load_as_start_does(faas_home, "one-node", text)


@pytest.mark.parametrize("text, where, hint", [
    (TALK_SCALING.replace("max_workers_per_node", "max_worker_per_node"),
     "engine.max_worker_per_node: unknown key (got 8)", "did you mean max_workers_per_node?"),
    (TALK_SINGLE_USER.replace("amqp_port", "amqp_prot"), "amqp_prot: unknown key (got 443)",
     "did you mean amqp_port?"),
    (fill(PERLMUTTER).replace("nodes_per_block", "nodes_per_blok"),
     "engine.provider.nodes_per_blok: unknown key (got 2)", "did you mean nodes_per_block?"),
    (fill(POLARIS).replace("bind_cmd", "bind_comd"),
     "engine.provider.launcher.bind_comd: unknown key (got '--cpu-bind')", "did you mean bind_cmd?"),
])
def test_a_misspelt_key_is_an_error_with_a_did_you_mean(faas_home, text, where, hint):
    with pytest.raises(ConfigError) as e:
        load_as_start_does(faas_home, "typo", text)
    path = ep_config.endpoint_dir("typo", faas_home) / "config.yaml"
    assert f"{path}: 1 problem(s)\n  {where}; {hint}\n" in str(e.value)


def test_serializers_faas_cannot_send_are_refused_at_load(faas_home):
    with pytest.raises(ConfigError, match=r"engine.allowed_serializers: faas sends every function and "
                                          r"argument as dill"):
        load_as_start_does(faas_home, "json-only", SERIALIZERS_NO_DILL)


@pytest.mark.parametrize("walltime, seconds, slurm, pbs", [
    ("30", 1800, "00:30:00", "00:30:00"),                 # minutes
    ("10:00", 600, "00:10:00", "00:10:00"),               # minutes:seconds (YAML 1.1 would say 600)
    ("1:30:00", 5400, "01:30:00", "01:30:00"),            # hours:minutes:seconds (YAML 1.1: 5400)
    ("01:30:00", 5400, "01:30:00", "01:30:00"),
    ("2-0", 172800, "2-00:00:00", "48:00:00"),            # days-hours
    ("2-12:30", 217800, "2-12:30:00", "60:30:00"),        # days-hours:minutes
    ("1-02:00:00", 93600, "1-02:00:00", "26:00:00"),      # days-hours:minutes:seconds
    ("90", 5400, "01:30:00", "01:30:00"),
])
def test_walltime_takes_every_slurm_format(faas_home, tmp_path, walltime, seconds, slurm, pbs):
    """Written unquoted in config.yaml, as the docs write them."""
    for kind in ("SlurmProvider", "PBSProProvider"):
        cfg = load_as_start_does(faas_home, "wt", f"engine:\n  provider:\n    type: {kind}\n"
                                                  f"    walltime: {walltime}\n")
        assert cfg.engine.provider.walltime_s == seconds
        p = make_provider(cfg.engine.provider, tmp_path / kind)
        if kind == "SlurmProvider":
            assert f"#SBATCH --time={slurm}\n" in slurm_script(cfg, tmp_path)
        else:
            assert p.template_vars("block-1")["walltime"] == pbs


def test_walltime_errors_and_no_limit(faas_home):
    for bad in ("1:2:3:4", "1h", "2-", "-5"):
        with pytest.raises(ConfigError, match="expected a walltime in one of Slurm's formats"):
            load_as_start_does(faas_home, "wt", f"engine:\n  provider:\n    walltime: '{bad}'\n")
    cfg = load_as_start_does(faas_home, "wt", "engine:\n  provider:\n    walltime: UNLIMITED\n")
    assert cfg.engine.provider.walltime is None


def test_keys_that_act_under_other_names(faas_home, tmp_path):
    cfg = load_as_start_does(faas_home, "acts", """\
engine:
  type: GlobusComputeEngine
  max_retries_on_system_failure: 2
  prefetch_capacity: 0
  job_status_kwargs:
    max_idletime: 30
    strategy_period: 2
  drain_period: 3000
  cores_per_worker: 0.5
  provider:
    type: SlurmProvider
    walltime: 01:00:00
    clusters: c2
    gres: gpu:a100:4
    regex_job_id: "Submitted batch job (?P<id>\\\\S*)"
""")
    assert cfg.max_receives == 3 and cfg.engine.prefetch == 0
    assert cfg.engine.max_idle_time == 30 and cfg.strategy_period == 2
    assert cfg.engine.provider.walltime_margin == 600
    import os
    assert cfg.engine.workers_per_node == 2 * len(os.sched_getaffinity(0))   # Parsl's: cores / 0.5
    script = slurm_script(cfg, tmp_path)
    assert "#SBATCH --clusters=c2\n" in script and "#SBATCH --gres=gpu:a100:4\n" in script
    assert no_effect_keys(cfg) == {"engine.provider.regex_job_id"}
    # a manager's key (its folder has the template beside config.yaml: a multi-user endpoint)
    from faas.endpoint.multiuser import files
    files.write_defaults(ep_config.endpoint_dir("mep", faas_home))
    cfg = load_as_start_does(faas_home, "mep", "identity_mapping_config_path: /etc/faas/idmap.json\n")
    assert cfg.identity_mapping_path == "/etc/faas/idmap.json"
    cfg = load_as_start_does(faas_home, "none", "engine:\n  strategy: none\n  provider:\n    init_blocks: 2\n"
                                                "    max_blocks: 5\n")
    assert (cfg.engine.provider.min_blocks, cfg.engine.provider.max_blocks) == (2, 2)   # never scaled
    cfg = load_as_start_does(faas_home, "wrong", "engine:\n  provider:\n    type: LocalProvider\n"
                                                 "    partition: debug\n")
    assert cfg.no_effect_here == ["engine.provider.partition (the local provider starts processes on "
                                  "this host; no scheduler reads it)"]


def test_settings_that_would_weaken_access_are_refused(faas_home):
    with pytest.raises(ConfigError, match="pam: faas cannot run PAM account checks"):
        load_as_start_does(faas_home, "pam", "pam:\n  enable: true\n")
    assert no_effect_keys(load_as_start_does(faas_home, "pam", "pam:\n  enable: false\n")) == {"pam"}


def test_a_rewrite_keeps_the_globus_keys(faas_home):
    """`faas endpoint configure` on a Globus config changes what it is asked to, and keeps the
    rest, comments aside (the keys with no effect too: they are listed again)."""
    load_as_start_does(faas_home, "kept", fill(TALK_DELTA))
    r = CliRunner().invoke(faas_cli, ["endpoint", "configure", "kept", "--max-blocks", "3"])
    assert r.exit_code == 0, r.output
    assert "Updated profile for endpoint named <kept>" in r.output
    cfg = ep_config.load(ep_config.endpoint_dir("kept", faas_home) / "config.yaml")
    assert cfg.engine.provider.max_blocks == 3 and cfg.engine.provider.partition == "cpu"
    assert no_effect_keys(cfg) == {"amqp_port", "engine.address"}


# -- started for real -----------------------------------------------------------------------
@pytest.mark.slow
def test_the_talks_config_runs_a_task_and_says_what_has_no_effect(faas_home):
    """The talk's single-user config, as it is: started on the local provider, a task runs (sent
    to the endpoint's UUID, as Globus's Executor(endpoint_id=...) does), and amqp_port is listed
    once in endpoint.log and in `faas endpoint status`."""
    name = "eresearch-2025-endpoint"
    load_as_start_does(faas_home, name, TALK_SINGLE_USER)
    d = ep_config.endpoint_dir(name, faas_home)
    control.start_detached(name, faas_home, wait=60)
    try:
        endpoint_id = json.loads((d / "endpoint.json").read_text())["endpoint_id"]
        with faas.Executor(endpoint_id=endpoint_id) as ex:
            assert ex.submit(pow, 3, 4).result(timeout=120) == 81
        log = (d / "endpoint.log").read_text()
        assert log.count("no effect here: amqp_port (the port of Globus's hosted AMQP service") == 1
        r = CliRunner().invoke(faas_cli, ["endpoint", "status", name])
        info = json.loads(r.output)
        assert info["endpoint_id"] == endpoint_id and info["display_name"] == "My Endpoint"
        assert [n.split(" (")[0] for n in info["no_effect_here"]] == ["amqp_port"]
    finally:
        control.stop(name, faas_home)


@pytest.mark.slow
def test_endpoint_setup_and_teardown_run(faas_home):
    """As Globus runs them: a shell in the endpoint's folder, setup before the endpoint serves
    (a failure: it does not start, exit 78), teardown once it stopped; their output in
    endpoint.log. With ``debug: true`` the log is at DEBUG and holds the configuration."""
    d = ep_config.endpoint_dir("hooks", faas_home)
    load_as_start_does(faas_home, "hooks", """\
endpoint_setup: |
  sleep 1
  echo "set up in $PWD" > setup.out
  echo setup says hello
endpoint_teardown: echo torn down > teardown.out
debug: true
engine:
  max_workers_per_node: 1
  provider:
    type: LocalProvider
""")
    control.start_detached("hooks", faas_home, wait=30)
    try:
        assert (d / "setup.out").read_text() == f"set up in {d}\n"
        assert not (d / "teardown.out").exists()
        with faas.Executor(endpoint="hooks") as ex:
            assert ex.submit(abs, -5).result(timeout=120) == 5
    finally:
        control.stop("hooks", faas_home)
    assert (d / "teardown.out").read_text() == "torn down\n"
    log = (d / "endpoint.log").read_text()
    assert "endpoint_setup stdout:\nsetup says hello" in log
    # debug: true writes the configuration between Globus's sentinel lines
    assert "DEBUG faas.daemon Begin Compute endpoint configuration (10 lines):\nendpoint_setup: |" in log
    assert "    type: LocalProvider\nEnd Compute endpoint configuration" in log
    assert log.index("running endpoint_setup") < log.index("endpoint hooks started")
    assert log.index("endpoint hooks stopped") > log.index("running endpoint_teardown")
    (d / "config.yaml").write_text("endpoint_setup: echo broken >&2; exit 3\n")
    with pytest.raises(ConfigError, match=r"failed to start \(exit 78\)") as e:
        control.start_detached("hooks", faas_home, wait=30)
    assert "endpoint_setup failed with exit code 3" in str(e.value)
    wait_until(lambda: "endpoint_setup stderr:\nbroken" in (d / "endpoint.log").read_text(), 10,
               "the setup's stderr in endpoint.log")
    assert not control.stop("hooks", faas_home)   # it never started
