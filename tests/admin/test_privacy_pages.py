"""The office manager answers a contact's request in the staff site: looks the address up,
downloads what the command prints, and erases it after a page that says what goes and stays.
The address is sent in POST bodies only, never in a URL or a flash message."""

import json
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app import privacy
from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import Settings
from app.customers.models import Customer
from app.notifications import delivery
from tests.admin.conftest import csrf_from
from tests.notifications.test_privacy import ADDRESS, _database_rows_naming, _held_everywhere

pytestmark = pytest.mark.concurrency
PAGE = "/admin/personal-data"


def _naming_files(settings: Settings) -> list[str]:
    folder = delivery.mail_directory(settings)
    return [p.name for p in folder.glob("*.eml") if ADDRESS.encode() in p.read_bytes().lower()]


def test_an_admin_sees_every_place_downloads_the_answer_and_erases_the_address(
    web: TestClient, as_role: Callable[[Role], str], committed: Engine, settings: Settings
) -> None:
    _held_everywhere(committed, web, settings)
    token = as_role(Role.ADMIN)
    assert "Personal data" in web.get("/admin/").text  # the admin's menu leads there
    form = {"email": " Maria@Example.com ", "csrf_token": token}

    found = web.post(PAGE, data=form)
    download = web.post(f"{PAGE}/download", data=form)
    confirm = web.post(f"{PAGE}/erase/confirm", data=form)

    assert found.status_code == 200
    for key in ("customer", "offer", "customer_question", "order_subscription", "audit_log"):
        assert f'id="records-{key}"' in found.text, key  # a place that holds it, with its rows
    assert "Delivery in May?" in found.text and "Maria Papadopoulou" in found.text
    assert "until unsubscribed; 7 days if never confirmed" in found.text  # how long it is kept
    assert 'id="place-staff_user"' in found.text  # a place looked in that holds nothing
    assert 'id="records-staff_user"' not in found.text
    assert download.headers["content-disposition"].startswith("attachment;")
    assert ADDRESS not in download.headers["content-disposition"]
    answer = json.loads(download.text)
    assert answer["email"] == ADDRESS and len(answer["places"]) == 11
    assert answer["places"][0] == {**answer["places"][0], "place": "customer records (customer)"}
    goes, stays = (confirm.text.split('id="erase-stays"') + [""])[:2]
    assert "customer records" in goes and "offers sent to this address" in stays
    assert _naming_files(settings)

    erased = web.post(f"{PAGE}/erase", data=form, follow_redirects=False)

    assert erased.status_code == 303 and erased.headers["location"].endswith(PAGE)
    assert ADDRESS not in erased.headers["location"]
    shown = web.get(erased.headers["location"]).text
    assert (
        "1 customer record, 1 question" in shown
        and "Kept: the customer snapshot of 1 offer " in shown
    )
    # As the command leaves it: the offer's snapshot only, no mail file.
    assert _database_rows_naming(committed, ADDRESS) == ["offer"]
    assert _naming_files(settings) == []
    reference = privacy.reference(ADDRESS, settings)
    assert reference in shown
    with Session(committed) as session:
        [entry] = session.exec(
            select(AuditLogEntry).where(col(AuditLogEntry.action) == privacy.ERASED)
        ).all()
    assert entry.entity_id == reference and entry.actor == "staff:admin@example.com"
    assert ADDRESS not in entry.summary + json.dumps(entry.changes)


@pytest.mark.parametrize("role", [Role.SALES, Role.VIEWER], ids=str)
def test_sales_and_viewers_are_refused_and_nothing_is_erased(
    web: TestClient, as_role: Callable[[Role], str], db: Session, role: Role
) -> None:
    db.add(Customer(company="Maria Papadopoulou", email=ADDRESS))
    db.commit()
    token = as_role(role)
    form = {"email": ADDRESS, "csrf_token": token}

    assert web.get(PAGE).status_code == 403
    for path in ("", "/download", "/erase/confirm", "/erase"):
        assert web.post(PAGE + path, data=form).status_code == 403, path
    assert "Personal data" not in web.get("/admin/").text
    assert len(db.exec(select(Customer)).all()) == 1


def test_erasing_needs_the_csrf_token(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    db.add(Customer(company="Maria Papadopoulou", email=ADDRESS))
    db.commit()
    as_role(Role.ADMIN)

    for token in ("", "forged"):
        answer = web.post(f"{PAGE}/erase", data={"email": ADDRESS, "csrf_token": token})
        assert answer.status_code == 403
    assert len(db.exec(select(Customer)).all()) == 1


@pytest.mark.parametrize(
    "typed", ["", "maria", "maria @example.com", "a\x1b@example.com", "x" * 250 + "@example.com"]
)
@pytest.mark.parametrize("path", ["", "/download", "/erase/confirm", "/erase"])
def test_no_address_gets_the_form_again_with_the_error_beside_the_field(
    web: TestClient, as_role: Callable[[Role], str], committed: Engine, typed: str, path: str
) -> None:
    token = as_role(Role.ADMIN)

    answer = web.post(PAGE + path, data={"email": typed, "csrf_token": token})

    assert answer.status_code == 422
    error = re.search(r'id="email-error">([^<]*)<', answer.text)
    assert error and error.group(1) == "Please give an e-mail address."
    assert 'aria-describedby="email-error"' in answer.text
    with Session(committed) as session:
        actions = session.exec(select(AuditLogEntry.action)).all()
    assert privacy.ERASED not in actions


def test_the_form_page_asks_for_an_address_and_carries_none_in_a_link(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    as_role(Role.ADMIN)

    page = web.get(PAGE)

    assert page.status_code == 200
    assert '<label class="form-label required" for="email">E-mail address</label>' in page.text
    assert csrf_from(page.text)
    assert re.search(r'<form method="post" action="[^"]*/admin/personal-data"', page.text)
