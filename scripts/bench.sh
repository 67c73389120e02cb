#!/usr/bin/env bash
# ReplFS benchmark: the same workloads on a native ext4 directory, on a ReplFS mount, on a
# bindfs mount (the plain FUSE passthrough), on a replicated ReplFS mount (a `mirror run`
# primary replicating synchronously to a `mirror run` secondary on loopback, 127.0.0.1 ->
# 127.0.0.2) and on a GlusterFS replica 2 volume (two bricks on this machine, FUSE client), all
# under /var/tmp/replfs-bench (a real disk).
#
#   scripts/bench.sh [--quick] [--targets LIST] [--resync|--no-resync] [--threads N] [--no-splice]
#                    [--cache-timeout S] [--no-build]
#
# --targets LIST: a comma-separated subset of native,replfs,bindfs,replicated,gluster (default:
# all); only those are set up, measured and shown in the table, with the ratios between them.
# --no-resync: leave out the resync section (below; it is on by default, --quick included, and
# independent of --targets).
#
# Workloads (in this order, each one on every target before the next one):
#   fio, ioengine=psync, buffered I/O:
#     seq write 1M      rw=write bs=1M size=$BENCH_SIZE end_fsync=1 (the data reaches the disk
#                       before the job ends; the fsync time counts in the figure)
#     seq read 1M       rw=read of the file just written, after dropping all caches
#     rand write fsync  rw=randwrite bs=4k fsync=1 (fsync after every write), time based
#     rand write 4 jobs rw=randwrite bs=4k numjobs=4 group_reporting, one file per job, time based
#     rand read         rw=randread bs=4k on the same file, after dropping all caches, time based
#   small files: create+write 100 bytes+close, then stat all, then unlink all (python3)
#   pgbench: a PostgreSQL 15 cluster on each target (unix socket only, in this run's own
#            directory), pgbench -i -s $BENCH_PG_SCALE, then pgbench -c 4 -j 2 -T $BENCH_RUNTIME
#   daemon memory: peak VmRSS sampled from /proc/PID/status, and VmHWM, of mirror, bindfs,
#                  the replicated target's primary (mirror run --role primary) and the gluster
#                  target's FUSE client (glusterfs); the secondary's and the bricks' are logged
#
# The resync section (after the workloads, shown under the table; not a target): two more
# 'mirror run' nodes on loopback with their own cluster file, key, ports and state under
# RUN/resync (path prefixes node1/ and node2/; the cluster's state_dir, /var/lib/mirror, lies
# under each prefix, so both start with no state in a new run). One measurement of each step;
# 'sync; echo 3 > drop_caches' before each measured step.
#   data        $BENCH_RESYNC_FILES files, $BENCH_RESYNC_SIZE in all (whole MiB per file), written
#               by fio (rw=write bs=1M refill_buffers: incompressible, no zero regions,
#               end_fsync=1) in node1's plain directory before any daemon runs
#   native copy dd if=FILE of=COPY bs=1M conv=fsync, file after file, from node1's directory to
#               another directory of the same disk, timed with its fsyncs
#   full sync   node2 started first (secondary, empty directory, no state), then node1
#               (--role primary --peer-wait 60): timed from node1's start to its line "node2 is
#               up to date: resync by checksum sent N bytes in R regions, ..., S seconds"; the
#               copy's files are then fsynced through node2's mount and that time is added
#   change map  node2 stopped (SIGTERM; the primary goes on alone and keeps a change map), 1% of
#               the data (rounded to whole MiB, at least 1) overwritten with new random data in
#               1 MiB blocks at distinct random 1 MiB-aligned offsets through node1's mount, each
#               file fsynced; node2 started again; timed from its start to the primary's next
#               "up to date" line (counted: the first one never matches again), which must say
#               "by change map"
#   check       both daemons stopped, node1's and node2's directories compared (listing, cmp);
#               a difference is FAIL
# Reported: MiB/s of the native copy and of the full sync, and full sync / native copy (the
# bar: >= 0.80), for three end points of the full sync: "up to date" plus the copy's fsync (the
# bar's figure), the "up to date" line, and the line's own duration (the resync alone, without
# the primary's start, mount and connection); for the change map, bytes sent / bytes changed
# (the bar: <= 1.1) and its duration (the line's own, and from node2's start, which includes
# the primary's reconnection attempts, one a second).
# Why the native copy is the fair figure: with both nodes on this machine the resync reads
# node1's files and writes node2's copy on one disk with two cores, so what this disk sustains
# for the job is a copy of the same files on the same disk, read and write, not fio's seq write
# or seq read alone (each one side of it). dd copies through user space in 1 MiB blocks, as the
# resync does in 1 MiB regions (cp may use copy_file_range, an in-kernel copy no network
# replication can use). The copy's fsync is counted on both sides: dd conv=fsync ends with the
# data on the disk, and the resync does not fsync node2's copy before its "up to date" line (the
# data may still be dirty in the page cache), so the bar's figure adds an fsync of every copied
# file; the figures without it are shown too. (On two machines each disk does one side only.)
# Blocks aligned on the 1 MiB regions (the cluster file's default region_size): an unaligned
# 1 MiB write touches two regions, and the change map would send 2 MiB for it by design.
#
# The replicated target: the script writes a cluster file, a 0600 key file and the two nodes'
# directories (path_prefix node1/node2) under the run's scratch directory, starts
# 'mirror run --role secondary --foreground', then '--role primary', and measures on the
# primary's mount. mirror run takes no --threads/--no-splice/--cache-timeout: those options apply
# to the replfs target only. A replicated figure is FAIL when a daemon is gone or the primary
# logged "peer lost" or "continuing alone" (it would be going on alone, unreplicated).
#
# The gluster target (Debian's GlusterFS 10): the script starts its own glusterd in the
# foreground ('glusterd -N', stopped by PID) with a glusterd.vol whose working and run
# directories are under the run's scratch directory, listening on 127.0.0.2 only (the gluster
# CLI refuses 127.0.0.1 and localhost as brick hosts; any 127/8 address is this host to it), then
# creates 'gluster volume create replfsbench replica 2 127.0.0.2:RUN/gluster/brick1
# 127.0.0.2:RUN/gluster/brick2 force' (force: both bricks on one host), sets one option, starts
# it and mounts it with the FUSE client: 'mount -t glusterfs 127.0.0.2:/replfsbench RUN/gluster/mnt'.
# Options: Gluster's defaults (replica 2: quorum none, eager-lock, ensure-durability, the client's
# caching translators...) except performance.write-behind off: with write-behind on, the client
# acknowledges a write() before any brick has it (errors come with a later write, fsync or
# close), whereas every write on the replicated target reaches the peer before it returns. Every
# option's value is saved in the logs (gluster-volume-options.txt). A gluster figure is FAIL when
# glusterd, the client or a brick is gone or the client logged a brick disconnection (the volume
# would go on with one brick, unreplicated). At the end the script unmounts, stops and deletes
# the volume, stops glusterd by PID and any brick or self-heal process of the run still there,
# and moves the brick logs glusterd writes to /var/log/glusterfs/bricks into the run's logs
# (glusterd also appends to /var/log/glusterfs/cmd_history.log and glustershd.log). A step that
# fails on a target (PostgreSQL on gluster, say) is FAIL with its reason under the table; the run goes on.
#
# Environment (defaults; --quick lowers them for a smoke run):
#   BENCH_SIZE=1g         sequential file size          (quick: 64m)
#   BENCH_RAND_SIZE=256m  file size of each random job  (quick: 16m)
#   BENCH_RUNTIME=15      seconds of each time-based job and of pgbench (quick: 3)
#   BENCH_FILES=10000     files of the small-file loop   (quick: 1000)
#   BENCH_PG_SCALE=10     pgbench scale factor           (quick: 1)
#   BENCH_ROUNDS=3        rounds of every workload; the table shows medians (quick: 1)
#   BENCH_RESYNC_SIZE=2g  data of the resync section  (quick: 256m); needs twice that free
#   BENCH_RESYNC_FILES=4  files it is in
#   MIRROR=...            the mirror binary (default .build-bench/release/mirror, built first
#                         with 'swift build -c release --scratch-path .build-bench' unless --no-build)
#
# The table goes to stdout and to bench-results/latest.txt; the run's logs (fio JSON, mirror,
# bindfs, gluster, postgres and resync-* logs) to bench-results/logs/. Everything the script starts is stopped by
# PID on exit, even when interrupted; what it mounted is unmounted and the scratch data removed.
# Needs (Debian): fio bindfs fuse3 postgresql-15 python3 util-linux, and for the gluster target
# glusterfs-server glusterfs-client (not in scripts/install-deps.sh, which CI runs: apt-get
# install -y glusterfs-server glusterfs-client; the script starts and stops its own glusterd).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

QUICK=0
BUILD=1
RESYNC=1
THREADS=""
NO_SPLICE=0
CACHE_TIMEOUT=""
TARGET_LIST=native,replfs,bindfs,replicated,gluster
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --resync) RESYNC=1 ;;
        --no-resync) RESYNC=0 ;;
        --threads) [[ $# -ge 2 ]] || { echo "--threads needs a value" >&2; exit 2; }; THREADS=$2; shift ;;
        --threads=*) THREADS=${1#*=} ;;
        --no-splice) NO_SPLICE=1 ;;
        --targets) [[ $# -ge 2 ]] || { echo "--targets needs a value" >&2; exit 2; }; TARGET_LIST=$2; shift ;;
        --targets=*) TARGET_LIST=${1#*=} ;;
        --cache-timeout) [[ $# -ge 2 ]] || { echo "--cache-timeout needs a value" >&2; exit 2; }; CACHE_TIMEOUT=$2; shift ;;
        --cache-timeout=*) CACHE_TIMEOUT=${1#*=} ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ -n $THREADS && ! $THREADS =~ ^[0-9]+$ ]]; then echo "--threads wants a number" >&2; exit 2; fi
# The targets, always in this order whatever the order of --targets.
ALL_TARGETS=(native replfs bindfs replicated gluster)
IFS=, read -ra wanted <<<"$TARGET_LIST"
((${#wanted[@]})) || { echo "--targets wants at least one of: ${ALL_TARGETS[*]}" >&2; exit 2; }
for t in "${wanted[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "--targets: unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2; exit 2; }
done
TARGETS=()
for t in "${ALL_TARGETS[@]}"; do
    [[ " ${wanted[*]} " == *" $t "* ]] && TARGETS+=("$t")
done
has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

if ((QUICK)); then
    : "${BENCH_SIZE:=64m}" "${BENCH_RAND_SIZE:=16m}" "${BENCH_RUNTIME:=3}" "${BENCH_FILES:=1000}" "${BENCH_PG_SCALE:=1}" "${BENCH_ROUNDS:=1}"
    : "${BENCH_RESYNC_SIZE:=256m}"
else
    : "${BENCH_SIZE:=1g}" "${BENCH_RAND_SIZE:=256m}" "${BENCH_RUNTIME:=15}" "${BENCH_FILES:=10000}" "${BENCH_PG_SCALE:=10}" "${BENCH_ROUNDS:=3}"
    : "${BENCH_RESYNC_SIZE:=2g}"
fi
: "${BENCH_RESYNC_FILES:=4}"
# A size as fio and the other BENCH_ sizes write it (1024-based suffixes k, m, g, t), in bytes.
size_bytes() {
    local n=${1%[kKmMgGtT]} unit=${1: -1}
    [[ $n =~ ^[0-9]+$ ]] || return 1
    case $unit in
        k|K) echo $((n << 10)) ;; m|M) echo $((n << 20)) ;; g|G) echo $((n << 30)) ;; t|T) echo $((n << 40)) ;;
        *) echo "$n" ;;
    esac
}
if ((RESYNC)); then
    RESYNC_TOTAL=$(size_bytes "$BENCH_RESYNC_SIZE") || { echo "BENCH_RESYNC_SIZE: not a size: $BENCH_RESYNC_SIZE" >&2; exit 2; }
    [[ $BENCH_RESYNC_FILES =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RESYNC_FILES wants a positive number" >&2; exit 2; }
    # Whole MiB per file, so that the changed blocks of the change-map step are whole regions.
    RESYNC_FILE_MIB=$((RESYNC_TOTAL / BENCH_RESYNC_FILES >> 20))
    ((RESYNC_FILE_MIB >= 1)) || { echo "BENCH_RESYNC_SIZE: less than 1 MiB per file ($BENCH_RESYNC_FILES files)" >&2; exit 2; }
    RESYNC_MIB=$((RESYNC_FILE_MIB * BENCH_RESYNC_FILES))
    # 1% of the data in 1 MiB blocks (rounded, at least one block).
    RESYNC_CHANGED_BLOCKS=$(((RESYNC_MIB + 50) / 100))
    ((RESYNC_CHANGED_BLOCKS >= 1)) || RESYNC_CHANGED_BLOCKS=1
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIRROR=${MIRROR:-$REPO/.build-bench/release/mirror}
BASE=/var/tmp/replfs-bench
PGBIN=/usr/lib/postgresql/15/bin
PGPORT=54329            # only names the unix socket file, in this run's own directory
MIRROR_ARGS=()
[[ -n $THREADS ]] && MIRROR_ARGS+=(--threads "$THREADS")
((NO_SPLICE)) && MIRROR_ARGS+=(--no-splice)
[[ -n $CACHE_TIMEOUT ]] && MIRROR_ARGS+=(--cache-timeout "$CACHE_TIMEOUT")

START_SECONDS=$SECONDS
log() { printf '[%4ds] %s\n' $((SECONDS - START_SECONDS)) "$*"; }
warn() { printf '[%4ds] WARNING: %s\n' $((SECONDS - START_SECONDS)) "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $(id -u) -eq 0 ]] || die "must run as root (FUSE mounts with allow_other, postgres via runuser)"
[[ -e /dev/fuse ]] || die "/dev/fuse is missing (apt-get install fuse3; modprobe fuse)"
missing=()
tools=(fio:fio fusermount3:fuse3 python3:python3 runuser:util-linux findmnt:util-linux pgbench:postgresql-15)
has_target bindfs && tools+=(bindfs:bindfs)
has_target gluster && tools+=(glusterd:glusterfs-server gluster:glusterfs-server glusterfsd:glusterfs-server \
                              mount.glusterfs:glusterfs-client)
for tool in "${tools[@]}"; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[[ -x $PGBIN/initdb && -x $PGBIN/pg_ctl ]] || missing+=(postgresql-15)
id postgres >/dev/null 2>&1 || missing+=(postgresql-15)
((${#missing[@]} == 0)) || die "missing tools; apt-get install $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
PGBENCH=$(command -v pgbench)
[[ -x $PGBIN/pgbench ]] && PGBENCH=$PGBIN/pgbench

NEED_MIRROR=0
{ has_target replfs || has_target replicated || ((RESYNC)); } && NEED_MIRROR=1
if ((BUILD && NEED_MIRROR)); then
    log "building mirror (swift build -c release --scratch-path .build-bench)"
    (cd "$REPO" && swift build -c release --scratch-path .build-bench >/dev/null) || die "build failed"
fi
((NEED_MIRROR == 0)) || [[ -x $MIRROR ]] || die "$MIRROR not found (build it, or set MIRROR=)"

# Runs from / so that postgres, run as its own user, never sits in a directory it cannot read.
cd /

# ---------------------------------------------------------------- state and cleanup
RUN=""            # this run's scratch directory
CHILD_PID=""      # the workload running now
SAMPLER_PIDS=()
MIRROR_PID=""
MIRROR_DIR=""
BINDFS_PID=""
BINDFS_MNT=""
REPL_PRIMARY_PID=""   # mirror run --role primary (node1), mounts ReplFS over REPL_DIR
REPL_SECONDARY_PID="" # mirror run --role secondary (node2)
REPL_DIR=""
RESYNC_DIR=""         # $RUN/resync: the resync section's cluster file, node1/ and node2/ path prefixes
RESYNC_PRIMARY_PID="" # its mirror run --role primary (node1), mounts ReplFS over $RESYNC_DIR/node1/data
RESYNC_SECONDARY_PID="" # its mirror run --role secondary (node2)
GLUSTER_HOST=127.0.0.2  # glusterd, bricks and client on loopback (gluster refuses 127.0.0.1 and localhost in brick names)
GLUSTER_VOL=replfsbench
GLUSTER_DIR=""        # $RUN/gluster: glusterd's working and run directories, brick1, brick2, mnt
GLUSTER_MNT=""
GLUSTERD_PID=""       # glusterd -N, the script's child
GLUSTER_CLIENT_PID="" # the FUSE client (glusterfs) mount -t glusterfs started
GLUSTER_BRICK_PIDS=() # the two glusterfsd brick processes glusterd started
GLUSTER_DAEMON_PIDS=() # every process glusterd started for the volume (bricks, self-heal daemon)
GLUSTER_CLIENT_LOG_LINES=0 # lines of the client's log when the mount was ready
GLUSTER_SOCKETS=()    # the unix sockets glusterd gives the bricks in /var/run/gluster (whatever its run-directory)
PG_DATA=""        # the cluster running now (one at a time)
PG_PID=""
FAILURES=0

is_mounted() { findmnt -n --mountpoint "$1" >/dev/null 2>&1; }

# Waits up to $2 seconds (default 10) for a child PID to exit; true if it did.
wait_exit() {
    local pid=$1 tenths=$((${2:-10} * 10))
    while ((tenths-- > 0)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null
}

stop_pg() {
    [[ -n $PG_DATA ]] || return 0
    [[ -n $PG_PID ]] || PG_PID=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    if [[ -n $PG_PID ]] && kill -0 "$PG_PID" 2>/dev/null; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            kill -0 "$PG_PID" 2>/dev/null || true   # it may have stopped by itself (Ctrl-C reaches it too)
        if ! wait_exit "$PG_PID" 10; then
            warn "postgres $PG_PID still running: SIGQUIT, then SIGKILL"
            kill -QUIT "$PG_PID" 2>/dev/null || true
            wait_exit "$PG_PID" 5 || kill -KILL "$PG_PID" 2>/dev/null || true
        fi
    fi
    PG_DATA=""
    PG_PID=""
}

# stop_mirror_mount PID DIR LABEL: unmounts a ReplFS mount through mirror umount, so that its
# daemon exits by itself; SIGTERM, then SIGKILL by PID if it does not; a dead mount is detached.
stop_mirror_mount() {
    local pid=$1 dir=$2 label=$3 tries=0
    if [[ $(findmnt -n -o FSTYPE --mountpoint "$dir" 2>/dev/null | tail -n1) == fuse.replfs ]]; then
        until "$MIRROR" umount --dir "$dir" >>"$LOGS/mirror-umount.log" 2>&1; do
            if ((++tries >= 10)); then
                warn "mirror umount of $dir keeps failing; detaching lazily"
                "$MIRROR" umount --lazy --dir "$dir" >>"$LOGS/mirror-umount.log" 2>&1 || true
                break
            fi
            sleep 0.5
        done
    fi
    if ! wait_exit "$pid" 15; then
        warn "$label $pid did not exit after unmount: SIGTERM"
        kill -TERM "$pid" 2>/dev/null || true
        wait_exit "$pid" 10 || { warn "SIGKILL to $pid"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    wait "$pid" 2>/dev/null || true
    if is_mounted "$dir" && [[ $(findmnt -n -o FSTYPE --mountpoint "$dir" | tail -n1) == fuse.replfs ]]; then
        warn "stale ReplFS mount left at $dir: umount -l"
        umount -l "$dir" || true
    fi
}

stop_replfs() {
    [[ -n $MIRROR_PID ]] || return 0
    stop_mirror_mount "$MIRROR_PID" "$MIRROR_DIR" "mirror daemon"
    MIRROR_PID=""
}

# stop_mirror_secondary PID COPY: a 'mirror run --role secondary' by SIGTERM (SIGKILL after 10 s;
# false then); the read-only mount it left at its copy COPY, if any, is detached.
stop_mirror_secondary() {
    local pid=$1 copy=$2 rc=0
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_exit "$pid" 10; then
            warn "mirror run secondary $pid did not exit on SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            rc=1
        fi
        wait "$pid" 2>/dev/null || true
    fi
    if [[ -n $copy ]] && is_mounted "$copy"; then
        warn "mount left at the secondary's copy $copy: umount -l"
        umount -l "$copy" || true
        rc=1
    fi
    return "$rc"
}

# The replicated target: the primary first (unmounted like the replfs target, so that it exits
# with its mount), then the secondary by SIGTERM.
stop_replicated() {
    if [[ -n $REPL_PRIMARY_PID ]]; then
        stop_mirror_mount "$REPL_PRIMARY_PID" "$REPL_DIR" "mirror run primary"
        REPL_PRIMARY_PID=""
    fi
    stop_mirror_secondary "$REPL_SECONDARY_PID" "${REPL_DIR:+${REPL_DIR%/node1/data}/node2/data}" || true
    REPL_SECONDARY_PID=""
}

# The resync section's two nodes (their own cluster under $RUN/resync), in the same way.
stop_resync() {
    [[ -n $RESYNC_DIR ]] || return 0
    if [[ -n $RESYNC_PRIMARY_PID ]]; then
        stop_mirror_mount "$RESYNC_PRIMARY_PID" "$RESYNC_DIR/node1/data" "mirror run primary (resync)"
        RESYNC_PRIMARY_PID=""
    fi
    stop_mirror_secondary "$RESYNC_SECONDARY_PID" "$RESYNC_DIR/node2/data" || true
    RESYNC_SECONDARY_PID=""
}

stop_bindfs() {
    [[ -n $BINDFS_PID ]] || return 0
    if is_mounted "$BINDFS_MNT"; then
        fusermount3 -u "$BINDFS_MNT" 2>/dev/null || umount "$BINDFS_MNT" 2>/dev/null || true
    fi
    if ! wait_exit "$BINDFS_PID" 10; then
        warn "bindfs $BINDFS_PID did not exit after unmount: SIGTERM"
        kill -TERM "$BINDFS_PID" 2>/dev/null || true
        wait_exit "$BINDFS_PID" 5 || kill -KILL "$BINDFS_PID" 2>/dev/null || true
    fi
    wait "$BINDFS_PID" 2>/dev/null || true
    if is_mounted "$BINDFS_MNT"; then
        warn "bindfs mount left at $BINDFS_MNT: lazy unmount"
        fusermount3 -uz "$BINDFS_MNT" 2>/dev/null || umount -l "$BINDFS_MNT" || true
    fi
    BINDFS_PID=""
}

# The gluster target. gluster_cli: the CLI, talking to this run's glusterd through its own socket.
gluster_cli() {
    timeout -k 5 120 gluster --mode=script --glusterd-sock="$GLUSTER_DIR/glusterd.socket" \
        --log-file="$LOGS/gluster-cli.log" "$@"
}

# True while PID is running and not a zombie (glusterd's children are not the script's).
pid_running() {
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
    [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]
}

# True when PID is a process of this run's gluster (its command line names the run's gluster
# directory): a recycled PID is never signalled.
gluster_owned() { pid_running "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$GLUSTER_DIR/"; }

# The FUSE client daemonizes (mount -t glusterfs returns once it is mounted): its PID is the
# glusterfs process whose last argument is this run's mount point.
gluster_client_pid() {
    python3 - "$GLUSTER_MNT" <<'EOF'
import os, sys
for pid in os.listdir("/proc"):
    try:
        argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")[:-1]
    except OSError:
        continue
    if len(argv) > 1 and os.path.basename(argv[0]) == b"glusterfs" and argv[-1] == os.fsencode(sys.argv[1]):
        print(pid)
        break
EOF
}

# The PIDs glusterd wrote for the volume's processes (bricks, self-heal daemon) in its run directory.
gluster_pidfile_pids() {
    cat "$GLUSTER_DIR"/run/vols/*/*.pid "$GLUSTER_DIR"/run/shd/*/*.pid 2>/dev/null | grep -E '^[0-9]+$' || true
}

# stop_pid PID LABEL [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
stop_pid() {
    pid_running "$1" || return 0
    kill -TERM "$1" 2>/dev/null || true
    local tenths=$((${3:-10} * 10)) task
    while ((tenths-- > 0)) && pid_running "$1"; do sleep 0.1; done
    if pid_running "$1"; then
        warn "$2 $1 did not exit on SIGTERM within ${3:-10} s: SIGKILL (its threads: $LOGS/stuck-$1.txt)"
        for task in /proc/$1/task/*; do
            echo "$(cat "$task/comm" 2>/dev/null) $(cat "$task/wchan" 2>/dev/null) $(grep State "$task/status" 2>/dev/null)"
        done >"$LOGS/stuck-$1.txt" 2>&1
        kill -KILL "$1" 2>/dev/null || true
    fi
}

# Unmounts the client (which then exits), stops and deletes the volume through glusterd (which
# stops the bricks and the self-heal daemon), stops glusterd by PID, then any brick, self-heal or
# client process of this run still there; moves the brick logs glusterd wrote to
# /var/log/glusterfs/bricks into the run's logs.
stop_gluster() {
    [[ -n $GLUSTER_DIR ]] || return 0
    local pid pids=() brick log sock tries=0
    # Interrupted between the mount and the search for its client: look for it now.
    [[ -n $GLUSTER_CLIENT_PID ]] || GLUSTER_CLIENT_PID=$(gluster_client_pid)
    if is_mounted "$GLUSTER_MNT"; then
        until umount "$GLUSTER_MNT" 2>>"$LOGS/gluster-umount.log"; do
            if ((++tries >= 10)); then
                warn "umount of $GLUSTER_MNT keeps failing; detaching lazily"
                umount -l "$GLUSTER_MNT" 2>>"$LOGS/gluster-umount.log" || true
                break
            fi
            sleep 0.5
        done
    fi
    if [[ -n $GLUSTER_CLIENT_PID ]]; then
        tries=100
        while ((tries-- > 0)) && pid_running "$GLUSTER_CLIENT_PID"; do sleep 0.1; done
        gluster_owned "$GLUSTER_CLIENT_PID" && stop_pid "$GLUSTER_CLIENT_PID" "gluster client"
    fi
    pids=("${GLUSTER_DAEMON_PIDS[@]}" $(gluster_pidfile_pids))
    if pid_running "$GLUSTERD_PID"; then
        if gluster_cli volume info "$GLUSTER_VOL" >/dev/null 2>&1; then
            gluster_cli volume stop "$GLUSTER_VOL" >>"$LOGS/gluster-cli.out" 2>&1 || warn "gluster volume stop $GLUSTER_VOL failed"
            gluster_cli volume delete "$GLUSTER_VOL" >>"$LOGS/gluster-cli.out" 2>&1 || warn "gluster volume delete $GLUSTER_VOL failed"
        fi
        pids+=($(gluster_pidfile_pids))
        stop_pid "$GLUSTERD_PID" glusterd 30
    fi
    [[ -z $GLUSTERD_PID ]] || wait "$GLUSTERD_PID" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        if gluster_owned "$pid"; then
            warn "gluster process $pid still running after the volume stopped: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-100)"
            stop_pid "$pid" "gluster process"
        fi
    done
    for brick in brick1 brick2; do
        log=/var/log/glusterfs/bricks/$(printf '%s' "${GLUSTER_DIR#/}/$brick" | tr / -).log
        [[ ! -f $log ]] || mv "$log" "$LOGS/gluster-$brick.log" 2>/dev/null || true
    done
    rmdir "/var/log/glusterfs/gfproxy/$GLUSTER_VOL" "/var/log/glusterfs/snaps/$GLUSTER_VOL" 2>/dev/null || true
    for sock in "${GLUSTER_SOCKETS[@]}"; do
        [[ $sock != /var/run/gluster/*.socket && $sock != /run/gluster/*.socket || ! -S $sock ]] || rm -f "$sock"
    done
    GLUSTER_SOCKETS=()
    if is_mounted "$GLUSTER_MNT"; then
        warn "gluster mount left at $GLUSTER_MNT: umount -l"
        umount -l "$GLUSTER_MNT" || true
    fi
    GLUSTERD_PID=""
    GLUSTER_CLIENT_PID=""
    GLUSTER_DAEMON_PIDS=()
    GLUSTER_BRICK_PIDS=()
}

# The script's own stdout and stderr: a signal can run the trap while a redirected function runs.
exec 8>&1 9>&2

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    exec 1>&8 2>&9
    if [[ -n $CHILD_PID ]]; then
        kill -TERM "$CHILD_PID" 2>/dev/null
        wait_exit "$CHILD_PID" 10 || kill -KILL "$CHILD_PID" 2>/dev/null
        wait "$CHILD_PID" 2>/dev/null
        CHILD_PID=""
    fi
    local pid
    for pid in "${SAMPLER_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    SAMPLER_PIDS=()
    stop_pg
    stop_replfs
    stop_bindfs
    stop_replicated
    stop_resync
    stop_gluster
    if [[ -n $RUN && -d $RUN ]]; then
        if [[ -d ${LOGS:-} ]]; then
            rm -rf "$REPO/bench-results/logs"
            mkdir -p "$REPO/bench-results"
            cp -r "$LOGS" "$REPO/bench-results/logs" 2>/dev/null
            cp -r "$RUN/pglog" "$REPO/bench-results/logs/postgres" 2>/dev/null
        fi
        if findmnt -n -r -o TARGET | grep -q "^$RUN/"; then
            warn "something is still mounted under $RUN; leaving the scratch data in place"
            rc=1
        else
            rm -rf "$RUN"
        fi
    fi
    ((rc == 0)) || echo "bench: exiting with status $rc" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Runs a workload in the background and waits for it, so that a signal reaches the EXIT trap at
# once and the trap can stop the workload by PID.
run_step() {
    local rc=0
    "$@" 8>&- 9>&- &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

# ---------------------------------------------------------------- scratch, mounts
mkdir -p "$BASE"
chmod 755 "$BASE"
fstype=$(findmnt -n -o FSTYPE -T "$BASE")
[[ $fstype != tmpfs ]] || die "$BASE is on tmpfs; the benchmark needs a real disk"
RUN=$(mktemp -d "$BASE/run.XXXXXX")
chmod 755 "$RUN"
LOGS=$RUN/logs
SOCK=$RUN/pgsock
mkdir -p "$LOGS" "$SOCK" "$RUN/pglog" "$RUN/native" "$RUN/replfs" "$RUN/bindfs-src" "$RUN/bindfs"
chown postgres:postgres "$SOCK" "$RUN/pglog"
RESULTS=$RUN/results.tsv
REASONS=$RUN/reasons.tsv   # workload, target, why it is FAIL
: >"$RESULTS"
: >"$REASONS"
REPL=$RUN/repl     # cluster file, key file, node1/ (primary) and node2/ (secondary) path prefixes
mkdir -p "$REPL/node1/data" "$REPL/node2/data"
chmod 755 "$REPL" "$REPL/node1" "$REPL/node2" "$REPL/node1/data" "$REPL/node2/data"
REPL_DIR=$REPL/node1/data
declare -A DIR=([native]=$RUN/native [replfs]=$RUN/replfs [bindfs]=$RUN/bindfs [replicated]=$REPL_DIR)

log "scratch $RUN ($fstype on $(findmnt -n -o SOURCE -T "$BASE")); targets: ${TARGETS[*]}"
if has_target replfs; then
"$MIRROR" mount --dir "$RUN/replfs" --foreground "${MIRROR_ARGS[@]}" >>"$LOGS/mirror.log" 2>&1 8>&- 9>&- &
MIRROR_PID=$!
MIRROR_DIR=$RUN/replfs
for _ in $(seq 300); do
    kill -0 "$MIRROR_PID" 2>/dev/null || die "mirror mount exited: $(tail -n 5 "$LOGS/mirror.log")"
    [[ $(findmnt -n -o FSTYPE --mountpoint "$MIRROR_DIR" 2>/dev/null | tail -n1) == fuse.replfs ]] && break
    sleep 0.1
done
[[ $(findmnt -n -o FSTYPE --mountpoint "$MIRROR_DIR" | tail -n1) == fuse.replfs ]] || die "ReplFS did not mount within 30 s"
stat "$MIRROR_DIR" >/dev/null
log "ReplFS mounted over $MIRROR_DIR (pid $MIRROR_PID, mirror mount ${MIRROR_ARGS[*]:-with defaults})"
fi

# bindfs as root: allow_other, default_permissions, files created as the caller, single-threaded.
if has_target bindfs; then
bindfs -f "$RUN/bindfs-src" "$RUN/bindfs" >>"$LOGS/bindfs.log" 2>&1 8>&- 9>&- &
BINDFS_PID=$!
BINDFS_MNT=$RUN/bindfs
for _ in $(seq 300); do
    kill -0 "$BINDFS_PID" 2>/dev/null || die "bindfs exited: $(tail -n 5 "$LOGS/bindfs.log")"
    is_mounted "$BINDFS_MNT" && break
    sleep 0.1
done
is_mounted "$BINDFS_MNT" || die "bindfs did not mount within 30 s"
log "bindfs mounted $RUN/bindfs-src on $BINDFS_MNT (pid $BINDFS_PID, $(bindfs --version | head -n1))"
fi

# The replicated target: a cluster file for two nodes on loopback, the secondary, then the primary.
source "$REPO/scripts/lib/loopback-cluster.sh"
if has_target replicated; then
write_loopback_cluster "$REPL" bench bench /data
"$MIRROR" check-config --config "$REPL/cluster.toml" --node node1 >>"$LOGS/mirror-check-config.log" 2>&1 ||
    die "the replicated target's cluster file is refused: $(tail -n 5 "$LOGS/mirror-check-config.log")"
"$MIRROR" run --config "$REPL/cluster.toml" --node node2 --role secondary --foreground >>"$LOGS/mirror-secondary.log" 2>&1 8>&- 9>&- &
REPL_SECONDARY_PID=$!
"$MIRROR" run --config "$REPL/cluster.toml" --node node1 --role primary --foreground >>"$LOGS/mirror-primary.log" 2>&1 8>&- 9>&- &
REPL_PRIMARY_PID=$!
for _ in $(seq 450); do
    kill -0 "$REPL_SECONDARY_PID" 2>/dev/null || die "mirror run (secondary) exited: $(tail -n 5 "$LOGS/mirror-secondary.log")"
    kill -0 "$REPL_PRIMARY_PID" 2>/dev/null || die "mirror run (primary) exited: $(tail -n 5 "$LOGS/mirror-primary.log")"
    [[ $(findmnt -n -o FSTYPE --mountpoint "$REPL_DIR" 2>/dev/null | tail -n1) == fuse.replfs ]] && break
    sleep 0.1
done
[[ $(findmnt -n -o FSTYPE --mountpoint "$REPL_DIR" | tail -n1) == fuse.replfs ]] || die "the primary's ReplFS did not mount within 45 s"
stat "$REPL_DIR" >/dev/null
log "replicated: mirror run primary node1 (pid $REPL_PRIMARY_PID) mounted over $REPL_DIR, replicating to secondary node2 (pid $REPL_SECONDARY_PID, $REPL/node2/data)"
fi

# The gluster target: this run's own glusterd (working and run directories under the scratch
# directory, listening on 127.0.0.2 only), a replica 2 volume of two bricks on the same disk, the
# FUSE client mounted by mount -t glusterfs. Started last: the bricks take free ports on 127.0.0.2.
if has_target gluster; then
GLUSTER_DIR=$RUN/gluster
GLUSTER_MNT=$GLUSTER_DIR/mnt
DIR[gluster]=$GLUSTER_MNT
mkdir -p "$GLUSTER_DIR/glusterd" "$GLUSTER_DIR/run" "$GLUSTER_MNT"
# (SO_REUSEADDR, as glusterd binds: connections of an earlier run in TIME_WAIT do not count.)
python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 24007))' \
    "$GLUSTER_HOST" 2>/dev/null ||
    die "TCP port 24007 on $GLUSTER_HOST is taken: another glusterd (the package's service: systemctl stop glusterd)? The bricks reach glusterd on that port only; or leave gluster out (--targets)"
# Debian's /etc/glusterfs/glusterd.vol, with this run's directories and a loopback-only address.
cat >"$GLUSTER_DIR/glusterd.vol" <<VOL
volume management
    type mgmt/glusterd
    option working-directory $GLUSTER_DIR/glusterd
    option run-directory $GLUSTER_DIR/run
    option glusterd-sockfile $GLUSTER_DIR/glusterd.socket
    option transport-type socket
    option transport.socket.bind-address $GLUSTER_HOST
    option transport.socket.listen-port 24007
    option transport.socket.keepalive-time 10
    option transport.socket.keepalive-interval 2
    option transport.socket.read-fail-log off
    option ping-timeout 0
    option event-threads 1
end-volume
VOL
# In a session of its own: a Ctrl-C at the terminal would stop it (glusterd handles SIGINT itself)
# before the EXIT trap could stop the volume through it. setsid execs glusterd (the script's
# background job is no process group leader), so $! is glusterd's PID.
setsid glusterd -N -f "$GLUSTER_DIR/glusterd.vol" -l "$LOGS/glusterd.log" -p "$GLUSTER_DIR/glusterd.pid" \
    >>"$LOGS/glusterd.out" 2>&1 8>&- 9>&- &
GLUSTERD_PID=$!
for _ in $(seq 300); do
    kill -0 "$GLUSTERD_PID" 2>/dev/null || die "glusterd exited: $(tail -n 5 "$LOGS/glusterd.log")"
    gluster_cli volume list >/dev/null 2>&1 && break
    sleep 0.1
done
gluster_cli volume list >/dev/null 2>&1 || die "glusterd does not answer after 30 s: $(tail -n 5 "$LOGS/glusterd.log")"
[[ $(cat "$GLUSTER_DIR/glusterd.pid" 2>/dev/null) == "$GLUSTERD_PID" ]] ||
    die "glusterd's pid file says $(cat "$GLUSTER_DIR/glusterd.pid" 2>/dev/null), not $GLUSTERD_PID"
# Both bricks on this host: gluster wants 'force'. write-behind off: see the options note.
gluster_cli volume create "$GLUSTER_VOL" replica 2 "$GLUSTER_HOST:$GLUSTER_DIR/brick1" "$GLUSTER_HOST:$GLUSTER_DIR/brick2" force \
    >>"$LOGS/gluster-cli.out" 2>&1 || die "gluster volume create failed: $(tail -n 3 "$LOGS/gluster-cli.out")"
gluster_cli volume set "$GLUSTER_VOL" performance.write-behind off >>"$LOGS/gluster-cli.out" 2>&1 ||
    die "gluster volume set failed: $(tail -n 3 "$LOGS/gluster-cli.out")"
gluster_cli volume start "$GLUSTER_VOL" >>"$LOGS/gluster-cli.out" 2>&1 ||
    die "gluster volume start failed: $(tail -n 3 "$LOGS/gluster-cli.out"); $(tail -n 3 "$LOGS/glusterd.log")"
GLUSTER_DAEMON_PIDS=($(gluster_pidfile_pids))
gluster_cli volume get "$GLUSTER_VOL" all >"$LOGS/gluster-volume-options.txt" 2>&1 || true
# Bricks and self-heal daemon online, with their PIDs.
for _ in $(seq 150); do
    gluster_cli volume status "$GLUSTER_VOL" --xml >"$LOGS/gluster-volume-status.xml" 2>&1 || true
    mapfile -t GLUSTER_BRICK_PIDS < <(python3 - "$LOGS/gluster-volume-status.xml" "$GLUSTER_DIR" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (ET.ParseError, OSError):
    sys.exit(0)
for node in root.iter("node"):
    if (node.findtext("path") or "").startswith(sys.argv[2] + "/brick") and node.findtext("status") == "1":
        print(node.findtext("pid"))
EOF
    )
    ((${#GLUSTER_BRICK_PIDS[@]} == 2)) && break
    sleep 0.2
done
((${#GLUSTER_BRICK_PIDS[@]} == 2)) || die "the gluster bricks are not both online: $(tail -n 5 "$LOGS/glusterd.log")"
GLUSTER_DAEMON_PIDS+=($(gluster_pidfile_pids))
for pid in "${GLUSTER_DAEMON_PIDS[@]}"; do
    GLUSTER_SOCKETS+=($(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n '/^-S$/{n;p}'))
done
timeout -k 5 60 mount -t glusterfs -o log-file="$LOGS/gluster-client.log" "$GLUSTER_HOST:/$GLUSTER_VOL" "$GLUSTER_MNT" \
    >>"$LOGS/gluster-mount.log" 2>&1 8>&- 9>&- || die "mount -t glusterfs failed: $(tail -n 3 "$LOGS/gluster-mount.log"; tail -n 3 "$LOGS/gluster-client.log")"
GLUSTER_CLIENT_PID=$(gluster_client_pid)
[[ -n $GLUSTER_CLIENT_PID ]] || die "no glusterfs client process found for $GLUSTER_MNT"
[[ $(findmnt -n -o FSTYPE --mountpoint "$GLUSTER_MNT" | tail -n1) == fuse.glusterfs ]] || die "$GLUSTER_MNT is not a glusterfs mount"
stat "$GLUSTER_MNT" >/dev/null
chmod 755 "$GLUSTER_MNT"
GLUSTER_CLIENT_LOG_LINES=$(wc -l <"$LOGS/gluster-client.log")
log "gluster: $(glusterfs --version | head -n1), replica 2 volume $GLUSTER_VOL (bricks $GLUSTER_DIR/brick1, brick2 on $GLUSTER_HOST, pids ${GLUSTER_BRICK_PIDS[*]}; glusterd $GLUSTERD_PID) mounted on $GLUSTER_MNT (client pid $GLUSTER_CLIENT_PID)"
fi

# Peak resident memory of a daemon: VmRSS sampled every 0.2 s into $2 (KiB).
sample_rss() {
    set +e
    local pid=$1 out=$2 peak=0 kb
    while :; do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        [[ -n $kb ]] || break
        if ((kb > peak)); then peak=$kb; echo "$peak" >"$out"; fi
        sleep 0.2
    done
}
status_kib() { [[ -n $1 ]] || return 0; awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true; }
# The daemons whose memory the table shows (name:pid), and the ones only logged.
DAEMONS=()
has_target replfs && DAEMONS+=("replfs:$MIRROR_PID")
has_target bindfs && DAEMONS+=("bindfs:$BINDFS_PID")
has_target replicated && DAEMONS+=("replicated:$REPL_PRIMARY_PID")
has_target gluster && DAEMONS+=("gluster:$GLUSTER_CLIENT_PID")
LOGGED_DAEMONS=()
has_target replicated && LOGGED_DAEMONS+=("secondary:$REPL_SECONDARY_PID")
has_target gluster && LOGGED_DAEMONS+=("gluster-brick1:${GLUSTER_BRICK_PIDS[0]}" "gluster-brick2:${GLUSTER_BRICK_PIDS[1]}")
rss_now=()
for daemon in "${DAEMONS[@]}" "${LOGGED_DAEMONS[@]}"; do
    sample_rss "${daemon#*:}" "$RUN/rss-${daemon%%:*}" 8>&- 9>&- &
    SAMPLER_PIDS+=($!)
    rss_now+=("${daemon%%:*} $(status_kib "${daemon#*:}" VmRSS) KiB")
done
((${#rss_now[@]} == 0)) || log "daemon RSS at start: $(IFS=,; echo "${rss_now[*]}" | sed 's/,/, /g')"

# ---------------------------------------------------------------- workloads
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
# record_fail KEY TARGET REASON: a FAIL in the table, its reason under it.
record_fail() {
    record "$1" "$2" FAIL
    printf '%s\t%s\t%s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\t\n' '  ' | cut -c1-220)" >>"$REASONS"
    FAILURES=$((FAILURES + 1))
}
# last_line FILE [ERE]: the last non-empty line of FILE (matching ERE), for a FAIL reason.
last_line() {
    [[ -f $1 ]] || return 0
    grep -E "${2:-.}" "$1" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -n1 | sed 's/^[[:space:]]*//' || true
}

# True while the target can be used; a dead daemon fails every later step on its mount.
target_alive() {
    case $1 in
        replfs) kill -0 "$MIRROR_PID" 2>/dev/null && stat "$MIRROR_DIR" >/dev/null 2>&1 ;;
        bindfs) kill -0 "$BINDFS_PID" 2>/dev/null && stat "$BINDFS_MNT" >/dev/null 2>&1 ;;
        replicated) replication_intact && stat "$REPL_DIR" >/dev/null 2>&1 ;;
        gluster) gluster_intact && stat "$GLUSTER_MNT" >/dev/null 2>&1 ;;
        *) return 0 ;;
    esac
}

# True while glusterd, the client and both bricks live and the client never lost a brick since
# the mount was ready: with a brick gone, a replica 2 volume (quorum none, Gluster's default for
# replica 2) goes on writing to the other one alone, unreplicated.
gluster_intact() {
    pid_running "$GLUSTERD_PID" && pid_running "$GLUSTER_CLIENT_PID" &&
        pid_running "${GLUSTER_BRICK_PIDS[0]}" && pid_running "${GLUSTER_BRICK_PIDS[1]}" &&
        ! tail -n +$((GLUSTER_CLIENT_LOG_LINES + 1)) "$LOGS/gluster-client.log" 2>/dev/null | grep -q 'disconnected from'
}

# Why gluster_intact is false, for the table.
gluster_lost_reason() {
    local what=()
    pid_running "$GLUSTERD_PID" || what+=("glusterd gone")
    pid_running "$GLUSTER_CLIENT_PID" || what+=("client gone")
    pid_running "${GLUSTER_BRICK_PIDS[0]}" || what+=("brick1 gone")
    pid_running "${GLUSTER_BRICK_PIDS[1]}" || what+=("brick2 gone")
    tail -n +$((GLUSTER_CLIENT_LOG_LINES + 1)) "$LOGS/gluster-client.log" 2>/dev/null | grep -q 'disconnected from' &&
        what+=("the client logged a brick disconnection")
    ((${#what[@]})) || what+=("mount gone")
    echo "replication lost: $(IFS=,; echo "${what[*]}" | sed 's/,/, /g')"
}

# lost_reason TARGET: why target_alive is false.
lost_reason() {
    case $1 in
        replicated) replication_intact && echo "mount gone" ||
            echo "replication lost: a daemon is gone or the primary logged \"peer lost\"/\"continuing alone\"" ;;
        gluster) gluster_lost_reason ;;
        *) echo "mount or daemon gone" ;;
    esac
}

# target_intact TARGET: true unless a replicated target lost its replication during a step.
target_intact() {
    case $1 in
        replicated) replication_intact ;;
        gluster) gluster_intact ;;
        *) return 0 ;;
    esac
}

# True while both mirror run daemons live and the primary never lost its secondary: a figure
# measured after "peer lost" (or any other "continuing alone": a peer that failed an operation is
# dropped too) would be the primary's going on alone, not replication.
replication_intact() {
    kill -0 "$REPL_PRIMARY_PID" 2>/dev/null && kill -0 "$REPL_SECONDARY_PID" 2>/dev/null &&
        ! grep -qiE 'peer lost|continuing alone' "$LOGS/mirror-primary.log" 2>/dev/null
}

# fio_job KEY TARGET METRIC(bw|iops) DIRECTION(read|write) fio-args...
fio_job() {
    local key=$1 target=$2 metric=$3 dir=$4
    shift 4
    local out=$LOGS/fio-$key-$target.json
    mkdir -p "${DIR[$target]}/fio" || { REASON="mkdir failed"; return 1; }
    # Reads start from cold caches on every target (native, FUSE and backing page caches alike).
    if [[ $dir == read ]]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
    run_step fio --output-format=json --output="$out" --name="$key" --directory="${DIR[$target]}/fio" \
        --ioengine=psync "$@" 2>>"$LOGS/fio-$key-$target.err" ||
        { REASON="fio: $(last_line "$LOGS/fio-$key-$target.err")"; return 1; }
    VALUE=$(python3 - "$out" "$metric" "$dir" 2>>"$LOGS/fio-$key-$target.err" <<'EOF'
import json, sys
path, metric, direction = sys.argv[1:4]
text = open(path).read()
data = json.loads(text[text.index("{"):])
job = data["jobs"][0]
if job.get("error"):
    sys.exit("fio job error %s" % job["error"])
side = job[direction]
print("%.2f" % (side["bw"] / 1024.0 if metric == "bw" else side["iops"]))
EOF
    ) || { REASON="fio: $(last_line "$LOGS/fio-$key-$target.err")"; return 1; }
}

# The small-file cycle; prints files/s for the whole cycle (details to the log).
cat >"$RUN/smallfiles.py" <<'EOF'
import json, os, sys, time
root, count = sys.argv[1], int(sys.argv[2])
os.makedirs(root, exist_ok=True)
names = [os.path.join(root, "f%06d" % i) for i in range(count)]
data = b"x" * 100
t0 = time.perf_counter()
for name in names:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    if os.write(fd, data) != len(data):
        sys.exit("short write on " + name)
    os.close(fd)
t1 = time.perf_counter()
for name in names:
    if os.stat(name).st_size != len(data):
        sys.exit("wrong size for " + name)
t2 = time.perf_counter()
for name in names:
    os.unlink(name)
t3 = time.perf_counter()
if os.listdir(root):
    sys.exit("files left after unlink")
os.rmdir(root)
print(json.dumps({"files": count, "seconds": t3 - t0, "files_per_s": count / (t3 - t0),
                  "create_per_s": count / (t1 - t0), "stat_per_s": count / (t2 - t1),
                  "unlink_per_s": count / (t3 - t2)}))
EOF

smallfiles() {
    local target=$1 out=$LOGS/smallfiles-$target.json
    run_step python3 "$RUN/smallfiles.py" "${DIR[$target]}/small" "$BENCH_FILES" >"$out" 2>>"$LOGS/smallfiles-$target.err" ||
        { REASON="small files: $(last_line "$LOGS/smallfiles-$target.err")"; return 1; }
    VALUE=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % d["files_per_s"])' "$out")
}

# pg_reason STEP TARGET: why a PostgreSQL step failed, for the table: the server's last PANIC,
# FATAL or ERROR line, else the step's own last line.
pg_reason() {
    local why
    why=$(last_line "$RUN/pglog/postgres-$2.log" 'PANIC|FATAL|ERROR')
    [[ -n $why ]] || why=$(last_line "$LOGS/pgbench-$2.log")
    REASON="$1: ${why:-no message}"
}

# The steps that could hang on a filesystem that misbehaves are bounded (timeout 124: "timed out").
pgbench_target() {
    local target=$1 data=${DIR[$1]}/pgdata plog=$LOGS/pgbench-$1.log out rc
    mkdir -p "$data" && chown postgres:postgres "$data" && chmod 700 "$data" || { REASON="cannot create $data"; return 1; }
    run_step timeout -k 10 600 runuser -u postgres -- "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C \
        >>"$plog" 2>&1 || { rc=$?; pg_reason "initdb$( ((rc == 124)) && echo ' timed out')" "$target"; return 1; }
    PG_DATA=$data
    run_step runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$RUN/pglog/postgres-$target.log" -w -t 120 \
        -o "-c listen_addresses='' -c unix_socket_directories='$SOCK' -p $PGPORT" start >>"$plog" 2>&1 ||
        { pg_reason "server did not start" "$target"; return 1; }
    PG_PID=$(head -n1 "$data/postmaster.pid")
    run_step timeout -k 10 1800 "$PGBENCH" -h "$SOCK" -p "$PGPORT" -U postgres -i -s "$BENCH_PG_SCALE" -q postgres >>"$plog" 2>&1 ||
        { rc=$?; pg_reason "pgbench -i$( ((rc == 124)) && echo ' timed out')" "$target"; return 1; }
    out=$LOGS/pgbench-$target.out
    run_step timeout -k 10 $((BENCH_RUNTIME + 300)) "$PGBENCH" -h "$SOCK" -p "$PGPORT" -U postgres -c 4 -j 2 -T "$BENCH_RUNTIME" \
        postgres >"$out" 2>>"$plog" || { rc=$?; pg_reason "pgbench$( ((rc == 124)) && echo ' timed out')" "$target"; return 1; }
    VALUE=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
    [[ -n $VALUE ]] || pg_reason "pgbench printed no tps" "$target"
}

# run_workload KEY UNIT FUNCTION ARGS... : FUNCTION TARGET ARGS... sets VALUE to the figure. It runs
# in this shell (no command substitution), so that the EXIT trap knows what it started.
VALUE=""
run_workload() {
    local key=$1 unit=$2 fn=$3 target value round order
    shift 3
    for ((round = 0; round < BENCH_ROUNDS; round++)); do
    # Each round starts with another target, so that no target always runs first or last.
    order=("${TARGETS[@]:round % ${#TARGETS[@]}}" "${TARGETS[@]:0:round % ${#TARGETS[@]}}")
    for target in "${order[@]}"; do
        if ! target_alive "$target"; then
            REASON=$(lost_reason "$target")
            warn "$target: $REASON; $key skipped"
            record_fail "$key" "$target" "skipped: $REASON"
            continue
        fi
        VALUE=""
        REASON=""
        if "$fn" "$target" "$@" && [[ -n $VALUE ]] && target_intact "$target"; then
            value=$VALUE
            record "$key" "$target" "$value"
            log "$(printf '%-7s %-16s %12s %s' "$target" "$key" "$value" "$unit")"
        else
            if ! target_intact "$target"; then
                REASON="$(lost_reason "$target")${REASON:+ ($REASON)}"
            fi
            record_fail "$key" "$target" "${REASON:-no figure (see the logs)}"
            warn "$target: $key FAILED: ${REASON:-no figure} (logs: $LOGS/*$key*$target*)"
        fi
        [[ $target != replfs ]] || ! kill -0 "$MIRROR_PID" 2>/dev/null ||
            log "        replfs daemon: $(find "/proc/$MIRROR_PID/fd" -mindepth 1 2>/dev/null | wc -l) open fds, VmRSS $(status_kib "$MIRROR_PID" VmRSS) KiB"
        [[ $target != replicated ]] || ! kill -0 "$REPL_PRIMARY_PID" 2>/dev/null ||
            log "        replicated primary: $(find "/proc/$REPL_PRIMARY_PID/fd" -mindepth 1 2>/dev/null | wc -l) open fds, VmRSS $(status_kib "$REPL_PRIMARY_PID" VmRSS) KiB"
        [[ $target != gluster ]] || ! kill -0 "$GLUSTER_CLIENT_PID" 2>/dev/null ||
            log "        gluster client: VmRSS $(status_kib "$GLUSTER_CLIENT_PID" VmRSS) KiB; bricks: $(status_kib "${GLUSTER_BRICK_PIDS[0]}" VmRSS), $(status_kib "${GLUSTER_BRICK_PIDS[1]}" VmRSS) KiB"
    done
    done
}

workload_fio() { local key=$1 unit=$2; shift 2; run_workload "$key" "$unit" fio_dispatch "$key" "$@"; }
fio_dispatch() { local target=$1 key=$2; shift 2; fio_job "$key" "$target" "$@"; }

log "workloads: seq ${BENCH_SIZE}, random ${BENCH_RAND_SIZE}/job for ${BENCH_RUNTIME}s, ${BENCH_FILES} files, pgbench scale ${BENCH_PG_SCALE} for ${BENCH_RUNTIME}s"
workload_fio seqwrite MiB/s bw write --rw=write --bs=1M --size="$BENCH_SIZE" --end_fsync=1 --filename=seq.dat
workload_fio seqread MiB/s bw read --rw=read --bs=1M --size="$BENCH_SIZE" --filename=seq.dat
workload_fio randwrite_fsync IOPS iops write --rw=randwrite --bs=4k --size="$BENCH_RAND_SIZE" --fsync=1 \
    --time_based --runtime="$BENCH_RUNTIME" --filename=randw.dat
workload_fio randwrite_4jobs IOPS iops write --rw=randwrite --bs=4k --size="$BENCH_RAND_SIZE" --numjobs=4 \
    --group_reporting --time_based --runtime="$BENCH_RUNTIME"
workload_fio randread IOPS iops read --rw=randread --bs=4k --size="$BENCH_SIZE" \
    --time_based --runtime="$BENCH_RUNTIME" --filename=seq.dat
for target in "${TARGETS[@]}"; do rm -rf "${DIR[$target]}/fio"; done

run_workload smallfiles files/s smallfiles

# The cluster is stopped and removed whatever happened.
pgbench_and_stop() {
    local rc=0
    pgbench_target "$1" || rc=1
    stop_pg
    rm -rf "${DIR[$1]}/pgdata" || rc=1
    return "$rc"
}
run_workload pgbench TPS pgbench_and_stop

# ---------------------------------------------------------------- resync (target-independent)
# Two more mirror run nodes with their own cluster file, key, ports and state under $RUN/resync
# (node1/ and node2/ path prefixes; state_dir /var/lib/mirror under each prefix, so a new run's
# nodes have no state). See the header for what is measured and compared.
RESYNC_RESULTS=$RUN/resync.tsv          # key, value
RESYNC_REASONS=$RUN/resync-reasons.tsv  # key, why it is FAIL
: >"$RESYNC_RESULTS"
: >"$RESYNC_REASONS"
resync_record() { printf '%s\t%s\n' "$1" "$2" >>"$RESYNC_RESULTS"; }
resync_fail() {
    printf '%s\t%s\n' "$1" "$(printf '%s' "$2" | tr '\t\n' '  ' | cut -c1-220)" >>"$RESYNC_REASONS"
    FAILURES=$((FAILURES + 1))
    warn "resync: $1 FAILED: $2"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
# count_lines ERE FILE: how many lines of FILE match.
count_lines() { local n; n=$(grep -cE "$1" "$2" 2>/dev/null) || true; echo "${n:-0}"; }
RESYNC_DONE='is up to date: resync by'

# resync_wait_mount PID DIR: waits up to 30 s for the ReplFS mount of mirror run PID at DIR.
resync_wait_mount() {
    local pid=$1 dir=$2
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ $(findmnt -n -o FSTYPE --mountpoint "$dir" 2>/dev/null | tail -n1) == fuse.replfs ]] && return 0
        sleep 0.1
    done
    return 1
}

# resync_wait_done SEEN ALONE SECONDS: waits until the primary's log has more than SEEN "is up to
# date" lines, and sets RESYNC_LINE to the next one. False (REASON set) when a daemon exits, when the
# primary logs more than ALONE "continuing alone" lines (it dropped the resync), or after SECONDS.
RESYNC_LINE=""
resync_wait_done() {
    local seen=$1 alone=$2 deadline=$((SECONDS + $3)) plog=$LOGS/resync-node1.log
    while :; do
        if (($(count_lines "$RESYNC_DONE" "$plog") > seen)); then
            RESYNC_LINE=$(grep -E "$RESYNC_DONE" "$plog" | sed -n "$((seen + 1))p")
            return 0
        fi
        if (($(count_lines 'continuing alone' "$plog") > alone)); then
            REASON="the primary dropped the resync: $(last_line "$plog" 'continuing alone' | sed 's/^.*\] //')"
            return 1
        fi
        kill -0 "$RESYNC_PRIMARY_PID" 2>/dev/null || { REASON="the primary exited: $(last_line "$plog")"; return 1; }
        kill -0 "$RESYNC_SECONDARY_PID" 2>/dev/null ||
            { REASON="the secondary exited: $(last_line "$LOGS/resync-node2.log")"; return 1; }
        ((SECONDS < deadline)) || { REASON="no \"$RESYNC_DONE\" line within $3 s"; return 1; }
        sleep 0.05
    done
}

# resync_parse KEY METHOD: records the figures of RESYNC_LINE under KEY_; false (REASON set) when
# the line cannot be read or the resync was not by METHOD ("checksum" or "change map").
resync_parse() {
    local key=$1 method=$2 fields got sent regions entries passes secs
    fields=$(sed -nE 's/.* resync by (checksum|change map) sent ([0-9]+) bytes in ([0-9]+) regions, ([0-9]+) entries seen, ([0-9]+) pass\(es\), ([0-9.eE+-]+) seconds;.*/\1|\2|\3|\4|\5|\6/p' <<<"$RESYNC_LINE")
    [[ -n $fields ]] || { REASON="cannot read the line: $RESYNC_LINE"; return 1; }
    IFS='|' read -r got sent regions entries passes secs <<<"$fields"
    resync_record "${key}_method" "$got"
    resync_record "${key}_sent" "$sent"
    resync_record "${key}_regions" "$regions"
    resync_record "${key}_entries" "$entries"
    resync_record "${key}_passes" "$passes"
    resync_record "${key}_line_s" "$secs"
    [[ $got == "$method" ]] || { REASON="resync by $got, not by $method"; return 1; }
}

# fsync every regular file under a directory (here: the secondary's copy, through its mount).
cat >"$RUN/fsync-all.py" <<'EOF'
import os, sys
for name in sorted(os.listdir(sys.argv[1])):
    fd = os.open(os.path.join(sys.argv[1], name), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
EOF

# Overwrites BLOCKS distinct 1 MiB blocks, at random 1 MiB-aligned offsets of the files
# file1..fileN (FILE_MIB MiB each), with new random data; fsyncs each file touched.
cat >"$RUN/resync-change.py" <<'EOF'
import os, random, sys
root, files, file_mib, blocks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
MIB = 1 << 20
fds = {}
for pick in sorted(random.sample(range(files * file_mib), blocks)):
    name = os.path.join(root, "file%d" % (pick // file_mib + 1))
    if name not in fds:
        fds[name] = os.open(name, os.O_WRONLY)
    block = pick % file_mib
    if os.pwrite(fds[name], os.urandom(MIB), block * MIB) != MIB:
        sys.exit("short write on %s" % name)
    print("%s: 1 MiB at offset %d (block %d)" % (name, block * MIB, block))
for fd in fds.values():
    os.fsync(fd)
    os.close(fd)
EOF

resync_section() {
    local rs=$RUN/resync t0 t1 t2 i seen alone plog=$LOGS/resync-node1.log slog=$LOGS/resync-node2.log
    RESYNC_DIR=$rs
    write_loopback_cluster "$rs" benchresync data /data
    chmod 755 "$rs" "$rs/node1" "$rs/node2" "$rs/node1/data" "$rs/node2/data"
    "$MIRROR" check-config --config "$rs/cluster.toml" --node node1 >>"$LOGS/resync-check-config.log" 2>&1 ||
        { resync_fail setup "the cluster file is refused: $(last_line "$LOGS/resync-check-config.log")"; return 1; }
    local avail need=$(((2 * RESYNC_MIB + 512) << 20))
    avail=$(df --output=avail -B1 "$rs" | tail -n1)
    ((avail >= need)) ||
        { resync_fail setup "needs $((need >> 20)) MiB free under $BASE (source and one copy), has $((avail >> 20)) MiB"; return 1; }
    # node2 starts fresh: an empty directory and no state (nothing else under its prefix).
    [[ -z $(find "$rs/node2" -mindepth 1 ! -path "$rs/node2/data") && -z $(ls -A "$rs/node2/data") ]] ||
        { resync_fail setup "node2's prefix $rs/node2 is not empty"; return 1; }

    # The source: node1's plain directory, before any daemon runs; incompressible data, fsynced.
    log "resync: writing ${RESYNC_MIB} MiB in ${BENCH_RESYNC_FILES} files of ${RESYNC_FILE_MIB} MiB on node1's directory"
    for ((i = 1; i <= BENCH_RESYNC_FILES; i++)); do
        run_step fio --name=resync-source --filename="$rs/node1/data/file$i" --ioengine=psync --rw=write --bs=1M \
            --size="${RESYNC_FILE_MIB}m" --refill_buffers --end_fsync=1 >>"$LOGS/resync-source.log" 2>&1 ||
            { resync_fail setup "writing the source files: $(last_line "$LOGS/resync-source.log")"; return 1; }
    done

    # 1. The native copy of the same files to another directory of the same disk.
    mkdir -p "$rs/native-copy"
    drop_caches
    # Each file read and written in 1 MiB blocks through the page cache and fsynced, one after
    # the other (each dd the script's child, so that the EXIT trap can stop it).
    t0=$(now)
    for ((i = 1; i <= BENCH_RESYNC_FILES; i++)); do
        run_step dd if="$rs/node1/data/file$i" of="$rs/native-copy/file$i" bs=1M conv=fsync status=none \
            2>>"$LOGS/resync-native-copy.log" || { resync_fail native "dd: $(last_line "$LOGS/resync-native-copy.log")"; return 1; }
    done
    t1=$(now)
    resync_record native_s "$(seconds_between "$t0" "$t1")"
    log "resync: native copy (dd bs=1M conv=fsync) of ${RESYNC_MIB} MiB: $(seconds_between "$t0" "$t1") s"
    rm -rf "$rs/native-copy"

    # 2. The full sync: node2 fresh, started first; node1 primary; timed from node1's start.
    drop_caches
    "$MIRROR" run --config "$rs/cluster.toml" --node node2 --role secondary --foreground >>"$slog" 2>&1 8>&- 9>&- &
    RESYNC_SECONDARY_PID=$!
    resync_wait_mount "$RESYNC_SECONDARY_PID" "$rs/node2/data" ||
        { resync_fail full "the secondary did not mount its copy within 30 s: $(last_line "$slog")"; return 1; }
    t0=$(now)
    "$MIRROR" run --config "$rs/cluster.toml" --node node1 --role primary --peer-wait 60 --foreground >>"$plog" 2>&1 8>&- 9>&- &
    RESYNC_PRIMARY_PID=$!
    resync_wait_done 0 0 $((300 + RESYNC_MIB / 2)) || { resync_fail full "$REASON"; return 1; }
    t1=$(now)
    # The resync does not fsync the copy (the line comes when the last region is applied): the
    # copy's files are fsynced now, through the secondary's mount, as dd conv=fsync does.
    run_step python3 "$RUN/fsync-all.py" "$rs/node2/data" 2>>"$LOGS/resync-fsync.log" ||
        { resync_fail full "fsync of the copy: $(last_line "$LOGS/resync-fsync.log")"; return 1; }
    t2=$(now)
    resync_record full_wall_s "$(seconds_between "$t0" "$t1")"
    resync_record full_durable_s "$(seconds_between "$t0" "$t2")"
    resync_parse full checksum || { resync_fail full "$REASON"; return 1; }
    log "resync: full sync of ${RESYNC_MIB} MiB: $(seconds_between "$t0" "$t1") s from the primary's start to \"up to date\", $(seconds_between "$t0" "$t2") s with the copy fsynced"
    log "        $(sed 's/^.*\] //' <<<"$RESYNC_LINE")"
    local hwm1 hwm2
    hwm1=$(status_kib "$RESYNC_PRIMARY_PID" VmHWM) hwm2=$(status_kib "$RESYNC_SECONDARY_PID" VmHWM)
    log "        resync primary VmHWM $((${hwm1:-0} / 1024)) MiB, secondary VmHWM $((${hwm2:-0} / 1024)) MiB"

    # 3. The change-map resync: node2 stopped, 1% rewritten on node1's mount, node2 started again.
    stop_mirror_secondary "$RESYNC_SECONDARY_PID" "$rs/node2/data" ||
        { RESYNC_SECONDARY_PID=""; resync_fail changemap "the secondary did not stop on SIGTERM"; return 1; }
    RESYNC_SECONDARY_PID=""
    # The primary notices at once (it polls its connection) and goes on alone, keeping a change map.
    for _ in $(seq 150); do
        (($(count_lines 'continuing alone' "$plog") > 0)) && break
        sleep 0.1
    done
    (($(count_lines 'continuing alone' "$plog") > 0)) || warn "resync: the primary did not log \"continuing alone\" within 15 s of the secondary's stop"
    kill -0 "$RESYNC_PRIMARY_PID" 2>/dev/null || { resync_fail changemap "the primary exited: $(last_line "$plog")"; return 1; }
    run_step python3 "$RUN/resync-change.py" "$rs/node1/data" "$BENCH_RESYNC_FILES" "$RESYNC_FILE_MIB" "$RESYNC_CHANGED_BLOCKS" \
        >>"$LOGS/resync-changes.log" 2>&1 || { resync_fail changemap "overwriting: $(last_line "$LOGS/resync-changes.log")"; return 1; }
    resync_record changed_bytes $((RESYNC_CHANGED_BLOCKS << 20))
    drop_caches
    seen=$(count_lines "$RESYNC_DONE" "$plog")
    alone=$(count_lines 'continuing alone' "$plog")
    t0=$(now)
    "$MIRROR" run --config "$rs/cluster.toml" --node node2 --role secondary --foreground >>"$slog" 2>&1 8>&- 9>&- &
    RESYNC_SECONDARY_PID=$!
    resync_wait_done "$seen" "$alone" 300 || { resync_fail changemap "$REASON"; return 1; }
    t1=$(now)
    resync_record changemap_wall_s "$(seconds_between "$t0" "$t1")"
    resync_parse changemap "change map" || { resync_fail changemap "$REASON"; return 1; }
    log "resync: change map after ${RESYNC_CHANGED_BLOCKS} MiB rewritten: $(seconds_between "$t0" "$t1") s from the secondary's start"
    log "        $(sed 's/^.*\] //' <<<"$RESYNC_LINE")"

    # 4. Both copies compared byte for byte once both daemons are stopped (not timed).
    stop_resync
    local differs=""
    diff <(cd "$rs/node1/data" && find . -mindepth 1 -printf '%P %y %s %m\n' | sort) \
         <(cd "$rs/node2/data" && find . -mindepth 1 -printf '%P %y %s %m\n' | sort) >>"$LOGS/resync-compare.log" 2>&1 ||
        differs="the listings differ"
    for ((i = 1; i <= BENCH_RESYNC_FILES; i++)); do
        [[ -n $differs ]] && break
        cmp "$rs/node1/data/file$i" "$rs/node2/data/file$i" >>"$LOGS/resync-compare.log" 2>&1 || differs="file$i differs"
    done
    if [[ -n $differs ]]; then
        resync_fail compare "node2's copy is not node1's after both resyncs: $differs (see resync-compare.log)"
    else
        resync_record identical yes
    fi
    rm -rf "$rs/node1" "$rs/node2"
}

if ((RESYNC)); then
    log "resync: ${RESYNC_MIB} MiB in ${BENCH_RESYNC_FILES} files; native copy, full sync to a fresh node2, then change map after ${RESYNC_CHANGED_BLOCKS} MiB rewritten"
    resync_section || true
    stop_resync
    rm -rf "$RUN/resync"
fi

# ---------------------------------------------------------------- memory, table
for entry in "${DAEMONS[@]}"; do
    daemon=${entry%%:*} pid=${entry#*:}
    hwm=$(status_kib "$pid" VmHWM)
    sampled=$(cat "$RUN/rss-$daemon" 2>/dev/null || echo 0)
    if [[ -n $hwm ]]; then
        log "$daemon daemon memory: sampled peak VmRSS $((sampled / 1024)) MiB, VmHWM $((hwm / 1024)) MiB, VmRSS now $(( $(status_kib "$pid" VmRSS) / 1024 )) MiB"
        record rss "$daemon" "$(awk -v a="$hwm" -v b="$sampled" 'BEGIN {printf "%.1f", (a > b ? a : b) / 1024}')"
    else
        record rss "$daemon" FAIL
        FAILURES=$((FAILURES + 1))
        warn "$daemon daemon is gone: no memory figure"
    fi
done
has_target native && record rss native "n/a"
for entry in "${LOGGED_DAEMONS[@]}"; do
    daemon=${entry%%:*} pid=${entry#*:}
    hwm=$(status_kib "$pid" VmHWM)
    if [[ -n $hwm ]]; then
        log "$daemon memory (not in the table): sampled peak VmRSS $(( $(cat "$RUN/rss-$daemon" 2>/dev/null || echo 0) / 1024 )) MiB, VmHWM $((hwm / 1024)) MiB"
    else
        warn "$daemon (pid $pid) is gone"
    fi
done
if has_target gluster && [[ -s $LOGS/gluster-client.log ]] && grep -qE '\] [EC] \[' "$LOGS/gluster-client.log"; then
    warn "the gluster client's log has errors:"
    grep -E '\] [EC] \[' "$LOGS/gluster-client.log" | tail -n 20 >&2
fi

if [[ -s $LOGS/mirror.log ]] && grep -qiE 'error|warning|fatal|crash' "$LOGS/mirror.log"; then
    warn "the mirror log has errors or warnings:"
    grep -iE 'error|warning|fatal|crash' "$LOGS/mirror.log" | tail -n 20 >&2
fi
for node in primary secondary; do
    if [[ -s $LOGS/mirror-$node.log ]] && grep -qiE 'error|warning|fatal|crash|peer lost|continuing alone' "$LOGS/mirror-$node.log"; then
        warn "the replicated $node's log (mirror run) has errors, warnings or a lost peer:"
        grep -iE 'error|warning|fatal|crash|peer lost|continuing alone' "$LOGS/mirror-$node.log" | tail -n 20 >&2
    fi
done

# The resync nodes: SIGTERM and the deliberate stop make warnings ("peer lost", "continuing
# alone"); an error, a crash or an operation the secondary could not apply is reported.
for node in node1 node2; do
    if [[ -s $LOGS/resync-$node.log ]] && grep -qiE 'error|fatal|crash|could not apply' "$LOGS/resync-$node.log"; then
        warn "the resync section's $node log (mirror run) has errors:"
        grep -iE 'error|fatal|crash|could not apply' "$LOGS/resync-$node.log" | tail -n 20 >&2
    fi
done

ELAPSED=$((SECONDS - START_SECONDS))
mkdir -p "$REPO/bench-results"
REPORT=$REPO/bench-results/latest.txt
python3 - "$RESULTS" "$(IFS=,; echo "${TARGETS[*]}")" "$REASONS" >"$RUN/table.txt" <<EOF
import sys
rows = [
    ("seqwrite", "seq write 1M (MiB/s)"),
    ("seqread", "seq read 1M (MiB/s)"),
    ("randwrite_fsync", "rand write 4K fsync=1 (IOPS)"),
    ("randwrite_4jobs", "rand write 4K 4 jobs (IOPS)"),
    ("randread", "rand read 4K (IOPS)"),
    ("smallfiles", "create/stat/unlink ${BENCH_FILES} (files/s)"),
    ("pgbench", "pgbench s${BENCH_PG_SCALE} c4 j2 (TPS)"),
    ("rss", "daemon peak RSS (MiB)"),
]
def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
samples = {}
for line in open(sys.argv[1]):
    key, target, value = line.rstrip("\n").split("\t")
    samples.setdefault((key, target), []).append(value)
def median(vs):
    if any(num(v) is None for v in vs):
        return "FAIL" if "FAIL" in vs else vs[0]
    xs = sorted(float(v) for v in vs)
    m = len(xs) // 2
    return str(xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2)
values = {k: median(vs) for k, vs in samples.items()}
def fmt(v):
    x = num(v)
    if x is None:
        return v or "-"
    return "%.0f" % x if x >= 100 else ("%.1f" % x if x >= 10 else "%.2f" % x)
def ratio(a, b):
    a, b = num(a), num(b)
    return "%.2f" % (a / b) if a is not None and b else "-"
targets = sys.argv[2].split(",")
# (numerator, denominator, column): shown when both targets were measured.
pairs = [("replfs", "native", "replfs/native"), ("replfs", "bindfs", "replfs/bindfs"),
         ("replicated", "native", "repl/native"), ("replicated", "replfs", "repl/replfs"),
         ("replicated", "bindfs", "repl/bindfs"), ("replicated", "gluster", "repl/gluster"),
         ("gluster", "native", "gluster/native")]
pairs = [p for p in pairs if p[0] in targets and p[1] in targets]
width = max(len(label) for _, label in rows)
for key, label in rows:
    cells = ["%-*s" % (width, label)]
    cells += ["%s %7s" % (t, fmt(values.get((key, t)))) for t in targets]
    cells += ["%s %5s" % (name, ratio(values.get((key, a)), values.get((key, b))))
              for a, b, name in pairs]
    print("   ".join(cells))
reasons = {}
for line in open(sys.argv[3]):
    key, target, reason = line.rstrip("\n").split("\t", 2)
    reasons.setdefault((target, key), reason)   # the first failure of a (target, workload)
if reasons:
    print()
    print("FAIL reasons (first of each target and workload):")
    for (target, key), reason in reasons.items():
        print("  %s %s: %s" % (target, key, reason))
EOF

# The resync section's lines, under the table.
: >"$RUN/resync.txt"
if ((RESYNC)); then
python3 - "$RESYNC_RESULTS" "$RESYNC_REASONS" "$RESYNC_MIB" "$BENCH_RESYNC_FILES" "$RESYNC_CHANGED_BLOCKS" >"$RUN/resync.txt" <<'EOF'
import sys
values = dict(line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]) if "\t" in line)
reasons = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[2]) if "\t" in line]
mib, files, blocks = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def num(key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None
def rate(seconds):
    return "%8.1f MiB/s" % (mib / seconds) if seconds else "%14s" % "FAIL"
def secs(seconds):
    return "%8.2f s" % seconds if seconds is not None else "%10s" % "-"
native = num("native_s")
def vs_native(seconds):
    return "resync/native %.2f" % (native / seconds) if native and seconds else "resync/native -"
print("resync: %d MiB in %d files, node1 (primary) -> fresh node2 (secondary), mirror run on loopback, both on the scratch disk; one measurement"
      % (mib, files))
rows = [
    ("native copy: dd bs=1M conv=fsync, same files, same disk", native, ""),
    ("full sync: primary start -> \"up to date\" + copy fsynced", num("full_durable_s"), "   (the bar's figure: >= 0.80)"),
    ("full sync: primary start -> \"up to date\" line", num("full_wall_s"), ""),
    ("full sync: the line's own duration", num("full_line_s"), ""),
]
for label, seconds, note in rows:
    ratio = "" if label.startswith("native") else "   " + vs_native(seconds) + note
    print("  %-58s %s %s%s" % (label, rate(seconds), secs(seconds), ratio))
if "full_sent" in values:
    print("  %-58s %s bytes in %s regions, %s entries, %s pass(es)" % (
        "full sync by %s sent" % values.get("full_method", "?"), values["full_sent"], values.get("full_regions", "?"),
        values.get("full_entries", "?"), values.get("full_passes", "?")))
changed, sent = num("changed_bytes"), num("changemap_sent")
if changed:
    label = "change map after %d MiB rewritten (%d x 1 MiB, %.2f%%)" % (blocks, blocks, 100.0 * blocks / mib)
    if sent is not None:
        print("  %-58s sent %d bytes in %s regions: sent/changed %.2f   (bar <= 1.1)" % (
            label, sent, values.get("changemap_regions", "?"), sent / changed))
    else:
        print("  %-58s FAIL" % label)
if num("changemap_line_s") is not None:
    wall = num("changemap_wall_s")
    print("  %-58s %.3f s (the line's own duration); %s from the secondary's start" % (
        "change-map resync duration", num("changemap_line_s"), "%.2f s" % wall if wall is not None else "-"))
if values.get("identical") == "yes":
    print("  %-58s identical to node1's (listing and cmp)" % "node2's copy after both resyncs")
if reasons:
    print("  FAIL:")
    for key, reason in reasons:
        print("    %s: %s" % (key, reason))
EOF
fi

{
    echo "ReplFS benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( ((QUICK)) && echo ' (--quick)')"
    echo "host: $(nproc) cores, $(uname -r), scratch $BASE on $fstype; targets: ${TARGETS[*]}"
    ! has_target replfs || echo "replfs: mirror mount ${MIRROR_ARGS[*]:-(defaults: 4 threads, splice, cache-timeout 1)}"
    ! has_target bindfs || echo "bindfs: $(bindfs --version | awk '{print $2; exit}') defaults (single-threaded)"
    echo "fio psync, buffered; seq ${BENCH_SIZE} with bs=1M; random bs=4k, ${BENCH_RAND_SIZE} per job, ${BENCH_RUNTIME}s time-based"
    echo "seq write: end_fsync=1, so the data is on the disk before the job ends and the fsync time is counted."
    echo "seq read, rand read: the file seq write left, read after 'sync; echo 3 > drop_caches' on every target"
    echo "  (cold caches everywhere: native, FUSE-side and backing page caches)."
    echo "figures: median of ${BENCH_ROUNDS} round(s); each round runs the targets in a rotated order."
    echo "rand write 4 jobs: numjobs=4, one ${BENCH_RAND_SIZE} file each, no fsync (page cache on native)."
    echo "small files: create+write 100 B+close, stat, unlink ${BENCH_FILES} files; files/s over the whole cycle."
    echo "pgbench: PostgreSQL 15 defaults (fsync on), unix socket only; -i -s ${BENCH_PG_SCALE}, then -c 4 -j 2 -T ${BENCH_RUNTIME}."
    if has_target gluster; then
        echo "gluster: $(glusterfs --version | head -n1) replica 2, glusterd/bricks/client on $GLUSTER_HOST, both bricks on the scratch disk, FUSE client"
        echo "  (mount -t glusterfs); Gluster defaults but performance.write-behind off (each write reaches both bricks before it"
        echo "  returns, as on replicated). FAIL: a brick, the client or glusterd died, or the client lost a brick (it would go on alone)."
    fi
    if has_target replicated; then
        echo "replicated: mirror run primary (node1, 127.0.0.1) -> secondary (node2, 127.0.0.2) on loopback, synchronous,"
        echo "  ack_timeout 3; the primary's ReplFS has mirror run's fixed settings (4 threads, defaults), not the replfs options."
        echo "  repl/replfs compares it with the unreplicated replfs target. FAIL: a daemon died or the primary logged \"peer lost\" (or went on alone)."
    fi
    echo "RSS: max of sampled VmRSS (every 0.2 s) and VmHWM of the daemon process (replicated: the primary; gluster: the FUSE"
    echo "  client, its bricks are in the log); native has no daemon."
    echo
    cat "$RUN/table.txt"
    echo
    if [[ -s $RUN/resync.txt ]]; then
        cat "$RUN/resync.txt"
        echo
    fi
    echo "total time ${ELAPSED}s$( ((FAILURES)) && echo ", ${FAILURES} FAILED step(s): see bench-results/logs/")"
} | tee "$REPORT"
cp "$REPORT" "$REPO/bench-results/bench-$(date -u '+%Y%m%d-%H%M%S').txt"

((FAILURES == 0)) || exit 1
