"""Diagnostics: the values every phase reports a user's mistakes with, and their rendering.

Input: a code, a message, a span and an optional hint. Output: compiler-style text
(`path:line:col: error[SOP104]: ...` with the source line and a caret) or JSON for editors.
"""

from __future__ import annotations

import difflib
import enum
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sopdsl.source import Source, Span


class Severity(enum.Enum):
    """How bad a diagnostic is. Errors stop a plan from being built; warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One mistake in the user's input, with where it is and what to do about it."""

    code: str
    severity: Severity
    message: str
    span: Span
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        """Whether this diagnostic stops compilation."""
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with 1-based line and column numbers."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.span.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class Code:
    """A stable diagnostic code with its one-line title and a longer explanation."""

    code: str
    title: str
    explanation: str


def _codes(*entries: tuple[str, str, str]) -> dict[str, Code]:
    return {code: Code(code, title, text) for code, title, text in entries}


CODES: Mapping[str, Code] = _codes(
    ("SOP001", "file cannot be read", "The file does not exist or cannot be opened. Check the path."),
    (
        "SOP002",
        "file is not UTF-8",
        "Playbook files must be saved as UTF-8 text (most editors call it 'UTF-8').",
    ),
    (
        "SOP003",
        "file is binary",
        "The file contains NUL bytes; it is not a text file. Did you pass the wrong file?",
    ),
    (
        "SOP004",
        "file too large",
        "Playbook files are limited in size so a mistake cannot stall CI. Split the file with `include`.",
    ),
    (
        "SOP005",
        "include cycle",
        "Files include each other in a loop. Move the shared declarations into one file that both include.",
    ),
    (
        "SOP006",
        "file outside the project folder",
        "`include`, `template NAME = file` and a template's attachment files may only name files inside the project folder: the folder "
        "of the playbook file given to sopdsl (or the folder given, when sopdsl is given a folder), and "
        "its subfolders. Links are followed before this check, so a link inside the folder that points "
        "outside it is refused too. The file is not read. To share files between folders, move them "
        "into one folder, or declare a project folder that holds them all: `sopdsl check --root DIR` "
        "(every command that reads playbooks takes `--root`), or `load(path, root=DIR)` in Python.",
    ),
    (
        "SOP007",
        "text is not valid Unicode",
        "The text or a file name holds a lone surrogate (U+D800 to U+DFFF), which is not a character "
        "and cannot be saved as UTF-8. Files are always read as UTF-8, so this comes from a file name "
        "that is not UTF-8 (rename it) or from text passed to the Python API that was decoded with "
        "errors='surrogateescape' (decode it as UTF-8 instead).",
    ),
    (
        "SOP008",
        "invalid project file",
        "The project file (sopdsl.toml) cannot be read, or its [deploy] table is wrong: `files` and "
        "`exclude` are lists of file patterns relative to the project folder, `timezone` an IANA name. "
        "Every deployed playbook must declare the project's time zone.",
    ),
    (
        "SOP100",
        "syntax error",
        "The text does not follow the playbook grammar at this point. The hint lists what could come here.",
    ),
    (
        "SOP101",
        "unexpected character",
        'This character cannot start any word of the language. Strings need double quotes: "...". '
        "A full-width character a Chinese input method types (：，“ and the full-width space U+3000), or a "
        "space pasted from a web page or a chat (the no-break space U+00A0), is named with the ASCII "
        "character to type instead.",
    ),
    (
        "SOP102",
        "unexpected end of file",
        "The file ends in the middle of a statement, usually a missing `}` or an unfinished line.",
    ),
    (
        "SOP103",
        "nesting too deep",
        "Blocks or conditions are nested deeper than the language allows. Split the playbook.",
    ),
    (
        "SOP104",
        "unknown template",
        "`send NAME` must name a template declared with `template NAME = ...` in this file or an included one.",
    ),
    ("SOP105", "unknown calendar", "`at NAME` must name a calendar declared with `calendar NAME = ...`."),
    ("SOP106", "unknown group", "A group name must be declared with `group NAME ...`."),
    ("SOP107", "unknown coupon", "`grant NAME` must name a coupon declared with `coupon NAME ...`."),
    (
        "SOP108",
        "unknown attribute",
        "`member.X` must be a built-in field (name, nickname, joined_at, points, ...), a declared `attribute` or a `counter`.",
    ),
    (
        "SOP109",
        "unknown event",
        "`event NAME` must name an event declared with `event NAME { field: type }`.",
    ),
    (
        "SOP110",
        "unknown action",
        "`call NAME(...)` must name an action declared with `action NAME { field: type }`.",
    ),
    (
        "SOP111",
        "duplicate name",
        "Two declarations of the same kind share a name. Names must be unique across a file and its includes.",
    ),
    (
        "SOP112",
        "unknown word",
        "A unit, weekday or option word is not one the language knows. The hint suggests the closest.",
    ),
    ("SOP113", "unknown type", "Field and attribute types are: text, number, date, bool."),
    (
        "SOP114",
        "conflicting settings",
        "A playbook or policy states the same setting twice, or two settings that cannot both hold.",
    ),
    (
        "SOP115",
        "incomplete playbook",
        "A playbook needs a trigger (`on ...` or `at ...`) and steps (`do { ... }` or an `at` block).",
    ),
    (
        "SOP116",
        "wrong target",
        "The action cannot be aimed at this target here (for example `to member` in a group calendar entry).",
    ),
    (
        "SOP117",
        "invalid version or review",
        "`version`, `author` and `reviewed by` say which reviewed revision of an SOP a plan runs, and plans and action logs show them: each must be a non-empty text on one line, and a reviewer is named once. A playbook reviewed only by its own author gets a warning: a review needs a second person.",
    ),
    (
        "SOP118",
        "unknown holiday list",
        "`except NAME` and `date in NAME` must name a list declared with `holidays NAME = 2026-10-01..2026-10-07, ...`.",
    ),
    (
        "SOP125",
        "invalid goal",
        'A goal says what counts as a conversion of a playbook: `goal "下单" = member orders within 7 days`, optionally with a condition on the event (`when event.amount >= 100`) before `within`. Its name is a non-empty text on one line, and a playbook names each of its goals once.',
    ),
    (
        "SOP201",
        "template syntax error",
        "The template text is not valid Jinja2. Variables are written {{ member.name }}.",
    ),
    (
        "SOP202",
        "template variable never provided",
        "The template uses a variable that no place sending it can provide, so the message would break at send time. "
        "A `set` that reads the coupon (`set member.coupon_due = coupon.expires_at`) needs it as a template quoting "
        "the coupon does: a `grant` before it on every path to it.",
    ),
    (
        "SOP203",
        "template too long",
        "A message longer than one phone screen is rarely read; keep group messages short (scenario J1).",
    ),
    (
        "SOP204",
        "template reaches past its data",
        "Templates read variables, their fields and items, and use filters. They may not read a name starting with '_' (such as __class__), Python's internal attributes, or methods that change data (pop, update, append, ...), and may not call format or format_map, which read attributes by name; attr() and the attribute of map, sort, sum and the like take a name written in the template. Format values with the format filter instead: {{ '%.1f'|format(member.points) }}.",
    ),
    (
        "SOP205",
        "template computes too much",
        "A constant expression in the template would make a text or list over 64 KiB or a number over 4,096 bits ({{ 'a' * 10**9 }}, {{ 7**777777 }}). The same bounds hold when a message is rendered, with a bound on its output (64 KiB) and on its work (loops, calls and text made): a template over one fails, and its action fails with the bound named.",
    ),
    (
        "SOP206",
        "invalid attachment or mention",
        'A template\'s attachments go with its text: `with image "posters/a.png"` and `with file "docs/rules.pdf"` (files inside the project folder, or `media "MEDIA_ID"` for one already uploaded), `with link "标题" to "https://…"` (optionally `description "…"` and `cover "https://…"`, a picture\'s address), and `with miniprogram "标题" appid "wx…" page "pages/…" cover "covers/a.png"`. Each type takes only its own options, addresses are http(s), and WeCom sends at most 9 attachments with a message. `mentioning member` is the one mention: a group send @-mentions the member of the flow.',
    ),
    (
        "SOP207",
        "mention outside a group send",
        "A template `mentioning member` @-mentions the member in the group it is sent to: it can only be sent `to group`, from a place with a member (an event about a member, or `at CALENDAR for each member`). A private message cannot mention anyone.",
    ),
    (
        "SOP208",
        "message over the platform's size",
        "Where a `platform` is declared the playbooks go out through WeCom, which refuses a message to customers (a mass send, a welcome message) whose text is over 4,000 bytes in UTF-8, a link card's title over 128 bytes or its description over 512, a mini-program card's title over 64. Bytes, not characters: a Chinese character is 3 bytes, so 4,000 bytes are about 1,333 of them. A template whose fixed text alone is over is an error; one that can go over once its variables are filled in (numbers, dates: a text such as a member's name has no bound, so it is not counted) is a warning. Shorten it, or split it into two templates sent one after the other; a send over the limit fails at send time, naming the template. A message to staff (a task's text with the message it asks them to send, a send `to operator`) is a WeCom app message, which WeCom cuts at 2,048 bytes: one that is or can be over is a warning, at the task or the send.",
    ),
    ("SOP301", "invalid time", "Times are written HH:MM in 24-hour form, from 00:00 to 23:59."),
    ("SOP302", "invalid date", "Dates are written YYYY-MM-DD and must exist on the calendar."),
    (
        "SOP303",
        "unknown time zone",
        'Time zones are IANA names such as "Asia/Shanghai"; fixed offsets are not accepted because they ignore daylight saving.',
    ),
    (
        "SOP304",
        "invalid cron string",
        "A cron string has five fields: minute hour day-of-month month day-of-week.",
    ),
    (
        "SOP305",
        "invalid duration",
        "A duration is a positive whole number and a unit: minutes, hours, days, weeks, months or years.",
    ),
    ("SOP306", "empty time range", "The end of a range is not after its start."),
    (
        "SOP307",
        "no time zone",
        'Every playbook set needs `timezone "..."` (in the file or an include) so times mean one thing.',
    ),
    (
        "SOP401",
        "wait without timeout",
        "A member may never do what a wait expects, and the flow would wait forever. Give it a duration: `wait 3 days for member posts`.",
    ),
    ("SOP402", "unreachable step", "Steps after `kick` or `stop` in the same block can never run."),
    (
        "SOP403",
        "kick may hit a protected member",
        "The policy protects some tags from kicks, and nothing on this path excludes them. The engine will refuse such kicks; say so with `when member not tagged ...`.",
    ),
    ("SOP404", "split does not add up", "The arms of a split must add up to 100%."),
    ("SOP405", "invalid pattern", "The regular expression after `matches` does not compile."),
    ("SOP406", "type mismatch", "A value is compared with or assigned to something of another type."),
    (
        "SOP407",
        "wrong action arguments",
        "A custom action is called with arguments that do not match its declaration.",
    ),
    (
        "SOP408",
        "stock test on a coupon without stock",
        "`coupon X in stock` tests whether any of a coupon's declared stock is left. A coupon declared without `stock N` never runs out, so the test always holds (and `not in stock` never does).",
    ),
    (
        "SOP409",
        "arithmetic on something that is not a number",
        "`+`, `-`, `*` and `/` work on numbers: counters, number attributes, number fields of the event "
        "and literals (`member.points + 10`, `event.amount * 0.1`). Text, dates and true/false cannot "
        "take part, and a literal `/ 0` is refused. At run time, a division by a field that is 0, or a "
        "result too large for a number, fails that member's test or step visibly (a failed `when`, `if`, "
        "`set` or `call` record) and leaves the field as it was; an unset operand makes the result unset, "
        "so a test reading it is false.",
    ),
    (
        "SOP410",
        "yearly trigger that runs once",
        "`on member.birthday at 09:00` comes every year, but a playbook runs once per member unless it "
        "says otherwise: without `repeat always` (or `repeat after 300 days`) the member gets the "
        "first year's greeting and never another. Write `repeat always`, or `repeat once` if once is meant.",
    ),
    (
        "SOP501",
        "invalid policy",
        "A policy rule names something the engine cannot limit. Caps are `at most N sends|kicks|coupons|invites per member|group per day|week|month`.",
    ),
    (
        "SOP415",
        "invalid control arm",
        "A split has at most one `control` arm, the holdout that gets nothing, and at least one arm that does something: the control is what the other arms are compared with.",
    ),
    ("SOP502", "invalid percentage", "Percentages lie between 0% and 100%."),
    (
        "SOP503",
        "invalid platform declaration",
        '`platform ["title"] { ... }` says once what the platform allows: `at most N messages per member per day|week|month [counting CHANNEL, tasks]` (its per-customer mass-message limit; what counts against it: sends via that channel, or every send to a member when none is named, and with `tasks` the messages staff are asked to send in tasks), `at most N attachments` (1 to 9), and `cannot kick, dissolve, invite` (what it cannot do for customer groups). A program declares one platform.',
    ),
    (
        "SOP504",
        "an action the platform cannot perform",
        "The `platform` declaration says the platform cannot perform this action for customer groups (WeCom's API cannot remove a customer from a customer group, nor dissolve one: 48002). The engine makes each such step a staff task for the group's operator instead, with what to do and why; the warning says so where the step is written.",
    ),
    (
        "SOP505",
        "a cap that lets nothing through",
        "`at most 0 ...` counts its sends (kicks, coupons, invites) and lets none of them through: with "
        "`else drop` each is dropped, and with `else defer` (the default) each waits for the next period, "
        "where the cap is 0 again, so it never goes out and a dry run's log shows nothing of it. To stop "
        "those actions, take their steps out or end the playbook with `active from … until …`.",
    ),
    (
        "SOP601",
        "fixture cannot be read",
        "The fixture file is not readable UTF-8 YAML (or a timeline line is not JSON), or it goes past a "
        "reader limit: lists and mappings nested more than 100 deep, YAML aliases repeating more than "
        "10,000 values. The message gives the line of the problem.",
    ),
    (
        "SOP602",
        "invalid fixture",
        "A fixture field is missing, misspelt or of the wrong type, or a time is not a date of the calendar, "
        "outside the years 1970 to 2200, or more than 20 years after the start. See docs/testing.md for "
        "the fixture format.",
    ),
    (
        "SOP603",
        "fixture refers to unknown things",
        "The fixture names a playbook file that does not exist (its `playbook`, or a file a `reload` entry loads), or a file to reload that does not check (its own diagnostics follow), or its events are out of time order.",
    ),
    (
        "SOP604",
        "expectation names something unknown",
        "An expectation of a fixture names a template, tag, coupon, member, group, playbook, split arm, "
        "custom action or action kind that neither the playbooks nor the fixture define. An expectation "
        "that such a thing never happens holds whatever the playbooks do, so it is an error; elsewhere "
        "it is a warning, and the expectation fails.",
    ),
    (
        "SOP701",
        "playbooks trigger each other in a loop",
        "A playbook's action fires another playbook's trigger (a tag it listens for, a counter it watches), which in turn fires the first. When every playbook in the loop repeats always, the loop never ends (the engine stops it after 32 steps); otherwise it ends only because one of them runs once per member.",
    ),
    (
        "SOP702",
        "content mix below its minimum",
        'Over a sample of four weeks, the share of a group\'s scheduled sends whose templates carry the policy\'s tag is below the declared minimum (`at least 50% of sends tagged "activity" in groups tagged "content"`).',
    ),
    (
        "SOP703",
        "calendars exceed a cap",
        "The calendar entries alone schedule more sends than a cap allows in some day, week or month: to one group (a group cap), or to each member of a group (a member cap, from `for each member` entries and sends to members), counting only the cap's channel and template tags. Some of them will always be deferred or dropped. The calendars are sampled over a year (and from each calendar's and each campaign's own start; a campaign's sends count only inside its `active from … until …` window), and the message names the worst period found.",
    ),
    (
        "SOP704",
        "a cap can drop a send made on an event",
        'A playbook sends a template when something happens (a member joins, orders, posts), at any hour and any number of times, and a cap with `else drop` counts that send: once the cap is reached, the send is dropped and the member never gets it. Limit the cap to what it is meant for (`at most 3 sends of templates tagged "promo" per group per day`), or let it defer instead of drop.',
    ),
    (
        "SOP705",
        "a calendar entry or date trigger always sent in quiet hours",
        "A calendar entry fires at a time inside the policy's `quiet hours` every time it fires (`at 22:30`, `at every monday at 23:00`, a calendar's time shifted by an offset such as `sale_end - 24 hours`), so the engine holds each of its sends until the quiet hours end and the message arrives hours after the time the file says. The check fires each entry as the engine does, over a year from each calendar's start, in the zone of each group it runs in (a group's `timezone`, else the file's); where only some zones hold it, the groups are named. It is not made for sends on an event, whose time is not known ahead, nor for an entry that also does at that time something quiet hours do not hold (a tag, a count, a grant): then the time is chosen for that, and the send waiting for the morning is the policy at work. A date trigger at a fixed time (`on member.birthday at 23:00`, `on 1 day before member.coupon_due at 22:30`) whose playbook sends at once is judged the same way, on every day its date may be: the engine makes its instant in the file's zone and holds its sends in the zone of the member's group. Nothing lets a send through quiet hours; schedule the entry outside them, or at their end if that is when it should arrive.",
    ),
)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word`, if any is close enough to be a likely typo."""
    # One wrong character in a two- or three-character Chinese name scores only 0.5 to 0.67.
    cutoff = 0.5 if len(word) <= 3 else 0.6
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean` hint for a misspelt name, or None."""
    match = closest(word, candidates)
    return f"did you mean '{match}'?" if match else None


def render(diagnostic: Diagnostic, source: Source | None) -> str:
    """Render one diagnostic as a compiler would, quoting the source line under it."""
    span = diagnostic.span
    head = (
        f"{span.path}:{span.line}:{span.column}: "
        f"{diagnostic.severity.value}[{diagnostic.code}]: {diagnostic.message}"
    )
    lines = [head]
    if source is not None and span.line >= 1:
        text = source.line_text(span.line)
        if text or span.end > span.start:
            first = min(span.column - 1, len(text))
            width = span.end_column - span.column if span.end_line == span.line else len(text) - first
            shown, caret = _excerpt(text, first, max(width, 1))
            gutter = str(span.line)
            lines.append(f"   {gutter} | {shown}")
            lines.append(f"   {' ' * len(gutter)} | {caret}")
    if diagnostic.hint:
        lines.append(f"   hint: {diagnostic.hint}")
    return "\n".join(lines)


# A quoted line longer than this (in terminal columns) is cut down to the part around the caret.
_MAX_QUOTE = 100
_CONTEXT_BEFORE = 40


def _excerpt(text: str, first: int, width: int) -> tuple[str, str]:
    """The source line as shown (tabs expanded, controls masked, cut if long) and its caret line."""
    start, end = 0, len(text)
    if _display_width(text) > _MAX_QUOTE:
        start = max(0, first - _CONTEXT_BEFORE)
        end = start
        while end < len(text) and _display_width(text[start : end + 1]) <= _MAX_QUOTE:
            end += 1
    before = ("…" if start > 0 else "") + _printable(text[start:first])
    stop = min(first + width, end)
    marked = _printable(text[first:stop])
    # From the source's own offset: a tab in the mark is four characters once printed.
    after = _printable(text[stop:end]) + ("…" if end < len(text) else "")
    caret = " " * _display_width(before) + "^" * max(1, _display_width(marked))
    return before + marked + after, caret


def _printable(text: str) -> str:
    # Tabs become four spaces and control characters a visible mark, so the caret lines up and a
    # stray escape sequence in a file cannot garble the terminal.
    return "".join(
        "    " if ch == "\t" else "\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text
    )


def _display_width(text: str) -> int:
    # Chinese characters take two terminal columns; the caret must line up under them.
    return sum(4 if ch == "\t" else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
