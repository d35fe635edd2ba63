"""`--engine` URLs: `temporal://host:port/namespace`, and the located refusal of anything else."""

from __future__ import annotations

import pytest

from sopdsl.temporal.shapes import Target, TemporalUrlError, parse_url


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("temporal://127.0.0.1:7233/default", Target("127.0.0.1:7233", "default")),
        ("temporal://temporal.internal/brands", Target("temporal.internal:7233", "brands")),
        ("temporal://[::1]:7000", Target("[::1]:7000", "default")),
    ],
)
def test_an_engine_url_names_the_server_and_the_namespace(url: str, target: Target) -> None:
    assert parse_url(url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:7233", "expected temporal://host:port/namespace"),
        ("temporal://host:port/default", "the port of 'temporal://host:port/default' is not a number"),
        ("temporal://host:7233/a/b", "names more than a namespace"),
    ],
)
def test_another_url_is_refused_saying_what_is_expected(url: str, message: str) -> None:
    with pytest.raises(TemporalUrlError, match=message):
        parse_url(url)
