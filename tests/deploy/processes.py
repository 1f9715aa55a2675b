"""Real processes for the deployment tests: servers, proxies and the Debian tools they need."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

START_SECONDS = 90  # a server's start (PDF workers, templates) on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """Skip with the reason, except in CI, where a missing tool or service fails the run."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required)", pytrace=False)
    pytest.skip(reason)


def require_tool(command: str, debian_package: str) -> str:
    """The path of ``command``, installing its Debian package when we are root with apt-get."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", debian_package],
            env=env,
            check=False,
            capture_output=True,
        )
        found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found is None:
        unavailable(f"{command} is missing: sudo apt-get install {debian_package}")
    assert found is not None
    return found


def clean_environment(**settings: str) -> dict[str, str]:
    """This environment without the test run's OFFERTRACK_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFERTRACK_")}
    return {**env, **settings}


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, *, tls: bool = False) -> None:
    import ssl

    context = ssl._create_unverified_context() if tls else None  # Caddy's internal CA
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_SECONDS} s:\n{log.read_text()}")


@contextmanager
def running(
    command: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    ready_url: str,
    tls: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running (in a process group of its own) until the block ends."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(ready_url, process, log, tls=tls)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the group: uvicorn's worker processes too
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
