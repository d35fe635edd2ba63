"""The WeCom API client against the local mock server: the token cached and refreshed, error codes mapped.

(Named test_wecom_api.py: tests/cli/test_api.py holds the basename test_api.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wecom_mock import CORP_ID, SECRET, MockWeCom, serving

from sopdsl.live.retry import RetryPolicy
from sopdsl.live.wecom.api import WeComApi, WeComError


@pytest.fixture
def mock() -> Iterator[MockWeCom]:
    yield MockWeCom(contacts={"wmCUST1": ["zhangsan"]}, tag_ids={"etCORE"})


@pytest.fixture
def api(mock: MockWeCom) -> Iterator[tuple[WeComApi, list[float]]]:
    slept: list[float] = []
    with serving(mock) as url:
        client = WeComApi(CORP_ID, SECRET, base_url=url, sleep=slept.append, policy=RetryPolicy(3, 1.0, 10.0))
        yield client, slept
        client.close()


def test_the_token_is_fetched_once_and_reused(api: tuple[WeComApi, list[float]], mock: MockWeCom) -> None:
    client, _ = api
    client.get("externalcontact/get", {"external_userid": "wmCUST1"})
    client.get("externalcontact/get", {"external_userid": "wmCUST1"})
    assert mock.paths() == ["gettoken", "externalcontact/get", "externalcontact/get"]


def test_an_expired_token_42001_is_refreshed_and_the_call_sent_again(
    api: tuple[WeComApi, list[float]], mock: MockWeCom
) -> None:
    client, slept = api
    client.get("externalcontact/get", {"external_userid": "wmCUST1"})
    mock.expire_tokens()
    answer = client.get("externalcontact/get", {"external_userid": "wmCUST1"})
    assert answer["follow_user"][0]["userid"] == "zhangsan"
    assert mock.paths() == [
        "gettoken",
        "externalcontact/get",
        "externalcontact/get",
        "gettoken",
        "externalcontact/get",
    ]
    assert client.tokens_fetched == 2 and slept == []  # a refresh is not a backoff


def test_a_token_wecom_does_not_know_40014_is_refreshed_too(
    api: tuple[WeComApi, list[float]], mock: MockWeCom
) -> None:
    client, _ = api
    client.get("externalcontact/get", {"external_userid": "wmCUST1"})
    mock.tokens.clear()  # revoked: WeCom answers 40014
    client.get("externalcontact/get", {"external_userid": "wmCUST1"})
    assert client.tokens_fetched == 2


def test_rate_limit_45009_waits_as_the_retry_policy_says_then_succeeds(
    api: tuple[WeComApi, list[float]], mock: MockWeCom
) -> None:
    client, slept = api
    mock.fail_next["externalcontact/mark_tag"] = [45009, -1]
    client.post(
        "externalcontact/mark_tag",
        {"userid": "zhangsan", "external_userid": "wmCUST1", "add_tag": ["etCORE"]},
    )
    assert mock.paths().count("externalcontact/mark_tag") == 3
    assert slept == [1.0, 2.0]  # RetryPolicy(base=1): doubling


def test_rate_limit_that_outlasts_the_attempts_is_a_retry_for_the_outbox(
    api: tuple[WeComApi, list[float]], mock: MockWeCom
) -> None:
    client, _ = api
    mock.fail_next["externalcontact/mark_tag"] = [45009, 45009, 45009]
    with pytest.raises(WeComError) as caught:
        client.post(
            "externalcontact/mark_tag",
            {"userid": "zhangsan", "external_userid": "wmCUST1", "add_tag": ["etCORE"]},
        )
    assert caught.value.errcode == 45009 and caught.value.outcome == "retry"
    assert not caught.value.permanent  # the outbox tries the action again later


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(48002, "park"), (41051, "fail"), (84061, "fail"), (40068, "fail"), (99999, "fail")],
)
def test_documented_codes_park_or_fail_at_once_with_wecoms_errmsg(
    api: tuple[WeComApi, list[float]], mock: MockWeCom, code: int, outcome: str
) -> None:
    client, slept = api
    mock.fail_next["externalcontact/mark_tag"] = [code]
    with pytest.raises(WeComError) as caught:
        client.post(
            "externalcontact/mark_tag",
            {"userid": "zhangsan", "external_userid": "wmCUST1", "add_tag": ["etCORE"]},
        )
    assert caught.value.outcome == outcome and caught.value.permanent
    assert f"errcode {code}" in str(caught.value) and "hint" in str(caught.value)
    assert slept == [] and mock.paths().count("externalcontact/mark_tag") == 1


def test_a_wrong_secret_parks_and_no_token_reaches_an_error_message(mock: MockWeCom) -> None:
    with serving(mock) as url:
        client = WeComApi(CORP_ID, "not-the-secret", base_url=url)
        with pytest.raises(WeComError) as caught:
            client.post("externalcontact/mark_tag", {})
        client.close()
    assert caught.value.errcode == 40001 and caught.value.outcome == "park"
    assert "not-the-secret" not in str(caught.value)


def test_an_unreachable_server_is_retried_then_left_to_the_outbox() -> None:
    slept: list[float] = []
    client = WeComApi(CORP_ID, SECRET, base_url="http://127.0.0.1:9", sleep=slept.append, timeout=2)
    with pytest.raises(WeComError) as caught:
        client.token()
    client.close()
    assert caught.value.outcome == "retry" and len(slept) == 2


def test_media_upload_answers_the_media_id(api: tuple[WeComApi, list[float]], mock: MockWeCom) -> None:
    client, _ = api
    assert client.upload("image", "cover.png", b"\x89PNG...").startswith("MEDIA_")
    assert mock.bodies("media/upload") == [{"type": "image", "size": 7}]


MASS_SEND = {
    "chat_type": "single",
    "external_userid": ["wmCUST1"],
    "sender": "zhangsan",
    "text": {"content": "hi"},
}


def test_a_mass_send_whose_answer_is_lost_is_not_sent_again(mock: MockWeCom) -> None:
    """WeCom queued the first request, then the answer timed out: a second would be a second mass
    send for staff to confirm, and customers could get the message twice."""
    slept: list[float] = []
    with serving(mock, late={"externalcontact/add_msg_template": 0.6}) as url:
        client = WeComApi(CORP_ID, SECRET, base_url=url, timeout=0.2, sleep=slept.append)
        with pytest.raises(WeComError) as caught:
            client.post("externalcontact/add_msg_template", MASS_SEND)
        client.close()
    assert caught.value.outcome == "unknown" and caught.value.permanent  # the outbox does not retry it
    assert "ReadTimeout" in str(caught.value) and "not sent again" in str(caught.value)
    assert slept == [] and len(mock.bodies("externalcontact/add_msg_template")) == 1


def test_a_call_safe_to_repeat_whose_answer_is_lost_is_tried_again(mock: MockWeCom) -> None:
    slept: list[float] = []
    with serving(mock, late={"externalcontact/mark_tag": 0.6}) as url:
        client = WeComApi(
            CORP_ID, SECRET, base_url=url, timeout=0.2, sleep=slept.append, policy=RetryPolicy(2, 1.0, 10.0)
        )
        with pytest.raises(WeComError) as caught:
            client.post(
                "externalcontact/mark_tag",
                {"userid": "zhangsan", "external_userid": "wmCUST1", "add_tag": ["etCORE"]},
            )
        client.close()
    assert caught.value.outcome == "retry" and not caught.value.permanent
    assert slept == [1.0] and len(mock.bodies("externalcontact/mark_tag")) == 2


def test_a_mass_send_that_surely_did_not_reach_wecom_is_tried_again(mock: MockWeCom) -> None:
    """A refused connection, or a busy answer (-1): WeCom did nothing, so sending again is safe."""
    slept: list[float] = []
    with serving(mock) as url:
        client = WeComApi(CORP_ID, SECRET, base_url=url, sleep=slept.append, policy=RetryPolicy(3, 1.0, 10.0))
        mock.fail_next["externalcontact/add_msg_template"] = [-1]
        assert client.post("externalcontact/add_msg_template", MASS_SEND)["msgid"]
    # The token is cached; the server is gone, so each attempt's connection is refused.
    with pytest.raises(WeComError) as caught:
        client.post("externalcontact/add_msg_template", MASS_SEND)
    client.close()
    assert caught.value.outcome == "retry" and "ConnectError" in str(caught.value)
    assert slept == [1.0, 1.0, 2.0]  # the -1, then the two refused connections tried again


def test_every_call_the_executors_make_says_whether_it_may_be_repeated() -> None:
    from sopdsl.live.wecom.api import REPEATABLE, repeatable

    assert REPEATABLE["externalcontact/add_msg_template"] is False
    assert REPEATABLE["externalcontact/send_welcome_msg"] is False
    assert repeatable("message/send", {"enable_duplicate_check": 1})  # a task's: WeCom drops the repeat
    assert not repeatable("message/send", {"touser": "xiaomei"})  # the operator's: it would go twice
    assert not repeatable("externalcontact/some_new_call")  # not listed: not repeated
