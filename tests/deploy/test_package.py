"""The package as a user installs it: the wheel, a fresh venv without dev extras, another
directory, and only OFFERTRACK_* settings (``pytest -m package`` runs it alone)."""

import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from app.config import ROOT_DIR
from tests.deploy.processes import clean_environment, free_port, running

pytestmark = pytest.mark.package

INSTALL_SECONDS = 600
SOURCE_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "var", "*.egg-info", "__pycache__", ".*_cache"
)


def build_wheel(target: Path) -> Path:
    """The wheel of a clean copy of the checkout: a build/ folder left in it by earlier builds
    could carry modules deleted since into the wheel."""
    source = target / "source"
    shutil.copytree(ROOT_DIR, source, ignore=SOURCE_IGNORED)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(target),
            str(source),
        ],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    (wheel,) = target.glob("offertrack-*.whl")
    return wheel


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A venv of its own (no system site packages) with the wheel and its declared dependencies."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    return path / "bin"


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def test_the_wheel_migrates_serves_and_renders_from_any_directory(tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", build_wheel(tmp_path / "dist"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = clean_environment(
        OFFERTRACK_VAR_DIR=str(tmp_path / "data"), OFFERTRACK_PUBLIC_BASE_URL=base_url
    )

    def offertrack(*args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [str(bin_dir / "offertrack"), *args],
            env=env,
            cwd=elsewhere,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # Templates, static files and migrations come from the installed package, not a checkout.
    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import app.config as c; print(c.TEMPLATES_DIR, c.STATIC_DIR, c.MIGRATIONS_DIR)",
        ],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(tmp_path / "venv") and Path(p).is_dir() for p in where), where

    assert "Database at head" in offertrack("migrate")
    assert "created" in offertrack(
        "create-user", "it@example.com", "--role", "admin", stdin="a long passphrase\n"
    )
    issued = re.search(r"issued\s+(\S+)", offertrack("demo"))
    assert issued, "the demo prints the link of its issued offer"
    assert (tmp_path / "data" / "offertrack.db").is_file()  # the data directory from the setting

    serve = [str(bin_dir / "offertrack"), "serve", "--port", str(port)]
    with running(
        serve, env=env, cwd=elsewhere, log=tmp_path / "serve.log", ready_url=base_url + "/healthz"
    ):
        status, page = get(issued.group(1))
        assert status == 200 and "OfferTrack Demo GmbH" in page and "/static/app.css" in page
        assert get(base_url + "/static/app.css")[0] == 200
        assert get(base_url + "/readyz")[0] == 200  # the schema is at the packaged migrations' head
        status, login = get(base_url + "/admin/login")
        assert status == 200 and "password" in login.lower()
