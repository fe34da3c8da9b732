#!/usr/bin/env bash
# The GPU work of issues 3 and 5 as one device call (CI never has a GPU; see bench/RESULTS.md).
#
#   bash bench/gpu_session.sh prepare   # here, once: wheels the device image lacks, into .whl/
#   bash bench/gpu_session.sh run       # there, as the `run` command, with carry [".whl"] and timeout_s 600
#
# `run` installs effcap without dependencies (the image has torch, numpy, scipy, safetensors,
# scikit-learn; pydantic comes from .whl), runs the correctness checks first and stops if they fail,
# then the benchmarks, each under its own time limit so one slow part cannot eat the others' time.
# Logs land in $OUT (they come back) and on stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    for wheel in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$wheel" || exit 1
    done
    ls .whl
    ;;
run)
    OUT=${OUT:-/tmp/effcap-gpu}
    mkdir -p "$OUT"
    export PYTHONUNBUFFERED=1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    timeout 90 python3 bench/gpu_checks.py 2>&1 | tee "$OUT/checks.log" || exit 1
    status=0
    timeout 200 python3 bench/engine_throughput.py --device cuda --ks 1,8,32,128 --steps 20 --compile 2>&1 | tee "$OUT/engine.md" || status=1
    timeout 60 python3 bench/compression_sweep.py --device cuda --examples 10000 2>&1 | tee "$OUT/sweep.log" || status=1
    timeout 220 python3 bench/inception_random_labels.py --device cuda --time-limit 200 2>&1 | tee "$OUT/inception.log" || status=1
    exit $status
    ;;
*)
    echo "usage: bash bench/gpu_session.sh prepare|run" >&2
    exit 2
    ;;
esac
