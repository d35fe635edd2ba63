"""Executors from a configuration file: for each kind of action, a webhook or a log line.

Input: a YAML (`.yaml`, `.yml`) or TOML (`.toml`) file mapping action kinds to executors.
Output: a mapping from action kind (or custom action name) to `Executor`, as the `Runtime` takes
it. Every mistake in the file is reported together, each at its line and column, before anything
runs:

    default: log                      # kinds not listed (log when omitted)
    send:
      webhook: https://bot.example.com/sopdsl
      secret_env: SOPDSL_WEBHOOK_SECRET
      timeout: 5
      previous_secret_env: SOPDSL_WEBHOOK_SECRET_OLD   # optional, while rotating the secret
    call.crm_note: log                # one custom action, by the name the playbook declares
    tag: wecom                        # through the WeCom app of the `wecom` table
    wecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}   # see sopdsl/live/wecom/settings.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import threading
import tomllib
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.errors import SopdslError
from sopdsl.kinds import ACTIONS
from sopdsl.live.dispatch import payload
from sopdsl.live.redact import redact_url
from sopdsl.live.webhook import Webhook
from sopdsl.live.wecom.executor import KINDS as WECOM_KINDS  # what `KIND: wecom` may name
from sopdsl.live.wecom.executor import WeComExecutor
from sopdsl.plan import Plan
from sopdsl.textfiles import toml_error

Executor = Callable[[Action, str], None]

KINDS = tuple(ACTIONS)  # from the registry of kinds
_CALL_PREFIX = "call."
_WECOM = "wecom"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a configuration file, at a line and column (1-based; 0 when unknown)."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{where}: error: {self.message}"


class ExecutorConfigError(SopdslError, ValueError):
    """An executor configuration file has mistakes; `problems` holds every one, located."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class WebhookSpec(BaseModel):
    """A webhook entry of the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook: str
    secret_env: str
    timeout: float = Field(default=5.0, gt=0, le=120)
    retries: int = Field(default=2, ge=0, le=10)
    backoff: float = Field(default=0.5, ge=0, le=60)
    headers: dict[str, str] = {}
    previous_secret_env: str | None = None  # while rotating: also sign with the old secret

    @field_validator("headers")
    @classmethod
    def _one_line(cls, headers: dict[str, str]) -> dict[str, str]:
        # HTTP refuses a header with a line break: every send would fail, retried, then parked.
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\x00") or not name.strip():
                raise ValueError(f"header {name!r}: a header's name and value are one line of text")
        return headers


_SETTINGS = tuple(WebhookSpec.model_fields)


def log_executor(zone: ZoneInfo, out: TextIO | None = None) -> Executor:
    """An executor that prints each action as one JSON line (to stdout unless `out` is given)."""
    lock = threading.Lock()

    def log(action: Action, key: str) -> None:
        line = json.dumps(payload(action, key, zone), ensure_ascii=False, sort_keys=True)
        stream = out if out is not None else sys.stdout
        with lock:
            stream.write(line + "\n")
            stream.flush()

    return log


def default_executors(zone: ZoneInfo, out: TextIO | None = None) -> dict[str, Executor]:
    """Every action kind logged as a JSON line: what `sopdsl run` uses without `--executors`."""
    log = log_executor(zone, out)
    return dict.fromkeys(KINDS, log)


def operator_sends(plan: Plan) -> list[str]:
    """Where the plan's playbooks send to the operator (`send … to operator`), in order: what an
    executor may need more settings for (WeCom: an app's agent_id)."""
    return [
        instr.loc
        for pb in plan.playbooks
        for code in (pb.code, *(entry.code for entry in pb.schedule))
        for instr in code
        if isinstance(instr.action, lang.SendStep) and instr.action.target == "operator"
    ]


def refusals(executors: Mapping[str, Any], plan: Plan) -> list[str]:
    """What the executors, as configured, cannot do for `plan` (as the file would be refused for
    it at load time): a reload to such a plan is refused."""
    sends = operator_sends(plan)
    found = []
    for kind, executor in executors.items():
        if isinstance(executor, WeComExecutor) and (why := executor.unable(kind, sends)) is not None:
            found.append(why)
    return found


def load_executors(
    path: str | Path,
    *,
    zone: ZoneInfo,
    actions: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    plan: Plan | None = None,
) -> dict[str, Executor]:
    """Read an executor file; `actions` (the plan's custom actions) checks `call.NAME` entries, and
    `plan` what its sends need of an executor (`operator_sends`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ExecutorConfigError([Problem(str(path), 0, 0, f"cannot read the file: {reason}")]) from None
    sends = operator_sends(plan) if plan is not None else ()
    return parse_executors(
        text, str(path), zone=zone, actions=actions, environ=environ, out=out, operator_sends=sends
    )


def parse_executors(
    text: str,
    path: str,
    *,
    zone: ZoneInfo,
    actions: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    operator_sends: Sequence[str] = (),
) -> dict[str, Executor]:
    """Build executors from the text of a configuration file; `path` names it in errors (and picks
    the format); `operator_sends`: where the plan sends to the operator (`operator_sends`)."""
    env = os.environ if environ is None else environ
    locate = _Locator.parse(text, path)
    data = locate.data
    if not isinstance(data, dict):
        raise ExecutorConfigError(
            [Problem(path, 1, 1, "expected a table of action kinds, such as `send: log`")]
        )
    declared = None if actions is None else set(actions)
    problems: list[Problem] = []
    built: dict[str, Executor] = {}
    log = log_executor(zone, out)
    wecom = _wecom(data, env, locate, problems)
    for raw_key, value in data.items():
        key = str(raw_key)
        line, column = locate.key(key)
        if key == _WECOM:
            continue
        wrong = [] if key == "default" or key in KINDS else _check_kind(key, declared, path, line, column)
        if wrong:
            problems.extend(wrong)
            continue
        if value == _WECOM:
            if key not in WECOM_KINDS:
                problems.append(Problem(path, line, column, _not_wecom(key)))
            elif _WECOM not in data:
                problems.append(
                    Problem(
                        path, line, column, f"{key}: wecom needs a `wecom` table (corpid_env, secret_env)"
                    )
                )
            elif wecom is not None:
                unable = wecom.unable(key, operator_sends)  # what it cannot do as configured: said now
                if unable is not None:
                    problems.append(Problem(path, line, column, unable))
                else:
                    built[key] = wecom
            continue
        executor = _build(key, value, zone, env, log, locate, problems)
        if executor is not None:
            built[key] = executor
    if problems:
        raise ExecutorConfigError(problems)
    fallback = built.pop("default", log)
    executors = {kind: built.get(kind, fallback) for kind in KINDS}
    # A custom action's own executor goes by its bare name, as the Runtime registers it.
    executors.update(
        {k.removeprefix(_CALL_PREFIX): v for k, v in built.items() if k.startswith(_CALL_PREFIX)}
    )
    return executors


def _wecom(
    data: dict[Any, Any], env: Mapping[str, str], locate: _Locator, problems: list[Problem]
) -> WeComExecutor | None:
    """The WeCom executor of the file's `wecom` table, if it has one (its mistakes go to `problems`)."""
    if _WECOM not in data:
        return None
    from sopdsl.live.wecom.settings import build

    root = Path(locate.path).resolve().parent
    executor, found = build(data[_WECOM], env, root)
    for setting, message in found:
        at = locate.field(_WECOM, setting) if setting else locate.key(_WECOM)
        problems.append(Problem(locate.path, *at, message))
    return executor


def _not_wecom(key: str) -> str:
    if key in ("kick", "dissolve"):
        # The finding: the official API cannot remove a customer-group member or dissolve the group.
        return (
            f"{key}: WeCom's API cannot {'remove a member from' if key == 'kick' else 'dissolve'} a customer "
            "group (dissolving is refused with 48002); declare `platform { cannot kick, dissolve }` so the engine "
            "makes them staff tasks, or send these to a webhook"
        )
    return f"{key}: the WeCom executor carries out {', '.join(WECOM_KINDS)}; route {key} elsewhere"


def _check_kind(key: str, declared: set[str] | None, path: str, line: int, column: int) -> list[Problem]:
    if key.startswith(_CALL_PREFIX):
        name = key.removeprefix(_CALL_PREFIX)
        if declared is None or name in declared:
            return []
        hint = _did_you_mean(name, declared)
        known = ", ".join(sorted(declared)) or "none"
        return [
            Problem(path, line, column, f"no custom action '{name}' in the plan{hint} (declared: {known})")
        ]
    hint = _did_you_mean(key, (*KINDS, "default"))
    return [
        Problem(
            path,
            line,
            column,
            f"unknown action kind '{key}'{hint}; expected one of {', '.join(KINDS)}, "
            "call.NAME for one custom action, or default",
        )
    ]


def _build(
    key: str,
    value: Any,
    zone: ZoneInfo,
    env: Mapping[str, str],
    log: Executor,
    locate: _Locator,
    problems: list[Problem],
) -> Executor | None:
    path = locate.path
    line, column = locate.key(key)
    if value == "log":
        return log
    if not isinstance(value, dict):
        problems.append(
            Problem(
                path,
                line,
                column,
                f"{key}: expected `log`, `wecom` or a table with `webhook` and `secret_env`, got {value!r}",
            )
        )
        return None
    if _WECOM in value:
        # `send: {wecom: {...}}`: else told of a webhook's missing settings, which it never wanted.
        at = locate.field(key, _WECOM)
        problems.append(
            Problem(
                path,
                *at,
                f"{key}: write `{key}: wecom`, and the app's credentials once, in a top-level `wecom` "
                "table (corpid_env, secret_env, ...; docs/service.md, WeCom)",
            )
        )
        return None
    try:
        spec = WebhookSpec.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            at = locate.field(key, field) if field else (line, column)
            message = _explain(error, field)
            if key == "call" and error["type"] == "extra_forbidden":
                message += f'; for one custom action write the key as "call.{field}" (quoted in TOML)'
            problems.append(Problem(path, *at, f"{key}: {message}"))
        return None
    try:
        url = urllib.parse.urlsplit(spec.webhook)
    except ValueError:  # an unclosed IPv6 bracket, say
        url = urllib.parse.urlsplit("")
    if url.scheme not in ("http", "https") or not url.netloc:
        at = locate.field(key, "webhook")
        problems.append(
            Problem(
                path,
                *at,
                f"{key}: webhook must be an http:// or https:// URL, got {redact_url(spec.webhook)!r}",
            )
        )
        return None
    secret = env.get(spec.secret_env, "")
    if not secret:
        at = locate.field(key, "secret_env")
        problems.append(
            Problem(
                path,
                *at,
                f"{key}: the environment variable {spec.secret_env} (the webhook's signing secret) is not set",
            )
        )
        return None
    previous = env.get(spec.previous_secret_env, "") if spec.previous_secret_env else ""
    if spec.previous_secret_env and not previous:
        at = locate.field(key, "previous_secret_env")
        problems.append(
            Problem(
                path,
                *at,
                f"{key}: the environment variable {spec.previous_secret_env} (the webhook's previous "
                "signing secret) is not set; drop previous_secret_env once receivers use the new secret",
            )
        )
        return None
    return Webhook(
        url=spec.webhook,
        secret=secret.encode("utf-8"),
        previous_secrets=(previous.encode("utf-8"),) if previous else (),
        zone=zone,
        timeout=spec.timeout,
        retries=spec.retries,
        backoff=spec.backoff,
        headers=dict(spec.headers),
    )


def _explain(error: Any, field: str) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown setting '{field}'{_did_you_mean(field, _SETTINGS)}; settings: {', '.join(_SETTINGS)}"
    if kind == "missing" and field == "secret_env":
        return "a webhook needs `secret_env`, the environment variable that holds its signing secret"
    if kind == "missing":
        return f"a webhook needs `{field}`"
    if kind == "value_error":  # our own validators' words, as written
        return f"{field}: {str(error['msg']).removeprefix('Value error, ')}"
    return f"{field}: {error['msg'].lower()}"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass
class _Locator:
    """The parsed data of a file, and where each key and setting is written in it."""

    path: str
    data: Any
    keys: dict[str, tuple[int, int]]
    fields: dict[tuple[str, str], tuple[int, int]]

    @classmethod
    def parse(cls, text: str, path: str) -> _Locator:
        if path.endswith(".toml"):
            return cls._toml(text, path)
        return cls._yaml(text, path)

    @classmethod
    def _yaml(cls, text: str, path: str) -> _Locator:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
            raise ExecutorConfigError([Problem(path, line, column, f"not valid YAML: {problem}")]) from None
        keys: dict[str, tuple[int, int]] = {}
        fields: dict[tuple[str, str], tuple[int, int]] = {}
        twice: list[Problem] = []
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = str(key_node.value)
                at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in keys:
                    # YAML keeps the later one, silently: a webhook replaced by `log`, say.
                    twice.append(Problem(path, *at, f"{key}: set twice (first at line {keys[key][0]})"))
                keys[key] = at
                if isinstance(value_node, yaml.MappingNode):
                    for field_node, _ in value_node.value:
                        mark = field_node.start_mark
                        place = (mark.line + 1, mark.column + 1)
                        name = str(field_node.value)
                        if (key, name) in fields:
                            first = fields[(key, name)][0]
                            twice.append(
                                Problem(path, *place, f"{key}: {name} set twice (first at line {first})")
                            )
                        fields[(key, name)] = place
        if twice:
            raise ExecutorConfigError(twice)
        return cls(path, data, keys, fields)

    @classmethod
    def _toml(cls, text: str, path: str) -> _Locator:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line, column, message = toml_error(exc)
            raise ExecutorConfigError([Problem(path, line, column, f"not valid TOML: {message}")]) from None
        # tomllib keeps no positions: keys are found in the text, as `[kind]` headers or `kind =`.
        keys: dict[str, tuple[int, int]] = {}
        fields: dict[tuple[str, str], tuple[int, int]] = {}
        table: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            header = re.match(r"\s*\[\s*\"?([^\]\"]+)\"?\s*\]", raw)
            assign = re.match(r"(\s*)\"?([^=\"\s]+)\"?\s*=", raw)
            if header:
                table = header.group(1).strip()
                keys.setdefault(table, (number, raw.index("[") + 1))
            elif assign and table is None:
                keys.setdefault(assign.group(2), (number, len(assign.group(1)) + 1))
            elif assign and table is not None:
                fields.setdefault((table, assign.group(2)), (number, len(assign.group(1)) + 1))
        return cls(path, data, keys, fields)

    def key(self, key: str) -> tuple[int, int]:
        """Where a top-level key is written, or (0, 0)."""
        return self.keys.get(key, (0, 0))

    def field(self, key: str, field: str) -> tuple[int, int]:
        """Where a setting of a key's table is written, or else where the key is."""
        return self.fields.get((key, field), self.key(key))
