"""What the API documents about its errors, so clients (and the schema fuzzer) can rely on it.

Every error of the JSON API is ``{"detail": "..."}`` (a sentence), except 422, which FastAPI
documents itself: ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``.
"""

from typing import Any

from pydantic import BaseModel


class ErrorRead(BaseModel):
    detail: str


_DESCRIPTIONS = {
    400: "The request could not be read (malformed JSON, a code that cannot be a code).",
    401: "No valid API key: send `Authorization: Bearer <key>`.",
    404: "No such offer or order.",
    409: "The offer is not in a state that allows this.",
    413: "The request body is larger than the configured limit.",
    503: "Temporarily unavailable (e.g. the PDF renderer is busy); retry later.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorRead, "description": _DESCRIPTIONS[code]} for code in codes}
