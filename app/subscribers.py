"""The composition root of domain events: who reacts to what, written once.

This module sits above every domain package (it may import them all; none imports it). Every
entry point calls ``wire()`` before it serves or runs anything: ``create_app``, the CLI and the
workers. Wiring is code, identical for every app in a process, so a second call is a no-op.
"""

import threading

from app.events import EventBus, bus

_lock = threading.Lock()


def wire(target: EventBus = bus) -> EventBus:
    """Subscribe every package's handlers to ``target`` once."""
    with _lock:
        if not target.wired:
            _subscribe(target)
            target.wired = True
    return target


def _subscribe(target: EventBus) -> None:
    """Each package's reactions. Analytics (conversions, webhooks) and notifications add theirs."""
    from app.notifications import subscriptions
    from app.tracking.events import StageUpdated

    target.subscribe(StageUpdated, subscriptions.on_stage_updated)
