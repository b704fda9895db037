# tradecore-eventbus: `make help` lists the targets.
#
# Everything runs from a project-local virtualenv (.venv) that this Makefile creates. All
# cargo commands use the release profile so that librdkafka and OpenSSL (C, slow to build)
# are compiled once and shared by maturin, cargo test, clippy and the benches.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BROKER ?= memory
CARGO_FLAGS := --release

RUST_SOURCES := $(shell find rust -name '*.rs') Cargo.toml build.rs
PY_SOURCES := $(shell find python -name '*.py' -o -name '*.pyi' -o -name '*.sql')

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "maturin>=1.9,<2"
	touch $@

$(VENV)/.built: $(VENV)/.created $(RUST_SOURCES) $(PY_SOURCES) pyproject.toml
	@# The extension is abi3 (_core.abi3.so); a version-specific one left from an older
	@# build would be imported first.
	rm -f python/tradecore_eventbus/_core.cpython-*.so
	$(VENV)/bin/maturin develop $(CARGO_FLAGS) --extras dev,postgres
	touch $@

.PHONY: develop
develop: $(VENV)/.built ## Build the Rust core and install the package (editable) into .venv

.PHONY: wheel
wheel: $(VENV)/.created ## Build the release wheel into dist/: one abi3 wheel per platform (CPython >= 3.11)
	rm -f dist/tradecore_eventbus-*.whl
	$(VENV)/bin/maturin build $(CARGO_FLAGS) --interpreter $(PY) --out dist

.PHONY: demo
demo: develop ## Run the main job on the embedded default (BROKER=kafka: on the local Kafka)
	@if [ "$(BROKER)" = "kafka" ]; then scripts/kafka/broker.sh start; fi
	$(PY) -m tradecore_eventbus.demo --broker $(BROKER)

.PHONY: test
test: develop ## Build, start Kafka and PostgreSQL, lint, run cargo test and pytest, stop them
	scripts/run-tests.sh

.PHONY: test-rust
test-rust: ## Rust unit tests (librdkafka mock cluster; no broker needed)
	cargo test $(CARGO_FLAGS)

.PHONY: test-python
test-python: develop ## pytest only (expects the broker and PostgreSQL to be running)
	$(PY) -m pytest

.PHONY: lint
lint: develop ## rustfmt, clippy -D warnings, ruff, mypy --strict, stubtest of _core.pyi
	cargo fmt --check
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest tradecore_eventbus._core

.PHONY: fmt
fmt: develop ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests benches
	$(VENV)/bin/ruff check --fix python tests benches

.PHONY: bench
bench: develop ## Benchmarks vs aiokafka, confluent-kafka and pure Rust (starts the broker; SCALE=0.1 for a quick run)
	$(PIP) install -q "aiokafka[lz4]>=0.11" "confluent-kafka>=2.12" "matplotlib>=3.8"
	scripts/kafka/broker.sh start
	$(PY) benches/harness.py --scale $(or $(SCALE),1.0)
	cargo bench --bench core_paths
	$(PY) -m pytest benches/test_python_paths.py --benchmark-only -p no:cacheprovider

.PHONY: chaos
chaos: develop ## Chaos suite with full counts (broker, consumer, leader kills; rebalances), then a short fuzz run; updates docs/reliability.md
	@started=0; \
	if ! scripts/kafka/broker.sh status; then started=1; scripts/kafka/broker.sh start || exit 1; fi; \
	CHAOS_FULL=1 CHAOS_REPORT=1 $(PY) -m pytest tests/chaos -p no:cacheprovider; rc=$$?; \
	if [ $$started = 1 ]; then scripts/kafka/broker.sh stop; fi; \
	exit $$rc
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(CHAOS_FUZZ_SECONDS),60)

.PHONY: fuzz
fuzz: develop ## Fuzz event decoding, headers/DLQ reading and encoding (cargo-fuzz), FUZZ_SECONDS (600) per target
	scripts/fuzz/run.sh $(or $(FUZZ_SECONDS),600)

.PHONY: broker-start
broker-start: ## Start the local Kafka 4.x broker on 127.0.0.1:19092 (fetches jars once)
	scripts/kafka/broker.sh start

.PHONY: broker-stop
broker-stop: ## Stop the local Kafka broker
	scripts/kafka/broker.sh stop

.PHONY: pg-start
pg-start: ## Start the local PostgreSQL on 127.0.0.1:25432
	scripts/postgres/pg.sh start

.PHONY: pg-stop
pg-stop: ## Stop the local PostgreSQL
	scripts/postgres/pg.sh stop

.PHONY: clean
clean: ## Remove build outputs (keeps the Kafka jar cache)
	cargo clean
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
