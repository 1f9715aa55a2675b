"""Terms templates: named blocks of terms or notes that staff insert into an offer."""

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.errors import NotFound, Unprocessable
from app.offers.models import TermsTemplate
from app.versions import Expected, next_stamp, require_version

KINDS = ("terms", "notes")


def list_templates(session: Session) -> Sequence[TermsTemplate]:
    return session.exec(select(TermsTemplate).order_by(col(TermsTemplate.name))).all()


def get_template(session: Session, template_id: int, *, for_update: bool = False) -> TermsTemplate:
    """A template; ``for_update`` locks its row and reads it afresh for a save."""
    template = session.get(
        TermsTemplate, template_id, with_for_update=for_update, populate_existing=for_update
    )
    if template is None:
        raise NotFound(f"No terms template with id {template_id}.")
    return template


def save_template(
    session: Session,
    template_id: int | None,
    *,
    name: str,
    kind: str,
    body: str,
    actor: str,
    expected: Expected | None = None,
) -> TermsTemplate:
    """Create (``template_id`` None) or change a template, unless it changed since
    ``expected``; names are unique."""
    if template_id is None:
        template = TermsTemplate(name="", body="")
    else:
        template = get_template(session, template_id, for_update=True)
        require_version(
            session,
            expected,
            template.updated_at,
            noun="template",
            entity=("terms_template", template_id),
        )
    template.name, template.kind, template.body = name, kind, body
    template.updated_at = next_stamp(template.updated_at)
    session.add(template)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Unprocessable(f"A template named {name!r} exists already.", loc=("name",)) from exc
    _audit(session, template, actor, "save", f"Saved terms template {name}")
    session.commit()
    return template


def delete_template(session: Session, template_id: int, *, actor: str) -> None:
    """Remove a template; offers that used it keep their text."""
    template = get_template(session, template_id)
    _audit(session, template, actor, "delete", f"Deleted terms template {template.name}")
    session.delete(template)
    session.commit()


def _audit(
    session: Session, template: TermsTemplate, actor: str, action: str, summary: str
) -> None:
    assert template.id is not None
    audit.record(
        session,
        actor=actor,
        action=f"terms_template.{action}",
        entity_type="terms_template",
        entity_id=template.id,
        summary=summary,
    )
