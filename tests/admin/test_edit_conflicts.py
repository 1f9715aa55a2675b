"""Two people editing one record in the staff site: the second save, made from a page opened
before the first was saved, is refused with what was typed kept, and the first stays."""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.analytics.models import Campaign, Placement
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate
from app.customers.service import create_customer
from app.offers import terms
from app.offers.models import Offer, OfferStatus, TermsTemplate
from app.offers.service import decline_offer
from app.tracking.models import OrderStage
from tests.admin.browserforms import form_fields
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import make_campaign, make_offer, make_placement

pytestmark = pytest.mark.concurrency

Staff = Callable[..., StaffLogin]


def _stored(db: Session, model: type, row_id: object) -> object:
    """The row as stored, read in a session that ends at once (SQLite's writer lock)."""
    with Session(db.get_bind()) as session:
        return session.get(model, row_id)


def _two_people(web: TestClient, other: TestClient, make_staff: Staff, role: Role) -> None:
    sign_in(web, make_staff(role, "ana@example.com"))
    sign_in(other, make_staff(role, "ben@example.com"))


def test_the_second_save_of_a_draft_shows_its_input_and_keeps_the_first(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    offer = make_offer(db, get_settings(), company="Acme Hellas SA")
    _two_people(web, second_browser, make_staff, Role.SALES)
    url = f"/admin/offers/{offer.id}/edit"
    anas = form_fields(web.get(url).text, url)
    bens = form_fields(second_browser.get(url).text, url)

    saved = web.post(url, data=anas | {"terms": "Payment 14 days net."}, follow_redirects=False)
    refused = second_browser.post(
        url, data=bens | {"notes": "Delivery in May.", "lines-0-quantity": "5"}
    )

    assert saved.status_code == 303
    assert refused.status_code == 422
    assert "This draft was changed by ana@example.com at " in refused.text
    assert "Your changes are below and were not saved." in refused.text
    kept = form_fields(refused.text, url)
    assert (kept["notes"], kept["lines-0-quantity"]) == ("Delivery in May.", "5")
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer)
    assert (stored.terms, stored.notes) == ("Payment 14 days net.", "")
    assert [line.quantity for line in stored.lines] == [Decimal(2)]

    # Saving the same page again is refused again; the page opened afresh saves.
    assert second_browser.post(url, data=kept).status_code == 422
    fresh = form_fields(second_browser.get(url).text, url)
    assert fresh["terms"] == "Payment 14 days net."
    again = second_browser.post(url, data=fresh | {"notes": "May."}, follow_redirects=False)
    assert again.status_code == 303


def test_recalculating_or_adding_a_line_keeps_the_version_the_editor_was_opened_at(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    offer = make_offer(db, get_settings())
    _two_people(web, second_browser, make_staff, Role.SALES)
    url = f"/admin/offers/{offer.id}/edit"
    bens = form_fields(second_browser.get(url).text, url)
    anas = form_fields(web.get(url).text, url)
    assert web.post(url, data=anas | {"notes": "Ana's"}, follow_redirects=False).is_redirect

    recalculated = second_browser.post(url, data=bens | {"op": "recalc"})
    added = second_browser.post(url, data=form_fields(recalculated.text, url) | {"op": "add"})
    refused = second_browser.post(url, data=form_fields(added.text, url) | {"notes": "Ben's"})

    assert (recalculated.status_code, added.status_code) == (200, 200)
    assert refused.status_code == 422 and "changed by ana@example.com" in refused.text
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer) and stored.notes == "Ana's"


@dataclass(frozen=True)
class EditForm:
    """A staff form that saves a whole record: how to make one, and two people's changes."""

    role: Role
    noun: str
    make: Callable[[Session], tuple[type, int, str]]  # the model, the row's id, its page
    first: dict[str, str]
    second: dict[str, str]


def _customer(db: Session) -> tuple[type, int, str]:
    customer = create_customer(db, CustomerCreate(company="Acme Hellas SA"), actor="tests")
    assert customer.id is not None
    return Customer, customer.id, f"/admin/customers/{customer.id}"


def _template(db: Session) -> tuple[type, int, str]:
    template = terms.save_template(
        db, None, name="Standard", kind="terms", body="Net 30.", actor="tests"
    )
    assert template.id is not None
    return TermsTemplate, template.id, f"/admin/terms-templates/{template.id}"


def _campaign(db: Session) -> tuple[type, int, str]:
    campaign_id = make_campaign(db).id
    assert campaign_id is not None
    return Campaign, campaign_id, f"/admin/analytics/campaigns/{campaign_id}"


def _placement(db: Session) -> tuple[type, int, str]:
    placement_id = make_placement(db, make_campaign(db).id or 0).id
    assert placement_id is not None
    return Placement, placement_id, f"/admin/analytics/placements/{placement_id}"


FORMS = {
    "customer": EditForm(
        Role.SALES, "customer record", _customer, {"city": "Athens"}, {"phone": "+30 210 1234"}
    ),
    "terms template": EditForm(
        Role.ADMIN, "template", _template, {"body": "Net 14."}, {"name": "Standard terms"}
    ),
    "campaign": EditForm(
        Role.SALES, "campaign", _campaign, {"utm_medium": "poster"}, {"name": "Autumn fair"}
    ),
    "placement": EditForm(
        Role.SALES,
        "placement",
        _placement,
        {"fallback_url": "https://shop.example.com/may"},
        {"name": "Shop window"},
    ),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_every_edit_form_refuses_a_save_from_a_page_opened_before_anothers_save(
    form: EditForm, web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    model, row_id, url = form.make(db)
    _two_people(web, second_browser, make_staff, form.role)
    anas = form_fields(web.get(url).text, url)
    bens = form_fields(second_browser.get(url).text, url)

    saved = web.post(url, data=anas | form.first, follow_redirects=False)
    refused = second_browser.post(url, data=bens | form.second)

    assert saved.status_code == 303, saved.text
    assert refused.status_code == 422
    assert f"This {form.noun} was changed by ana@example.com at " in refused.text
    assert f'<a href="{url}" target="_blank"' in refused.text  # the record as it is now
    kept = form_fields(refused.text, url)
    assert all(kept[name] == value for name, value in form.second.items())
    stored = _stored(db, model, row_id)
    for name, value in form.first.items():
        assert getattr(stored, name) == value
    for name, value in form.second.items():
        assert getattr(stored, name) != value


def test_an_older_staff_user_form_does_not_undo_another_admins_change(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    make_staff(Role.SALES, "carl@example.com")
    _two_people(web, second_browser, make_staff, Role.ADMIN)
    with Session(db.get_bind()) as session:
        carl = session.exec(select(StaffUser).where(StaffUser.email == "carl@example.com")).one()
    url = f"/admin/staff-user/edit/{carl.id}"
    anas = form_fields(web.get(url).text, url)
    bens = form_fields(second_browser.get(url).text, url)

    # Ana disables Carl; Ben, on a page that still shows him active, makes him an admin.
    disabled = {k: v for k, v in anas.items() if k != "is_active"} | {"confirm_disable": "y"}
    saved = web.post(url, data=disabled, follow_redirects=False)
    refused = second_browser.post(url, data=bens | {"role": Role.ADMIN.value})

    assert saved.is_redirect, saved.text
    assert refused.status_code == 400  # as sqladmin answers every refused form
    assert "This user was changed by ana@example.com at " in refused.text
    stored = _stored(db, StaffUser, carl.id)
    assert isinstance(stored, StaffUser)
    assert (stored.role, stored.is_active) == (Role.SALES, False)


def test_a_staff_user_form_refused_for_its_password_saves_nothing(
    web: TestClient, make_staff: Staff, db: Session
) -> None:
    make_staff(Role.VIEWER, "carl@example.com")
    sign_in(web, make_staff(Role.ADMIN, "ana@example.com"))
    with Session(db.get_bind()) as session:
        carl = session.exec(select(StaffUser).where(StaffUser.email == "carl@example.com")).one()
    url = f"/admin/staff-user/edit/{carl.id}"
    opened = form_fields(web.get(url).text, url)

    refused = web.post(url, data=opened | {"role": Role.ADMIN.value, "new_password": " " * 12})

    assert refused.status_code == 400
    assert "A password cannot consist of spaces only." in refused.text
    stored = _stored(db, StaffUser, carl.id)
    assert isinstance(stored, StaffUser) and stored.role == Role.VIEWER
    # The page that came back saves once corrected: the user has not changed since it opened.
    again = web.post(url, data=form_fields(refused.text, url), follow_redirects=False)
    assert again.is_redirect, again.text
    stored = _stored(db, StaffUser, carl.id)
    assert isinstance(stored, StaffUser) and stored.role == Role.ADMIN


def _confirmation(browser: TestClient, offer_id: str, step: str) -> tuple[str, dict[str, str]]:
    """Open the offer's page, follow its link to the step's confirmation: the form to press."""
    details = browser.get(f"/admin/offer/details/{offer_id}").text
    link = re.search(rf'href="([^"]*/offers/{offer_id}/{step}\?[^"]*)"', details)
    assert link, f"no {step} link on the offer's page"
    url = html.unescape(link.group(1))
    action = f"/admin/offers/{offer_id}/{step}"
    return action, form_fields(browser.get(url).text, action)


def test_issuing_a_draft_someone_saved_since_its_page_was_opened_is_refused(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    offer = make_offer(db, get_settings())
    _two_people(web, second_browser, make_staff, Role.SALES)
    action, bens = _confirmation(second_browser, offer.id, "issue")
    editor = f"/admin/offers/{offer.id}/edit"
    anas = form_fields(web.get(editor).text, editor)
    assert web.post(editor, data=anas | {"lines-0-quantity": "5"}).status_code == 200

    pressed = second_browser.post(action, data=bens)

    assert "Not issued" in pressed.text
    assert "This draft was changed by ana@example.com at " in pressed.text
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer) and stored.status == OfferStatus.DRAFT
    # Opened again from the offer's page, which now shows Ana's draft, it issues.
    action, fresh = _confirmation(second_browser, offer.id, "issue")
    assert second_browser.post(action, data=fresh).status_code == 200
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer) and stored.status == OfferStatus.ISSUED


def test_revising_an_offer_the_customer_declined_since_its_page_was_opened_is_refused(
    web: TestClient, make_staff: Staff, db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    sign_in(web, make_staff(Role.SALES, "ben@example.com"))
    action, opened = _confirmation(web, offer.id, "revise")
    decline_offer(db, offer.id, reason="Too dear; we need it by May.", settings=get_settings())

    pressed = web.post(action, data=opened)

    assert "Not revised" in pressed.text
    assert "This offer was changed by the customer at " in pressed.text
    assert "Too dear; we need it by May." in pressed.text  # the page shows it as it is now
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer) and stored.status == OfferStatus.DECLINED


def test_the_second_of_two_activations_from_one_page_state_is_refused_and_names_the_first(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    _two_people(web, second_browser, make_staff, Role.SALES)
    anas_action, anas = _confirmation(web, offer.id, "activate")
    action, bens = _confirmation(second_browser, offer.id, "activate")
    assert web.post(anas_action, data=anas).status_code == 200

    pressed = second_browser.post(action, data=bens)

    assert pressed.status_code == 200
    assert "Not activated" in pressed.text
    assert "This offer was changed by ana@example.com at " in pressed.text
    assert "Nothing was done" in pressed.text
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer) and stored.status == OfferStatus.ORDERED
    assert stored.activated_by == "staff:ana@example.com"


def test_activating_an_offer_revised_since_its_page_was_opened_is_refused_as_changed(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    _two_people(web, second_browser, make_staff, Role.SALES)
    action, bens = _confirmation(second_browser, offer.id, "activate")
    revise, anas = _confirmation(web, offer.id, "revise")
    assert web.post(revise, data=anas).status_code == 200

    pressed = second_browser.post(action, data=bens)

    assert "Not activated" in pressed.text
    assert "This offer was changed by ana@example.com at " in pressed.text
    stored = _stored(db, Offer, offer.id)
    assert isinstance(stored, Offer) and stored.status == OfferStatus.SUPERSEDED


@pytest.mark.usefixtures("restored_stage_list")
def test_an_older_stage_form_does_not_undo_another_admins_rename(
    web: TestClient, second_browser: TestClient, make_staff: Staff, db: Session
) -> None:
    _two_people(web, second_browser, make_staff, Role.ADMIN)
    url = "/admin/order-stage/edit/in_production"
    anas = form_fields(web.get(url).text, url)
    bens = form_fields(second_browser.get(url).text, url)

    # Ana renames the stage; Ben, on a page that still shows the old name, moves it.
    saved = web.post(url, data=anas | {"label": "Being made"}, follow_redirects=False)
    refused = second_browser.post(url, data=bens | {"position": "9"})

    assert saved.is_redirect, saved.text
    assert refused.status_code == 400  # as sqladmin answers every refused form
    assert "This stage was changed by ana@example.com at " in refused.text
    kept = form_fields(refused.text, url)
    assert (kept["label"], kept["position"]) == ("In production", "9")
    stored = _stored(db, OrderStage, "in_production")
    assert isinstance(stored, OrderStage)
    assert (stored.label, stored.position) == ("Being made", 2)
    # The page opened afresh shows Ana's name and saves.
    fresh = form_fields(second_browser.get(url).text, url)
    assert fresh["label"] == "Being made"
    moved = second_browser.post(url, data=fresh | {"position": "9"}, follow_redirects=False)
    assert moved.is_redirect, moved.text


def test_a_stage_saved_without_a_position_keeps_its_form_with_the_error_at_the_field(
    web: TestClient, make_staff: Staff, db: Session
) -> None:
    sign_in(web, make_staff(Role.ADMIN))
    url = "/admin/order-stage/edit/in_production"
    page = web.get(url).text
    assert "empty puts a new stage last" not in page  # it does not, for a stage that exists

    refused = web.post(url, data=form_fields(page, url) | {"label": "Being made", "position": ""})

    assert refused.status_code == 400
    field = refused.text.split('name="position"', 1)[1].split("</div>", 2)
    assert "Give the stage&#39;s place, 1 to 1000." in "".join(field[:2])
    assert form_fields(refused.text, url)["label"] == "Being made"
    stored = _stored(db, OrderStage, "in_production")
    assert isinstance(stored, OrderStage)
    assert (stored.label, stored.position) == ("In production", 2)


@pytest.mark.usefixtures("restored_stage_list")
def test_a_stage_position_taken_by_another_admin_meanwhile_is_refused_in_words(
    web: TestClient, make_staff: Staff, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL two admins' saves both pass the clash check; the database's unique index
    # refuses the second. Here the check is left out, so the index refuses the only one.
    from app.tracking import stages

    sign_in(web, make_staff(Role.ADMIN))
    url = "/admin/order-stage/edit/in_production"
    fields = form_fields(web.get(url).text, url)
    monkeypatch.setattr(stages, "_check", lambda session, label, position, key: label.strip())

    refused = web.post(url, data=fields | {"position": "1"})

    assert refused.status_code == 400
    assert "Another admin just gave a stage this key, label or position." in refused.text
    assert "INSERT" not in refused.text and "UPDATE" not in refused.text
    stored = _stored(db, OrderStage, "in_production")
    assert isinstance(stored, OrderStage) and stored.position == 2
