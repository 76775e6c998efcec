"""tiedtransformer: what sharing embedding matrices does to a Transformer translation model."""

__all__ = ["TiedTransformer", "TransformerConfig"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``from tiedtransformer import TiedTransformer`` works; importing the package alone (the command line's
    ``--help``) does not import torch."""
    if name in __all__:
        from tiedtransformer.model import network

        return getattr(network, name)
    raise AttributeError(f"module 'tiedtransformer' has no attribute {name!r}")
