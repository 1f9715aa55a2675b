"""``offertrack check-config``: exit status 1 with one line per problem, 0 when all is well."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.checks import _smtp_url
from app.cli import cli, main

runner = CliRunner()


def check_config(**env: str) -> Any:
    return runner.invoke(cli, ["check-config"], env=env)


def test_a_sound_configuration_passes(engine: Engine, tmp_path: Path, redis_url: str) -> None:
    result = check_config(OFFERTRACK_VAR_DIR=str(tmp_path), OFFERTRACK_REDIS_URL=redis_url)
    assert result.exit_code == 0, result.output
    assert "Configuration looks right" in result.output and "Redis" in result.output


def test_each_problem_is_named_by_its_setting(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = check_config(
        OFFERTRACK_ENV="production",
        OFFERTRACK_SECRET_KEY="",
        OFFERTRACK_VAR_DIR=str(tmp_path / "a-file" / "var"),
        OFFERTRACK_DATABASE_URL="postgresql://postgres@127.0.0.1:1/offertrack",
        OFFERTRACK_REDIS_URL="redis://127.0.0.1:1/0",
        OFFERTRACK_TRUSTED_PROXIES='["10.0.0.0/8", "proxy.internal"]',
    )
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("PROBLEM")]
    for setting in ("SECRET_KEY", "VAR_DIR", "DATABASE_URL", "REDIS_URL", "TRUSTED_PROXIES"):
        assert any(f"OFFERTRACK_{setting}" in line for line in problems), (setting, problems)
    assert "looks right" not in result.output


def test_a_value_that_does_not_parse_is_named_with_every_other_problem(tmp_path: Path) -> None:
    """One run names everything, as the README promises: a typo in one setting used to hide
    the unreachable Redis and the short secret key until it was fixed and the check run again."""
    result = check_config(
        OFFERTRACK_ENV="production",
        OFFERTRACK_SECRET_KEY="short",
        OFFERTRACK_PUBLIC_BASE_URL="https://track.example.com",
        OFFERTRACK_PAGE_SIZE="A5",
        OFFERTRACK_DATABASE_URL="mysql://db/offertrack",
        OFFERTRACK_REDIS_URL="redis://127.0.0.1:1/0",
        OFFERTRACK_VAR_DIR=str(tmp_path),
    )
    problems = [line for line in result.output.splitlines() if line.startswith("PROBLEM")]

    assert result.exit_code == 1
    for setting in ("PAGE_SIZE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        assert sum(f"OFFERTRACK_{setting}" in line for line in problems) == 1, (setting, problems)
    assert list(tmp_path.iterdir()) == []  # the default database was not probed (made) instead


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["migrate"], ["demo"]])
def test_every_command_names_a_setting_that_does_not_parse(
    tmp_path: Path, command: list[str]
) -> None:
    """A typo in the environment file: each command says which setting and what it takes, in
    two lines, where it printed some fifty lines of traceback."""
    env = {**os.environ, "OFFERTRACK_PAGE_SIZE": "A5", "OFFERTRACK_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "PROBLEM OFFERTRACK_PAGE_SIZE: Input should be 'A4' or 'Letter'",
        "`offertrack check-config` lists every problem at once.",
    ]
    assert done.stdout == ""


@pytest.mark.parametrize("setting", ["TRUSTED_PROXIES", "WEBHOOK_ALLOWED_NETWORKS"])
def test_a_list_setting_written_without_json_is_named(
    engine: Engine, tmp_path: Path, setting: str
) -> None:
    """`OFFERTRACK_TRUSTED_PROXIES=127.0.0.1`, the README's list without its brackets: check-config
    (and so the unit's start) printed some 120 lines of traceback that named no variable."""
    env = {f"OFFERTRACK_{setting}": "10.0.0.0/8", "OFFERTRACK_VAR_DIR": str(tmp_path)}
    result = check_config(**env)

    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("PROBLEM")]
    said = """a JSON list such as ["10.0.0.0/8"], not '10.0.0.0/8'"""
    assert problems == [f"PROBLEM OFFERTRACK_{setting}: Value error, {said}"]


def test_a_list_setting_written_as_json_passes(engine: Engine, tmp_path: Path) -> None:
    result = check_config(
        OFFERTRACK_TRUSTED_PROXIES='["127.0.0.1", "10.0.0.0/8"]',
        OFFERTRACK_WEBHOOK_ALLOWED_NETWORKS="",
        OFFERTRACK_VAR_DIR=str(tmp_path),
    )

    assert result.exit_code == 0, result.output


def test_a_working_directory_the_user_may_not_read_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runuser -u offertrack -- offertrack check-config` from root's home: looking for a .env
    there is refused, which printed a traceback ending in PermissionError."""
    if os.geteuid() != 0:
        pytest.skip("acting as another user takes root")
    closed = tmp_path / "root-home"
    closed.mkdir(mode=0o700)
    monkeypatch.chdir(closed)
    monkeypatch.setattr(sys, "argv", ["offertrack", "check-config"])
    os.seteuid(65534)  # nobody, as runuser makes the service user
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        os.seteuid(0)

    assert exited.value.code == 1
    said = capsys.readouterr().err
    assert said.startswith(f"PROBLEM cannot look for .env in {closed} (Permission denied)")


def test_serve_refuses_production_over_http_in_a_few_lines(tmp_path: Path) -> None:
    """`offertrack serve` refuses what the production rules refuse, saying so once: the app of
    each server process raised it, some 120 lines of traceback before the server gave up."""
    env = {
        **os.environ,
        "OFFERTRACK_ENV": "production",
        "OFFERTRACK_SECRET_KEY": "k" * 48,
        "OFFERTRACK_PUBLIC_BASE_URL": "http://track.example.com",
        "OFFERTRACK_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "OFFERTRACK_BEHIND_TLS_PROXY=true" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) < 12


def test_the_production_rules_are_checked_too(engine: Engine, tmp_path: Path) -> None:
    result = check_config(
        OFFERTRACK_ENV="production",
        OFFERTRACK_SECRET_KEY="short",
        OFFERTRACK_PUBLIC_BASE_URL="http://track.example.com",
        OFFERTRACK_VAR_DIR=str(tmp_path),
    )
    assert result.exit_code == 1
    assert "OFFERTRACK_SECRET_KEY is 5 bytes long" in result.output
    assert "OFFERTRACK_PUBLIC_BASE_URL" in result.output


@pytest.mark.parametrize(
    "url",
    [
        "https://track.example.com   # printed in every QR code: final!",
        "track.example.com",
        "https://track.example.com/?src=qr",
        "https://track.example.com/?",  # an empty query: printed into every code all the same
        "https://track.example.com#",
    ],
)
def test_a_public_base_url_with_more_than_an_address_is_refused(tmp_path: Path, url: str) -> None:
    result = check_config(OFFERTRACK_PUBLIC_BASE_URL=url, OFFERTRACK_VAR_DIR=str(tmp_path))

    assert result.exit_code == 1
    assert "PROBLEM OFFERTRACK_PUBLIC_BASE_URL: Value error, an address like" in result.output


def test_a_database_behind_the_code_says_to_migrate(tmp_path: Path) -> None:
    result = check_config(
        OFFERTRACK_VAR_DIR=str(tmp_path), OFFERTRACK_DATABASE_URL=f"sqlite:///{tmp_path / 'new.db'}"
    )
    assert result.exit_code == 1
    assert "offertrack migrate" in result.output


def test_a_value_that_does_not_parse_is_named_not_a_traceback() -> None:
    result = check_config(OFFERTRACK_TIMEZONE="Mars/Olympus_Mons", OFFERTRACK_PDF_WORKERS="lots")
    assert result.exit_code == 1
    assert "OFFERTRACK_TIMEZONE: " in result.output and "OFFERTRACK_PDF_WORKERS: " in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "wrong"),
    [
        ("smtp://mail.example.com:587", False),
        ("smtps://user:pw@mail.example.com:465", False),
        ("", False),
        ("smtp://mail.example.com", True),
        ("mail.example.com:25", True),
        ("smtp://:25", True),
        ("smtp://mail.example.com:99999", True),
    ],
)
def test_the_smtp_url_is_checked_when_set(url: str, wrong: bool) -> None:
    assert bool(_smtp_url(SimpleNamespace(smtp_url=url))) is wrong  # type: ignore[arg-type]


def test_the_environment_is_left_as_it_was() -> None:
    before = dict(os.environ)
    check_config(OFFERTRACK_ENV="production")
    assert dict(os.environ) == before


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("COMPANY_LOGO", "no-such-logo.png", "no file no-such-logo.png in "),
        ("COMPANY_LOGO", "../README.md", "no file ../README.md in "),
        ("COMPANY_FAVICON", "no-such-icon.ico", "no file no-such-icon.ico in "),
        ("MAIL_FROM", "not an address", "Value error, "),
        ("MAIL_FROM", "Acme Sales <sales@>", "Value error, "),
        ("DEFAULT_CURRENCY", "XYZ", "Value error, "),
    ],
)
def test_a_setting_that_cannot_work_is_one_problem(
    engine: Engine, tmp_path: Path, setting: str, value: str, said: str
) -> None:
    """A logo or icon that is not there (a wheel update drops what was copied into static/),
    a From that is no address, a currency nobody can write: check-config passed them all."""
    result = check_config(**{f"OFFERTRACK_{setting}": value, "OFFERTRACK_VAR_DIR": str(tmp_path)})

    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"PROBLEM OFFERTRACK_{setting}: {said}"), problems


def test_a_logo_icon_sender_and_currency_that_work_pass(engine: Engine, tmp_path: Path) -> None:
    result = check_config(
        OFFERTRACK_COMPANY_LOGO="favicon.svg",
        OFFERTRACK_COMPANY_FAVICON="favicon.svg",
        OFFERTRACK_MAIL_FROM="Acme Sales <sales@acme.example>",
        OFFERTRACK_DEFAULT_CURRENCY="jpy",
        OFFERTRACK_VAR_DIR=str(tmp_path),
    )

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("setting", "value"), [("MAIL_FROM", "not an address"), ("DEFAULT_CURRENCY", "XYZ")]
)
def test_serve_refuses_a_sender_or_currency_that_cannot_work(
    tmp_path: Path, setting: str, value: str
) -> None:
    """Every mail would fail, every amount be written wrong: refused as a value that does not
    parse is. (A missing logo or icon is left out of the pages, as documented: serve starts.)"""
    env = {**os.environ, f"OFFERTRACK_{setting}": value, "OFFERTRACK_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith(f"PROBLEM OFFERTRACK_{setting}: ")
