#!/usr/bin/env bash
# Bring up a throwaway single-node SLURM cluster on this host (root only).
#
# Used by tests/test_slurm_profile.py to run the workflow through the real
# SLURM executor plugin.  Safe to run repeatedly: if the daemons are already
# up with the same configuration they are left alone, otherwise they are
# restarted cleanly.  No systemd is needed; daemons are started directly.
#
# Knobs (environment):
#   JETFM_SLURM_MIN_CPUS    advertise at least this many CPUs   (default 8)
#   JETFM_SLURM_MIN_MEM_MB  advertise at least this much memory (default 65536)
#   JETFM_SLURM_TIMEOUT     seconds to wait for the node to be idle (default 90)
#   JETFM_SLURM_FORCE=1     overwrite an /etc/slurm/slurm.conf not written here
#
# The node deliberately may advertise more CPUs/memory than the machine has
# (SlurmdParameters=config_overrides): the profile's per-rule requests (e.g.
# pretrain: 16 GB; a packed group of 8 downstream runs: 8 CPUs, 64 GB) must be
# schedulable unchanged on a 2-core CI box.
# Nothing is enforced (task/none, no cgroups), so the jobs merely share cores.
#
# A fake GPU is declared so that `--gpus=1` / `--gres=gpu:1` jobs are
# scheduled.  slurmd drops file-less gpu GRES records ("count reported lower
# than configured (0 < 1)", node INVAL), so gres.conf points File= at a
# placeholder: a /dev/null-like character device, or, where mknod is not
# permitted, a plain file (slurmd then logs "not a valid character or block
# device" but still counts it).  Without device cgroups nothing is bound, and
# jobs see no CUDA device (the workflow then runs on CPU).
set -euo pipefail

MIN_CPUS=${JETFM_SLURM_MIN_CPUS:-8}
MIN_MEM_MB=${JETFM_SLURM_MIN_MEM_MB:-65536}
TIMEOUT=${JETFM_SLURM_TIMEOUT:-90}

CONF_DIR=/etc/slurm
RUN_DIR=/run/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm
MUNGE_RUN=/run/munge
MUNGE_KEY=/etc/munge/munge.key

log() { echo "[start_cluster] $*" >&2; }

# Exit codes: 1 = cluster failed to come up, 2 = not root,
# 3 = SLURM unusable here (packages not installable, or a foreign slurm.conf).
die() {  # die [-c CODE] MESSAGE...
    local code=1
    if [[ $1 == -c ]]; then code=$2; shift 2; fi
    log "ERROR: $*"
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        if [[ -f $f ]]; then
            echo "----- tail $f -----" >&2
            tail -n 40 "$f" >&2
        fi
    done
    exit "$code"
}

[[ $(id -u) -eq 0 ]] || { log "must run as root"; exit 2; }

# --- packages ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    log "installing slurm-wlm and munge"
    command -v apt-get >/dev/null || die -c 3 "slurm-wlm/munge missing and no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh container has no package lists; update only when needed.
    if ! apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null; then
        apt-get update >/dev/null || die -c 3 "apt-get update failed"
        apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null \
            || die -c 3 "apt-get install slurm-wlm munge failed"
    fi
fi

# --- helpers ------------------------------------------------------------------
pid_alive() {  # pid_alive PIDFILE -> 0 if the process in PIDFILE runs
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pidfile() {  # stop_pidfile PIDFILE NAME
    local pidfile=$1 name=$2 pid
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
}

# --- configuration ------------------------------------------------------------
NODE=$(hostname -s)
ncpu=$(nproc)
CPUS=$(( ncpu > MIN_CPUS ? ncpu : MIN_CPUS ))
# MemTotal, not MemAvailable: the value must be stable between runs, or every
# run would see a "changed" config and restart the daemons.
total_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
mem_mb=$(( total_mb * 85 / 100 / 256 * 256 ))  # headroom for OS and daemons
MEM_MB=$(( mem_mb > MIN_MEM_MB ? mem_mb : MIN_MEM_MB ))

FAKE_GPU=$STATE_DIR/fakegpu/gpu0

mkdir -p "$CONF_DIR" "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" \
    "$(dirname "$FAKE_GPU")"
if [[ ! -c $FAKE_GPU ]]; then
    rm -f "$FAKE_GPU"
    mknod -m 666 "$FAKE_GPU" c 1 3 2>/dev/null || touch "$FAKE_GPU"
fi
chown slurm:slurm "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/slurmctld"

new_conf=$(mktemp)
new_gres=$(mktemp)
trap 'rm -f "$new_conf" "$new_gres"' EXIT

cat >"$new_conf" <<EOF
# Single-node test cluster written by tests/slurm/start_cluster.sh
ClusterName=jetfm
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=${STATE_DIR}/slurmctld
SlurmdSpoolDir=${STATE_DIR}/slurmd
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
# No cgroups needed (containers often lack a writable cgroup tree).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# Jobs without --mem would otherwise reserve the whole node.
DefMemPerCPU=1000
# Accounting off: sacct does not work, job status must come from squeue.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue/scontrol keep finished jobs this long: the executor's squeue-based
# status checks and the test's post-run inspection both rely on it.
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$new_gres" <<EOF
# Placeholder GPU: lets GPU jobs be scheduled on a GPU-less test node.
AutoDetect=off
NodeName=${NODE} Name=gpu File=${FAKE_GPU}
EOF

# Never clobber the configuration of a real SLURM installation.
HEADER=$(head -n1 "$new_conf")
if [[ -f $CONF_DIR/slurm.conf && ${JETFM_SLURM_FORCE:-0} != 1 ]] \
    && [[ $(head -n1 "$CONF_DIR/slurm.conf") != "$HEADER" ]]; then
    die -c 3 "$CONF_DIR/slurm.conf belongs to another SLURM setup (JETFM_SLURM_FORCE=1 overrides)"
fi

config_changed=0
cmp -s "$new_conf" "$CONF_DIR/slurm.conf" || config_changed=1
cmp -s "$new_gres" "$CONF_DIR/gres.conf" || config_changed=1

# --- munge ----------------------------------------------------------------------
if [[ ! -s $MUNGE_KEY ]]; then
    log "creating munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge "$MUNGE_KEY"
chmod 700 /etc/munge
chmod 400 "$MUNGE_KEY"
mkdir -p "$MUNGE_RUN" /var/log/munge /var/lib/munge
chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
chmod 755 "$MUNGE_RUN"

if ! pid_alive "$MUNGE_RUN/munged.pid" || ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    stop_pidfile "$MUNGE_RUN/munged.pid" munged
    rm -f "$MUNGE_RUN/munge.socket.2" "$MUNGE_RUN/munge.socket.2.lock"
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged failed to start"
fi
munge -n | unmunge >/dev/null || die "munge round trip failed"

# --- slurm daemons ------------------------------------------------------------------
if [[ $config_changed -eq 1 ]] || ! pid_alive "$RUN_DIR/slurmctld.pid" \
    || ! pid_alive "$RUN_DIR/slurmd.pid"; then
    stop_pidfile "$RUN_DIR/slurmd.pid" slurmd
    stop_pidfile "$RUN_DIR/slurmctld.pid" slurmctld
    install -m 644 "$new_conf" "$CONF_DIR/slurm.conf"
    install -m 644 "$new_gres" "$CONF_DIR/gres.conf"
    log "starting slurmctld and slurmd (node $NODE: ${CPUS} CPUs, ${MEM_MB} MB, gpu:1)"
    # -c: forget jobs of a previous incarnation; this is a scratch cluster.
    /usr/sbin/slurmctld -c || die "slurmctld failed to start"
    /usr/sbin/slurmd || die "slurmd failed to start"
else
    log "daemons already running with current configuration"
fi

# --- wait for the node ------------------------------------------------------------------
start=$SECONDS
state=""
while (( SECONDS - start < TIMEOUT )); do
    state=$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n1 || true)
    case $state in
        idle|mix|alloc|comp) break ;;
        inval*) break ;;  # config rejected by slurmctld; waiting cannot help
        down*|drain*|drng*|fail*)
            # ReturnToService=2 normally handles this; be explicit for stale state.
            scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case $state in
    idle|mix|alloc|comp) ;;
    *) sinfo -N -l >&2 || true
       die "node $NODE not ready (state: '${state:-none}', waited $(( SECONDS - start ))s)" ;;
esac
log "node $NODE is $state after $(( SECONDS - start ))s"

# GPU jobs must be schedulable, otherwise pretrain/downstream would pend forever.
if ! timeout 60 srun --partition=main --gpus=1 --time=1 --mem=10 true; then
    die "a --gpus=1 test job could not run"
fi
log "cluster ready"
sinfo -N -o "%N %P %t %c %m %G"
