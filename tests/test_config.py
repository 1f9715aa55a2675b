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
