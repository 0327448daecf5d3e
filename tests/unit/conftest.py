from __future__ import annotations

import pytest

from export.__main__ import DEFAULT_REPOSITORY
from export.__main__ import main as export_main


@pytest.fixture(scope="session")
def exported_repository():
    """model_repository/ with every model exported (up-to-date models are skipped, so this is cheap after `make export`)."""
    assert export_main([]) == 0, "python -m export failed; run it to see why"
    return DEFAULT_REPOSITORY
