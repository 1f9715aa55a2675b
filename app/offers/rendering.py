"""The renderer processes' side of quotation PDFs: WeasyPrint, and what it may fetch.

Only the renderer processes import this module (the forkserver preloads it): WeasyPrint takes
seconds to import, which the server process, which never renders, no longer spends at start.
"""

import mimetypes
import multiprocessing
import os
import re
import signal
from multiprocessing.connection import wait
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import unquote, urlsplit

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from app.config import STATIC_DIR


class StaticOnlyFetcher(URLFetcher):  # type: ignore[misc]
    """Serves our static files and data: URIs; refuses the network and every other file.

    WeasyPrint 70 wants a ``URLFetcher``: it reads ``_fail_on_errors`` from the fetcher when
    a fetch fails, so a plain function would turn a refused URL into a failed render.
    """

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url.startswith("data:"):
            return super().fetch(url, headers)
        path = _static_path(url)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": media_type})


def _static_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ValueError(f"refused to fetch {url!r}: only our own static files are served")
    # resolve() before the check: neither "../" nor a symlink may lead out of static/.
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise ValueError(f"refused to fetch {url!r}: not a file in static/")
    return path


# PDF/A-3b for archiving (sRGB output intent, XMP metadata, embedded fonts), tagged so that
# screen readers and reflowing readers get the structure (WeasyPrint's PDF/UA tagging).
PDF_OPTIONS: dict[str, Any] = {"pdf_variant": "pdf/a-3b", "pdf_tags": True}
_HTML_LANG = re.compile(r'<html lang="([A-Za-z-]{2,12})"')
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC_NS = "http://purl.org/dc/elements/1.1/"


def render_pdf(html: str) -> bytes:
    """HTML to PDF bytes. Runs in a renderer process."""
    document = HTML(
        string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticOnlyFetcher()
    ).render(**PDF_OPTIONS)
    document.metadata.xmp_metadata.extend(_xmp_language(html))
    pdf: bytes = document.write_pdf(**PDF_OPTIONS)
    return pdf


def _xmp_language(html: str) -> list[bytes]:
    # WeasyPrint writes /Lang in the catalogue but no dc:language into the XMP; the template
    # states the language on its first line, so the renderer needs nothing else passed in.
    found = _HTML_LANG.search(html, 0, 200)
    if found is None:
        return []
    li = f"<rdf:li>{found.group(1)}</rdf:li>"
    return [
        f'<rdf:RDF xmlns:rdf="{RDF_NS}"><rdf:Description rdf:about="" xmlns:dc="{DC_NS}">'
        f"<dc:language><rdf:Bag>{li}</rdf:Bag></dc:language></rdf:Description></rdf:RDF>".encode()
    ]


def init_worker() -> None:
    """A renderer process's start: it exits with the server, and has its fonts loaded."""
    # Ctrl+C reaches the terminal's whole process group: a renderer took it as a
    # KeyboardInterrupt and printed a traceback under `make run`'s last line. The server
    # shuts its renderers down itself; a stuck one is killed, never interrupted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    render_pdf("<p>warm-up</p>")  # fonts load now rather than during a customer's render


def _exit_with_parent() -> None:
    # A worker waits on its task queue forever if the server dies without shutting the pool
    # down (SIGKILL, OOM killer), and keeps the forkserver alive with it: ~100 MB each.
    parent = multiprocessing.parent_process()
    if parent is not None:
        Thread(target=_exit_when_ready, args=(parent.sentinel,), daemon=True).start()


def _exit_when_ready(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)
