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
    for name, value in (("placement_id", placement_id), ("creative_id", creative_id)):
        if value is None:
            continue
        what = name.removesuffix("_id")
        row = session.get(Placement if what == "placement" else Creative, value)
        owner = getattr(row, "campaign_id", None)
        if row is None:
            raise Unprocessable(f"No {what} with id {value}.", loc=("body", name))
        if owner != campaign_id:
            raise Unprocessable(
                f"{what.capitalize()} {value} belongs to campaign {owner}; set campaign_id to it.",
                loc=("body", name),
            )
