"""stage_update: an order's first note in its offer's language

Revision ID: l05e1207a002
Revises: l05e1207a001
Create Date: 2026-12-07 23:10:00

Activating an offer writes the order's first note, "We have received your order.", in the
offer's language; orders activated before that fix keep it in English on a German or Greek
tracking page. Only that exact note, as the first update of an order whose offer is in German
or Greek, is put in the offer's language: a note staff wrote stays as written. The texts are
copied here from the catalogs as they were, so a later change of wording leaves this alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "l05e1207a002"
down_revision: str | None = "l05e1207a001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENGLISH = "We have received your order."
TRANSLATED = {"de": "Wir haben Ihre Bestellung erhalten.", "el": "Λάβαμε την παραγγελία σας."}
FIRST_NOTE = sa.text(
    "UPDATE stage_update SET public_note = :to"
    " WHERE public_note = :from"
    " AND offer_id IN (SELECT id FROM offer WHERE language = :language)"
    " AND id = (SELECT min(earliest.id) FROM stage_update earliest"
    "           WHERE earliest.offer_id = stage_update.offer_id)"
)


def upgrade() -> None:
    for language, note in TRANSLATED.items():
        op.get_bind().execute(FIRST_NOTE, {"to": note, "from": ENGLISH, "language": language})


def downgrade() -> None:
    # The notes stay in the offer's language: what activation writes at either revision, and
    # what the customer has read since.
    pass
