#!/usr/bin/env bash
# The project's own Kafka broker: a single-node Apache Kafka 4.x (KRaft) on 127.0.0.1:19092,
# run from jars that Maven fetches once (pom.xml) into a git-ignored cache.
#
#   broker.sh start       fetch jars if needed, format fresh storage, start, wait until it answers
#   broker.sh stop        stop the broker this script started (SIGTERM, then SIGKILL)
#   broker.sh kill        SIGKILL the broker (a crash); its storage is kept for `restart`
#   broker.sh restart     start again on the existing storage (no format), wait until it answers
#   broker.sh status      exit 0 when the broker answers on the port
#   broker.sh pid         print the broker's pid (fault-injection tests SIGSTOP/SIGCONT it)
#   broker.sh secure-env  print KEY=value lines for a client of the SASL_SSL listener
#   broker.sh fetch       only fetch the jars
#
# Besides PLAINTEXT on 19092 the broker has a SASL_SSL listener on 127.0.0.1:19094
# (SCRAM-SHA-512, user `eventbus`, a password drawn at each start; a CA and a server
# certificate made at each start with openssl). They live in .cache/kafka/run/: tls/ca.pem
# for clients, secure.env for `secure-env`.
#
# Idempotent: start or restart on a running broker, and stop or kill on a stopped one, do nothing.
#
# Environment: KAFKA_START_TIMEOUT (s, default 120) bounds every wait for a broker to answer;
# KAFKA_JVM_EXTRA adds JVM flags; KAFKA_CACHE_DIR (default .cache/kafka) and KAFKA_PORT_OFFSET
# (added to every port) run a second copy beside the usual one.
set -euo pipefail

LOG_TAG=broker
# shellcheck source=scripts/kafka/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUN=$CACHE/run
TLS=$RUN/tls
SECURE_ENV=$RUN/secure.env
PORT=$((19092 + PORT_OFFSET))
CONTROLLER_PORT=$((19093 + PORT_OFFSET))
SECURE_PORT=$((19094 + PORT_OFFSET))
HEAP=1g
SCRAM_USER=eventbus

our_pid() { jvm_pid "$RUN"; }

make_certs() {
  # A throwaway CA and a server certificate for 127.0.0.1 and localhost (librdkafka checks
  # the name it connected to against the SAN). EC P-256: key generation takes milliseconds,
  # where RSA would add a noticeable part of a second to every start.
  mkdir -p "$TLS"
  (
    cd "$TLS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=tradecore-eventbus test CA" -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -days 3650 -extfile server.ext -out server.pem 2>/dev/null
    # Kafka's PEM keystore: the unencrypted PKCS#8 key followed by the certificate chain.
    cat server.key server.pem ca.pem >server.keystore.pem
    chmod 600 ./*.key server.keystore.pem
  ) || { log "making the TLS certificates with openssl failed"; exit 1; }
}

# The whole run directory, fresh: storage, certificates, the SCRAM user and its password.
prepare_fresh() {
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/logs"
  sed -e "s#@DATA_DIR@#$RUN/data#" -e "s#@TLS_DIR@#$TLS#" -e "s#@PORT@#$PORT#g" \
    -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@SECURE_PORT@#$SECURE_PORT#g" \
    "$HERE/server.properties.in" >"$RUN/server.properties"
  make_certs
  local password cluster_id
  # Hex only: the value goes into StorageTool's `[name=...,password=...]` syntax unquoted.
  password=$(openssl rand -hex 16)
  cluster_id=$(new_cluster_id)
  format_storage "$RUN" "$cluster_id" --standalone \
    --add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$password]" || exit 1
  (
    umask 077
    cat >"$SECURE_ENV" <<EOF
KAFKA_SECURITY_PROTOCOL=SASL_SSL
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_SASL_USERNAME=$SCRAM_USER
KAFKA_SASL_PASSWORD=$password
KAFKA_SSL_CA_LOCATION=$TLS/ca.pem
REDPANDA_BOOTSTRAP_SERVERS=$HOST:$SECURE_PORT
EOF
  )
}

# Starts the JVM on whatever storage is in $RUN and waits until both listeners answer.
run_and_wait() {
  local what=$1 began=$SECONDS offset
  log "$what Kafka on $HOST:$PORT and SASL_SSL $HOST:$SECURE_PORT (data in $RUN)"
  offset=$(launch "$RUN" "$HEAP")
  if ! wait_ready "$RUN" "$offset" $((began + START_TIMEOUT)) "$PORT" "$SECURE_PORT"; then
    print_log_tail "$RUN"
    stop_jvm "$RUN" || true
    exit 1
  fi
  log "ready on $HOST:$PORT (pid $(our_pid)) after $((SECONDS - began))s"
}

start() {
  if our_pid >/dev/null && port_open "$PORT"; then
    log "already running (pid $(our_pid)) on $HOST:$PORT"
    return 0
  fi
  if port_open "$PORT"; then
    log "something else already answers on $HOST:$PORT (a Redpanda from docker-compose?); using it"
    return 0
  fi
  # Ours but not answering (still starting, or wedged): it would hold the storage we wipe.
  stop_jvm "$RUN" 2>/dev/null || true
  fetch_jars
  ensure_tools
  # Fresh storage on every start: tests create their own uniquely named topics and groups.
  prepare_fresh
  run_and_wait starting
}

restart() {
  if our_pid >/dev/null && port_open "$PORT"; then
    log "already running (pid $(our_pid)) on $HOST:$PORT"
    return 0
  fi
  if ! has_storage "$RUN"; then
    log "no broker storage in $RUN to restart on; use \`broker.sh start\`"
    exit 1
  fi
  if port_open "$PORT"; then
    log "something else answers on $HOST:$PORT; not restarting ours beside it"
    exit 1
  fi
  stop_jvm "$RUN" 2>/dev/null || true
  fetch_jars
  run_and_wait "restarting (existing storage)"
}

stop() {
  if stop_jvm "$RUN"; then
    log "stopped"
  else
    log "not running"
  fi
}

kill_broker() {
  if kill_jvm "$RUN"; then
    log "killed (SIGKILL); storage kept in $RUN"
  else
    log "not running"
  fi
}

secure_env() {
  if [[ ! -f $SECURE_ENV ]]; then
    log "no $SECURE_ENV: the SASL_SSL listener exists only on a broker started by \`broker.sh start\`"
    exit 1
  fi
  cat "$SECURE_ENV"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill_broker ;;
  restart) restart ;;
  status) port_open "$PORT" ;;
  pid) our_pid ;;
  secure-env) secure_env ;;
  fetch) fetch_jars ;;
  *)
    echo "usage: $0 {start|stop|kill|restart|status|pid|secure-env|fetch}" >&2
    exit 2
    ;;
esac
