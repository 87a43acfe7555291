#!/usr/bin/env bash
# Llama-3-8B rows of benchmarks/results/scale.md, on the 128 GiB GPU machine (every stage on its CPU).
# A call there is limited to 10 minutes and export + int4 take longer, so the stages run detached
# (`setsid`) and later calls only wait and read the log; the rows go to RESULTS outside the working tree,
# which each call copies afresh. That machine has torch, transformers, onnx and onnxruntime but not the
# rest of orin-trt's stack: WHEELS holds the wheels of the versions in the project's venv (docs/memory.md
# lists them), installed with --no-deps so that ModelOpt's onnx pin does not replace the machine's onnx.
#   benchmarks/scale_gpu_host.sh export,int4 [WHEELS] [RESULTS]   # start (returns at once)
#   tail /tmp/orin-trt-scale/scale-8b.log                         # later calls
set -euo pipefail
stages=${1:?usage: benchmarks/scale_gpu_host.sh export,int4 [WHEELS] [RESULTS]}
wheels=${2:-.whl}
results=${3:-/tmp/orin-trt-scale/scale-8b.md}
site=/tmp/orin-trt-site
[ -d "$site" ] || pip install -q --no-index --no-deps --target "$site" "$wheels"/*.whl
mkdir -p /tmp/orin-trt-scale
[ -f "$results" ] || cp benchmarks/results/scale.md "$results"
snapshot=/tmp/orin-trt-src  # the code as it was at the start: later calls replace the working tree
rm -rf "$snapshot" && cp -r "$PWD" "$snapshot"
cd "$snapshot"
PYTHONPATH=$site:$snapshot setsid nohup python benchmarks/scale.py --models llama-3-8b --stages "$stages" \
    --root /tmp/orin-trt-scale --redo --results "$results" > /tmp/orin-trt-scale/scale-8b.log 2>&1 < /dev/null &
echo "started $stages (log /tmp/orin-trt-scale/scale-8b.log, rows $results)"
