"""The staff-site fixtures (committed data, signed-in clients) for the security tests."""

from tests.admin.conftest import (  # noqa: F401
    as_role,
    db,
    make_staff,
    second_browser,
    web,
)
