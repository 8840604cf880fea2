"""What a check is and what it reports: status, one-line finding, evidence, fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.doctor.context import Context

SEVERITIES = ("error", "warning", "info")
# ok: checked and fine; na: does not apply to this stack (or could not be checked, said why).
STATUSES = ("ok", "na", *SEVERITIES)


@dataclass(frozen=True)
class Evidence:
    kind: str  # header | config | output | probe | file
    text: str
    where: str = ""  # file:line for config, a URL for a probe, a path for a file

    def to_json(self) -> dict[str, str]:
        data = {"kind": self.kind, "text": self.text}
        if self.where:
            data["where"] = self.where
        return data


@dataclass
class Outcome:
    status: str
    finding: str
    evidence: list[Evidence] = field(default_factory=list)
    fix: str = ""  # overrides the check's default fix when set


@dataclass(frozen=True)
class CheckSpec:
    id: str  # stable: area.name, never renamed once released
    area: str
    title: str
    severity: str  # the level of a finding (error makes doctor exit 1)
    fix: str
    run: Callable[[Context], Outcome]
    refs: tuple[str, ...] = ()


@dataclass
class Result:
    spec: CheckSpec
    outcome: Outcome
    seconds: float

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        data: dict[str, Any] = {
            "id": self.spec.id,
            "area": self.spec.area,
            "title": self.spec.title,
            "severity": self.spec.severity,
            "status": o.status,
            "finding": o.finding,
            "evidence": [e.to_json() for e in o.evidence],
            "duration_ms": round(self.seconds * 1000, 1),
        }
        if o.status in SEVERITIES:
            data["fix"] = o.fix or self.spec.fix
        if self.spec.refs:
            data["refs"] = list(self.spec.refs)
        return data


def ok(finding: str, *evidence: Evidence) -> Outcome:
    return Outcome("ok", finding, list(evidence))


def na(why: str, *evidence: Evidence) -> Outcome:
    return Outcome("na", why, list(evidence))


def header(name: str, value: str | None, url: str = "") -> Evidence:
    return Evidence("header", f"{name}: {value}", url)
