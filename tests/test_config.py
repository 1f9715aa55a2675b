import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, Settings
from app.main import create_app


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path: Path) -> None:
    for key in ("", "change-me"):
        settings = Settings(env="production", secret_key=key, var_dir=tmp_path)
        with pytest.raises(ConfigError, match="OFFERTRACK_SECRET_KEY"):
            create_app(settings)


def test_development_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(env="development", var_dir=tmp_path).resolved_secret_key()
    second = Settings(env="development", var_dir=tmp_path).resolved_secret_key()

    assert len(first) >= 40
    assert first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def _first_start_on_a_full_disk(var_dir: Path) -> subprocess.CompletedProcess[str]:
    # A file size limit of 0 makes every write fail, as a full disk does (EFBIG for ENOSPC).
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
        "from app.config import Settings\n"
        f"Settings(env='development', var_dir={str(var_dir)!r}).resolved_secret_key()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_full_disk_at_first_start_leaves_no_empty_key_behind(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"

    failed = _first_start_on_a_full_disk(var_dir)

    assert failed.returncode != 0
    assert "Could not write the development secret key" in failed.stderr
    assert "OFFERTRACK_SECRET_KEY" in failed.stderr
    assert not (var_dir / "secret_key").exists()
    assert not list(var_dir.glob("*.partial"))
    key = Settings(env="development", var_dir=var_dir).resolved_secret_key()
    assert len(key) >= 40 and (var_dir / "secret_key").read_text() == key


def test_an_empty_key_file_is_replaced_by_a_new_key(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("")

    key = Settings(env="development", var_dir=tmp_path).resolved_secret_key()

    assert len(key) >= 40
    assert (tmp_path / "secret_key").read_text() == key


def test_settings_are_read_from_offertrack_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFERTRACK_PUBLIC_BASE_URL", "https://t.example.org/")
    monkeypatch.setenv("OFFERTRACK_PAGE_SIZE", "Letter")
    monkeypatch.setenv("OFFERTRACK_DATABASE_URL", "postgresql://u@db:5432/ot")

    settings = Settings()

    assert settings.public_base_url == "https://t.example.org"
    assert settings.page_size == "Letter"
    assert settings.database_url == "postgresql+psycopg://u@db:5432/ot"


def test_bad_settings_fail_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFERTRACK_TIMEZONE", "Mars/Olympus")

    with pytest.raises(ValueError, match="unknown time zone"):
        Settings()


@pytest.mark.parametrize("enabled", [False, True])
def test_fastapi_opentelemetry_follows_its_setting(tmp_path: Path, enabled: bool) -> None:
    app = create_app(Settings(var_dir=tmp_path, opentelemetry=enabled))

    # FastAPI keeps the configuration it was given (there is no public accessor); with all
    # three off it never asks the global providers on a request.
    config = app._telemetry
    assert (config["tracing"], config["metrics"], config["logs"]) == (enabled,) * 3


@pytest.mark.parametrize("seconds", ["0", "-60"])
def test_webhooks_need_a_positive_time_before_an_endpoint_is_disabled(
    monkeypatch: pytest.MonkeyPatch, seconds: str
) -> None:
    monkeypatch.setenv("OFFERTRACK_WEBHOOK_DISABLE_AFTER_SECONDS", seconds)

    with pytest.raises(ValueError, match="webhook_disable_after_seconds"):
        Settings()


def test_the_first_start_makes_a_data_folder_only_its_owner_can_read(tmp_path: Path) -> None:
    """`make run` in a fresh checkout: var/ holds the database, the secret key, the mails as
    files; other local users could read them all (it was made with the umask's 0755)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFERTRACK_")}
    kept = tmp_path / "kept"
    kept.mkdir(mode=0o750)
    for var_dir in ("var", str(kept)):
        migrated = subprocess.run(
            [sys.executable, "-c", "from app.cli import cli; cli()", "migrate"],
            cwd=tmp_path,
            env={**env, "OFFERTRACK_VAR_DIR": var_dir},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr

    assert (tmp_path / "var" / "offertrack.db").exists()
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert stat.S_IMODE(kept.stat().st_mode) == 0o750  # the operator's own choice stands


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_whatever_writes_first_into_a_missing_data_folder_makes_it_its_owner_s_alone(
    tmp_path: Path,
) -> None:
    """On PostgreSQL with a secret key set, nothing at start creates the data folder: a scan
    spooled while the database was away, a mail written as a file or the campaign rules' copy
    came first and made it 0755 (mkdir's mode is the last folder's only), the scans' file
    0644: every local user could read the visitors' hashes and the customers' mails."""
    from app.analytics.rulesfile import RulesFile
    from app.notifications.delivery import ClaimedMail, FileTransport
    from app.restore import claim_database
    from app.tracking.spool import ScanSpool

    spool = ScanSpool(tmp_path / "spooled" / "var" / "spool")
    spool.append([{"offer_id": "O1", "visitor_hash": "ab12"}])
    spool.seal()
    mail = ClaimedMail(id=1, recipient="a@example.com", message=b"Hi", attempts=0, message_id="m")
    FileTransport(tmp_path / "mailed" / "var" / "mail").send(mail)
    RulesFile(tmp_path / "routed" / "var" / "campaign_rules.json").save({})
    served = Settings(database_url=f"sqlite:///{tmp_path / 'served' / 'var' / 'offertrack.db'}")
    claim = claim_database(served)
    assert claim is not None
    claim.release()

    for first in ("spooled", "mailed", "routed", "served"):
        made = tmp_path / first
        assert [_mode(made), _mode(made / "var")] == [0o700, 0o700], first
    [spooled] = (tmp_path / "spooled" / "var" / "spool").iterdir()
    assert _mode(tmp_path / "spooled" / "var" / "spool") == 0o700
    assert _mode(spooled) == 0o600


def test_a_running_process_keeps_the_development_key_it_read(tmp_path: Path) -> None:
    """Read once (each staff page derives its session key from it), not under a file lock on
    every request: a key file removed meanwhile does not sign everyone out of this process."""
    first = Settings(env="development", var_dir=tmp_path).resolved_secret_key()
    (tmp_path / "secret_key").unlink()

    again = Settings(env="development", var_dir=tmp_path).resolved_secret_key()

    assert again == first
    assert not (tmp_path / "secret_key").exists()
