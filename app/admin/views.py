"""sqladmin views of the staff site. Every view names, per action, the lowest role allowed
(``permissions``); RoleAuthorization refuses anything not listed. Nothing is ever deleted
through sqladmin, and every change goes through the domain services (and so into the audit
log) rather than sqladmin's generic model writes."""

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import anyio
from fastapi import Request
from sqladmin import ModelView, action
from sqladmin.authorization import Action, custom_action
from sqladmin.flash import Flash
from sqladmin.helpers import get_primary_keys, object_identifier_values
from sqlalchemy import BigInteger, ColumnElement, Select
from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response, StreamingResponse
from wtforms import (
    BooleanField,
    EmailField,
    Form,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.admin import audit, listfilters, queries, users
from app.admin.export import csv_export
from app.admin.models import AuditLogEntry, Role, StaffUser
from app.admin.passwords import MAX_LENGTH, MIN_LENGTH
from app.admin.users import EMAIL_PATTERN, Staff
from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.config import get_settings
from app.db import get_engine, read_only
from app.errors import AppError
from app.fields import MAX_ROW_ID
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import compute_totals
from app.templating import format_date, format_money
from app.tracking import service as tracking_service
from app.tracking import stages as stages_service
from app.tracking.models import OrderStage, StageUpdate

T = TypeVar("T")
READ: dict[str, Role] = {
    Action.LIST: Role.VIEWER,
    Action.DETAILS: Role.VIEWER,
    Action.EXPORT: Role.VIEWER,
}
ADMIN_READ: dict[str, Role] = {
    Action.LIST: Role.ADMIN,
    Action.DETAILS: Role.ADMIN,
    Action.EXPORT: Role.ADMIN,
}


async def in_session(work: Callable[[Session], T]) -> T:
    """Run blocking database work in a worker thread, in a session of its own."""

    def run() -> T:
        with Session(get_engine(), expire_on_commit=False) as session:
            return work(session)

    return await anyio.to_thread.run_sync(run)


def staff_of(request: Request) -> Staff:
    staff: Staff | None = getattr(request.state, "staff", None)
    if staff is None:  # sqladmin checked the sign-in before any view code runs
        raise RuntimeError("no signed-in staff user on a staff view")
    return staff


def _when(model: Any, attribute: str) -> str:
    value = getattr(model, attribute)
    return format_date(value) if value else ""


class StaffModelView(ModelView):
    permissions: ClassVar[dict[str, Role]] = {}
    can_create = False
    can_edit = False
    can_delete = False
    can_export = True
    export_types: ClassVar[list[str]] = ["csv"]
    page_size = 25
    page_size_options: ClassVar[Sequence[int]] = [25, 50, 100]
    search_auto_submit = False

    async def export_data(
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        # Through app.csvsafe: customer-typed text must not reach a spreadsheet as a formula.
        if export_type != "csv":
            raise HTTPException(status_code=404)
        return await csv_export(self, data)

    def _stmt_by_identifier(self, identifier: str) -> Any:
        # Every detail, edit and action page finds its row here. A number its column cannot
        # hold names no row; sent to the database it would be an error (a 500), not a miss.
        columns = get_primary_keys(self.model)
        pairs = zip(columns, object_identifier_values(identifier, self.model), strict=True)
        if not all(_fits(column, value) for column, value in pairs):
            raise HTTPException(status_code=404)
        return super()._stmt_by_identifier(identifier)


def _fits(column: Any, value: Any) -> bool:
    if not isinstance(value, int):
        return True
    limit = 2**63 - 1 if isinstance(column.type, BigInteger) else MAX_ROW_ID
    return -limit - 1 <= value <= limit


class OfferStatusFilter:
    """Status as the customer sees it: an issued offer past its validity reads as expired."""

    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"
    title = "Status"
    parameter_name = "status"

    async def lookups(self, request: Request, model: Any, run_query: Any) -> list[tuple[str, str]]:
        return [("__all", "All")] + [(s.value, s.value.capitalize()) for s in OfferStatus]

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Any:
        if value in ("", "__all", None):
            return query
        try:
            status = OfferStatus(value)
        except ValueError:
            return query.where(col(Offer.id).is_(None))  # an unknown status matches nothing
        return query.where(offers_service.status_condition(status, _today()))


def _today() -> Any:
    return offers_service.today(get_settings())


def _status_label(model: Offer, attribute: str) -> str:
    return str(model.effective_status(_today()))


def _tracking_id(model: Offer, attribute: str) -> str:
    return hyphenate_tracking_id(model.tracking_id)


def _gross_total(model: Offer, attribute: str) -> str:
    # The lines come with the row (selectin): the same pricing code as the API and the PDF.
    return format_money(compute_totals(model.lines, model.currency).gross, model.currency)


def _owners(session: Session) -> list[tuple[str, str]]:
    with read_only(session):
        rows = session.exec(select(StaffUser).order_by(col(StaffUser.email))).all()
        return [(str(user.id), user.full_name or user.email) for user in rows]


async def _offer_list_state(request: Request) -> None:
    """What the list's filter form offers, for the template (sqladmin passes no extras)."""
    owners = await in_session(_owners)
    request.state.filter_fields = listfilters.OFFER_FIELDS
    request.state.filter_choices = {"owner": [("", "Anyone"), ("mine", "Mine"), *owners]}


def _offer_list_query(request: Request, stmt: Select[Any]) -> Select[Any]:
    staff = getattr(request.state, "staff", None)
    conditions = listfilters.offer_conditions(request, staff.id if staff else None)
    return listfilters.apply(stmt, conditions)


class OfferAdmin(StaffModelView, model=Offer):
    name = "Offer"
    name_plural = "Offers"
    icon = "fa-solid fa-file-invoice"
    permissions = READ
    column_list: ClassVar[Any] = [
        Offer.tracking_id,
        Offer.customer_company,
        Offer.customer_reference,
        Offer.status,
        "gross_total",
        Offer.valid_until,
        Offer.created_at,
    ]
    column_labels: ClassVar[Any] = {
        Offer.tracking_id: "Tracking ID",
        Offer.customer_company: "Company",
        Offer.customer_reference: "Customer reference",
        Offer.status: "Status",
        "gross_total": "Total (gross)",
        Offer.valid_until: "Valid until",
        Offer.created_at: "Created",
    }
    column_formatters: ClassVar[Any] = {
        Offer.tracking_id: _tracking_id,
        Offer.status: _status_label,
        "gross_total": _gross_total,
        Offer.created_at: _when,
    }
    column_searchable_list: ClassVar[Any] = [
        Offer.tracking_id,
        Offer.id,
        Offer.customer_company,
        Offer.customer_reference,
    ]
    column_sortable_list: ClassVar[Any] = [
        Offer.created_at,
        Offer.customer_company,
        Offer.valid_until,
    ]
    column_default_sort: ClassVar[Any] = [(Offer.created_at, True)]
    column_filters: ClassVar[Any] = [OfferStatusFilter()]
    column_export_list: ClassVar[Any] = [
        Offer.id,
        Offer.tracking_id,
        Offer.status,
        Offer.customer_company,
        Offer.customer_contact_name,
        Offer.customer_email,
        Offer.customer_reference,
        Offer.currency,
        Offer.valid_until,
        Offer.created_at,
        Offer.issued_at,
        Offer.accepted_at,
        Offer.ordered_at,
    ]
    details_template = "admin/offer_details.html"

    def search_placeholder(self) -> str:
        return "Tracking ID or offer ID (any spelling), company, reference"

    def list_query(self, request: Request) -> Select[Any]:
        return _offer_list_query(request, super().list_query(request))

    async def list(self, request: Request) -> Any:
        await _offer_list_state(request)
        return await super().list(request)

    def search_query(self, stmt: Select[Any], term: str) -> Select[Any]:
        return stmt.where(queries.offer_search(term))

    async def details_context(self, request: Request) -> dict[str, Any]:
        offer_id = request.path_params["pk"]
        return await in_session(lambda session: _offer_context(session, offer_id))


def _offer_context(session: Session, offer_id: str) -> dict[str, Any]:
    with read_only(session):
        offer = session.get(Offer, offer_id)
        if offer is None:
            return {}
        today = _today()
        return {
            "offer": offer,
            "status": offer.effective_status(today),
            "totals": compute_totals(offer.lines, offer.currency),
            "revised_as": offers_service.superseded_by(session, [offer.id]).get(offer.id),
            "history": audit.offer_history(session, offer.id),
            "can_activate": offer.effective_status(today) in tracking_service.ACTIVATABLE,
            "can_issue": offer.status == OfferStatus.DRAFT,
            "can_revise": offer.effective_status(today) in offers_service.REVISABLE,
        }


def _current_stage(model: Offer, attribute: str, request: Request) -> str:
    progress = getattr(request.state, "order_progress", {}).get(model.id)
    return progress.stage.label if progress else ""


def _expected(model: Offer, attribute: str, request: Request) -> str:
    progress = getattr(request.state, "order_progress", {}).get(model.id)
    if progress is None or progress.expected_delivery is None:
        return ""
    return format_date(progress.expected_delivery)


class OrderStageFilter:
    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"
    title = "Current stage"
    parameter_name = "stage"

    async def lookups(self, request: Request, model: Any, run_query: Any) -> list[tuple[str, str]]:
        stages = await in_session(tracking_service.list_stages)
        return [("__all", "All")] + [(s.key, s.label) for s in stages]

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Any:
        if value in ("", "__all", None):
            return query
        return query.where(queries.at_stage(str(value)))


def _is_order() -> ColumnElement[bool]:
    return col(Offer.status) == OfferStatus.ORDERED


class OrderAdmin(StaffModelView, model=Offer):
    name = "Order"
    name_plural = "Orders"
    icon = "fa-solid fa-truck"
    permissions = {**READ, custom_action("bulk-stage-update"): Role.SALES}
    column_list: ClassVar[Any] = [
        Offer.tracking_id,
        Offer.customer_company,
        Offer.customer_reference,
        "current_stage",
        "expected_delivery",
        "gross_total",
        Offer.ordered_at,
        Offer.activated_by,
    ]
    column_labels: ClassVar[Any] = {
        Offer.tracking_id: "Tracking ID",
        Offer.customer_company: "Company",
        Offer.customer_reference: "Customer reference",
        "current_stage": "Current stage",
        "expected_delivery": "Expected delivery",
        "gross_total": "Total (gross)",
        Offer.ordered_at: "Ordered",
        Offer.activated_by: "Activated by",
    }
    column_formatters: ClassVar[Any] = {
        Offer.tracking_id: _tracking_id,
        "current_stage": _current_stage,
        "expected_delivery": _expected,
        "gross_total": _gross_total,
        Offer.ordered_at: _when,
    }
    column_searchable_list = OfferAdmin.column_searchable_list
    column_sortable_list: ClassVar[Any] = [Offer.ordered_at, Offer.customer_company]
    column_default_sort: ClassVar[Any] = [(Offer.ordered_at, True)]
    column_filters: ClassVar[Any] = [OrderStageFilter()]
    column_export_list = OfferAdmin.column_export_list
    details_template = "admin/order_details.html"

    def search_placeholder(self) -> str:
        return OfferAdmin.search_placeholder(self)  # type: ignore[arg-type]

    def search_query(self, stmt: Select[Any], term: str) -> Select[Any]:
        return stmt.where(queries.offer_search(term))

    def list_query(self, request: Request) -> Select[Any]:
        return _offer_list_query(request, select(Offer).where(_is_order()))

    def count_query(self, request: Request) -> Select[Any]:
        return super().count_query(request).where(_is_order())

    def details_query(self, request: Request) -> Select[Any]:
        return super().details_query(request).where(_is_order())

    async def list(self, request: Request) -> Any:
        await _offer_list_state(request)
        pagination = await super().list(request)
        ids = [row.id for row in pagination.rows]
        request.state.order_progress = await in_session(
            lambda session: queries.progress_of(session, ids)
        )
        return pagination

    async def details_context(self, request: Request) -> dict[str, Any]:
        offer_id = request.path_params["pk"]
        return await in_session(lambda session: _order_context(session, offer_id))

    @action(
        "bulk-stage-update",
        label="Add a stage update to the selected orders",
        add_in_detail=False,
    )
    async def bulk_stage_update(self, request: Request) -> Response:
        """Show the stage update form for the selected orders; the form itself posts to
        staff:bulk_stage_update."""
        form = await request.form()
        pks = [str(pk) for pk in form.getlist("pks") if pk]
        if not pks:
            Flash.warning(request, "Select at least one order first.")
            return RedirectResponse(request.url_for("admin:list", identity="order"), 303)
        orders, stages = await in_session(lambda session: _orders_and_stages(session, pks))
        context = {"orders": orders, "stages": stages, "form": {}, "errors": {}}
        return await self.templates.TemplateResponse(
            request, "admin/bulk_stage_update.html", context
        )


OrderAdmin.identity = "order"


def _orders_and_stages(
    session: Session, pks: Sequence[str]
) -> tuple[Sequence[Offer], Sequence[OrderStage]]:
    with read_only(session):
        orders = session.exec(select(Offer).where(col(Offer.id).in_(pks), _is_order())).all()
        return orders, tracking_service.list_stages(session)


def _order_context(session: Session, offer_id: str) -> dict[str, Any]:
    with read_only(session):
        offer = session.get(Offer, offer_id)
        if offer is None:
            return {}
        return {
            "offer": offer,
            "timeline": tracking_service.build_timeline(session, offer),
            "history": audit.offer_history(session, offer.id),
            "stages": tracking_service.list_stages(session),
        }


class StageUpdateAdmin(StaffModelView, model=StageUpdate):
    name = "Stage update"
    name_plural = "Stage updates"
    icon = "fa-solid fa-list-check"
    permissions = READ
    column_list: ClassVar[Any] = [
        StageUpdate.happened_at,
        StageUpdate.offer_id,
        StageUpdate.stage_key,
        StageUpdate.public_note,
        StageUpdate.expected_delivery_date,
        StageUpdate.created_by,
    ]
    column_labels: ClassVar[Any] = {
        StageUpdate.happened_at: "When",
        StageUpdate.offer_id: "Order",
        StageUpdate.stage_key: "Stage",
        StageUpdate.public_note: "Public note",
        StageUpdate.expected_delivery_date: "Expected delivery",
        StageUpdate.created_by: "By",
    }
    column_formatters: ClassVar[Any] = {StageUpdate.happened_at: _when}
    column_default_sort: ClassVar[Any] = [(StageUpdate.happened_at, True)]
    column_sortable_list: ClassVar[Any] = [StageUpdate.happened_at]
    column_filters: ClassVar[Any] = []
    column_searchable_list: ClassVar[Any] = [StageUpdate.offer_id, StageUpdate.public_note]

    def search_query(self, stmt: Select[Any], term: str) -> Select[Any]:
        matching = select(Offer.id).where(queries.offer_search(term))
        note = col(StageUpdate.public_note).ilike(f"%{term.strip()}%")
        return stmt.where(col(StageUpdate.offer_id).in_(matching) | note)


class StageListForm(Form):
    key = StringField(
        "Key",
        [
            DataRequired(),
            Regexp(
                stages_service.KEY_PATTERN,
                message="Lower-case letters, digits "
                "and underscores, starting with a letter (e.g. ready_for_pickup).",
            ),
        ],
        description="Used by the API; cannot be changed later.",
    )
    label = StringField("Label", [DataRequired(), Length(max=100)])
    position = IntegerField(
        "Position",
        [Optional(), NumberRange(min=1, max=1000)],
        description="Order on the timeline; empty puts a new stage last.",
    )


class OrderStageAdmin(StaffModelView, model=OrderStage):
    name = "Stage"
    name_plural = "Stage list"
    icon = "fa-solid fa-timeline"
    permissions = {**ADMIN_READ, Action.CREATE.value: Role.ADMIN, Action.EDIT.value: Role.ADMIN}
    can_create = True
    can_edit = True
    column_list: ClassVar[Any] = [OrderStage.position, OrderStage.label, OrderStage.key]
    column_default_sort: ClassVar[Any] = [(OrderStage.position, False)]
    form = StageListForm
    form_create_rules: ClassVar[list[str]] = ["key", "label", "position"]
    form_edit_rules: ClassVar[list[str]] = ["label", "position"]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        if rules == self.form_edit_rules:
            return type(
                "StageEditForm",
                (Form,),
                {"label": StageListForm.label, "position": StageListForm.position},
            )
        return StageListForm

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor
        return await in_session(
            lambda session: stages_service.create_stage(
                session, data["key"], data["label"], data.get("position"), actor=actor
            )
        )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor
        position = data.get("position")
        return await in_session(
            lambda session: stages_service.update_stage(
                session, pk, data["label"], position or 0, actor=actor
            )
        )


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
    column_details_exclude_list: ClassVar[Any] = [
        StaffUser.password_hash,
        StaffUser.session_version,
    ]
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
    ]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        return StaffUserEditForm if rules == self.form_edit_rules else StaffUserCreateForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {"role": obj.role, "is_active": obj.is_active}

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
                raise ValueError(
                    "Disabling a user signs them out at once: tick “Yes, disable this user” "
                    "to confirm. Nothing was changed."
                )
            user = users.update_user(
                session,
                int(pk),
                role=Role(data["role"]),
                is_active=bool(data["is_active"]),
                actor=actor,
            )
            if data.get("new_password"):
                user = users.set_password(session, int(pk), data["new_password"], actor=actor)
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
        from sqladmin import Secret

        actor = staff_of(request).actor
        key, token = await in_session(
            lambda session: auth_service.create_api_key(session, data["name"], actor=actor)
        )
        Secret.reveal_once(
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
        ids = [int(str(pk)) for pk in form.getlist("pks") if str(pk).isdigit()]
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


class AuditLogAdmin(StaffModelView, model=AuditLogEntry):
    name = "Audit log entry"
    name_plural = "Audit log"
    icon = "fa-solid fa-clock-rotate-left"
    permissions = ADMIN_READ
    column_list: ClassVar[Any] = [
        AuditLogEntry.occurred_at,
        AuditLogEntry.actor,
        AuditLogEntry.action,
        AuditLogEntry.summary,
        AuditLogEntry.offer_id,
    ]
    column_formatters: ClassVar[Any] = {AuditLogEntry.occurred_at: _when}
    column_default_sort: ClassVar[Any] = [(AuditLogEntry.occurred_at, True)]
    column_searchable_list: ClassVar[Any] = [
        AuditLogEntry.actor,
        AuditLogEntry.action,
        AuditLogEntry.summary,
        AuditLogEntry.offer_id,
    ]
    column_labels: ClassVar[Any] = {
        AuditLogEntry.occurred_at: "When",
        AuditLogEntry.actor: "Who",
        AuditLogEntry.action: "Action",
        AuditLogEntry.summary: "What happened",
        AuditLogEntry.offer_id: "Offer",
    }

    def list_query(self, request: Request) -> Select[Any]:
        return listfilters.apply(super().list_query(request), listfilters.audit_conditions(request))

    async def list(self, request: Request) -> Any:
        request.state.filter_fields = listfilters.AUDIT_FIELDS
        return await super().list(request)


ALL_VIEWS: list[type[StaffModelView]] = [
    OfferAdmin,
    OrderAdmin,
    StageUpdateAdmin,
    OrderStageAdmin,
    StaffUserAdmin,
    ApiKeyAdmin,
    AuditLogAdmin,
]
