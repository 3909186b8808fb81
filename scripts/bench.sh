#!/usr/bin/env bash
# Agent-link ingest benchmark behind `make bench` (figures in docs/BENCHMARKS.md).
#
# Builds the controller, the agent and the load generator, raises the
# open-file limit, and runs e2e/loadgen: N simulated agents (each a real
# mutual-TLS gRPC client sending one sample per second) against
# `gatehouse serve` on SQLite, the same agents against a bare gRPC server as
# the baseline, and a real gatehouse-agent at its default 10 s interval.
# Everything listens on 127.0.0.1 only, in a temporary directory.
#
# Environment:
#   QUICK=1           200 agents for 30 s (agent 30 s) instead of 2,000 for 5 min (agent 2 min)
#   AGENTS, DURATION, BASELINE_DURATION, AGENT_DURATION   override the figures above
#   AGENT_GLANCES=1   run Glances for the real agent (default: its /proc sampler)
#   AGENT_ENV         extra KEY=VALUE,... for the real agent (e.g. GOGC=50)
#   BENCH_OUT         also write the figures as JSON to this file
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ "${QUICK:-0}" == "1" ]]; then
	: "${AGENTS:=200}" "${DURATION:=30s}" "${BASELINE_DURATION:=30s}" "${AGENT_DURATION:=30s}" "${RAMP:=5s}" "${WARMUP:=5s}"
else
	: "${AGENTS:=2000}" "${DURATION:=5m}" "${BASELINE_DURATION:=1m}" "${AGENT_DURATION:=2m}" "${RAMP:=20s}" "${WARMUP:=15s}"
fi

bin="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench-bin.XXXXXX")"
trap 'rm -rf "$bin"' EXIT

# The controller and agent are built as `make build` ships them (static,
# stripped): the agent's resident set depends on it.
echo "bench: building controller, agent and load generator" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/gatehouse" ./controller/cmd/gatehouse
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/gatehouse-agent" ./agent/cmd/gatehouse-agent
go build -o "$bin/loadgen" ./e2e/loadgen

# Each simulated agent holds one connection on each side; the controller and
# the baseline server inherit the limit from the load generator, which also
# raises its soft limit to the hard one.
want=$(( AGENTS * 2 + 1024 ))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ "$(ulimit -n)" != "unlimited" && "$(ulimit -n)" -lt "$want" ]]; then
	echo "bench: open-file limit $(ulimit -n) is below the $want needed for $AGENTS agents; raise the hard limit (ulimit -Hn) as root" >&2
	exit 1
fi

args=(
	-gatehouse "$bin/gatehouse" -agent "$bin/gatehouse-agent"
	-agents "$AGENTS" -duration "$DURATION" -baseline-duration "$BASELINE_DURATION"
	-agent-duration "$AGENT_DURATION" -ramp "$RAMP" -warmup "$WARMUP"
)
if [[ "${AGENT_GLANCES:-0}" == "1" ]]; then
	args+=(-agent-glances)
fi
if [[ -n "${AGENT_ENV:-}" ]]; then
	args+=(-agent-env "$AGENT_ENV")
fi
if [[ -n "${BENCH_OUT:-}" ]]; then
	args+=(-out "$BENCH_OUT")
fi

echo "bench: loadgen ${args[*]}" >&2
"$bin/loadgen" "${args[@]}"
