# Sourced by scripts: a cluster file for two nodes on this machine (node1 on 127.0.0.1, node2 on
# 127.0.0.2, each with its own path prefix under DIR) and its 0600 key.
#
#   write_loopback_cluster DIR CLUSTER MODULE DIRECTORY   -> DIR/cluster.toml, DIR/cluster.key

# A TCP port nobody listens on at HOST now.
free_port() {
    python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

write_loopback_cluster() {
    local dir=$1 cluster=$2 module=$3 directory=$4
    mkdir -p "$dir/node1$directory" "$dir/node2$directory"
    ( umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/cluster.key" )
    cat >"$dir/cluster.toml" <<TOML
cluster = "$cluster"
key_file = "$dir/cluster.key"
ack_timeout = 3

[[node]]
name = "node1"
replication = ["127.0.0.1:$(free_port 127.0.0.1)"]
path_prefix = "$dir/node1"

[[node]]
name = "node2"
replication = ["127.0.0.2:$(free_port 127.0.0.2)"]
path_prefix = "$dir/node2"

[[module]]
name = "$module"
directories = ["$directory"]
TOML
}
