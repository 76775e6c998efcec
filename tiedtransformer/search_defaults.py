"""The search's defaults, declared once, importable without torch (the ``translate`` command's signature reads
them before it decides to load anything): ``model.decoding.*`` of a fit, the exported models' generation
settings, and ``tiedtransformer translate``."""

BEAM_SIZE, LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B = 4, 0.6, 1.0, 50
TRANSLATE_MAX_LEN = 128
"""``translate``: source tokens kept of a line (EOS included); a longer line is cut and named."""
