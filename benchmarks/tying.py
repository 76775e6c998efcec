"""What tying changes, given that it removes no FLOPs: parameters, Adam state, the memory of the
training state (weights + gradients + Adam moments, counted from the tensors after a real step) and
training-step speed, for each tying mode, against the untied network measured in the same run on the
same batch. On the CPU it also measures, for each mode in a fresh process, how much the peak
resident memory (RSS) of that process grows from before the network is built to after two training
steps: the whole footprint (weights, gradients, Adam, activations, allocator), not a count.

    python -m benchmarks.tying                 # Transformer base, V 37000, batch 32 x 32, fp32
    python -m benchmarks.tying --size small
    python -m benchmarks.tying --device cuda   # on a GPU (bf16 autocast); adds the step's peak allocated memory
    python -m benchmarks.tying --size recipe --norm_first --dropout 0.1 --rounds 9   # the seed experiment's model

Speed: rounds of each mode interleaved (every round times every mode once, on one batch); the ratio is the
median over rounds of (untied step time / this mode's step time) within a round, with the range over rounds.

Ends with one JSON line per tying mode (peer: tying none).
"""

from __future__ import annotations

import multiprocessing
import statistics
from argparse import Namespace

import torch

from benchmarks.harness import emit
from benchmarks.train_step import SIZES, ours, random_batch, step_arguments, timed_rounds
from tiedtransformer.model.network import TYING_MODES

MB = 2**20


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024  # kB


def step_memory_growth(mode: str, args: Namespace) -> float:
    """In a fresh process (so that no other mode's network is alive): MB by which the peak memory grows
    from before building the network to after two training steps: on a GPU the allocator's peak, on
    the CPU the peak RSS (VmHWM; Linux; not ru_maxrss: it keeps the parent's peak across exec)."""
    size, device = SIZES[args.size], torch.device(args.device)
    batch, _ = random_batch(size, args, device)
    cuda = device.type == "cuda"
    before = torch.cuda.max_memory_allocated() if cuda else _status_mb("VmHWM")
    net, opt, step = ours(size, device, tying=mode, dropout=args.dropout, norm_first=args.norm_first)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        for _ in range(2):
            step(*batch)
    return (torch.cuda.max_memory_allocated() - before) / MB if cuda else _status_mb("VmHWM") - before


def main() -> None:
    p = step_arguments(__doc__)
    p.add_argument("--precision", choices=["fp32", "bf16"], help="default: bf16 autocast on a GPU, fp32 on the CPU")
    p.add_argument("--norm_first", action="store_true", help="pre-norm layers (model.net.norm_first), as the recipe")
    p.add_argument("--dropout", type=float, default=0.1, help="model.net.dropout")
    args = p.parse_args()
    device, size = torch.device(args.device), SIZES[args.size]
    args.precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    batch, tokens = random_batch(size, args, device)

    rows, steps = {}, []
    for mode in TYING_MODES:
        net, opt, step = ours(size, device, tying=mode, dropout=args.dropout, norm_first=args.norm_first)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        step(*batch)  # creates the Adam moments
        params = list(net.parameters())  # each tied matrix once
        weights = tensor_bytes(params)
        adam = tensor_bytes(t for state in opt.state.values() for t in state.values() if t.dim() > 0)
        rows[mode] = {
            "params": net.num_params(),
            "weights_mb": weights / MB,
            "adam_state_mb": adam / MB,
            # a gradient per distinct parameter, as large as it
            "train_state_mb": (2 * weights + adam) / MB,
        }
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            key = "peak_step_mb" if device.type == "cuda" else "rss_growth_mb"
            rows[mode][key] = pool.apply(step_memory_growth, (mode, args))
        steps.append(step)
        del net, opt
    per_round = timed_rounds(steps, batch, args.steps, args.warmup, args.rounds, device, args.precision == "bf16")
    seconds = [statistics.median(r) for r in per_round]
    # within a round every mode ran under the same conditions: the ratio per round, then its median and range
    round_ratios = [[b / x for b, x in zip(per_round[0], r)] for r in per_round]
    base = rows["none"]
    base_tps = tokens / seconds[0]
    print(
        f"{args.size}{', pre-norm' if args.norm_first else ''}, dropout {args.dropout}, batch {args.batch} x "
        f"{args.len}, {args.precision}, {device}; ratios against tying none in this run (median of per-round ratios)"
    )
    for (mode, row), sec, ratios in zip(rows.items(), seconds, round_ratios):
        row["tokens_per_s"] = tokens / sec
        row["ratio"], row["ratio_range"] = statistics.median(ratios), [min(ratios), max(ratios)]
        line = (
            f"{mode:>9}: {row['params'] / 1e6:6.1f}M params ({row['params'] / base['params']:.2f}), Adam state "
            f"{row['adam_state_mb']:6.0f} MB, weights+grads+Adam {row['train_state_mb']:6.0f} MB "
            f"({row['train_state_mb'] / base['train_state_mb']:.2f}), {row['tokens_per_s']:,.0f} tok/s "
            f"(speed {row['ratio']:.3f}, rounds {row['ratio_range'][0]:.3f}-{row['ratio_range'][1]:.3f})"
        )
        if "peak_step_mb" in row:
            line += f", peak {row['peak_step_mb']:,.0f} MB"
        if "rss_growth_mb" in row:
            line += f", RSS growth {row['rss_growth_mb']:,.0f} MB ({row['rss_growth_mb'] / base['rss_growth_mb']:.2f})"
        print(line)
    for mode, row in rows.items():
        emit(
            f"tying_{args.size}_{mode}",
            {
                "ours": round(row["tokens_per_s"], 1),
                "peer": round(base_tps, 1),
                "unit": "target tokens/s",
                "ratio": round(row["ratio"], 3),
                "rounds": args.rounds,
            },
            ratio_range=[round(x, 3) for x in row["ratio_range"]],
            norm_first=args.norm_first,
            dropout=args.dropout,
            peer_name="tying none",
            params=row["params"],
            adam_state_mb=round(row["adam_state_mb"], 1),
            train_state_mb=round(row["train_state_mb"], 1),
            train_state_ratio=round(row["train_state_mb"] / base["train_state_mb"], 3),
            **({"peak_step_mb": round(row["peak_step_mb"], 1)} if "peak_step_mb" in row else {}),
            **({"rss_growth_mb": round(row["rss_growth_mb"], 1)} if "rss_growth_mb" in row else {}),
            device=str(device),
            precision=args.precision,
            batch=[args.batch, args.len],
        )


if __name__ == "__main__":
    main()
