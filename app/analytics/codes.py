"""Dynamic campaign codes: the routing table kept in memory, and the redirect use case.

The table is loaded from the database and kept: a redirect reads only memory, refreshes the
table when it is older than RULES_TTL_SECONDS (or was invalidated by a change in this
process), and keeps routing with the rules last loaded while the database is down.
"""

import logging
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from app import invalidation
from app.analytics.models import (
    Campaign,
    CampaignDayTotal,
    Conversion,
    Creative,
    Placement,
    SplitMode,
    table_of,
)
from app.analytics.routing import (
    ArmStats,
    CompiledCode,
    Rule,
    Target,
    Visitor,
    choose,
    os_of,
    preferred_language,
)
from app.analytics.rulesfile import RulesFile
from app.analytics.schemas import RoutingRule
from app.config import Settings
from app.db import read_only, utcnow
from app.errors import NotFound, ServiceUnavailable
from app.tracking.models import CodeForm
from app.tracking.scans import (
    Visit,
    classify_user_agent,
    event_row,
    todays_visitor_hash,
    visitor_hash,
    visitor_keys,
)
from app.tracking.service import CodeNotFound

log = logging.getLogger(__name__)
RULES_TTL_SECONDS = 5.0
STATS_TTL_SECONDS = 60.0
RETRY_AFTER_FAILURE_SECONDS = 2.0
THOMPSON_WINDOW = timedelta(days=30)

ArmTable = dict[int, dict[int | None, ArmStats]]


class CampaignCodeNotFound(CodeNotFound):
    """Counted against the client like any unknown code (see tracking.router)."""

    web_template = "error.html"

    def __init__(self) -> None:
        NotFound.__init__(self, "This campaign code is unknown. Please check the link or QR code.")


class RoutingUnavailable(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("Campaign codes are unavailable just now. Please try again shortly.")


class RoutingTable:
    """Every code's compiled rules, shared by the threads of one app (``app.state``).

    ``rules_file``: where the rules are saved whenever they change, and started from when the
    database is away at the first load (a cold start during an outage).
    """

    def __init__(self, rules_file: Path | None = None) -> None:
        self._codes: dict[str, CompiledCode] | None = None
        self._arms: ArmTable = {}
        self._loaded_at = 0.0
        self._arms_at = float("-inf")
        self._lock = threading.Lock()
        self._copy = None if rules_file is None else RulesFile(rules_file)
        _live_tables.add(self)

    def lookup(self, session: Session, slug: str) -> CompiledCode | None:
        if self._codes is None or time.monotonic() - self._loaded_at > RULES_TTL_SECONDS:
            self._refresh(session)
        codes = self._codes
        if codes is None:
            raise RoutingUnavailable()
        return codes.get(slug.lower())

    def peek(self, slug: str) -> tuple[bool, CompiledCode | None]:
        """From a table fresh enough to use as it is: (True, the code or None if unknown);
        (False, None) when the table must be loaded first."""
        codes = self._codes
        if codes is None or time.monotonic() - self._loaded_at > RULES_TTL_SECONDS:
            return False, None
        return True, codes.get(slug.lower())

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
        self._arms_at = float("-inf")

    def forget(self) -> None:
        """Drop everything loaded (tests)."""
        self._codes = None
        self.invalidate()

    def _refresh(self, session: Session) -> None:
        # Only the first load waits; later ones run in one thread while the others keep
        # routing with the table they have.
        if not self._lock.acquire(blocking=self._codes is None):
            return
        try:
            if self._codes is not None and time.monotonic() - self._loaded_at <= RULES_TTL_SECONDS:
                return
            self._load(session)
        finally:
            self._lock.release()

    def _load(self, session: Session) -> None:
        started = time.monotonic()
        try:
            with read_only(session):
                placements = _placements(session)
                if started - self._arms_at > STATS_TTL_SECONDS:
                    self._arms = load_arm_stats(session, _thompson_ids(placements))
                    self._arms_at = started
                self._codes = compile_codes(session, placements, self._arms)
            self._loaded_at = started
        except SQLAlchemyError:
            log.warning("could not load campaign codes; routing with the rules last loaded")
            session.rollback()
            self._loaded_at = started - RULES_TTL_SECONDS + RETRY_AFTER_FAILURE_SECONDS
            if self._codes is None and self._copy is not None:
                self._codes = self._copy.load()  # a cold start during an outage
            return
        if self._copy is not None:
            self._copy.save(self._codes)


# Every app's table in this process (tests make several apps), for the invalidation below.
_live_tables: "weakref.WeakSet[RoutingTable]" = weakref.WeakSet()
ROUTING_TOPIC = "routing"


def _invalidate_tables(_payload: str = "") -> None:
    for table in list(_live_tables):
        table.invalidate()


invalidation.subscribe(ROUTING_TOPIC, _invalidate_tables)


def rules_changed() -> None:
    """Reload the routing rules here at once, and in every other process as soon as it hears."""
    _invalidate_tables()
    invalidation.publish(ROUTING_TOPIC)


def _placements(session: Session) -> Sequence[tuple[Placement, Campaign]]:
    query = select(Placement, Campaign).join(Campaign, col(Campaign.id) == Placement.campaign_id)
    rows: Sequence[Any] = session.execute(query).all()
    return [(p, c) for p, c in rows]


def _thompson_ids(placements: Iterable[tuple[Placement, Campaign]]) -> list[int]:
    return [p.id for p, _ in placements if p.split_mode == SplitMode.THOMPSON and p.id]


def compile_codes(
    session: Session, placements: Sequence[tuple[Placement, Campaign]], arms: ArmTable
) -> dict[str, CompiledCode]:
    creatives = table_of(Creative).c
    found: Sequence[Any] = session.execute(select(creatives.id, creatives.utm_content)).all()
    contents: dict[int, str] = dict(found)

    def target(url: str, creative_id: int | None, weight: int = 1) -> Target:
        return Target(
            url, creative_id, contents.get(creative_id, "") if creative_id else "", weight
        )

    compiled = {}
    for placement, campaign in placements:
        assert placement.id is not None
        assert campaign.id is not None
        rules = []
        for raw in placement.rules:
            try:
                rule = RoutingRule.model_validate(raw)
            except ValidationError:
                log.error("placement %s has an invalid rule; it is skipped", placement.id)
                continue
            targets = tuple(target(d.url, d.creative_id, d.weight) for d in rule.destinations)
            rules.append(Rule(rule.when, targets))
        compiled[placement.slug] = CompiledCode(
            slug=placement.slug,
            campaign_id=campaign.id,
            placement_id=placement.id,
            utm={
                "utm_source": campaign.utm_source,
                "utm_medium": campaign.utm_medium,
                "utm_campaign": campaign.utm_campaign,
            },
            rules=tuple(rules),
            fallback=target(placement.fallback_url, placement.fallback_creative_id),
            split_mode=SplitMode(placement.split_mode),
            arms=arms.get(placement.id, {}),
        )
    return compiled


def load_arm_stats(session: Session, placement_ids: list[int]) -> ArmTable:
    """Visitors and last-touch conversions per creative of the Thompson-sampling codes."""
    arms: ArmTable = {pid: {} for pid in placement_ids}
    if not placement_ids:
        return arms
    now = utcnow()
    since = now - THOMPSON_WINDOW
    # Both ranges are named from both ends, though nothing lies past ``until`` (a local day is
    # at most a day ahead of UTC, a conversion at most minutes): with a lower bound alone,
    # PostgreSQL without statistics on a table read all of it, every minute in every process.
    until = now + timedelta(days=1)
    daily = table_of(CampaignDayTotal).c
    visitors = (
        select(daily.placement_id, daily.creative_id, func.sum(daily.visitors))
        .where(daily.placement_id.in_(placement_ids))
        .where(daily.day >= since.date(), daily.day <= until.date())
        .group_by(daily.placement_id, daily.creative_id)
    )
    seen_rows: Sequence[Any] = session.execute(visitors).all()
    for placement_id, creative_id, count in seen_rows:
        arms[placement_id][creative_id or None] = ArmStats(0, int(count or 0))
    conv = table_of(Conversion).c
    converted = (
        select(conv.last_placement_id, conv.last_creative_id, func.count())
        .where(conv.last_placement_id.in_(placement_ids))
        .where(conv.occurred_at >= since, conv.occurred_at < until)
        .group_by(conv.last_placement_id, conv.last_creative_id)
    )
    converted_rows: Sequence[Any] = session.execute(converted).all()
    for placement_id, creative_id, count in converted_rows:
        seen = arms[placement_id].get(creative_id, ArmStats(0, 0))
        arms[placement_id][creative_id] = ArmStats(int(count), max(seen.visitors, int(count)))
    return arms


def resolve_code(session: Session, table: RoutingTable, slug: str) -> CompiledCode:
    code = table.lookup(session, slug)
    if code is None:
        raise CampaignCodeNotFound()
    return code


@dataclass(frozen=True)
class Redirect:
    url: str
    scan: dict[str, Any]  # the scan event to record


def plan_redirect(
    code: CompiledCode, visit: Visit, accept_language: str, hashed: str | None, settings: Settings
) -> Redirect:
    """Where the code sends this visitor now, and the scan event that says so."""
    device = classify_user_agent(visit.user_agent[:512])
    visitor = Visitor(
        os=os_of(device),
        language=preferred_language(accept_language),
        local_now=utcnow().astimezone(settings.zone),
        hashed=hashed,
    )
    route = choose(code, visitor)
    row = event_row(None, CodeForm.CAMPAIGN, visit, hashed)
    row |= {
        "campaign_id": code.campaign_id,
        "placement_id": code.placement_id,
        "creative_id": route.target.creative_id,
    }
    return Redirect(route.url, row)


def redirect_from_memory(
    table: RoutingTable, slug: str, visit: Visit, accept_language: str, settings: Settings
) -> Redirect | None:
    """The redirect from what this process holds, or None when the database is needed first
    (rules due for a reload, no visitor key of the day yet)."""
    fresh, code = table.peek(slug)
    if not fresh:
        return None
    if code is None:
        raise CampaignCodeNotFound()
    hashed = None
    if not visit.do_not_track:
        key = visitor_keys.cached_today()
        if key is None:
            return None
        hashed = visitor_hash(key, visit, _subject(code.slug))
    return plan_redirect(code, visit, accept_language, hashed, settings)


def redirect_with_database(
    session: Session,
    table: RoutingTable,
    slug: str,
    visit: Visit,
    accept_language: str,
    settings: Settings,
) -> Redirect:
    """The redirect after loading what is missing; with the rules last loaded if it fails."""
    code = resolve_code(session, table, slug)
    hashed = _visitor_hash(session, visit, code.slug)
    return plan_redirect(code, visit, accept_language, hashed, settings)


def _subject(slug: str) -> str:
    return f"code:{slug}"


def _visitor_hash(session: Session, visit: Visit, slug: str) -> str | None:
    try:
        return todays_visitor_hash(session, visit, _subject(slug))
    except SQLAlchemyError:  # no key of the day while the database is down: no stickiness
        session.rollback()
        return None
