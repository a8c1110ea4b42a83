#!/usr/bin/env bash
# A throwaway single-node Slurm cluster for tests, living entirely in one directory.
#
#   tests/slurm/cluster.sh start DIR   write the config and a munge key into DIR, start munged,
#                                      slurmctld and slurmd, wait until the node is idle, and print
#                                      the environment a caller needs (also written to DIR/env.sh)
#   tests/slurm/cluster.sh stop DIR    stop everything started for DIR; safe to repeat
#
# Made for CI containers: runs as root and needs no systemd, no cgroups and no network beyond
# loopback. The daemons listen on free ports of 127.0.0.1 and keep their state, logs, sockets and
# pid files in DIR, so they never meet a system Slurm or munged, or a cluster started for another
# DIR. Needs the Debian packages slurmctld, slurmd, slurm-client and munge (Slurm 22.05), and
# python3 to find free ports.
#
# A caller sources DIR/env.sh (or evals the output of start) and then uses sbatch, srun, squeue,
# scontrol and scancel as usual. MPI programs are launched with srun --mpi=pmix.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
case $cmd in start | stop) ;; *) usage ;; esac
if [ "$cmd" = stop ] && [ ! -d "$dir" ]; then exit 0; fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

conf=$dir/slurm.conf
munge_socket=$dir/munge/munge.socket
node=$(hostname -s)
start_timeout_s=60
# Lifetime of a job credential, and so also how long a requeued job waits before it may start
# again (Slurm's default of 120 s would stall every requeue test for two minutes).
cred_expire_s=10

pidfile() { echo "$dir/run/$1.pid"; }

# Whether a process runs: it exists and is not a zombie waiting for its parent to reap it.
running() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# The pid in DIR/run/NAME.pid if that process runs and is still NAME, else nothing. The name
# check keeps a stale pid file from pointing at an unrelated process that reused the pid.
live_pid() {
  local f pid comm
  f=$(pidfile "$1")
  [ -s "$f" ] || return 0
  read -r pid <"$f" || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 0
  if [ "$comm" = "$1" ] && running "$pid"; then echo "$pid"; fi
}

# The slurmstepd processes of this cluster and everything below them (the jobs' processes).
# slurmd forks a slurmstepd for each job step and leaves them running when it exits, so stop
# finds them here: a slurmstepd of this cluster inherits SLURM_CONF=DIR/slurm.conf from slurmd.
step_tree() {
  local d p comm stat rest pids=() changed=1
  local -A ppid_of=()
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    { read -r comm <"$d/comm" && read -r stat <"$d/stat"; } 2>/dev/null || continue
    # The parent pid is the second field after the command name, which may hold spaces.
    rest=${stat##*) }
    rest=${rest#* }
    ppid_of[$p]=${rest%% *}
    [ "$comm" = slurmstepd ] || continue
    if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf"; then
      pids+=("$p")
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  # Add children of what is in the list until nothing new turns up.
  while [ $changed = 1 ]; do
    changed=0
    for p in "${!ppid_of[@]}"; do
      [[ " ${pids[*]} " == *" $p "* ]] && continue
      if [[ " ${pids[*]} " == *" ${ppid_of[$p]} "* ]]; then
        pids+=("$p")
        changed=1
      fi
    done
  done
  echo "${pids[*]}"
}

# TERM the pids given as words of $1, wait up to $2 seconds for them to exit, then KILL the rest.
terminate() {
  local pids alive p i
  read -r -a pids <<<"$1"
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    alive=()
    for p in "${pids[@]}"; do
      if running "$p"; then alive+=("$p"); fi
    done
    [ ${#alive[@]} -gt 0 ] || return 0
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

stop() {
  local ctld slurmd i
  ctld=$(live_pid slurmctld)
  slurmd=$(live_pid slurmd)
  # Cancel the jobs while both daemons run, so that their steps end the ordinary way.
  if [ -n "$ctld" ] && [ -n "$slurmd" ]; then
    SLURM_CONF=$conf timeout 10 scancel --quiet --user=root 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [ -n "$(step_tree)" ] || break
      sleep 0.1
    done
  fi
  terminate "$ctld $slurmd" 10
  # Steps that outlived slurmd (stuck, or slurmd was gone already) and their processes.
  # slurmstepd itself does not exit on TERM, so the wait is short.
  terminate "$(step_tree)" 2
  # munged last: the Slurm daemons authenticate through it until they exit.
  terminate "$(live_pid munged)" 10
  rm -f "$(pidfile slurmctld)" "$(pidfile slurmd)" "$(pidfile munged)" "$munge_socket"
}

# A TCP port on 127.0.0.1 that nothing listens on at the moment.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

show_logs() {
  local f
  for f in "$dir"/log/*.log; do
    [ -f "$f" ] || continue
    echo "==== $f (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

# A failed start prints why and the daemon logs, and stops whatever did start.
fail_start() {
  echo "cluster.sh: $*" >&2
  show_logs
  stop
  exit 1
}

write_conf() {
  local ctld_port slurmd_port hw topology task_plugin first_job_id
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done

  # The node's CPUs as slurmd sees them (sockets, cores, threads), so that CPU binding matches
  # the hardware; just the CPU count if slurmd -C has nothing to say.
  hw=$(SLURM_CONF=/dev/null slurmd -C 2>/dev/null | head -n 1 || true)
  topology=$(echo "$hw" | grep -oE '(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' \
    | paste -sd ' ' || true)
  [[ $topology == *CPUs=* ]] || topology="CPUs=$(nproc)"

  first_job_id=$((RANDOM * 1000 + 1000))

  # task/affinity pins tasks with sched_setaffinity; where a sandbox forbids that, tasks run
  # unpinned rather than failing to launch.
  task_plugin=task/affinity
  if ! python3 -c 'import os; os.sched_setaffinity(0, os.sched_getaffinity(0))' 2>/dev/null; then
    task_plugin=task/none
  fi

  cat >"$conf" <<EOF
# Written by tests/slurm/cluster.sh for a throwaway single-node cluster in $dir.
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root

# munge with this cluster's own key and socket, never a system munged.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_socket,cred_expire=$cred_expire_s

StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$dir/tmp
# An empty plugin stack, so nothing from a system /etc/slurm is loaded.
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true

# No cgroups in CI containers: track job processes by parentage, bind without cgroups, no
# accounting.
ProctrackType=proctrack/linuxproc
TaskPlugin=$task_plugin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none

SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Look at pending jobs every second rather than every minute, so that a requeued job starts as
# soon as it may (cred_expire above) instead of at the next periodic pass.
SchedulerParameters=sched_interval=1
MpiDefault=none
JobRequeue=1
# Job ids start at a random point: Open MPI names its shared-memory files after the PMIx
# namespace (slurm.pmix.JOB.STEP), so two clusters on one machine both running job 1 would
# trample each other's files.
FirstJobId=$first_job_id
ReturnToService=2
# The node registers with the values below whatever the machine has (memory in particular).
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=300

NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node $topology RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$dir/plugstack.conf"
}

start() {
  local name pid state deadline

  # slurmd must be root to start jobs, and SlurmUser=root keeps everything under one user.
  [ "$(id -u)" = 0 ] || die "start needs root"
  if [ -n "$(ls -A "$dir")" ]; then die "$dir is not empty; start needs a new or empty directory"; fi
  # Unix socket paths are limited to 107 bytes. The longest ones Slurm makes in DIR are its
  # per-step sockets, spool/<node>_<job>.<step> and spool/sock.pmix.<job>.<step>.
  if [ ${#dir} -gt 70 ] || [ $((${#dir} + ${#node})) -gt 80 ]; then
    die "$dir is too long for the Slurm and munge sockets in it; use a shorter path"
  fi
  mkdir -p "$dir"/{munge,state,spool,log,run,tmp}
  write_conf

  # A fresh munge key for this cluster only; munged wants it readable by its user alone.
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"

  # --force: munged refuses to run as root, or with a socket under a world-writable directory
  # such as /tmp, without it. It forks and returns once the socket is ready.
  munged --force \
    --socket="$munge_socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$(pidfile munged)" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" >>"$dir/log/munged.log" 2>&1 \
    || fail_start "munged did not start"
  munge -n --socket="$munge_socket" | unmunge --socket="$munge_socket" >/dev/null 2>&1 \
    || fail_start "munged does not answer on $munge_socket"

  # SLURM_CONF in the daemons' environment is passed on to their slurmstepd processes, which is
  # how stop tells this cluster's steps from any other.
  export SLURM_CONF=$conf
  slurmctld -f "$conf" >>"$dir/log/slurmctld.log" 2>&1 || fail_start "slurmctld did not start"
  # -N: the node name comes from slurm.conf, whatever the hostname resolves to.
  slurmd -f "$conf" -N "$node" >>"$dir/log/slurmd.log" 2>&1 || fail_start "slurmd did not start"

  # Wait for the node to register and turn idle. The daemons fork before writing their pid
  # files, so a missing pid counts as a dead daemon only after a few seconds.
  deadline=$((SECONDS + start_timeout_s))
  state=
  while [ "$state" != idle ]; do
    [ $SECONDS -lt $deadline ] || fail_start "node $node not idle after ${start_timeout_s} s (state: ${state:-none})"
    sleep 0.2
    state=$(timeout 10 sinfo -h -N -n "$node" -o %T 2>/dev/null || true)
    for name in munged slurmctld slurmd; do
      pid=$(live_pid "$name")
      if [ -z "$pid" ] && [ $((SECONDS + start_timeout_s - deadline)) -ge 5 ]; then
        fail_start "$name is not running"
      fi
    done
  done

  # MUNGE_SOCKET is for the caller's own use (munge and unmunge take --socket); Slurm's
  # commands find the socket through SLURM_CONF.
  cat >"$dir/env.sh" <<EOF
export SLURM_CONF=$conf
export MUNGE_SOCKET=$munge_socket
EOF
  cat "$dir/env.sh"
}

"$cmd"
