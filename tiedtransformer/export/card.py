"""The model card of an export: ``README.md`` in the Hugging Face hub's format (YAML metadata, then prose),
from the network and the run's own summary.json and config.yaml; nothing is typed in."""

from __future__ import annotations

import yaml

import tiedtransformer
from tiedtransformer.export.source import Exportable
from tiedtransformer.run.files import RunDir

ROLES = {
    "enc_embed": "the encoder's input embedding",
    "dec_embed": "the decoder's input embedding",
    "dec_lut": "the output (pre-softmax) matrix",
}


def what_is_tied(tied_with: dict[str, list[str]]) -> str:
    """In words, which token matrices are one (from the network's own ``tied_with``, whatever the mode)."""
    groups, seen = [], set()
    for name in ROLES:
        if name in seen or not tied_with.get(name):
            continue
        group = [name, *(n for n in tied_with[name] if n in ROLES)]
        seen.update(group)
        roles = [ROLES[n] for n in group]
        groups.append((", ".join(roles[:-1]) + " and " + roles[-1]) + " are one matrix")
    return "; ".join(groups) if groups else "no token matrices are shared"


def unique_parameters(net) -> int:
    return sum(p.numel() for p in net.parameters())  # a tied tensor once


def model_card(src: Exportable, target: str) -> str:
    cfg, s = src.net.cfg, src.summary
    source_lang, target_lang = src.langs
    metrics = []
    for stage in ("val", "test"):
        for metric in ("bleu", "chrf"):
            value = getattr(s, f"final_{stage}_{metric}")
            if value is not None:
                signature = s.sacrebleu_signature if metric == "bleu" else s.chrf_signature
                metrics.append((stage, metric, value, getattr(s, f"final_{stage}_{metric}_ci", None), signature))
    meta = {
        "language": [source_lang, target_lang],
        "library_name": "transformers" if target == "hf" else "ctranslate2",
        "pipeline_tag": "translation",
        "tags": ["translation", "tiedtransformer", f"tying-{cfg.tying}"],
        "metrics": sorted({m for _, m, *_ in metrics}) or None,
        "license": None,  # left to the user
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# {source_lang}→{target_lang} Transformer, tying `{cfg.tying}`",
        "",
        (f"Trained with tiedtransformer {s.version}; e" if s.version else "E")
        + f"xported by `tiedtransformer export --to {'hf' if target == 'hf' else 'ctranslate2'}` "
        f"(tiedtransformer {tiedtransformer.__version__}) from `{src.checkpoint.name}`.",
        "",
        f"- Tying: `{cfg.tying}`: {what_is_tied(src.net.tied_with())}.",
        f"- Parameters: {unique_parameters(src.net):,} (a shared tensor counted once).",
        f"- Shape: d {cfg.d_model}, {cfg.n_encoder_layers}+{cfg.n_decoder_layers} layers, {cfg.n_heads} heads, "
        f"FFN {cfg.d_ff}, {'pre' if cfg.norm_first else 'post'}-norm, vocabulary {cfg.vocab_size:,} "
        f"({'joint' if cfg.joint_vocab else 'one per language'}, SentencePiece).",
    ]
    if s.global_step is not None:
        lines.append(f"- Training: {s.global_step:,} optimizer steps, {s.train_tokens or 0:,} target tokens.")
    config = yaml.safe_load(src.config_text) if src.config_text else None
    if config:
        lines.append(f"- Data: {_data(config.get('data') or {}, src.direction)}.")
    if metrics:
        lines += ["", "## Evaluation", "", f"Final evaluation ({s.final_search or 'beam search'}):", ""]
        lines += ["| set | metric | score | 95% bootstrap ± |", "|---|---|---|---|"]
        for stage, metric, value, ci, _ in metrics:
            half = f"{ci:.2f}" if ci is not None else "–"
            lines.append(f"| {stage} | {metric} | {value:.2f} | {half} |")
        # the signatures hold "|", which a Markdown table would take for a column break: below it, as code
        signatures = {metric: signature for _, metric, _, _, signature in metrics if signature}
        lines += ["", "sacreBLEU signatures:", ""] + [f"- {m}: `{sig}`" for m, sig in sorted(signatures.items())]
    if src.config_text:
        lines += ["", "## The command that trained it", "", "```", f"tiedtransformer fit -c {RunDir.CONFIG}", "```"]
        lines += [
            "",
            f"with this `{RunDir.CONFIG}` (the run's resolved config):",
            "",
            "```yaml",
            src.config_text.strip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _data(data: dict, direction: str) -> str:
    """Where the training pairs came from, in the config's own terms (a setting it lacks left out)."""
    source = data.get("source")
    if source == "files":
        where = f"local files `{data.get('train_path')}`"
    elif source == "hub":
        config = f" (`{data['hub_config']}`)" if data.get("hub_config") else ""
        where = f"the Hugging Face dataset `{data.get('hub_dataset')}`{config}"
    elif source == "demo":
        size = data.get("demo_train_size")
        where = "the generated demo corpus" + (f" ({size} pairs an epoch)" if size else "")
    else:
        where = f"`{source}`"
    return f"{where}, direction {data.get('direction') or direction}"
