"""The catalogs: every string of the customer's pages, the PDF and the mails in every language."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from app import i18n
from app.config import ROOT_DIR

TRANSLATED = [language for language in i18n.LANGUAGES if language != i18n.DEFAULT_LANGUAGE]
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The strings the templates and the code mark today, extracted as `make i18n` does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    command = "from babel.messages.frontend import main; main()"
    subprocess.run(
        [sys.executable, "-c", command, "extract", "-F", "babel.cfg", "-k", "translate:2"]
        + ["-k", "translate_plural:2,3", "-o", str(pot), "."],
        cwd=ROOT_DIR,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as file:
        return read_po(file)


def _catalog(language: str) -> Catalog:
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with Path(path).open("rb") as file:
        return read_po(file, locale=language)


def _ids(catalog: Catalog) -> list[str]:
    return [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id]


def test_the_extraction_finds_the_pdfs_and_the_pages_strings(extracted: Catalog) -> None:
    ids = _ids(extracted)
    assert "Unit price" in ids and "Page {page} of {pages}" in ids
    assert "Track your offer or order" in ids and "I accept these terms" in ids


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_marked_string_has_a_translation(extracted: Catalog, language: str) -> None:
    catalog = _catalog(language)
    missing = []
    for message in extracted:
        if not message.id:
            continue
        translated = catalog.get(message.id)
        strings = translated.string if translated else None
        values = strings if isinstance(strings, tuple) else (strings,)
        if translated is None or translated.fuzzy or not all(values):
            missing.append(message.id)
    assert missing == [], f"untranslated in {language}: run `make i18n` and translate them"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    for message in _catalog(language):
        if not message.id or not message.string:
            continue
        ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
        strings = (message.string,) if isinstance(message.string, str) else tuple(message.string)
        wanted = sorted(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert sorted(PLACEHOLDER.findall(string)) == wanted, message.id


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_matches_its_source(language: str) -> None:
    """The .mo the app reads is the .po compiled (`make i18n` compiles both)."""
    compiled = i18n.translations(language)
    for message in _catalog(language):
        if message.id and isinstance(message.id, str) and message.string:
            assert compiled.ugettext(message.id) == message.string, message.id


def test_a_message_without_translation_reads_as_english_not_as_an_id() -> None:
    assert i18n.translate("de", "A sentence nobody translated.") == "A sentence nobody translated."
    assert i18n.translate("de", "Unit price") == "Einzelpreis"
