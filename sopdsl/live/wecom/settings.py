"""The `wecom` table of an executors file: the WeCom app's credentials, tag ids and callback.

Input: the table as parsed, and the environment (secrets are named by variable, never written
in the file). Output: the `WeComExecutor` the file's `send: wecom` (and `tag`, `untag`) entries
share, with its `WeComCallback` when the callback's Token and EncodingAESKey are given; or the
mistakes, each naming its setting, for the executors file to locate:

    wecom:
      corpid_env: WECOM_CORPID
      secret_env: WECOM_SECRET                      # the 客户联系 secret, or an app's set for it
      callback_token_env: WECOM_CALLBACK_TOKEN      # both: mount the callback at /wecom/callback
      callback_aes_key_env: WECOM_CALLBACK_AES_KEY
      agent_id: 1000002                             # app messages: sends to an operator, staff tasks
      userids: {陈主管: chenzg}                      # staff names as playbooks write them -> userids
      tags: {core: etXXXXXXXX}                      # sopdsl tag name -> WeCom tag id
      media_root: ../playbooks                      # attachment files: the playbooks' project folder
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sopdsl.live.wecom.api import API, WeComApi
from sopdsl.live.wecom.executor import WeComExecutor

Problems = list[tuple[str, str]]  # (setting, message); "" for the table itself


class WeComSettings(BaseModel):
    """The `wecom` table of an executors file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpid_env: str
    secret_env: str
    api: str = API
    timeout: float = Field(default=10.0, gt=0, le=120)
    agent_id: int | None = None
    tags: dict[str, str] = {}
    userids: dict[str, str] = {}
    callback_token_env: str | None = None
    callback_aes_key_env: str | None = None
    callback_path: str = "/wecom/callback"
    # The folder a plan's attachment paths are relative to (the playbooks' project folder), itself
    # relative to the executors file; by default the executors file's own folder.
    media_root: str | None = None


SETTINGS = tuple(WeComSettings.model_fields)


def build(
    value: Any, environ: Mapping[str, str] | None = None, root: Path | None = None
) -> tuple[WeComExecutor | None, Problems]:
    """The executor of a `wecom` table, or the problems found in it."""
    env = os.environ if environ is None else environ
    if not isinstance(value, dict):
        return None, [("", f"wecom: expected a table with corpid_env and secret_env, got {value!r}")]
    try:
        settings = WeComSettings.model_validate(value)
    except ValidationError as exc:
        return None, [_explain(error) for error in exc.errors()]
    problems: Problems = []
    url = urllib.parse.urlsplit(settings.api)
    if url.scheme not in ("http", "https") or not url.netloc:
        problems.append(("api", f"wecom: api must be an http:// or https:// URL, got {settings.api!r}"))
    needed = {"corpid_env": settings.corpid_env, "secret_env": settings.secret_env}
    if (settings.callback_token_env is None) != (settings.callback_aes_key_env is None):
        problems.append(
            (
                "callback_token_env" if settings.callback_token_env is None else "callback_aes_key_env",
                "wecom: the callback needs both callback_token_env and callback_aes_key_env",
            ),
        )
    elif settings.callback_token_env is not None and settings.callback_aes_key_env is not None:
        needed |= {
            "callback_token_env": settings.callback_token_env,
            "callback_aes_key_env": settings.callback_aes_key_env,
        }
    values = {}
    for setting, variable in needed.items():
        values[setting] = env.get(variable, "")
        if not values[setting]:
            problems.append(
                (
                    setting,
                    f"wecom: the environment variable {variable} ({setting.removesuffix('_env')}) is not set",
                )
            )
    if problems:
        return None, problems
    api = WeComApi(
        values["corpid_env"], values["secret_env"], base_url=settings.api, timeout=settings.timeout
    )
    media = (root or Path.cwd()) / settings.media_root if settings.media_root is not None else root
    executor = WeComExecutor(
        api, tags=settings.tags, agent_id=settings.agent_id, userids=settings.userids, root=media
    )
    if "callback_token_env" in values:
        from sopdsl.live.wecom.callback import CallbackConfigError, WeComCallback, check_aes_key, check_path

        try:
            check_aes_key(values["callback_aes_key_env"])
        except CallbackConfigError as exc:
            api.close()
            return None, [("callback_aes_key_env", f"wecom: {settings.callback_aes_key_env}: {exc}")]
        try:
            check_path(settings.callback_path)
        except CallbackConfigError as exc:
            api.close()
            return None, [("callback_path", f"wecom: {exc}")]
        try:
            executor.callback = WeComCallback(
                token=values["callback_token_env"],
                aes_key=values["callback_aes_key_env"],
                corp_id=values["corpid_env"],
                contacts=executor.contacts,
                path=settings.callback_path,
                members=executor.group_members,
            )
        except CallbackConfigError as exc:  # wechatpy is not installed
            api.close()
            return None, [("callback_token_env", f"wecom: {exc}")]
    return executor, []


def receivers(executors: Iterable[Any]) -> list[Any]:
    """The WeCom callbacks of the executors built from a file, each once (for `Service(receivers=...)`)."""
    found: dict[int, Any] = {}
    for executor in executors:
        callback = getattr(executor, "callback", None) if isinstance(executor, WeComExecutor) else None
        if callback is not None:
            found.setdefault(id(callback), callback)
    return list(found.values())


def _explain(error: Any) -> tuple[str, str]:
    field = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return field, f"wecom: unknown setting '{field}'; settings: {', '.join(SETTINGS)}"
    if error["type"] == "missing":
        return field, f"wecom: the table needs `{field}`, the environment variable that holds it"
    return field, f"wecom: {field}: {error['msg'].lower()}"
