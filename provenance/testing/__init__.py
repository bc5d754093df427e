"""Test doubles that are real: an OpenAI-compatible HTTP server on 127.0.0.1 with fault
injection (:mod:`provenance.testing.server`), for tests, benchmarks and trying audits
without an API account."""

from .server import FAULT_KINDS, Faults, Hit, LoopbackServer

__all__ = ["FAULT_KINDS", "Faults", "Hit", "LoopbackServer"]
