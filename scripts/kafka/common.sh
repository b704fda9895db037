# shellcheck shell=bash
# Shared by broker.sh (the single broker) and cluster.sh (three brokers): sourced, not run.
# The caller sets LOG_TAG before sourcing and `set -euo pipefail` itself.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/scripts/kafka
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.cache/kafka}
LIBS=$CACHE/libs
HOST=127.0.0.1
START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
# Added to every port of both scripts, to run a second copy (with its own KAFKA_CACHE_DIR)
# beside the one the suite is using, e.g. to try a change to these scripts.
PORT_OFFSET=${KAFKA_PORT_OFFSET:-0}
[[ $PORT_OFFSET =~ ^[0-9]+$ ]] || {
  printf 'KAFKA_PORT_OFFSET must be a number, not %s\n' "$PORT_OFFSET" >&2
  exit 2
}

log() { printf '[%s] %s\n' "${LOG_TAG:-kafka}" "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v openssl >/dev/null || missing+=(openssl)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

fetch_jars() {
  # The stamp carries the POM's hash, so changing a version in pom.xml fetches again.
  local stamp
  stamp="$LIBS/.pom-$(sha256sum "$HERE/pom.xml" | cut -c1-16)"
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

new_cluster_id() {
  # Kafka's own Uuid.randomUuid() never returns an id that starts with '-', which argparse
  # would read as an option (1 start in 64 failed that way); generate the same kind of id.
  python3 -c '
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
'
}

# format_storage DIR CLUSTER_ID [StorageTool options...]: formats DIR/server.properties' log.dirs.
format_storage() {
  local dir=$1 cluster_id=$2
  shift 2
  # A short-lived tool: with C1 only and the serial collector it needs half the CPU time
  # (measured 1.9 -> 1.0 s, i.e. ~2 s less of every start on a busy machine); C2 and a
  # concurrent collector only pay off in the long-running broker.
  java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
    kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$dir/server.properties" "$@" \
    >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; return 1; }
}

# Storage exists once StorageTool has written meta.properties into the (only) log dir.
has_storage() { [[ -f $1/data/logs/meta.properties ]]; }

# jvm_pid DIR: the pid of the broker JVM started from DIR/server.properties, if it is alive.
# The pidfile alone is not trusted: after a crash the pid may belong to another process (or
# be a zombie, whose cmdline is empty), and stop/kill must never signal someone else's.
jvm_pid() {
  local dir=$1 pid
  [[ -f $dir/broker.pid ]] || return 1
  pid=$(<"$dir/broker.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  is_ours "$pid" "$dir" || return 1
  echo "$pid"
}

# is_ours PID DIR: PID runs with DIR/server.properties as one of its arguments.
# (grep -q reads a process substitution, not a pipe: with pipefail, a writer that grep
# leaves behind when it stops at the first match would turn the match into a failure.)
is_ours() {
  grep -qxF "$2/server.properties" <(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline")
}

# stray_pids DIR: JVMs (broker or StorageTool) run on DIR/server.properties that the pidfile
# does not name, e.g. left by a start that was interrupted. Matched on the exact path.
stray_pids() {
  local dir=$1 props pid
  # shellcheck disable=SC2016  # the $ in the sed expression is a character to escape
  props=$(printf '%s' "$dir/server.properties" | sed 's/[][\.*^$()+?{}|]/\\&/g')
  for pid in $(pgrep -f -- "(kafka\.Kafka|kafka\.tools\.StorageTool) .*$props( |\$)" || true); do
    if is_ours "$pid" "$dir"; then echo "$pid"; fi
  done
  return 0
}

# launch DIR HEAP [JVM FLAG...]: starts the broker of DIR/server.properties in the background and records
# its pid; prints the size of its server.log before the start, so that readiness is judged
# on what this run logs (a restart appends to the log of the previous run).
launch() {
  local dir=$1 heap=$2 offset
  shift 2
  mkdir -p "$dir/logs"
  offset=$(stat -c %s "$dir/logs/server.log" 2>/dev/null || echo 0)
  # stdin from /dev/null: a caller reading our output through a pipe (the chaos suite) must
  # see EOF when this script ends, not when the broker does.
  # shellcheck disable=SC2086  # KAFKA_JVM_EXTRA holds several flags
  nohup java "-Xms$heap" "-Xmx$heap" -XX:+UseZGC "$@" ${KAFKA_JVM_EXTRA:-} \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/stdout.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + START_TIMEOUT))
  echo "$pid" >"$dir/broker.pid"
  # Until the forked shell has exec'd java, jvm_pid would not recognise it as ours (its
  # command line is still this script's) and the caller would take it for dead.
  until jvm_pid "$dir" >/dev/null || ! alive "$pid" || ((SECONDS >= deadline)); do sleep 0.01; done
  echo "$offset"
}

# started DIR OFFSET: the broker logged that it started after OFFSET. In KRaft mode it logs
# this once it has caught up with the metadata log and the controller has unfenced it, i.e.
# there is an active controller and this broker is registered.
started() {
  local log=$1/logs/server.log offset=$2
  [[ -f $log ]] || return 1
  # Should log4j ever truncate instead of appending, read the whole file.
  (($(stat -c %s "$log") >= offset)) || offset=0
  grep -q 'Kafka Server started' <(tail -c +"$((offset + 1))" "$log")
}

# wait_ready DIR OFFSET DEADLINE PORT...: waits until the broker of DIR has started and
# answers on every PORT. Returns 1 (with a message) if it exits or DEADLINE (in $SECONDS)
# passes first.
wait_ready() {
  local dir=$1 offset=$2 deadline=$3 port
  shift 3
  while :; do
    if started "$dir" "$offset"; then
      for port in "$@"; do
        port_open "$port" || continue 2
      done
      return 0
    fi
    if ! jvm_pid "$dir" >/dev/null; then
      log "the broker of $dir exited during startup"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "the broker of $dir did not answer within ${START_TIMEOUT}s"
      return 1
    fi
    sleep 0.5
  done
}

print_log_tail() {
  local f
  for f in "$1/logs/server.log" "$1/stdout.log"; do
    if [[ -f $f ]]; then
      log "---- last lines of $f"
      tail -n 40 "$f" >&2
    fi
  done
}

# stop_jvm DIR: SIGTERM (controlled shutdown), SIGKILL after 30 s; also ends strays.
stop_jvm() {
  local dir=$1 pids pid
  pids=$( (jvm_pid "$dir" || true; stray_pids "$dir") | sort -u)
  if [[ -z $pids ]]; then
    rm -f "$dir/broker.pid"
    return 1
  fi
  for pid in $pids; do
    # A paused broker (SIGSTOP in a fault test) cannot act on SIGTERM until it is continued.
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 60); do
    alive "$pids" || break
    sleep 0.5
  done
  if alive "$pids"; then
    log "$dir: did not stop within 30s; killing"
    kill_pids "$pids"
  fi
  rm -f "$dir/broker.pid"
}

# kill_jvm DIR: SIGKILL, storage kept; returns once the process is gone.
kill_jvm() {
  local dir=$1 pids
  pids=$( (jvm_pid "$dir" || true; stray_pids "$dir") | sort -u)
  if [[ -z $pids ]]; then
    rm -f "$dir/broker.pid"
    return 1
  fi
  kill_pids "$pids"
  rm -f "$dir/broker.pid"
}

kill_pids() {
  local pid deadline=$((SECONDS + START_TIMEOUT))
  for pid in $1; do kill -KILL "$pid" 2>/dev/null || true; done
  # SIGKILL is asynchronous: wait until the kernel has ended them (and closed their ports),
  # so that a restart right after finds the ports and the storage lock free.
  while alive "$1"; do
    if ((SECONDS >= deadline)); then
      log "pid(s) $1 still alive ${START_TIMEOUT}s after SIGKILL"
      return 1
    fi
    sleep 0.05
  done
}

# alive PIDS: any of them is still a live process. A SIGKILLed JVM first shows its main
# thread as a zombie while its other threads are still exiting and holding its sockets and
# files; it is gone once only that zombie is left (or nothing at all).
alive() {
  local pid state tasks
  for pid in $1; do
    [[ -d /proc/$pid ]] || continue
    # The state follows "pid (comm) "; comm may hold spaces.
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || continue
    if [[ $state == Z ]]; then
      tasks=("/proc/$pid/task"/*)
      ((${#tasks[@]} > 1)) || continue
    fi
    return 0
  done
  return 1
}
