"""The staff site's views of offers, orders, their stage updates and the stage list. Every
change goes through the domain services (and so into the audit log) rather than sqladmin's
generic model writes."""

from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import Request
from markupsafe import Markup
from sqladmin import action
from sqladmin.authorization import Action, custom_action
from sqladmin.flash import Flash
from sqlalchemy import ColumnElement, Select
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response
from wtforms import (
    Form,
    HiddenField,
    IntegerField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from app import audit, i18n
from app.admin import access, listfilters, queries
from app.admin.views.base import (
    ADMIN_READ,
    READ,
    Refused,
    StaffModelView,
    _when,
    in_session,
    staff_of,
)
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.db import read_only
from app.formats import DecimalMark
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import compute_totals
from app.templating import format_date
from app.tracking import service as tracking_service
from app.tracking import stages as stages_service
from app.tracking.models import OrderStage, StageUpdate
from app.versions import VERSION_FIELD, Expected, StaleEdit, version_of


class OfferStatusFilter(listfilters.LookupFilter):
    """Status as the customer sees it: an issued offer past its validity reads as expired."""

    title = "Status"
    parameter_name = "status"

    async def choices(self) -> list[tuple[str, str]]:
        return [(s.value, s.value.capitalize()) for s in OfferStatus]

    def condition(self, value: str) -> ColumnElement[bool]:
        try:
            status = OfferStatus(value)
        except ValueError:
            return col(Offer.id).is_(None)  # an unknown status matches nothing
        return offers_service.status_condition(status, _today())


def _today() -> Any:
    return offers_service.today(get_settings())


def _status_label(model: Offer, attribute: str) -> str:
    return str(model.effective_status(_today()))


def _tracking_id(model: Offer, attribute: str) -> Markup:
    # Kept on one line: a phone's narrow list card broke it at its hyphen.
    code = hyphenate_tracking_id(model.tracking_id)
    return Markup('<span class="tracking-id">%s</span>') % code


def _gross_total(model: Offer, attribute: str, request: Request | None = None) -> str:
    # The lines come with the row (selectin): the same pricing code as the API and the PDF.
    # Written with the user's decimal mark, as the staff site's templates write amounts.
    gross = compute_totals(model.lines, model.currency).gross
    mark = access.decimal_mark(request) if request is not None else DecimalMark.POINT
    return i18n.format_money(gross, model.currency, mark.language)


def _owners(session: Session) -> list[tuple[str, str]]:
    with read_only(session):
        rows = session.exec(select(StaffUser).order_by(col(StaffUser.email))).all()
        # A leaver's offers are still theirs until handed over: the filter finds them by name.
        return [
            (
                str(user.id),
                (user.full_name or user.email) + ("" if user.is_active else " (disabled)"),
            )
            for user in rows
        ]


class _OfferFilters(StaffModelView):
    """The typed filters of the offer and order lists: owner (anyone, mine, a person),
    customer, created dates and gross amount."""

    filter_fields = listfilters.OFFER_FIELDS

    def filter_conditions(self, request: Request) -> list[ColumnElement[bool]]:
        staff = getattr(request.state, "staff", None)
        return listfilters.offer_conditions(
            request, staff.id if staff else None, access.decimal_mark(request)
        )

    async def filter_choices(self, request: Request) -> dict[str, list[tuple[str, str]]]:
        owners = await in_session(_owners)
        return {"owner": [("", "Anyone"), ("mine", "Mine"), *owners]}


class OfferAdmin(_OfferFilters, model=Offer):
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
        Offer.valid_until: _when,
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
        "net_total",
        "vat_total",
        "gross_total",
        Offer.valid_until,
        Offer.created_at,
        Offer.issued_at,
        Offer.accepted_at,
        Offer.ordered_at,
    ]
    details_template = "admin/offer_details.html"

    def search_placeholder(self) -> str:
        return "Tracking ID or offer ID (any spelling), company, reference"

    def search_query(self, stmt: Select[Any], term: str) -> Select[Any]:
        return stmt.where(queries.offer_search(term))

    async def details_context(self, request: Request) -> dict[str, Any]:
        offer_id, page = request.path_params["pk"], history_page(request)
        return await in_session(lambda session: _offer_context(session, offer_id, page))


def history_page(request: Request) -> int:
    """The page of the history asked for (``?history_page=2``); anything else is the first."""
    typed = request.query_params.get("history_page", "")
    return int(typed) if typed.isdecimal() and len(typed) <= 6 else 1


def _offer_context(session: Session, offer_id: str, history_page: int) -> dict[str, Any]:
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
            "owner": session.get(StaffUser, offer.owner_id) if offer.owner_id else None,
            "history": audit.offer_history(session, offer.id, page=history_page),
            "can_activate": offer.effective_status(today) in tracking_service.ACTIVATABLE,
            "can_issue": offer.status == OfferStatus.DRAFT,
            "can_revise": offer.effective_status(today) in offers_service.REVISABLE,
            # Activate, issue and revise ask about the offer as this page shows it (app.versions).
            "version": version_of(offer.updated_at),
        }


def _current_stage(model: Offer, attribute: str, request: Request) -> str:
    progress = getattr(request.state, "order_progress", {}).get(model.id)
    return progress.stage.label if progress else ""


def _expected(model: Offer, attribute: str, request: Request) -> str:
    progress = getattr(request.state, "order_progress", {}).get(model.id)
    if progress is None or progress.expected_delivery is None:
        return ""
    return format_date(progress.expected_delivery)


class OrderStageFilter(listfilters.LookupFilter):
    title = "Current stage"
    parameter_name = "stage"

    async def choices(self) -> list[tuple[str, str]]:
        stages = await in_session(tracking_service.list_stages)
        return [(s.key, s.label) for s in stages]

    def condition(self, value: str) -> ColumnElement[bool]:
        return queries.at_stage(value)


def _is_order() -> ColumnElement[bool]:
    # An offer becomes an order with its ordered_at (and stays one), as the tracking page
    # finds orders. By status, the list of orders newest first read every order for its page
    # (SQLite took the status index, then sorted); by ordered_at, one index walk gives it.
    return col(Offer.ordered_at).is_not(None)


class OrderAdmin(_OfferFilters, model=Offer):
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
        return super().list_query(request).where(_is_order())

    def details_query(self, request: Request) -> Select[Any]:
        return super().details_query(request).where(_is_order())

    async def list(self, request: Request) -> Any:
        pagination = await super().list(request)
        ids = [row.id for row in pagination.rows]
        request.state.order_progress = await in_session(
            lambda session: queries.progress_of(session, ids)
        )
        return pagination

    async def details_context(self, request: Request) -> dict[str, Any]:
        offer_id, page = request.path_params["pk"], history_page(request)
        return await in_session(lambda session: _order_context(session, offer_id, page))

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
        context = {"orders": orders, "stages": stages, "form": {}, "errors": {}} | BULK_TITLE
        return await self.templates.TemplateResponse(
            request, "admin/bulk_stage_update.html", context
        )


OrderAdmin.identity = "order"
# The bulk form's first heading, shown and shown again with its errors (app.admin.routes).
BULK_TITLE = {"title": "Add a stage update"}


def _orders_and_stages(
    session: Session, pks: Sequence[str]
) -> tuple[Sequence[Offer], Sequence[OrderStage]]:
    with read_only(session):
        orders = session.exec(select(Offer).where(col(Offer.id).in_(pks), _is_order())).all()
        return orders, tracking_service.list_stages(session)


def _order_context(session: Session, offer_id: str, history_page: int) -> dict[str, Any]:
    with read_only(session):
        offer = session.get(Offer, offer_id)
        if offer is None:
            return {}
        return {
            "offer": offer,
            "timeline": tracking_service.build_timeline(session, offer),
            "history": audit.offer_history(session, offer.id, page=history_page),
            "stages": tracking_service.list_stages(session),
        }


def _stage_labels(session: Session) -> dict[str, str]:
    with read_only(session):
        return {stage.key: stage.label for stage in tracking_service.list_stages(session)}


def _stage_label(model: StageUpdate, attribute: str, request: Request) -> str:
    # A stage removed from the list since keeps its key: better than nothing.
    return str(getattr(request.state, "stage_labels", {}).get(model.stage_key, model.stage_key))


def _order_link(model: StageUpdate, attribute: str, request: Request) -> Markup:
    url = request.url_for("admin:details", identity="order", pk=model.offer_id)
    return Markup('<a href="{}">{}</a>').format(url, model.offer_id)


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
    column_formatters: ClassVar[Any] = {
        StageUpdate.happened_at: _when,
        StageUpdate.offer_id: _order_link,
        StageUpdate.stage_key: _stage_label,
        StageUpdate.expected_delivery_date: _when,
    }
    # The details page in the same words as the order's page, not column names.
    column_details_list: ClassVar[Any] = [
        *column_list,
        StageUpdate.internal_note,
        StageUpdate.carrier,
        StageUpdate.tracking_number,
        StageUpdate.tracking_link,
        StageUpdate.created_at,
    ]
    column_labels = column_labels | {
        StageUpdate.internal_note: "Internal note",
        StageUpdate.carrier: "Carrier",
        StageUpdate.tracking_number: "Tracking number",
        StageUpdate.tracking_link: "Carrier tracking link",
        StageUpdate.created_at: "Recorded",
    }
    column_formatters_detail: ClassVar[Any] = column_formatters | {StageUpdate.created_at: _when}
    column_default_sort: ClassVar[Any] = [(StageUpdate.happened_at, True)]
    column_sortable_list: ClassVar[Any] = [StageUpdate.happened_at]
    column_filters: ClassVar[Any] = []
    column_searchable_list: ClassVar[Any] = [StageUpdate.offer_id, StageUpdate.public_note]

    async def list(self, request: Request) -> Any:
        request.state.stage_labels = await in_session(_stage_labels)
        return await super().list(request)

    async def get_object_for_details(self, request: Request) -> Any:
        request.state.stage_labels = await in_session(_stage_labels)
        return await super().get_object_for_details(request)

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
    form_edit_rules: ClassVar[list[str]] = ["label", "position", VERSION_FIELD]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        if rules == self.form_edit_rules:
            return type(
                "StageEditForm",
                (Form,),
                {
                    "label": StageListForm.label,
                    # A stage keeps a place: "empty puts it last" holds for a new one only.
                    "position": IntegerField(
                        "Position",
                        [InputRequired("Give the stage's place, 1 to 1000."), NumberRange(1, 1000)],
                        description="Order on the timeline.",
                    ),
                    # The version the form was opened at (app.versions).
                    VERSION_FIELD: HiddenField(),
                },
            )
        return StageListForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {
            "label": obj.label,
            "position": obj.position,
            VERSION_FIELD: version_of(obj.updated_at),
        }

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor
        return await in_session(
            lambda session: stages_service.create_stage(
                session, data["key"], data["label"], data.get("position"), actor=actor
            )
        )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        actor = staff_of(request).actor
        expected = Expected.from_form(data.get(VERSION_FIELD))
        try:
            return await in_session(
                lambda session: stages_service.update_stage(
                    session, pk, data["label"], data["position"], actor=actor, expected=expected
                )
            )
        except StaleEdit as exc:  # sqladmin shows the message above the form, as typed
            raise Refused(exc.since_opened()) from exc
