#!/usr/bin/env bash
# The main job, end to end on one machine: installs what it needs, builds, mounts ReplFS over a
# live application directory, runs a real SQLite workload through it, unmounts, and shows that
# the very same files are intact underneath; then starts two replicating nodes on this machine
# (127.0.0.1 and 127.0.0.2) and shows the same workload written on one appearing on the other.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "error: run as root (mounting needs it)" >&2; exit 1; }
scripts/install-deps.sh
source scripts/swift-env.sh
echo "== building"
swift build -c release --product mirror 2>&1 | tail -1
mirror="$(swift build -c release --show-bin-path)/mirror"

demo=/var/tmp/replfs-demo
app="$demo/app"
daemon_pid=""
node_pids=()
cleanup() {
    if findmnt -n "$app" >/dev/null 2>&1; then "$mirror" umount --dir "$app" --lazy 2>/dev/null || umount -l "$app"; fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill "$daemon_pid"; fi
    stop_nodes
}
# Stops the two nodes by PID (SIGTERM unmounts them), the primary first.
stop_nodes() {
    local pid
    for pid in "${node_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    node_pids=()
    for dir in "$demo"/node*/app; do
        if findmnt -n "$dir" >/dev/null 2>&1; then umount -l "$dir"; fi
    done
}
trap cleanup EXIT
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
findmnt "$app" >/dev/null && { echo "error: still mounted" >&2; exit 1; }
ls -l "$app"
sum_plain=$(sqlite3 "$app/shop.db" 'SELECT sum(qty), count(*) FROM orders;')
echo "integrity on the plain directory: $(sqlite3 "$app/shop.db" 'PRAGMA integrity_check;')"
echo "sum(qty), rows through ReplFS: $sum_mounted   on the plain directory: $sum_plain"
[ "$sum_mounted" = "$sum_plain" ] || { echo "error: data differs after unmounting" >&2; exit 1; }
echo "== same data, same files, same paths"

echo
echo "== two nodes on this machine: node1 (127.0.0.1) replicates every change to node2 (127.0.0.2)"
source scripts/lib/loopback-cluster.sh
write_loopback_cluster "$demo" demo shop /app
"$mirror" check-config --config "$demo/cluster.toml" --node node1 | sed -n 1p
"$mirror" run --config "$demo/cluster.toml" --node node2 --role secondary --foreground 2>"$demo/node2.log" &
node_pids=($!)
for _ in $(seq 1 100); do findmnt -n -t fuse.replfs "$demo/node2/app" >/dev/null && break; sleep 0.1; done
"$mirror" run --config "$demo/cluster.toml" --node node1 --role primary --foreground 2>"$demo/node1.log" &
node_pids=($! "${node_pids[@]}")
for _ in $(seq 1 300); do findmnt -n -t fuse.replfs "$demo/node1/app" >/dev/null && break; sleep 0.1; done
findmnt -n -t fuse.replfs "$demo/node1/app" >/dev/null || { echo "error: node1 did not start:" >&2; cat "$demo/node1.log" >&2; exit 1; }
for node in node1 node2; do findmnt -n -o TARGET,FSTYPE,OPTIONS "$demo/$node/app"; done

echo "== 2,000 SQLite transactions on node1; each returns once node2 has applied it"
{
    echo "PRAGMA journal_mode=WAL;"
    echo "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, qty INTEGER);"
    for i in $(seq 1 2000); do
        echo "BEGIN; INSERT INTO orders(item, qty) VALUES ('item $i', $((i % 7 + 1))); COMMIT;"
    done
    echo "PRAGMA wal_checkpoint(TRUNCATE);"
} | sqlite3 "$demo/node1/app/shop.db" >/dev/null
on_node1=$(sqlite3 "$demo/node1/app/shop.db" 'SELECT count(*), sum(qty) FROM orders;')
echo "node1 (read-write): rows, sum(qty) = $on_node1"
echo "node2 (read-only mount, files as they are on node2's disk):"
ls -l "$demo/node2/app"
cmp "$demo/node1/app/shop.db" "$demo/node2/app/shop.db" && echo "shop.db is byte-identical on both nodes"
touch "$demo/node2/app/x" 2>&1 | sed 's/^/writing on node2: /' || true

echo "== node2 stops; node1 goes on alone and its journal records what changes"
node2_pid=${node_pids[-1]}
kill -TERM "$node2_pid"
for _ in $(seq 1 100); do kill -0 "$node2_pid" 2>/dev/null || break; sleep 0.1; done
node_pids=("${node_pids[0]}")
{
    echo "BEGIN;"
    for i in $(seq 1 500); do echo "INSERT INTO orders(item, qty) VALUES ('while alone $i', 1);"; done
    echo "COMMIT;"
    echo "PRAGMA wal_checkpoint(TRUNCATE);"
} | sqlite3 "$demo/node1/app/shop.db" >/dev/null
for _ in $(seq 1 50); do grep -q "continuing alone" "$demo/node1.log" && break; sleep 0.1; done
grep -h "serving alone" "$demo/node1.log" | sed 's/^.*\] /node1: /'
echo "== node2 returns: only what changed travels"
"$mirror" run --config "$demo/cluster.toml" --node node2 --role secondary --foreground 2>>"$demo/node2.log" &
node_pids+=($!)
for _ in $(seq 1 300); do [ "$(grep -c 'is up to date' "$demo/node1.log")" -ge 2 ] && break; sleep 0.1; done
grep -h "is up to date" "$demo/node1.log" | tail -1 | sed 's/^.*\] /node1: /'
cmp "$demo/node1/app/shop.db" "$demo/node2/app/shop.db" && echo "shop.db is byte-identical on both nodes again"
"$mirror" verify --config "$demo/cluster.toml" --node node1
"$mirror" status --config "$demo/cluster.toml" --node node1
on_node1=$(sqlite3 "$demo/node1/app/shop.db" 'SELECT count(*), sum(qty) FROM orders;')
echo "node1: rows, sum(qty) = $on_node1"
stop_nodes
on_node2=$(sqlite3 "$demo/node2/app/shop.db" 'SELECT count(*), sum(qty) FROM orders;')
echo "node2's copy, opened after stopping both nodes: rows, sum(qty) = $on_node2"
[ "$on_node1" = "$on_node2" ] || { echo "error: node2's copy differs" >&2; exit 1; }
echo "== done"
