"""A WeCom callback captured and posted again later is refused: its signature is genuine, but it
was signed long ago.

Before, the receiver checked the signature only, and what a callback teaches the store was
learnt again from a replay: a day later (once `CODE_KEPT` had forgotten the code) an old
`add_external_contact` made its spent welcome code young again and its staff member the
customer's owner again, though the customer had deleted them since, so the customer's next send
went from someone who can no longer send it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiclient import Client
from test_callback import CORP, DAYTIME, EXTRA, plan_zone
from wecom_mock import AES_KEY, CALLBACK_TOKEN, callback_request

import sopdsl
from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.wecom.callback import WeComCallback
from sopdsl.live.wecom.contacts import Contacts

DAY = 86_400


def contact_xml(change: str, customer: str, owner: str, at: int, code: str = "") -> str:
    welcome = f"<WelcomeCode><![CDATA[{code}]]></WelcomeCode>" if code else ""
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[{owner}]]></UserID>"
        f"<ExternalUserID><![CDATA[{customer}]]></ExternalUserID>{welcome}</xml>"
    )


@dataclass
class Wire:
    """The service, its callback, the clock both keep, and the requests WeCom posted."""

    service: Service
    callback: WeComCallback
    clock: ManualClock
    client: Client
    nonce: int = 0

    def request(self, xml: str) -> tuple[str, bytes]:
        """A callback as WeCom signs it now."""
        self.nonce += 1
        return callback_request(xml, nonce=str(self.nonce), timestamp=self.clock.now(), corp=CORP)

    def post(self, request: tuple[str, bytes]) -> Any:
        query, body = request
        return self.client.post(
            f"/wecom/callback?{query}", content=body, headers={"Content-Type": "text/xml"}
        )


@pytest.fixture
def wire() -> Iterator[Wire]:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(EXTRA, "contacts.sop")))
    clock = ManualClock(DAYTIME)
    runtime = Runtime(plan, "memory://", executors={"send": lambda a, k: None}, clock=clock)
    callback = WeComCallback(
        token=CALLBACK_TOKEN,
        aes_key=AES_KEY,
        corp_id=CORP,
        contacts=Contacts(clock=lambda: float(clock.now())),  # the wall clock, as the runtime's
    )
    service = Service(runtime, zone=plan_zone(), log=io.StringIO(), receivers=[callback], group_commit=False)
    yield Wire(service, callback, clock, Client(create_app(service)))
    runtime.close()


def test_a_contact_added_replayed_a_day_later_rearms_no_code_and_brings_back_no_owner(wire: Wire) -> None:
    added = wire.request(contact_xml("add_external_contact", "wmCUST1", "zhangsan", DAYTIME, "CODE1"))
    assert wire.post(added).status_code == 200
    assert wire.callback.contacts.take_welcome_code("wmCUST1") == "CODE1"  # the welcome used it
    wire.clock.advance(60)
    lost = wire.request(contact_xml("del_follow_user", "wmCUST1", "zhangsan", DAYTIME + 60))
    assert wire.post(lost).status_code == 200
    assert wire.callback.contacts.owner("wmCUST1") is None

    wire.clock.advance(2 * DAY)
    replayed = wire.post(added)
    assert replayed.status_code == 403
    assert "captured and sent again" in replayed.text and "NTP" in replayed.text
    assert wire.callback.contacts.take_welcome_code("wmCUST1") is None
    assert wire.callback.contacts.owner("wmCUST1") is None
    assert isinstance(wire.service.log, io.StringIO)
    assert "wecom callback: refused" in wire.service.log.getvalue()


def test_a_callback_signed_now_is_taken_after_the_clock_moved_on(wire: Wire) -> None:
    wire.clock.advance(2 * DAY)
    now = wire.clock.now()
    answer = wire.post(wire.request(contact_xml("add_external_contact", "wmCUST2", "lisi", now, "CODE2")))
    assert answer.status_code == 200, answer.text
    assert wire.callback.contacts.owner("wmCUST2") == "lisi"
    assert wire.service.runtime.stats()["events_in"] == 1


def test_a_callback_sent_again_within_minutes_is_still_answered_as_a_duplicate(wire: Wire) -> None:
    # WeCom sends a callback it got no answer to again, with the same signature: not refused.
    added = wire.request(contact_xml("add_external_contact", "wmCUST3", "lisi", DAYTIME, "CODE3"))
    assert wire.post(added).status_code == 200
    wire.clock.advance(30)
    assert wire.post(added).status_code == 200
    assert wire.service.runtime.stats()["events_in"] == 1
