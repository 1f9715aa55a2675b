"""The public tracking page as customers, scanners and guessers meet it."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.analytics.models import table_of
from app.config import Settings
from app.offers import service as offers_service
from app.offers.models import Offer, OfferStatus
from app.templating import format_date
from app.tracking import service
from app.tracking.models import CodeForm, ScanEvent
from app.tracking.schemas import StageUpdateCreate
from tests.factories import line_data, make_offer, offer_data

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def make_order(session: Session, settings: Settings, **data: object) -> Offer:
    offer = make_offer(session, settings, issued=True, **data)
    return service.activate_offer(session, offer.id, actor="tests", settings=settings)


def scans(session: Session, offer: Offer) -> list[ScanEvent]:
    return list(
        session.exec(
            select(ScanEvent).where(ScanEvent.offer_id == offer.id).order_by(col(ScanEvent.id))
        ).all()
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_full_ulid_shows_the_offer(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(
        session,
        settings,
        issued=True,
        company="Acme Hellas SA",
        lines=[line_data(description="Pump PX-200")],
    )

    response = client.get(f"/{offer.id}", headers={"user-agent": IPHONE})

    assert response.status_code == 200
    text = response.text
    assert "Acme Hellas SA" in text
    assert "Pump PX-200" in text
    assert "€3,100.00" in text
    assert "days left" in text
    assert f"/{offer.id}/pdf" in text
    assert "Accept this offer" in text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_tracking_id_shows_progress_and_nothing_else(
    client: TestClient, session: Session, settings: Settings
) -> None:
    customer = offer_data()["customer"] | {
        "company": "Secret Customer AG",
        "phone": "+30 210 555 0100",
        "reference": "RFQ-7781",
    }
    order = make_order(
        session,
        settings,
        customer=customer,
        lines=[line_data(description="Secret Pump", unit_price="98765.43")],
    )
    service.add_stage_update(
        session,
        order.id,
        StageUpdateCreate(
            stage="Shipped",
            public_note="On its way",
            internal_note="margin 40%",
            carrier="DHL",
            tracking_number="JD0001",
            tracking_link="https://dhl.example/t",
            expected_delivery_date=offers_service.today(settings) + timedelta(days=2),
        ),
        actor="tests",
        settings=settings,
    )

    response = client.get(f"/{order.tracking_id[:5].lower()}-{order.tracking_id[5:]}")

    assert response.status_code == 200
    text = response.text
    assert "Shipped" in text and "On its way" in text and "JD0001" in text
    expected = offers_service.today(settings) + timedelta(days=2)
    shown = f"{expected:%b} {expected.day}, {expected:%Y}"
    assert f"Expected delivery: <strong>{shown}</strong>" in text
    # The carrier's site must not learn the code from a Referer header: the link says so and
    # so does the response (either alone suffices in current browsers).
    assert '<a href="https://dhl.example/t" rel="noreferrer noopener">Track the parcel</a>' in text
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for secret in (
        "Secret Customer AG",
        "RFQ-7781",
        "+30 210 555 0100",
        "Secret Pump",
        "98,765.43",
        "197,530.86",
        "EUR",
        "maria@example.com",
        "Maria P.",
        "margin 40%",
        order.id,
        "/accept",  # its only form is "Get updates by e-mail"
        "Accept",
    ):
        assert secret not in text
    assert [event.code_form for event in scans(session, order)] == [CodeForm.SHORT]


def test_unknown_draft_and_unactivated_codes_get_the_same_404(
    client: TestClient, session: Session, settings: Settings
) -> None:
    draft = make_offer(session, settings)
    issued = make_offer(session, settings, issued=True)

    codes = ["01H0WARY2WHGGRF3K72D299T3T", draft.id, draft.tracking_id]
    codes += [issued.tracking_id, "01H0WARY2W"]
    responses = [client.get(f"/{code}") for code in codes]

    assert {r.status_code for r in responses} == {404}
    # The same page but for the code the visitor typed, which it keeps.
    pages = {r.text.replace(code, "CODE") for r, code in zip(responses, codes, strict=True)}
    assert len(pages) == 1
    assert "We found no offer or order with the code 01H0WARY2W." in responses[-1].text


def test_a_malformed_code_gets_a_400_that_explains_and_shows_the_form(client: TestClient) -> None:
    for code in ("01H0WARYUW", "12345", "01H0WARY2WHGGRF3K72D299T3"):
        response = client.get(f"/{code}")

        assert response.status_code == 400
        assert "10-character tracking ID" in response.text
        assert '<form class="code-form"' in response.text


def test_a_malformed_code_page_says_what_is_wrong_with_it_in_the_page_language(
    client: TestClient,
) -> None:
    # A code typed one character short read "That doesn't look like a tracking code" and the
    # format in general: the visitor had to count, and learned nothing of a stray character.
    short = client.get("/lookup", params={"code": "01m99-ss76", "lang": "de"})
    stray = client.get("/lookup", params={"code": "01M99-SSU66"})
    greek = client.get("/01H0WARY2", headers={"Accept-Language": "el"})

    assert short.status_code == stray.status_code == greek.status_code == 400
    assert "Er hat 9 Zeichen; ein Code hat 10 oder 26." in short.text
    assert "It contains characters that never occur in a code: U" in stray.text
    assert "Έχει 9 χαρακτήρες" in greek.text


@pytest.mark.parametrize("typed", ["", "   ", "\u200b"])
def test_an_empty_code_from_the_entry_form_asks_for_one(client: TestClient, typed: str) -> None:
    # Sent without the browser's required check (curl, an old browser), the form came back
    # with "That doesn't look like a tracking code: " and nothing after the colon.
    response = client.get("/lookup", params={"code": typed, "lang": "de"})

    assert response.status_code == 400
    problem = re.search(r'<p role="alert" id="code-problem">(.*?)</p>', response.text, re.S)
    assert problem is not None
    assert problem.group(1).strip() == "Sie haben keinen Code eingegeben."
    assert '<h1 id="error-title">Bitte geben Sie einen Code ein</h1>' in response.text


def test_the_entry_form_accepts_any_spelling(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session, settings)
    home = client.get("/")
    assert '<form class="code-form"' in home.text

    typed = f" {order.tracking_id[:4].lower()} {order.tracking_id[4:]} "
    response = client.get("/lookup", params={"code": typed}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/{order.tracking_id}?src=form")
    assert client.get(response.headers["location"]).status_code == 200
    assert scans(session, order)[-1].channel == "typed"


def test_the_entry_form_takes_a_pasted_link_to_the_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # Procurement copies the address printed in the PDF, or a phone copies the link without its
    # scheme, and pastes it whole: "That is not a tracking code" told them nothing to fix.
    order = make_order(session, settings)
    pasted = (
        f"https://track.example.com/{order.id}?src=pdf",
        f"track.example.com/{order.tracking_id.lower()}/",
        f"http://127.0.0.1:8000/{order.tracking_id[:5]}-{order.tracking_id[5:]}#timeline",
    )
    for typed in pasted:
        response = client.get("/lookup", params={"code": typed}, follow_redirects=False)

        assert response.status_code == 303, typed
        assert response.headers["location"].split("/")[-1].startswith(order.tracking_id)
    assert client.get("/lookup", params={"code": "https://track.example.com/"}).status_code == 400


def test_the_entry_form_takes_a_pasted_link_to_a_page_under_the_code(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # The PDF's, the calendar's or the thank-you page's address, copied from the browser: the
    # code is not its last segment, and the visitor was told "That is not a tracking code".
    order = make_order(session, settings)
    for pasted in (
        f"https://track.example.com/{order.id}/pdf?lang=de",
        f"track.example.com/{order.tracking_id}/delivery.ics",
        f"https://track.example.com/{order.id}/accepted",
    ):
        response = client.get("/lookup", params={"code": pasted}, follow_redirects=False)

        assert response.status_code == 303, pasted
        assert response.headers["location"].split("/")[-1].split("?")[0] in (
            order.id,
            order.tracking_id,
        )


def test_channels_qr_pdf_and_web(client: TestClient, session: Session, settings: Settings) -> None:
    offer = make_offer(session, settings, issued=True)

    client.get(f"/{offer.id}", headers={"user-agent": IPHONE})
    client.get(f"/{offer.id}?src=pdf", headers={"user-agent": DESKTOP})
    client.get(
        f"/{offer.id}", headers={"user-agent": DESKTOP, "referer": "https://mail.example.org/x"}
    )

    events = scans(session, offer)
    assert [e.channel for e in events] == ["qr", "pdf", "web"]
    assert [e.device_class for e in events] == ["mobile", "desktop", "desktop"]
    assert events[0].os_family == "iOS"
    assert events[1].browser_family == "Chrome"
    assert events[2].referrer_host == "mail.example.org"
    assert all(e.code_form == "full" for e in events)


def test_a_malformed_referrer_is_a_scan_without_a_referrer_host(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    response = client.get(
        f"/{offer.id}", headers={"user-agent": DESKTOP, "referer": "http://[oops/"}
    )

    assert response.status_code == 200
    assert [(e.channel, e.referrer_host) for e in scans(session, offer)] == [("web", "")]


def test_scan_events_store_no_ip_or_user_agent(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    client.get(f"/{offer.id}", headers={"user-agent": IPHONE})

    event = scans(session, offer)[0]
    stored = " ".join(str(getattr(event, column.name)) for column in table_of(ScanEvent).columns)
    assert "testclient" not in stored and "iPhone OS 17_4" not in stored
    assert "Mobile Safari" in stored


def test_bots_are_recorded_and_flagged(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    client.get(f"/{offer.id}", headers={"user-agent": GOOGLEBOT})
    client.get(
        f"/{offer.id}",
        headers={"user-agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
    )

    assert [(e.is_bot, e.device_class) for e in scans(session, offer)] == [
        (True, "bot"),
        (True, "bot"),
    ]


def test_visitor_hash_counts_a_visitor_once_a_day_per_offer(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first = make_offer(session, settings, issued=True)
    second = make_offer(session, settings, issued=True)

    client.get(f"/{first.id}", headers={"user-agent": IPHONE})
    client.get(f"/{first.id}", headers={"user-agent": IPHONE})
    client.get(f"/{first.id}", headers={"user-agent": DESKTOP})
    client.get(f"/{second.id}", headers={"user-agent": IPHONE})

    a, b, c = (e.visitor_hash for e in scans(session, first))
    (d,) = (e.visitor_hash for e in scans(session, second))
    assert a == b and a != c and a != d
    assert a is not None and len(a) == 64


@pytest.mark.parametrize("header", ["DNT", "Sec-GPC"])
def test_do_not_track_is_counted_without_a_visitor_hash(
    client: TestClient, session: Session, settings: Settings, header: str
) -> None:
    offer = make_offer(session, settings, issued=True)

    client.get(f"/{offer.id}", headers={"user-agent": IPHONE, header: "1"})

    (event,) = scans(session, offer)
    assert event.visitor_hash is None
    assert event.channel == "qr"


def test_htmx_refresh_returns_only_the_timeline_and_is_not_a_new_scan(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session, settings)

    response = client.get(f"/{order.tracking_id}", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="timeline"')
    assert "<html" not in response.text
    assert "Order confirmed" in response.text
    assert response.headers["Vary"] == "HX-Request, Accept-Language"
    assert scans(session, order) == []


def test_failed_lookups_are_rate_limited_but_valid_codes_are_not(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    statuses = [client.get(f"/01H0WARY2W{n:016d}").status_code for n in range(20)]

    limited = client.get("/01H0WARY2WHGGRF3K72D299T3T")
    malformed = client.get("/nonsense")
    valid = [client.get(f"/{offer.id}").status_code for _ in range(25)]

    assert statuses == [404] * 20
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Please wait" in limited.text
    assert malformed.status_code == 429
    assert valid == [200] * 25


def test_failed_pdf_accept_and_decline_lookups_count_as_misses(
    client: TestClient, session: Session, settings: Settings
) -> None:
    draft = make_offer(session, settings)
    page_404 = client.get("/01H0WARY2WHGGRF3K72D299T3T")
    token = csrf_of(client.get(f"/{make_offer(session, settings, issued=True).id}").text)
    accept = {"signer_name": "Eve", "csrf_token": token, "accept_terms": "yes"}
    decline = {"reason": "guessing", "csrf_token": token}

    codes = [f"01H0WARY2W{n:016d}" for n in range(6)]
    misses = [client.get(f"/{code}/pdf") for code in codes]
    misses += [client.post(f"/{code}/accept", data=accept) for code in codes]
    misses += [client.post(f"/{draft.id}/decline", data=decline) for _ in range(6)]
    misses.append(client.post(f"/{draft.id}/accept", data=accept))

    assert {r.status_code for r in misses} == {404}
    # a draft is indistinguishable from an unknown code here too (but for the code, kept)
    shown = codes * 2 + [draft.id] * 7
    pages = {r.text.replace(code, "CODE") for r, code in zip(misses[6:], shown[6:], strict=True)}
    assert pages == {page_404.text.replace("01H0WARY2WHGGRF3K72D299T3T", "CODE")}
    limited = [
        client.get("/01H0WARY2WHGGRF3K72D299T3T/pdf"),
        client.post("/01H0WARY2WHGGRF3K72D299T3T/accept", data=accept),
        client.get("/01H0WARY2WHGGRF3K72D299T3T"),
    ]
    assert [r.status_code for r in limited] == [429] * 3
    session.refresh(draft)
    assert draft.status == OfferStatus.DRAFT


def test_rate_limit_uses_forwarded_address_only_from_trusted_proxies(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "trusted_proxies", ["testclient", "127.0.0.1"])
    for n in range(20):
        client.get(f"/01H0WARY2W{n:016d}", headers={"X-Forwarded-For": "203.0.113.7"})
    # the untrusted peer "testclient" is not a proxy we know, so all 20 count against it alike
    assert client.get("/01H0WARY2W", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429


def test_accept_needs_csrf_and_records_the_signer(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    page = client.get(f"/{offer.id}")
    token = csrf_of(page.text)

    forged = client.post(f"/{offer.id}/accept", data={"signer_name": "Eve"})
    wrong = client.post(
        f"/{offer.id}/accept", data={"signer_name": "Eve", "csrf_token": token + "x"}
    )
    accepted = client.post(
        f"/{offer.id}/accept",
        data={
            "signer_name": "Maria Papadopoulou",
            "po_number": "PO-77",
            "csrf_token": token,
            "accept_terms": "yes",
        },
        follow_redirects=False,
    )

    assert forged.status_code == 403 and wrong.status_code == 403
    assert accepted.status_code == 303
    session.refresh(offer)
    assert offer.status == OfferStatus.ACCEPTED
    assert (offer.accepted_by_name, offer.accepted_po_number) == ("Maria Papadopoulou", "PO-77")
    assert offer.accepted_at is not None
    assert "Accepted" in client.get(f"/{offer.id}").text


def test_a_cross_site_post_without_the_cookie_fails(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    token = csrf_of(client.get(f"/{offer.id}").text)
    client.cookies.clear()  # another site's form can copy a token but not send our cookie

    response = client.post(f"/{offer.id}/accept", data={"signer_name": "Eve", "csrf_token": token})

    assert response.status_code == 403
    session.refresh(offer)
    assert offer.status == OfferStatus.ISSUED


def test_accept_and_decline_are_never_gets(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    assert client.get(f"/{offer.id}/accept").status_code in (404, 405)
    assert client.get(f"/{offer.id}/decline").status_code in (404, 405)
    session.refresh(offer)
    assert offer.status == OfferStatus.ISSUED


def test_decline_needs_a_reason_shown_next_to_the_field(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    token = csrf_of(client.get(f"/{offer.id}").text)

    empty = client.post(f"/{offer.id}/decline", data={"reason": " ", "csrf_token": token})
    declined = client.post(
        f"/{offer.id}/decline", data={"reason": "Too expensive", "csrf_token": token}
    )

    assert empty.status_code == 422
    assert 'id="reason-error"' in empty.text
    assert declined.status_code == 200  # after the redirect
    session.refresh(offer)
    assert offer.status == OfferStatus.DECLINED
    assert offer.declined_reason == "Too expensive"
    assert offer.declined_at is not None


def test_declining_thanks_the_customer_and_repeats_the_reason(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # The offer's page alone read "Still interested? This offer was declined.": nothing said
    # that the answer had arrived.
    offer = make_offer(session, settings, issued=True)
    token = csrf_of(client.get(f"/{offer.id}").text)
    early = client.get(f"/{offer.id}/declined", follow_redirects=False)

    answer = client.post(
        f"/{offer.id}/decline?lang=de",
        data={"reason": "Zu teuer für uns", "csrf_token": token},
        follow_redirects=False,
    )
    page = client.get(answer.headers["location"])

    assert early.status_code == 303 and early.headers["location"].endswith(f"/{offer.id}")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(f"/{offer.id}/declined?lang=de")
    assert "Vielen Dank für Ihre Antwort: Sie haben das Angebot" in page.text
    assert "Zu teuer für uns" in page.text
    assert f'href="https://track.example.com/{offer.id}?lang=de"' in page.text


def test_declining_after_accepting_is_refused_on_the_offer_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    token = csrf_of(client.get(f"/{offer.id}").text)
    client.post(
        f"/{offer.id}/accept",
        data={"signer_name": "Maria", "csrf_token": token, "accept_terms": "yes"},
    )

    again = client.post(f"/{offer.id}/decline", data={"reason": "Too dear", "csrf_token": token})

    assert again.status_code == 409
    assert 'id="answer-refused"' in again.text and "already been accepted" in again.text
    session.refresh(offer)
    assert offer.status == OfferStatus.ACCEPTED


def test_accept_with_a_tracking_id_is_refused(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session, settings)
    token = csrf_of(client.get(f"/{make_offer(session, settings, issued=True).id}").text)

    response = client.post(
        f"/{order.tracking_id}/accept", data={"signer_name": "Eve", "csrf_token": token}
    )

    assert response.status_code == 404


def test_superseded_offer_links_to_its_revision(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    revision = offers_service.revise_offer(session, offer.id, actor="tests", settings=settings)
    offers_service.issue_offer(session, revision.id, actor="tests", settings=settings)

    text = client.get(f"/{offer.id}").text

    assert "Superseded" in text
    assert re.search(rf'class="button" href="[^"]*/{revision.id}">Open the current offer', text)
    assert "Accept this offer" not in text
    # The current offer is there to answer: no "ask for a new quotation" beside its link.
    assert "Ask for a new quotation" not in text


def test_a_superseded_offer_says_when_it_was_replaced_instead_of_valid_until(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # "Valid until" with a date still ahead read as if the offer could be accepted; a declined
    # offer names its answer and when, so a replaced one names its replacement and when.
    offer = make_offer(session, settings, issued=True, valid_until=date(2099, 1, 31))
    offers_service.revise_offer(session, offer.id, actor="tests", settings=settings)
    session.refresh(offer)
    assert offer.superseded_at is not None

    text = client.get(f"/{offer.id}").text
    facts = text.split('<dl class="facts">', 1)[1].split("</dl>", 1)[0]

    assert "Valid until" not in facts and "2099" not in facts
    replaced = re.search(r"<dt>Replaced</dt>\s*<dd>([^<]+)</dd>", facts)
    assert replaced is not None
    assert replaced.group(1).startswith(format_date(offer.superseded_at))
    assert "by a newer revision" in replaced.group(1)


def test_a_revision_still_in_draft_is_not_linked(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    revision = offers_service.revise_offer(session, offer.id, actor="tests", settings=settings)

    text = client.get(f"/{offer.id}").text

    assert "replaced by a newer revision" in text
    assert "Open the current offer" not in text
    assert revision.id not in text
    assert client.get(f"/{revision.id}").status_code == 404  # what the link would have led to


def test_the_link_leads_to_the_latest_revision_a_customer_can_open(
    client: TestClient, session: Session, settings: Settings
) -> None:
    first = make_offer(session, settings, issued=True)
    second = offers_service.revise_offer(session, first.id, actor="tests", settings=settings)
    offers_service.issue_offer(session, second.id, actor="tests", settings=settings)
    third = offers_service.revise_offer(session, second.id, actor="tests", settings=settings)
    offers_service.issue_offer(session, third.id, actor="tests", settings=settings)
    draft = offers_service.revise_offer(session, third.id, actor="tests", settings=settings)

    text = client.get(f"/{first.id}").text
    link = re.search(r'<a class="button" href="([^"]+)">Open the current offer</a>', text)

    assert link is not None
    assert link.group(1).endswith(f"/{third.id}")
    assert draft.id not in text
    assert client.get(link.group(1)).status_code == 200


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Late evening in UTC is already the next day in the company's zone (Europe/Berlin)."""
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    monkeypatch.setattr(offers_service, "utcnow", lambda: now)
    return now


@pytest.mark.parametrize(
    ("valid_until", "shown"),
    [
        (date(2026, 3, 21), "(10 days left)"),
        (date(2026, 3, 12), "(1 day left)"),
        (date(2026, 3, 11), "(today is the last day)"),
    ],
)
def test_days_left_count_in_the_companys_time_zone(
    client: TestClient,
    session: Session,
    settings: Settings,
    frozen_now: datetime,
    valid_until: date,
    shown: str,
) -> None:
    assert settings.timezone == "Europe/Berlin"
    offer = make_offer(session, settings, issued=True, valid_until=valid_until)

    text = client.get(f"/{offer.id}").text

    assert f"{valid_until:%b} {valid_until.day}, {valid_until:%Y} {shown}" in text
    assert "Accept this offer" in text


def test_the_day_after_the_last_day_the_offer_reads_expired(
    client: TestClient,
    session: Session,
    settings: Settings,
    frozen_now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offer = make_offer(session, settings, issued=True, valid_until=date(2026, 3, 11))
    monkeypatch.setattr(offers_service, "utcnow", lambda: frozen_now + timedelta(days=1))

    text = client.get(f"/{offer.id}").text

    assert "days left" not in text and "last day" not in text
    assert "Expired" in text


def test_expired_offer_reads_expired_and_cannot_be_accepted(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    offer.valid_until = offers_service.today(settings) - timedelta(days=1)
    session.add(offer)
    session.commit()

    text = client.get(f"/{offer.id}").text

    assert "Expired" in text
    assert "Accept this offer" not in text


def test_full_ulid_of_an_order_shows_timeline_on_top(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session, settings, company="Acme Hellas SA")

    text = client.get(f"/{order.id}").text

    assert text.index("Order progress") < text.index("Acme Hellas SA")


def test_a_garbled_csrf_token_is_refused_not_an_error(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    client.get(f"/{offer.id}")

    response = client.post(
        f"/{offer.id}/accept", data={"signer_name": "Eve", "csrf_token": "ünïcode.tökén"}
    )

    assert response.status_code == 403
