"""Entry points: how a fresh interpreter finds the recorded program, function or app again, and the rule that
it may only be the project's own code.

A recording is untrusted input (anyone who can drop a file into a recordings folder hands it to every
developer's pytest), and its header names what replay runs: a script and the folder it ran in, a module
(``-m``), or a function or WSGI app (``module:qualname``) with the ``sys.path`` root to import it from. Replay
runs only code of the *project*: the pytest rootdir, or the folder ``retrace replay`` runs in. Paths resolve
(symlinks too) inside it; a module is located without importing anything and must be a file of the project
that is not installed (the standard library, site-packages, a virtualenv inside the project); the function or
app must be one defined in that module. Anything else is refused before anything is imported or run, unless
the user allowed it explicitly (:class:`Project`'s ``allow_outside``).
"""

from __future__ import annotations

import importlib
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterator
from importlib.machinery import PathFinder
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..engine.state import internal
from ..errors import RetraceError
from ..paths import escapes, expanded, project_root_of, relative_to, use_root
from ..record import Record

if TYPE_CHECKING:
    import ast


class Project(Record):
    """The project whose code a replay may run: its root folder (symlinks resolved), whether the user allowed code
    outside it, and the option that allows it (named in refusals: the CLI's and the plugin's differ)."""

    __slots__ = ("root", "allow_outside", "allow_option")

    def __init__(self, root: str | os.PathLike[str], allow_outside: bool = False,
                 allow_option: str = "--allow-outside-project") -> None:
        self.root = os.path.realpath(root)
        self.allow_outside = allow_outside
        self.allow_option = allow_option

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Project:
        return cls(data["root"], data["allow_outside"], data["allow_option"])


class OutsideProject(RetraceError):
    """A recording points at code that is not the project's; replay refuses to run it."""


class EntryGone(OutsideProject):
    """What the recording runs is not in the project at all (its script, module or function was removed or renamed,
    or it was never this project's): the recording is obsolete here, an orphan."""


def _refuse(project: Project, what: str, where: str, why: str, error: type[OutsideProject] = OutsideProject
            ) -> OutsideProject:
    return error(
        f"the recording's {what} {why} ({where}), and replay runs only the code of the project {project.root}; "
        f"replay it from its project's folder, or pass {project.allow_option} if you trust this recording")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def confine(path: str | os.PathLike[str], project: Project, what: str) -> Path:
    """``path`` with symlinks resolved, refused (:class:`OutsideProject`) unless it is inside the project.
    The one place a recorded path meets the project (recordings that store paths relative to the project root
    resolve them here)."""
    real = os.path.realpath(path)
    if not project.allow_outside and not _inside(real, project.root):
        raise _refuse(project, what, real, "is outside the project")
    return Path(real)


def installed_folders(project: Project) -> list[str]:
    """Where installed code lives: the standard library, site-packages, and the interpreter's prefixes (a
    virtualenv inside the project is installed code, not the app; a prefix that holds the whole project is not
    counted, or nothing in the project would be its own)."""
    paths = sysconfig.get_paths()
    folders = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    folders += getattr(site, "getsitepackages", list)()
    folders.append(site.getusersitepackages())
    folders += [p for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
                if not _inside(project.root, os.path.realpath(p))]
    return [os.path.realpath(f) for f in folders]


def _module_files(name: str, search: list[str], project: Project, what: str) -> list[str]:
    """The files importing module ``name`` runs (each package on the way, then the module), located without
    importing anything: a module this interpreter already imported is the one an import hands back."""
    files: list[str] = []
    locations: list[str] | None = search
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        full = ".".join(parts[:depth])
        module = sys.modules.get(full)
        if module is not None:
            origin, below = getattr(module, "__file__", None), getattr(module, "__path__", None)
        else:
            spec = PathFinder.find_spec(full, locations) if locations is not None else None
            if spec is None:
                raise _refuse(project, what, f"searched {', '.join(search[:3])} …", f"names module {full!r}, "
                              "which is not found among the project's files", EntryGone)
            origin = spec.origin if spec.has_location else None
            below = spec.submodule_search_locations
        if origin is None and below is None:
            raise _refuse(project, what, "built into the interpreter", f"names module {full!r}, which has no file")
        files += [origin] if origin is not None else list(below or [])
        locations = list(below) if below is not None else None
    return files


def check_module(name: str, search: list[str], project: Project, what: str) -> list[str]:
    """Module ``name`` (found on ``search``) must be the project's own, not installed; nothing is imported.
    Returns the files importing it runs (none when code outside the project is allowed: nothing was checked)."""
    if project.allow_outside:
        return []
    if not name or any(not part.isidentifier() for part in name.split(".")):
        raise _refuse(project, what, repr(name), "is not a module name")
    installed = installed_folders(project)
    files = _module_files(name, search, project, what)
    for file in files:
        real = str(confine(file, project, what))
        if any(_inside(real, folder) for folder in installed):
            raise _refuse(project, what, real, f"names {name!r}, which is installed code (the standard library or "
                          "an installed package), not the project's")
    return files


def _bindings(body: list[ast.stmt]) -> Iterator[tuple[str, bool]]:
    """The names a module's top level binds, each with whether an import binds it (into ``if`` and ``try``)."""
    import ast

    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from ((alias.asname or alias.name.partition(".")[0], True) for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, False
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                yield from ((n.id, False) for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):
            for block in (node.body, node.orelse, getattr(node, "finalbody", []),
                          *(h.body for h in getattr(node, "handlers", []))):
                yield from _bindings(block)


def check_defined(file: str, module: str, qualname: str, project: Project, what: str) -> None:
    """Before importing: the first name of ``qualname`` must not be one ``module``'s source only imports
    (``os.system`` imported into the app is not the app's); the replay checks the object itself after import."""
    if project.allow_outside or not file.endswith(".py"):
        return
    import ast  # here: a process recording or replay never parses, and ast costs every process its import

    try:
        tree = ast.parse(Path(file).read_bytes(), file)
    except (OSError, SyntaxError, ValueError):
        return  # the import will say what is wrong with it
    name = qualname.partition(".")[0]
    bindings = list(_bindings(tree.body))
    kinds = {imported for bound, imported in bindings if bound == name}
    if kinds == {True}:
        raise _refuse(project, what, file, f"names {qualname!r}, which {module} imports from elsewhere")
    if not kinds and not _binds_unseen_names(bindings, tree):
        raise EntryGone(f"the recording's {what} names {qualname!r}, which {module} ({file}) no longer defines: "
                        "the recorded code was removed or renamed")


def _binds_unseen_names(bindings: list[tuple[str, bool]], tree: ast.Module) -> bool:
    """Whether a module may bind names its top level does not spell out (``from x import *``, a module
    ``__getattr__``, ``globals()`` or ``setattr`` on itself): then a name it does not show may still be there."""
    import ast

    names = {bound for bound, _ in bindings}
    return bool(names & {"*", "__getattr__"}) or any(
        isinstance(node, ast.Name) and node.id in ("globals", "setattr", "vars") for node in ast.walk(tree))


def search_path(root: str | None, here: str) -> list[str]:
    """Where a replay imports the entry's module from: its import root, the folder it runs in, then the
    interpreter's path (``sys.path[0]``, the folder of ``python -c`` or of a script, is the folder it runs in)."""
    return ([root] if root else []) + [here] + sys.path[1:]


def entry_module(entry: dict[str, Any]) -> str | None:
    """The module a recording's entry imports first: ``-m``'s, or the function's or app's."""
    if "module" in entry:
        return str(entry["module"])
    target = entry.get("app") or entry.get("function")
    return str(target).partition(":")[0] if target is not None else None


class Location(Record):
    """Where a recording's code is in the replaying checkout: ``base``, the folder its project-relative paths
    resolve against (the project's root); the folder the replay runs in (None: where it is started); the script
    and the import root (absolute, or None); and the root file calls are keyed against (None for a recording made
    before paths travelled: its keys hold the paths as they were)."""

    __slots__ = ("base", "cwd", "script", "root", "keys_root")

    def __init__(self, base: str, cwd: str | None, script: str | None, root: str | None,
                 keys_root: str | None) -> None:
        self.base = base
        self.cwd = cwd
        self.script = script
        self.root = root
        self.keys_root = keys_root


def _finds_code(entry: dict[str, Any], folder: str | None, script: str | None) -> bool:
    """Whether the entry's code is where it would be looked for (nothing imported): its script, or the first
    package of its module in ``folder``."""
    if script is not None:
        return os.path.isfile(script)
    module = entry_module(entry)
    if module is None or folder is None or not module.partition(".")[0].isidentifier():
        return False
    return PathFinder.find_spec(module.partition(".")[0], [folder]) is not None


def _code_paths(entry: dict[str, Any], cwd: str | None, base: str) -> tuple[str | None, str | None, str | None]:
    """The working folder, script and import root of a recording that stores them relative to its project root,
    under ``base`` (an absolute one, stored when it was outside the project, as it is)."""
    def under(path: Any) -> str | None:
        return None if path is None else os.path.normpath(os.path.join(base, str(path)))

    folder = under(cwd) if cwd else None
    script = entry.get("script")
    return folder, under(script) if script is not None else None, under(entry.get("root") or None)


def _recorded_root(anchor: str, holds_code: Callable[[str], bool], project: Project) -> str | None:
    """Where an older recording (absolute paths) had its project: the folder above ``anchor`` that plays the role
    of this project's root, found by the longest tail of ``anchor`` under which this project holds the code."""
    parts = [part for part in os.path.normpath(anchor).split(os.sep) if part]
    for cut in range(len(parts) + 1):
        if holds_code(os.path.join(project.root, *parts[cut:])):
            return os.sep + os.path.join(*parts[:cut]) if cut else os.sep
    return None


def _legacy_location(entry: dict[str, Any], cwd: str, project: Project) -> Location:
    """An older recording's code paths (absolute; a script relative to the working folder): as they are when they
    are this project's, else moved from the folder it was recorded in to this project (a checkout elsewhere)."""
    script = entry.get("script")
    script_path = os.path.join(cwd or os.getcwd(), str(script)) if script is not None else None
    root = str(entry["root"]) if entry.get("root") else None
    module = (entry_module(entry) or "").partition(".")[0]
    if script_path is not None:
        anchor, name = os.path.dirname(script_path), os.path.basename(script_path)
        holds: Callable[[str], bool] = lambda folder: os.path.isfile(os.path.join(folder, name))  # noqa: E731
    else:
        anchor = root or cwd
        holds = lambda folder: _finds_code({"module": module}, folder, None)  # noqa: E731
    moved: Callable[[str | None], str | None] = lambda path: path  # noqa: E731
    if anchor and os.path.isabs(anchor) and relative_to(anchor, project.root) is None:
        recorded = _recorded_root(anchor, holds, project)
        if recorded is not None:
            def moved(path: str | None) -> str | None:
                inside = relative_to(path, recorded) if path and os.path.isabs(path) else None
                return path if inside is None else os.path.normpath(os.path.join(project.root, inside))
    folder = moved(cwd or None)
    if script is not None and not os.path.isabs(str(script)) and not (folder and os.path.isdir(folder)):
        script_path = os.path.join(os.getcwd(), str(script))  # no recorded folder here: where the replay starts
    return Location(project.root, folder, moved(script_path), moved(root), None)


def _bases(recorded_root: str, project: Project, recording: str | None) -> list[str]:
    """Where a recording's project root may be in this checkout, the likeliest first: the project's root; the
    folders from the recording's own up to the project's root (a project without markers, recorded in a folder of
    the one replaying it: the copy that holds the recording, though the folder it was recorded in is here too);
    the recorded root itself when it is inside the project (recordings kept apart from the code)."""
    bases = [project.root]
    if recording is not None:
        folder = os.path.dirname(os.path.realpath(recording))
        while relative_to(folder, project.root) not in (None, "."):
            bases.append(folder)
            folder = os.path.dirname(folder)
    if relative_to(recorded_root, project.root) not in (None, "."):
        bases.append(os.path.realpath(recorded_root))
    return bases


def locate(header: dict[str, Any], project: Project, recording: str | None = None) -> Location:
    """Where the code a recording's header names is in this checkout (nothing checked or imported yet: see
    :func:`check_entry`); ``recording``: the file's path, for a project recorded in a folder of this one. A path
    relative to the project root that leaves it is refused (:class:`OutsideProject`)."""
    entry, cwd = header.get("entry") or {}, str(header.get("cwd") or "")
    recorded_root = header.get("project_root")
    if not isinstance(recorded_root, str):
        return _legacy_location(entry, cwd, project)
    for what, path in (("working folder", cwd), ("script", entry.get("script")), ("import root", entry.get("root"))):
        if path and not os.path.isabs(str(path)) and escapes(str(path)):
            raise _refuse(project, what, str(path), "leaves the project root it is relative to")
    base = project.root
    for candidate in _bases(recorded_root, project, recording):
        found = _code_paths(entry, cwd, candidate)
        if _finds_code(entry, found[2] or found[0], found[1]):
            base = candidate
            break
    folder, script, root = _code_paths(entry, cwd, base)
    if project.allow_outside and not _finds_code(entry, root or folder, script):
        # Trusted by the user: run the code where it was recorded when this project does not hold it.
        there = _code_paths(entry, cwd, recorded_root)
        if _finds_code(entry, there[2] or there[0], there[1]):
            base, (folder, script, root) = recorded_root, there
    return Location(base, folder, script, root, base)


def check_entry(header: dict[str, Any], project: Project, recording: str | None = None) -> Location:
    """Check what the recording's header would run (its folder, script, import root and module) against the
    project, importing nothing. Returns where it is (:class:`Location`); its folder is the recorded one when it
    exists here, else None (the replay stays where it is started; it never changes to a folder outside the
    project)."""
    location = locate(header, project, recording)
    entry = header.get("entry") or {}
    cwd = location.cwd
    folder = str(confine(cwd, project, "working folder")) if cwd and os.path.isdir(cwd) else None
    location.cwd = folder
    here = folder or os.getcwd()
    if location.script is not None:
        confine(os.path.join(here, location.script), project, "script")
    if location.root:
        confine(location.root, project, "import root")
    module = entry_module(entry)
    if module is not None:
        target = str(entry.get("app") or entry.get("function") or module)
        files = check_module(module, search_path(location.root, here), project, f"entry point {target!r}")
        if ":" in target and files:
            check_defined(files[-1], module, target.partition(":")[2], project, f"entry point {target!r}")
    return location


def localized(header: dict[str, Any], location: Location) -> dict[str, Any]:
    """The header as this checkout runs it: the script and import root at their place here, and arguments that
    named paths under the recorded project root naming them under this one."""
    entry = dict(header.get("entry") or {})
    if location.script is not None:
        entry["script"] = location.script
    if location.root is not None:
        entry["root"] = location.root
    argv = [expanded(arg, location.base) if isinstance(arg, str) else arg for arg in header.get("argv", [])]
    return {**header, "entry": entry, "argv": argv}


# -- the record side: where the function or app is ----------------------------------------------------------


def module_root(name: str) -> str | None:
    """The sys.path entry a fresh interpreter needs to import module ``name`` as this one did."""
    file = getattr(sys.modules[name], "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    for _ in range(name.count(".") + (Path(file).stem == "__init__")):
        root = root.parent
    return str(root)


class CodePaths(Record):
    """What a recording's header stores of where its code was: the entry and working folder with their paths
    relative to the project root (one outside it, absolute), and that root (absolute, for the record)."""

    __slots__ = ("entry", "cwd", "project_root")

    def __init__(self, entry: dict[str, Any], cwd: str, project_root: str) -> None:
        self.entry = entry
        self.cwd = cwd
        self.project_root = project_root


def entry_root(entry: dict[str, Any], cwd: str) -> str:
    """The folder a fresh interpreter puts first on ``sys.path`` for this entry: the script's folder, the import
    root of a function or app, or the working folder (``-m``)."""
    if entry.get("script") is not None:
        return os.path.dirname(os.path.join(cwd, str(entry["script"])))
    return str(entry.get("root") or cwd)


def code_paths(entry: dict[str, Any], cwd: str) -> CodePaths:
    """The entry and working folder as a header stores them: relative to the project root above the entry's
    ``sys.path`` root (:func:`~pytest_retrace.paths.project_root_of`), so that the recording replays in any
    checkout of the project."""
    root = project_root_of(entry_root(entry, cwd))
    stored = dict(entry)
    if entry.get("script") is not None:
        script = os.path.join(cwd, str(entry["script"]))
        stored["script"] = relative_to(script, root) or script
    if entry.get("root"):
        stored["root"] = relative_to(str(entry["root"]), root) or str(entry["root"])
    return CodePaths(stored, relative_to(cwd, root) or cwd, root)


def use_project_of(entry: Callable[[], dict[str, Any]]) -> None:
    """A service that records calls or requests of ``entry()`` keys file paths under its project root, as its
    recordings' headers store its code (one root for the process: the last entry's). Never raises: a service
    that cannot tell keeps paths as they are."""
    try:
        with internal:  # looking for the markers is no call of the program's, even inside a recording
            use_root(code_paths(entry(), os.getcwd()).project_root)
    except Exception:  # noqa: BLE001 - recording must never break the service
        pass


def importable_name(module: str) -> str:
    """The name a fresh interpreter imports ``module`` by: a script run as ``__main__`` by its file name."""
    file = getattr(sys.modules[module], "__file__", None)
    return Path(file).stem if module == "__main__" and file else module


def entry_point(function: Callable[..., Any]) -> dict[str, Any]:
    """How a fresh interpreter finds the function again: ``module:qualname``, and the root of its module."""
    name = importable_name(function.__module__)
    return {"function": f"{name}:{function.__qualname__}", "root": module_root(function.__module__)}


# -- the replay side ------------------------------------------------------------------------------------------


def _defined_in(module: ModuleType, qualname: str, project: Project, what: str) -> Any:
    """The object at ``qualname`` in ``module``, which must be the module's own: no step through another module,
    and a function or class at the end must be defined there (not ``os.system`` imported into it)."""
    import inspect  # here: only in-process entries get here (inspect costs every process some 5 ms to import)

    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
        if isinstance(obj, ModuleType):
            raise _refuse(project, what, f"module {obj.__name__}", "leads into another module")
    if (inspect.isroutine(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) != module.__name__:
        raise _refuse(project, what, f"defined in {getattr(obj, '__module__', None) or 'no module'}",
                      f"names {qualname!r}, which is not defined in {module.__name__}")
    if not callable(obj):
        raise _refuse(project, what, type(obj).__name__, f"names {qualname!r}, which cannot be called")
    return obj


def resolve(entry: dict[str, Any], project: Project) -> Callable[..., Any]:
    """The recorded function (or WSGI app) of a header's ``entry``, imported, after :func:`check_entry` found
    it inside the project (checked again here, on this interpreter's own path). Raises :class:`OutsideProject`
    when it is not the project's, and SystemExit with the reason when it cannot be found."""
    target = str(entry.get("app") or entry.get("function") or "")  # a request recording names its app
    name, _, qualname = target.partition(":")
    what = f"entry point {target!r}"
    root = entry.get("root")
    if root:
        confine(str(root), project, "import root")
    check_module(name, search_path(str(root) if root else None, os.getcwd()), project, what)
    if root and root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(name)
        obj = _defined_in(module, qualname, project, what) if not project.allow_outside else _walk(module, qualname)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SystemExit(f"retrace: cannot find {target!r}, the entry point of this recording "
                         f"({type(exc).__name__}: {exc}); replay where its module is importable "
                         f"(recorded from {root or 'an unknown folder'})") from None
    return getattr(obj, "__wrapped__", obj)  # type: ignore[no-any-return]  # the function, not our wrapper


def _walk(module: ModuleType, qualname: str) -> Any:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def code_folders(header: dict[str, Any], project: Project) -> list[str]:
    """The folders the recording counted as code (read live, never events), resolved against the app's import
    root as this checkout has it; those outside the project are left out (their files then replay as data, and
    a read of one shows as an unrecorded call instead of reaching outside the project)."""
    entry = header.get("entry") or {}
    root = str(entry.get("root") or project.root)
    folders = []
    for folder in entry.get("code_folders") or ():
        try:
            folders.append(str(confine(os.path.join(root, str(folder)), project, "code folder")))
        except OutsideProject:
            continue
    return folders
