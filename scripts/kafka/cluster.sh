#!/usr/bin/env bash
# A 3-broker Apache Kafka 4.x KRaft cluster on this machine for the chaos suite, from the same
# jars as broker.sh: nodes 1..3, each a combined broker + controller with its own storage in
# .cache/kafka/cluster/nodeN, brokers on 127.0.0.1:29092-29094, controllers on 29192-29194.
# Topics default to replication factor 3 with min.insync.replicas=2.
#
#   cluster.sh start       fresh storage for all three, start them, wait until every broker is
#                          registered with the active controller and answers
#   cluster.sh stop        stop all three (SIGTERM, then SIGKILL)
#   cluster.sh status      one line per node; exit 0 when all three answer
#   cluster.sh pid N       print node N's pid
#   cluster.sh kill N      SIGKILL node N (a crash); its storage is kept
#   cluster.sh restart N   start node N again on its storage, wait until it answers
#   cluster.sh bootstrap   print the bootstrap servers
#
# Idempotent: start on a running cluster, stop on a stopped one, kill of a dead node and
# restart of a running one do nothing. The single broker (broker.sh) is independent of it.
#
# Environment: KAFKA_START_TIMEOUT (s, default 120) bounds every wait for a broker to answer;
# KAFKA_JVM_EXTRA adds JVM flags; KAFKA_CACHE_DIR (default .cache/kafka) and KAFKA_PORT_OFFSET
# (added to every port) run a second copy beside the usual one; KAFKA_CLUSTER_HEAP sets each
# node's heap (default 768m).
set -euo pipefail

LOG_TAG=cluster
# shellcheck source=scripts/kafka/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CLUSTER=$CACHE/cluster
NODES=(1 2 3)
# Three of these beside the single broker's 1 GiB: ~3.3 GiB of heap on a 24 GiB machine.
HEAP=${KAFKA_CLUSTER_HEAP:-768m}
# C1 only: a node needs about half the CPU to start (measured 6.5 -> 3.8 s), which on two
# cores shared by three nodes, the single broker and the tests is most of a start or
# restart. Peak throughput is lower; the chaos suite publishes a few hundred records/s.
JVM_FLAGS=(-XX:TieredStopAtLevel=1)

node_dir() { echo "$CLUSTER/node$1"; }
broker_port() { echo $((29091 + PORT_OFFSET + $1)); }
controller_port() { echo $((29191 + PORT_OFFSET + $1)); }

voters() {
  local n voters=()
  for n in "${NODES[@]}"; do voters+=("$n@$HOST:$(controller_port "$n")"); done
  (
    IFS=,
    echo "${voters[*]}"
  )
}

bootstrap() {
  local n servers=()
  for n in "${NODES[@]}"; do servers+=("$HOST:$(broker_port "$n")"); done
  (
    IFS=,
    echo "${servers[*]}"
  )
}

node_up() { jvm_pid "$(node_dir "$1")" >/dev/null && port_open "$(broker_port "$1")"; }

all_up() {
  local n
  for n in "${NODES[@]}"; do node_up "$n" || return 1; done
}

check_node() {
  [[ ${1:-} =~ ^[123]$ ]] || {
    echo "usage: $0 ${2:-kill} N   (N = 1, 2 or 3)" >&2
    exit 2
  }
}

status() {
  local n pid state rc=0
  for n in "${NODES[@]}"; do
    if pid=$(jvm_pid "$(node_dir "$n")"); then
      if port_open "$(broker_port "$n")"; then state="up (pid $pid)"; else state="not answering (pid $pid)"; rc=1; fi
    else
      state=down
      rc=1
    fi
    echo "node$n $HOST:$(broker_port "$n") $state"
  done
  return "$rc"
}

# Stops all nodes at the same time: one after the other, the last ones would wait in their
# controlled shutdown for a controller quorum that is gone.
stop_nodes() {
  local n
  for n in "${NODES[@]}"; do
    (
      if stop_jvm "$(node_dir "$n")"; then log "node$n stopped"; fi
    ) &
  done
  wait
}

stop() {
  local n any=0
  for n in "${NODES[@]}"; do
    [[ -n $(jvm_pid "$(node_dir "$n")" || stray_pids "$(node_dir "$n")") ]] && any=1
  done
  if ((any)); then stop_nodes; else log "not running"; fi
}

# wait_nodes DEADLINE N:OFFSET...: waits until each node N has started since OFFSET.
wait_nodes() {
  local deadline=$1 item n
  shift
  for item in "$@"; do
    n=${item%%:*}
    if ! wait_ready "$(node_dir "$n")" "${item#*:}" "$deadline" "$(broker_port "$n")"; then
      print_log_tail "$(node_dir "$n")"
      return 1
    fi
  done
}

start() {
  if all_up; then
    log "already running ($(bootstrap))"
    return 0
  fi
  local n began=$SECONDS cluster_id dir pid formats=() waits=()
  # Some nodes left from an earlier run (one killed by a test, say): start all afresh.
  stop_nodes >/dev/null 2>&1
  for n in "${NODES[@]}"; do
    if port_open "$(broker_port "$n")" || port_open "$(controller_port "$n")"; then
      log "something else listens on port $(broker_port "$n") or $(controller_port "$n"); not starting"
      exit 1
    fi
  done
  fetch_jars
  ensure_tools
  # Fresh storage on every start, like the single broker; one cluster id formatted into all.
  rm -rf "$CLUSTER"
  cluster_id=$(new_cluster_id)
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    mkdir -p "$dir/data" "$dir/logs"
    sed -e "s#@NODE_ID@#$n#" -e "s#@BROKER_PORT@#$(broker_port "$n")#g" \
      -e "s#@CONTROLLER_PORT@#$(controller_port "$n")#g" -e "s#@DATA_DIR@#$dir/data#" \
      -e "s#@VOTERS@#$(voters)#" \
      "$HERE/cluster-node.properties.in" >"$dir/server.properties"
    # Static controller.quorum.voters: no --standalone / --initial-controllers.
    format_storage "$dir" "$cluster_id" &
    formats+=($!)
  done
  for pid in "${formats[@]}"; do
    wait "$pid" || { wait; log "formatting the storage failed"; exit 1; }
  done
  log "starting 3 brokers on $(bootstrap) (data in $CLUSTER)"
  for n in "${NODES[@]}"; do
    waits+=("$n:$(launch "$(node_dir "$n")" "$HEAP" "${JVM_FLAGS[@]}")")
  done
  if ! wait_nodes $((began + START_TIMEOUT)) "${waits[@]}"; then
    stop_nodes
    exit 1
  fi
  log "ready on $(bootstrap) after $((SECONDS - began))s"
}

kill_node() {
  check_node "${1:-}" kill
  if kill_jvm "$(node_dir "$1")"; then
    log "node$1 killed (SIGKILL); storage kept"
  else
    log "node$1 not running"
  fi
}

restart_node() {
  check_node "${1:-}" restart
  local n=$1 dir began=$SECONDS offset
  dir=$(node_dir "$n")
  if node_up "$n"; then
    log "node$n already running (pid $(jvm_pid "$dir"))"
    return 0
  fi
  if ! has_storage "$dir"; then
    log "no storage for node$n in $dir; use \`cluster.sh start\`"
    exit 1
  fi
  # Ours but not answering (wedged, or still starting): start it over.
  stop_jvm "$dir" 2>/dev/null || true
  if port_open "$(broker_port "$n")"; then
    log "something else answers on $HOST:$(broker_port "$n"); not restarting node$n"
    exit 1
  fi
  fetch_jars
  log "restarting node$n on $HOST:$(broker_port "$n") (existing storage)"
  offset=$(launch "$dir" "$HEAP" "${JVM_FLAGS[@]}")
  if ! wait_nodes $((began + START_TIMEOUT)) "$n:$offset"; then
    stop_jvm "$dir" || true
    exit 1
  fi
  log "node$n ready (pid $(jvm_pid "$dir")) after $((SECONDS - began))s"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  pid)
    check_node "${2:-}" pid
    jvm_pid "$(node_dir "$2")"
    ;;
  kill) kill_node "${2:-}" ;;
  restart) restart_node "${2:-}" ;;
  bootstrap) bootstrap ;;
  *)
    echo "usage: $0 {start|stop|status|pid N|kill N|restart N|bootstrap}" >&2
    exit 2
    ;;
esac
