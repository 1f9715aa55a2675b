"""The offertrack command as an operator uses it."""

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from app.auth.models import ApiKey
from app.auth.service import authenticate, hash_token
from app.auth.staff import StaffUser
from app.cli import cli
from app.offers.models import Offer

runner = CliRunner()


@pytest.mark.concurrency
def test_create_api_key_prints_a_token_once_and_stores_only_its_hash(committed: Engine) -> None:
    result = runner.invoke(cli, ["create-api-key", "erp"])

    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    with Session(committed) as session:
        key = session.exec(select(ApiKey)).one()
        assert key.name == "erp"
        assert key.token_hash == hash_token(token)
        assert token not in (key.token_hash, key.prefix)
        assert authenticate(session, token).key_id == key.id


def test_create_api_key_needs_a_name() -> None:
    result = runner.invoke(cli, ["create-api-key", "  "])

    assert result.exit_code != 0
    assert "name" in result.output


@pytest.mark.concurrency
def test_demo_data_is_idempotent_and_covers_several_states(committed: Engine) -> None:
    first = runner.invoke(cli, ["demo"])
    second = runner.invoke(cli, ["demo"])

    assert first.exit_code == 0, first.output
    assert "offers created" in first.output
    assert "already loaded" in second.output
    with Session(committed) as session:
        statuses = set(session.exec(select(Offer.status)).all())
        count = session.exec(select(func.count()).select_from(Offer)).one()
    assert {"draft", "issued", "superseded", "ordered", "accepted"} <= statuses
    assert "/01" in first.output  # the links to open
    assert count == 8


@pytest.mark.concurrency
def test_the_demo_gives_the_campaign_dashboard_a_month_to_show(committed: Engine) -> None:
    from app.analytics.models import Campaign, CampaignDayTotal, Conversion
    from app.tracking.models import ScanEvent

    runner.invoke(cli, ["demo"])
    with Session(committed) as session:
        scans = session.exec(select(func.count()).select_from(ScanEvent)).one()
        days = set(session.exec(select(col(CampaignDayTotal.day))).all())
        campaign = session.exec(select(Campaign)).one()
        conversions = session.exec(select(Conversion)).all()
    runner.invoke(cli, ["demo"])
    with Session(committed) as session:
        assert session.exec(select(func.count()).select_from(ScanEvent)).one() == scans

    assert len(days) >= 25  # rolled up at once, over the last month
    # The accepted and the ordered offer were scanned first: their conversions are the campaign's.
    assert {(c.type, c.last_campaign_id) for c in conversions} == {
        ("offer_accepted", campaign.id),
        ("order", campaign.id),
    }


def test_migrate_reports_the_database(engine: Engine) -> None:
    result = runner.invoke(cli, ["migrate"])

    assert result.exit_code == 0, result.output
    assert "Database at head" in result.output


@pytest.mark.concurrency
def test_a_revoked_key_is_refused_at_once(committed: Engine) -> None:
    from app.auth.service import InvalidApiKey, create_api_key, revoke_api_key

    with Session(committed) as session:
        key, token = create_api_key(session, "leaked", actor="tests")
        authenticate(session, token)
        assert key.id is not None
        revoke_api_key(session, key.id, actor="tests")
        with pytest.raises(InvalidApiKey):
            authenticate(session, token)


@pytest.mark.concurrency
def test_create_user_reads_the_password_from_stdin_and_stores_an_argon2_hash(
    committed: Engine,
) -> None:
    from app.auth import passwords
    from app.auth.staff import StaffUser

    result = runner.invoke(
        cli, ["create-user", "Ana@Example.com", "--role", "admin"], input="a long password\n"
    )

    assert result.exit_code == 0, result.output
    assert "ana@example.com (admin) created" in result.output
    with Session(committed) as session:
        user = session.exec(select(StaffUser)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert passwords.verify_password(user.password_hash, "a long password")


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["create-user", "ana@example.com", "--role", "boss"], "a long password", "--role"),
        (["create-user", "not-an-address", "--role", "sales"], "a long password", "e-mail"),
        (["create-user", "ana@example.com"], "short", "at least 10"),
    ],
)
def test_create_user_explains_bad_input(
    engine: Engine, args: list[str], password: str, message: str
) -> None:
    result = runner.invoke(cli, args, input=password + "\n")

    assert result.exit_code != 0
    assert message in result.output


def test_a_second_active_key_of_the_same_name_is_refused_on_the_command_line(
    committed: Engine,
) -> None:
    assert runner.invoke(cli, ["create-api-key", "erp"]).exit_code == 0

    again = runner.invoke(cli, ["create-api-key", "erp"])

    assert again.exit_code == 2
    assert "An active API key is called 'erp' already" in again.output


def test_a_password_set_on_the_command_line_is_to_be_replaced_by_the_users_own(
    committed: Engine,
) -> None:
    """The operator typed it, so they know it: as after an admin's reset on the user's page,
    every page asks the user to choose their own."""
    created = runner.invoke(cli, ["create-user", "ana@example.com"], input="a long password\n")
    assert created.exit_code == 0, created.output

    reset = runner.invoke(cli, ["set-password", "ana@example.com"], input="operator knows this\n")

    assert reset.exit_code == 0, reset.output
    with Session(committed) as session:
        user = session.exec(select(StaffUser).where(StaffUser.email == "ana@example.com")).one()
        assert user.must_change_password
