"""The staff site's views of staff users and API keys (admins only): created, changed and
revoked through the identity services, which write the audit log."""

from typing import Any, ClassVar

from fastapi import Request
from sqladmin import action
from sqladmin.authorization import Action, custom_action
from sqladmin.flash import Flash
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response
from wtforms import (
    BooleanField,
    EmailField,
    Form,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.admin import reveal, users
from app.admin.users import EMAIL_PATTERN
from app.admin.views.base import (
    ADMIN_READ,
    Refused,
    StaffModelView,
    _when,
    in_session,
    staff_of,
)
from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.auth.passwords import MAX_LENGTH, MIN_LENGTH
from app.auth.staff import Role, StaffUser
from app.db import read_only
from app.errors import AppError
from app.fields import row_ids
from app.versions import VERSION_FIELD, Expected, StaleEdit, version_of

ROLE_CHOICES = [(role.value, role.label) for role in Role]
EMAIL_MESSAGE = "Enter an e-mail address like ana@example.com."
PASSWORD_LENGTH = Length(min=MIN_LENGTH, max=MAX_LENGTH)


class StaffUserCreateForm(Form):
    email = EmailField(
        "E-mail", [DataRequired(), Length(max=320), Regexp(EMAIL_PATTERN, message=EMAIL_MESSAGE)]
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.VIEWER.value)
    password = PasswordField(
        "Password",
        [DataRequired(), PASSWORD_LENGTH],
        description=f"At least {MIN_LENGTH} characters.",
    )


class StaffUserEditForm(Form):
    role = SelectField("Role", choices=ROLE_CHOICES)
    is_active = BooleanField(
        "Active", description="Inactive users cannot sign in; their sessions end."
    )
    new_password = PasswordField(
        "New password",
        [Optional(), PASSWORD_LENGTH],
        description="Leave empty to keep the current one; a new password ends the user's sessions.",
    )
    confirm_disable = BooleanField(
        "Yes, disable this user",
        description="Needed when you untick Active: the user is signed out at once.",
    )
    # The version the form was opened at (app.versions): a save after another's is refused.
    version = HiddenField()


class StaffUserAdmin(StaffModelView, model=StaffUser):
    name = "Staff user"
    name_plural = "Staff users"
    icon = "fa-solid fa-users"
    permissions = {**ADMIN_READ, Action.CREATE.value: Role.ADMIN, Action.EDIT.value: Role.ADMIN}
    can_create = True
    can_edit = True
    column_list: ClassVar[Any] = [
        StaffUser.email,
        StaffUser.role,
        StaffUser.is_active,
        StaffUser.last_login_at,
        StaffUser.created_at,
    ]
    column_labels: ClassVar[Any] = {
        StaffUser.email: "E-mail",
        StaffUser.role: "Role",
        StaffUser.is_active: "Active",
        StaffUser.last_login_at: "Last sign-in",
        StaffUser.created_at: "Created",
        StaffUser.updated_at: "Changed",
        StaffUser.full_name: "Name",
        StaffUser.phone: "Phone",
    }
    column_details_exclude_list: ClassVar[Any] = [StaffUser.password_hash]
    column_export_list: ClassVar[Any] = [
        StaffUser.email,
        StaffUser.role,
        StaffUser.is_active,
        StaffUser.last_login_at,
        StaffUser.created_at,
    ]
    column_formatters: ClassVar[Any] = {StaffUser.last_login_at: _when, StaffUser.created_at: _when}
    column_formatters_detail: ClassVar[Any] = {
        StaffUser.last_login_at: _when,
        StaffUser.created_at: _when,
        StaffUser.updated_at: _when,
    }
    column_searchable_list: ClassVar[Any] = [StaffUser.email]
    column_default_sort: ClassVar[Any] = [(StaffUser.email, False)]
    form_create_rules: ClassVar[list[str]] = ["email", "role", "password"]
    form_edit_rules: ClassVar[list[str]] = [
        "role",
        "is_active",
        "confirm_disable",
        "new_password",
        VERSION_FIELD,
    ]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        return StaffUserEditForm if rules == self.form_edit_rules else StaffUserCreateForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {
            "role": obj.role,
            "is_active": obj.is_active,
            VERSION_FIELD: version_of(obj.updated_at),
        }

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor
        return await in_session(
            lambda session: users.create_user(
                session, data["email"], Role(data["role"]), data["password"], actor=actor
            )
        )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor

        def update(session: Session) -> StaffUser:
            disabling = users.get_user(session, int(pk)).is_active and not data["is_active"]
            if disabling and not data.get("confirm_disable"):
                # Irreversible for the user's sessions: asked for on the form, which works
                # without JavaScript (sqladmin shows this message above it, nothing saved).
                raise Refused(
                    "Disabling a user signs them out at once: tick “Yes, disable this user” "
                    "to confirm. Nothing was changed."
                )
            try:
                user = users.update_user(
                    session,
                    int(pk),
                    role=Role(data["role"]),
                    is_active=bool(data["is_active"]),
                    actor=actor,
                    expected=Expected.from_form(data.get(VERSION_FIELD)),
                    password=data.get("new_password") or None,
                )
            except StaleEdit as exc:  # sqladmin shows the message above the form, as typed
                raise Refused(exc.since_opened()) from exc
            return user

        return await in_session(update)


class ApiKeyCreateForm(Form):
    name = StringField(
        "Name",
        [DataRequired(), Length(max=100)],
        description="Who or what uses the key, e.g. erp-sync. The token is shown once.",
    )


class ApiKeyAdmin(StaffModelView, model=ApiKey):
    name = "API key"
    name_plural = "API keys"
    icon = "fa-solid fa-key"
    permissions = {
        **ADMIN_READ,
        Action.CREATE.value: Role.ADMIN,
        custom_action("revoke"): Role.ADMIN,
    }
    can_create = True
    form = ApiKeyCreateForm
    column_list: ClassVar[Any] = [
        ApiKey.name,
        ApiKey.prefix,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
    ]
    column_labels: ClassVar[Any] = {
        ApiKey.name: "Name",
        ApiKey.prefix: "Starts with",
        ApiKey.created_at: "Created",
        ApiKey.last_used_at: "Last used",
        ApiKey.revoked_at: "Revoked",
    }
    column_details_exclude_list: ClassVar[Any] = [ApiKey.token_hash]
    column_export_list: ClassVar[Any] = [
        ApiKey.name,
        ApiKey.prefix,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
    ]
    column_formatters: ClassVar[Any] = {
        ApiKey.created_at: _when,
        ApiKey.last_used_at: _when,
        ApiKey.revoked_at: _when,
    }
    column_default_sort: ClassVar[Any] = [(ApiKey.created_at, True)]

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor
        key, token = await in_session(
            lambda session: auth_service.create_api_key(session, data["name"], actor=actor)
        )
        # Shown by the page sqladmin redirects to, not by an answer to the POST that a reload
        # would send again (a second key).
        reveal.hold(
            request,
            token,
            title=f"API key {key.name!r}",
            label="Copy the token now: it is not shown again, only its hash is kept.",
        )
        return key

    @action(
        "revoke",
        label="Revoke",
        confirmation_message="Revoke the selected API keys? Integrations using them stop working.",
    )
    async def revoke(self, request: Request) -> Response:
        form = await request.form()
        actor = staff_of(request).actor
        ids = row_ids([str(pk) for pk in form.getlist("pks")])
        if form.get("confirmed") != "yes":
            return await self._confirm_revoke(request, ids)

        def revoke_all(session: Session) -> None:
            for key_id in ids:
                auth_service.revoke_api_key(session, key_id, actor=actor)

        try:
            await in_session(revoke_all)
        except AppError as exc:
            Flash.error(request, exc.detail)
        else:
            Flash.success(request, f"Revoked {len(ids)} API key{'s' if len(ids) != 1 else ''}.")
        return RedirectResponse(request.url_for("admin:list", identity="api-key"), 303)

    async def _confirm_revoke(self, request: Request, ids: list[int]) -> Response:
        """Revoking cannot be undone: a page asks first (a form, so no JavaScript needed)."""
        if not ids:
            Flash.warning(request, "Select at least one API key first.")
            return RedirectResponse(request.url_for("admin:list", identity="api-key"), 303)

        def load(session: Session) -> list[ApiKey]:
            with read_only(session):
                return list(session.exec(select(ApiKey).where(col(ApiKey.id).in_(ids))).all())

        context = {"title": "Revoke API keys?", "keys": await in_session(load)}
        return await self.templates.TemplateResponse(request, "admin/confirm_revoke.html", context)
