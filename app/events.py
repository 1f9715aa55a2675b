"""Domain events: how a lower package lets a higher one react without importing it.

Offers and tracking publish what happened (an offer accepted, an order activated, a stage
updated); analytics, webhooks and mail subscribe. A handler runs at once, inside the
publisher's transaction, and may only add rows to the session it is given (a conversion, an
outbox row, a mail waiting to be sent): the publisher's commit writes the change and every
reaction together, and a rollback undoes them together. Nothing that talks to the network
runs in a handler; the outbox workers do that after commit.

Who listens to what is written once, in the composition root (``app.subscribers``), which
every entry point (the web app, the CLI, the workers) wires before the first request. A
publish before that raises: an event that nobody hears is a bug to see at once, not a
silently lost conversion or mail.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every domain event; subclasses are frozen dataclasses named in the past tense."""


E = TypeVar("E", bound=Event)
Handler = Callable[[Session, Any], None]


class EventsNotWired(RuntimeError):
    """An event was published before the composition root connected the subscribers."""


class EventBus:
    """Handlers by event type, called in the order they were subscribed."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = {}
        self.wired = False

    def subscribe(self, event_type: type[E], handler: Callable[[Session, E], None]) -> None:
        self._handlers.setdefault(event_type, []).append(handler)

    def handlers(self, event_type: type[Event]) -> list[Handler]:
        return [
            handler
            for cls in event_type.__mro__
            if isinstance(cls, type) and issubclass(cls, Event)
            for handler in self._handlers.get(cls, ())
        ]

    def publish(self, session: Session, event: Event) -> None:
        if not self.wired:
            raise EventsNotWired(f"{type(event).__name__} published before subscribers were wired")
        for handler in self.handlers(type(event)):
            handler(session, event)


# One bus per process. Its subscriptions are code, the same for every app in the process, so
# wiring it twice is a no-op (see app.subscribers.wire); no setting ever changes it.
bus = EventBus()


def publish(session: Session, event: Event) -> None:
    """Let every subscriber react to ``event`` inside the caller's transaction."""
    bus.publish(session, event)
