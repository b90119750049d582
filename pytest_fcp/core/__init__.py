"""Core facts, defined once: markets and intervals, schemas, freshness, sources, cache states, log levels.

Everything else in pytest-fcp imports these; they import nothing of pytest-fcp's (see docs/architecture.md).
"""
