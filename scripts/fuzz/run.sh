#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets in fuzz/ (cargo-fuzz, nightly) and runs each for
# SECONDS of wall clock, one after another with one job (decision 56). The committed corpus
# (fuzz/corpus/<target>) and seeds (fuzz/seeds/<target>) start each run and are not
# modified: new inputs go to fuzz/target/corpus/<target>. A crash stops the run with a non-zero exit; its input is in
# fuzz/artifacts/<target>/ (replay it with `cargo +nightly fuzz run --fuzz-dir fuzz <target>
# <file>`).
#
# Usage: scripts/fuzz/run.sh SECONDS [TARGET...]
# UPDATE_CORPUS=1: afterwards, fold what the run found into fuzz/corpus/<target>, minimized
# (libFuzzer's set-cover merge on edge coverage without hit counts: a few hundred small
# files that reach every edge the run reached; hit-count features would keep thousands).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

seconds=${1:?usage: scripts/fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
((${#targets[@]})) || targets=(decode_event headers encode_events)

# The targets embed the virtualenv's interpreter (pyo3 `auto-initialize`) and import the
# package from python/ with its dependencies from .venv (fuzz/src/lib.rs).
export PYO3_PYTHON="$ROOT/.venv/bin/python"
# ... and its libpython, not whichever libpython3.x the loader finds first.
LD_LIBRARY_PATH="$("$PYO3_PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
# The embedded interpreter keeps its allocations until exit: leak reports would be noise.
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

max_len() {
  case $1 in
    # Long enough for an integer beyond Python's 4,300-digit limit.
    decode_event) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

for target in "${targets[@]}"; do
  printf '\n==> fuzzing %s for %ss\n' "$target" "$seconds"
  committed="fuzz/corpus/$target"
  scratch="fuzz/target/corpus/$target"
  mkdir -p "$committed" "$scratch" "fuzz/artifacts/$target"
  # The hand-made seeds (fuzz/seeds.py), read by every run whatever the corpus keeps.
  seeds=()
  [[ -d fuzz/seeds/$target ]] && seeds=("fuzz/seeds/$target")
  log="fuzz/target/$target.log"
  # -a: with debug assertions (overflow checks in the code under test). -jobs/-workers
  # default to one process: the machine's two cores are shared.
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz -a "$target" "$scratch" "$committed" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len="$(max_len "$target")" \
    -dict=fuzz/json.dict -print_final_stats=1 2>&1 | tee "$log" |
    grep -aE '^#[0-9]+[[:space:]]+(INITED|DONE|pulse)|ERROR|panicked|Traceback|SUMMARY'
  status=${PIPESTATUS[0]}
  set -e
  runs=$(grep -aE '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  last=$(grep -aE '^#[0-9]+[[:space:]]+(DONE|pulse)' "$log" | tail -1 || true)
  printf '%s: exit %s, %s executions; %s\n' "$target" "$status" "${runs:-?}" "$last"
  if ((status != 0)); then
    echo "fuzz target $target failed: see $log and fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
  if [[ ${UPDATE_CORPUS:-0} == 1 ]]; then
    merged="fuzz/target/merged/$target"
    rm -rf "$merged" && mkdir -p "$merged"
    cargo +nightly fuzz run --fuzz-dir fuzz -a "$target" "$merged" "$committed" "$scratch" "${seeds[@]}" -- \
      -merge=1 -set_cover_merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=4096 -max_len="$(max_len "$target")" >"fuzz/target/$target.merge.log" 2>&1
    rm -rf "$committed" && mv "$merged" "$committed"
    echo "$target: corpus $(ls "$committed" | wc -l) files, $(du -sh "$committed" | cut -f1)"
  fi
done
