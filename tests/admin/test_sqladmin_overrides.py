"""Our overrides of sqladmin's templates (templates/admin/sqladmin/) extend sqladmin's own and
replace only blocks it has.

Each override says at its top why it replaces what it does. When an upgrade changes a template
we build on, the hash test names it: diff the new original against the old one, carry the
change into our override where it matters, then record the new hash here. A block we override
that upstream renamed or dropped would silently stop applying; the block test names that.
"""

import hashlib
import inspect
from importlib.metadata import version
from pathlib import Path

import pytest
import sqladmin
from jinja2 import Environment, nodes
from sqladmin import Admin, ModelView

from app.config import TEMPLATES_DIR

OVERRIDES = TEMPLATES_DIR / "admin" / "sqladmin"
UPSTREAM = Path(sqladmin.__file__).parent / "templates"
# sqladmin 0.32.0's templates we build on (pyproject pins sqladmin to 0.32.x): the ones we
# override, and base.html, whose blocks our layout and the sign-in pages fill.
RECORDED = {
    "base.html": "160cbde24a2111f847816128497ef3eca2e147c3c24486b2baca948ed0a96a8e",
    "layout.html": "bffc98569593a14784ccbeee3360a693f7c7b50cb7f00f87e472e353df499911",
    "create.html": "530935731c2db15abd2f6951f08b7872474f6e57852b1fc347cc1802a4e6a7ba",
    "edit.html": "ab92794731459e9dd79723b9456ae76e311616e303c86782a85c8d2f1f1909b9",
    "details.html": "be8a642848e62144789de8b514c133014d720cbec2cd3d5235672dae8edcc4c2",
    "list.html": "173d8332d56c3623df6da1f5e009987245a2f56153a1564fa033d34b27e4e4c9",
}
# sqladmin 0.32.0's code we copy rather than call: ``ModelView.list``, whose steps building the
# list's statement app/admin/export.py's ``listed`` repeats (for the export and for
# StaffModelView's own ``list``, which replaces it to count no further than a cap), and the
# export endpoint ``Admin.export``, which StaffAdmin replaces with one that streams (its checks
# kept). When one changes, carry the change over.
COPIED_CODE = {
    (ModelView, "list"): "e45891d49fe4711d02deb5a728ebf7c918d0989a5c15189ce73842a139183d33",
    (Admin, "export"): "1e2c74e17c83806ab5a3be63a759258c464560265d2600a5005b121cbd8f249c",
}
ENV = Environment(autoescape=True)
OVERRIDE_NAMES = sorted(p.name for p in OVERRIDES.glob("*.html"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parsed(path: Path) -> nodes.Template:
    return ENV.parse(path.read_text())


def _parent(tree: nodes.Template) -> str | None:
    extends = tree.find(nodes.Extends)
    return None if extends is None else str(extends.template.as_const())


def _upstream_blocks(name: str) -> set[str]:
    """The blocks of one of sqladmin's templates and of those it extends, as sqladmin ships them."""
    tree = _parsed(UPSTREAM / "sqladmin" / name)
    blocks = {block.name for block in tree.find_all(nodes.Block)}
    parent = _parent(tree)
    return blocks | (_upstream_blocks(parent.split("/")[-1]) if parent else set())


def test_every_override_has_a_recorded_original() -> None:
    assert set(OVERRIDE_NAMES) <= set(RECORDED)


def test_the_originals_we_build_on_are_unchanged_upstream() -> None:
    shipped = UPSTREAM / "sqladmin"
    changed = [name for name, digest in RECORDED.items() if _sha256(shipped / name) != digest]
    assert changed == [], f"sqladmin {version('sqladmin')} changed {changed}: review our overrides"


def test_the_code_we_copy_is_unchanged_upstream() -> None:
    changed = [
        f"{owner.__name__}.{name}"
        for (owner, name), digest in COPIED_CODE.items()
        if hashlib.sha256(inspect.getsource(getattr(owner, name)).encode()).hexdigest() != digest
    ]
    assert changed == [], f"sqladmin {version('sqladmin')} changed {changed}"


@pytest.mark.parametrize("name", OVERRIDE_NAMES)
def test_an_override_extends_its_original(name: str) -> None:
    assert _parent(_parsed(OVERRIDES / name)) == f"sqladmin_original/{name}"


@pytest.mark.parametrize("name", OVERRIDE_NAMES)
def test_an_override_fills_only_blocks_sqladmin_has(name: str) -> None:
    ours = {block.name for block in _parsed(OVERRIDES / name).find_all(nodes.Block)}
    assert ours - _upstream_blocks(name) == set()
