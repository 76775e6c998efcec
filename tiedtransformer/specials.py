"""Ids of the special tokens. Every vocabulary this project trains puts them first, in this order."""

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
NUM_SPECIALS = 4
