"""Customer records in the staff site, as a salesperson fills one in."""

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.staff import Role
from app.config import get_settings, settings_dependency
from tests.admin.staffroutes import staff_app

pytestmark = pytest.mark.concurrency


@pytest.fixture
def greek_by_default(app: FastAPI) -> Iterator[None]:
    staff = staff_app(app)
    greek = get_settings().model_copy(update={"default_language": "el"})
    staff.dependency_overrides[settings_dependency] = lambda: greek
    yield
    staff.dependency_overrides.pop(settings_dependency)


def test_the_language_is_chosen_by_name_and_starts_at_the_configured_default(
    web: TestClient, as_role: Callable[[Role], str], greek_by_default: None
) -> None:
    """The list read "en, de, el" (who guesses that "el" is Greek?) and a new record started
    at English whatever OFFERTRACK_DEFAULT_LANGUAGE said."""
    as_role(Role.SALES)

    page = web.get("/admin/customers/new").text

    select = re.search(r'<select[^>]*id="language".*?</select>', page, re.S)
    assert select, page
    options = re.findall(r'<option value="(\w+)"( selected)?>([^<]+)</option>', select.group(0))
    assert options == [
        ("en", "", "English"),
        ("de", "", "Deutsch"),
        ("el", " selected", "Ελληνικά"),
    ]
