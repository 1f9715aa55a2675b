"""A quick start: what takes long to load stays out of the server's way until it answers.

Each check runs in a fresh interpreter, since this test process has imported everything.
"""

import os
import subprocess
import sys

from app.config import ROOT_DIR

# Each took a tenth of a second or more of every start before it was made lazy: WeasyPrint
# (seconds; only the renderer processes import it), icalendar and feedgen (the order feeds).
HEAVY_MODULES = ("weasyprint", "icalendar", "feedgen")

IMPORTED_AT_START = """
import sys
import app.cli
from app.main import create_app
create_app()
print(*sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:])))
"""

WARMED_UP_AFTER_START = """
import asyncio, sys, threading
import ua_parser
from app.main import create_app

async def start_and_stop():
    app = create_app()
    async with app.router.lifespan_context(app):
        [warm_up] = [t for t in threading.enumerate() if t.name == "warm-up"]
        warm_up.join(60)
        print("icalendar" in sys.modules, "parser" in vars(ua_parser))

asyncio.run(start_and_stop())
"""


def _run(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT_DIR,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_the_app_and_its_command_import_no_heavy_module() -> None:
    assert _run(IMPORTED_AT_START, *HEAVY_MODULES) == ""


def test_what_the_first_views_need_is_loaded_in_the_background_after_start() -> None:
    # The user-agent regexes (the first scan's) and the feed libraries, without a request.
    assert _run(WARMED_UP_AFTER_START) == "True True"
