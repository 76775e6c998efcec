"""``--to ctranslate2``: a CTranslate2 model directory built through its converter API (a ``Converter`` whose
spec is a ``TransformerSpec``: pre- or post-norm, our position table as is, embeddings scaled by √d, the
source's EOS added as our batches add it), for every tying mode. CTranslate2 stores variables that are equal
once (aliases), so a tied matrix is written once; ``--quantization`` is passed through."""

from __future__ import annotations

from pathlib import Path

from tiedtransformer.errors import ConfigError
from tiedtransformer.export.source import Exportable
from tiedtransformer.specials import BOS_ID, SPECIAL_TEXT

QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


def vocabulary(tokens: list[str]) -> list[str]:
    """Our token texts with the special tokens under the names CTranslate2's config uses."""
    return [SPECIAL_TEXT.get(i, t) for i, t in enumerate(tokens)]


def _embeddings(stack):
    """A stack's (first) embedding spec: an encoder's is a list of them (source features)."""
    return stack.embeddings[0] if isinstance(stack.embeddings, list) else stack.embeddings


def transformer_spec(src: Exportable):
    from ctranslate2.specs import common_spec, transformer_spec

    net, cfg = src.net, src.net.cfg
    if cfg.projection_reg > 0:
        raise ConfigError(
            "the network has a Projection Regularization matrix before its output layer, which CTranslate2's "
            "Transformer has no place for; use a model trained with model.net.projection_reg=0"
        )
    s = {k: v.detach().float().numpy() for k, v in net.state_dict().items()}
    spec = transformer_spec.TransformerSpec.from_config(
        (cfg.n_encoder_layers, cfg.n_decoder_layers),
        cfg.n_heads,
        pre_norm=cfg.norm_first,
        activation=common_spec.Activation.RELU,
    )
    spec.config.layer_norm_epsilon = 1e-5  # torch's LayerNorm
    spec.config.add_source_eos = True  # our batches end every source with EOS
    spec.config.decoder_start_token = SPECIAL_TEXT[BOS_ID]
    positions = net.positions.numpy()

    def linear(target, name: str, rows=slice(None)):
        target.weight = s[f"{name}.weight"][rows]
        if f"{name}.bias" in s:
            target.bias = s[f"{name}.bias"][rows]

    def norm(target, name: str):
        target.gamma, target.beta = s[f"{name}.weight"], s[f"{name}.bias"]

    for stack, ours_embed in ((spec.encoder, "enc_embed"), (spec.decoder, "dec_embed")):
        _embeddings(stack).weight = s[f"{ours_embed}.weight"]
        stack.position_encodings.encodings = positions
        stack.scale_embeddings = True
    d = cfg.d_model
    for i, layer in enumerate(spec.encoder.layer):
        linear(layer.self_attention.linear[0], f"encoder.{i}.self_attn.qkv_proj")
        linear(layer.self_attention.linear[1], f"encoder.{i}.self_attn.out_proj")
        norm(layer.self_attention.layer_norm, f"encoder.{i}.self_norm")
        linear(layer.ffn.linear_0, f"encoder.{i}.ffn.0")
        linear(layer.ffn.linear_1, f"encoder.{i}.ffn.2")
        norm(layer.ffn.layer_norm, f"encoder.{i}.ffn_norm")
    for i, layer in enumerate(spec.decoder.layer):
        linear(layer.self_attention.linear[0], f"decoder.{i}.self_attn.qkv_proj")
        linear(layer.self_attention.linear[1], f"decoder.{i}.self_attn.out_proj")
        norm(layer.self_attention.layer_norm, f"decoder.{i}.self_norm")
        linear(layer.attention.linear[0], f"decoder.{i}.cross_attn.q_proj")
        linear(layer.attention.linear[1], f"decoder.{i}.cross_attn.kv_proj", slice(0, 2 * d))
        linear(layer.attention.linear[2], f"decoder.{i}.cross_attn.out_proj")
        norm(layer.attention.layer_norm, f"decoder.{i}.cross_norm")
        linear(layer.ffn.linear_0, f"decoder.{i}.ffn.0")
        linear(layer.ffn.linear_1, f"decoder.{i}.ffn.2")
        norm(layer.ffn.layer_norm, f"decoder.{i}.ffn_norm")
    if cfg.norm_first:
        norm(spec.encoder.layer_norm, "enc_norm")
        norm(spec.decoder.layer_norm, "dec_norm")
    spec.decoder.projection.weight = s["dec_lut.weight"]
    spec.register_source_vocabulary(vocabulary(src.tokens["src"]))
    spec.register_target_vocabulary(vocabulary(src.tokens["tgt"]))
    return spec


def export_ct2(src: Exportable, out: Path, quantization: str | None = None) -> Path:
    from ctranslate2.converters.converter import Converter

    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization {quantization!r}: one of {', '.join(QUANTIZATIONS)}")

    class _Ours(Converter):
        def _load(self):
            return transformer_spec(src)

    _Ours().convert(str(out), quantization=quantization, force=True)
    for side in ("src", "tgt"):
        (out / f"{side}.spm").write_bytes(src.models[side])
    return out


def token_matrix_aliases(spec) -> dict[str, str]:
    """After ``spec.optimize()``: each token matrix that CTranslate2 stores as an alias of another, with the
    variable it points to (a tied matrix is stored once)."""
    variables = {
        "enc_embed": _embeddings(spec.encoder),
        "dec_embed": _embeddings(spec.decoder),
        "dec_lut": spec.decoder.projection,
    }
    return {name: v.weight for name, v in variables.items() if isinstance(v.weight, str)}
