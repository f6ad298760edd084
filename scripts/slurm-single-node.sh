#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine, on loopback only, for tests/execution/test_slurm.py.
#
# Idempotent: installs Debian's slurmctld, slurmd, slurm-client and munge if missing, writes /etc/slurm/slurm.conf for this
# host's name, CPUs and memory (only when it is absent or was written by this script), starts munged,
# slurmctld and slurmd by hand (no systemd needed), and waits until `sinfo` shows the node idle.
# Needs root. Exits non-zero with a message saying what failed.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by tomoforge scripts/slurm-single-node.sh"
LOG=/var/log/slurm
TIMEOUT_S=${SLURM_START_TIMEOUT_S:-60}

die() { echo "slurm-single-node: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    echo "slurm-single-node: installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends \
                 slurmctld slurmd slurm-client munge >/dev/null; } \
        || die "apt-get install of slurmctld slurmd slurm-client munge failed"
fi

host=$(hostname -s)
# The node must resolve to loopback, so nothing listens on or talks over a real network.
if ! getent hosts "$host" | grep -q '^127\.'; then
    die "host name '$host' does not resolve to 127.x (add '127.0.0.1 $host' to /etc/hosts)"
fi

if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "slurm-single-node: keeping the existing $CONF (not written by this script)"
else
    # CPU topology and memory as slurmd sees them (its -C line); leave 512 MB to the system.
    node=$(slurmd -C | head -1) || die "slurmd -C failed"
    topo=$(grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' \
        <<<"$node") || die "cannot read the CPU topology from 'slurmd -C': $node"
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    [ -n "$mem" ] || die "cannot read RealMemory from 'slurmd -C': $node"
    mem=$(( mem > 1024 ? mem - 512 : mem ))
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd "$LOG"
    chown slurm:slurm /var/lib/slurm/slurmctld "$LOG"
    tmp=$(mktemp "$CONF.XXXXXX")
    cat >"$tmp" <<EOF
$MARK
ClusterName=tomoforge
SlurmctldHost=$host(127.0.0.1)
# Bind the daemons to their own address (127.0.0.1), not to every interface.
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# No cgroups (none in containers): track processes by Linux process tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 $topo RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$tmp"
    if cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; else mv "$tmp" "$CONF"; changed=1; fi
fi

# A daemon is up when its pid file names a live process of that name (slurmctld runs as 'slurm' and
# cannot remove its pid file from /run, so a stale one is normal).
running() { [ -f "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]; }

start_munge() {
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        /usr/sbin/mungekey --create --force >/dev/null && chown munge:munge /etc/munge/munge.key \
            || die "cannot create /etc/munge/munge.key"
    fi
    # munged refuses to run as root; start it as its own user.
    su -s /bin/sh munge -c /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
}

# Start whatever is not running. Called again while waiting: a daemon that was shutting down when
# this script started (e.g. just after a kill) is restarted once it has gone.
ensure_daemons() {
    running /run/munge/munged.pid munged || start_munge
    munge -n | unmunge >/dev/null 2>&1 || die "munge round trip failed (see /var/log/munge/munged.log)"
    running /run/slurmctld.pid slurmctld || slurmctld || die "slurmctld did not start (see $LOG/slurmctld.log)"
    running /run/slurmd.pid slurmd || slurmd || die "slurmd did not start (see $LOG/slurmd.log)"
}

# A new slurm.conf (first run, other host or hardware) needs the daemons restarted to take effect.
if [ "${changed:-0}" = 1 ]; then
    for d in slurmd slurmctld; do
        if running "/run/$d.pid" "$d"; then
            pid=$(cat "/run/$d.pid"); kill "$pid"
            for _ in $(seq 30); do [ -d "/proc/$pid" ] || break; sleep 1; done
        fi
    done
fi

deadline=$(( $(date +%s) + TIMEOUT_S ))
while :; do
    ensure_daemons
    state=$(timeout 5 sinfo -h -n "$host" -o %t 2>/dev/null | head -1 || true)
    case "$state" in
        idle|mix|alloc) break ;;
        down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] \
        || die "node '$host' not idle after ${TIMEOUT_S}s (sinfo state: '${state:-no answer}'; see $LOG/*.log)"
    sleep 1
done
echo "slurm-single-node: node $host is $state ($(sinfo -h -o '%c CPUs, %m MB' | head -1))"
