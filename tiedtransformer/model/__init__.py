"""The network (``network.py``) and its layers (``layers.py``), its training objective (``loss.py``)
and decoding (``search.py``): pure PyTorch, no Lightning."""

from tiedtransformer.model.network import TYING_MODES, TiedTransformer, TransformerConfig, Tying

__all__ = ["TYING_MODES", "TiedTransformer", "TransformerConfig", "Tying"]
