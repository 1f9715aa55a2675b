"""The routing table kept in a local file, for a process that starts while the database is away.

Printed campaign codes must keep working: a server started during a database outage has no
rules in memory yet, so it routes with the copy the last process wrote (and refreshes memory
from the database as soon as it answers). The copy is rewritten whenever the loaded rules
change, written whole or not at all.
"""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.analytics.models import SplitMode
from app.analytics.routing import ArmStats, CompiledCode, Rule, Target
from app.analytics.schemas import Conditions
from app.files import make_private_dir, write_atomically

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def _target(target: Target) -> dict[str, Any]:
    return {
        "url": target.url,
        "creative_id": target.creative_id,
        "utm_content": target.utm_content,
        "weight": target.weight,
    }


def _code(code: CompiledCode) -> dict[str, Any]:
    return {
        "slug": code.slug,
        "campaign_id": code.campaign_id,
        "placement_id": code.placement_id,
        "utm": dict(code.utm),
        "rules": [
            {
                "when": rule.when.model_dump(mode="json", exclude_none=True),
                "destinations": [_target(t) for t in rule.destinations],
            }
            for rule in code.rules
        ],
        "fallback": _target(code.fallback),
        "split_mode": code.split_mode.value,
        # JSON keys are strings; "" stands for the arm without a creative.
        "arms": {
            str(k or ""): [a.conversions, a.visitors] for k, a in sorted(code.arms.items(), key=str)
        },
    }


def _compiled(data: dict[str, Any]) -> CompiledCode:
    return CompiledCode(
        slug=data["slug"],
        campaign_id=data["campaign_id"],
        placement_id=data["placement_id"],
        utm=data["utm"],
        rules=tuple(
            Rule(
                Conditions.model_validate(rule["when"]),
                tuple(Target(**t) for t in rule["destinations"]),
            )
            for rule in data["rules"]
        ),
        fallback=Target(**data["fallback"]),
        split_mode=SplitMode(data["split_mode"]),
        arms={int(k) if k else None: ArmStats(*v) for k, v in data["arms"].items()},
    )


class RulesFile:
    """One process's view of the file: it writes only when the rules differ from its last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: str | None = None

    def save(self, codes: dict[str, CompiledCode]) -> None:
        body = json.dumps([_code(codes[slug]) for slug in sorted(codes)], sort_keys=True)
        if body == self._written:
            return
        saved_at = datetime.now(UTC).isoformat(timespec="seconds")
        document = f'{{"version": {FORMAT_VERSION}, "saved_at": "{saved_at}", "codes": {body}}}'
        try:
            make_private_dir(self.path.parent)  # the data folder, if the first to write there
            write_atomically(self.path, document.encode(), mode=0o644)
        except OSError as exc:  # a full disk must not fail a redirect; the next change retries
            log.warning("could not save the campaign routing rules to %s: %s", self.path, exc)
            return
        self._written = body

    def load(self) -> dict[str, CompiledCode] | None:
        """The rules last saved, or None when there are none (or they cannot be read)."""
        try:
            document = json.loads(self.path.read_bytes())
            if document.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {document.get('version')!r}")
            codes = [_compiled(code) for code in document["codes"]]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("campaign routing rules in %s cannot be used: %s", self.path, exc)
            return None
        log.warning(
            "routing %d campaign codes with the rules saved at %s in %s until the database answers",
            len(codes),
            document.get("saved_at"),
            self.path,
        )
        return {code.slug: code for code in codes}
