"""Scenarios: declarative FCP failure cases (TOML files or Python objects), their loader and runner.

The pytest items of ``--fcp-scenarios`` are in ``pytest_fcp.plugin.items``.
"""

from pytest_fcp.scenarios.loader import catalog_dir, load_dir, load_file
from pytest_fcp.scenarios.model import Expect, Request, Scenario, ScenarioError

__all__ = ["Expect", "Request", "Scenario", "ScenarioError", "catalog_dir", "load_dir", "load_file"]
