# stockguard: the commands a newcomer needs. `make demo` runs the local flash-sale demo; `make test`
# runs every gate and test. Both set up what they need (the Python venv with the emulator and tools).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := python3
export SAM_CLI_TELEMETRY := 0
export RUST_BACKTRACE ?= 0

.PHONY: setup lint test bench demo local-up local-down build deploy clean

setup: $(VENV)/.installed

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

bench: setup
	cargo bench -p stockguard-domain --bench reservation_decisions
	cargo build --release -p stockguard-local --bin stockguard-bench
	infra/with-emulator.sh target/release/stockguard-bench

demo: setup
	cargo build -p stockguard-local --bin stockguard-demo
	infra/with-emulator.sh target/debug/stockguard-demo

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

# arm64 artefacts for every function, cross-compiled by cargo-lambda with the venv's zig. Crates are
# fetched first; the build itself then runs offline (no Docker, no AWS account).
build: setup
	rustup target add aarch64-unknown-linux-gnu
	cargo fetch
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_NET_OFFLINE=true \
	  $(VENV)/bin/sam build --template template.yaml --beta-features
	ls .aws-sam/build/*/bootstrap | wc -l | xargs -I{} echo "built {} bootstrap binaries"

deploy: build
	$(VENV)/bin/sam deploy --guided

clean:
	cargo clean
	rm -rf .aws-sam
