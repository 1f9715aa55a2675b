"""The README is followed word for word: its settings table, commands and make targets are
the code's, and its deployment steps can be pasted as they are."""

import itertools
import re
from typing import Any

import typer.main
from prometheus_client import REGISTRY, generate_latest

from app.cli import cli
from app.config import ROOT_DIR, Settings

README = (ROOT_DIR / "README.md").read_text(encoding="utf-8")


def settings_table() -> dict[str, tuple[str, str]]:
    """The Configuration section's rows: variable -> (default, meaning)."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(OFFERTRACK_\w+)` \| (.*?) \| (.*) \|$", section, re.MULTILINE)
    return {name: (default, meaning) for name, default, meaning in rows}


def shown(default: Any) -> str:
    """A default as the table writes it: `true`, `2` for 2.0, `[]`."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_every_setting_is_in_the_table_and_every_row_is_a_setting() -> None:
    documented = set(settings_table())
    settings = {f"OFFERTRACK_{name.upper()}" for name in Settings.model_fields}

    assert settings - documented == set(), "settings missing from the README's table"
    assert documented - settings == set(), "README rows that are no setting"


def test_the_table_gives_each_setting_its_default() -> None:
    for name, (default, meaning) in settings_table().items():
        field = Settings.model_fields[name.removeprefix("OFFERTRACK_").lower()]
        literal = re.fullmatch(r"`([^`]*)`", default)
        if literal:
            assert literal[1] == shown(field.default), name
        elif default in ("none", "empty"):
            assert not field.default, name
        assert meaning.strip(), name


def test_every_command_the_readme_names_exists() -> None:
    named = set(re.findall(r"(?:^|[\s`/])offertrack ([a-z][a-z0-9-]*)", README, re.MULTILINE))
    commands = set(typer.main.get_command(cli).commands)  # type: ignore[attr-defined]

    assert named - {"offertrack"} - commands == set()


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT_DIR / "Makefile").read_text(encoding="utf-8")
    targets = set(re.search(r"^\.PHONY: (.*)$", makefile, re.MULTILINE)[1].split())  # type: ignore[index]

    assert set(re.findall(r"`make ([a-z0-9-]+)", README)) - targets == set()


def _make_list(makefile: str, name: str) -> set[str]:
    value = re.search(rf"^{name} := (.*)$", makefile, re.MULTILINE)
    assert value is not None, name
    listed: set[str] = set()
    for word in value[1].split():
        inner = re.fullmatch(r"\$\((\w+)\)", word)
        listed |= _make_list(makefile, inner[1]) if inner else {word}
    return listed


def test_the_packages_to_install_by_hand_are_those_make_installs() -> None:
    """Without root, `make test` leaves the Debian packages to the reader: a package the README
    leaves out (HarfBuzz's subset library: WeasyPrint's warning fails the PDF tests;
    postgresql-client: the backup tests) fails tests the README says would pass."""
    makefile = (ROOT_DIR / "Makefile").read_text(encoding="utf-8")
    by_hand = re.search(r"`sudo apt-get install ([^`]+)`", README)
    deploy = re.search(r"`apt-get install (python3-venv[^`]+)`", README)

    assert by_hand is not None and deploy is not None
    assert set(by_hand[1].split()) == _make_list(makefile, "SYSTEM_PACKAGES")
    assert set(deploy[1].split()) == _make_list(makefile, "PDF_PACKAGES") | {"python3-venv"}


def test_the_environment_file_has_no_comment_after_a_value() -> None:
    """systemd's EnvironmentFile keeps a '# ...' after a value as part of it: a public base URL
    followed by a comment would be printed into every QR code."""
    block = README.split("(`/etc/offertrack/offertrack.env`", 1)[1].split("```sh", 1)[1]
    lines = [line.strip() for line in block.split("```", 1)[0].strip().splitlines()]

    assert lines, "the README shows no environment file"
    for line in lines:
        assert line.startswith("#") or " #" not in line, line


def test_the_setup_commands_run_where_the_unit_runs_the_server() -> None:
    """As root, from root's home, `runuser -u offertrack -- offertrack check-config` died with
    a PermissionError on `.env` (pydantic looks for one in the working directory): the README
    runs them in the data directory, the unit's WorkingDirectory, which also reads the same
    `.env` the server does."""
    unit = (ROOT_DIR / "deploy" / "offertrack.service").read_text(encoding="utf-8")
    home = re.search(r"^WorkingDirectory=(\S+)$", unit, re.MULTILINE)
    block = README.split("(`/etc/offertrack/offertrack.env`", 1)[1].split("```sh", 2)[2]
    commands = [line.strip() for line in block.split("```", 1)[0].strip().splitlines()]

    assert home is not None
    assert commands[0] == f"cd {home[1]}", commands
    assert f"OFFERTRACK_VAR_DIR={home[1]}" in README


def test_every_metric_the_readme_names_is_exposed_under_that_name() -> None:
    import app.metrics  # noqa: F401  (registers the metrics)

    exposition = generate_latest(REGISTRY).decode()
    exposed = set(re.findall(r"^# TYPE (\w+) ", exposition, re.MULTILINE))

    assert set(re.findall(r"`(offertrack_[a-z_]+)", README)) - exposed == set()


def test_the_deployment_files_are_described_as_they_are() -> None:
    unit = (ROOT_DIR / "deploy" / "offertrack.service").read_text(encoding="utf-8")
    serve = re.search(r"^ExecStart=/opt/offertrack/bin/(offertrack serve .*)$", unit, re.MULTILINE)
    haproxy = (ROOT_DIR / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    settings = re.sub(r"#.*", "", haproxy)

    assert serve is not None and f"`{serve[1]}`" in README
    for variable in set(re.findall(r'"\$\{(\w+)\}"', settings)):
        assert f"`{variable}`" in README, variable


def test_the_unit_keeps_the_data_directory_private() -> None:
    """useradd --create-home makes the data directory readable by every local user; the unit
    closes it, since the SQLite file, the mails written as files and the spool are in it."""
    unit = (ROOT_DIR / "deploy" / "offertrack.service").read_text(encoding="utf-8")
    data = re.search(r"^Environment=OFFERTRACK_VAR_DIR=(\S+)$", unit, re.MULTILINE)
    state = re.search(r"^StateDirectory=(\S+)$", unit, re.MULTILINE)

    assert data is not None and state is not None
    assert data[1] == f"/var/lib/{state[1]}"  # the directory systemd makes and chmods
    assert re.search(r"^StateDirectoryMode=0?700$", unit, re.MULTILINE)


def test_the_staff_page_example_runs_as_printed() -> None:
    from app.admin.layout import StaffPages

    section = README.split("### Adding a staff page from another module", 1)[1]
    example = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(example, namespace)

    assert isinstance(namespace["ANALYTICS_PAGES"], StaffPages)


def test_the_estimates_are_described_with_the_codes_number_of_draws() -> None:
    from app.analytics.stats import DRAWS

    (said,) = re.findall(r"\(([\d,]+) Monte Carlo draws", README)
    assert int(said.replace(",", "")) == DRAWS


# Folders of the checkout whose files the README points a reader to.
CHECKOUT_FOLDERS = ("app", "tests", "bench", "deploy", "static", "templates", ".ci")


def _placeholder(part: str) -> bool:
    """A path part the reader fills in: `<language>`, `*.eml`, `NAME.txt`."""
    return any(mark in part for mark in "<*{") or part.split(".")[0].isupper()


def test_every_file_the_readme_points_to_is_in_the_checkout() -> None:
    folders = "|".join(re.escape(folder) for folder in CHECKOUT_FOLDERS)
    named = set(re.findall(rf"(?<![\w/.-])((?:{folders})/[\w./*<>{{}},-]*)", README))
    missing = []
    for path in named:
        parts = path.rstrip(".,").rstrip("/").split("/")
        known = list(itertools.takewhile(lambda part: not _placeholder(part), parts))
        if not (ROOT_DIR / "/".join(known)).exists():
            missing.append(path)

    assert named and missing == []


def _read_by_the_project(name: str) -> bool:
    """Whether a file of the checkout besides the README uses the variable ``name``."""
    files = [ROOT_DIR / "Makefile"]
    for folder in CHECKOUT_FOLDERS:
        files += [path for path in (ROOT_DIR / folder).rglob("*") if path.is_file()]
    return any(name in path.read_text(encoding="utf-8", errors="ignore") for path in files)


def test_every_offertrack_variable_the_readme_names_is_read_by_something() -> None:
    """Outside the settings table too: a variable renamed in the code but not in the prose
    (the tests', the benchmarks', the load balancer's) is one a reader sets for nothing."""
    settings = {f"OFFERTRACK_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"OFFERTRACK_[A-Z0-9_]*[A-Z0-9]_?", README))
    unread = [
        name
        for name in sorted(named - settings)
        if not (name.endswith("_") and any(s.startswith(name) for s in settings))
        and not _read_by_the_project(name)
    ]

    assert unread == []
