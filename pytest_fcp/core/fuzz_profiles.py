"""The ``--fcp-fuzz-profile`` presets: how many examples, how long, derandomized or seeded."""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_EXAMPLES", "PROFILES"]

#: generated scenarios per engine when neither ``--fcp-fuzz-examples`` nor ini ``fcp_fuzz_examples`` says
DEFAULT_EXAMPLES = 100

#: ``ci``: derandomized (the same examples every run), bounded; ``deep``: 10x the examples, seeded.
PROFILES: dict[str, dict[str, Any]] = {
    "ci": {"derandomize": True, "examples_factor": 1.0, "budget": 120.0},
    "deep": {"derandomize": False, "examples_factor": 10.0, "budget": None},
}
