"""Issue 14.8: production refuses a short secret key and plain http unless a TLS proxy is
declared in front, and then sends Secure cookies and HSTS."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import ConfigError, Settings, configuration_problems
from app.main import create_app

LONG_KEY = "k" * 48


def _production(tmp_path: Path, **values: object) -> Settings:
    defaults: dict[str, object] = {
        "env": "production",
        "secret_key": LONG_KEY,
        "public_base_url": "https://track.example.com",
        "var_dir": tmp_path,
    }
    return Settings(**{**defaults, **values})  # type: ignore[arg-type]


def test_a_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        create_app(_production(tmp_path, secret_key="x"))
    with pytest.raises(ConfigError, match="31 bytes"):
        create_app(_production(tmp_path, secret_key="y" * 31))


def test_an_http_public_url_is_refused_without_a_tls_proxy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OFFERTRACK_BEHIND_TLS_PROXY"):
        create_app(_production(tmp_path, public_base_url="http://track.example.com"))


def test_every_problem_is_named_at_once_for_check_config(tmp_path: Path) -> None:
    settings = _production(tmp_path, secret_key="short", public_base_url="http://t.example")

    problems = configuration_problems(settings)

    assert len(problems) == 2
    assert "OFFERTRACK_SECRET_KEY" in problems[0] and "OFFERTRACK_PUBLIC_BASE_URL" in problems[1]
    assert configuration_problems(_production(tmp_path)) == []
    assert configuration_problems(Settings(env="development", secret_key="x")) == []


def test_behind_a_tls_proxy_cookies_are_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    settings = _production(
        tmp_path, public_base_url="http://track.example.com", behind_tls_proxy=True
    )
    client = TestClient(create_app(settings), base_url="http://track.example.com")

    public = client.get("/robots.txt")
    staff = client.get("/admin/login")

    assert public.headers["strict-transport-security"].startswith("max-age=")
    assert "secure" in staff.headers["set-cookie"].lower()
    assert staff.headers["set-cookie"].startswith("ot_staff=")
