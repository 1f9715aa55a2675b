"""Which campaign, placement and creative an offer belongs to, checked for consistency."""

from sqlmodel import Session

from app.analytics.models import Campaign, Creative, Placement
from app.errors import Unprocessable


def check_assignment(
    session: Session,
    campaign_id: int | None,
    placement_id: int | None,
    creative_id: int | None,
) -> None:
    """Placement and creative need the campaign they belong to; each id must exist."""
    if campaign_id is not None and session.get(Campaign, campaign_id) is None:
        raise Unprocessable(f"No campaign with id {campaign_id}.", loc=("body", "campaign_id"))
    for name, model, value in (
        ("placement_id", Placement, placement_id),
        ("creative_id", Creative, creative_id),
    ):
        if value is None:
            continue
        row = session.get(model, value)
        if row is None:
            raise Unprocessable(f"No {name[:-3]} with id {value}.", loc=("body", name))
        if row.campaign_id != campaign_id:
            raise Unprocessable(
                f"{name[:-3].capitalize()} {value} belongs to campaign {row.campaign_id}; "
                "set campaign_id to it.",
                loc=("body", name),
            )
