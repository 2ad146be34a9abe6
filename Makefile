# vla_ros: `make test` from a fresh clone sets everything up and runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := ./env.sh
PYTEST_ARGS ?=
# e.g. make demo DEMO_ARGS="--episodes 20 --mode latest --latency-ms 300 --record"
DEMO_ARGS ?=

.PHONY: help setup setup-jazzy build lint format test test-jazzy test-fast demo bench clean distclean lerobot-ref params-docs

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## idempotent: venv (+ ROS 2 Kilted wheels when no distro is sourced), deps, colcon build
	@bash scripts/setup.sh

build: setup  ## alias of setup (colcon build runs inside it)

lint: setup  ## ruff check over the whole repo
	$(ENV) ruff check .

format: setup  ## ruff format + autofix
	$(ENV) ruff check --fix .
	$(ENV) ruff format .

test: setup lint  ## setup, lint, every test on ROS 2 Kilted, then the ROS tests again on ROS 2 Jazzy
	@echo "== ROS 2 Kilted lane: every test (unit + real-ROS integration)"
	VLA_ROS_REQUIRE_ROS=1 $(ENV) python -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-jazzy

setup-jazzy:  ## the Jazzy lane alone: .venv-jazzy + install-jazzy/ (same as make setup ROS=jazzy)
	@ROS=jazzy bash scripts/setup.sh

test-jazzy: setup-jazzy  ## the real-ROS tests on ROS 2 Jazzy (rclpy 7.1), the LTS most robots run
	@echo "== ROS 2 Jazzy lane: the real-ROS tests (-m ros)"
	VLA_ROS_DISTRO=jazzy VLA_ROS_REQUIRE_ROS=1 $(ENV) python -m pytest -m ros $(PYTEST_ARGS)

test-fast: setup  ## tests not marked slow
	VLA_ROS_REQUIRE_ROS=1 $(ENV) python -m pytest -m "not slow" $(PYTEST_ARGS)

demo: setup  ## sim arm + bundled policy through the real node graph: episodes, then a report folder
	$(ENV) vla-ros demo $(DEMO_ARGS)

params-docs:  ## docs/parameters.md and the config/*.yaml headers, from the nodes' ParamSpecs
	$(ENV) python scripts/gen_params_docs.py

bench: setup  ## run the benchmarks in benchmarks/ (tables on stdout)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(ENV) python $$b || exit 1; done

lerobot-ref:  ## LeRobot 0.6.1 reference lane (Python 3.12 venv), then regenerate test/fixtures/lerobot
	@bash scripts/setup_lerobot_ref.sh
	.venv-lerobot/bin/python scripts/lerobot_goldens.py

clean:  ## remove colcon build/install/log (both lanes)
	rm -rf build install log build-jazzy install-jazzy log-jazzy

distclean: clean  ## also remove the venv
	rm -rf .venv .venv-jazzy
