"""Languages: the one list, Accept-Language, and Babel's formats for amounts, prices and dates."""

from datetime import UTC, date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from app import i18n

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("language", "shown"),
    [("en", "€1,234.56"), ("de", f"1.234,56{NBSP}€"), ("el", f"1.234,56{NBSP}€")],
)
def test_amounts_are_written_as_each_language_writes_them(language: str, shown: str) -> None:
    assert i18n.format_money(D("1234.56"), "EUR", language) == shown


def test_unit_prices_keep_every_stored_digit_and_at_least_the_minor_unit() -> None:
    assert i18n.format_price(D("1234.5678"), "EUR", "en") == "€1,234.5678"
    assert i18n.format_price(D("10.0000"), "EUR", "de") == f"10,00{NBSP}€"
    assert i18n.format_price(D("0.0040"), "EUR", "en") == "€0.004"
    assert i18n.format_price(D("1500.0000"), "JPY", "en") == "¥1,500"


def test_quantities_are_grouped_without_trailing_zeros() -> None:
    assert i18n.format_number(D("12345.500"), "en") == "12,345.5"
    assert i18n.format_number(D("12345.500"), "de") == "12.345,5"
    assert i18n.format_number(D("100.000"), "el") == "100"


def test_percentages_and_dates_by_language() -> None:
    assert i18n.format_percent(D("7.50"), "en") == "7.5%"
    assert i18n.format_percent(D("24"), "de") == f"24{NBSP}%"
    assert i18n.format_date(date(2026, 12, 31), "de") == "31.12.2026"
    assert i18n.format_date(date(2026, 12, 31), "el") == "31 Δεκ 2026"
    moment = datetime(2026, 12, 31, 13, 5, tzinfo=UTC)
    assert i18n.format_datetime(moment, "en", ZoneInfo("Europe/Athens")) == "Dec 31, 2026, 15:05"


@pytest.mark.parametrize(
    ("header", "languages"),
    [
        ("de-AT,de;q=0.9,en;q=0.8", ("de", "en")),
        ("fr-FR,fr;q=0.9", ()),
        ("en;q=0.2, el", ("el", "en")),
        ("el;q=0, de", ("de",)),
        ("", ()),
        ("de;q=abc", ()),
    ],
)
def test_accept_language_gives_our_languages_in_the_visitors_order(
    header: str, languages: tuple[str, ...]
) -> None:
    assert i18n.accepted_languages(header) == languages


def test_the_offers_language_wins_when_the_visitor_reads_it() -> None:
    assert i18n.choose_language("de", requested=None, accepted=("en", "de")) == "de"
    assert i18n.choose_language("de", requested=None, accepted=()) == "de"
    assert i18n.choose_language("el", requested=None, accepted=("en", "de")) == "en"
    assert i18n.choose_language("el", requested="de", accepted=("el",)) == "de"


def test_the_language_and_colour_settings_are_checked() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    assert Settings(default_language="de").default_language == "de"
    with pytest.raises(ValidationError, match="one of en, de, el"):
        Settings(default_language="fr")
    with pytest.raises(ValidationError, match="a colour like"):
        Settings(accent_color="red; background: url(x)")


def test_another_environment_such_as_the_mails_translates_by_its_lang() -> None:
    from jinja2 import DictLoader, Environment, StrictUndefined

    from app.templating import install_filters, install_translations

    env = Environment(
        loader=DictLoader({"m.txt": '{{ _("Unit price") }}: {{ amount | money("EUR") }}'}),
        undefined=StrictUndefined,
    )
    install_filters(env)
    install_translations(env)

    template = env.get_template("m.txt")
    assert template.render(lang="de", amount=D("1234.5")) == f"Einzelpreis: 1.234,50{NBSP}€"
    assert template.render(lang="el", amount=D("1234.5")) == f"Τιμή μονάδας: 1.234,50{NBSP}€"
    assert template.render(amount=D("1234.5")) == "Unit price: €1,234.50"
