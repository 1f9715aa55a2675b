"""The staff site's views of staff users and API keys (admins only): created, changed and
revoked through the identity services, which write the audit log."""

from datetime import timedelta
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
    Field,
    Form,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from app.admin import reveal, user_actions, users
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
from app.config import get_settings
from app.db import get_engine, read_only
from app.errors import AppError
from app.fields import row_ids
from app.offers import service as offers_service
from app.versions import VERSION_FIELD, Expected, StaleEdit, version_of

ROLE_CHOICES = [(role.value, role.label) for role in Role]
EMAIL_MESSAGE = "Enter an e-mail address like ana@example.com."
PASSWORD_LENGTH = Length(min=MIN_LENGTH, max=MAX_LENGTH)


def _not_taken(form: Form, field: Field) -> None:
    """An address already in use, said beside the field: sqladmin puts a message there only
    from the form's own validation (a refusal of the save shows above the form). The service
    checks again under its transaction."""
    with Session(get_engine()) as session, read_only(session):
        if field.data and users.find_by_email(session, str(field.data)) is not None:
            raise ValidationError(
                f"A staff user {str(field.data).strip().lower()} exists already: open their page "
                "to change their role or set a new password."
            )


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class StaffUserCreateForm(Form):
    email = EmailField(
        "E-mail",
        [
            DataRequired(),
            Length(max=320),
            Regexp(EMAIL_PATTERN, message=EMAIL_MESSAGE),
            _not_taken,
        ],
        filters=[_stripped],  # an address pasted with a space around it is still that address
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.VIEWER.value)
    password = PasswordField(
        "Password",
        [DataRequired(), PASSWORD_LENGTH],
        description=f"At least {MIN_LENGTH} characters. Give it to them in person or by phone"
        " rather than by e-mail: every page asks them to choose their own until they do.",
    )


class StaffUserEditForm(Form):
    role = SelectField("Role", choices=ROLE_CHOICES)
    is_active = BooleanField(
        "Active", description="Inactive users cannot sign in; their sessions end."
    )
    new_password = PasswordField(
        "New password",
        [Optional(), PASSWORD_LENGTH],
        description="Leave empty to keep the current one; a new password ends the user's sessions,"
        " and they are asked to choose their own after signing in with it. Your own: on Your"
        " account.",
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
    # A new user, a role, a password or the active flag: each grants access.
    confirm_before = frozenset({"create", "edit"})
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

    details_template = "admin/users/details.html"

    async def details_context(self, request: Request) -> dict[str, Any]:
        pk = str(request.path_params["pk"])
        if not pk.isdecimal():
            return {}
        settings = get_settings()
        idle = timedelta(minutes=settings.admin_idle_minutes)
        today = offers_service.today(settings)
        try:
            care = await in_session(lambda s: user_actions.user_care(s, int(pk), today, idle))
        except AppError:  # no such user: sqladmin answers 404 itself
            return {}
        return {"care": care}

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
                session,
                data["email"],
                Role(data["role"]),
                data["password"],
                actor=actor,
                given=True,
            )
        )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        staff = staff_of(request)

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
                    actor=staff.actor,
                    expected=Expected.from_form(data.get(VERSION_FIELD)),
                    password=data.get("new_password") or None,
                    by=staff.id,
                )
            except StaleEdit as exc:  # sqladmin shows the message above the form, as typed
                raise Refused(exc.since_opened()) from exc
            if disabling:
                self._left_behind(request, session, user)
            return user

        return await in_session(update)

    def _left_behind(self, request: Request, session: Session, user: StaffUser) -> None:
        """Disabling someone leaves their offers without an active owner: say so at once."""
        assert user.id is not None
        owned = offers_service.owned_by_status(
            session, user.id, offers_service.today(get_settings())
        )
        if owned:
            Flash.warning(
                request,
                f"{user.email} still owns {sum(owned.values())} offers: open their page and "
                "choose “Hand over offers…” to give them to a colleague.",
                title="Offers without an active owner",
            )


def _key_name_free(form: Form, field: Field) -> None:
    """A name an active key has, said beside the field (as ``_not_taken`` for addresses)."""
    with Session(get_engine()) as session, read_only(session):
        taken = auth_service.name_in_use(session, str(field.data)) if field.data else None
    if taken is not None:
        raise ValidationError(auth_service.KeyNameTaken(taken).detail)


class ApiKeyCreateForm(Form):
    name = StringField(
        "Name",
        [DataRequired(), Length(max=100), _key_name_free],
        filters=[_stripped],
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
    # A new key is a secret that opens the API; revoking one stops an integration.
    confirm_before = frozenset({"create", "revoke"})
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
