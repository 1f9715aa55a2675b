"""Our copies of sqladmin's templates (templates/admin/sqladmin/) stay forks of a known version.

Each copy changes markup that sqladmin offers no block for (the CSP nonce on its inline
script, the staff menu, POST-only actions). When an upgrade changes one of the originals,
this test names it: diff the new original against the old one, carry the change into our
copy, then record the new hash here.
"""

import hashlib
from importlib.metadata import version
from pathlib import Path

import sqladmin

from app.config import TEMPLATES_DIR

FORKS = TEMPLATES_DIR / "admin" / "sqladmin"
UPSTREAM = Path(sqladmin.__file__).parent / "templates" / "sqladmin"
# sqladmin 0.32.0's originals of the templates we fork (pyproject pins sqladmin to 0.32.x).
RECORDED = {
    "create.html": "530935731c2db15abd2f6951f08b7872474f6e57852b1fc347cc1802a4e6a7ba",
    "details.html": "be8a642848e62144789de8b514c133014d720cbec2cd3d5235672dae8edcc4c2",
    "edit.html": "ab92794731459e9dd79723b9456ae76e311616e303c86782a85c8d2f1f1909b9",
    "flash.html": "fb223ad041f0bd44b9b42a92eabf0e2eb0a8283cc7046ba2a9617ae9c9e67c22",
    "layout.html": "bffc98569593a14784ccbeee3360a693f7c7b50cb7f00f87e472e353df499911",
    "list.html": "173d8332d56c3623df6da1f5e009987245a2f56153a1564fa033d34b27e4e4c9",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_fork_has_a_recorded_original() -> None:
    assert sorted(p.name for p in FORKS.glob("*.html")) == sorted(RECORDED)


def test_the_originals_we_forked_are_unchanged_upstream() -> None:
    changed = [name for name, digest in RECORDED.items() if _sha256(UPSTREAM / name) != digest]
    assert changed == [], f"sqladmin {version('sqladmin')} changed {changed}: re-apply our forks"
