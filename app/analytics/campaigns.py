"""Campaigns, creatives and placements (each placement is one dynamic code)."""

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.analytics import codes
from app.analytics.models import Campaign, Creative, Placement
from app.analytics.schemas import (
    CampaignCreate,
    CampaignUpdate,
    CreativeCreate,
    PlacementCreate,
    PlacementUpdate,
    RoutingRule,
)
from app.errors import Conflict, NotFound, Unprocessable
from app.versions import Expected, next_stamp, require_version

SLUG_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud and typed
SLUG_LENGTH = 7


class CampaignNotFound(NotFound):
    def __init__(self, campaign_id: int) -> None:
        super().__init__(f"No campaign with id {campaign_id}.")


class PlacementNotFound(NotFound):
    def __init__(self, placement_id: int) -> None:
        super().__init__(f"No placement with id {placement_id}.")


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "campaign"


@dataclass(frozen=True)
class Unique:
    """A value that must be free: the field that holds it, its words, a query for its holder."""

    field: str
    what: str
    holder: Any


def _commit_unique(
    session: Session, unique: Sequence[Unique], audit_entry: Callable[[], object]
) -> None:
    """Commit with its audit entry; a taken name or code becomes a Conflict beside its field
    (found after the clash, so a save that clashes with nothing costs no extra query)."""
    try:
        session.flush()  # a clash shows here, and a new row gets the id its entry names
        audit_entry()
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        taken = [u for u in unique if session.exec(u.holder).first() is not None]
        if not taken:  # its holder went meanwhile: say what clashed, above the form
            raise Conflict(f"{unique[0].what} is taken already; choose another.") from exc
        words = f"{taken[0].what} is taken already; choose another."
        raise Conflict(words, loc=("body", taken[0].field)) from exc


def _name_in(table: Any, campaign_id: int, name: str, noun: str) -> Unique:
    holder = select(table).where(table.campaign_id == campaign_id, table.name == name)
    return Unique("name", f"The {noun} name {name!r} (in this campaign)", holder)


def create_campaign(session: Session, data: CampaignCreate, *, actor: str) -> Campaign:
    """A campaign; its utm_campaign defaults to its name in lower case with hyphens."""
    campaign = Campaign(
        **data.model_dump(exclude={"utm_campaign"}),
        utm_campaign=data.utm_campaign or slugify(data.name),
    )
    _check_dates(campaign)
    session.add(campaign)
    _commit_unique(
        session,
        [Unique("name", f"The campaign name {data.name!r}", _campaign_named(data.name))],
        lambda: _audit(
            session, actor, "campaign.created", campaign, f"Campaign “{data.name}” created"
        ),
    )
    codes.rules_changed()
    return campaign


def _check_dates(campaign: Campaign) -> None:
    # Refused on the end date, the field a person fixes, in the words of both forms' labels.
    if campaign.starts_on and campaign.ends_on and campaign.starts_on > campaign.ends_on:
        raise Unprocessable(
            "The end date must not be before the start date.", loc=("body", "ends_on")
        )


def _campaign_named(name: str) -> Any:
    return select(Campaign).where(Campaign.name == name)


def get_campaign(session: Session, campaign_id: int, *, for_update: bool = False) -> Campaign:
    """A campaign; ``for_update`` locks its row and reads it afresh for a save."""
    campaign = session.get(
        Campaign, campaign_id, with_for_update=for_update, populate_existing=for_update
    )
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    return campaign


def list_campaigns(session: Session) -> Sequence[Campaign]:
    return session.exec(select(Campaign).order_by(col(Campaign.id).desc())).all()


def update_campaign(
    session: Session,
    campaign_id: int,
    data: CampaignUpdate,
    *,
    actor: str,
    expected: Expected | None = None,
) -> Campaign:
    """Change a campaign, unless it changed since ``expected``; its codes redirect with the
    new UTM values at once."""
    campaign = get_campaign(session, campaign_id, for_update=True)
    require_version(
        session, expected, campaign.updated_at, noun="campaign", entity=("campaign", campaign_id)
    )
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is None and name in {"name", "utm_source", "utm_medium", "utm_campaign"}:
            raise Unprocessable(f"{name} cannot be empty.", loc=("body", name))
        setattr(campaign, name, value)
    _check_dates(campaign)
    campaign.updated_at = next_stamp(campaign.updated_at)
    session.add(campaign)
    _commit_unique(
        session,
        [Unique("name", f"The campaign name {campaign.name!r}", _campaign_named(campaign.name))],
        lambda: _audit(
            session, actor, "campaign.updated", campaign, f"Campaign “{campaign.name}” changed"
        ),
    )
    codes.rules_changed()
    return campaign


def create_creative(
    session: Session, campaign_id: int, data: CreativeCreate, *, actor: str
) -> Creative:
    """A creative of a campaign; its utm_content defaults to its name, slugified."""
    campaign = get_campaign(session, campaign_id)
    creative = Creative(
        campaign_id=campaign_id,
        name=data.name,
        utm_content=data.utm_content or slugify(data.name),
    )
    session.add(creative)
    _commit_unique(
        session,
        [_name_in(Creative, campaign_id, data.name, "creative")],
        lambda: _audit(
            session, actor, "creative.created", campaign, f"Creative “{data.name}” added"
        ),
    )
    return creative


def list_creatives(session: Session, campaign_id: int) -> Sequence[Creative]:
    get_campaign(session, campaign_id)
    query = select(Creative).where(Creative.campaign_id == campaign_id)
    return session.exec(query.order_by(col(Creative.id))).all()


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


def create_placement(
    session: Session, campaign_id: int, data: PlacementCreate, *, actor: str
) -> Placement:
    """A placement with its dynamic code: a given slug, or a fresh random one."""
    get_campaign(session, campaign_id)
    _check_creatives(session, campaign_id, data.fallback_creative_id, data.rules)
    placement = Placement(
        campaign_id=campaign_id,
        name=data.name,
        slug=(data.slug or new_slug()).lower(),
        fallback_url=data.fallback_url,
        fallback_creative_id=data.fallback_creative_id,
        split_mode=data.split_mode,
        rules=[rule.model_dump(mode="json", exclude_none=True) for rule in data.rules],
    )
    session.add(placement)
    slug = placement.slug
    _commit_unique(
        session,
        [
            Unique("slug", f"The code {slug!r}", select(Placement).where(Placement.slug == slug)),
            _name_in(Placement, campaign_id, data.name, "placement"),
        ],
        lambda: _audit(
            session, actor, "placement.created", placement, f"Placement “{data.name}” created"
        ),
    )
    codes.rules_changed()
    return placement


def get_placement(session: Session, placement_id: int, *, for_update: bool = False) -> Placement:
    """A placement; ``for_update`` locks its row and reads it afresh for a save."""
    placement = session.get(
        Placement, placement_id, with_for_update=for_update, populate_existing=for_update
    )
    if placement is None:
        raise PlacementNotFound(placement_id)
    return placement


def list_placements(session: Session, campaign_id: int) -> Sequence[Placement]:
    get_campaign(session, campaign_id)
    query = select(Placement).where(Placement.campaign_id == campaign_id)
    return session.exec(query.order_by(col(Placement.id))).all()


def update_placement(
    session: Session,
    placement_id: int,
    data: PlacementUpdate,
    *,
    actor: str,
    expected: Expected | None = None,
) -> Placement:
    """Change a placement's rules or fallback, unless it changed since ``expected``; every
    server routes by them within seconds."""
    placement = get_placement(session, placement_id, for_update=True)
    require_version(
        session,
        expected,
        placement.updated_at,
        noun="placement",
        entity=("placement", placement_id),
    )
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude={"rules"})
    for name in ("name", "fallback_url", "split_mode"):
        if name in changes and changes[name] is None:
            raise Unprocessable(f"{name} cannot be empty.", loc=("body", name))
    fallback_creative = changes.get("fallback_creative_id", placement.fallback_creative_id)
    rules = data.rules if data.rules is not None else None
    _check_creatives(session, placement.campaign_id, fallback_creative, rules or [])
    for name, value in changes.items():
        setattr(placement, name, value)
    if rules is not None:
        placement.rules = [rule.model_dump(mode="json", exclude_none=True) for rule in rules]
    placement.updated_at = next_stamp(placement.updated_at)
    session.add(placement)
    summary = f"Placement “{placement.name}” changed ({len(data.rules or [])} rules)"
    _commit_unique(
        session,
        [_name_in(Placement, placement.campaign_id, placement.name, "placement")],
        lambda: _audit(session, actor, "placement.updated", placement, summary),
    )
    codes.rules_changed()
    return placement


def _check_creatives(
    session: Session, campaign_id: int, fallback: int | None, rules: Sequence[RoutingRule]
) -> None:
    """Creatives named by a code must belong to its campaign."""
    own = set(session.exec(select(Creative.id).where(Creative.campaign_id == campaign_id)).all())
    if fallback is not None and fallback not in own:
        raise Unprocessable(
            f"Creative {fallback} is not a creative of this campaign.",
            loc=("body", "fallback_creative_id"),
        )
    for i, rule in enumerate(rules):
        for j, target in enumerate(rule.destinations):
            if target.creative_id is not None and target.creative_id not in own:
                raise Unprocessable(
                    f"Creative {target.creative_id} is not a creative of this campaign.",
                    loc=("body", "rules", i, "destinations", j, "creative_id"),
                )


def _audit(
    session: Session, actor: str, action: str, row: Campaign | Placement, summary: str
) -> None:
    assert row.id is not None
    kind = "campaign" if isinstance(row, Campaign) else "placement"
    audit.record(
        session, actor=actor, action=action, entity_type=kind, entity_id=row.id, summary=summary
    )
