"""A citizen's answer on WhatsApp that turns its messages off (STOP, and
the usual words for it in each language of the service) or back on (START).

Pure: the inbound webhook reads the answer with `answer` and records it.
Only a message that is the word alone counts ("Stop", "stop!", "ARRÊT",
"إيقاف"), not a sentence that contains it. Words that also mean "cancel"
(CANCEL, ANNULER, إلغاء) are left out on purpose: a citizen who writes
them may want their appointment cancelled, which an answer to an automatic
message cannot do, and must not lose their messages for it.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

Answer = Literal["stop", "start"]

# As `normalise` leaves them: no accents, no hamza, lower case.
STOP_WORDS: frozenset[str] = frozenset(
    {
        # Twilio's own (English) opt-out words, CANCEL aside.
        "stop",
        "stopall",
        "unsubscribe",
        "end",
        "quit",
        # French
        "arret",
        "arreter",
        "desabonner",
        "desinscrire",
        # Spanish
        "baja",
        "parar",
        "detener",
        # Arabic: توقف, قف, أوقف, إيقاف
        "توقف",
        "قف",
        "اوقف",
        "ايقاف",
        # Tamazight: ⵃⴱⵙ (stop), ⴱⴷⴷ (halt)
        "ⵃⴱⵙ",
        "ⴱⴷⴷ",
    }
)
START_WORDS: frozenset[str] = frozenset({"start", "unstop"})

# Punctuation a phone keyboard puts around a word: Latin, Arabic and
# Tifinagh's own.
_EDGES = " \t\r\n.,;:!?¡¿'\"«»()-_*~،؛؟۔⵰"
_TATWEEL = "\u0640"


def normalise(text: str) -> str:
    """Lower case, without accents, Arabic hamza and madda marks or
    tatweel, without the punctuation around it, its spaces made single."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn" and ch != _TATWEEL)
    return " ".join(bare.casefold().strip(_EDGES).split())


def answer(text: str) -> Answer | None:
    """The answer the message is ("stop", "start"), or None."""
    word = normalise(text)
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None
