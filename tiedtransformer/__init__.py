"""tiedtransformer: what sharing embedding matrices does to a Transformer translation model."""

from tiedtransformer.model.network import TiedTransformer, TransformerConfig

__all__ = ["TiedTransformer", "TransformerConfig"]
__version__ = "0.1.0"
