"""Fixtures of the codec tests: `codec` runs a test against each request codec."""

from __future__ import annotations

import pytest

from tests.unit.net.codecs import CODECS, Codec, load_codec


@pytest.fixture(scope="module", params=CODECS)
def codec(request: pytest.FixtureRequest) -> Codec:
    return load_codec(request.param)
