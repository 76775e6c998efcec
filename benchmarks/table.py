"""The README's performance table, printed from the JSON lines of one ``benchmarks/all.sh`` run.

    python -m benchmarks.table benchmarks/results/20261122-all-cpu.jsonl

One Markdown row per measurement, each with the command that made it; nothing is typed by hand.
A benchmark missing from the file is left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _spread(d: dict, digits: int = 0) -> str:
    return f"{d['median']:,.{digits}f} ({d['min']:,.{digits}f}-{d['max']:,.{digits}f})"


def _ratio(d: dict) -> str:
    s = d.get("ratio_spread")
    return f"**{d['ratio']:.2f}**" + (f" ({s['min']:.2f}-{s['max']:.2f})" if s else "")


def _cmd(d: dict) -> str:
    return f"`{d.get('command', 'python -m benchmarks.' + d['benchmark'].split('_')[0])}`"


def _batch(d: dict) -> str:
    b, n = d.get("batch", (32, 32))  # lines from before the batch was recorded: the CPU default
    return f"batch {b}×{n}"


def _on(d: dict) -> str:
    return f", on {d['device']}" if d.get("device", "cpu") != "cpu" else ""


def _shape(size: str) -> str:
    """The model of a train-step line, from ``benchmarks.train_step.SIZES`` (the sizes it times)."""
    from benchmarks.train_step import SIZES

    if size == "base":
        return "Transformer base, V 37000"
    m = SIZES[size]
    return f"d {m['d_model']}, {m['n_encoder_layers']}+{m['n_decoder_layers']}, FFN {m['d_ff']}, V {m['vocab_size']}"


def train_step(d: dict) -> str:
    size, precision = d["benchmark"].split("_")[2:4]
    shape = _shape(size)
    extra = "".join(
        f", {name.removeprefix('ours_').replace('_', ' ')}: {d[name]:,.0f}" for name in ("ours_compiled",) if name in d
    )
    mfu = f"; MFU {100 * d['mfu']:.1f}%" if "mfu" in d else ""
    if "ours_fused_loss" in d:  # ours took the loss of the whole logits (a GPU's default)
        other = f"whole-logits loss; the fused loss: {d['ours_fused_loss']:,.0f}"
    else:
        other = f"loss over whole logits: {d['ours_full_logits']:,.0f}"
    attention = ""
    if "peer_attention" in d:  # the peer at its faster attention implementation (both timed in the same rounds)
        each = ", ".join(f"{k} {v:,.0f}" for k, v in d["peer_tokens_per_s_by_attention"].items())
        attention = f" ({d['peer_attention']} attention, its faster: {each})"
    return (
        f"| train step, {shape}, three-way tied, {_batch(d)}, {precision}{_on(d)} | {_spread(d['ours'])} target tok/s "
        f"({other}{extra}){mfu} | `MarianMTModel`{attention} {_spread(d['peer'])} | "
        f"{_ratio(d)} | {_cmd(d)} |"
    )


def tying(rows: list[dict]) -> str:
    modes = [r["benchmark"].split("_", 2)[2] for r in rows]

    def each(key: str, fmt: str) -> str:
        return " / ".join(format(r[key] / (1e6 if key == "params" else 1), fmt) for r in rows)

    memory = ""
    if all(r.get("rss_growth_mb") for r in rows):
        memory = f"; peak RSS growth of a fresh process over two steps {each('rss_growth_mb', ',.0f')} MB"
    if all(r.get("peak_step_mb") for r in rows):
        memory = f"; peak allocated memory of a fresh process over two steps {each('peak_step_mb', ',.0f')} MB"
    first = rows[0]
    return (
        f"| tying modes {' / '.join(modes)}, base, {_batch(first)}, {first.get('precision', 'fp32')}{_on(first)} | "
        f"{each('params', '.1f')}M params; weights + "
        f"gradients + Adam {each('train_state_mb', ',.0f')} MB{memory}; {each('ours', ',.0f')} target tok/s | "
        f"tying none, same run | state {each('train_state_ratio', '.2f')}; speed {each('ratio', '.2f')} | "
        f"{_cmd(rows[0])} |"
    )


def decode(d: dict) -> list[str]:
    s = d["sentences_per_s"]
    where = d["benchmark"].removeprefix("decode_beam4_")
    head = (
        f"beam 4, {d['sentences']} sentences of {where}, batches of {d['batch']}, at most {d['out_len']} tokens{_on(d)}"
    )
    ups = d["speed_ups"]
    fastest = d.get("ctranslate2_fastest") or "ctranslate2"  # older lines: fp32 only
    kinds = [k for k in s if k.startswith("ctranslate2")]
    each = ", ".join(f"{k.removeprefix('ctranslate2').lstrip('_') or 'float32'} {s[k]['median']:,.1f}" for k in kinds)
    setting = "fp32" if fastest == "ctranslate2" and len(kinds) == 1 else f"at its fastest compute type ({each} sent/s)"
    ct2 = (
        [
            f"| same, against CTranslate2 {setting} (converted from that Marian copy, its own process) | "
            f"{s['ours']['median']:,.1f} sent/s | CTranslate2 {_spread(s[fastest], 1)} | {_ratio(d['ratio_ctranslate2'])} "
            f"| (same run) |"
        ]
        if d.get("ratio_ctranslate2")
        else []
    )
    return [
        f"| {head} | {_spread(s['ours'], 1)} sent/s | `MarianMTModel.generate` with our weights {_spread(s['generate'], 1)} "
        f"(outputs identical to ours: {100 * d['identical_to_ours']['generate']:.1f}%) | {_ratio(d['ratio_generate'])} | {_cmd(d)} |",
        *ct2,
        "| same, each speed-up of our search turned off alone (outputs identical) | "
        + ", ".join(
            f"without {name.replace('_', ' ')} {s['ours_without_' + name]['median']:,.1f}"
            for name in ("early_finish", "shared_memory", "transposed_output")
        )
        + " sent/s | – | "
        + ", ".join(f"{name.replace('_', ' ')} {ups[name]['ratio']:.2f}" for name in ups)
        + " | (same run) |",
    ]


def _default_and_other(d: dict) -> tuple[str, str]:
    """("bf16", "fp32") where the default precision of a precision line is bf16, else the reverse."""
    return ("bf16", "fp32") if d["ours_name"].startswith("bf16") else ("fp32", "bf16")


def precision(d: dict) -> str:
    ours, peer = _default_and_other(d)
    return (
        f"| the recipe's three matrix products, fp32 against bf16 (native bf16 flags: "
        f"{', '.join(d['native_bf16_flags']) or 'none'}; CPU capability {d['cpu_capability']}) | the default, "
        f"{d['ours_name']}: {d[ours + '_ms']:,.1f} ms | {peer}: {d[peer + '_ms']:,.1f} ms | {_ratio(d)} | {_cmd(d)} |"
    )


def precision_train_step(d: dict) -> str:
    tps = d["target_tok_per_s"]
    ours, peer = _default_and_other(d)
    return (
        f"| training steps of the recipe's network (d 192, 3+3, V 6,000, no dropout), 24 batches of ~1,024 target "
        f"tokens in varied shapes | the default, {d['ours_name']}: {tps[ours]:,} target tok/s | {peer}: {tps[peer]:,}; "
        f"ablation, bf16 with attention in bf16 too (the code before 2026-11-23): {tps['bf16_attention_bf16']:,} | "
        f"{_ratio(d)} | {_cmd(d)} |"
    )


def dropout_train_step(d: dict) -> str:
    tps = d["target_tok_per_s"]
    return (
        f"| training steps of the recipe's network (d 192, 3+3, V 6,000) with dropout {d['dropout']}, {d['precision']}, "
        f"24 batches of ~1,024 target tokens | `{d['ours_name']}` (ours): {tps['ours']:,} target tok/s | `torch.nn.Dropout`: "
        f"{tps['torch']:,} (no dropout at all: {tps['none']:,}) | {_ratio(d)} | {_cmd(d)} |"
    )


def adamw_step(d: dict) -> str:
    ms = d["ms_per_step"]
    return (
        f"| AdamW step over the recipe's {d['parameters']:,} parameters{_on(d)} | fused: {ms['fused']} ms | foreach: "
        f"{ms['foreach']} ms | {_ratio(d)} | {_cmd(d)} |"
    )


def similarity(d: dict) -> str:
    n, dim = d["shape"]
    if d["benchmark"] == "similarity_whole_command":
        return (
            f"| `tiedtransformer analyze` of a dump holding one {n}×{dim} matrix{_on(d)}, the whole command (start-up, "
            f"reading, analysis, random null from the cache, report, figures) | {_spread(d['ours'], 1)} s (first "
            f"analysis of the shape, computing the null: {d['cold_s']:.1f} s) | a Python process reading the same file "
            f"and running FAISS `IndexFlatIP` exact 10-NN: {_spread(d['peer'], 1)} s | {_ratio(d)} (goal 1.0) | {_cmd(d)} |"
        ) + _phases(d)
    digits = 3 if d["benchmark"] == "similarity_small_vs_naive" else 2
    return (
        f"| in one process{_on(d)}, {n}×{dim}: top/bottom-1000 pairs, 10-NN, histogram | {_spread(d['ours'], digits)} s | the "
        f"full similarity matrix + `torch.topk` + `torch.histc`: {_spread(d['peer'], digits)} s | {_ratio(d)} | (same run) |"
    )


def _phases(d: dict) -> str:
    """The row under the whole command's: where its time went, in one instrumented run (older lines
    have no phases)."""
    if "phases_s" not in d:
        return ""
    parts = ", ".join(f"{name} {s:.2f}" for name, s in d["phases_s"].items())
    return f"\n| same, where the command's time goes (one more run, instrumented), s | {parts} | – | – | (same run) |"


def stream_memory(d: dict) -> str:
    return (
        f"| streaming {d['pairs']:,} pairs in the hub schema (shards of {d['shard_rows']:,}), 2 ranks × 2 workers, "
        f"one epoch | {d['pairs_per_s']:,} pairs/s; every pair exactly once: {d['complete_once']}; peak RSS main "
        f"{d['peak_rss_main_mb']:,} MB, each worker {d['peak_rss_worker_mb']:,} MB (private {d['peak_uss_worker_mb']:,}); "
        f"workers by tenth of the epoch {' / '.join(str(t) for t in d['workers_rss_by_tenth_mb'])} MB | – | – | "
        f"`python -m benchmarks.stream_memory` |"
    )


def data(d: dict) -> str:
    pad = d["padding_pct"]
    return (
        f"| input pipeline, Multi30k train, text files to padded batches, {d['workers']} worker | {_spread(d['ours'])} "
        f"pairs/s, padding {pad['ours']['mean']}% (p90 {pad['ours']['p90']}%) | {_mapped(d)} + `LengthGroupedSampler` "
        f"+ `DataCollatorForSeq2Seq`: {_spread(d['peer'])} pairs/s, padding {pad['peer']['mean']}% (p90 "
        f"{pad['peer']['p90']}%) | {_ratio(d)} | {_cmd(d)} |\n"
        f"| headroom (not a peer): target tokens/s the pipeline makes over what our training step (Multi30k "
        f"model, fp32) takes | {d['train_tgt_tokens_per_s']:,} target tok/s trained | – | {d['headroom']}× | (same run) |"
    )


def _mapped(d: dict) -> str:
    """The peer's preprocessing: in older lines a ``datasets.map`` every round, now once (cached), its fastest
    num_proc measured."""
    if "peer_num_proc" not in d:
        return "`datasets.map`"
    each = ", ".join(f"{n}: {s} s" for n, s in d["peer_map_s_by_num_proc"].items())
    return f"`datasets.map` once, cached (num_proc {d['peer_num_proc']}, the fastest of {each}; not in its rounds)"


def table(lines: list[dict]) -> str:
    first = next((d for d in lines if "machine" in d), {})
    m = first.get("machine", {})
    gpu = f" and an {m['gpu']}" if m.get("gpu") else ""
    out = [
        f"One `benchmarks/all.sh` run, {first.get('date', '?')[:10]}, {m.get('cpu', '?')} with {m.get('cores', '?')} "
        f"cores{gpu}, torch {first.get('versions', {}).get('torch', '?')}; medians of 5 interleaved rounds (min-max), "
        "`ratio` > 1 means ours is better:",
        "",
        "| what | ours | peer (same run) | ratio | command |",
        "|---|---|---|---|---|",
    ]
    tying_rows = []
    for d in lines:
        name = d["benchmark"]
        if name.startswith("train_step_"):
            out.append(train_step(d))
        elif name.startswith("tying_"):
            if not tying_rows:
                tying_at = len(out)  # the tying modes make one row, where their first line came
            tying_rows.append(d)
        elif name.startswith("decode_"):
            out += decode(d)
        elif name == "precision":
            out.append(precision(d))
        elif name == "precision_train_step":
            out.append(precision_train_step(d))
        elif name == "adamw_step":
            out.append(adamw_step(d))
        elif name == "dropout_train_step":
            out.append(dropout_train_step(d))
        elif name.startswith("similarity_"):
            out.append(similarity(d))
        elif name == "stream_memory":
            out.append(stream_memory(d))
        elif name == "data":
            out.append(data(d))
    if tying_rows:
        out.insert(tying_at, tying(tying_rows))
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="a JSON-lines file of benchmarks/all.sh")
    args = p.parse_args()
    lines = [json.loads(x) for x in Path(args.results).read_text().splitlines() if x.startswith("{")]
    print(table(lines))


if __name__ == "__main__":
    main()
