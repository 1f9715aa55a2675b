"""Routing rules of dynamic campaign codes, evaluated in memory.

A code's rules are checked in order; the first whose conditions all hold picks among its
destinations (a weighted split, or Thompson sampling on the creatives' conversion rates), and
when none holds the fallback does. The split is sticky for a visitor for the day: the draw
comes from the visitor's daily hash (app.tracking.scans), never from a cookie; a visitor who
sends DNT or GPC has no hash and gets a fresh draw on every scan.
"""

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.analytics.models import SplitMode
from app.analytics.schemas import Conditions
from app.tracking.scans import Device


@dataclass(frozen=True)
class Target:
    url: str
    creative_id: int | None = None
    utm_content: str = ""
    weight: int = 1


@dataclass(frozen=True)
class Rule:
    when: Conditions
    destinations: tuple[Target, ...]


@dataclass(frozen=True)
class ArmStats:
    """Conversions and visitors of one creative at one placement (Thompson sampling)."""

    conversions: int
    visitors: int


@dataclass(frozen=True)
class CompiledCode:
    slug: str
    campaign_id: int
    placement_id: int
    utm: Mapping[str, str]  # utm_source, utm_medium, utm_campaign
    rules: tuple[Rule, ...]
    fallback: Target
    split_mode: SplitMode = SplitMode.WEIGHTED
    arms: Mapping[int | None, ArmStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Visitor:
    """What routing may know about a visitor: no address, no user agent, no cookie."""

    os: str  # "ios", "android", "desktop" or "other"
    language: str  # the preferred language tag, lower case, or ""
    local_now: datetime  # in the configured time zone
    hashed: str | None  # today's visitor hash for this code; None under DNT/GPC


@dataclass(frozen=True)
class Route:
    target: Target
    rule_index: int | None  # None: the fallback
    url: str


def os_of(device: Device) -> str:
    if device.os_family == "iOS":
        return "ios"
    if device.os_family == "Android":
        return "android"
    return "desktop" if device.device_class == "desktop" else "other"


@lru_cache(maxsize=1024)  # browsers send a handful of different headers between them
def preferred_language(accept_language: str) -> str:
    """The tag with the highest q in an Accept-Language header (the first among equals)."""
    best, best_q = "", 0.0
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        tag = tag.strip().lower()
        if tag and tag != "*" and q > best_q:
            best, best_q = tag, q
    return best[:35]


def _language_matches(wanted: Sequence[str], tag: str) -> bool:
    primary = tag.split("-")[0]
    return any(tag == lang or ("-" not in lang and primary == lang) for lang in wanted)


def _in_window(now: time, start: time, end: time) -> bool:
    if start < end:
        return start <= now < end
    return now >= start or now < end  # a window across midnight, e.g. 22:00 to 06:00


def matches(when: Conditions, visitor: Visitor) -> bool:
    """Whether every condition given holds for this visitor now."""
    now = visitor.local_now
    today: date = now.date()
    checks = (
        when.os is None or visitor.os in when.os,
        when.languages is None or _language_matches(when.languages, visitor.language),
        when.time_from is None
        or when.time_to is None
        or _in_window(now.time().replace(tzinfo=None), when.time_from, when.time_to),
        when.weekdays is None or now.isoweekday() in when.weekdays,
        when.date_from is None or today >= when.date_from,
        when.date_to is None or today <= when.date_to,
    )
    return all(checks)


def _draw(visitor: Visitor, salt: str) -> random.Random:
    if visitor.hashed is None:
        return random.Random()
    digest = hashlib.sha256(f"{visitor.hashed}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def weighted_choice(targets: Sequence[Target], rng: random.Random) -> Target:
    point = rng.random() * sum(t.weight for t in targets)
    for target in targets:
        point -= target.weight
        if point < 0:
            return target
    return targets[-1]


def thompson_choice(
    targets: Sequence[Target], arms: Mapping[int | None, ArmStats], rng: random.Random
) -> Target:
    """Draw each creative's conversion rate from its Beta posterior; the highest draw wins."""

    def sample(target: Target) -> float:
        stats = arms.get(target.creative_id, ArmStats(0, 0))
        failures = max(stats.visitors - stats.conversions, 0)
        return rng.betavariate(1 + stats.conversions, 1 + failures)

    return max(targets, key=sample)


def choose(code: CompiledCode, visitor: Visitor) -> Route:
    for index, rule in enumerate(code.rules):
        if not matches(rule.when, visitor):
            continue
        target = rule.destinations[0]
        if len(rule.destinations) > 1:
            rng = _draw(visitor, f"{code.slug}:{index}")
            if code.split_mode == SplitMode.THOMPSON:
                target = thompson_choice(rule.destinations, code.arms, rng)
            else:
                target = weighted_choice(rule.destinations, rng)
        return Route(target, index, _destination(code, target))
    return Route(code.fallback, None, _destination(code, code.fallback))


def _destination(code: CompiledCode, target: Target) -> str:
    return _with_utm_cached(target.url, (*code.utm.items(), ("utm_content", target.utm_content)))


# A code's destinations and UTM parameters change only when staff edit it: the URLs it sends
# visitors to are few, and parsing and quoting one cost a redirect more than all its routing.
@lru_cache(maxsize=4096)
def _with_utm_cached(url: str, params: tuple[tuple[str, str], ...]) -> str:
    return with_utm(url, dict(params))


def with_utm(url: str, params: Mapping[str, str]) -> str:
    """Add UTM parameters the URL does not have; its own parameters stay exactly as they are."""
    parts = urlsplit(url)
    present = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(name, value) for name, value in params.items() if value and name not in present]
    if not extra:
        return url
    query = parts.query + ("&" if parts.query else "") + urlencode(extra)
    return urlunsplit(parts._replace(query=query))
