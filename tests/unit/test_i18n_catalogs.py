"""Every message the code can show exists, translated, in each catalog.

Fails on an untranslated or fuzzy entry, on a message extracted from the code
or templates (the same babel.cfg as `make i18n-extract`) that a catalog lacks,
and on a translation whose %(placeholders)s differ from the source's (which
would crash the page at render time).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from service.domain.models import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "service" / "locale"
# English is the source text; every other language has a complete catalog.
CATALOG_LANGUAGES = tuple(language for language in LANGUAGES if language != "en")
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def load(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def extracted_ids() -> set[str]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = dict(DEFAULT_KEYWORDS)
    keywords["N_"] = None
    keywords["Nn_"] = (1, 2)
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.fixture(scope="module")
def source_ids() -> set[str]:
    return extracted_ids()


def test_extraction_finds_the_domain_and_template_messages(source_ids: set[str]) -> None:
    # Guards the guard: a broken babel.cfg would make every catalog look complete.
    assert "This time is no longer available. Please choose another time." in source_ids
    assert "Enter your full name." in source_ids
    assert "Skip to main content" in source_ids
    assert "Book this appointment" in source_ids
    assert "Too many requests from your connection. Please try again in %(minutes)s minute." in (
        source_ids
    )


@pytest.mark.parametrize("language", CATALOG_LANGUAGES)
def test_catalog_covers_every_extracted_message(language: str, source_ids: set[str]) -> None:
    catalog = load(language)
    present = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}
    missing = sorted(source_ids - present)
    assert not missing, f"{language}: run `make i18n-update` and translate: {missing}"


@pytest.mark.parametrize("language", CATALOG_LANGUAGES)
def test_catalog_has_no_untranslated_or_fuzzy_entry(language: str) -> None:
    catalog = load(language)
    problems: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        label = message.id[0] if isinstance(message.id, tuple) else message.id
        if message.fuzzy:
            problems.append(f"fuzzy: {label}")
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if isinstance(message.id, tuple) and len(strings) != catalog.num_plurals:
            problems.append(f"plural forms: {label}")
        if not all(strings):
            problems.append(f"untranslated: {label}")
    assert not problems, f"{language}: {problems}"


@pytest.mark.parametrize("language", CATALOG_LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    catalog = load(language)
    problems: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        allowed = set().union(*(_PLACEHOLDER.findall(i) for i in ids))
        for text in strings:
            used = set(_PLACEHOLDER.findall(text))
            # Plural forms may drop the number ("دقيقتان"), never invent a name.
            if used - allowed or (not isinstance(message.id, tuple) and used != allowed):
                problems.append(f"{ids[0]!r} -> {text!r}")
    assert not problems, f"{language}: {problems}"


@pytest.mark.parametrize("language", CATALOG_LANGUAGES)
def test_the_parts_of_day_error_names_them_as_their_boxes_do(language: str) -> None:
    # The Arabic error said "بعد الظهر" beside a box labelled "بعد الزوال":
    # one word for the afternoon, so the citizen sees which box is meant.
    catalog = load(language)
    error = str(catalog["Choose the morning, the afternoon or both."].string).casefold()
    for label in ("Morning", "Afternoon"):
        assert str(catalog[label].string).casefold() in error, (language, label)


def test_every_catalog_language_is_updated_by_make() -> None:
    # `make i18n-update` creates and refreshes the catalogs of LANGUAGES only.
    line = next(
        line
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.startswith("LANGUAGES :=")
    )
    assert sorted(line.split(":=")[1].split()) == sorted(CATALOG_LANGUAGES)


def test_the_tamazight_catalog_asks_for_a_native_review_and_has_its_glossary() -> None:
    catalog = load("zgh")
    assert "NEEDS REVIEW BY A NATIVE READER" in catalog.header_comment
    glossary = (LOCALE_DIR / "zgh" / "GLOSSARY.md").read_text(encoding="utf-8")
    for term in ("office", "appointment", "passport", "reference", "cancel", "move", "counter"):
        assert f"\n| {term} " in glossary, term


@pytest.mark.parametrize("language", ["zgh"])
def test_tifinagh_catalog_is_written_in_tifinagh(language: str) -> None:
    # Latin letters only inside placeholders and names kept as they are (SMS, JSON...),
    # and the words a citizen types as they are (STOP, START on WhatsApp).
    kept = re.compile(
        r"%\(\w+\)[sd]|SMS|WhatsApp|JSON|CSV|API|QR|CNIE|ISO|SHA-256|UTF-8|X-CSRF-Token|KiB|NUL"
        r"|STOP|START"
        r"|hash|hex|HH:MM|YYYY-MM-DD|YYYY-Www|\S+@\S+|mon-fri|sat|x3|\S*T\d\S*|W\d+|\bs\b|min|\bkm\b|\boffice\b"
        # IANA zone names and ISO country and region codes, as typed in forms.
        r"|Europe/Paris|America/Edmonton|\b[A-Z]{2}(?:-[A-Z]{2})?\b"
    )
    latin = re.compile(r"[A-Za-z]")
    problems = []
    for message in load(language):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if latin.search(kept.sub("", text)):
                problems.append(text)
    assert not problems, problems
