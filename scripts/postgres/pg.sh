#!/usr/bin/env bash
# The project's own PostgreSQL for the outbox tests: Debian's server, a private data
# directory under .cache/postgres, listening on 127.0.0.1:25432 only.
#
#   pg.sh start   install the server if missing (apt-get), init the cluster, start, create the db
#   pg.sh stop    stop it
#   pg.sh status  exit 0 when it accepts connections
#   pg.sh url     print the connection URL the tests use
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${PG_CACHE_DIR:-$ROOT/.cache/postgres}
DATA=$CACHE/data
SOCK=$CACHE/run
# Below the kernel's ephemeral range (32768-60999): a client socket (say, to Kafka) can
# hold any port in that range and stop the server from binding it.
PORT=${PG_PORT:-25432}
DB=eventbus_test
URL="postgresql://postgres@127.0.0.1:$PORT/$DB"

log() { printf '[postgres] %s\n' "$*" >&2; }

pg_bin() {
  local ctl
  ctl=$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z $ctl ]]; then
    log "installing PostgreSQL with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    ctl=$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
  fi
  dirname "$ctl"
}

# initdb and postgres refuse to run as root: run them as the postgres system user then.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$CACHE" postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_ready() {
  local bin
  bin=$(pg_bin)
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres
}

start() {
  local bin
  bin=$(pg_bin)
  if is_ready; then
    log "already running on 127.0.0.1:$PORT"
  else
    mkdir -p "$CACHE" "$SOCK"
    if [[ $(id -u) -eq 0 ]]; then
      id postgres >/dev/null 2>&1 || useradd --system --home-dir "$CACHE" postgres
      chown -R postgres "$CACHE"
    fi
    if [[ ! -f $DATA/PG_VERSION ]]; then
      as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >"$CACHE/initdb.log" 2>&1 \
        || { cat "$CACHE/initdb.log" >&2; exit 1; }
    fi
    # fsync off: the tests kill processes, never the machine, and it makes them much faster.
    if ! as_owner "$bin/pg_ctl" -D "$DATA" -l "$CACHE/server.log" -w -t 60 \
      -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null; then
      log "PostgreSQL did not start; last lines of its log:"
      tail -n 30 "$CACHE/server.log" >&2 || true
      exit 1
    fi
    log "ready on 127.0.0.1:$PORT"
  fi
  if ! "$bin/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
  fi
}

stop() {
  local bin
  bin=$(pg_bin)
  if [[ -f $DATA/postmaster.pid ]]; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    log "stopped"
  else
    log "not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) is_ready ;;
  url) echo "$URL" ;;
  *)
    echo "usage: $0 {start|stop|status|url}" >&2
    exit 2
    ;;
esac
