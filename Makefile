# stockguard: the commands a newcomer needs. `make demo` runs the local flash-sale demo; `make test`
# runs every gate and test. Both set up what they need (the Python venv with the emulator and tools).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := python3
export SAM_CLI_TELEMETRY := 0
export RUST_BACKTRACE ?= 0

.PHONY: setup lint test bench demo build deploy clean

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

# nextest when installed (one summary line, a process per test); plain cargo test otherwise.
test: lint
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

build: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build --template template.yaml --beta-features

deploy: build
	$(VENV)/bin/sam deploy --guided

clean:
	cargo clean
	rm -rf .aws-sam
