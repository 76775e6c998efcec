"""``--to hf``: a directory that ``AutoModelForSeq2SeqLM.from_pretrained`` and ``AutoTokenizer`` load offline
(transformers 5; it has no ``translation`` pipeline, ``generate`` translates), computing exactly our
network's function, or a refusal that names the reason. Never an approximation.

- Post-norm networks become ``MarianMTModel``; pre-norm ones ``PegasusForConditionalGeneration`` (pre-norm,
  a final LayerNorm per stack, unshifted sinusoidal positions, embeddings scaled by √d). M2M100 would be the
  other pre-norm candidate, but its positions start at ``pad + 1``: not ours.
- Both compute sinusoids with the sines in the first half of the vector and the cosines in the second; ours
  interleave them. The two tables differ by a permutation of the model dimension, and a Transformer with every
  residual-stream weight permuted the same way (embeddings, output layer, LayerNorms, the projections into
  and out of attention and feed-forward) computes the same function: the export permutes, exactly.
- Tying is expressed in the architecture's own options and the saved file holds each tied matrix once. What
  transformers cannot express is refused (see :func:`architecture`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tiedtransformer.errors import ConfigError
from tiedtransformer.export.source import Exportable
from tiedtransformer.search_defaults import BEAM_SIZE, LENGTH_PENALTY
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TEXT


def architecture(cfg) -> str:
    """``"marian"`` or ``"pegasus"`` for a network config, or a ConfigError naming why transformers cannot
    represent it exactly."""
    import transformers

    version = transformers.__version__
    if cfg.projection_reg > 0:
        raise ConfigError(
            "the network has a Projection Regularization matrix before its output layer, which no transformers "
            "architecture has, and --to ctranslate2 cannot export it either (use a model trained with "
            "model.net.projection_reg=0)"
        )
    if not cfg.norm_first:
        if cfg.tying == "src_tgt":
            raise ConfigError(
                f"tying src_tgt cannot be expressed in transformers {version}'s Marian: its "
                "share_encoder_decoder_embeddings takes effect only together with tie_word_embeddings (which also "
                "ties the output layer), so the loaded model would hold two copies. Use --to ctranslate2"
            )
        if cfg.tying not in ("none", "decoder", "three_way"):
            raise ConfigError(
                f"tying {cfg.tying}: export/hf.py maps no transformers architecture to it yet. Use --to ctranslate2"
            )
        return "marian"
    if cfg.tying not in ("none", "three_way"):
        raise ConfigError(
            f"a pre-norm network with tying {cfg.tying} has no exact transformers architecture: Marian is "
            "post-norm, and the pre-norm one with our positions (Pegasus) ties either all three token matrices "
            "(tie_word_embeddings) or none of them, so only three_way and none fit (M2M100 shifts its positions "
            "by pad + 1). Use --to ctranslate2"
        )
    return "pegasus"


def half_layout(d: int) -> torch.Tensor:
    """Indices that turn our interleaved (sin, cos, sin, cos, ...) dimensions into (sin..., cos...)."""
    return torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])


def hf_state(net, perm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Our weights under the transformers names of Marian / Pegasus, the model dimension permuted by ``perm``."""
    s = {k: v.detach().float() for k, v in net.state_dict().items()}
    out: dict[str, torch.Tensor] = {}

    def reads(w):  # a weight whose input is the residual stream
        return w[:, perm]

    def norm(ours: str, theirs: str):
        out[f"{theirs}.weight"], out[f"{theirs}.bias"] = s[f"{ours}.weight"][perm], s[f"{ours}.bias"][perm]

    def linear(ours: str, theirs: str, into: bool, outof: bool, rows=slice(None)):
        w, b = s[f"{ours}.weight"][rows], s[f"{ours}.bias"][rows]
        if into:
            w = reads(w)
        if outof:
            w, b = w[perm], b[perm]
        out[f"{theirs}.weight"], out[f"{theirs}.bias"] = w, b

    d = net.cfg.d_model
    out["model.encoder.embed_tokens.weight"] = reads(s["enc_embed.weight"])
    out["model.decoder.embed_tokens.weight"] = reads(s["dec_embed.weight"])
    out["lm_head.weight"] = reads(s["dec_lut.weight"])
    for stack, n in (("encoder", net.cfg.n_encoder_layers), ("decoder", net.cfg.n_decoder_layers)):
        for i in range(n):
            ours, theirs = f"{stack}.{i}", f"model.{stack}.layers.{i}"
            for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
                rows = slice(j * d, (j + 1) * d)
                linear(f"{ours}.self_attn.qkv_proj", f"{theirs}.self_attn.{name}", True, False, rows)
            linear(f"{ours}.self_attn.out_proj", f"{theirs}.self_attn.out_proj", False, True)
            norm(f"{ours}.self_norm", f"{theirs}.self_attn_layer_norm")
            if stack == "decoder":
                linear(f"{ours}.cross_attn.q_proj", f"{theirs}.encoder_attn.q_proj", True, False)
                for j, name in enumerate(("k_proj", "v_proj")):
                    rows = slice(j * d, (j + 1) * d)
                    linear(f"{ours}.cross_attn.kv_proj", f"{theirs}.encoder_attn.{name}", True, False, rows)
                linear(f"{ours}.cross_attn.out_proj", f"{theirs}.encoder_attn.out_proj", False, True)
                norm(f"{ours}.cross_norm", f"{theirs}.encoder_attn_layer_norm")
            linear(f"{ours}.ffn.0", f"{theirs}.fc1", True, False)
            linear(f"{ours}.ffn.2", f"{theirs}.fc2", False, True)
            norm(f"{ours}.ffn_norm", f"{theirs}.final_layer_norm")
    if net.cfg.norm_first:
        norm("enc_norm", "model.encoder.layer_norm")
        norm("dec_norm", "model.decoder.layer_norm")
    return out


def hf_model(src: Exportable):
    """The transformers model (eval mode) holding our weights, tied as the tying mode says."""
    from transformers import MarianConfig, MarianMTModel, PegasusConfig, PegasusForConditionalGeneration

    cfg = src.net.cfg
    arch = architecture(cfg)
    common = dict(
        vocab_size=cfg.vocab_size,
        d_model=cfg.d_model,
        encoder_layers=cfg.n_encoder_layers,
        decoder_layers=cfg.n_decoder_layers,
        encoder_attention_heads=cfg.n_heads,
        decoder_attention_heads=cfg.n_heads,
        encoder_ffn_dim=cfg.d_ff,
        decoder_ffn_dim=cfg.d_ff,
        activation_function="relu",
        dropout=cfg.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        max_position_embeddings=cfg.max_positions,
        scale_embedding=True,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        bos_token_id=BOS_ID,
        decoder_start_token_id=BOS_ID,
        forced_eos_token_id=EOS_ID,
        tie_word_embeddings=cfg.tying in ("decoder", "three_way"),
    )
    if arch == "marian":
        config = MarianConfig(
            **common, decoder_vocab_size=cfg.vocab_size, share_encoder_decoder_embeddings=cfg.tying == "three_way"
        )
        model = MarianMTModel(config)
    else:
        model = PegasusForConditionalGeneration(PegasusConfig(**common))
    weights = hf_state(src.net, half_layout(cfg.d_model))
    # the position tables are recomputed by transformers on load (not saved): sines then cosines, which the
    # permutation makes ours
    params = {k: v for k, v in model.named_parameters(remove_duplicate=False) if "embed_positions" not in k}
    if cfg.tying == "three_way":
        weights["model.shared.weight"] = weights["model.encoder.embed_tokens.weight"]
    elif arch == "pegasus":  # untied: Pegasus still builds its shared matrix, which nothing reads; a copy fills it
        weights["model.shared.weight"] = weights["model.encoder.embed_tokens.weight"].clone()
    missing = sorted(set(params) - set(weights))
    if missing:
        raise ConfigError(f"internal: no weight of ours for {', '.join(missing[:5])}")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
        model.final_logits_bias.zero_()
    return model.eval()


def tied_groups_of(model) -> list[set[str]]:
    """Token matrices of a transformers model that share storage, as sets of names."""
    names = {
        "enc_embed": model.get_encoder().embed_tokens.weight,
        "dec_embed": model.get_decoder().embed_tokens.weight,
        "dec_lut": model.lm_head.weight,
    }
    groups: dict[int, set[str]] = {}
    for name, w in names.items():
        groups.setdefault(w.data_ptr(), set()).add(name)
    return sorted(groups.values(), key=sorted)


def write_tokenizer(src: Exportable, out: Path, model_max_length: int) -> None:
    """MarianTokenizer files from our SentencePiece models: source.spm, target.spm and vocab.json (our ids),
    so that the loaded tokenizer gives our ids (and appends </s>, as our batches do)."""
    joint = src.tokens["src"] == src.tokens["tgt"] and src.models["src"] == src.models["tgt"]
    (out / "source.spm").write_bytes(src.models["src"])
    (out / "target.spm").write_bytes(src.models["tgt"])

    def vocab(side: str) -> dict[str, int]:
        return {tok: i for i, tok in enumerate(src.tokens[side])} | {t: i for i, t in SPECIAL_TEXT.items()}

    (out / "vocab.json").write_text(json.dumps(vocab("src"), ensure_ascii=False, indent=1), encoding="utf-8")
    if not joint:
        (out / "target_vocab.json").write_text(json.dumps(vocab("tgt"), ensure_ascii=False), encoding="utf-8")
    s, t = src.langs
    config = {
        "tokenizer_class": "MarianTokenizer",
        "source_lang": s,
        "target_lang": t,
        "separate_vocabs": not joint,
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "model_max_length": model_max_length,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    special = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=1), encoding="utf-8")


def generation_config(src: Exportable) -> dict:
    """Our decoding defaults as transformers' GenerationConfig (the run's own when it has a config.yaml)."""
    import yaml

    decoding = (
        ((yaml.safe_load(src.config_text) or {}).get("model") or {}).get("decoding") or {} if src.config_text else {}
    )
    return {
        "num_beams": int(decoding.get("beam_size", BEAM_SIZE)),
        "length_penalty": float(decoding.get("length_penalty", LENGTH_PENALTY)),
        "max_length": min(src.net.cfg.max_positions - 1, 512),
        "decoder_start_token_id": BOS_ID,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "forced_eos_token_id": EOS_ID,
    }


def export_hf(src: Exportable, out: Path) -> Path:
    from transformers import GenerationConfig

    model = hf_model(src)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(**generation_config(src))
    model.save_pretrained(out)
    write_tokenizer(src, out, min(src.net.cfg.max_positions - 1, 512))
    return out
