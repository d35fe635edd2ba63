"""A template's attachments and mentions to model: `with image "a.png"`, `with link …`, `mentioning member`.

Input: the `with …` and `mentioning …` of a template declaration, and the attachment files the
loader found (inside the project folder, existing). Output: the checked `lang` attachments and
mentions, or None after located diagnostics (SOP206): a known type, the options each type takes
and needs, http(s) URLs, at most `MAX_ATTACHMENTS`. Whether a send may mention anyone is a
question of the place it is sent from, checked with the send (`steps.py`, SOP207).
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Literal

from sopdsl.checker import model
from sopdsl.diagnostics import did_you_mean
from sopdsl.enums import ATTACHMENT_TYPES, AttachmentType
from sopdsl.syntax import nodes

if TYPE_CHECKING:
    from sopdsl.checker.context import Context

Kind = nodes.AttachmentOptionKind
_URL_HINT = "write the whole address, starting with https:// (or http://)"
# What each type takes after its first string, and which of those it needs.
_TAKES: dict[AttachmentType, tuple[Kind, ...]] = {
    "image": (),
    "file": (),
    "link": (Kind.URL, Kind.DESCRIPTION, Kind.COVER),
    "miniprogram": (Kind.APPID, Kind.PAGE, Kind.COVER),
}
_NEEDS: dict[str, tuple[Kind, ...]] = {
    "link": (Kind.URL,),
    "miniprogram": (Kind.APPID, Kind.PAGE, Kind.COVER),
}
_EXAMPLES = {
    "image": 'with image "posters/class.png" (or: with image media "MEDIA_ID")',
    "file": 'with file "docs/rules.pdf" (or: with file media "MEDIA_ID")',
    "link": 'with link "标题" to "https://…" description "…" cover "https://…/cover.png"',
    "miniprogram": 'with miniprogram "标题" appid "wx…" page "pages/index/index" cover "covers/a.png"',
}

Checked = tuple[tuple[model.Attachment, ...], tuple[Literal["member"], ...]]


def extras(ctx: Context, decl: nodes.TemplateDecl) -> Checked | None:
    """The checked attachments and mentions of a template, or None after reporting its mistakes."""
    found: list[model.Attachment] = []
    mentions: list[Literal["member"]] = []
    ok = True
    for extra in decl.extras:
        if isinstance(extra, nodes.Mention):
            ok = _mention(ctx, extra, mentions) and ok
            continue
        checked = _attachment(ctx, extra, decl.span.path)
        if checked is None:
            ok = False
        elif len(found) == model.MAX_ATTACHMENTS:
            ctx.error(
                "SOP206",
                f"template '{decl.name.text}' has more than {model.MAX_ATTACHMENTS} attachments",
                extra.span,
                f"WeCom sends at most {model.MAX_ATTACHMENTS} with a message: split it into two templates",
            )
            ok = False
        else:
            found.append(checked)
    return (tuple(found), tuple(mentions)) if ok else None


def _mention(ctx: Context, mention: nodes.Mention, mentions: list[Literal["member"]]) -> bool:
    if mention.who.text != "member":
        hint = did_you_mean(mention.who.text, ["member"]) or "a group send can @-mention its member"
        ctx.error("SOP206", f"cannot mention '{mention.who.text}'", mention.who.span, hint)
        return False
    if mentions:
        ctx.warning("SOP206", "the member is mentioned twice", mention.span, "mention them once")
        return True
    mentions.append("member")
    return True


def _attachment(ctx: Context, node: nodes.Attachment, path: str) -> model.Attachment | None:
    kind = node.kind.text
    if kind not in _TAKES:
        ctx.error(
            "SOP206",
            f"unknown attachment type '{kind}'",
            node.kind.span,
            did_you_mean(kind, ATTACHMENT_TYPES) or f"attachments are {', '.join(ATTACHMENT_TYPES)}",
        )
        return None
    options: dict[Kind, nodes.AttachmentOption] = {}
    ok = True
    for option in node.options:
        if option.kind not in _TAKES[kind]:
            takes = ", ".join(f"`{k.value}`" for k in _TAKES[kind]) or "nothing after its file"
            ctx.error(
                "SOP206",
                f"{_a(kind)} attachment takes no `{option.kind.value}`",
                option.span,
                f"{_a(kind)} takes {takes}: {_EXAMPLES[kind]}",
            )
            ok = False
        elif option.kind in options:
            ctx.error("SOP206", f"`{option.kind.value}` is given twice", option.span, "keep one")
            ok = False
        else:
            options[option.kind] = option
    for needed in _NEEDS.get(kind, ()):
        if needed not in options:
            ctx.error("SOP206", f"{_a(kind)} attachment needs `{needed.value}`", node.span, _EXAMPLES[kind])
            ok = False
    if kind in ("link", "miniprogram") and node.first.by_id:
        ctx.error(
            "SOP206", f"a {kind} card starts with its title, not a media id", node.first.span, _EXAMPLES[kind]
        )
        ok = False
    if not ok:
        return None
    return _build(ctx, kind, node, options, path)


def _build(
    ctx: Context, kind: str, node: nodes.Attachment, options: dict[Kind, nodes.AttachmentOption], path: str
) -> model.Attachment | None:
    text = {k: o.value.value for k, o in options.items() if isinstance(o.value, nodes.Str)}
    if kind in ("image", "file"):
        where = _media(ctx, node.first, path)
        if where is None:
            return None
        cls = model.ImageAttachment if kind == "image" else model.FileAttachment
        return cls(path=where[0], media_id=where[1])
    title = _text(ctx, node.first.value, f"the {kind} card's title")
    if kind == "link":
        url = _url(ctx, options[Kind.URL].value)
        cover = options.get(Kind.COVER)
        picture = None
        if cover is not None:
            if isinstance(cover.value, nodes.Media) and cover.value.by_id:
                ctx.error(
                    "SOP206",
                    "a link card's cover is a picture's address, not a media id",
                    cover.value.span,
                    _URL_HINT,
                )
                return None
            picture = _url(ctx, cover.value.value if isinstance(cover.value, nodes.Media) else cover.value)
            if picture is None:
                return None
        if title is None or url is None:
            return None
        return model.LinkAttachment(
            title=title, url=url, description=text.get(Kind.DESCRIPTION), cover=picture
        )
    cover_media = options[Kind.COVER].value
    where = _media(ctx, cover_media, path) if isinstance(cover_media, nodes.Media) else None
    appid = _text(ctx, options[Kind.APPID].value, "the mini-program's appid")
    page = _text(ctx, options[Kind.PAGE].value, "the mini-program's page")
    if where is None or title is None or appid is None or page is None:
        return None
    if not appid.startswith("wx"):
        ctx.warning(
            "SOP206",
            f"'{appid}' does not look like a mini-program's appid",
            options[Kind.APPID].span,
            "an appid starts with wx (the mini-program's 开发设置 page shows it)",
        )
    return model.MiniProgramAttachment(title=title, appid=appid, page=page, path=where[0], media_id=where[1])


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _media(ctx: Context, media: nodes.Media, path: str) -> tuple[str | None, str | None] | None:
    """(path relative to the project folder, None) or (None, media id); None if the loader reported it."""
    if media.by_id:
        found = _text(ctx, media.value, "a media id")
        return None if found is None else (None, found)
    key = media.value.value + "@" + path
    if key not in ctx.loaded.attachment_files:  # a program loaded without the loader's file checks
        ctx.error("SOP001", f"the attachment '{media.value.value}' was not looked for", media.value.span)
        return None
    relative = ctx.loaded.attachment_files[key]
    return None if relative is None else (relative, None)


def _text(ctx: Context, value: nodes.Str | nodes.Media, what: str) -> str | None:
    text = value.value if isinstance(value, nodes.Str) else value.value.value
    if text.strip() and "\n" not in text:
        return text
    ctx.error(
        "SOP206", f"{what} is empty" if not text.strip() else f"{what} is more than one line", value.span
    )
    return None


def _url(ctx: Context, value: nodes.Str | nodes.Media) -> str | None:
    text = value.value if isinstance(value, nodes.Str) else value.value.value
    parts = urllib.parse.urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in text):
        return text
    ctx.error("SOP206", f"'{text}' is not an http(s) address", value.span, _URL_HINT)
    return None
