#!/usr/bin/env bash
# The main job, end to end on one machine: installs what it needs, builds, mounts ReplFS over a
# live application directory, runs a real SQLite workload through it, unmounts, and shows that
# the very same files are intact underneath.
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
cleanup() {
    if findmnt -n "$app" >/dev/null 2>&1; then "$mirror" umount --dir "$app" --lazy 2>/dev/null || umount -l "$app"; fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill "$daemon_pid"; fi
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
echo "== done: same data, same files, same paths"
