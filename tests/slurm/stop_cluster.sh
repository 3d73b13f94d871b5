#!/usr/bin/env bash
# Stop the test cluster started by start_cluster.sh (slurmd, slurmctld, munged).
# Only the daemons recorded in their pid files are signalled.
set -uo pipefail

stop_pidfile() {  # stop_pidfile PIDFILE NAME
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "[stop_cluster] stopping $name (pid $pid)" >&2
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}

[[ $(id -u) -eq 0 ]] || { echo "[stop_cluster] must run as root" >&2; exit 2; }

# slurmd first, so that it does not try to re-register with a dying controller.
stop_pidfile /run/slurm/slurmd.pid slurmd
stop_pidfile /run/slurm/slurmctld.pid slurmctld
stop_pidfile /run/munge/munged.pid munged
exit 0
