#!/usr/bin/env bash
# Every benchmark in one go; their JSON lines are collected into one file (printed at the end).
#   benchmarks/all.sh          # on the CPU
#   benchmarks/all.sh cuda     # on a GPU: train step with model FLOP utilisation (8k tokens, and the
#                              # WMT recipe's 25k-token update), tying with peak memory (bf16), decoding,
#                              # similarity (the data figures are CPU work)
# CT2_DEVICE=none benchmarks/all.sh cuda leaves CTranslate2 out of the decoding comparison (its PyPI
# wheel needs CUDA 12's libcublas.so.12).
# Run from anywhere; data.py needs ../shared/data next to the repository and is skipped without it.
# TIME_TO_BLEU=1 benchmarks/all.sh also trains ours and the Hugging Face peer for 10 minutes each.
# The soak test (python -m benchmarks.soak, 7 minutes) is a stability check and runs on its own, as does
# python -m benchmarks.demo (the README's demo command timed, and its precision; about 20 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
out=${OUT:-benchmarks}/results-$(date +%Y%m%d-%H%M%S)-$device.jsonl
failed=()
run() {  # prints the benchmark's output as it comes and keeps its JSON lines; a failure does not stop the rest
    echo "== python -m $*"
    python -m "$@" | while IFS= read -r line; do
        echo "$line"
        if [[ $line == "{"* ]]; then echo "$line" >> "$out"; fi
    done || failed+=("python -m $*")
}
batch=()  # a GPU needs more than the CPU's 32 x 32 tokens per step to be measured at work
[ "$device" = cpu ] || batch=(--batch 128 --len 64 --steps 5 --warmup 3)
run benchmarks.train_step --device "$device" "${batch[@]}"
run benchmarks.train_step --device "$device" --size small "${batch[@]}"
run benchmarks.tying --device "$device" "${batch[@]}"
run benchmarks.decode --device "$device" ${CT2_DEVICE:+--ct2-device "$CT2_DEVICE"}
if [ "$device" != cpu ]; then
    # Transformer base at configs/wmt14_en_de.yaml's update: ~25,000 target tokens in one step
    run benchmarks.train_step --device "$device" --batch 400 --len 64 --steps 3 --warmup 2 --precision bf16
    run benchmarks.similarity --device "$device"
fi
if [ "$device" = cpu ]; then
    run benchmarks.precision
    run benchmarks.dropout
    run benchmarks.optimizer
    run benchmarks.similarity
    run benchmarks.stream_memory
    if [ -d ../shared/data/multi30k ]; then run benchmarks.data; else echo "== no ../shared/data: data.py skipped"; fi
    # 2 x 10 minutes of training and more: only when asked for
    if [ -n "${TIME_TO_BLEU:-}" ] && [ -d ../shared/data/multi30k ]; then run benchmarks.time_to_bleu; fi
fi
echo "results: $out"
if [ ${#failed[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
