#!/usr/bin/env bash
# The project's own Kafka broker: a single-node Apache Kafka 4.x (KRaft) on 127.0.0.1:19092,
# run from jars that Maven fetches once (pom.xml) into a git-ignored cache.
#
#   broker.sh start    fetch jars if needed, format fresh storage, start, wait until it answers
#   broker.sh stop     stop the broker this script started (SIGTERM, then SIGKILL)
#   broker.sh status   exit 0 when the broker answers on the port
#   broker.sh pid      print the broker's pid (fault-injection tests SIGSTOP/SIGCONT it)
#   broker.sh fetch    only fetch the jars
#
# Idempotent: start on a running broker and stop on a stopped one do nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/scripts/kafka
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache/kafka}
LIBS=$CACHE/libs
RUN=$CACHE/run
PIDFILE=$RUN/broker.pid
HOST=127.0.0.1
PORT=19092
START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}

log() { printf '[broker] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

our_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

fetch_jars() {
  # The stamp carries the POM's hash, so changing a version in pom.xml fetches again.
  local stamp="$LIBS/.pom-$(sha256sum "$HERE/pom.xml" | cut -c1-16)"
  [[ -f $stamp ]] && return 0
  ensure_tools
  log "fetching Kafka jars from Maven Central into $LIBS"
  rm -rf "$LIBS.tmp"
  mkdir -p "$CACHE"
  if ! mvn -B -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >"$CACHE/mvn.log" 2>&1; then
    tail -n 40 "$CACHE/mvn.log" >&2
    log "mvn dependency:copy-dependencies failed (full log: $CACHE/mvn.log)"
    exit 1
  fi
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  touch "$stamp"
}

print_log_tail() {
  for f in "$RUN/logs/server.log" "$RUN/stdout.log"; do
    if [[ -f $f ]]; then
      log "---- last lines of $f"
      tail -n 40 "$f" >&2
    fi
  done
}

start() {
  if our_pid >/dev/null && port_open; then
    log "already running (pid $(our_pid)) on $HOST:$PORT"
    return 0
  fi
  if port_open; then
    log "something else already answers on $HOST:$PORT (a Redpanda from docker-compose?); using it"
    return 0
  fi
  fetch_jars
  ensure_tools
  # Fresh storage on every start: tests create their own uniquely named topics and groups.
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/logs"
  sed "s#@DATA_DIR@#$RUN/data#" "$HERE/server.properties.in" >"$RUN/server.properties"
  local cluster_id
  # Kafka's own Uuid.randomUuid() never returns an id that starts with '-', which argparse
  # would read as an option (1 start in 64 failed that way); generate the same kind of id.
  cluster_id=$(python3 -c '
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
')
  java -cp "$LIBS/*" -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$RUN/logs" \
    kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$RUN/server.properties" --standalone \
    >"$RUN/format.log" 2>&1 || { cat "$RUN/format.log" >&2; exit 1; }
  log "starting Kafka on $HOST:$PORT (data in $RUN)"
  nohup java -Xms1g -Xmx1g -XX:+UseZGC ${KAFKA_JVM_EXTRA:-} \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$RUN/logs" \
    -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" >"$RUN/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open && grep -q 'Kafka Server started' "$RUN/logs/server.log" 2>/dev/null; do
    if ! our_pid >/dev/null; then
      log "the broker exited during startup"
      print_log_tail
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "the broker did not answer within ${START_TIMEOUT}s"
      print_log_tail
      stop
      exit 1
    fi
    sleep 0.5
  done
  log "ready on $HOST:$PORT (pid $(cat "$PIDFILE"))"
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  # A paused broker (SIGSTOP in a fault test) cannot act on SIGTERM until it is continued.
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "did not stop within 30s; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) port_open ;;
  pid) our_pid ;;
  fetch) fetch_jars ;;
  *)
    echo "usage: $0 {start|stop|status|pid|fetch}" >&2
    exit 2
    ;;
esac
