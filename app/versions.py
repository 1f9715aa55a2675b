"""Optimistic concurrency, written once: a save that starts from an old copy of a row is refused
instead of silently overwriting what someone else saved since.

A row's version is its ``updated_at`` (microseconds on both SQLite and PostgreSQL), which every
save moves on with ``next_stamp``. Staff forms carry the version they were opened at in a hidden
field (``VERSION_FIELD``); the API sends it as an ``ETag`` and takes it back in ``If-Match``.
The service compares under the row lock it takes to save (``require_version``): on PostgreSQL a
second transaction waits for the first's commit and then reads the version it wrote; SQLite has
one writer at a time. No version given (no ``If-Match``, an old form) saves as before.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from app import audit
from app.config import get_settings
from app.db import utcnow
from app.errors import AppError
from app.i18n import DEFAULT_LANGUAGE, format_datetime

VERSION_FIELD = "version"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def version_of(stamp: datetime) -> str:
    """The token a form carries and an ETag quotes: ``updated_at`` in microseconds."""
    return str((stamp - _EPOCH) // _TICK)


def etag_of(stamp: datetime) -> str:
    return f'"{version_of(stamp)}"'


def next_stamp(previous: datetime) -> datetime:
    """The ``updated_at`` of a save: now, but always after ``previous``, so that each save is a
    new version even within one microsecond or when this node's clock is behind another's."""
    return max(utcnow(), previous + _TICK)


@dataclass(frozen=True)
class Expected:
    """The versions a client read the row at (``If-Match`` may list several)."""

    versions: frozenset[str]

    @classmethod
    def from_if_match(cls, header: str | None) -> "Expected | None":
        """``If-Match`` as RFC 9110 reads it: ``*`` or no header asks nothing; a weak tag
        (``W/"…"``) never matches, as the strong comparison it needs says."""
        if header is None or header.strip() == "*":
            return None
        return cls(frozenset(_unquoted(tag.strip()) for tag in header.split(",")))

    @classmethod
    def from_form(cls, value: object) -> "Expected | None":
        """The form's hidden field; a form without one (posted by a script) asks nothing."""
        text = str(value or "").strip()
        return cls(frozenset({text})) if text else None

    def allows(self, stamp: datetime) -> bool:
        return version_of(stamp) in self.versions


def _unquoted(tag: str) -> str:
    return tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag


class StaleEdit(AppError):
    """The row changed since the client read it: saving would overwrite that change."""

    status_code = 412
    title = "Precondition failed"

    def __init__(self, noun: str, changed_at: datetime, changed_by: str | None) -> None:
        self.noun, self.changed_at, self.changed_by = noun, changed_at, changed_by
        # Who changed it is for the staff site only: an API client learns no staff address.
        super().__init__(
            f"This {noun} was changed at {changed_at.isoformat()} since the version you sent; "
            "nothing was saved. Read it again and make your change to the current version."
        )

    def _changed(self, when: str) -> str:
        by = f" by {audit.actor_name(self.changed_by)}" if self.changed_by else ""
        return f"This {self.noun} was changed{by} at {when}"

    def since_opened(self, outcome: str = "Your changes are below and were not saved.") -> str:
        """The refusal as a staff page shows it (above what was typed, or, for a button, what
        it did not do), in the company's time."""
        when = format_datetime(self.changed_at, DEFAULT_LANGUAGE, get_settings().zone)
        return f"{self._changed(when)} since you opened it. {outcome}"

    def headers(self) -> dict[str, str]:
        return {"ETag": etag_of(self.changed_at)}


def require_version(
    session: Session,
    expected: Expected | None,
    stamp: datetime,
    *,
    noun: str,
    entity: tuple[str, str | int],
) -> None:
    """Refuse a save that starts from another version than ``stamp``, the row's own, read
    under the lock the save holds. ``entity`` (audit type and id) names who changed it."""
    if expected is None or expected.allows(stamp):
        return
    entity_type, entity_id = entity
    last = audit.last_change(session, entity_type, str(entity_id))
    raise StaleEdit(noun, stamp, last.actor if last else None)
