"""Customer use cases. Each public function that changes state commits its own transaction."""

from collections.abc import Sequence

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from app import audit
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.errors import NotFound
from app.versions import Expected, next_stamp, require_version


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"No customer with id {customer_id}.")


def get_customer(session: Session, customer_id: int, *, for_update: bool = False) -> Customer:
    """A customer record; ``for_update`` locks its row and reads it afresh for a save."""
    customer = session.get(
        Customer, customer_id, with_for_update=for_update, populate_existing=for_update
    )
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


def create_customer(session: Session, data: CustomerCreate, *, actor: str) -> Customer:
    """Add a customer record."""
    customer = Customer(**data.model_dump())
    session.add(customer)
    session.flush()
    _audit(session, customer, actor, "create", _summary("Created", customer))
    session.commit()
    return customer


def update_customer(
    session: Session,
    customer_id: int,
    data: CustomerUpdate,
    *,
    actor: str,
    expected: Expected | None = None,
) -> Customer:
    """Change a customer record, unless it changed since ``expected``; offers keep the
    snapshot they were written with."""
    customer = _current(session, customer_id, expected)
    changed = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changed.items():
        setattr(customer, field, value)
    customer.updated_at = next_stamp(customer.updated_at)
    session.add(customer)
    # The history names the fields, not their values: the log is never edited, and deleting
    # the record must delete its contact's personal data (the record alone holds it).
    _audit(session, customer, actor, "update", "Changed " + ", ".join(changed))
    session.commit()
    return customer


def _current(session: Session, customer_id: int, expected: Expected | None) -> Customer:
    """The record, locked for the change, if it is still the version ``expected``."""
    customer = get_customer(session, customer_id, for_update=True)
    entity = ("customer", customer_id)
    require_version(session, expected, customer.updated_at, noun="customer record", entity=entity)
    return customer


def delete_customer(
    session: Session, customer_id: int, *, actor: str, expected: Expected | None = None
) -> None:
    """Delete a customer record (the deletion path for its personal data), unless it changed
    since ``expected``; offers keep the snapshot they were written with and lose only their
    link to the record."""
    customer = _current(session, customer_id, expected)
    _audit(session, customer, actor, "delete", _summary("Deleted", customer))
    # Entries name the record by id (a sole trader's company is a person's name), but one
    # written before that, or by a node not yet upgraded, may still name it: not after this.
    audit.rewrite_summaries(
        session,
        entity_type="customer",
        entity_id=customer_id,
        summaries={"customer.create": _summary("Created", customer)},
    )
    session.delete(customer)
    session.commit()


def search_customers(
    session: Session, term: str = "", *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[Customer], int]:
    """Customers whose company, contact, e-mail or VAT ID contains ``term``, by company."""
    query = select(Customer)
    term = term.strip().lower()
    if term:
        pattern = f"%{term}%"
        query = query.where(
            or_(
                *(
                    func.lower(column).like(pattern)
                    for column in (
                        Customer.company,
                        Customer.contact_name,
                        Customer.email,
                        Customer.vat_id,
                    )
                )
            )
        )
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = session.exec(
        query.order_by(func.lower(Customer.company), col(Customer.id)).limit(limit).offset(offset)
    ).all()
    return page, total


def _summary(verb: str, customer: Customer) -> str:
    """How the history names a record: by id, never by its company, which outlives the
    record's deletion there."""
    return f"{verb} customer record {customer.id}"


def _audit(
    session: Session,
    customer: Customer,
    actor: str,
    action: str,
    summary: str,
) -> None:
    assert customer.id is not None
    audit.record(
        session,
        actor=actor,
        action=f"customer.{action}",
        entity_type="customer",
        entity_id=customer.id,
        summary=summary,
    )
