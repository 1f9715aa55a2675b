"""Campaign routing rules survive a cold start while the database is away: the rules of every
placement are kept in var/campaign_rules.json, refreshed when they change."""

import http.client
import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.analytics.models import Campaign, SplitMode
from app.analytics.routing import ArmStats, CompiledCode, Rule, Target
from app.analytics.rulesfile import RulesFile
from app.analytics.schemas import Conditions
from tests.analytics.test_codes import IPHONE, _base, _code, _go
from tests.conftest import _free_port, serving
from tests.factories import make_campaign

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.fixture
def campaign(session: Session) -> Campaign:
    return make_campaign(session, name="Spring Fair 2026", utm_source="print")


def _saved_urls(path: Path, slug: str) -> list[str]:
    document = json.loads(path.read_text())
    (code,) = [code for code in document["codes"] if code["slug"] == slug]
    return [d["url"] for rule in code["rules"] for d in rule["destinations"]]


def test_the_rules_file_follows_every_change(
    api: TestClient,
    session: Session,
    campaign: Campaign,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The table is the app's; its file goes to this test's own directory.
    saved = tmp_path / "campaign_rules.json"
    table = api.app.state.routing_table  # type: ignore[attr-defined]
    monkeypatch.setattr(table, "_copy", RulesFile(saved))
    rules = [{"when": {"os": ["ios"]}, "destinations": [{"url": "https://x.example/first"}]}]
    placement = _code(session, campaign, rules)
    _go(api, placement.slug)  # loads the table
    assert _saved_urls(saved, placement.slug) == ["https://x.example/first"]

    changed = [{"destinations": [{"url": "https://x.example/second"}]}]
    response = api.patch(f"/api/v1/placements/{placement.id}", json={"rules": changed})
    assert response.status_code == 200, response.text
    _go(api, placement.slug)

    assert _saved_urls(saved, placement.slug) == ["https://x.example/second"]


def test_a_saved_code_reads_back_as_it_was(tmp_path: Path) -> None:
    code = CompiledCode(
        slug="fair-47",
        campaign_id=3,
        placement_id=9,
        utm={"utm_source": "print", "utm_medium": "qr", "utm_campaign": "fair"},
        rules=(
            Rule(
                Conditions.model_validate(
                    {"os": ["ios"], "languages": ["de"], "time_from": "22:00", "time_to": "06:00"}
                ),
                (Target("https://x.example/a", 5, "blue", 3), Target("https://x.example/b")),
            ),
            Rule(Conditions(weekdays=[6, 7]), (Target("https://x.example/weekend"),)),
        ),
        fallback=Target("https://x.example/f", 7, "red"),
        split_mode=SplitMode.THOMPSON,
        arms={5: ArmStats(3, 40), None: ArmStats(0, 12)},
    )
    RulesFile(tmp_path / "rules.json").save({code.slug: code})

    assert RulesFile(tmp_path / "rules.json").load() == {"fair-47": code}


def test_a_server_started_while_the_database_is_away_routes_with_the_saved_rules(
    tmp_path: Path,
) -> None:
    saved = CompiledCode(
        slug="fair-47",
        campaign_id=3,
        placement_id=9,
        utm={"utm_source": "print", "utm_medium": "qr", "utm_campaign": "fair"},
        rules=(Rule(Conditions(os=["ios"]), (Target("https://x.example/iphone"),)),),
        fallback=Target("https://x.example/elsewhere"),
    )
    var_dir = tmp_path / "var"
    RulesFile(var_dir / "campaign_rules.json").save({saved.slug: saved})
    port = _free_port()
    env = {**os.environ, "OFFERTRACK_DATABASE_URL": UNREACHABLE, "OFFERTRACK_VAR_DIR": str(var_dir)}
    log_path = tmp_path / "server.log"
    with serving(env, port, log_path) as base_url:
        iphone = _get(base_url, "/c/fair-47")
        unknown = _get(base_url, "/c/nosuchcode")

    assert iphone[0] == 302, log_path.read_text()
    assert _base(iphone[1]) == "https://x.example/iphone"
    assert "utm_campaign=fair" in iphone[1]
    assert unknown[0] == 404
    assert "rules saved at" in log_path.read_text()


def _get(base_url: str, path: str) -> tuple[int, str]:
    """The status and Location of a GET, not followed."""
    connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=30)
    try:
        connection.request("GET", path, headers={"User-Agent": IPHONE})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("location") or ""
    finally:
        connection.close()
