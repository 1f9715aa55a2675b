from dataclasses import dataclass
from decimal import Decimal

from app.offers.pricing import compute_totals


@dataclass
class Line:
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    discount_percent: Decimal = Decimal(0)


def D(text: str) -> Decimal:  # noqa: N802
    return Decimal(text)


def test_lines_round_half_up_to_cents() -> None:
    totals = compute_totals([Line(D("3"), D("0.335"), D("24"))], "EUR")

    assert totals.line_nets == (D("1.01"),)  # 1.005 rounds up, not to even


def test_vat_is_computed_per_rate_on_the_summed_nets() -> None:
    # Per line each VAT would be 0.0024 -> 0.00; on the sum of ten lines it is 0.24.
    lines = [Line(D("1"), D("0.01"), D("24"))] * 100
    totals = compute_totals(lines, "EUR")

    assert totals.net == D("1.00")
    assert [(b.rate, b.net, b.vat) for b in totals.vat] == [(D("24"), D("1.00"), D("0.24"))]
    assert totals.gross == D("1.24")


def test_several_rates_and_discounts() -> None:
    lines = [
        Line(D("2"), D("1250.00"), D("24")),
        Line(D("6.5"), D("85.00"), D("24")),
        Line(D("1"), D("39.90"), D("6"), discount_percent=D("10")),
    ]
    totals = compute_totals(lines, "EUR")

    assert totals.line_nets == (D("2500.00"), D("552.50"), D("35.91"))
    assert [(b.rate, b.vat) for b in totals.vat] == [(D("6"), D("2.15")), (D("24"), D("732.60"))]
    assert totals.net == D("3088.41")
    assert totals.vat_total == D("734.75")
    assert totals.gross == D("3823.16")


def test_zero_decimal_currency() -> None:
    totals = compute_totals([Line(D("3"), D("333.5"), D("10"))], "JPY")

    assert totals.net == D("1001")
    assert totals.gross == D("1101")
