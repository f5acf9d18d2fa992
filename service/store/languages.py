"""Text the tables keep in one column per language (name_ar, name_fr, name_en)."""

from __future__ import annotations

import asyncpg

from service.domain.models import STORED_LANGUAGES, in_every_language


def by_language(row: asyncpg.Record, prefix: str) -> dict[str, str]:
    """The columns `{prefix}_ar`, `{prefix}_fr`, `{prefix}_en` of `row`, by
    language, with es and zgh from their fallback (models.TEXT_FALLBACK)."""
    return in_every_language(
        {language: row[f"{prefix}_{language}"] for language in STORED_LANGUAGES}
    )
