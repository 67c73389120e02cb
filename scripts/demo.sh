#!/usr/bin/env bash
# The main job, end to end on one machine: installs what it needs, builds, mounts ReplFS over a
# live application directory, runs a real SQLite workload through it, unmounts, and shows that
# the very same files are intact underneath. Then a two-node cluster on this machine, each node
# in its own network namespace: PostgreSQL 15 behind a virtual IP, a client in a third namespace
# inserting rows through it, the primary dying (its link cut, kill -9 of its daemon and of
# PostgreSQL): the other node takes over (its timeline shown by clusterctl status), every
# committed row is there; the dead node returns as SECOND and receives only what changed. Ends
# with PASS, or FAIL and where the logs are.
# Whatever happens, what it created is removed on exit: processes (by PID), mounts, namespaces
# (the logs stay in /var/tmp/mirror-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "error: run as root (mounting and network namespaces need it)" >&2; exit 1; }
scripts/install-deps.sh
source scripts/swift-env.sh
echo "== building"
swift build -c release --product mirror 2>&1 | tail -1
swift build -c release --product clusterctl 2>&1 | tail -1
bin="$(swift build -c release --show-bin-path)"
mirror="$bin/mirror"
clusterctl="$bin/clusterctl"
pgbin=/usr/lib/postgresql/15/bin

demo=/var/tmp/mirror-demo
app="$demo/app"
vip=10.77.0.100
ns="mdemo-$$"          # this run's namespaces: $ns-switch, $ns-node1, $ns-node2, $ns-client
namespaces=()
daemon_pid=""          # the ReplFS mount of the first part
declare -A node_pid=() # each node's cluster daemon
client_pid=""          # the inserting client (leader of its process group)
passed=""

fail() { echo "error: $*" >&2; exit 1; }

# Runs clusterctl against NODE's daemon (its control socket is under its path prefix).
ctl() { local node=$1; shift; "$clusterctl" --socket "$demo/$node/run/mirror/control.sock" "$@"; }

# NODE's state of the module, or "-" when its daemon does not answer.
state() {
    ctl "$1" status -m pg --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["modules"][0]["localState"])' 2>/dev/null || echo -
}

# Waits until node1 and node2 are in these states ("-": daemon down).
wait_for_states() {
    local want1=$1 want2=$2 timeout=$3 now1="" now2=""
    for _ in $(seq 1 $((timeout * 5))); do
        now1=$(state node1) now2=$(state node2)
        [ "$now1" = "$want1" ] && [ "$now2" = "$want2" ] && return 0
        sleep 0.2
    done
    fail "wanted (node1 $want1, node2 $want2), still (node1 $now1, node2 $now2) after $timeout s"
}

# Waits until NODE's log has COUNT lines containing TEXT.
wait_for_log() {
    local node=$1 text=$2 count=$3 timeout=$4
    for _ in $(seq 1 $((timeout * 10))); do
        [ "$(grep -c -F -- "$text" "$demo/$node.log" || true)" -ge "$count" ] && return 0
        sleep 0.1
    done
    fail "$node did not log \"$text\" within $timeout s"
}

# Waits until the client has committed COUNT more orders.
wait_for_commits() {
    local target=$(( $(wc -l <"$demo/committed") + $1 )) timeout=$2
    for _ in $(seq 1 $((timeout * 10))); do
        [ "$(wc -l <"$demo/committed")" -ge "$target" ] && return 0
        [ -n "$client_pid" ] && kill -0 "$client_pid" 2>/dev/null || fail "the client stopped"
        sleep 0.1
    done
    fail "the client did not commit $1 more orders within $timeout s; its last errors: $(tail -3 "$demo/client.errors" 2>/dev/null)"
}

# psql through the virtual IP, from the client's namespace.
sql() {
    nsenter --net="/var/run/netns/$ns-client" "$pgbin/psql" -h "$vip" -U postgres -d postgres -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
}

# Every order the client recorded as committed is in the table.
check_rows() {
    local missing
    missing=$(comm -23 <(cut -d' ' -f1 "$demo/committed" | sort) <(sql "SELECT id FROM orders" | sort))
    echo "$1: $(wc -l <"$demo/committed") orders reported committed by psql, $(sql "SELECT count(*) FROM orders") rows in the table, $(grep -c . <<<"$missing" || true) missing"
    [ -z "$missing" ] || fail "committed orders missing: $(head -5 <<<"$missing" | tr '\n' ' ')"
}

mac() { ip -n "$ns-$1" -j link show dev veth-am | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }

# Starts NODE's cluster daemon in its namespace and waits for its control socket.
start_node() {
    local node=$1
    nsenter --net="/var/run/netns/$ns-$node" "$mirror" run --config "$demo/cluster.toml" --node "$node" --foreground >>"$demo/$node.log" 2>&1 &
    node_pid[$node]=$!
    for _ in $(seq 1 200); do
        ctl "$node" status >/dev/null 2>&1 && return 0
        kill -0 "${node_pid[$node]}" 2>/dev/null || fail "$node's daemon exited: $(tail -5 "$demo/$node.log")"
        sleep 0.1
    done
    fail "$node's control socket did not answer within 20 s"
}

# SIGTERM to NODE's daemon (it stops its module: stop script, virtual IP, unmount), SIGKILL after 60 s.
stop_node() {
    local pid=${node_pid[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "node_pid[$1]"
}

# The PIDs of a postmaster and of every process of its session or child of it (its backends).
postgres_family() {
    ps -eo pid=,ppid=,sess= | awk -v leader="$1" '$1 == leader || $2 == leader || $3 == leader { print $1 }'
}

# SIGKILL to the PostgreSQL of NODE if one runs on its copy (its postmaster's pid from the
# external pid file, outside the replicated data); the shared memory segment it created, which
# a killed postmaster leaves behind, is removed.
kill_postgres() {
    local node=$1 pid p segment
    pid=$(head -n 1 "$demo/$node/var/run/postgresql/15-main.pid" 2>/dev/null) || return 0
    case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in "$demo/$node/"*) ;; *) return 0 ;; esac
    kill -STOP "$pid" 2>/dev/null || true   # it forks nothing more meanwhile
    for _ in 1 2 3; do
        for p in $(postgres_family "$pid"); do kill -KILL "$p" 2>/dev/null || true; done
        sleep 0.1
    done
    rm -f "$demo/$node/var/run/postgresql/15-main.pid"
    for segment in $(ipcs -m -p | awk -v creator="$pid" '$3 == creator { print $1 }'); do ipcrm -m "$segment" 2>/dev/null || true; done
}

# NODE dies as a machine would: link down, then kill -9 of its daemon and of its PostgreSQL.
die() {
    local node=$1
    ip -n "$ns-$node" link set veth-am down
    kill -KILL "${node_pid[$node]}"
    wait "${node_pid[$node]}" 2>/dev/null || true
    unset "node_pid[$node]"
    kill_postgres "$node"
}

# Whatever happened: the client, the daemons (by PID), PostgreSQL left running, the mounts,
# the namespaces. The logs stay in $demo.
cleanup() {
    local status=$? node dir
    set +e
    trap - EXIT
    [ -n "$client_pid" ] && { kill -TERM -- "-$client_pid" 2>/dev/null; wait "$client_pid" 2>/dev/null; }
    if findmnt -n "$app" >/dev/null 2>&1; then "$mirror" umount --dir "$app" --lazy 2>/dev/null || umount -l "$app"; fi
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
    for node in node1 node2; do stop_node "$node"; done
    for node in node1 node2; do kill_postgres "$node"; done
    # Listed, not looked up by path: a dead mount's path cannot be resolved.
    for dir in $(findmnt -rn -o TARGET | grep "^$demo/node"); do umount -l "$dir"; done
    for name in "${namespaces[@]}"; do ip netns del "$name" 2>/dev/null; done
    if [ -z "$passed" ]; then
        echo "FAIL (exit status $status, or interrupted); logs in $demo" >&2
        [ "$status" != 0 ] || status=1
    fi
    exit "$status"
}
trap cleanup EXIT   # also run when a signal (TERM, HUP, INT) ends the script

# What a demo killed before its cleanup could run may have left: its daemons still running are
# refused (stop them first), its dead mounts detached, its namespaces (their run's PID gone) deleted.
if pids=$(pgrep -f -- "--config $demo/cluster.toml"); then
    fail "a previous demo's daemons still run (PIDs $(tr '\n' ' ' <<<"$pids")): stop them first"
fi
for dir in $(findmnt -rn -o TARGET | grep "^$demo/" || true); do umount -l "$dir"; done
for name in $(ip netns list | awk '{ print $1 }' | grep '^mdemo-' || true); do
    pid=${name#mdemo-}
    pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null || ip netns del "$name"
done
rm -rf "$demo"
mkdir -p "$app"

echo "== the application's directory, before ReplFS: an existing SQLite database"
sqlite3 "$app/shop.db" "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, qty INTEGER); INSERT INTO orders(item, qty) VALUES ('existing order', 1);"
ls -l "$app"

echo "== mounting ReplFS over that same directory"
line=$("$mirror" mount --dir "$app" --log-file "$demo/mirror.log")
echo "$line"
daemon_pid=$(sed -n 's/.*pid \([0-9]*\).*/\1/p' <<<"$line")
findmnt "$app"

echo "== a real workload through the mount: 5,000 SQLite transactions in WAL mode"
start=$(date +%s.%N)
{
    echo "PRAGMA journal_mode=WAL;"
    for i in $(seq 1 5000); do
        echo "BEGIN; INSERT INTO orders(item, qty) VALUES ('item $i', $((i % 7 + 1))); UPDATE orders SET qty = qty + 1 WHERE id = $(( (i % 50) + 1 )); COMMIT;"
    done
} | sqlite3 "$app/shop.db" >/dev/null
end=$(date +%s.%N)
printf "5,000 transactions in %.1f s\n" "$(echo "$end - $start" | bc -l 2>/dev/null || python3 -c "print($end - $start)")"
echo "integrity: $(sqlite3 "$app/shop.db" 'PRAGMA integrity_check;')   rows: $(sqlite3 "$app/shop.db" 'SELECT count(*) FROM orders;')"
sum_mounted=$(sqlite3 "$app/shop.db" 'SELECT sum(qty), count(*) FROM orders;')
sqlite3 "$app/shop.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null

echo "== unmounting; the daemon exits and the files stay where they were"
"$mirror" umount --dir "$app"
for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
daemon_pid=""
findmnt "$app" >/dev/null && fail "still mounted"
ls -l "$app"
sum_plain=$(sqlite3 "$app/shop.db" 'SELECT sum(qty), count(*) FROM orders;')
echo "integrity on the plain directory: $(sqlite3 "$app/shop.db" 'PRAGMA integrity_check;')"
echo "sum(qty), rows through ReplFS: $sum_mounted   on the plain directory: $sum_plain"
[ "$sum_mounted" = "$sum_plain" ] || fail "data differs after unmounting"
echo "== same data, same files, same paths"


echo
echo "== two nodes on this machine, each in its network namespace, PostgreSQL 15 behind the virtual IP $vip"
# Three hosts on one Ethernet segment, as the tests' NetworkLab: node1 (10.77.0.1) and node2
# (10.77.0.2), interface veth-am, and a client (10.77.0.10), each joined by a veth pair to a
# bridge in a fourth namespace. Daemons run under `nsenter --net` (not `ip netns exec`, which
# would hide their FUSE mounts from everyone else).
ip netns add "$ns-switch"
namespaces+=("$ns-switch")
ip -n "$ns-switch" link add br0 type bridge stp_state 0
ip -n "$ns-switch" link set br0 up
for host in node1 node2 client; do
    case $host in node1) address=10.77.0.1 ifname=veth-am ;; node2) address=10.77.0.2 ifname=veth-am ;; client) address=10.77.0.10 ifname=eth0 ;; esac
    ip netns add "$ns-$host"
    namespaces+=("$ns-$host")
    ip -n "$ns-$host" link add "$ifname" type veth peer name "p-$host" netns "$ns-switch"
    ip -n "$ns-switch" link set "p-$host" master br0 up
    ip -n "$ns-$host" addr add "$address/24" dev "$ifname"
    ip -n "$ns-$host" link set "$ifname" up
    ip -n "$ns-$host" link set lo up
done
ip netns list | grep "^$ns-" | sed 's/^/namespace /'

# The cluster file: one module "pg" replicating /var/lib/postgresql/15 (PostgreSQL's data
# directory main/ inside it), the virtual IP, the start and stop scripts. Each node's path
# prefix stands for its root: node1's copy is $demo/node1/var/lib/postgresql/15.
( umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$demo/cluster.key" )
mkdir -p "$demo/scripts"
for node in node1 node2; do
    for directory in run var/lib/postgresql/15 var/run var/log; do mkdir -p "$demo/$node/$directory"; done
done
cat >"$demo/cluster.toml" <<TOML
cluster = "demo"
key_file = "$demo/cluster.key"
heartbeat_interval = 0.5
heartbeat_timeout = 3

[[node]]
name = "node1"
replication = ["10.77.0.1:7788"]
heartbeat = ["10.77.0.1:7789"]
path_prefix = "$demo/node1"

[[node]]
name = "node2"
replication = ["10.77.0.2:7788"]
heartbeat = ["10.77.0.2:7789"]
path_prefix = "$demo/node2"

[[module]]
name = "pg"
directories = ["/var/lib/postgresql/15"]
start = "$demo/scripts/pg-start"
stop = "$demo/scripts/pg-stop"

[[module.vip]]
address = "$vip/24"
interface = "veth-am"
TOML
cat >"$demo/scripts/pg-start" <<'SH'
#!/bin/sh
# Start script of the module "pg": PostgreSQL 15 on this node's copy of its data directory,
# listening on every address (so on the virtual IP). A postmaster.pid that came with the data
# (replicated from the peer, or left by a crash) is stale unless a postmaster runs on this very
# directory here (a postmaster's working directory is its data directory).
set -eu
umask 022
cd /
data="$MIRROR_PATH_PREFIX/var/lib/postgresql/15/main"
run="$MIRROR_PATH_PREFIX/var/run/postgresql"
logs="$MIRROR_PATH_PREFIX/var/log/postgresql"
mkdir -p "$run" "$logs"
chown postgres:postgres "$run" "$logs"
if [ -f "$data/postmaster.pid" ]; then
    pid=$(head -n 1 "$data/postmaster.pid")
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$data" ]; then
        echo "PostgreSQL already runs on $data (postmaster $pid)"
        exit 0
    fi
    echo "removing the stale postmaster.pid (postmaster ${pid:-?} does not run here)"
    rm -f "$data/postmaster.pid"
fi
exec runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -l "$logs/postgresql-15-main.log" -w -t 100 \
    -o "-c listen_addresses='*' -c unix_socket_directories='$run' -c external_pid_file='$run/15-main.pid'" start
SH
cat >"$demo/scripts/pg-stop" <<'SH'
#!/bin/sh
# Stop script of the module "pg": a fast shutdown (sessions cut at once) if PostgreSQL runs on
# this node's copy, immediate if that does not finish; nothing to do otherwise (idempotent).
set -u
cd /
data="$MIRROR_PATH_PREFIX/var/lib/postgresql/15/main"
pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
# Its postmaster, by its command line (a daemon's death leaves its cwd on a dead mount).
if [ -n "$pid" ] && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$data"; then
    if ! runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -m fast -w -t 30 stop; then
        runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -m immediate -w -t 10 stop || kill -9 "$pid"
    fi
else
    echo "PostgreSQL does not run on $data"
fi
exit 0
SH
chmod 755 "$demo/scripts/pg-start" "$demo/scripts/pg-stop"
"$mirror" check-config --config "$demo/cluster.toml" --node node1 | sed -n 1p

echo "== initdb on node1's copy (node2's is empty: node1's data will be the reference)"
data1="$demo/node1/var/lib/postgresql/15/main"
mkdir -m 700 "$data1"
chown postgres:postgres "$data1"
runuser -u postgres -- env -C / "$pgbin/initdb" -D "$data1" -U postgres -A trust --data-checksums >/dev/null
echo "host all all 10.77.0.0/24 trust" >>"$data1/pg_hba.conf"
du -sh "$data1"

echo "== both daemons started (mirror run, each in its namespace): a fresh pair waits for the operator"
start_node node1
start_node node2
wait_for_states WAIT WAIT 20
ctl node1 status -m pg
echo "\$ clusterctl prim -m pg    (on node1)"
ctl node1 prim -m pg
wait_for_states PRIM SECOND 60
wait_for_log node1 "node2 is up to date: resync by" 1 60
wait_for_log node1 ": timeline (from " 1 60
grep -h "node2 is up to date: resync by" "$demo/node1.log" | tail -1 | sed 's/^.*\] /node1: /'
ctl node1 status -m pg

echo "== a client in its own namespace inserts orders through $vip, one psql call (one transaction) each"
sql "CREATE TABLE orders(id bigint PRIMARY KEY, item text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
cat >"$demo/client.sh" <<'SH'
#!/usr/bin/env bash
# Inserts order 1, 2, 3... through the virtual IP; appends "N EPOCH-SECONDS" to COMMITTED once
# psql reported order N committed; after an error (refused, timed out, server starting up) it
# goes on with the next number, the outcome of the failed one being unknown.
vip=$1 committed=$2 errors=$3
export PGCONNECT_TIMEOUT=1
i=0
while :; do
    i=$((i + 1))
    if timeout 3 /usr/lib/postgresql/15/bin/psql -h "$vip" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 \
        -c "INSERT INTO orders(id, item) VALUES ($i, 'order $i')" >/dev/null 2>>"$errors"; then
        echo "$i $(date +%s.%N)" >>"$committed"
    else
        sleep 0.1
    fi
done
SH
: >"$demo/committed"
# Its own process group (setsid), so that the loop and its psql are stopped together by its PID.
setsid nsenter --net="/var/run/netns/$ns-client" bash "$demo/client.sh" "$vip" "$demo/committed" "$demo/client.errors" &
client_pid=$!
wait_for_commits 150 60
echo "committed so far: $(wc -l <"$demo/committed")"
echo "the client's ARP entry for $vip: $(ip -n "$ns-client" neigh show "$vip" dev eth0)   (node1's MAC: $(mac node1))"

echo "== node1 dies: its link goes down (a dead machine is silent), its daemon and PostgreSQL are killed (kill -9)"
# The link matters: a machine whose daemon alone was killed still answers ARP for the virtual
# IP, and node2 would refuse to add an address another host answers for.
killed_at=$(date +%s.%N)
die node1
echo "node1 killed at $(date -d "@$killed_at" +%T.%3N); waiting for node2 to take over (heartbeat timeout 3 s)"
wait_for_states - ALONE 20
wait_for_log node2 ": timeline (from " 1 60
wait_for_commits 30 60
echo "\$ clusterctl status -m pg    (on node2)"
ctl node2 status -m pg
grep -h ": timeline (from " "$demo/node2.log" | tail -1 | sed 's/^.*\] /node2: /'
outage=$(awk -v from="$killed_at" '$2 > from - 1 { if (n++ && $2 - prev > max) max = $2 - prev; prev = $2 } END { printf "%d", max * 1000 }' "$demo/committed")
echo "the client saw no commit for $outage ms (longest pause between two commits around the failover)"
echo "the client's ARP entry for $vip: $(ip -n "$ns-client" neigh show "$vip" dev eth0)   (node2's MAC: $(mac node2))"
[ "$(ip -n "$ns-client" -j neigh show "$vip" dev eth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["lladdr"])')" = "$(mac node2)" ] \
    || fail "the client's ARP entry does not name node2"
check_rows "after the failover"

echo "== node1 returns (link up, daemon started): it becomes SECOND and receives only what changed"
ip -n "$ns-node1" link set veth-am up
start_node node1
wait_for_states SECOND PRIM 60
wait_for_log node2 "node1 is up to date: resync by" 1 60
resync=$(grep -h "node1 is up to date: resync by" "$demo/node2.log" | tail -1 | sed 's/^.*\] /node2: /')
echo "$resync"
grep -q "resync by change map" <<<"$resync" || fail "node1 was not resynchronised by change map"
sent=$(sed -n 's/.* sent \([0-9]*\) bytes.*/\1/p' <<<"$resync")
echo "$sent bytes sent for a $(du -sb "$demo/node2/var/lib/postgresql/15/main" | cut -f1)-byte data directory"
ctl node2 status -m pg
wait_for_commits 30 60

echo "== the client stops; every order psql reported committed is in the table"
kill -TERM -- "-$client_pid"
wait "$client_pid" 2>/dev/null || true
client_pid=""
check_rows "at the end"
echo "== both nodes stop (SIGTERM: the PRIM's stop script shuts PostgreSQL down)"
stop_node node1
stop_node node2
grep -q "server stopped" "$demo/node2.log" || fail "PostgreSQL was not stopped by node2's stop script"
passed=yes
echo
echo "PASS: PostgreSQL behind $vip failed over from node1 (kill -9) to node2 in $outage ms as the client saw it; $(wc -l <"$demo/committed") committed orders all present; node1 back as SECOND by change map ($sent bytes)"
