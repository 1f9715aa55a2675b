"""Staff users: creation, roles, passwords and sign-in. Every change is audited."""

import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from app import audit
from app.admin import sessions as staff_sessions
from app.admin import throttle
from app.auth import passwords
from app.auth.staff import Role, StaffUser
from app.db import read_only
from app.errors import AppError, Conflict, NotFound, Unprocessable
from app.formats import DecimalMark
from app.tracking import pagecache
from app.versions import Expected, next_stamp, require_version

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StaffUserNotFound(NotFound):
    def __init__(self, user: int | str) -> None:
        super().__init__(f"No staff user {user!r}.")


class InvalidCredentials(AppError):
    status_code = 400
    title = "Sign-in failed"

    def __init__(self) -> None:
        super().__init__("The e-mail address or the password is not right.")


@dataclass(frozen=True)
class Staff:
    """The signed-in staff user, as pages and permission checks see them."""

    id: int
    email: str
    role: Role
    decimal_mark: DecimalMark = DecimalMark.POINT
    must_change_password: bool = False

    @property
    def actor(self) -> str:
        return f"staff:{self.email}"

    def can(self, required: Role) -> bool:
        return self.role.includes(required)


def _staff(user: StaffUser) -> Staff:
    assert user.id is not None
    return Staff(
        user.id,
        user.email,
        Role(user.role),
        DecimalMark(user.decimal_mark),
        user.must_change_password,
    )


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if not EMAIL_PATTERN.match(value) or len(value) > 320:
        raise Unprocessable("Enter an e-mail address like ana@example.com.", loc=("email",))
    return value


def _check_password(password: str, email: str) -> None:
    problem = passwords.password_problem(password, [email])
    if problem:
        raise Unprocessable(problem, loc=("password",))


def find_by_email(session: Session, email: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.email == email.strip().lower())).first()


def get_user(session: Session, user_id: int, *, for_update: bool = False) -> StaffUser:
    """A staff user; ``for_update`` locks the row and reads it afresh for a save."""
    user = session.get(StaffUser, user_id, with_for_update=for_update, populate_existing=for_update)
    if user is None:
        raise StaffUserNotFound(user_id)
    return user


def create_user(
    session: Session,
    email: str,
    role: Role,
    password: str,
    *,
    actor: str,
    given: bool = False,
) -> StaffUser:
    """Create a staff user with an Argon2 password hash; ``given``: an admin chose the password
    and passes it on, so the user is asked to choose their own."""
    address = normalize_email(email)
    _check_password(password, address)
    if find_by_email(session, address) is not None:
        raise Conflict(f"A staff user {address} exists already.")
    user = StaffUser(
        email=address,
        role=Role(role),
        password_hash=passwords.hash_password(password),
        must_change_password=given,
    )
    session.add(user)
    session.flush()
    assert user.id is not None
    audit.record(
        session,
        actor=actor,
        action="staff_user.create",
        entity_type="staff_user",
        entity_id=user.id,
        summary=f"Created staff user {address} ({user.role})",
        changes={"email": address, "role": user.role},
    )
    session.commit()
    return user


def _active_admins(session: Session) -> int:
    return session.exec(
        select(func.count())
        .select_from(StaffUser)
        .where(StaffUser.role == Role.ADMIN, col(StaffUser.is_active).is_(True))
    ).one()


def update_user(
    session: Session,
    user_id: int,
    *,
    role: Role,
    is_active: bool,
    actor: str,
    expected: Expected | None = None,
    password: str | None = None,
    by: int | None = None,
) -> StaffUser:
    """Change a user's role, active flag and (given one) password, all or nothing, unless the
    user changed since ``expected``; the last active admin stays an active admin. An admin
    (``by``) sets their own password on Your account only, where the current one is asked for
    and this browser's session renewed: an admin page left open is not enough to take over."""
    if password and by == user_id:
        raise Unprocessable(
            "To change your own password, use Your account: it asks for the current one.",
            loc=("new_password",),
        )
    user = get_user(session, user_id, for_update=True)
    if password:
        _check_password(password, user.email)
    require_version(session, expected, user.updated_at, noun="user", entity=("staff_user", user_id))
    changed = _change_role(session, user, Role(role), is_active, actor)
    if password:
        _change_password(session, user, password, actor, given=True)
    elif not changed:
        return user
    session.commit()
    return user


def _change_role(
    session: Session, user: StaffUser, role: Role, is_active: bool, actor: str
) -> bool:
    changed = [
        (name, old, new)
        for name, old, new in (("role", user.role, role), ("is_active", user.is_active, is_active))
        if old != new
    ]
    if not changed:
        return False
    losing_admin = (
        user.role == Role.ADMIN and user.is_active and (role != Role.ADMIN or not is_active)
    )
    if losing_admin and _active_admins(session) <= 1:
        raise Conflict(f"{user.email} is the last active admin; make someone else admin first.")
    if user.is_active != is_active:
        # Tracking pages name the owner as the customer's contact, while they are active.
        pagecache.drop_all_on_commit(session)
    user.role, user.is_active = role, is_active
    user_id = _account_changed(session, user)
    audit.record(
        session,
        actor=actor,
        action="staff_user.update",
        entity_type="staff_user",
        entity_id=user_id,
        summary=f"Changed {user.email}: " + ", ".join(f"{k} {a} → {b}" for k, a, b in changed),
        changes={name: [old, new] for name, old, new in changed},
    )
    return True


def set_password(session: Session, user_id: int, password: str, *, actor: str) -> StaffUser:
    """Set a new password for a user (the operator's reset); every other session of the user
    ends. Whoever typed it knows it, so the user is asked to choose their own, as after an
    admin's reset on the user's page."""
    user = get_user(session, user_id)
    _check_password(password, user.email)
    _change_password(session, user, password, actor, given=True)
    session.commit()
    return user


def _change_password(
    session: Session, user: StaffUser, password: str, actor: str, *, given: bool = False
) -> None:
    user.password_hash = passwords.hash_password(password)
    user.must_change_password = given
    user_id = _account_changed(session, user)
    throttle.forgive_account(session, user.email)
    audit.record(
        session,
        actor=actor,
        action="staff_user.password",
        entity_type="staff_user",
        entity_id=user_id,
        summary=f"Set a new password for {user.email}",
    )


def _account_changed(session: Session, user: StaffUser) -> int:
    """A new version of the account, and the end of its sessions (they ran on the old one)."""
    assert user.id is not None
    user.updated_at = next_stamp(user.updated_at)
    session.add(user)
    staff_sessions.end_for_account_change(session, user.id)
    return user.id


def sign_in(session: Session, email: str, password: str, who: throttle.Attempt) -> Staff:
    """The staff user behind the credentials; failures are counted and throttled."""
    throttle.count_attempt(session, who)
    with read_only(session):
        user = find_by_email(session, email)
        hashed = user.password_hash if user is not None and user.is_active else None
    if not passwords.verify_password(hashed, password):
        raise InvalidCredentials()
    assert user is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    session.add(user)  # last_login_at waits for the session itself (a second factor may follow)
    throttle.forgive(session, who)
    session.commit()
    return _staff(user)


def change_own_password(
    session: Session,
    staff: Staff,
    current: str,
    new: str,
    who: throttle.Attempt,
    *,
    session_id: int,
) -> str:
    """A user's own new password, given with their current one: a session left open on a
    shared computer is not enough to take the account over. The current password is counted
    and throttled as at sign-in; every other session of the user ends, and this one
    (``session_id``) goes on under a new token, which it returns for the cookie. Commits."""
    try:
        _check_password(new, staff.email)  # first: a rule broken by the new one costs no attempt
    except Unprocessable as exc:
        raise Unprocessable(exc.detail, loc=("new_password",)) from None
    if new == current:  # no new password, right or wrong: not a guess to count
        raise Unprocessable(
            "The new password is the same as the current one: choose another.",
            loc=("new_password",),
        )
    throttle.count_attempt(session, who)
    with read_only(session):
        user = get_user(session, staff.id)
        hashed = user.password_hash
    if not passwords.verify_password(hashed, current):
        raise Unprocessable("That is not your current password.", loc=("current_password",))
    _change_password(session, user, new, staff.actor)  # and forgives the account's count
    token = staff_sessions.renew(session, session_id)
    session.commit()
    return token


def set_decimal_mark(session: Session, user_id: int, choice: str) -> None:
    """How the user types amounts and gets their CSV downloads. Not audited: a preference of
    their own, like a column's sort, that changes no data and no one else's view."""
    try:
        mark = DecimalMark(choice)
    except ValueError:
        raise Unprocessable(
            "Choose the decimal point or the decimal comma.", loc=("decimal_mark",)
        ) from None
    user = get_user(session, user_id)
    user.decimal_mark = mark
    session.commit()


def load_active(session: Session, user_id: int) -> Staff | None:
    """The user a live session belongs to, while active."""
    user = session.get(StaffUser, user_id)
    return _staff(user) if user is not None and user.is_active else None
