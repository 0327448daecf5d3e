"""The export tier: tests that need trained, exported models (``make export`` first makes this cheap)."""

from __future__ import annotations

import pytest

from tritonkit import paths
from tritonkit.export.__main__ import main as export_main


@pytest.fixture(scope="session")
def exported_repository():
    """model_repository/ with every model exported; up-to-date models are skipped, so this is cheap after
    `make export`. ``--check-configs``: a test run never rewrites the committed configs it checks."""
    assert export_main(["--check-configs"]) == 0, "python -m tritonkit.export --check-configs failed; run it to see why"
    return paths.model_repository()
