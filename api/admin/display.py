"""How values read on the admin panel's pages, for operations staff rather than engineers:
amounts with their token (``10 STRIDE``, not ``10.000000000000000000`` or ``0E-18``), JSON as
JSON (not Python's ``{'level': None}``), the all-time period as "All time" (not 1970), links
to related rows with their names, and an audit row as the fields it changed.

Pure functions of values and URLs; every value is escaped (``markupsafe``). Exports do not
use them: a CSV or JSON file keeps plain values (see ``api.admin.views``).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from api.admin.audit import FieldChange
from core.leaderboards.rules import EPOCH

LIST_JSON_CHARS = 80  # a JSON value in a list cell is cut to this, the whole shows on hover
ALL_TIME = "All time"


def plain_decimal(value: Decimal) -> str:
    """A decimal in plain notation without trailing zeros: ``10``, ``0``, ``0.5``, ``1000``."""
    if not value.is_finite():
        return str(value)
    normalized = value.normalize()
    return format(normalized, "f") if normalized != 0 else "0"


def amount_text(value: Decimal | int | float | None, token: str | None) -> str:
    """``10 STRIDE``, ``1,234.5 STRIDE``, ``0 STRIDE``: grouped digits, no trailing zeros."""
    if value is None:
        return ""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if number.is_finite():
        shown = format(number.normalize(), ",f") if number != 0 else "0"
    else:
        shown = str(number)
    return f"{shown} {token}" if token else shown


def json_text(value: Any, *, indent: int | None = None) -> str:
    """A JSON value as JSON (``null``, double quotes), keys in their stored order."""
    separators = None if indent else (", ", ": ")
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str, separators=separators)


def shortened(text: str, limit: int = LIST_JSON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_cell(value: Any) -> Markup:
    """A JSON value in a list: one line, cut, the whole of it in the tooltip."""
    if value is None:
        return Markup("")
    whole = json_text(value)
    return Markup('<code class="stride-json" title="{}">{}</code>').format(whole, shortened(whole))


def json_block(value: Any) -> Markup:
    """A JSON value on a detail page: indented, wrapped, scrolled when long."""
    if value is None or value == {} or value == []:
        return Markup('<span class="text-secondary">none</span>')
    return Markup('<pre class="stride-json-block">{}</pre>').format(json_text(value, indent=2))


def period_text(value: datetime | None) -> str:
    """The start of a leaderboard period: "All time" for the all-time board's 1970 start."""
    if value is None:
        return ""
    if value == EPOCH:
        return ALL_TIME
    return f"{value:%Y-%m-%d %H:%M} UTC" if value.utcoffset() is not None else f"{value}"


def time_text(value: datetime) -> str:
    """A moment in UTC to the second, as lists show it: ``2026-12-01 14:35:34 UTC``."""
    if value.utcoffset() is None:
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def precise_time_text(value: datetime) -> str:
    """A moment in UTC to the millisecond, as a row's detail page shows it."""
    if value.utcoffset() is None:
        return value.isoformat(sep=" ", timespec="milliseconds")
    return value.astimezone(UTC).isoformat(sep=" ", timespec="milliseconds")[:-6] + " UTC"


def identifier(values: Sequence[Any]) -> str:
    """A row's primary key as sqladmin spells it in URLs (``;`` between parts, escaped)."""
    parts = [str(v.value if isinstance(v, enum.Enum) else v) for v in values]
    if len(parts) == 1:
        return parts[0]
    return ";".join(p.replace("\\", "\\\\").replace(";", r"\;") for p in parts)


def details_url(root: str, identity: str, key: Sequence[Any]) -> str:
    """The detail page of a row: ``{root}/{identity}/details/{pk}`` (``root`` is ``/admin``'s
    URL without the trailing slash)."""
    return f"{root}/{identity}/details/{quote(identifier(key), safe=';:@+')}"


def list_url(root: str, identity: str, equals: Iterable[tuple[str, Any]] = ()) -> str:
    """A table's list, filtered to the rows whose columns equal the given values."""
    params: list[tuple[str, str]] = []
    for column, value in equals:
        params += [(column, str(value)), (f"{column}_op", "equals")]
    return f"{root}/{identity}/list" + (f"?{urlencode(params)}" if params else "")


# Colours of a reward command's status: what needs a look (failed) stands out.
STATUS_COLOURS = {"pending": "yellow", "submitted": "blue", "confirmed": "green", "failed": "red"}


def status_badge(value: Any) -> Markup | str:
    """A status as a coloured badge (its text unchanged)."""
    if value is None:
        return ""
    text = str(value.value if isinstance(value, enum.Enum) else value)
    colour = STATUS_COLOURS.get(text, "secondary")
    return Markup('<span class="badge bg-{}-lt">{}</span>').format(colour, text)


def short_id(value: Any) -> Markup | str:
    """A UUID in a list: its first 8 characters, the whole of it on hover (and on the row's
    page); anything else as it is."""
    if not isinstance(value, uuid.UUID):
        return str(value)
    whole = str(value)
    return Markup('<span title="{}">{}…</span>').format(whole, whole[:8])


def link(href: str, text: Any, note: Any = "", title: str = "") -> Markup:
    """A link, with a grey note beside it (the id beside a name)."""
    if title and title != str(text):
        anchor = Markup('<a href="{}" title="{}">{}</a>').format(href, title, text)
    else:
        anchor = Markup('<a href="{}">{}</a>').format(href, text)
    if note and str(note) != str(text):
        return anchor + Markup(' <span class="text-secondary small">{}</span>').format(note)
    return anchor


def related_links(links: Iterable[tuple[str, str]]) -> Markup:
    """The "see also" buttons of a detail page: (label, URL) pairs."""
    return Markup(" ").join(
        Markup('<a class="btn btn-outline-primary btn-sm me-2 mb-2" href="{}">{}</a>').format(
            href, label
        )
        for label, href in links
    )


def _value_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json_text(value)
    return str(value)


def diff_markup(changes: Sequence[FieldChange], *, action: str, compact: bool) -> Markup:
    """The fields an admin change touched, ``before → after``. In a list (``compact``) one
    line per field, long values cut; on a detail page a table."""
    if not changes:
        return Markup('<span class="text-secondary">no field changed</span>')
    absent = Markup('<span class="text-secondary">—</span>')

    def shown(value: Any, present: bool) -> Markup:
        if not present:
            return absent
        if value is None:
            return Markup('<span class="text-secondary fst-italic">empty</span>')
        text = _value_text(value)
        return Markup("<code>{}</code>").format(shortened(text, 40) if compact else text)

    if compact:
        lines = [
            Markup("<div><strong>{}</strong>: {} → {}</div>").format(
                c.field, shown(c.before, c.had_before), shown(c.after, c.has_after)
            )
            for c in changes[:6]
        ]
        if len(changes) > 6:
            lines.append(
                Markup('<div class="text-secondary">and {} more fields</div>').format(
                    len(changes) - 6
                )
            )
        return Markup('<div class="stride-diff" data-action="{}">{}</div>').format(
            action, Markup("").join(lines)
        )
    rows = Markup("").join(
        Markup("<tr><td>{}</td><td>{}</td><td>{}</td></tr>").format(
            c.field, shown(c.before, c.had_before), shown(c.after, c.has_after)
        )
        for c in changes
    )
    return Markup(
        '<table class="table table-sm stride-diff mb-0" data-action="{}">'
        "<thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>"
        "<tbody>{}</tbody></table>"
    ).format(action, rows)


def whole_row(snapshot: Mapping[str, Any] | None, summary: str) -> Markup:
    """A whole audited row, folded away behind ``summary``."""
    if snapshot is None:
        return Markup('<span class="text-secondary">none</span>')
    return Markup("<details><summary>{}</summary>{}</details>").format(
        summary, json_block(dict(snapshot))
    )
