"""Values fitted to a width: what ``retrace show`` prints of each value.

A value is shown whole when it fits; otherwise it is cut where the text stays readable: between the
items of a container (``[0, 1, 2, … (47 more)]``), after a word of a long string
(``'a long text'… (300 more chars)``), never inside a token: ``Decimal('100.00')`` stays whole.

Values come decoded from a recording, or as text a recording holds (the ``repr`` it stored of a call's
return value, of a response's status, headers and body). Such text is parsed with :mod:`ast` (never
evaluated: a recording is untrusted input) into the same shapes and cut the same way; text that does not
parse (cut short when it was recorded) is cut after a word.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

MIN_ROOM = 12  # a part with less room than this is not begun: "… (N more)" counts it instead
ATOM = 60  # a token this long or shorter (a number, Decimal('100.00'), a datetime) is never cut, even past the width
MAX_PARSED = 1 << 16  # characters of stored text parsed for its shape; longer text is cut after a word
_BOUNDARY = 24  # how far back from the cut a word boundary is looked for
_TEXT_TYPES = (str, bytes, bytearray)


class Verbatim:
    """A token as text (a part of parsed text that is no container: ``Decimal('1.00')``, ``-1``, ``None``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class Pair:
    """A dict's item (``key: value``) or a keyword argument (``key=value``)."""

    __slots__ = ("key", "value", "sep")

    def __init__(self, key: Any, value: Any, sep: str = ": ") -> None:
        self.key = key
        self.value = value
        self.sep = sep


class Shape:
    """A container to lay out: its brackets and its items (read once, in order)."""

    __slots__ = ("open", "close", "items", "count", "even")

    def __init__(self, open: str, close: str, items: Iterable[Any], count: int,  # noqa: A002
                 even: bool = True) -> None:
        self.open = open
        self.close = close
        self.items = items
        self.count = count
        self.even = even  # a record's fields (a dict, a tuple, arguments): each its share; else the first ones


def fit(value: Any, width: int | None) -> str:
    """``value`` as text of at most ``width`` characters where it can be cut readably (``None``: whole)."""
    if width is None:
        return _whole(value)
    return _fit(value, max(width, MIN_ROOM))


def fit_text(text: str, width: int | None) -> str:
    """A ``repr`` a recording stored, fitted like the value it shows: cut between items where it parses."""
    if width is None or len(text) <= width:
        return text
    parsed = parse_repr(text)
    return _cut_words(text, width) if parsed is None else fit(parsed, width)


def cut_line(text: str, width: int | None) -> str:
    """A line of plain text (a response body's, a program's output) cut after a word to ``width``."""
    return text if width is None else _cut_words(text, max(width, MIN_ROOM))


def parse_repr(text: str) -> Any:
    """The shape of a value's ``repr``: containers as :class:`Shape`, strings and bytes as themselves, any
    other token as :class:`Verbatim`; None when the text is no Python expression."""
    if len(text) > MAX_PARSED:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return _from_node(tree.body, text.strip())


def _from_node(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return node.value
    if isinstance(node, ast.List):
        return _shape("[", "]", [_from_node(e, text) for e in node.elts], even=False)
    if isinstance(node, ast.Tuple):
        return _shape("(", ",)" if len(node.elts) == 1 else ")", [_from_node(e, text) for e in node.elts])
    if isinstance(node, ast.Set):
        return _shape("{", "}", [_from_node(e, text) for e in node.elts], even=False)
    source = ast.get_source_segment(text, node) or ""
    if isinstance(node, ast.Dict) and None not in node.keys:
        return _shape("{", "}", [Pair(_from_node(k, text), _from_node(v, text))  # type: ignore[arg-type]
                                 for k, v in zip(node.keys, node.values, strict=True)])
    if isinstance(node, ast.Call) and len(source) > ATOM:  # a long record's repr: Money(amount=…, …)
        func = ast.get_source_segment(text, node.func) or "?"
        items = [_from_node(a, text) for a in node.args]
        items += [Pair(Verbatim(k.arg or "**"), _from_node(k.value, text), "=") for k in node.keywords]
        return _shape(func + "(", ")", items)
    return Verbatim(source)


def _shape(open: str, close: str, items: list[Any], even: bool = True) -> Shape:  # noqa: A002
    return Shape(open, close, items, len(items), even)


def _shape_of(value: Any) -> Shape | None:
    """How a value is laid out as a container; None for a token. Only the plain built-in containers are
    containers: a subclass (a namedtuple, an OrderedDict) prints as its own repr says."""
    kind = type(value)
    if kind is Shape:
        return value  # type: ignore[no-any-return]
    if kind is list:
        return Shape("[", "]", value, len(value), even=False)
    if kind is tuple:
        return Shape("(", ",)" if len(value) == 1 else ")", value, len(value))
    if kind is dict:
        return Shape("{", "}", (Pair(k, v) for k, v in value.items()), len(value))
    if kind in (set, frozenset) and value:
        outer = "frozenset(" if kind is frozenset else ""
        return Shape(outer + "{", "}" + (")" if outer else ""), value, len(value), even=False)
    return None


def _token(value: Any) -> str:
    if type(value) is Verbatim:
        return value.text  # type: ignore[no-any-return]
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - a codec's class whose repr fails: say so, show the rest
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"


def _whole(value: Any) -> str:
    if type(value) is Pair:
        return _whole(value.key) + value.sep + _whole(value.value)
    shape = _shape_of(value)
    if shape is None or type(value) is not Shape:  # a built-in container's repr is its whole form
        return _token(value)
    return shape.open + ", ".join(_whole(item) for item in shape.items) + shape.close


def measure(value: Any, cap: int) -> int:
    """The length of ``value``'s whole form, or ``cap + 1`` as soon as it is known to be longer."""
    if type(value) is Pair:
        return measure(value.key, cap) + len(value.sep) + measure(value.value, cap)
    if type(value) in _TEXT_TYPES and len(value) > cap:  # its repr is at least as long
        return cap + 1
    shape = _shape_of(value)
    if shape is None:
        return len(_token(value))
    total = len(shape.open) + len(shape.close)
    for index, item in enumerate(shape.items):
        total += (2 if index else 0) + measure(item, cap - total)
        if total > cap:
            return cap + 1
    return total


def _fit(value: Any, room: int) -> str:
    if measure(value, room) <= room:
        return _whole(value)
    if type(value) is Pair:
        key = _whole(value.key)
        return key + value.sep + _fit(value.value, room - len(key) - len(value.sep))
    if type(value) in _TEXT_TYPES:
        return _cut_string(value, room)
    shape = _shape_of(value)
    if shape is None:
        text = _token(value)
        if len(text) <= ATOM:
            return text
        parsed = parse_repr(text)  # a long record's repr: cut between its fields
        return _cut_words(text, room) if parsed is None or type(parsed) is Verbatim else _fit(parsed, room)
    return _fit_shape(shape, room)


def _fit_shape(shape: Shape, room: int) -> str:
    inner = room - len(shape.open) - len(shape.close)
    items: list[Any] = []
    sizes: list[int] = []
    for item in shape.items:
        if len(items) > inner // 3:  # more than could show: each takes a character and a separator
            break
        items.append(item)
        sizes.append(measure(item, inner))
    parts = (_side_by_side if shape.even else _first_ones)(shape.count, items, sizes, inner)
    if len(parts) < shape.count:
        parts.append(f"… ({shape.count - len(parts)} more)")
    return shape.open + ", ".join(parts) + shape.close


def _marker(later: int) -> int:
    return len(f", … ({later} more)") if later else 0


def _first_ones(count: int, items: list[Any], sizes: list[int], inner: int) -> list[str]:
    """A list's or a set's items: the first ones whole, the next one cut when that shows some of it."""
    parts: list[str] = []
    used = 0
    for item, size in zip(items, sizes, strict=True):
        space = inner - used - (2 if parts else 0) - _marker(count - len(parts) - 1)
        if size <= space:
            parts.append(_whole(item))
            used += size + (2 if len(parts) > 1 else 0)
            continue
        if _least(item) <= space or (not parts and _is_token(item)):
            parts.append(_fit(item, space))
        break
    return parts


def _side_by_side(count: int, items: list[Any], sizes: list[int], inner: int) -> list[str]:
    """A dict's or a tuple's items (a record's fields, a call's arguments): as many as fit, each whole when it
    fits beside the least of the ones after it, else cut to what is left (a dict item to its key, at least)."""
    for shown in range(len(items), 0, -1):
        space = inner - 2 * (shown - 1) - _marker(count - shown)
        rooms = _rooms(items[:shown], sizes[:shown], space)
        if rooms is None:
            continue  # an item would not fit even cut the most: fewer items, each with more room
        tried = [_whole(item) if size <= room else _fit(item, room)
                 for item, size, room in zip(items[:shown], sizes[:shown], rooms, strict=True)]
        if sum(map(len, tried)) <= space:  # (a token inside may come out longer than its room)
            return tried
    return []


def _rooms(items: list[Any], sizes: list[int], space: int) -> list[int] | None:
    """The room of each item: whole, unless the items together do not fit; then items are cut, each as much as
    needed, down to its barest form: first the ones longer than two thirds of the line, longest first (short
    arguments beside a long SQL text stay whole), then the last ones first (a call's first arguments say the
    most). None when even that does not fit."""
    rooms = list(sizes)
    long = sorted((i for i in range(len(items)) if sizes[i] * 3 > space * 2), key=lambda i: -sizes[i])
    for index in long + [i for i in reversed(range(len(items))) if i not in long]:
        over = sum(rooms) - space
        if over <= 0:
            break
        rooms[index] = max(min(sizes[index], _bare(items[index])), rooms[index] - over)
    return rooms if sum(rooms) <= space else None


def _bare(value: Any) -> int:
    """The length of ``value`` cut the most: a container as ``[… (N more)]``, a dict item as its key and its value
    so cut; anything else as its shortest cut that says something."""
    if type(value) is Pair:
        return len(_whole(value.key)) + len(value.sep) + _bare(value.value)
    shape = _shape_of(value)
    return _least(value) if shape is None else len(f"{shape.open}… ({shape.count} more){shape.close}")


def _is_token(value: Any) -> bool:
    return type(value) not in _TEXT_TYPES and type(value) is not Pair and _shape_of(value) is None


def _least(value: Any) -> int:
    """The length of the shortest cut of ``value`` that still says something: a container's first item, a
    dict item's key (its value may be cut to ``[… (N more)]``), a string's first characters, a token whole."""
    if type(value) is Pair:
        return _bare(value)
    if type(value) in _TEXT_TYPES:
        return min(len(value) + 3, 24)
    shape = _shape_of(value)
    if shape is None:
        return min(len(_token(value)), max(ATOM, MIN_ROOM))
    first = next(iter(shape.items), None)
    if first is None:
        return len(shape.open + shape.close)
    later = len(f", … ({shape.count - 1} more)") if shape.count > 1 else 0
    return len(shape.open) + min(_least(first), measure(first, ATOM)) + later + len(shape.close)


def _cut_string(value: str | bytes | bytearray, room: int) -> str:
    """A string's repr cut after a word: ``'the first words'… (300 more chars)``."""
    unit = "chars" if isinstance(value, str) else "bytes"
    total = len(value)

    def marker(kept: int) -> str:
        return f"… ({total - kept} more {unit})"

    kept = min(total, room)
    while kept > 1:
        over = len(repr(value[:kept])) + len(marker(kept)) - room
        if over <= 0:
            break
        kept = max(1, kept - over)  # every character is at least one in the repr
    kept = _word_end(value, kept)
    return repr(value[:kept]) + marker(kept)


def _word_end(value: str | bytes | bytearray, end: int) -> int:
    """Where to cut ``value`` at or before ``end``: after the last space or punctuation close before it."""
    if end >= len(value) or end <= _BOUNDARY:
        return end
    window = value[end - _BOUNDARY : end]
    text = window if isinstance(window, str) else window.decode("latin-1")
    last = max(text.rfind(c) for c in " \n\t,;.)]}")
    return end - _BOUNDARY + last + 1 if last >= 0 else end


def _cut_words(text: str, room: int) -> str:
    """Plain text cut after a word: ``first words… (300 more chars)``."""
    if len(text) <= room:
        return text
    end = max(room - len(f"… ({len(text)} more chars)"), 8)
    end = _word_end(text, end)
    return f"{text[:end]}… ({len(text) - end} more chars)"


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """A value from a recording as it may be written to a terminal: control characters and escape sequences
    from a crafted file are shown escaped, never sent raw."""
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], str(value))
