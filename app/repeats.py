"""One rule for a form sent twice: a double tap on a phone, or a form sent again after a slow
answer on a bad network. The same sender sending the same fields again within the window is a
repeat: it gets the answer the first one got, and nothing is saved, recorded or mailed again.
Staff stage updates and offer mails, customers' questions and their accept/decline all use it."""

from collections.abc import Mapping
from datetime import datetime, timedelta

# Long enough for a resubmit after a slow answer on a bad network; short enough that posting
# the same news again on purpose (a minute later) still goes through.
REPEAT_WINDOW = timedelta(seconds=60)


def is_repeat(
    done_at: datetime | None,
    now: datetime,
    done: object,
    sent: Mapping[str, object],
) -> bool:
    """Whether ``sent`` repeats the row ``done`` (saved at ``done_at``): within the window, and
    every field sent (the sender among them) the same as the row's. Call it with the row
    locked, so two copies sent at once see each other."""
    if done_at is None or done_at < now - REPEAT_WINDOW:
        return False
    return all(getattr(done, field, _MISSING) == value for field, value in sent.items())


_MISSING = object()
