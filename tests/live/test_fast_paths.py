"""The service's fast paths agree with the careful ones: bodies decoded by msgspec read as
`json.loads` reads them (refusals still worded by the careful reading), and duplicates found by
one id query a transaction, however many ids it holds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from livestores import KINDS, store_url

import sopdsl
from sopdsl.live.bodies import MAX_DEPTH, BodyError, decode_json
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.runtime import ManualClock, Runtime

START = 1_772_330_400


@pytest.mark.parametrize(
    "raw",
    [
        '{"id": "e1", "kind": "join", "member": "m1", "group": "g1"}',
        '[{"kind": "order", "data": {"amount": 99.5, "note": "欢迎\\u2028", "n": -0, "big": 1e300}}]',
        '{"a": 1, "a": 2, "b": [true, false, null, 1.0, 10000000000000000000000]}',
        '"\\ud800"',
        " [ [ [ ] ] ] ",
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
    ],
)
def test_a_body_decodes_as_json_loads_decodes_it(raw: str) -> None:
    found = decode_json(raw.encode())
    assert found == json.loads(raw)
    assert json.dumps(found) == json.dumps(json.loads(raw))  # same types: ints stay ints


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[NaN]", "the body holds NaN, which is not JSON"),
        ('{"amount": ' + "7" * 41 + "}", "a number of 41 characters"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "deeper than 32 levels"),
        ('{"a": [1, 2}', "the body is not JSON"),
        ('"a\x01b"', "the body is not JSON: Invalid control character"),
    ],
)
def test_a_bad_body_is_refused_with_the_careful_reading_s_words(raw: str, message: str) -> None:
    with pytest.raises(BodyError, match=message.replace("(", r"\(")) as caught:
        decode_json(raw.encode())
    assert caught.value.status == 400


PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎"
playbook welcome { on member joins do { send welcome to member } }
"""


@pytest.mark.parametrize("kind", KINDS)
def test_duplicates_are_found_in_a_transaction_of_many_ids(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(PLAYBOOK), "inline.sop")))
    rt = Runtime(
        plan,
        store_url(kind, tmp_path, request),
        executors=dict.fromkeys(ACTION_KINDS, lambda action, key: None),
        clock=ManualClock(START + 60),
    )

    def join(i: int) -> dict[str, Any]:
        return {"id": f"e{i}", "kind": "join", "member": f"m{i}", "group": "g1", "time": START}

    first = rt.feed_batch([join(i) for i in range(0, 450)])
    assert first.duplicates == [] and len(first.actions) == 450
    # Ids looked up in slices of 200: old ones on both sides of the slices' edges, new ones, and
    # one id twice in the batch (the second is the duplicate).
    again = [join(i) for i in range(190, 650)] + [join(700), join(700)]
    fed = rt.feed_batch(again)
    assert fed.duplicates == [*range(0, 260), len(again) - 1]
    assert len(fed.actions) == 200 + 1
    assert rt.stats()["events_in"] == 450 + 201
    rt.close()
