#!/usr/bin/env bash
# A real single-node Slurm (Debian's slurm-wlm 22.05 + munge) on this host, for the Slurm
# integration tests (tests/test_slurm_integration.py). Run as root; no systemd needed.
#
#   bash .ci/slurm.sh          # install, configure, start; returns once `sinfo` shows the node idle
#
# Idempotent: packages already installed are not installed again, a running munged / slurmctld /
# slurmd is kept (restarted only if the slurm.conf this script writes changed), and the node is
# resumed if it came back drained. Everything Slurm writes (state, spool, logs, pids) lives under
# $FAAS_SLURM_DIR (default /var/tmp/faas-slurm); on failure the logs are printed.
#
# The configuration follows shared notes/slurm-single-node.md: SlurmUser=root, linuxproc process
# tracking, no task plugin, cons_tres with CR_Core, no accounting (so no sacct: the provider uses
# squeue and `scontrol show job`), one partition `debug` (default). Short KillWait (10 s) and
# OverTimeLimit=0 keep scancel and walltime tests quick; MinJobAge=300 keeps finished jobs
# visible to `scontrol show job` for 5 minutes.
set -euo pipefail

dir=${FAAS_SLURM_DIR:-/var/tmp/faas-slurm}
conf=/etc/slurm/slurm.conf
host=$(hostname -s)
ready_wait=${FAAS_SLURM_WAIT:-90}

say() { echo "slurm.sh: $*"; }
alive() {   # a live (not zombie) process named exactly $1
    ps -eo stat=,comm= | awk -v n="$1" '$1 !~ /^Z/ && $2 == n {f = 1} END {exit !f}'
}
die() {
    echo "slurm.sh: error: $*" >&2
    for f in "$dir"/log/slurmctld.log "$dir"/log/slurmd.log /var/log/munge/munged.log; do
        if [ -f "$f" ]; then
            echo "---- last lines of $f ----" >&2
            tail -n 40 "$f" >&2
        fi
    done
    exit 1
}

if [ "$(id -u)" != 0 ]; then
    echo "slurm.sh: error: must run as root (it installs packages and starts munged, slurmctld and slurmd)" >&2
    exit 1
fi

# -- 1. packages -----------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null \
        || die "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
fi

# -- 2. munge --------------------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok && alive munged; then   # starting up, or on its way out
    for _ in $(seq 100); do
        munge_ok && break
        alive munged || break
        sleep 0.1
    done
fi
if ! munge_ok; then
    if alive munged; then
        die "munged runs but does not answer (munge -n | unmunge fails)"
    fi
    say "starting munged"
    runuser -u munge -- munged || die "munged did not start"
    for _ in $(seq 50); do
        munge_ok && break
        sleep 0.1
    done
    munge_ok || die "munged started but munge -n | unmunge fails"
fi

# -- 3. slurm.conf ---------------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
mem_mb=$((mem_mb * 95 / 100))   # a little below what slurmd sees, or it drains the node
mkdir -p "$dir"/state "$dir"/spool "$dir"/log "$dir"/run /etc/slurm
new=$(mktemp)
cat >"$new" <<EOF
# written by faas .ci/slurm.sh: a single-node cluster for the integration tests
ClusterName=faas-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=10
OverTimeLimit=0
InactiveLimit=0
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if ! cmp -s "$new" "$conf"; then
    changed=1
    install -m 644 "$new" "$conf"
fi
rm -f "$new"

# -- 4. daemons ------------------------------------------------------------------------------
stop_pidfile() {   # stop the daemon whose pid file we wrote (never by name)
    local pidfile=$1 pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}
if [ "$changed" = 1 ]; then
    if alive slurmctld || alive slurmd; then
        say "slurm.conf changed: restarting slurmctld and slurmd (running jobs survive)"
        stop_pidfile "$dir/run/slurmd.pid"
        stop_pidfile "$dir/run/slurmctld.pid"
        if alive slurmctld || alive slurmd; then
            die "a slurmctld or slurmd that this script did not start is running (pids:" \
                "$(ps -eo pid=,comm= | awk '$2 == "slurmctld" || $2 == "slurmd" {printf "%s ", $1}')); stop it first"
        fi
        restart=1
    fi
fi
if ! alive slurmctld; then
    if [ "${restart:-0}" = 1 ]; then
        say "starting slurmctld"
        slurmctld || die "slurmctld did not start"
    else
        # A cold start (fresh machine, or the daemons were ended with the session that started
        # them): -c forgets the jobs of the last run, which would otherwise be requeued and rerun
        # scripts whose folders are gone.
        say "starting slurmctld (clean state)"
        slurmctld -c || die "slurmctld did not start"
    fi
fi
if ! alive slurmd; then
    say "starting slurmd"
    slurmd || die "slurmd did not start"
fi

# -- 5. wait for the node --------------------------------------------------------------------
started=$SECONDS
deadline=$((SECONDS + ready_wait))
resumed=0
state=""
while :; do
    state=$(sinfo -h -N -n "$host" -o '%t' 2>/dev/null | head -n1 || true)
    case "$state" in
        idle|mix|alloc|comp) break ;;
        drain*|drng|down*)
            if [ "$resumed" = 0 ] && [ $((SECONDS - started)) -ge 5 ]; then
                say "node $host is $state: resuming it"
                scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
                resumed=1
            fi ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
        sinfo -N -l >&2 || true
        scontrol show node "$host" >&2 || true
        die "node $host not up within ${ready_wait} s (sinfo state: '${state:-no answer}')"
    fi
    sleep 0.5
done
say "$(sinfo --version): node $host is $state: $cpus CPUs, ${mem_mb} MB; partition debug; logs in $dir/log"
