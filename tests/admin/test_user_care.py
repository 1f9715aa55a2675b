"""An admin looking after colleagues' accounts: someone leaves (their offers handed over to a
colleague, audited), someone loses their phone (signed out everywhere, second factor reset);
and the pages an admin reads on the way (terms templates, settings)."""

import re
from collections.abc import Callable

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.admin import twofactor, user_actions, users
from app.audit import AuditLogEntry
from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.auth.staff import Role
from app.config import get_settings, settings_dependency
from app.notifications.models import StaffAlert
from app.offers.models import Offer
from tests.admin.browserforms import form_fields
from tests.admin.conftest import StaffLogin, csrf_from, sign_in
from tests.admin.staffroutes import staff_app
from tests.factories import make_offer


def _user_id(db: Session, email: str) -> int:
    with Session(db.get_bind()) as session:
        user = users.find_by_email(session, email)
        assert user is not None and user.id is not None
        return user.id


def _owned_offers(db: Session, owner: str) -> tuple[str, str]:
    """A draft and an issued offer of ``owner``, and an alert about the issued one waiting for
    their digest."""
    settings = get_settings()
    with Session(db.get_bind(), expire_on_commit=False) as session:
        owner_id = _user_id(db, owner)
        draft = make_offer(session, settings)
        issued = make_offer(session, settings, issued=True)
        for offer in (draft, issued):
            offer.owner_id = owner_id
            session.add(offer)
        session.add(
            StaffAlert(
                dedupe_key=f"scanned:{issued.id}:2026-12-01",
                offer_id=issued.id,
                kind="scanned",
                recipient=owner,
                mode="digest",
                summary="Scanned",
            )
        )
        session.commit()
        return draft.id, issued.id


def _audit(db: Session, action: str) -> list[AuditLogEntry]:
    with Session(db.get_bind()) as session:
        query = select(AuditLogEntry).where(AuditLogEntry.action == action)
        return list(session.exec(query.order_by(col(AuditLogEntry.id))).all())


def test_a_leavers_offers_are_handed_over_to_a_colleague_with_their_alerts_and_history(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    make_staff(Role.SALES, "leaving@example.com")
    make_staff(Role.SALES, "taking@example.com")
    make_staff(Role.VIEWER, "reader@example.com")
    draft_id, issued_id = _owned_offers(db, "leaving@example.com")
    token = sign_in(web, make_staff(Role.ADMIN))
    user_id = _user_id(db, "leaving@example.com")
    form = {"csrf_token": token, "role": "sales", "new_password": "", "confirm_disable": "y"}

    disabled = web.post(f"/admin/staff-user/edit/{user_id}", data=form)

    assert "leaving@example.com still owns 2 offers" in disabled.text  # told at once
    customers_page = web.get(f"/{issued_id}")
    assert customers_page.status_code == 200
    assert "leaving@example.com" not in customers_page.text  # customers see the company
    assert "leaving@example.com (disabled)</option>" in web.get("/admin/offer/list").text
    offer_page = web.get(f"/admin/offer/details/{issued_id}").text
    assert "leaving@example.com (disabled: alerts go to the sales address" in offer_page
    page = web.get(f"/admin/staff-user/details/{user_id}")
    assert "is disabled but still owns 2 offers (2 still open)" in page.text
    assert "Hand over offers…" in page.text
    handover = web.get(f"/admin/users/{user_id}/handover")
    assert "taking@example.com" in handover.text
    assert "reader@example.com" not in handover.text  # a viewer cannot write offers

    unchosen = web.post(f"/admin/users/{user_id}/handover", data={"csrf_token": token})
    assert unchosen.status_code == 422
    assert 'id="to_user-error">Choose who takes the offers over.' in unchosen.text
    reader = str(_user_id(db, "reader@example.com"))
    to_viewer = web.post(
        f"/admin/users/{user_id}/handover", data={"csrf_token": token, "to_user": reader}
    )
    assert to_viewer.status_code == 422 and "Choose an active sales person" in to_viewer.text

    taking = _user_id(db, "taking@example.com")
    done = web.post(
        f"/admin/users/{user_id}/handover", data={"csrf_token": token, "to_user": str(taking)}
    )

    assert "2 offers of leaving@example.com now belong to taking@example.com" in done.text
    with Session(db.get_bind()) as session:
        owners = session.exec(select(Offer.owner_id).where(col(Offer.owner_id).is_not(None)))
        assert set(owners.all()) == {taking}
        alert = session.exec(select(StaffAlert)).one()
        assert alert.recipient == "taking@example.com"
    assert "taking@example.com" in web.get(f"/{issued_id}").text
    owner = re.search(
        r'id="offer-owner">([^<]+)<', web.get(f"/admin/offer/details/{issued_id}").text
    )
    assert owner is not None and owner.group(1) == "taking@example.com"
    assigned = _audit(db, "offer.assign")
    assert len(assigned) == 2
    assert assigned[0].summary == "Owner changed from leaving@example.com to taking@example.com"
    assert draft_id in {entry.offer_id for entry in assigned}
    handed = _audit(db, "staff_user.handover")
    assert [entry.summary for entry in handed] == [
        "Handed 2 offers of leaving@example.com over to taking@example.com"
    ]
    again = web.get(f"/admin/users/{user_id}/handover")
    assert "owns no offers: there is nothing to hand over" in again.text


def test_a_lost_phone_ends_the_users_sessions_and_resets_their_second_factor(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
) -> None:
    lost = make_staff(Role.SALES, "lost@example.com")
    sign_in(second_browser, lost)  # the phone, still signed in
    with Session(db.get_bind()) as session:
        staff = users.load_active(session, _user_id(db, lost.email))
        assert staff is not None
        secret = twofactor.begin_enrolment(session, staff)
        twofactor.confirm_enrolment(session, staff, pyotp.TOTP(secret).now())
    token = sign_in(web, make_staff(Role.ADMIN))
    user_id = _user_id(db, lost.email)
    page = web.get(f"/admin/staff-user/details/{user_id}").text
    assert "Sign out everywhere…" in page and "Reset two-factor sign-in…" in page

    asked = web.get(f"/admin/users/{user_id}/reset-2fa")
    assert "Reset two-factor sign-in of lost@example.com?" in asked.text
    assert second_browser.get("/admin/account").status_code == 200  # asking changed nothing

    reset = web.post(f"/admin/users/{user_id}/reset-2fa", data={"csrf_token": token})

    assert "Two-factor sign-in of lost@example.com is reset and they are signed out" in reset.text
    assert "/admin/login" in str(second_browser.get("/admin/account").url)
    with Session(db.get_bind()) as session:
        assert not twofactor.is_enabled(session, user_id)
    assert [e.summary for e in _audit(db, "staff_user.2fa_reset")] == [
        "Two-factor sign-in reset for lost@example.com"
    ]
    sign_in(second_browser, lost)  # the password alone, and set up again on Your account
    assert "Set up two-factor" in second_browser.get("/admin/account").text


def test_an_admin_signs_a_user_out_everywhere_but_not_themselves(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
) -> None:
    other = make_staff(Role.VIEWER, "other@example.com")
    sign_in(second_browser, other)
    admin = make_staff(Role.ADMIN)
    token = sign_in(web, admin)
    user_id = _user_id(db, other.email)

    assert (
        "Sign other@example.com out on every device now?"
        in web.get(f"/admin/users/{user_id}/sign-out").text
    )
    ended = web.post(f"/admin/users/{user_id}/sign-out", data={"csrf_token": token})

    assert "other@example.com is signed out everywhere (1 session ended)." in ended.text
    assert "/admin/login" in str(second_browser.get("/admin/account").url)
    assert [e.summary for e in _audit(db, "staff_user.sessions_end")] == [
        "Signed other@example.com out everywhere (1 sessions)"
    ]
    own = web.post(f"/admin/users/{_user_id(db, admin.email)}/sign-out", data={"csrf_token": token})
    assert "For your own account, use Your account" in own.text
    assert web.get("/admin/account").status_code == 200


def test_staff_pages_refuse_the_user_actions_to_anyone_but_an_admin(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    make_staff(Role.SALES, "colleague@example.com")
    token = sign_in(web, make_staff(Role.SALES))
    user_id = _user_id(db, "colleague@example.com")

    for path in ("handover", "sign-out", "reset-2fa"):
        assert web.get(f"/admin/users/{user_id}/{path}").status_code == 403
        posted = web.post(f"/admin/users/{user_id}/{path}", data={"csrf_token": token})
        assert posted.status_code == 403
    for action in ("staff_user.handover", "staff_user.sessions_end", "staff_user.2fa_reset"):
        assert _audit(db, action) == []  # a sales person's crafted POST did nothing


def test_deleting_a_terms_template_asks_first(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    token = sign_in(web, make_staff(Role.ADMIN))
    web.post(
        "/admin/terms-templates/new",
        data={"csrf_token": token, "name": "Standard", "kind": "terms", "body": "Net 30."},
    )
    listed = web.get("/admin/terms-templates").text
    match = re.search(r'action="([^"]+/delete)"', listed)
    assert match is not None
    delete_url = match.group(1)

    asked = web.post(delete_url, data={"csrf_token": csrf_from(listed)})

    assert "Delete the terms template “Standard”?" in asked.text
    assert "Standard" in web.get("/admin/terms-templates").text  # still there
    deleted = web.post(delete_url, data={"csrf_token": token, "confirmed": "yes"})
    assert "Template deleted" in deleted.text
    assert "No templates yet." in web.get("/admin/terms-templates").text


def test_the_settings_page_hides_every_password_in_a_url(
    app: FastAPI, web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    staff = staff_app(app)
    secret = get_settings().model_copy(
        update={
            "smtp_url": "smtps://mailer:mail-secret-1@smtp.example.com:465",
            "redis_url": "redis://:redis-secret-2@cache.example.com:6379/0",
            "database_url": "postgresql+psycopg://app:db-secret-3@db.example.com:5432/offers",
        }
    )
    staff.dependency_overrides[settings_dependency] = lambda: secret
    try:
        sign_in(web, make_staff(Role.ADMIN))
        page = web.get("/admin/settings").text
    finally:
        staff.dependency_overrides.pop(settings_dependency)

    assert "smtps://mailer:***@smtp.example.com:465" in page
    assert "redis://:***@cache.example.com:6379/0" in page
    assert "postgresql+psycopg://app:***@db.example.com:5432/offers" in page
    assert not re.search("secret-[1234]", page)
    # libpq and redis-py take the password as a query parameter too
    as_query = secret.model_copy(
        update={"database_url": "postgresql://app@db.example.com/offers?PASSWORD=secret-4&x=1"}
    )
    assert as_query.for_display()["database_url"] == (
        "postgresql://app@db.example.com/offers?PASSWORD=***&x=1"
    )


def test_an_address_in_use_is_refused_beside_the_email_field(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    make_staff(Role.SALES, "ana@example.com")
    token = sign_in(web, make_staff(Role.ADMIN))
    form = {"email": " Ana@Example.com", "role": "sales", "password": "a long password"}

    again = web.post("/admin/staff-user/create", data=form | {"csrf_token": token})

    assert again.status_code == 400
    feedback = re.findall(r'invalid-feedback">([^<]+)<', again.text)
    assert feedback == [
        "A staff user ana@example.com exists already: open their page to change their role or "
        "set a new password."
    ]
    assert "Ana@Example.com" in again.text  # what was typed stays


def test_a_new_sales_person_is_asked_to_replace_the_first_password_the_admin_gave(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
) -> None:
    token = sign_in(web, make_staff(Role.ADMIN))
    first = "first password 2027"
    web.post(
        "/admin/staff-user/create",
        data={"email": "new@example.com", "role": "sales", "password": first, "csrf_token": token},
    )
    hire = StaffLogin("new@example.com", first, Role.SALES)
    hire_token = sign_in(second_browser, hire)

    assert "the password an admin gave you, which they know" in second_browser.get("/admin/").text
    user_id = _user_id(db, hire.email)
    admin_view = web.get(f"/admin/staff-user/details/{user_id}").text
    assert "the one an admin gave them: not changed yet" in admin_view
    own = "my very own secret"
    changed = second_browser.post(
        "/admin/account/password",
        data={
            "csrf_token": hire_token,
            "current_password": first,
            "new_password": own,
            "new_password_again": own,
        },
    )
    assert changed.status_code == 200
    assert "which they know" not in second_browser.get("/admin/").text
    assert "chosen by themselves" in web.get(f"/admin/staff-user/details/{user_id}").text

    version = re.search(
        r'name="version"[^>]*value="([^"]+)"', web.get(f"/admin/staff-user/edit/{user_id}").text
    )
    assert version is not None
    web.post(  # forgotten: the admin sets a new one, which the user must replace again
        f"/admin/staff-user/edit/{user_id}",
        data={
            "csrf_token": token,
            "role": "sales",
            "is_active": "y",
            "new_password": "reset password 2027",
            "version": version.group(1),
        },
    )
    sign_in(second_browser, StaffLogin(hire.email, "reset password 2027", Role.SALES))
    assert "which they know" in second_browser.get("/admin/").text


def test_a_second_active_api_key_of_the_same_name_is_refused_beside_the_name(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    token = sign_in(web, make_staff(Role.ADMIN))
    web.post("/admin/api-key/create", data={"name": "erp-sync", "csrf_token": token})

    again = web.post("/admin/api-key/create", data={"name": " erp-sync ", "csrf_token": token})

    assert again.status_code == 400
    assert re.findall(r'invalid-feedback">([^<]+)<', again.text) == [
        "An active API key is called &#39;erp-sync&#39; already: give this one another name "
        "(the audit log and revoke-api-key tell keys apart by their name)."
    ]
    with Session(db.get_bind()) as session:
        key = session.exec(select(ApiKey)).one()
        auth_service.revoke_api_key(session, key.id or 0, actor="tests")
    renewed = web.post("/admin/api-key/create", data={"name": "erp-sync", "csrf_token": token})
    assert renewed.status_code == 200 and "Copy the token now" in renewed.text


def test_the_sign_in_pages_say_whom_to_ask_for_a_forgotten_password_or_a_lost_phone(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    login = web.get("/admin/login").text
    assert "Forgot your password? An admin of your company sets a new one for you" in login
    who = make_staff(Role.SALES, "phone@example.com")
    with Session(db.get_bind()) as session:
        staff = users.load_active(session, _user_id(db, who.email))
        assert staff is not None
        secret = twofactor.begin_enrolment(session, staff)
        twofactor.confirm_enrolment(session, staff, pyotp.TOTP(secret).now())
    web.post(
        "/admin/login",
        data={"email": who.email, "password": who.password, "csrf_token": csrf_from(login)},
    )
    code_page = web.get("/admin/login/2fa").text
    assert "Lost your phone and your recovery codes? An admin of your company resets" in code_page


def test_a_handover_to_an_id_beyond_any_row_is_refused_beside_the_field(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    make_staff(Role.SALES, "leaving@example.com")
    _owned_offers(db, "leaving@example.com")
    token = sign_in(web, make_staff(Role.ADMIN))
    user_id = _user_id(db, "leaving@example.com")

    for crafted in ("99999999999999999999", str(2**31), str(2**63), "9" * 5000):
        posted = web.post(
            f"/admin/users/{user_id}/handover", data={"csrf_token": token, "to_user": crafted}
        )

        assert posted.status_code == 422
        assert "Choose an active sales person or admin" in posted.text
    with Session(db.get_bind()) as session:
        assert set(session.exec(select(Offer.owner_id)).all()) == {user_id}


def test_a_handover_leaves_a_colleagues_waiting_alert_about_the_same_offer_to_them(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """The offer was someone else's when their digest alert about it was raised: it is still
    theirs to read, not the new owner's."""
    make_staff(Role.SALES, "leaving@example.com")
    make_staff(Role.SALES, "taking@example.com")
    make_staff(Role.SALES, "before@example.com")
    _, issued_id = _owned_offers(db, "leaving@example.com")
    with Session(db.get_bind()) as session:
        session.add(
            StaffAlert(
                dedupe_key=f"opened:{issued_id}:2026-11-30",
                offer_id=issued_id,
                kind="opened",
                recipient="before@example.com",
                mode="digest",
                summary="Opened",
            )
        )
        session.commit()
    token = sign_in(web, make_staff(Role.ADMIN))
    user_id = _user_id(db, "leaving@example.com")
    taking = str(_user_id(db, "taking@example.com"))

    web.post(f"/admin/users/{user_id}/handover", data={"csrf_token": token, "to_user": taking})

    with Session(db.get_bind()) as session:
        recipients = {a.kind: a.recipient for a in session.exec(select(StaffAlert)).all()}
    assert recipients == {"scanned": "taking@example.com", "opened": "before@example.com"}


def test_a_tracking_page_shown_moments_before_names_the_company_once_its_owner_is_disabled(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """Tracking pages are kept for a moment (app.tracking.pagecache): disabling the owner and
    enabling them again drops the kept pages, as both change the contact a customer sees."""
    make_staff(Role.SALES, "leaving@example.com")
    _, issued_id = _owned_offers(db, "leaving@example.com")
    token = sign_in(web, make_staff(Role.ADMIN))
    user_id = _user_id(db, "leaving@example.com")

    def save(**form: str) -> None:
        edit = web.get(f"/admin/staff-user/edit/{user_id}").text
        version = re.search(r'name="version"[^>]*value="([^"]+)"', edit)
        assert version is not None
        data = {"csrf_token": token, "role": "sales", "version": version.group(1), **form}
        assert web.post(f"/admin/staff-user/edit/{user_id}", data=data).status_code == 200

    assert "leaving@example.com" in web.get(f"/{issued_id}").text  # now kept for a moment

    save(confirm_disable="y")
    assert "leaving@example.com" not in web.get(f"/{issued_id}").text

    save(is_active="y")
    assert "leaving@example.com" in web.get(f"/{issued_id}").text


def _save_as_opened(web: TestClient, offer_id: str, page: str, notes: str) -> None:
    """The editor's form sent as the browser filled it when opened, with new notes."""
    form = form_fields(page, f"/admin/offers/{offer_id}/edit") | {"notes": notes}
    saved = web.post(f"/admin/offers/{offer_id}/edit", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text


def test_an_admin_fixing_a_leavers_draft_keeps_its_owner(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """The owner list offers active users: a draft of someone disabled showed "Nobody", and a
    save of the notes alone gave it to nobody."""
    make_staff(Role.SALES, "leaving@example.com")
    draft_id, _ = _owned_offers(db, "leaving@example.com")
    leaving = _user_id(db, "leaving@example.com")
    with Session(db.get_bind()) as session:
        users.update_user(session, leaving, role=Role.SALES, is_active=False, actor="tests")
    sign_in(web, make_staff(Role.ADMIN))
    page = web.get(f"/admin/offers/{draft_id}/edit").text
    assert "leaving@example.com (disabled)" in page

    _save_as_opened(web, draft_id, page, "Gate 3")

    with Session(db.get_bind()) as session:
        assert session.get(Offer, draft_id).owner_id == leaving  # type: ignore[union-attr]
        assert not session.exec(
            select(AuditLogEntry).where(
                AuditLogEntry.offer_id == draft_id, AuditLogEntry.action == "offer.assign"
            )
        ).all()


def test_a_draft_open_in_the_editor_during_a_handover_stays_with_the_new_owner(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """The handover leaves the offer's version as it was (pages opened before still issue
    what they showed); the editor opened before it must not hand the draft back on save."""
    make_staff(Role.SALES, "leaving@example.com")
    make_staff(Role.SALES, "taking@example.com")
    draft_id, _ = _owned_offers(db, "leaving@example.com")
    sign_in(web, make_staff(Role.ADMIN))
    page = web.get(f"/admin/offers/{draft_id}/edit").text  # owner: leaving, as it was
    taking = _user_id(db, "taking@example.com")
    with Session(db.get_bind()) as session:  # another admin, meanwhile
        user_actions.hand_over_offers(
            session, _user_id(db, "leaving@example.com"), taking, actor="staff:b@example.com"
        )

    _save_as_opened(web, draft_id, page, "Gate 3")

    with Session(db.get_bind()) as session:
        offer = session.get(Offer, draft_id)
        assert offer is not None and (offer.owner_id, offer.notes) == (taking, "Gate 3")


def test_a_forged_owner_id_past_any_row_is_refused_beside_the_owner_field(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    make_staff(Role.SALES, "leaving@example.com")
    draft_id, _ = _owned_offers(db, "leaving@example.com")
    leaving = _user_id(db, "leaving@example.com")
    sign_in(web, make_staff(Role.ADMIN))
    page = web.get(f"/admin/offers/{draft_id}/edit").text

    for forged in ("99999999999", str(2**31), "9" * 5000):
        form = form_fields(page, f"/admin/offers/{draft_id}/edit") | {"owner_id": forged}
        refused = web.post(f"/admin/offers/{draft_id}/edit", data=form)

        assert refused.status_code == 422
        assert "No staff user with id" in refused.text
    with Session(db.get_bind()) as session:
        assert session.get(Offer, draft_id).owner_id == leaving  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url", ["sqlite:////var/lib/offertrack/offertrack.db", "sqlite:///var/offertrack.db"]
)
def test_the_settings_page_shows_a_sqlite_database_where_it_is(url: str) -> None:
    """It showed sqlite://var/lib/... (a host named var) and sqlite:/var/...: the path lost."""
    assert (
        get_settings().model_copy(update={"database_url": url}).for_display()["database_url"] == url
    )
