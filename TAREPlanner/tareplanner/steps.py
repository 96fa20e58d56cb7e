"""Which steps of the guided workflow are current and which are outdated.

Each step, when it runs, records a digest of each of its inputs (images, segments, parameters,
the records of earlier steps). A step is *current* while every input still has the digest it
had then, *outdated* when one has changed (the changed inputs are named), *not run* before it
first runs. Since a step's inputs include the results of the steps before it, re-running an
early step marks everything that used its old result as outdated. The log is plain JSON, kept
in the Slicer parameter node so it is saved with the scene.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

STEPS = ("registration", "segmentation", "measurement", "plan", "directive", "administration",
         "verification", "save")
#: steps whose results a step uses: an outdated one makes it outdated too (the verification
#: uses the administration's delivered activity when that step has run)
UPSTREAM = {"segmentation": ("registration",), "measurement": ("segmentation",),
            "plan": ("measurement",), "directive": ("plan",), "administration": ("directive",),
            "verification": ("plan", "administration"),
            "save": ("plan", "directive", "administration", "verification")}
NOT_RUN, CURRENT, OUTDATED = "not run", "current", "outdated"


@dataclass(frozen=True)
class StepStatus:
    step: str
    state: str
    changed: tuple[str, ...] = ()
    done_at: str | None = None

    @property
    def reason(self) -> str:
        """'SPECT changed; uses the outdated measurement step' (empty unless outdated)."""
        inputs = [c for c in self.changed if not c.endswith(" step")]
        upstream = [c for c in self.changed if c.endswith(" step")]
        parts = [f"{', '.join(inputs)} changed"] if inputs else []
        if upstream:
            parts.append("uses the outdated " + ", ".join(upstream))
        return "; ".join(parts)

    @property
    def text(self) -> str:
        if self.state == OUTDATED:
            return f"outdated: {self.reason}"
        if self.state == CURRENT:
            return f"current (run {self.done_at})"
        return NOT_RUN


def load_log(text: str | None) -> dict:
    if not text:
        return {}
    log = json.loads(text)
    if not isinstance(log, dict):
        raise ValueError("step log: expected a JSON object")
    return log


def dump_log(log: dict) -> str:
    return json.dumps(log, sort_keys=True)


def record_run(log: dict, step: str, inputs: dict[str, str], now: datetime | None = None) -> dict:
    """A new log with ``step`` done now on ``inputs`` (name -> digest)."""
    if step not in STEPS:
        raise ValueError(f"step: got {step!r}; allowed: {', '.join(STEPS)}")
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {**log, step: {"inputs": dict(inputs), "done_at": when}}


def status(log: dict, step: str, inputs: dict[str, str]) -> StepStatus:
    """Status of ``step`` given the digests its inputs have now. An input that is missing now
    or that the step did not have then counts as changed."""
    entry = log.get(step)
    if not entry:
        return StepStatus(step, NOT_RUN)
    then = entry["inputs"]
    changed = tuple(sorted(name for name in set(then) | set(inputs)
                           if then.get(name) != inputs.get(name)))
    return StepStatus(step, OUTDATED if changed else CURRENT, changed, entry.get("done_at"))


def statuses(log: dict, inputs_by_step: dict[str, dict[str, str]]) -> dict[str, StepStatus]:
    """Status of every step; a step that ran is also outdated when a step it uses is
    outdated (named as '<step> step')."""
    out: dict[str, StepStatus] = {}
    for step in STEPS:
        own = status(log, step, inputs_by_step[step])
        if own.state != NOT_RUN:
            upstream = tuple(f"{u} step" for u in UPSTREAM.get(step, ())
                             if out[u].state == OUTDATED)
            if upstream:
                own = StepStatus(step, OUTDATED, own.changed + upstream, own.done_at)
        out[step] = own
    return out
