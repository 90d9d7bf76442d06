#!/usr/bin/env bash
# The ideal-pipeline benchmark against loadpool (bench/natsfloor, a copy of
# ../shared/bench/natsfloor): a coordinator on its embedded NATS server
# (`loadpool all` with no worker pools) and natsfloor's instant workers,
# measured side by side with the same flow hand-written on raw nats.go in a
# separate process. It prints jobs/s, job latency, submit latency and CPU
# per job for each C, and the ratios system / ideal.
#
#   bash bench/pipeline.sh                       # 3 runs, N=5000, C=1,16,256
#   bash bench/pipeline.sh -runs 1 -pipe-n 2000  # natsfloor flags override
#   BENCH_PROFILE=/tmp/lp.prof bash bench/pipeline.sh   # + a CPU profile of loadpool
#   BENCH_MEMPROFILE=/tmp/lp.mem bash bench/pipeline.sh # + its allocations
#
# The computers are enrolled first (-enroll); each submitter reuses one of
# 256 computers (-computers 256), as a lab does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=$(mktemp -d)/loadpool
(cd "$root" && GOFLAGS= go build -o "$bin" ./cmd/loadpool)
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 14555)
LOADPOOL_LOADERS= LOADPOOL_OS_FAMILIES= LOADPOOL_NATS_PORT=$port LOADPOOL_DATA_DIR=$data \
  GODEBUG=${BENCH_GODEBUG:-} GOGC=${BENCH_GOGC:-} LOADPOOL_LOG_LEVEL=warn LOADPOOL_METRICS_ADDR= LOADPOOL_UI_ADDR= LOADPOOL_CPUPROFILE=${BENCH_PROFILE:-} LOADPOOL_MEMPROFILE=${BENCH_MEMPROFILE:-} \
  "$bin" all >"$data/loadpool.log" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; [ -z "${BENCH_LOG:-}" ] || cp "$data/loadpool.log" "$BENCH_LOG"; rm -rf "$data" "$(dirname "$bin")"' EXIT
for _ in $(seq 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 $pid 2>/dev/null || { cat "$data/loadpool.log"; exit 1; }
  sleep 0.1
done
cd "$here/natsfloor"
go run . -pipeline -pipeline-url "nats://127.0.0.1:$port" -act-as-workers -enroll -computers 256 \
  -pipe-pids $pid -runs 3 -pipe-n 5000 -pipe-c 1,16,256 "$@" 2>&1 | grep -v '^run[0-9]'
if grep -q '"level":"\(WARN\|ERROR\)"' "$data/loadpool.log"; then
  echo "loadpool logged warnings during the run:"; grep '"level":"\(WARN\|ERROR\)"' "$data/loadpool.log" | head -5
fi
