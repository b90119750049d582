"""Engines used only by pytest-fcp's own tests (see :mod:`tests.engines.alt_engine`)."""
