"""Scenarios: declarative FCP failure cases (TOML files or Python objects), their loader and collector."""

from pytest_fcp.scenarios.model import Expect, Request, Scenario, ScenarioError
from pytest_fcp.scenarios.loader import catalog_dir, load_file, load_dir

__all__ = ["Expect", "Request", "Scenario", "ScenarioError", "catalog_dir", "load_dir", "load_file"]
