#!/usr/bin/env bash
# Every benchmark in one go; their JSON lines are collected into one file (printed at the end).
#   benchmarks/all.sh          # on the CPU
#   benchmarks/all.sh cuda     # on a GPU: train step with model FLOP utilisation, tying with peak
#                              # memory, decoding (the data and similarity figures are CPU work)
# Run from anywhere; data.py needs ../shared/data next to the repository and is skipped without it.
# TIME_TO_BLEU=1 benchmarks/all.sh also trains ours and the Hugging Face peer for 10 minutes each.
# The soak test (python -m benchmarks.soak, 7 minutes) is a stability check and runs on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
out=${OUT:-benchmarks}/results-$(date +%Y%m%d-%H%M%S)-$device.jsonl
run() {  # prints the benchmark's output as it comes and keeps its JSON lines
    echo "== python -m $*"
    python -m "$@" | while IFS= read -r line; do
        echo "$line"
        if [[ $line == "{"* ]]; then echo "$line" >> "$out"; fi
    done
}
batch=()  # a GPU needs more than the CPU's 32 x 32 tokens per step to be measured at work
[ "$device" = cpu ] || batch=(--batch 128 --len 64 --steps 5 --warmup 3)
run benchmarks.train_step --device "$device" "${batch[@]}"
run benchmarks.train_step --device "$device" --size small "${batch[@]}"
run benchmarks.tying --device "$device" "${batch[@]}"
run benchmarks.decode --device "$device"
if [ "$device" = cpu ]; then
    run benchmarks.precision
    run benchmarks.similarity
    run benchmarks.stream_memory
    if [ -d ../shared/data/multi30k ]; then run benchmarks.data; else echo "== no ../shared/data: data.py skipped"; fi
    # 2 x 10 minutes of training and more: only when asked for
    if [ -n "${TIME_TO_BLEU:-}" ] && [ -d ../shared/data/multi30k ]; then run benchmarks.time_to_bleu; fi
fi
echo "results: $out"
