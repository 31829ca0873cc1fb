# stockguard: the commands a newcomer needs. `make demo` runs the local flash-sale demo; `make test`
# runs every gate and test. Both set up what they need (the Python venv with the emulator and tools).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := python3
export SAM_CLI_TELEMETRY := 0
export RUST_BACKTRACE ?= 0

.PHONY: setup lint test bench demo chaos local-up local-down lambda-binaries build deploy clean

setup: $(VENV)/.installed chromium

# Headless Chromium renders the audit report in its test (shared/audit/tests/report_renders.rs).
# Installed once, quietly; without apt-get the test says it skipped.
.PHONY: chromium report-check
chromium:
	if ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not installed and no apt-get: the audit report render check will skip"; fi; \
	fi

report-check: chromium
	cargo test -p stockguard-audit --test report_renders -- --nocapture

$(VENV)/.installed: infra/requirements.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r infra/requirements.txt
	touch $@

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml

# The emulator's own tests first (infra/tests: its patches keep moto's behaviour), then the Rust
# tests: nextest when installed (one summary line, a process per test); plain cargo test otherwise.
test: lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider infra/tests
	if cargo nextest --version >/dev/null 2>&1; then \
	  infra/with-emulator.sh cargo nextest run --workspace --no-fail-fast; \
	else \
	  infra/with-emulator.sh cargo test --workspace --all-targets --no-fail-fast; \
	fi

# The fuzz targets (each crate's tests/fuzz*.rs) with many more cases than `make test` runs, built
# optimised. No emulator needed. FUZZ_CASES=N changes the count.
.PHONY: fuzz
FUZZ_CASES ?= 200000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release --no-fail-fast \
	  -p stockguard-domain -p stockguard-channels -p stockguard-handlers -p stockguard-audit --test 'fuzz*'

# Figures, not pass/fail. The emulator parts run twice, on the old set-up (one stock moto process)
# and on the current one, so the two are compared on the same machine in the same run.
bench: setup
	cargo bench -p stockguard-domain --bench reservation_decisions
	echo "== model-based histories on the in-memory twin (tests/tests/model.rs, timed) =="
	cargo bench -p stockguard-tests --bench model_histories
	echo "== sync-gap audit: replay throughput, and each strategy on simulated histories =="
	cargo bench -p stockguard-audit --bench audit
	cargo build --release -p stockguard-local $(addprefix -p ,$(LAMBDA_PACKAGES))
	infra/with-emulator.sh target/release/stockguard-bench functions
	for part in reservations channels; do \
	  echo "== $$part, old emulator set-up (STOCKGUARD_EMULATOR=plain) =="; \
	  STOCKGUARD_EMULATOR=plain infra/with-emulator.sh target/release/stockguard-bench $$part; \
	  echo "== $$part, current emulator set-up =="; \
	  infra/with-emulator.sh target/release/stockguard-bench $$part; \
	done
	echo "== orders on the fake channels, through each channel's own protocol, to the state =="
	infra/with-emulator.sh target/release/stockguard-bench orders
	echo "== dynamic buffers: one recompute over a 50,000-SKU catalogue =="
	infra/with-emulator.sh target/release/stockguard-bench buffers
	echo "== the demo's flash sale, zero buffers against dynamic buffers =="
	infra/with-emulator.sh target/release/stockguard-demo

demo: setup
	cargo build -p stockguard-local --bin stockguard-demo
	infra/with-emulator.sh target/debug/stockguard-demo

# The whole local stack under a mixed load with faults at every layer (queues losing, duplicating
# and reordering deliveries, the runtime killed mid-batch, channel 429/5xx/timeouts/slowness and
# changes behind our back, producer replays, stale sequences, reused ids, garbage), then one sweep
# and one reconciliation, checked against the load generator's ledger. Prints one table; fails on
# any violation. SEED=N replays a run's decisions; CHAOS_ARGS passes more options (--seconds N,
# --kills N, --drop P, --duplicate P, --inject double-apply|lose-event).
SEED ?=
CHAOS_ARGS ?=
chaos: setup
	cargo build -p stockguard-local --bin stockguard-chaos
	STOCKGUARD_CHAOS_SEED=$(SEED) infra/with-emulator.sh target/debug/stockguard-chaos $(CHAOS_ARGS)

# The stack stays up in the background until `make local-down`; .local/stack.json describes it.
local-up: setup
	cargo build -p stockguard-local --bin stockguard-local-up --bin stockguard-demo
	cargo build -p stockguard-cli
	mkdir -p .local
	if [ -f .local/pid ] && kill -0 $$(cat .local/pid) 2>/dev/null; then echo "already up (make local-down first)"; exit 1; fi
	rm -f .local/stack.json
	setsid nohup infra/with-emulator.sh target/debug/stockguard-local-up >.local/local.log 2>&1 </dev/null & echo $$! >.local/pid
	for _ in $$(seq 1 240); do [ -f .local/stack.json ] && break; sleep 0.5; done
	[ -f .local/stack.json ] || { tail -n 20 .local/local.log; exit 1; }
	cat .local/stack.json
	@echo "CLI: target/debug/stockguard channels list   (make local-down to stop)"

local-down:
	if [ -f .local/pid ]; then kill -- -$$(cat .local/pid) 2>/dev/null || true; rm -f .local/pid .local/stack.json; fi

# arm64 artefacts for every function. One cargo-lambda build compiles the whole set at once (release,
# cross-compiled with the venv's zig, no Docker); SAM then packages the prebuilt binaries: each
# function's `BuildMethod: makefile` runs `make build-<LogicalId>`, which copies the bootstrap named by
# that function's `BuildProperties: Binary` in template.yaml. samconfig.toml builds in source, so a
# plain `sam build` works too (the first function builds the set, the rest find it fresh).
LAMBDA_PACKAGES := $(notdir $(patsubst %/Cargo.toml,%,$(wildcard functions/*/Cargo.toml)))
# The release profile in Cargo.toml is used as it is: cargo-lambda's own defaults (LTO, one codegen
# unit, abort on panic) would multiply the build time and turn a handler panic into a crash.
lambda-binaries: setup
	rustup target add aarch64-unknown-linux-gnu >/dev/null
	cargo fetch --quiet
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_NET_OFFLINE=true \
	  $(VENV)/bin/cargo-lambda lambda build --release --arm64 --disable-optimizations \
	  $(addprefix -p ,$(LAMBDA_PACKAGES))

# The binary a function runs, read from its Metadata in template.yaml.
binary_of = $(shell awk -v id='  $(1):' '$$0 == id {f = 1; next} f && /^  [^ ]/ {exit} f && $$1 == "Binary:" {print $$2; exit}' template.yaml)

build-%: lambda-binaries
	@bin="$(call binary_of,$*)"; [ -n "$$bin" ] || { echo "$*: no BuildProperties.Binary in template.yaml" >&2; exit 1; }; \
	  install -D -m 755 "target/lambda/$$bin/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"

build: lambda-binaries
	$(VENV)/bin/sam build --template template.yaml
	ls .aws-sam/build/*/bootstrap | wc -l | xargs -I{} echo "packaged {} bootstrap binaries"

deploy: build
	$(VENV)/bin/sam deploy --guided

clean:
	cargo clean
	rm -rf .aws-sam
