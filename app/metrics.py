"""Prometheus metrics, served at /metrics.

Every module that counts something imports its metric from here, so the names stay in one
place. With ``offertrack serve --workers N`` (N > 1) the CLI points PROMETHEUS_MULTIPROC_DIR at
an empty directory (``multiprocess_dir``) before the workers start; each worker then writes its
values to files there and /metrics adds them up, whichever worker answers the scrape.
"""

import hashlib
import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client writes the workers' values through memory maps of their files, and a write
# to a mapped file that finds its disk full kills the process with SIGBUS. Under var_dir, a full
# data disk (the scan spool fills it while the database is away) killed every worker, and each
# one started in its place: so they go to shared memory, away from the data.
SHARED_MEMORY = Path("/dev/shm")

HTTP_REQUESTS = Counter(
    "offertrack_http_requests",
    "HTTP requests answered, by route template (not the raw path), method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "offertrack_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by route template.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

SCANS_RECORDED = Counter(
    "offertrack_scans_recorded", "Scan events committed to the database (scan log writer)."
)
SCANS_SPOOLED = Counter(
    "offertrack_scans_spooled",
    "Scan events written to the local spool file because the database could not take them.",
)
SCAN_COMMIT_SECONDS = Histogram(
    "offertrack_scan_commit_duration_seconds",
    "Time the scan writer took to commit a batch of scan events.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SCAN_SPOOL_BYTES = Gauge(
    "offertrack_scan_spool_bytes",
    "Size of the spool files waiting to be replayed into the database (the spool's depth).",
    multiprocess_mode="max",
)
SCANS_HELD = Gauge(
    "offertrack_scans_held",
    "Campaign scan events held in memory because neither database nor spool could take them.",
    multiprocess_mode="livesum",
)
SCANS_REFUSED = Counter(
    "offertrack_scans_refused",
    "Scan events the database refused (a bug, or a spooled line it cannot read): a view's are"
    " answered 503, a spooled one's are set aside in the spool folder's refused-*.jsonl.",
)
SCANS_DROPPED = Counter(
    "offertrack_scans_dropped",
    "Campaign scan events dropped because the memory buffer for them was full.",
)

# Counted down, not up: every process that loads this module (a PDF renderer too) adds its
# own 0 to a multiprocess gauge, which would pin a minimum of "listening" workers at 0.
INVALIDATION_LISTENERS_DOWN = Gauge(
    "offertrack_invalidation_listeners_down",
    "Server processes not hearing the others' cache invalidations (Redis or PostgreSQL away "
    "or silent: reconnecting).",
    multiprocess_mode="livesum",
)

PDF_RENDERS = Counter(
    "offertrack_pdf_renders",
    "Quotation PDF renders by outcome: ok, timeout, busy (no free renderer), failed.",
    ["outcome"],
)
PDF_RENDER_SECONDS = Histogram(
    "offertrack_pdf_render_duration_seconds",
    "Wall time of successful PDF renders, including the wait for a renderer.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0),
)

# Fed by the analytics webhook sender: set the depth after each pass over the outbox, count
# each failed delivery attempt. "mostrecent": with several workers the newest value wins.
WEBHOOK_OUTBOX_DEPTH = Gauge(
    "offertrack_webhook_outbox_depth",
    "Webhook deliveries waiting in the outbox (as seen by the last sender pass).",
    multiprocess_mode="mostrecent",
)
WEBHOOK_FAILURES = Counter(
    "offertrack_webhook_delivery_failures",
    "Webhook delivery attempts that failed (network error or non-2xx answer).",
)

# Fed by the mail worker (app.notifications.delivery) after each pass over its outbox.
MAIL_OUTBOX_DEPTH = Gauge(
    "offertrack_mail_outbox_depth",
    "Mails waiting in the outbox to be sent (as seen by the last mail worker pass).",
    multiprocess_mode="mostrecent",
)
MAIL_FAILURES = Counter(
    "offertrack_mail_delivery_failures",
    "Mail delivery attempts that failed (server away, deferred or refused).",
)
MAILS_SENT = Counter(
    "offertrack_mails_sent", "Mails handed to the SMTP server (or written to disk)."
)


def multiprocess_dir(var_dir: Path) -> Path:
    """Where the workers of the server on ``var_dir`` keep their metric files: in shared memory
    (one directory per user and data directory), else under ``var_dir``."""
    if not (SHARED_MEMORY.is_dir() and os.access(SHARED_MEMORY, os.W_OK)):
        return var_dir / "prometheus"
    installation = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:16]
    return SHARED_MEMORY / f"offertrack-metrics-{os.getuid()}-{installation}"


def prepare_multiprocess_dir(var_dir: Path) -> Path:
    """An empty directory for the workers' metric files; call before the workers start."""
    path = multiprocess_dir(var_dir)
    shutil.rmtree(path, ignore_errors=True)  # values of a previous run must not add up
    path.mkdir(mode=0o700, parents=True)
    return path


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, summed over all workers when there are several."""
    if is_multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_stopped() -> None:
    """Drop this worker's live gauges (its counters still count)."""
    if is_multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
