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
    ("friend", "friends", "Freund", "Freunde", "m", None),
    ("sister", "sisters", "Schwester", "Schwestern", "f", None),
    ("brother", "brothers", "Bruder", "Brüder", "m", None),
    ("baker", "bakers", "Bäcker", "Bäcker", "m", None),
    ("neighbour", "neighbours", "Nachbar", "Nachbarn", "m", "Nachbarn"),
    ("king", "kings", "König", "Könige", "m", None),
    ("queen", "queens", "Königin", "Königinnen", "f", None),
    ("pig", "pigs", "Schwein", "Schweine", "n", None),
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
    ("key", "keys", "Schlüssel", "Schlüssel", "m", None),
    ("picture", "pictures", "Bild", "Bilder", "n", None),
    ("cup", "cups", "Tasse", "Tassen", "f", None),
    ("bag", "bags", "Tasche", "Taschen", "f", None),
    ("chair", "chairs", "Stuhl", "Stühle", "m", None),
    ("table", "tables", "Tisch", "Tische", "m", None),
    ("egg", "eggs", "Ei", "Eier", "n", None),
    ("song", "songs", "Lied", "Lieder", "n", None),
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
    ("needs", "need", "braucht", "brauchen"),
    ("washes", "wash", "wäscht", "waschen"),
    ("forgets", "forget", "vergisst", "vergessen"),
    ("paints", "paint", "malt", "malen"),
]
# Verbs with a dative and an accusative object: "gives the dog a ball", "gibt dem Hund einen Ball".
DITRANSITIVE = [
    ("gives", "give", "gibt", "geben"),
    ("shows", "show", "zeigt", "zeigen"),
    ("sends", "send", "schickt", "schicken"),
    ("sells", "sell", "verkauft", "verkaufen"),
    ("brings", "bring", "bringt", "bringen"),
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
    ("big", "groß"),
    ("small", "klein"),
    ("old", "alt"),
    ("young", "jung"),
    ("black", "schwarz"),
    ("white", "weiß"),
    ("red", "rot"),
    ("happy", "glücklich"),
    ("tired", "müde"),
    ("hungry", "hungrig"),
    ("brown", "braun"),
    ("beautiful", "schön"),
    ("new", "neu"),
    ("clever", "klug"),
    ("friendly", "freundlich"),
    ("strong", "stark"),
    ("quiet", "leise"),
    ("cold", "kalt"),
    ("fast", "schnell"),
]
TIME = [
    ("today", "heute"),
    ("every day", "jeden Tag"),
    ("in the morning", "am Morgen"),
    ("in the evening", "am Abend"),
    ("again", "wieder"),
]
PLACE = [
    ("in the garden", "im Garten"),
    ("in the park", "im Park"),
    ("at home", "zu Hause"),
    ("on the street", "auf der Straße"),
    ("in the kitchen", "in der Küche"),
]

DEF = {
    ("nom", "m"): "der",
    ("nom", "f"): "die",
    ("nom", "n"): "das",
    ("acc", "m"): "den",
    ("acc", "f"): "die",
    ("acc", "n"): "das",
    ("dat", "m"): "dem",
    ("dat", "f"): "der",
    ("dat", "n"): "dem",
}
INDEF_ENDING = {
    ("nom", "m"): "",
    ("nom", "f"): "e",
    ("nom", "n"): "",
    ("acc", "m"): "en",
    ("acc", "f"): "e",
    ("acc", "n"): "",
    ("dat", "m"): "em",
    ("dat", "f"): "er",
    ("dat", "n"): "em",
}
# Adjective endings after ein/mein (mixed declension); after der/die/das they are weak (-e or -en).
MIXED_ADJ = {
    ("nom", "m"): "er",
    ("nom", "f"): "e",
    ("nom", "n"): "es",
    ("acc", "m"): "en",
    ("acc", "f"): "e",
    ("acc", "n"): "es",
}

HELD_OUT_EVERY = 20  # one English sentence in 20 (by hash) belongs to the held-out split


def _noun_phrase(rng: random.Random, nouns, case: str, allow_indef: bool = True) -> tuple[str, str, bool]:
    """An (English, German, plural?) noun phrase in the German case ``nom``, ``acc`` or ``dat``."""
    en_sg, en_pl, de_sg, de_pl, gender, weak_sg = rng.choice(nouns)
    plural = rng.random() < 0.4
    det = rng.choice(["the", "the", "a", "my"] if allow_indef else ["the", "the", "my"])
    adj = rng.choice(ADJECTIVES) if rng.random() < 0.45 else None
    if plural and det == "a":
        det = ""  # bare plural: "big dogs", "große Hunde"
    en_noun = en_pl if plural else en_sg
    if plural:
        de_noun = de_pl + ("n" if case == "dat" and de_pl[-1] not in "ns" else "")  # den Hunden
        de_det = {"the": "die" if case != "dat" else "den", "my": "meine" if case != "dat" else "meinen", "": ""}[det]
        de_adj_end = "e" if det == "" and case != "dat" else "en"
    else:
        de_noun = weak_sg if case != "nom" and weak_sg else de_sg  # den/dem Jungen
        if det == "the":
            de_det = DEF[(case, gender)]
            de_adj_end = "en" if case == "dat" or (case == "acc" and gender == "m") else "e"
        else:
            de_det = ("ein" if det == "a" else "mein") + INDEF_ENDING[(case, gender)]
            de_adj_end = "en" if case == "dat" else MIXED_ADJ[(case, gender)]
    if det == "a" and (adj[0] if adj else en_noun)[0] in "aeiou":
        det = "an"
    de_adj = ""
    if adj:  # müde + en -> müden, not müdeen
        de_adj = adj[1] + (de_adj_end[1:] if adj[1].endswith("e") else de_adj_end)
    en_words, de_words = [det, adj[0] if adj else "", en_noun], [de_det, de_adj, de_noun]
    return " ".join(w for w in en_words if w), " ".join(w for w in de_words if w), plural


def _clause(rng: random.Random, subordinate: bool) -> tuple[list[str], list[str]]:
    """English and German words of one clause; a German subordinate clause puts the verb last."""
    subj_en, subj_de, plural = _noun_phrase(rng, ANIMATE, "nom")
    negate = rng.random() < 0.2
    time = rng.choice(TIME) if rng.random() < 0.3 else None
    place = rng.choice(PLACE) if rng.random() < 0.3 else None
    kind = rng.random()
    dat_en = dat_de = obj_en = obj_de = ""
    if kind < 0.55:
        verb = rng.choice(TRANSITIVE)
        obj_en, obj_de, _ = _noun_phrase(rng, ANIMATE + THINGS, "acc", allow_indef=not negate)
    elif kind < 0.75:
        verb = rng.choice(DITRANSITIVE)
        dat_en, dat_de, _ = _noun_phrase(rng, ANIMATE, "dat")
        obj_en, obj_de, _ = _noun_phrase(rng, THINGS, "acc", allow_indef=not negate)
    else:
        verb = rng.choice(INTRANSITIVE)
    v3, vbase, de3, depl = verb
    en_verb = (("do not " if plural else "does not ") + vbase) if negate else (vbase if plural else v3)
    de_verb = depl if plural else de3
    en = [subj_en, en_verb, dat_en, obj_en, place[0] if place else "", time[0] if time else ""]
    # German: time adverb before the objects, place after them, "nicht" after both; the finite verb
    # second in a main clause and last in a subordinate one.
    middle = [time[1] if time else "", dat_de, obj_de, place[1] if place else "", "nicht" if negate else ""]
    de = [subj_de, *middle, de_verb] if subordinate else [subj_de, de_verb, *middle]
    return [w for w in en if w], [w for w in de if w]


def _sentence(rng: random.Random) -> tuple[str, str]:
    en, de = _clause(rng, subordinate=False)
    if rng.random() < 0.2:
        sub_en, sub_de = _clause(rng, subordinate=True)
        en, de = en + ["because", *sub_en], [*de[:-1], de[-1] + ",", "weil", *sub_de]
    en_s, de_s = " ".join(en), " ".join(de)
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
