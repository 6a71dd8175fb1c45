"""The locale: what the C library formats, sorts and names by, and what ``locale`` answers about it.

The C library's locale is state of the process that C code reads without a call to intercept: ``strftime``
(``%A``, ``%c``), ``'{:n}'.format``, ``decimal``'s ``n`` format, error messages. So it is restored:

- the locale the program starts in (Python sets ``LC_CTYPE`` from the environment at start) is in the recording's
  header (:func:`state`) and a replay starts in it (:func:`apply`);
- ``locale.setlocale`` (so ``getlocale``, ``getpreferredencoding``, ``resetlocale``, ``calendar``'s and
  ``_strptime``'s) is an event whose answer is the locale the C library took: a replay has the C library take
  that same locale. A locale this machine does not have is a divergence at that call,
  ``locale.not_on_this_machine(category, locale)``: the replay could not be faithful, and says why.

What ``locale`` answers from the C library is recorded as calls (``localeconv``, ``nl_langinfo``,
``getencoding``, ``strcoll``, ``strxfrm``): a machine with other locale data (another glibc's collation) answers
as the recording's did.

The locale the program started in is not in every machine either (a recording made under ``de_DE.UTF-8`` replayed
where only ``C.UTF-8`` exists). Python's own start-up reads it only for the encoding it names, and what the program
asks ``locale`` about it is answered from the recording; so a replay starts in the C locale of the same encoding
(``C.UTF-8`` for a UTF-8 locale), whatever this machine's environment says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..engine.base import nothing, payload
from ..engine.state import internal

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

CATEGORIES = ("LC_CTYPE", "LC_COLLATE", "LC_TIME", "LC_NUMERIC", "LC_MONETARY", "LC_MESSAGES")
UNAVAILABLE = "locale.not_on_this_machine"
# Replay only: the recorded locales this machine does not have (category, locale), reported at the next call to
# ``locale``, as a divergence (a replay that goes on without asking ``locale`` anything goes on).
_missing: list[tuple[str, str]] = []


def _c_locale() -> Any:
    import _locale  # a builtin module: importing it runs nothing

    return _locale


def state() -> dict[str, str]:
    """The C library's locale now, by category (what a recording's header holds)."""
    c = _c_locale()
    return {name: c.setlocale(getattr(c, name)) for name in CATEGORIES if hasattr(c, name)}


def apply(recorded: dict[str, Any]) -> None:
    """Start in the recorded locale: each category as recorded, or the C locale of its encoding where this machine
    does not have the recorded one."""
    c = _c_locale()
    for name, wanted in recorded.items():
        category = getattr(c, name, None) if name in CATEGORIES else None
        if category is None or type(wanted) is not str or c.setlocale(category) == wanted:
            continue
        for candidate in (wanted, same_encoding(wanted), "C"):
            try:
                c.setlocale(category, candidate)
                break
            except c.Error:
                if candidate == wanted:
                    _missing.append((name, wanted))


def same_encoding(name: str) -> str:
    """The C locale of the encoding ``name`` names (what a replay falls back to at start)."""
    return "C.UTF-8" if "utf8" in name.replace("-", "").lower() else "C"


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    patcher.when_imported("locale", lambda locale: _install_locale(engine, patcher, locale))


def _install_locale(engine: Engine, patcher: Patcher, locale: Any) -> None:
    c = _c_locale()
    names = {getattr(c, name): name for name in (*CATEGORIES, "LC_ALL") if hasattr(c, name)}
    real_setlocale = locale._setlocale  # the C function behind setlocale, getlocale, resetlocale …
    missing = _missing

    def redo(recorded: Any, category: int) -> Any:
        """Replay: have the C library take the locale it took while recording."""
        if type(recorded) is not str:
            raise TypeError(f"a recorded locale that is not a string: {recorded!r}")
        try:
            real_setlocale(category, recorded)
        except c.Error:
            missing.append((names.get(category, str(category)), recorded))
        return recorded

    def setlocale(category: int, value: Any = None) -> str:
        if missing:
            unavailable(engine)
        key = (names.get(category, category), value)
        if value is None:  # a question: the C library changes nothing
            return engine.call("locale.setlocale", key, real_setlocale, category)  # type: ignore[no-any-return]
        result = engine.sync("locale.setlocale", key, lambda recorded: redo(recorded, category), real_setlocale,
                             category, value)
        if missing:  # replay only: the C library could not take the recorded locale here
            unavailable(engine)
        return result  # type: ignore[no-any-return]

    patcher.set(locale, "_setlocale", setlocale)
    if hasattr(locale, "_localeconv"):
        real_localeconv = locale._localeconv

        def localeconv() -> dict[str, Any]:
            if missing:
                unavailable(engine)
            return engine.call("locale.localeconv", None, real_localeconv)  # type: ignore[no-any-return]

        patcher.set(locale, "_localeconv", localeconv)
    for name in ("nl_langinfo", "getencoding"):
        if hasattr(locale, name):
            patcher.set(locale, name, _keyed_by_args(engine, f"locale.{name}", getattr(locale, name)))
    real_strcoll, real_strxfrm = locale.strcoll, locale.strxfrm

    def strcoll(a: str, b: str) -> int:
        if missing:
            unavailable(engine)
        return engine.call("locale.strcoll", (payload(a), payload(b)), real_strcoll, a, b)  # type: ignore[no-any-return]

    def strxfrm(s: str) -> str:
        if missing:
            unavailable(engine)
        return engine.call("locale.strxfrm", (payload(s),), real_strxfrm, s)  # type: ignore[no-any-return]

    patcher.set(locale, "strcoll", strcoll)
    patcher.set(locale, "strxfrm", strxfrm)


def unavailable(engine: Engine) -> None:
    """Replay: a divergence at this call, naming the recorded locale this machine does not have."""
    with internal:
        where = _missing.pop(0) if _missing else None
    if where is not None:
        engine.call(UNAVAILABLE, where, nothing)


def _keyed_by_args(engine: Engine, name: str, real: Any) -> Any:
    def recorded(*args: Any) -> Any:
        if _missing:
            unavailable(engine)
        return engine.call(name, args or None, real, *args)

    return recorded
