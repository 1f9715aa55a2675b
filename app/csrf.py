"""One CSRF check for every state-changing request, with a policy per site.

The check is always the same: the token sent with the request (header ``X-CSRF-Token``, else
the form field ``csrf_token``) must equal, compared in constant time, the token the policy
expects for this visitor. Only where that expected token lives differs:

- the public site (``app.web.SignedCookiePolicy``): a random token signed with the secret key,
  in an HttpOnly SameSite=Lax cookie (signed double submit; visitors have no session);
- the staff site (``app.admin.csrf.StaffSessionPolicy``): the token kept in the staff
  session, made afresh at every sign-in.
"""

import hmac
from typing import Protocol

from starlette.requests import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfPolicy(Protocol):
    def expected(self, request: Request) -> str | None:
        """The token this request must carry, or None: then nothing it sends passes."""


async def sent_token(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        async with request.form() as form:
            field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    return sent


def same(sent: str, expected: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII text, and a forged form may well contain some.
    return hmac.compare_digest(sent.encode(), expected.encode())


async def passes(request: Request, policy: CsrfPolicy) -> bool:
    """Whether ``request`` carries the token ``policy`` expects of it."""
    expected = policy.expected(request)
    if not expected:
        return False
    sent = await sent_token(request)
    return sent is not None and same(sent, expected)
