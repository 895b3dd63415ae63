#!/usr/bin/env bash
# Apache Kafka (KRaft, combined broker+controller nodes) as the reference
# broker on this machine: the jars come from Maven Central, cached outside
# the repository; every mode runs in the foreground and stops cleanly on
# SIGTERM / Ctrl-C.
#
#   run.sh broker --port PORT --data-dir DIR [--set KEY=VALUE]...
#       one node (node.id 1) that is broker and sole controller-quorum voter;
#       the controller listener takes a free port (kept in DIR for restarts)
#   run.sh node --node-id ID --port PORT --controller-port CPORT --voters VOTERS
#               --data-dir DIR [--rack RACK] [--cluster-id ID] [--set KEY=VALUE]...
#       one node of an N-node cluster (the conformance suite's --cluster-cmd)
#   run.sh cluster --nodes N --base-port PORT --data-dir DIR [--set KEY=VALUE]...
#       N nodes on 127.0.0.1: client ports PORT..PORT+N-1, controller ports
#       PORT+N..PORT+2N-1, racks rack-0..rack-2, node I's files in DIR/node-I
#   run.sh tool CLASS [ARGS...]   one of Kafka's tools, e.g.
#       org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#   run.sh fetch | classpath      fetch the jars only | print the class path
#
# Environment: KAFKA_REFERENCE_VERSION (default 4.4.0), KAFKA_REFERENCE_CACHE
# (default ~/.cache/oxka-kafka-reference), KAFKA_REFERENCE_HEAP (default
# -Xms128m -Xmx512m), KAFKA_REFERENCE_JVM_OPTS (extra JVM options),
# KAFKA_REFERENCE_LOG_LEVEL (root log level, default INFO). docs/kafka-reference.md
# has the conformance-suite command lines.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
VERSION="${KAFKA_REFERENCE_VERSION:-4.4.0}"
CACHE="${KAFKA_REFERENCE_CACHE:-$HOME/.cache/oxka-kafka-reference}/$VERSION"
LIBS="$CACHE/libs"
HOST=127.0.0.1

usage() { sed -n '2,24p' "$SELF" | sed 's/^# \{0,1\}//'; }
die() { echo "kafka-reference: $*" >&2; exit 2; }

# ------------------------------------------------------------------ jars
# Resolved once per Kafka version and pom.xml content; a lock lets the N
# nodes of a cluster started at once share one download.
fetch_jars() {
    command -v java >/dev/null || die "java (17 or newer) is needed"
    local stamp
    stamp="$LIBS/.complete-$(sha256sum "$HERE/pom.xml" | cut -c1-16)"
    [ -f "$stamp" ] && return 0
    command -v mvn >/dev/null || die "mvn is needed to fetch Kafka's jars (apt-get install maven)"
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    if [ ! -f "$stamp" ]; then
        echo "kafka-reference: fetching Apache Kafka $VERSION jars into $LIBS" >&2
        local tmp="$CACHE/libs.tmp.$$"
        rm -rf "$tmp"
        mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" -Dkafka.version="$VERSION" \
            org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 \
            || { rm -rf "$tmp"; die "mvn could not resolve org.apache.kafka:kafka_2.13:$VERSION"; }
        rm -rf "$LIBS"
        mv "$tmp" "$LIBS"
        touch "$stamp"
    fi
    exec 9>&-
}

# Sets JAVA (an array): the JVM command line up to the main class.
java_cmd() {
    local level="$1" heap="${2:-${KAFKA_REFERENCE_HEAP:--Xms128m -Xmx512m}}"
    local -a heap_opts extra_opts
    read -r -a heap_opts <<< "$heap"
    read -r -a extra_opts <<< "${KAFKA_REFERENCE_JVM_OPTS:-}"
    JAVA=(java "${heap_opts[@]}" -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError
        -Djava.awt.headless=true ${extra_opts[@]+"${extra_opts[@]}"}
        "-Dlog4j2.configurationFile=$HERE/log4j2.properties"
        "-Dkafka.reference.log.level=$level" -cp "$LIBS/*")
}

# ------------------------------------------------------------------ helpers
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# A 22-character URL-safe base64 UUID, as `kafka-storage.sh random-uuid`
# prints (never starting with '-').
new_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
        [ "${id:0:1}" != "-" ] && { echo "$id"; return; }
    done
}

# ------------------------------------------------------------------ one node
# Writes DIR/server.properties, formats DIR/kafka-logs once (the format is
# idempotent: --ignore-formatted), then becomes the broker (exec, so SIGTERM
# reaches the JVM's shutdown hook: Kafka's controlled shutdown).
run_node() {
    local node_id="" port="" cport="" voters="" dir="" rack="" cid=""
    local -a sets=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --node-id) node_id="$2"; shift 2 ;;
            --port) port="$2"; shift 2 ;;
            --controller-port) cport="$2"; shift 2 ;;
            --voters) voters="$2"; shift 2 ;;
            --data-dir) dir="$2"; shift 2 ;;
            --rack) rack="$2"; shift 2 ;;
            --cluster-id) cid="$2"; shift 2 ;;
            --set) sets+=("$2"); shift 2 ;;
            *) die "node: unknown argument $1" ;;
        esac
    done
    [ -n "$node_id" ] && [ -n "$port" ] && [ -n "$cport" ] && [ -n "$voters" ] && [ -n "$dir" ] \
        || die "node needs --node-id --port --controller-port --voters --data-dir"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ -z "$cid" ]; then
        [ -f "$dir/cluster.id" ] || new_cluster_id > "$dir/cluster.id"
        cid="$(cat "$dir/cluster.id")"
    fi
    fetch_jars
    {
        echo "# written by tests/kafka-reference/run.sh"
        echo "node.id=$node_id"
        echo "process.roles=broker,controller"
        echo "listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport"
        echo "advertised.listeners=PLAINTEXT://$HOST:$port"
        echo "controller.listener.names=CONTROLLER"
        echo "inter.broker.listener.name=PLAINTEXT"
        echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        echo "controller.quorum.voters=$voters"
        echo "log.dirs=$dir/kafka-logs"
        [ -n "$rack" ] && echo "broker.rack=$rack"
        for kv in ${sets[@]+"${sets[@]}"}; do echo "$kv"; done
    } > "$dir/server.properties"
    if [ ! -f "$dir/kafka-logs/meta.properties" ]; then
        java_cmd WARN
        "${JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted \
            -t "$cid" -c "$dir/server.properties" >&2 \
            || die "formatting $dir/kafka-logs failed"
    fi
    cd "$dir"
    java_cmd "${KAFKA_REFERENCE_LOG_LEVEL:-INFO}"
    exec "${JAVA[@]}" kafka.Kafka "$dir/server.properties"
}

# ------------------------------------------------------------------ single broker
# Kafka's shipped config/server.properties for one node: the internal
# topics' replication factors (default 3) would otherwise leave groups and
# transactions without a coordinator. The retention check runs every 10 s
# instead of 5 min so that time retention shows within the suite's wait.
SINGLE_NODE_SETTINGS=(
    offsets.topic.replication.factor=1
    transaction.state.log.replication.factor=1
    transaction.state.log.min.isr=1
    share.coordinator.state.topic.replication.factor=1
    share.coordinator.state.topic.min.isr=1
    log.retention.check.interval.ms=10000
)

run_broker() {
    local port="" dir=""
    local -a args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --port) port="$2"; shift 2 ;;
            --data-dir) dir="$2"; shift 2 ;;
            --set) args+=(--set "$2"); shift 2 ;;
            *) die "broker: unknown argument $1" ;;
        esac
    done
    [ -n "$port" ] && [ -n "$dir" ] || die "broker needs --port and --data-dir"
    mkdir -p "$dir"
    # The controller port is kept so that a restart on the same data dir
    # finds the quorum where it was; a new one only if it was taken since.
    local cport=""
    [ -f "$dir/controller.port" ] && cport="$(cat "$dir/controller.port")"
    if [ -z "$cport" ] || ! port_free "$cport"; then
        cport="$(free_port)"
        echo "$cport" > "$dir/controller.port"
    fi
    local -a settings=()
    for kv in "${SINGLE_NODE_SETTINGS[@]}"; do settings+=(--set "$kv"); done
    run_node --node-id 1 --port "$port" --controller-port "$cport" \
        --voters "1@$HOST:$cport" --data-dir "$dir" \
        "${settings[@]}" ${args[@]+"${args[@]}"}
}

# ------------------------------------------------------------------ N nodes
run_cluster() {
    local n="" base="" dir=""
    local -a args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --nodes) n="$2"; shift 2 ;;
            --base-port) base="$2"; shift 2 ;;
            --data-dir) dir="$2"; shift 2 ;;
            --set) args+=(--set "$2"); shift 2 ;;
            *) die "cluster: unknown argument $1" ;;
        esac
    done
    [ -n "$n" ] && [ -n "$base" ] && [ -n "$dir" ] || die "cluster needs --nodes --base-port --data-dir"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    fetch_jars
    [ -f "$dir/cluster.id" ] || new_cluster_id > "$dir/cluster.id"
    local cid voters="" bootstrap="" i
    cid="$(cat "$dir/cluster.id")"
    for ((i = 1; i <= n; i++)); do
        voters+="${voters:+,}$i@$HOST:$((base + n + i - 1))"
        bootstrap+="${bootstrap:+,}$HOST:$((base + i - 1))"
    done
    local -a pids=()
    for ((i = 1; i <= n; i++)); do
        mkdir -p "$dir/node-$i"
        "$SELF" node --node-id "$i" --port "$((base + i - 1))" \
            --controller-port "$((base + n + i - 1))" --voters "$voters" \
            --data-dir "$dir/node-$i" --rack "rack-$(((i - 1) % 3))" --cluster-id "$cid" \
            ${args[@]+"${args[@]}"} > "$dir/node-$i/server.out" 2>&1 &
        pids+=("$!")
        echo "kafka-reference: node $i on $HOST:$((base + i - 1)), log $dir/node-$i/server.out" >&2
    done
    echo "kafka-reference: cluster $cid, bootstrap $bootstrap" >&2
    # shellcheck disable=SC2317 # called by the trap
    stop_all() {
        trap - TERM INT
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
        exit 0
    }
    trap stop_all TERM INT
    # Until a signal, or until every node has exited.
    wait "${pids[@]}" || true
}

# ------------------------------------------------------------------ main
[ $# -gt 0 ] || { usage >&2; exit 4; }
cmd="$1"; shift
case "$cmd" in
    broker) run_broker "$@" ;;
    node) run_node "$@" ;;
    cluster) run_cluster "$@" ;;
    fetch) fetch_jars; echo "$LIBS" ;;
    classpath) fetch_jars; echo "$LIBS/*" ;;
    tool)
        [ $# -gt 0 ] || die "tool needs a class name"
        fetch_jars
        java_cmd WARN "${KAFKA_REFERENCE_HEAP:--Xmx256m}"
        exec "${JAVA[@]}" "$@" ;;
    -h|--help) usage ;;
    *) usage >&2; exit 4 ;;
esac
