"""The words completion offers where the grammar takes a name (`sopdsl.lsp.next_words`)."""

from __future__ import annotations

import pytest

from sopdsl.lang.durations import UNITS
from sopdsl.lsp.next_words import next_words
from sopdsl.vocabulary import WORDS

_STEPS = 'timezone "Asia/Shanghai"\nplaybook p "迎新" {\n    on member joins\n    do {\n        '

# For each closed vocabulary, a place that names it: its words are offered there.
PLACES = {
    "unit": _STEPS + "wait 3 ",
    "weekday": "calendar c = every monday, ",
    "absence": "playbook p {\n    on no ",
    "window": "playbook p {\n    when member.points > 3 and ",
    "type": "event checkin { day: ",
    "cap noun": "policy {\n    at most 3 ",
    "cap subject": "policy {\n    at most 3 sends per ",
    "period": "policy {\n    at most 3 sends per member per ",
    "overflow": "policy {\n    at most 3 sends per member per day else ",
    "platform noun": "platform {\n    at most 9 ",
    "platform cannot": "platform {\n    cannot kick, ",
    "counting": "platform {\n    at most 4 messages per member per month counting ",
    "attachment": 'template t = "x"\n    with ',
    "mentioning": 'template t = "x"\n    mentioning ',
    "apply to": "playbook p {\n    apply to ",
    "missed": "playbook p {\n    missed ",
    "on change": "playbook p {\n    on change ",
}
SHARED = {"cap subject": ("period",), "period": ("cap subject",)}


def test_every_closed_vocabulary_has_a_place() -> None:
    assert sorted(PLACES) == sorted(WORDS)


@pytest.mark.parametrize("kind", sorted(PLACES))
def test_a_place_offers_its_own_vocabulary_and_no_other(kind: str) -> None:
    offered = set(next_words(PLACES[kind]) or ())
    own = {w for word in WORDS[kind] for w in word.split()}
    assert own <= offered
    # `per ` takes `member` or `day`: a cap's subject and period share the place.
    shared = {kind, *SHARED.get(kind, ())}
    others = {w for k, words in WORDS.items() for word in words for w in word.split() if k not in shared}
    # Words of another vocabulary only where they are also this one's, or a keyword of the place.
    allowed = {w for k in shared for word in WORDS[k] for w in word.split()}
    stray = others - allowed - _keywords_there(PLACES[kind])
    assert not offered & stray, kind


def _keywords_there(text: str) -> set[str]:
    # The grammar's own words at the place (`member` at a condition's start is one), not names.
    from sopdsl.lsp import next_words as module

    saved = module.vocabulary_after
    module.vocabulary_after = lambda tokens: ()
    try:
        return set(next_words(text) or ())
    finally:
        module.vocabulary_after = saved


def test_after_a_waits_number_only_units() -> None:
    offered = next_words(_STEPS + "wait 3 ")
    assert offered is not None
    assert set(offered) == {w for unit in UNITS for w in unit.split()}
    for stray in ("monday", "周一", "drop", "text", "image", "sends", "migrate", "orders"):
        assert stray not in offered


@pytest.mark.parametrize(
    "before",
    [
        _STEPS + "send hi to member via ",  # a channel: any name
        _STEPS + "call crm_note(",  # the action's own arguments
        'timezone "Asia/Shanghai"\nplaybook p {\n    at ',  # a calendar's name
    ],
)
def test_a_declared_name_gets_no_closed_words(before: str) -> None:
    offered = next_words(before)
    assert offered is not None
    every = {w for words in WORDS.values() for word in words for w in word.split()}
    assert not set(offered) & every - _keywords_there(before)
