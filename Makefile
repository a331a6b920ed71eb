# litellm-rust developer and CI entry points.
#
#   make venv         .venv with litellm 1.110.2, OTel, pytest, maturin; the package built (release) and installed editable
#   make system-deps  Debian packages for the integration tests (prometheus, alertmanager, redis-server)
#   make wheel        portable wheel (abi3, manylinux2014, stripped) and sdist in dist/
#   make test         lint, Rust tests and clippy (warnings fail), the Python test suite (incl. the Prometheus/Alertmanager loop),
#                     the built wheel's tests in a fresh venv, then the exactness tests on each supported litellm release
#   make test-compat  the components' exactness tests on each litellm release of the support table, one venv each
#   make lint         ruff check, ruff format --check, cargo fmt --check
#   make demo         the real litellm proxy plain vs instrumented (quick), token-counting, rate-limit and routing
#                     benchmarks, then the Router demo (Python vs Rust)
#   make artifacts    the overview dashboard rendered from the loop test's Prometheus data, as a PNG
#   make clean        remove build outputs (keeps .venv and .venv-compat; `make distclean` removes them too)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := $(CURDIR)/.venv
VPY := $(VENV)/bin/python
# The pip step reruns only when pyproject.toml or this Makefile changes (or the stamp is removed).
PIP_STAMP := $(VENV)/.deps-stamp

# Run-time dependencies, the `test` and `proxy` extras (litellm's proxy limiter is tested too) and the
# `dev` extra's build tools, read from pyproject.toml (one list, not two). maturin installs the package itself.
PRINT_PY_DEPS = $(VPY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; extras = p["optional-dependencies"]; tools = [d for d in extras["dev"] if not d.startswith(p["name"])]; print("\n".join(p["dependencies"] + extras["test"] + extras["proxy"] + tools))'

# Nothing may download at run time: litellm's cost map and HF tokenizers stay local.
OFFLINE_ENV := LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_OFFLINE_MODE=true HF_HUB_OFFLINE=1

# maturin builds pyo3 with these set; giving cargo the same values keeps pyo3's build-script
# fingerprint identical, so `cargo test` and `maturin develop` share rust/target instead of
# rebuilding pyo3 and the extension crate on every alternation.
PYO3_ENV = VIRTUAL_ENV=$(VENV) PYO3_PYTHON=$(VPY) \
	PYO3_ENVIRONMENT_SIGNATURE=$$($(VPY) -c 'import sys; print(f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}-{64 if sys.maxsize > 2**32 else 32}bit")')

CI ?=
SYSTEM_PACKAGES := prometheus prometheus-alertmanager redis-server

.PHONY: venv system-deps wheel lint test rust-test py-test wheel-test test-compat demo artifacts clean distclean

# ---------------------------------------------------------------------------------------------

$(VPY):
	@ver=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	case "$$ver" in 3.1[1-9]) ;; *) echo "error: $(PYTHON) is Python $$ver; litellm-rust needs >= 3.11 (set PYTHON=...)" >&2; exit 1;; esac
	$(PYTHON) -m venv $(VENV)

$(PIP_STAMP): pyproject.toml Makefile | $(VPY)
	$(VPY) -m pip install -q -U pip
	$(PRINT_PY_DEPS) | xargs -d '\n' $(VPY) -m pip install -q
	touch $@

venv: $(PIP_STAMP)
	cd $(CURDIR) && $(PYO3_ENV) $(VENV)/bin/maturin develop --release

# Wheels a user installs without a Rust toolchain: abi3 (any CPython >= 3.11), linked by zig against
# glibc 2.17 (manylinux2014), stripped; the sdist beside them. zig's linker and target triple share no
# artifacts with the host build, so they get their own target directory. The aarch64 wheel cross-builds
# the same way (`make wheel WHEEL_TARGETS="x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu"`); CI
# builds only the one it can run.
WHEEL_TARGETS ?= x86_64-unknown-linux-gnu
WHEEL_TARGET_DIR := $(CURDIR)/rust/target/wheel

wheel: $(PIP_STAMP)
	rm -rf dist
	for target in $(WHEEL_TARGETS); do \
		rustup target add $$target; \
		PATH=$(VENV)/bin:$$PATH $(VENV)/bin/maturin build --release --zig --compatibility manylinux2014 \
			--target $$target --target-dir $(WHEEL_TARGET_DIR) --interpreter $(VPY) --out dist; \
	done
	$(VENV)/bin/maturin sdist --out dist

# ---------------------------------------------------------------------------------------------

system-deps:
	@missing=0; \
	command -v prometheus >/dev/null 2>&1 || missing=1; \
	command -v redis-server >/dev/null 2>&1 || missing=1; \
	{ command -v alertmanager || command -v prometheus-alertmanager; } >/dev/null 2>&1 || missing=1; \
	if [ $$missing -eq 0 ]; then exit 0; fi; \
	echo "system-deps: installing $(SYSTEM_PACKAGES)"; \
	ok=1; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; \
	else sudo=; ok=0; echo "system-deps: not root and no sudo" >&2; fi; \
	if [ $$ok -eq 1 ]; then \
		apt_install() { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); }; \
		apt_update() { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q; }; \
		updated=0; \
		for pkg in $(SYSTEM_PACKAGES); do \
			if ! apt-cache policy "$$pkg" 2>/dev/null | grep -q 'Candidate: [^(]'; then \
				apt_update || true; updated=1; break; \
			fi; \
		done; \
		if ! apt_install; then \
			if [ $$updated -eq 0 ] && apt_update && apt_install; then :; else ok=0; fi; \
		fi; \
	fi; \
	if [ $$ok -eq 0 ]; then \
		if [ "$(CI)" = true ]; then echo "system-deps: ERROR: could not install $(SYSTEM_PACKAGES)" >&2; exit 1; fi; \
		echo "system-deps: WARNING: could not install $(SYSTEM_PACKAGES); continuing" >&2; \
	fi

# ---------------------------------------------------------------------------------------------

test: lint rust-test py-test wheel-test test-compat

lint: $(PIP_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd rust && cargo fmt --all --check

# `venv` first: the Rust tests then reuse the release artifacts maturin just built.
rust-test: venv system-deps
	cd rust && $(PYO3_ENV) cargo test --workspace --release
	cd rust && $(PYO3_ENV) cargo clippy --workspace --all-targets --release -- -D warnings

py-test: venv system-deps
	$(OFFLINE_ENV) $(VPY) -m pytest -q --ignore=tests/test_wheel.py

# The wheel just built, installed into a fresh venv (tests/test_wheel.py); without conftest.py, which
# imports this checkout's package: the wheel alone is under test.
wheel-test: wheel
	$(OFFLINE_ENV) $(VPY) -m pytest -q --noconftest tests/test_wheel.py

# The components' exactness tests (tests/conftest.py's EXACTNESS_TESTS; a component's are skipped, saying
# why, where it is not supported) and tests/test_compat.py on each litellm release of the table in
# docs/known-limits.md but .venv's own (py-test runs every test on that one), each in its own venv under
# .venv-compat/: .venv's packages are on its path (a .pth line, after its own), so pip installs there only
# the release and what .venv lacks of its requirements (`pip check` must pass); the package is this
# checkout's, with the extension `make venv` built, so no Rust is rebuilt per release. The releases'
# wheels are downloaded once, into .venv-compat/wheels; a venv is made again when .venv's pip step reruns.
# Two releases are tested at a time (one pytest process each, output kept per release). Outside CI a
# release that cannot be installed (offline) is skipped with a warning.
COMPAT_RELEASES ?= 1.108.14 1.109.3 1.110.0 1.110.1
COMPAT_JOBS ?= 2
COMPAT := $(CURDIR)/.venv-compat

test-compat: venv
	$(MAKE) --no-print-directory -j$(COMPAT_JOBS) --output-sync=target $(addprefix compat-,$(COMPAT_RELEASES))

compat-%:
	@venv=$(COMPAT)/$*; \
	if [ ! $$venv/.installed -nt $(PIP_STAMP) ]; then \
		rm -rf $$venv; \
		pip="$(VPY) -m pip --python $$venv/bin/python"; \
		if ! { ls $(COMPAT)/wheels/litellm-$*-*.whl >/dev/null 2>&1 \
				|| $(VPY) -m pip download -q --no-deps -d $(COMPAT)/wheels "litellm==$*"; } \
			|| ! $(VPY) -m venv --without-pip $$venv \
			|| ! $(VPY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))' \
				>$$($$venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/litellm-rust-dev.pth \
			|| ! $$pip install -q --find-links $(COMPAT)/wheels "litellm==$*" \
			|| ! $$pip check; then \
			if [ "$(CI)" = true ]; then echo "test-compat: ERROR: could not install litellm $*" >&2; exit 1; fi; \
			echo "test-compat: WARNING: could not install litellm $*; skipped" >&2; exit 0; \
		fi; \
		touch $$venv/.installed; \
	fi; \
	echo "test-compat: litellm $*"; \
	$(OFFLINE_ENV) PYTHONPATH=$(CURDIR)/instrumentation $$venv/bin/python -m pytest -q -p no:cacheprovider --exactness-only tests

demo: venv system-deps
	$(OFFLINE_ENV) $(VENV)/bin/litellm-rust bench proxy --quick
	$(OFFLINE_ENV) $(VENV)/bin/litellm-rust bench tokens
	$(OFFLINE_ENV) $(VENV)/bin/litellm-rust bench ratelimit
	$(OFFLINE_ENV) $(VENV)/bin/litellm-rust bench routing --quick
	$(OFFLINE_ENV) $(VENV)/bin/litellm-rust demo

# The overview dashboard rendered from the end-to-end test's Prometheus data (a picture for review).
artifacts: venv system-deps
	mkdir -p build/artifacts
	$(OFFLINE_ENV) LITELLM_RUST_ARTIFACTS=$(CURDIR)/build/artifacts $(VPY) -m pytest -q tests/test_observability_loop.py
	@echo "wrote build/artifacts/overview.png"

# ---------------------------------------------------------------------------------------------

clean:
	cd rust && cargo clean
	rm -rf dist build .pytest_cache .hypothesis
	rm -f instrumentation/litellm_rust/_native*.so instrumentation/litellm_rust/_native*.pyd
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(COMPAT)
