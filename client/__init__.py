"""Thin client over tritonclient for this repository's models (grows with the Client issue).

For now it holds what the launcher, the tests and the load tests share: waiting for readiness.
"""

from client.health import ServerNotReady, wait_until_ready

__all__ = ["ServerNotReady", "wait_until_ready"]
