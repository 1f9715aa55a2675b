"""What the API documents about its errors, so clients (and the schema fuzzer) can rely on it,
and the request rules every API route shares.

Every error of the JSON API is ``{"detail": "..."}`` (a sentence), except 422, which FastAPI
documents itself: ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``.
"""

from typing import Annotated, Any

from fastapi import Header, Path, Request
from pydantic import BaseModel

from app.errors import Unprocessable
from app.fields import MAX_ROW_ID

# A row id in a path: a number no row can have is a 422, never a database error.
PathId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


# Optimistic concurrency (app.versions): a GET's ETag is the row's version; an update sent with
# it in If-Match is refused (412) when the row changed since. Without If-Match it just saves.
IfMatch = Annotated[
    str | None,
    Header(
        max_length=1000,
        description="The ETag of your GET: save only if nobody changed the record since.",
    ),
]
_ETAG_HEADER = {"ETag": {"description": "The version, for If-Match", "schema": {"type": "string"}}}
WITH_ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": _ETAG_HEADER}}
# A call that answers with a new record (a revision): the ETag is that record's version.
WITH_ETAG_CREATED: dict[int | str, dict[str, Any]] = {201: {"headers": _ETAG_HEADER}}


class ErrorRead(BaseModel):
    detail: str


_DESCRIPTIONS = {
    400: "The request could not be read (malformed JSON, a code that cannot be a code).",
    401: "No valid API key: send `Authorization: Bearer <key>`.",
    404: "No such offer or order.",
    409: "The offer is not in a state that allows this.",
    412: "`If-Match` names another version than the current one: someone changed it since "
    "(the response's `ETag` is the current version); read it again and retry.",
    413: "The request body is larger than the configured limit.",
    503: "Temporarily unavailable (e.g. the PDF renderer is busy); retry later.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorRead, "description": _DESCRIPTIONS[code]} for code in codes}


async def single_query_values(request: Request) -> None:
    """A repeated query parameter (``?status=draft&status=issued``) is ambiguous: every one of
    ours takes one value, so say so instead of silently using the last."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            raise Unprocessable(f"{name!r} is given more than once; send it once.", ("query", name))
        seen.add(name)
