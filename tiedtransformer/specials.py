"""Ids of the special tokens. Every vocabulary this project trains puts them first, in this order."""

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
NUM_SPECIALS = 4

# Their text, as Marian's tokenizer and CTranslate2's config name them (``tiedtransformer export``).
SPECIAL_TEXT = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}
