"""Trained models out of the framework: a Hugging Face directory (``transformers``), a CTranslate2 model
directory, each with a model card. ``tiedtransformer export CKPT --to hf|ctranslate2 --out DIR``.
``transformers`` and ``ctranslate2`` (the ``export`` extra) are imported only here."""
