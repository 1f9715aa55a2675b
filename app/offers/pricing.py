"""Offer totals in Decimal, rounded the way an accountant expects.

Each line's net amount is rounded to the currency's minor unit (half up). VAT is computed once
per rate on the sum of that rate's line nets, then rounded, which is how invoices are audited:
rounding VAT per line would drift by cents on long offers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

# The currency rules live in app.formats (core); offered here too.
from app.formats import ZERO_DECIMAL_CURRENCIES as ZERO_DECIMAL_CURRENCIES
from app.formats import minor_unit as minor_unit

HUNDRED = Decimal(100)


class PricedLine(Protocol):
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    vat_rate: Decimal


@dataclass(frozen=True)
class VatBucket:
    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class Totals:
    currency: str
    line_nets: tuple[Decimal, ...]
    vat: tuple[VatBucket, ...]
    net: Decimal
    vat_total: Decimal
    gross: Decimal


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def line_net(line: PricedLine, currency: str) -> Decimal:
    gross = line.quantity * line.unit_price
    return round_money(gross * (HUNDRED - line.discount_percent) / HUNDRED, currency)


def compute_totals(lines: Iterable[PricedLine], currency: str) -> Totals:
    """Net per line, VAT per rate, and the offer's net, VAT and gross totals."""
    nets: list[Decimal] = []
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        amount = line_net(line, currency)
        nets.append(amount)
        rate = line.vat_rate.normalize()
        by_rate[rate] = by_rate.get(rate, Decimal(0)) + amount
    buckets = tuple(
        VatBucket(rate=rate, net=net, vat=round_money(net * rate / HUNDRED, currency))
        for rate, net in sorted(by_rate.items())
    )
    net_total = round_money(sum(nets, Decimal(0)), currency)
    vat_total = round_money(sum((b.vat for b in buckets), Decimal(0)), currency)
    return Totals(
        currency=currency,
        line_nets=tuple(nets),
        vat=buckets,
        net=net_total,
        vat_total=vat_total,
        gross=net_total + vat_total,
    )
