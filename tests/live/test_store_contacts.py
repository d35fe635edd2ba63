"""A platform's contacts in the store (`store_contacts.py`): one test body per behaviour, run against
memory, SQLite and PostgreSQL; and a store of an earlier sopdsl that gains the tables on opening."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from livestores import KINDS, store_url

from sopdsl.live.store import Store, open_store
from sopdsl.live.store_contacts import CODE_KEPT

T = 1_773_021_600.0
EARLIER = Path(__file__).parent / "data" / "wait_for.format2.sqlite"  # made by sopdsl at f9e709e


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    yield opened
    opened.close()


def test_a_welcome_code_is_given_out_once_and_only_while_young(store: Store) -> None:
    store.contact_added("wmA", "zhangsan", half=False, code="CODE_A", wall=T)
    store.contact_added("wmB", "zhangsan", half=False, code="CODE_B", wall=T)
    assert store.take_welcome_code("wmA", T + 19, 20) == "CODE_A"
    assert store.take_welcome_code("wmA", T + 19, 20) is None  # spent
    assert store.take_welcome_code("wmB", T + 21, 20) is None  # too old for WeCom
    # WeCom sends the callback again: a code spent, or seen before, is not armed again.
    store.contact_added("wmA", "zhangsan", half=False, code="CODE_A", wall=T + 25)
    assert store.take_welcome_code("wmA", T + 26, 20) is None


def test_welcome_codes_older_than_a_day_are_dropped_as_callbacks_arrive(url: str, store: Store) -> None:
    store.contact_added("wmA", "zhangsan", half=False, code="CODE_A", wall=T)
    store.contact_added("wmB", "lisi", half=False, code="CODE_B", wall=T + CODE_KEPT + 1)
    assert _codes(url, store) == ["CODE_B"]


def _codes(url: str, store: Store) -> list[str]:
    """The welcome codes a store holds, spent or not."""
    if url.startswith("memory"):
        return sorted(vars(store)["_codes"])
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [str(r[0]) for r in conn.execute("SELECT code FROM sopdsl_welcome_codes ORDER BY code")]
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT code FROM sopdsl_welcome_codes ORDER BY code")]


def test_the_owner_is_whoever_added_the_customer_last_and_forgetting_one_leaves_the_other(
    store: Store,
) -> None:
    assert store.contact_owner("wmA") is None
    store.contact_added("wmA", "zhangsan", half=False, code=None, wall=T)
    store.contact_added("wmA", "lisi", half=False, code=None, wall=T + 1)
    assert store.contact_owner("wmA") == "lisi"
    store.forget_owner("wmA", "lisi")
    assert store.contact_owner("wmA") == "zhangsan"
    store.forget_owner("wmA", "zhangsan")
    store.remember_owner("wmA", "wangwu", T + 2)  # asked of WeCom
    assert store.contact_owner("wmA") == "wangwu"


def test_a_half_added_contact_confirmed_is_no_second_addition_until_they_part(store: Store) -> None:
    assert store.contact_added("wmA", "zhangsan", half=True, code="CODE_A", wall=T)
    assert not store.contact_added("wmA", "zhangsan", half=False, code=None, wall=T + 5)
    assert store.contact_added("wmA", "lisi", half=False, code=None, wall=T + 6)  # another staff member
    store.forget_owner("wmA", "zhangsan")  # the customer deleted zhangsan
    assert store.contact_added("wmA", "zhangsan", half=False, code=None, wall=T + 60)


def test_group_owners_and_staff_are_kept(store: Store) -> None:
    store.remember_group_owner("wrG", "wangwu")
    store.remember_group_owner("wrG", "zhaoliu")
    assert store.group_owner("wrG") == "zhaoliu"
    store.forget_group("wrG")
    assert store.group_owner("wrG") is None
    store.remember_staff(["zhangsan", "lisi"], T)
    store.remember_staff(["zhangsan"], T + 1)
    assert store.staff_among(["zhangsan", "wmA", "lisi"]) == {"zhangsan", "lisi"}
    assert store.staff_among([]) == set()
    many = [f"u{i}" for i in range(1200)]
    store.remember_staff(many, T)
    assert store.staff_among([*many, "wmA"]) == set(many)


def test_a_store_of_an_earlier_sopdsl_keeps_contacts_without_a_migration(tmp_path: Path) -> None:
    copy = tmp_path / "store.sqlite"
    shutil.copyfile(EARLIER, copy)
    for _ in range(2):  # made on the first opening, found on the second
        store = open_store(f"sqlite:///{copy}")
        store.remember_staff(["zhangsan"], T)
        assert store.staff_among(["zhangsan"]) == {"zhangsan"}
        store.close()
