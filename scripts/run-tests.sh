#!/usr/bin/env bash
# `make test`: lint, start what the tests need, run cargo test and pytest, stop what this
# script started (also on failure). Exits non-zero if anything failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p .cache
PY=.venv/bin/python

started_broker=0
started_pg=0
cleanup() {
  ((started_broker)) && scripts/kafka/broker.sh stop
  ((started_pg)) && scripts/postgres/pg.sh stop
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
failed=()

# The broker takes a while to start; let it boot while the Rust side is checked.
if ! scripts/kafka/broker.sh status; then
  started_broker=1
  scripts/kafka/broker.sh start >.cache/broker-start.log 2>&1 &
  broker_pid=$!
else
  broker_pid=
fi

step "lint"
make --no-print-directory lint || failed+=(lint)

step "cargo test"
cargo test --release || failed+=("cargo test")

# The wheel reuses cargo test's and maturin develop's release artifacts (a relink), and
# tests/distribution/test_wheel_install.py installs it with no Rust toolchain.
step "wheel"
make --no-print-directory wheel || failed+=(wheel)

step "start Kafka and PostgreSQL"
if [[ -n $broker_pid ]] && ! wait "$broker_pid"; then
  cat .cache/broker-start.log >&2
  echo "the Kafka broker did not start" >&2
  exit 1
fi
if ! scripts/postgres/pg.sh status; then
  started_pg=1
  scripts/postgres/pg.sh start || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

step "pytest"
TRADECORE_PG_URL=$(scripts/postgres/pg.sh url) $PY -m pytest -p no:cacheprovider "$@" || failed+=(pytest)

if ((${#failed[@]})); then
  printf '\nFAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '\nall checks passed\n'
