"""Bad input, sent to every route the app serves (derived from the app, as the route walks
are), gets a clear refusal and changes nothing: never a 5xx, an API refusal with an honest
status and, for validation, the field paths (``loc``); a web refusal as a page, not a
traceback; and no row written or changed by a request that was refused.

The inputs are a fixed list, not random: a failure names the request that caused it, and the
same run reproduces it."""

import json
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.routing import Match, Route

from app.auth.staff import Role
from app.config import get_settings
from app.notifications import subscriptions
from app.notifications.router import FormLimits
from app.tracking.ratelimit import MissLimiter
from tests.admin.conftest import StaffLogin, csrf_from, sign_in
from tests.admin.staffroutes import PASSWORD, staff_app, staff_downloads, staff_pages
from tests.routes import served_routes
from tests.security import test_route_walks
from tests.security.test_route_walks import (
    KEPT_AS_NEEDED,
    VIEWS,
    World,
    _api_gets,
    _api_routes,
    _path_values,
    _public_gets,
    _staff_routes,
    fingerprint,
)

pytestmark = pytest.mark.concurrency
world = test_route_walks.world  # the demo data, an order's subscription and an API key

# Path parameters of every wrong shape: numbers out of any row's range, not a number, a ULID
# a character short, with a letter Crockford's alphabet lacks, past the largest ULID, NUL, bytes
# that are not UTF-8, and a very long one.
BAD_PATH_VALUES = (
    "-1",
    "0",
    str(10**20),
    "abc",
    "01H0WARY2WHGGRF3K72D299T3",
    "01H0WARY2WHGGRF3K72D299T3U",
    "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "%00",
    "%FF%FE",
    "x" * 300,
)
# Query values of the wrong type or range for a typed parameter.
BAD_TYPED_VALUES = ("-1", str(10**20), "abc", "", "2026-02-30", "%00", "%FF", "x" * 5000)
# Query strings every GET is sent, parameters it may not even know: paging out of range, sort
# keys that name no column, malformed dates, repeated parameters, NUL and control characters,
# invalid percent-encoding and bytes that are not UTF-8, and text past every limit.
GENERIC_QUERIES = (
    "page=-1&pageSize=0&limit=0&offset=-1&sortBy=nope&sort=sideways&from=2026-13-45"
    "&q=a&q=b&lang=de&lang=xx&page=1&history_page=-1",
    f"page={10**20}&pageSize=1.5&limit=NaN&offset={10**20}&sortBy=__class__&to=yesterday"
    "&created_from=2026-02-30&history_page=" + "9" * 30,
    "q=%00&search=a%00b%01%1b%7f&sortBy=%zz&lang=%&from=%E2%82&page=%G0&to=%FF%FE&by=%C3%28",
    "q=" + "x" * 5000 + "&search=" + "y" * 5000 + "&sortBy=" + "z" * 5000,
)
# Values for all the fields of a form at once: empty, past every length limit, control
# characters and a NUL, too large a number.
BAD_FORM_VALUES = ("", "x" * 10_001, "\x01\x1b[0m\x7fa\x00b", str(10**20))
# What each kind of input is given alone, the others keeping their values: text past its
# limit, a number that is none, a date that does not exist.
BAD_BY_INPUT = {"text": "x" * 10_001, "number": "NaN", "date": "2026-02-30"}
# JSON bodies that are not the object a route takes.
BAD_BODIES: tuple[tuple[str, bytes, str], ...] = (
    ("array", b"[]", "application/json"),
    ("null", b"null", "application/json"),
    ("string", b'"offer"', "application/json"),
    ("number", b"42", "application/json"),
    ("empty", b"", "application/json"),
    ("broken", b'{"company": ', "application/json"),
    ("not utf-8", b'{"company": "\xff\xfe"}', "application/json"),
    ("deep", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    ("extra field", b'{"no_such_field": 1}', "application/json"),
    ("text/plain", b'{"company": "Acme"}', "text/plain"),
    ("form", b"company=Acme", "application/x-www-form-urlencoded"),
    ("xml", b"<offer/>", "application/xml"),
)
# A field's wrong-type values, by the JSON type the schema gives it.
WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "string": (12, ["x"], {"x": 1}, "x" * 100_001, "a\u0000b"),
    "integer": ("abc", 1.5, -(10**20), 10**20, [1]),
    "number": ("abc", [1], {"x": 1}),
    "boolean": ("maybe", [True]),
    "array": ("x", {"x": 1}, [None]),
    "object": ("x", [1], 12),
}
# What a refused form may write: a page records a secret an earlier save held for it as shown
# (app.admin.reveal), and a wrong password or code is counted (app.admin.throttle).
SHOWN = KEPT_AS_NEEDED | {"staff_reveal_shown", "login_failure"}
# A wrong password or code on the confirm-access page is a security event the audit log keeps
# (app.admin.confirm_access), on that page only.
AUDITED_WHEN_REFUSED = {"/admin/confirm-access": {"audit_log"}}
# How a form marks the field an error is about: ours, and sqladmin's (Bootstrap's class).
FIELD_ERROR = ('aria-invalid="true"', "is-invalid")
# What an API may honestly answer bad input with.
API_REFUSALS = {400, 404, 405, 409, 413, 415, 422}
# Staff forms the walk does not send: they end the session it runs in (the path walk sends
# each a malformed path all the same).
ENDS_THE_WALK = {
    "staff:logout",
    "staff:end_other_sessions",
    "staff:end_session",
    "staff:change_password",
}
# Staff forms that no page shows the walk's admin, with the form whose fields each reads (else
# the fields it declares) and its path: the editor's live totals (htmx, the editor's fields),
# the bulk stage update (the one order's stage fields and ticked rows), the personal data
# page's buttons under a looked-up address (the lookup's address field), and the forms of
# another state (two-factor sign-in set up; signed out). Signing in comes last.
OFF_THE_PAGES: dict[str, tuple[str | None, dict[str, str]]] = {
    "editor:totals": ("editor:save", {}),
    "staff:bulk_stage_update": ("staff:stage_update", {}),
    "privacy_pages:download": ("privacy_pages:lookup", {}),
    "privacy_pages:confirm_erase": ("privacy_pages:lookup", {}),
    "privacy_pages:erase": ("privacy_pages:lookup", {}),
    "staff:2fa_confirm": (None, {}),
    "staff:2fa_disable": (None, {}),
    "staff:login_2fa_submit": (None, {}),
    "staff:login_submit": (None, {}),
}


@dataclass
class Findings:
    """Every answer that broke the rule, by the request that got it."""

    found: dict[str, str]

    def send(
        self,
        web: TestClient,
        call: str,
        method: str,
        url: str,
        *,
        refuse: bool = False,
        **request: Any,
    ) -> httpx.Response | None:
        """The answer to a request, checked; None when the app raised instead of answering."""
        try:
            response = web.request(method, url, follow_redirects=False, **request)
        except Exception as exc:  # the test client re-raises what became a 500
            self.found[call] = f"500: {exc!r}"[:300]
            return None
        self.check(call, response, refuse=refuse)
        return response

    def check(self, call: str, response: httpx.Response, *, refuse: bool) -> None:
        status = response.status_code
        if status >= 500:
            self.found[call] = f"{status}: {response.text[:200]}"
        elif refuse and status < 400:
            self.found[call] = f"{status}: bad input taken"
        elif "Traceback (most recent call last)" in response.text:
            self.found[call] = f"{status}: a traceback"
        elif urlsplit(call.split(" ", 1)[1]).path.startswith("/api/") and status >= 400:
            self._check_api_refusal(call, response)

    def _check_api_refusal(self, call: str, response: httpx.Response) -> None:
        status = response.status_code
        if status not in API_REFUSALS:
            self.found[call] = f"{status}: not an honest refusal of bad input"
        elif status == 422:
            detail = response.json().get("detail")
            if not isinstance(detail, list) or not all("loc" in error for error in detail):
                self.found[call] = f"422 without field paths: {response.text[:200]}"


def test_a_nul_in_the_url_reads_as_the_replacement_character(api: TestClient) -> None:
    """PostgreSQL cannot take a NUL: in a search it was a 500 (app.requestguard)."""
    search = api.get("/api/v1/customers?q=%00")
    one = api.get("/api/v1/customers/%00")

    assert (search.status_code, search.json()["items"]) == (200, [])
    assert one.status_code == 422
    assert one.json()["detail"][0]["input"] == "\ufffd"


@pytest.fixture
def findings() -> Findings:
    return Findings({})


@pytest.fixture
def unlimited(app: FastAPI, web: TestClient) -> TestClient:
    """``web`` with no budget for failed lookups and public forms: a 429 would hide the
    answer each bad input gets."""
    app.state.miss_limiter = MissLimiter(10**9)
    app.state.notification_limits = FormLimits(
        per_client=10**9, refused_per_client=10**9, per_order=10**9
    )
    return web


def _is_typed(annotation: Any) -> bool:
    """Whether the parameter takes only some spellings (a number, a date, one of a list)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return True
    if args and typing.get_origin(annotation) is not typing.Annotated:
        return any(_is_typed(a) for a in args)
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_typed(args[0])
    return isinstance(annotation, type) and issubclass(
        annotation, int | float | Decimal | date | datetime | Enum
    )


def _get_routes(app: FastAPI) -> dict[str, APIRoute]:
    """Every GET route of ours (the hot paths are plain Starlette routes: no declared query)."""
    return {
        path: route
        for path, route in served_routes(app.router.routes)
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    }


def _route_of(app: FastAPI, url: str) -> APIRoute | None:
    path = urlsplit(url).path
    for pattern, route in _get_routes(app).items():
        scope = {"type": "http", "path": path, "method": "GET"}
        probe = Route(pattern, endpoint=route.endpoint, methods=["GET"])
        if probe.matches(scope)[0] == Match.FULL:
            return route
    return None


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _all_gets(app: FastAPI, world: World, committed: Engine) -> list[tuple[str, dict[str, str]]]:
    key = {"Authorization": f"Bearer {world.api_token}"}
    staff = staff_pages(app, world.ids, committed) + staff_downloads(staff_app(app), world.ids)
    calls: list[tuple[str, dict[str, str]]] = [(url, {}) for url in staff]
    calls += [(url, {}) for url in _public_gets(app, world)]
    return calls + [(url, key) for url in _api_gets(app, world)]


def test_every_get_answers_malformed_queries_without_a_5xx_and_changes_nothing(
    app: FastAPI, unlimited: TestClient, world: World, committed: Engine, findings: Findings
) -> None:
    """Every page, download and API read, as an admin and with a key: the generic bad query
    strings, and each declared parameter of a number, date or list type given a value of the
    wrong type or range, which it must refuse (a 4xx; on the API a 422 naming the field)."""
    web = unlimited
    sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    calls = _all_gets(app, world, committed)
    before = fingerprint(committed, skip=VIEWS)
    typed = 0
    for url, headers in calls:
        for query in GENERIC_QUERIES:
            target = _with_query(url, query)
            findings.send(web, f"GET {target}", "GET", target, headers=headers)
        route = _route_of(app, url)
        for param in route.dependant.query_params if route else ():
            if not _is_typed(param.field_info.annotation):
                continue
            typed += 1
            for value in BAD_TYPED_VALUES:
                target = _with_query(url, f"{param.alias}={value}")
                call = f"GET {target}"
                response = findings.send(web, call, "GET", target, refuse=True, headers=headers)
                if response is not None:
                    _names_the_field(findings, call, response, ["query", param.alias])

    assert findings.found == {}
    assert fingerprint(committed, skip=VIEWS) == before
    assert len(calls) > 100 and typed >= 15


def _names_the_field(
    findings: Findings, call: str, response: httpx.Response, loc: list[str]
) -> None:
    if call.startswith("GET /api/") and response.status_code == 422 and call not in findings.found:
        locs = [error["loc"] for error in response.json()["detail"]]
        if loc not in locs:
            findings.found[call] = f"422 names {locs}, not {loc}"


def _paths_with_bad_params(route: APIRoute, world: World) -> Iterator[tuple[str, str]]:
    """The route's path with each of its parameters in turn given each bad value."""
    values = _path_values(world) | {
        "token": subscriptions.confirm_token(world.subscription, get_settings()),
        "code": world.ids.issued,
    }
    for name in route.param_convertors:
        for bad in BAD_PATH_VALUES:
            path = str(route.path_format)
            for other in route.param_convertors:
                path = path.replace("{" + other + "}", bad if other == name else str(values[other]))
            yield name, path


def _every_route(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """Each route with path parameters, with the prefix it is served under."""
    for path, route in served_routes(app.router.routes):
        if getattr(route, "param_convertors", None) and isinstance(route, APIRoute | Route):
            yield path[: len(path) - len(route.path)], route


def test_every_route_refuses_path_parameters_of_the_wrong_shape_and_changes_nothing(
    app: FastAPI, unlimited: TestClient, world: World, committed: Engine, findings: Findings
) -> None:
    """Every method of every route with a path parameter, each parameter malformed in turn:
    a 4xx, on the API with an honest status; nothing stored but what a view stores."""
    web = unlimited
    staff_token = sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    public_token = csrf_from(web.get(f"/{world.ids.issued}").text)
    key = {"Authorization": f"Bearer {world.api_token}"}
    before = fingerprint(committed, skip=VIEWS)
    sent = 0
    for prefix, route in _every_route(app):
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            for _, path in _paths_with_bad_params(route, world):
                url = prefix + path
                token = staff_token if url.startswith("/admin/") else public_token
                data = (
                    {"csrf_token": token}
                    if method != "GET" and not url.startswith("/api/")
                    else None
                )
                body: dict[str, Any] = (
                    {"json": {}} if url.startswith("/api/") and method != "GET" else {}
                )
                call = f"{method} {url}"
                # A staff button without fields (issue, end a session) flashes its refusal and
                # goes back (app.admin.forms.act_and_redirect): a 303 that changed nothing.
                refuse = method == "GET" or not url.startswith("/admin/")
                response = findings.send(
                    web, call, method, url, refuse=refuse, headers=key, data=data, **body
                )
                if response is not None and response.status_code == 403:
                    findings.found[call] = "403: the walk's own token or role was refused"
                sent += 1

    sent += _send_bad_sqladmin_keys(app, web, world, committed, findings)

    assert findings.found == {}
    assert fingerprint(committed, skip=VIEWS) == before
    assert sent > 500


def _send_bad_sqladmin_keys(
    app: FastAPI, web: TestClient, world: World, committed: Engine, findings: Findings
) -> int:
    """sqladmin's record pages (its app is no FastAPI app: the routes above leave it out),
    each view's details and edit page by every bad key: a 4xx, nothing stored."""
    pages = [
        page
        for page in staff_pages(app, world.ids, committed)
        if "/details/" in page or "/edit/" in page
    ]
    for page in pages:
        for bad in BAD_PATH_VALUES:
            url = page.rsplit("/", 1)[0] + "/" + bad
            findings.send(web, f"GET {url}", "GET", url, refuse=True)
    return len(pages) * len(BAD_PATH_VALUES)


def _body_routes(app: FastAPI) -> list[APIRoute]:
    return [
        route
        for route in _api_routes(app)
        if route.dependant.body_params and (route.methods or set()) & {"POST", "PATCH", "PUT"}
    ]


def _field_types(app: FastAPI, route: APIRoute) -> dict[str, str]:
    """The JSON type of each top-level field of the route's body, from its documented schema."""
    schemas = app.openapi()["components"]["schemas"]
    model = route.dependant.body_params[0].field_info.annotation
    schema = schemas[getattr(model, "__name__", "")]
    types = {}
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        kinds = [o.get("type") or ("object" if "$ref" in o else None) for o in options]
        types[name] = next((k for k in kinds if k and k != "null"), "string")
    return types


def test_every_api_body_refuses_malformed_json_with_field_paths_and_writes_nothing(
    app: FastAPI, web: TestClient, world: World, committed: Engine, findings: Findings
) -> None:
    """Each API route that takes a body: bodies that are no object, broken or not UTF-8 or
    nested past reading, of another content type, with an unknown field, and each documented
    field of a wrong type, too long or with a NUL: refused, with ``loc`` for a 422."""
    key = {"Authorization": f"Bearer {world.api_token}"}
    values = _path_values(world) | {"code": world.tracking_id, "offer_id": world.ids.draft}
    before = fingerprint(committed)
    sent = 0
    for route in _body_routes(app):
        path = str(route.url_path_for(route.name, **{n: values[n] for n in route.param_convertors}))
        method = sorted((route.methods or set()) - {"HEAD"})[0]
        for name, body, content_type in BAD_BODIES:
            headers = key | {"Content-Type": content_type}
            call = f"{method} {path} ({name})"
            findings.send(web, call, method, path, refuse=True, content=body, headers=headers)
            sent += 1
        for field, kind in _field_types(app, route).items():
            for wrong in WRONG_TYPES[kind]:
                call = f"{method} {path} ({field}={str(wrong)[:20]})"
                findings.send(
                    web, call, method, path, refuse=True, json={field: wrong}, headers=key
                )
                sent += 1

    assert findings.found == {}
    assert fingerprint(committed) == before
    assert sent > 300


def _kind(tag: str, attributes: dict[str, str]) -> str:
    """What a field takes, as BAD_BY_INPUT names it ("other": a tick box, a hidden field)."""
    kind = attributes.get("type", "text")
    if attributes.get("inputmode") in ("decimal", "numeric") or kind == "number":
        return "number"
    if tag in ("textarea", "select") or kind in ("text", "email", "url", "search", "tel"):
        return "text"
    return kind if kind == "date" else "other"


class _Forms(HTMLParser):
    """The POST forms of a page: each one's action and its fields with the values they hold."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.kinds: dict[str, str] = {}
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and attributes.get("method", "").lower() == "post":
            self._open = {}
            self.forms.append((attributes.get("action", ""), self._open))
        elif tag in ("input", "select", "textarea") and self._open is not None:
            if attributes.get("type") not in ("submit", "button") and attributes.get("name"):
                self._open.setdefault(attributes["name"], attributes.get("value", ""))
                self.kinds[attributes["name"]] = _kind(tag, attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


@dataclass
class Form:
    page: str
    action: str
    fields: dict[str, str]

    def reload(self, web: TestClient) -> None:
        """The fields as the page fills them in now (after a save: the record's new version)."""
        forms, _ = _forms_on(web, [self.page])
        if self.action in forms:
            self.fields = forms[self.action].fields


def _forms_on(web: TestClient, pages: list[str]) -> tuple[dict[str, Form], dict[str, str]]:
    """Every POST form on the pages, by its action, with the page it is on and the fields the
    page sends; and what each field takes."""
    forms: dict[str, Form] = {}
    kinds: dict[str, str] = {}
    for page in pages:
        parser = _Forms()
        parser.feed(web.get(page).text)
        kinds |= parser.kinds
        for action, fields in parser.forms:
            target = urlsplit(action).path or urlsplit(page).path
            if fields:
                forms.setdefault(target, Form(page, target, {})).fields.update(fields)
    return forms, kinds


def _post_scope(path: str) -> dict[str, str]:
    return {"type": "http", "path": path, "method": "POST"}


def _handler_of(app: FastAPI, action: str) -> str:
    """The name of our staff route that takes the form, else sqladmin's (its create, edit and
    list actions)."""
    scope = _post_scope(action.removeprefix("/admin"))
    for route in _staff_routes(app):
        if "POST" in (route.methods or ()) and route.matches(scope)[0] == Match.FULL:
            return route.name
    return "sqladmin:" + action.removeprefix("/admin/").split("/")[1]


def _form_cases(
    fields: dict[str, str], kinds: dict[str, str]
) -> Iterator[tuple[str, dict[str, str], bool]]:
    # Each case is what it changes in the form's fields, which are read anew after a save.
    """Every field at once given each bad value, then each field alone a bad value of its
    kind, the others as the page filled them in; and whether a person could have typed it
    (then a refusal is the form again, the error beside the field: a value no person can
    choose, a tampered tick box, may get a plain 4xx page)."""
    names = [name for name in fields if name not in ("csrf_token", "version")]
    for name in names:
        if value := BAD_BY_INPUT.get(kinds.get(name, "other"), ""):
            yield f"{name}={value[:12]!r}", {name: value}, True
    # Last: a value that may be good for every field (a reason "NaN") answers the offer.
    for value in BAD_FORM_VALUES:
        yield f"all={value[:12]!r}", dict.fromkeys(names, value), False


class Posting:
    """POSTs, each checked: a refusal (anything but the redirect after a save) leaves every
    row as it was before it. The rows are read again only after a save, which may change them."""

    def __init__(self, findings: Findings, web: TestClient, committed: Engine) -> None:
        self.findings, self.web, self.committed = findings, web, committed
        self.rows = fingerprint(committed, skip=SHOWN)

    def post(self, call: str, *, typed: bool = False, **request: Any) -> bool:
        """Send; ``typed``: bad input a person could type, which gets the form again. Whether
        the form was taken (a save, or an answer that changes nothing: a redirect)."""
        response = self.findings.send(self.web, call, "POST", call.split(" ")[1], **request)
        after = fingerprint(self.committed, skip=SHOWN)
        if response is None:  # a 500, found already
            self.rows = after
            return False
        refused = response.status_code not in (302, 303)
        if refused and typed and not any(mark in response.text for mark in FIELD_ERROR):
            self.findings.found[call] = f"{response.status_code} without the error beside its field"
        elif refused and (changed := self._changed(after, call.split(" ")[1])):
            self.findings.found[call] = f"{response.status_code}, and rows of {changed} changed"
        self.rows = after
        return not refused

    def _changed(self, after: dict[str, Any], path: str) -> list[str]:
        audited = AUDITED_WHEN_REFUSED.get(path, set())
        return sorted(n for n in after if after[n] != self.rows[n] and n not in audited)


def test_every_staff_form_answers_bad_fields_with_the_form_and_writes_nothing(
    app: FastAPI, unlimited: TestClient, world: World, committed: Engine, findings: Findings
) -> None:
    """Every staff form found on the staff pages, signed in as an admin with the token: each
    field empty, too long, with control characters, not a number, too large, not a date; the
    form sent with none of its fields, twice over, not as a form, and as bytes that are not
    UTF-8. Never a 5xx; a refusal (anything but the redirect after a save) writes nothing."""
    web = unlimited
    token = sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    forms, kinds = _forms_on(web, staff_pages(app, world.ids, committed))
    posting = Posting(findings, web, committed)
    handlers = {action: _handler_of(app, action) for action in forms}
    walked = set(OFF_THE_PAGES)
    for action, form in sorted(forms.items()):
        if handlers[action] not in ENDS_THE_WALK and action.startswith("/admin/"):
            walked.add(handlers[action])
            _send_bad_forms(posting, form, action, kinds, token)
    # The forms no page shows the walk's admin, sent the fields their handler reads.
    staff = staff_app(app)
    for name, (fields_of, params) in OFF_THE_PAGES.items():
        fields = dict.fromkeys(_declared_fields(app, name), "")
        if fields_of:
            fields = next(f.fields for a, f in forms.items() if handlers[a] == fields_of)
        action = "/admin" + staff.url_path_for(name, **params)
        # Not a form to show again: the totals are a fragment, sign-in names no field.
        off_the_page = Form(action, action, dict(fields))
        _send_bad_forms(posting, off_the_page, action, kinds, token, beside=False)

    posts = {route.name for route in _staff_routes(app) if "POST" in (route.methods or ())}
    assert findings.found == {}
    # A new staff form is walked once a page shows it, or once it is named in OFF_THE_PAGES.
    assert posts - walked == ENDS_THE_WALK
    assert len(walked) > 35  # ours and sqladmin's


def _declared_fields(app: FastAPI, name: str) -> list[str]:
    route = next(r for r in _staff_routes(app) if r.name == name)
    return [param.alias for param in route.dependant.body_params]


def _send_bad_forms(
    posting: Posting,
    form: Form,
    action: str,
    kinds: dict[str, str],
    token: str,
    *,
    beside: bool = True,
) -> None:
    """Each bad case of the form; ``beside``: what a person typed comes back by its field."""
    for name, changes, typed in _form_cases(form.fields, kinds):
        data = form.fields | changes | {"csrf_token": token}
        if posting.post(f"POST {action} ({name})", typed=typed and beside, data=data):
            form.reload(posting.web)
    posting.post(f"POST {action} (none)", data={"csrf_token": token})
    fields = form.fields
    raw = "&".join(f"{n}=%FF%FE{n}" for n in fields if n != "csrf_token")
    encoded = f"csrf_token={token}&{raw}&{raw}".encode()
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token}
    posting.post(f"POST {action} (not utf-8)", content=encoded, headers=urlencoded)
    as_json = {"Content-Type": "application/json", "X-CSRF-Token": token}
    posting.post(f"POST {action} (json)", content=json.dumps(fields).encode(), headers=as_json)


def test_every_public_form_answers_bad_fields_clearly_and_writes_nothing(
    app: FastAPI, unlimited: TestClient, world: World, committed: Engine, findings: Findings
) -> None:
    """The customer's forms (accept, decline, question, subscribe, confirm, unsubscribe) with a
    valid token: each declared field missing, too long, with control characters, NUL, not
    UTF-8, repeated. Never a 5xx; a refusal is the page again or a clear 4xx page, and
    writes nothing."""
    web = unlimited
    settings = get_settings()
    token = csrf_from(web.get(f"/{world.ids.issued}").text)
    values = _path_values(world) | {
        "code": world.ids.issued,
        "token": subscriptions.confirm_token(world.subscription, settings),
    }
    pages = [f"/{world.ids.issued}", f"/{world.ids.order}", f"/{world.tracking_id}"]
    forms, kinds = _forms_on(web, pages)
    posting = Posting(findings, web, committed)
    routes = [
        route
        for path, route in served_routes(app.router.routes)
        if isinstance(route, APIRoute)
        and not path.startswith(("/api/", "/admin/"))
        and "POST" in (route.methods or set())
    ]
    for route in routes:
        path = str(route.url_path_for(route.name, **{n: values[n] for n in route.param_convertors}))
        names = [param.alias for param in route.dependant.body_params]
        # The form of the route on one of the pages (subscribing is on the order's), if any.
        on_pages = [a for a in forms if route.matches(_post_scope(a))[0] == Match.FULL]
        path = on_pages[0] if on_pages else path
        fields = forms[path].fields if on_pages else dict.fromkeys(names, "")
        for name, changes, typed in [*_form_cases(fields, kinds), ("none", {}, False)]:
            data = (fields if name != "none" else {}) | changes | {"csrf_token": token}
            posting.post(f"POST {path} ({name})", typed=typed, data=data)
        raw = "&".join(f"{n}=%FF%FE&{n}=%C3%28" for n in names)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        encoded = f"csrf_token={token}&{raw}".encode()
        posting.post(f"POST {path} (not utf-8)", content=encoded, headers=form)

    assert findings.found == {}
    assert len(routes) >= 6
