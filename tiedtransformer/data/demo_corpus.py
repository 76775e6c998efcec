"""The offline demo corpus: English sentences and their German translations, generated from a small
grammar with real inflection (dog/dogs, Hund/Hunde; der/den/dem; große/großen/großer; verb
agreement; German word order for time adverbs and negation). Deterministic: pair ``i`` of a split is
always the same sentence. Train and held-out splits never share a sentence (split by a hash of the
English side).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator

# (en singular, en plural, de singular, de plural, gender m/f/n, de accusative singular if irregular)
ANIMATE = [
    ("dog", "dogs", "Hund", "Hunde", "m", None),
    ("cat", "cats", "Katze", "Katzen", "f", None),
    ("man", "men", "Mann", "Männer", "m", None),
    ("woman", "women", "Frau", "Frauen", "f", None),
    ("child", "children", "Kind", "Kinder", "n", None),
    ("bird", "birds", "Vogel", "Vögel", "m", None),
    ("horse", "horses", "Pferd", "Pferde", "n", None),
    ("teacher", "teachers", "Lehrer", "Lehrer", "m", None),
    ("girl", "girls", "Mädchen", "Mädchen", "n", None),
    ("boy", "boys", "Junge", "Jungen", "m", "Jungen"),
    ("student", "students", "Student", "Studenten", "m", "Studenten"),
    ("mouse", "mice", "Maus", "Mäuse", "f", None),
    ("cow", "cows", "Kuh", "Kühe", "f", None),
    ("farmer", "farmers", "Bauer", "Bauern", "m", "Bauern"),
    ("doctor", "doctors", "Arzt", "Ärzte", "m", None),
]
THINGS = [
    ("book", "books", "Buch", "Bücher", "n", None),
    ("apple", "apples", "Apfel", "Äpfel", "m", None),
    ("ball", "balls", "Ball", "Bälle", "m", None),
    ("car", "cars", "Auto", "Autos", "n", None),
    ("house", "houses", "Haus", "Häuser", "n", None),
    ("flower", "flowers", "Blume", "Blumen", "f", None),
    ("letter", "letters", "Brief", "Briefe", "m", None),
    ("newspaper", "newspapers", "Zeitung", "Zeitungen", "f", None),
    ("bread", "breads", "Brot", "Brote", "n", None),
    ("cake", "cakes", "Kuchen", "Kuchen", "m", None),
]
# (en 3rd singular, en base, de 3rd singular, de plural)
TRANSITIVE = [
    ("sees", "see", "sieht", "sehen"),
    ("likes", "like", "mag", "mögen"),
    ("finds", "find", "findet", "finden"),
    ("has", "have", "hat", "haben"),
    ("buys", "buy", "kauft", "kaufen"),
    ("carries", "carry", "trägt", "tragen"),
    ("draws", "draw", "zeichnet", "zeichnen"),
    ("loves", "love", "liebt", "lieben"),
    ("brings", "bring", "bringt", "bringen"),
    ("holds", "hold", "hält", "halten"),
    ("visits", "visit", "besucht", "besuchen"),
    ("catches", "catch", "fängt", "fangen"),
]
INTRANSITIVE = [
    ("sleeps", "sleep", "schläft", "schlafen"),
    ("runs", "run", "läuft", "laufen"),
    ("sings", "sing", "singt", "singen"),
    ("plays", "play", "spielt", "spielen"),
    ("laughs", "laugh", "lacht", "lachen"),
    ("swims", "swim", "schwimmt", "schwimmen"),
    ("waits", "wait", "wartet", "warten"),
]
ADJECTIVES = [
    ("big", "groß"), ("small", "klein"), ("old", "alt"), ("young", "jung"), ("black", "schwarz"),
    ("white", "weiß"), ("red", "rot"), ("happy", "glücklich"), ("tired", "müde"),
    ("hungry", "hungrig"), ("brown", "braun"), ("beautiful", "schön"),
]  # fmt: skip
TIME = [("today", "heute"), ("every day", "jeden Tag"), ("in the morning", "am Morgen"),
        ("in the evening", "am Abend"), ("again", "wieder")]  # fmt: skip
PLACE = [("in the garden", "im Garten"), ("in the park", "im Park"), ("at home", "zu Hause"),
         ("on the street", "auf der Straße"), ("in the kitchen", "in der Küche")]  # fmt: skip

DEF = {("nom", "m"): "der", ("nom", "f"): "die", ("nom", "n"): "das",
       ("acc", "m"): "den", ("acc", "f"): "die", ("acc", "n"): "das"}  # fmt: skip
INDEF_ENDING = {("nom", "m"): "", ("nom", "f"): "e", ("nom", "n"): "",
                ("acc", "m"): "en", ("acc", "f"): "e", ("acc", "n"): ""}  # fmt: skip
# Adjective endings after ein/mein (mixed declension); after der/die/das it is weak: -e, or -en.
MIXED_ADJ = {("nom", "m"): "er", ("nom", "f"): "e", ("nom", "n"): "es",
             ("acc", "m"): "en", ("acc", "f"): "e", ("acc", "n"): "es"}  # fmt: skip

HELD_OUT_EVERY = 20  # one English sentence in 20 (by hash) belongs to the held-out split


def _noun_phrase(rng: random.Random, nouns, case: str, allow_indef: bool = True) -> tuple[str, str, bool]:
    """An (English, German, plural?) noun phrase in the given German case."""
    en_sg, en_pl, de_sg, de_pl, gender, acc_sg = rng.choice(nouns)
    plural = rng.random() < 0.4
    det = rng.choice(["the", "the", "a", "my"] if allow_indef else ["the", "the", "my"])
    adj = rng.choice(ADJECTIVES) if rng.random() < 0.45 else None
    if plural and det == "a":
        det = ""  # bare plural: "big dogs", "große Hunde"
    en_noun = en_pl if plural else en_sg
    de_noun = de_pl if plural else (acc_sg if case == "acc" and acc_sg else de_sg)
    if plural:
        de_det = {"the": "die", "my": "meine", "": ""}[det]
        de_adj_end = "e" if det == "" else "en"
    elif det == "the":
        de_det = DEF[(case, gender)]
        de_adj_end = "en" if (case == "acc" and gender == "m") else "e"
    else:
        de_det = ("ein" if det == "a" else "mein") + INDEF_ENDING[(case, gender)]
        de_adj_end = MIXED_ADJ[(case, gender)]
    if det == "a" and (adj[0] if adj else en_noun)[0] in "aeiou":
        det = "an"
    en_words = [det, adj[0] if adj else "", en_noun]
    de_adj = ""
    if adj:  # müde + en -> müden, not müdeen
        de_adj = adj[1] + (de_adj_end[1:] if adj[1].endswith("e") else de_adj_end)
    de_words = [de_det, de_adj, de_noun]
    return " ".join(w for w in en_words if w), " ".join(w for w in de_words if w), plural


def _sentence(rng: random.Random) -> tuple[str, str]:
    subj_en, subj_de, plural = _noun_phrase(rng, ANIMATE, "nom")
    negate = rng.random() < 0.2
    time = rng.choice(TIME) if rng.random() < 0.3 else None
    place = rng.choice(PLACE) if rng.random() < 0.3 else None
    if rng.random() < 0.7:
        verb = rng.choice(TRANSITIVE)
        obj_en, obj_de, _ = _noun_phrase(rng, ANIMATE + THINGS, "acc", allow_indef=not negate)
    else:
        verb = rng.choice(INTRANSITIVE)
        obj_en = obj_de = ""
    v3, vbase, de3, depl = verb
    if negate:
        en_verb = ("do not " if plural else "does not ") + vbase
    else:
        en_verb = vbase if plural else v3
    de_verb = depl if plural else de3
    en = [subj_en, en_verb, obj_en, place[0] if place else "", time[0] if time else ""]
    # German: finite verb second, time adverb before the object, place after it, "nicht" last.
    de = [subj_de, de_verb, time[1] if time else "", obj_de, place[1] if place else "", "nicht" if negate else ""]
    en_s, de_s = " ".join(w for w in en if w), " ".join(w for w in de if w)
    return en_s[0].upper() + en_s[1:] + ".", de_s[0].upper() + de_s[1:] + "."


def is_held_out(en: str) -> bool:
    return zlib.crc32(en.encode()) % HELD_OUT_EVERY == 0


def demo_pairs(split: str, size: int, seed: int = 0) -> Iterator[dict[str, str]]:
    """``size`` pairs ``{"en": ..., "de": ...}`` of split ``train`` or a held-out split (any other name)."""
    held_out = split != "train"
    # Held-out splits other than "validation" draw from a different seed, so test != validation.
    stream_seed = seed * 7919 + (0 if split in ("train", "validation") else 104729)
    produced, i = 0, 0
    while produced < size:
        en, de = _sentence(random.Random(stream_seed * 1_000_003 + i))
        i += 1
        if is_held_out(en) == held_out:
            produced += 1
            yield {"en": en, "de": de}
