"""Optional second factor for staff sign-in: TOTP codes (RFC 6238, any authenticator app)
through pyotp, with ten single-use recovery codes for a lost phone. Stored: the TOTP secret,
the last time step used (a code works once) and SHA-256 hashes of the unused recovery codes
(each 80 random bits, so a hash is as good as the code is unguessable).

A code is used up by one conditional UPDATE that changes the row only while the code is still
unused (``_claim``): of two sign-ins sent side by side with the same code, whatever each read
before, exactly one changes the row and signs in (RFC 6238 section 5.2), on SQLite and
PostgreSQL alike.

``OFFERTRACK_REQUIRE_ADMIN_2FA`` makes it compulsory for admins: an admin without it enrols at
sign-in before the session starts, and cannot switch it off; an admin's session begun on the
password alone (before the setting was switched on) ends at its next request
(app.admin.access).
"""

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

import pyotp
import segno
from sqlalchemy import JSON, ForeignKey, Integer, String, func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Column, Field, Session, SQLModel, col

from app import audit
from app.admin import throttle
from app.admin.users import Staff
from app.auth.staff import Role
from app.config import Settings
from app.db import UTCDateTime, read_only, utcnow
from app.errors import Conflict, Unprocessable

ISSUER = "OfferTrack"
RECOVERY_CODES = 10
# Crockford's alphabet without look-alikes, as the tracking IDs use.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class StaffTotp(SQLModel, table=True):
    __tablename__ = "staff_totp"

    user_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    secret: str = Field(sa_type=String(64))
    # None while enrolment waits for the first code from the app.
    enabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_step: int = 0
    recovery_hashes: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SecondStep(StrEnum):
    """What sign-in needs after the password."""

    NONE = "none"
    VERIFY = "verify"  # a code from the app (or a recovery code)
    ENROL = "enrol"  # an admin without 2FA where it is required: set it up first


class WrongCode(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "That code is not right. Enter the 6-digit code your app shows now, or one of your "
            "recovery codes.",
            loc=("code",),
        )


def _hash(code: str) -> str:
    return hashlib.sha256(_clean(code).encode()).hexdigest()


def _clean(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _enabled(session: Session, user_id: int) -> StaffTotp | None:
    row = session.get(StaffTotp, user_id, populate_existing=True)
    return row if row is not None and row.enabled_at is not None else None


def is_enabled(session: Session, user_id: int) -> bool:
    return _enabled(session, user_id) is not None


def required(staff: Staff, settings: Settings) -> bool:
    """Whether this user must sign in with two factors."""
    return settings.require_admin_2fa and staff.role == Role.ADMIN


def second_step(session: Session, staff: Staff, settings: Settings) -> SecondStep:
    if is_enabled(session, staff.id):
        return SecondStep.VERIFY
    if required(staff, settings):
        return SecondStep.ENROL
    return SecondStep.NONE


def prepare_second_step(session: Session, staff: Staff, settings: Settings) -> SecondStep:
    """What sign-in needs after the password; an admin who must enrol gets a secret waiting
    for its first code (a pending one is kept, so a reload shows the same QR code)."""
    step = second_step(session, staff, settings)
    if step is SecondStep.ENROL and pending_secret(session, staff.id) is None:
        begin_enrolment(session, staff)
    return step


def begin_enrolment(session: Session, staff: Staff) -> str:
    """A new secret waiting for its first code; returns it. Commits."""
    if is_enabled(session, staff.id):
        raise Conflict("Two-factor sign-in is on already; switch it off first to start anew.")
    row = session.get(StaffTotp, staff.id) or StaffTotp(user_id=staff.id, secret="")
    row.secret, row.enabled_at, row.last_step, row.recovery_hashes = (
        pyotp.random_base32(),
        None,
        0,
        [],
    )
    session.add(row)
    session.commit()
    return row.secret


def pending_secret(session: Session, user_id: int) -> str | None:
    row = session.get(StaffTotp, user_id)
    return row.secret if row is not None and row.enabled_at is None else None


def provisioning_qr(secret: str, email: str) -> str:
    """The otpauth:// URI as an inline SVG QR code for the authenticator app."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    svg: str = segno.make(uri, error="m").svg_inline(scale=4, title="Two-factor set-up code")
    return svg


def confirm_enrolment(session: Session, staff: Staff, code: str) -> list[str]:
    """Switch 2FA on with the first code from the app; returns the recovery codes, shown
    once. Commits."""
    row = session.get(StaffTotp, staff.id, populate_existing=True)
    if row is None or row.enabled_at is not None:
        raise Conflict("Start the set-up again: there is no code waiting to be confirmed.")
    step = _matching_step(row, code)
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    # Switched on in the UPDATE that takes the code, and only while it is still off: of two
    # confirmations side by side (codes of two steps), one sets the recovery codes its page
    # shows, and the other, however late its read, changes nothing.
    pending = (col(StaffTotp.last_step) < (step or 0)) & col(StaffTotp.enabled_at).is_(None)
    hashes = [_hash(c) for c in codes]
    if step is None or not _claim(
        session, row, pending, last_step=step, enabled_at=utcnow(), recovery_hashes=hashes
    ):
        if is_enabled(session, staff.id):  # read again: switched on beside us
            raise Conflict("Two-factor sign-in is on already: use the recovery codes shown then.")
        raise WrongCode()
    _audit(session, staff, "staff_user.2fa_on", f"Two-factor sign-in on for {staff.email}")
    session.commit()
    return codes


def check_second_factor(
    session: Session, staff: Staff, code: str, who: throttle.Attempt
) -> list[str] | None:
    """The second step of a sign-in: the app's code (or a recovery code) of an enrolled user,
    or the first code of a set-up, which returns the new recovery codes; WrongCode if it is
    not right. Counted and throttled like a password (app.admin.throttle). Commits."""
    throttle.count_attempt(session, who)
    with read_only(session):
        enabled = is_enabled(session, staff.id)
    if not enabled:
        codes: list[str] | None = confirm_enrolment(session, staff, code)
    elif verify(session, staff.id, code):
        codes = None
    else:
        raise WrongCode()
    throttle.forgive(session, who)
    session.commit()
    return codes


def verify(session: Session, user_id: int, code: str) -> bool:
    """Whether ``code`` is the app's current code (once) or an unused recovery code, which
    it uses up. Commits on success."""
    # Read outside any transaction (on SQLite: without the one writer's lock, as the throttle
    # does): what was read may be stale by the time the code is claimed, which _claim allows.
    with read_only(session):
        row = _enabled(session, user_id)
    if row is None:
        return False
    if _take_totp(session, row, code) or _take_recovery(session, row, code):
        session.commit()
        return True
    session.rollback()
    return False


def disable(
    session: Session, staff: Staff, code: str, settings: Settings, who: throttle.Attempt
) -> None:
    """Switch 2FA off, proven with a current code; wrong codes count and are throttled as at
    sign-in (a session left open must not let its finder try the million codes). Commits."""
    if required(staff, settings):
        raise Conflict("Admins must sign in with two factors here (OFFERTRACK_REQUIRE_ADMIN_2FA).")
    throttle.count_attempt(session, who)
    with read_only(session):
        row = _enabled(session, staff.id)
    if row is None:
        raise Conflict("Two-factor sign-in is off already.")
    if not (_take_totp(session, row, code) or _take_recovery(session, row, code)):
        raise WrongCode()
    session.delete(row)
    _audit(session, staff, "staff_user.2fa_off", f"Two-factor sign-in off for {staff.email}")
    throttle.forgive(session, who)
    session.commit()


def reset(session: Session, user_id: int, email: str, *, actor: str) -> None:
    """Remove a user's second factor (a lost phone without recovery codes). Commits."""
    row = session.get(StaffTotp, user_id)
    if row is not None:
        session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="staff_user.2fa_reset",
        entity_type="staff_user",
        entity_id=user_id,
        summary=f"Two-factor sign-in reset for {email}",
    )
    session.commit()


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    row = _enabled(session, user_id)
    return len(row.recovery_hashes) if row is not None else 0


def _take_totp(session: Session, row: StaffTotp, code: str) -> bool:
    """Accept the code of the current 30-second step or a neighbour (clock drift), never a
    step already used: an overheard code cannot be replayed, nor sent twice side by side."""
    step = _matching_step(row, code)
    if step is None:
        return False
    # Only forward, and only if no sign-in has used this step (or a later one) since the row
    # was read.
    return _claim(session, row, col(StaffTotp.last_step) < step, last_step=step)


def _matching_step(row: StaffTotp, code: str) -> int | None:
    digits = _clean(code)
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(row.secret)
    now_step = totp.timecode(utcnow())
    for step in (now_step - 1, now_step, now_step + 1):
        if step > row.last_step and secrets.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def _take_recovery(session: Session, row: StaffTotp, code: str) -> bool:
    hashed = _hash(code)
    if len(_clean(code)) != 16 or hashed not in row.recovery_hashes:
        return False
    left = [h for h in row.recovery_hashes if h != hashed]
    # The list only shrinks while two-factor is on (an enrolment sets it anew, from an empty
    # one), so as many codes as were read means none was used since.
    unchanged = func.json_array_length(StaffTotp.recovery_hashes) == len(row.recovery_hashes)
    return _claim(session, row, unchanged, recovery_hashes=left)


def _claim(session: Session, row: StaffTotp, still_unused: Any, **values: Any) -> bool:
    """Use up a code in one UPDATE that changes the row only ``still_unused``: whoever
    changes it has the code; anyone after or beside them, whatever they read, has not."""
    claimed = session.execute(
        update(StaffTotp)
        .where(
            col(StaffTotp.user_id) == row.user_id,
            col(StaffTotp.secret) == row.secret,  # the code was checked against this one
            still_unused,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    for name, value in values.items():
        set_committed_value(row, name, value)  # as written: nothing left to flush
    return True


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))  # 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _audit(session: Session, staff: Staff, action: str, summary: str) -> Any:
    return audit.record(
        session,
        actor=staff.actor,
        action=action,
        entity_type="staff_user",
        entity_id=staff.id,
        summary=summary,
    )
