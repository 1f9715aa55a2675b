"""Terms templates in the staff site (admins): named blocks of terms or notes that the offer
editor inserts. Changes go through app.offers.terms, into the audit log."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.responses import Response

from app.admin.access import AdminDep
from app.admin.forms import Errors, refusal_errors, save_and_redirect, validate
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.views import in_session
from app.auth.staff import Role
from app.db import read_only
from app.fields import RequiredText100
from app.offers import terms
from app.offers.models import TermsTemplate
from app.openapi import PathId
from app.versions import VERSION_FIELD, Expected, version_of

router = APIRouter(prefix="/terms-templates", include_in_schema=False)


class TemplateForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: RequiredText100
    kind: Annotated[str, Field(pattern="^(terms|notes)$")]
    body: Annotated[str, Field(min_length=1, max_length=20_000)]


def _all(session: Session) -> list[TermsTemplate]:
    with read_only(session):
        return list(terms.list_templates(session))


@router.get("", name="terms_pages:list")
async def list_page(request: Request, staff: AdminDep) -> Response:
    context = {"title": "Terms templates", "templates": await in_session(_all)}
    return await render_staff_page(request, "admin/terms/list.html", context)


async def _form(
    request: Request,
    values: dict[str, str],
    template_id: int | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "title": "Terms template" if template_id else "New terms template",
        "template_id": template_id,
        "form": values,
        "errors": errors or {},
    }
    return await render_staff_page(request, "admin/terms/form.html", context, status)


@router.get("/new", name="terms_pages:new")
async def new_page(request: Request, staff: AdminDep) -> Response:
    return await _form(request, {"kind": "terms"})


@router.get("/{template_id}", name="terms_pages:edit")
async def edit_page(request: Request, template_id: PathId, staff: AdminDep) -> Response:
    template = await in_session(lambda s: terms.get_template(s, template_id))
    values = {"name": template.name, "kind": template.kind, "body": template.body}
    values[VERSION_FIELD] = version_of(template.updated_at)
    return await _form(request, values, template_id)


@router.post("/new", name="terms_pages:create")
async def create(request: Request, staff: AdminDep) -> Response:
    return await _save(request, staff.actor, None)


@router.post("/{template_id}", name="terms_pages:save")
async def save(request: Request, template_id: PathId, staff: AdminDep) -> Response:
    await in_session(lambda s: terms.get_template(s, template_id))  # 404 for an unknown id
    return await _save(request, staff.actor, template_id)


async def _save(request: Request, actor: str, template_id: int | None) -> Response:
    raw = await request.form()
    values = {name: str(raw.get(name, "")) for name in ("name", "kind", "body", VERSION_FIELD)}
    expected = Expected.from_form(values[VERSION_FIELD])
    outcome = await save_and_redirect(
        request,
        validate(TemplateForm, values),
        lambda s, data: terms.save_template(
            s, template_id, **data.model_dump(), actor=actor, expected=expected
        ),
        success=lambda template: f"Template “{template.name}” saved.",
        to=lambda _: request.url_for("terms_pages:list"),
        errors_of=refusal_errors,
    )
    if isinstance(outcome, Response):
        return outcome
    return await _form(request, values, template_id, outcome, 422)


@router.post("/{template_id}/delete", name="terms_pages:delete")
async def delete(request: Request, template_id: PathId, staff: AdminDep) -> Response:
    template = await in_session(lambda s: terms.get_template(s, template_id))
    if (await request.form()).get("confirmed") != "yes":  # a page of its own asks first
        context = {"title": f"Delete the template “{template.name}”?", "template": template}
        return await render_staff_page(request, "admin/terms/confirm_delete.html", context)
    await in_session(lambda s: terms.delete_template(s, template_id, actor=staff.actor))
    Flash.success(request, "Template deleted; offers that used it keep their text.")
    return RedirectResponse(request.url_for("terms_pages:list"), 303)


TERMS_PAGES = StaffPages(
    router=router,
    menu=[MenuLink("Terms templates", "terms_pages:list", Role.ADMIN, icon="fa-solid fa-scroll")],
)
