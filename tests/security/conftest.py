"""The staff-site fixtures (committed data, signed-in clients) for the security tests."""

from tests.admin.conftest import (  # noqa: F401
    _cheap_password_hashes,
    as_role,
    db,
    make_staff,
    web,
)
