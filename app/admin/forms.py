"""Staff forms, one way: read the fields, validate, save through one service call, flash,
redirect (303). Invalid input or a refused save comes back as errors by field, for the page
to re-render with each error beside its field and what was typed kept (422). A save refused
because someone else saved the record since the form was opened (app.versions) comes back the
same way, as the error ``CONFLICT`` that the page shows above the form. A button with no
fields (activate, issue, revise) has nothing to re-render: its refusal is flashed instead, a
press from a page opened before someone else's save included (its hidden version)."""

from collections.abc import Callable
from typing import Any, Final, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.datastructures import URL, FormData
from starlette.responses import RedirectResponse, Response

from app.admin.views import in_session
from app.errors import AppError, Conflict, Unprocessable
from app.versions import StaleEdit

Errors = dict[str, str]
# The key of a stale save's message in a form's errors (shown above the form, not by a field).
CONFLICT = "conflict"
M = TypeVar("M")
Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")


def fields(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in names}


def present(values: dict[str, str]) -> dict[str, Any]:
    """The fields that were filled in: an empty one takes the schema's default."""
    return {k: v for k, v in values.items() if v != ""}


def validate(model: type[Model], data: dict[str, Any]) -> tuple[Model | None, Errors]:
    try:
        return model.model_validate(data), {}
    except ValidationError as error:
        found: dict[str, list[str]] = {}
        for e in error.errors():
            field, rest = (str(e["loc"][0]) if e["loc"] else "form"), list(e["loc"][1:])
            found.setdefault(field, []).append(f"{_where(rest)}{plain_message(e)}")
        return None, {field: "; ".join(messages) for field, messages in found.items()}


# Pydantic's words for a limit ("Input should be greater than or equal to 0", "Decimal input
# should have no more than 12 digits in total") describe the check, not what to type.
DATE_HELP: Final = "Write the date as year-month-day, e.g. 2027-01-31."
PLAIN_WORDS: Final = {
    "greater_than_equal": "Must be {ge} or more.",
    "greater_than": "Must be more than {gt}.",
    "less_than_equal": "Must be {le} or less.",
    "less_than": "Must be less than {lt}.",
    "decimal_max_digits": "Too many digits: at most {max_digits} in all.",
    "decimal_max_places": "At most {decimal_places} decimal places.",
    "decimal_whole_digits": "Too many digits: at most {whole_digits} before the point.",
    "string_too_long": "Too long: at most {max_length} characters.",
    "date_from_datetime_parsing": DATE_HELP,
    "date_parsing": DATE_HELP,
}


def plain_message(error: Any) -> str:
    """A validation error as the person who typed the field reads it."""
    kind, limits = error["type"], error.get("ctx", {})
    # "String should have at least 1 character" is an empty required field.
    if kind == "missing" or (kind == "string_too_short" and limits.get("min_length") == 1):
        return "This is required."
    if kind in PLAIN_WORDS:
        return PLAIN_WORDS[kind].format(**{k: str(v) for k, v in limits.items()})
    return str(error["msg"]).removeprefix("Value error, ")


def _where(path: list[Any]) -> str:
    """Where in a nested field (a rule's JSON) an error is, counted from 1 as people do."""
    if not path:
        return ""
    head = f"Rule {path[0] + 1}" if isinstance(path[0], int) else str(path[0])
    tail = ".".join(str(p) for p in path[1:])
    return f"{head}{', ' + tail if tail else ''}: "


def service_errors(exc: AppError) -> Errors:
    """A service's refusal beside the field it names (a bad value, a name taken), else above
    the form."""
    if isinstance(exc, Unprocessable | Conflict) and exc.loc:
        loc = [str(p) for p in exc.loc if p not in {"body", "query"}]
        return {loc[0] if loc else "form": exc.detail}
    return {"form": exc.detail}


def refusal_errors(exc: AppError) -> Errors:
    """A refusal of the input (Unprocessable) beside its field, as ``service_errors`` places it;
    any other error (the row is gone, the step is not allowed now) is the error page's."""
    if not isinstance(exc, Unprocessable):
        raise exc
    return service_errors(exc)


async def save_and_redirect(
    request: Request,
    parsed: tuple[M | None, Errors],
    save: Callable[[Session, M], T],
    *,
    success: Callable[[T], str],
    to: Callable[[T], URL | str],
    errors_of: Callable[[AppError], Errors] = service_errors,
) -> Response | Errors:
    """Save valid input, flash ``success`` and redirect to ``to``; else the errors by field.

    ``errors_of`` places a service's refusal (it may re-raise one that no field explains,
    for the staff site's error page); a stale save is always the form's ``CONFLICT``, with
    what was typed kept.
    """
    data, errors = parsed
    if data is None:
        return errors
    valid: M = data
    try:
        saved = await in_session(lambda session: save(session, valid))
    except StaleEdit as exc:
        return {CONFLICT: exc.since_opened()}
    except AppError as exc:
        return errors_of(exc)
    Flash.success(request, success(saved))
    return RedirectResponse(to(saved), status_code=303)


async def act_and_redirect(
    request: Request,
    act: Callable[[Session], T],
    *,
    success: Callable[[T], str],
    to: Callable[[T], URL | str],
    refused: str,
    back: URL | str,
) -> Response:
    """Run a button's action, flash ``success`` and redirect to ``to``; a service's refusal is
    flashed under the title ``refused`` and redirects ``back``, where the record shows as it is
    now."""
    try:
        done = await in_session(act)
    except StaleEdit as exc:
        outcome = "Nothing was done: check it as it is now, then try again."
        Flash.error(request, exc.since_opened(outcome), title=refused)
        return RedirectResponse(back, status_code=303)
    except AppError as exc:
        Flash.error(request, exc.detail, title=refused)
        return RedirectResponse(back, status_code=303)
    Flash.success(request, success(done))
    return RedirectResponse(to(done), status_code=303)
