"""Fingerprints for ``cache=True``: skip a step whose code and inputs did not change.

A step's cache key hashes the task's code (see below), its name, the extra settings
it was declared with (``**config``) and its parameter names, each source's identity as
the storage reports it (ETag, generation or version where the store has one; for a
local file its size, modification and change time and inode; read from metadata,
never from the data), the target's URI and Glacier's version. ``retries`` and
``timeout`` are not in the key: they change how a step is attempted, not what it
writes, so changing them keeps a cached result. After a
successful run the key and the target's own fingerprint are stored beside the target
in a small hidden JSON file, ``.NAME.glacier.json``. The step is skipped when that
record's key matches and the target still has the fingerprint it had when written.

What "the task's code" covers (:func:`function_fingerprint`):

- the function's source (its compiled code when there is no source), and its
  default argument values;
- the contents of its closure cells, so tasks built in a loop or by a factory are
  told apart by the values they were built with;
- the module-level names it refers to (builtins excluded): plain data by value
  (``None``, numbers, strings, bytes, tuples, lists, dicts and sets of these,
  dataclass instances, enum members, paths, dates, compiled regexes, polars data
  types, expressions and frames); functions of the user's own code by their source,
  closure and defaults, followed through the names they refer to in turn; classes of
  the user's own code by their source (what their methods refer to is not
  followed); functions, classes and modules of the standard library or an
  installed package by name only (``pl``, ``json.dumps``); ``settings.LIMIT`` on a
  module of the user's own code by the attribute's value.

A value the code refers to that is none of these (an open file, a connection, a
client, a function inside a dict...) cannot be fingerprinted: the step then runs on
every run, with a warning naming the task and the value. What is read at run time
from outside the code (an environment variable read inside the task, a file, a
service) is not seen either: read it at module level into a plain value, or delete
the record to force a re-run.
"""

from __future__ import annotations

import builtins
import dataclasses
import dis
import enum
import functools
import hashlib
import inspect
import io
import json
import logging
import os
import re
import site
import sys
import sysconfig
import types
import uuid
import warnings
from datetime import date, time, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from glacier.plugins.storage import record_uri

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from glacier.bucket import Bucket
    from glacier.dag import TaskInstance

__all__ = [
    "UnfingerprintableError",
    "function_fingerprint",
    "code_fingerprint",
    "cache_key",
    "read_record",
    "write_record",
]



class UnfingerprintableError(TypeError):
    """A task's code refers to a value whose content Glacier cannot fingerprint.

    Attributes
    ----------
    subject
        Whose code it is: ``"task 'filter_big'"`` or ``"function 'helper'"``.
    name
        The name the code uses for the value (``"conn"``, ``"settings.client"``).
    description
        What the value is: ``"a Connection"``, ``"a function inside a dict"``.
    through
        The helper functions the reference was found in, outermost first.
    """

    def __init__(self, subject: str, name: str, description: str, through: tuple[str, ...] = ()) -> None:
        self.subject, self.name, self.description, self.through = subject, name, description, through
        via = f" through {', '.join(repr(t) for t in through)}" if through else ""
        super().__init__(f"{subject} refers to {name!r} ({description}){via}, which Glacier cannot fingerprint")


def function_fingerprint(func: Callable[..., Any]) -> str:
    """A hash of a function's code and of every value it refers to (see the module docs).

    Raises
    ------
    UnfingerprintableError
        When the function, or a helper it refers to, refers to a value that is not
        plain data, a function, a class or a module.

    Examples
    --------
    >>> def make(limit):
    ...     def keep(x):
    ...         return x > limit
    ...     return keep
    >>> function_fingerprint(make(1)) == function_fingerprint(make(1))
    True
    >>> function_fingerprint(make(1)) == function_fingerprint(make(2))
    False
    """
    walker = _Walker(f"function {getattr(func, '__qualname__', repr(func))!r}")
    described = walker.named(getattr(func, "__name__", "the task"), func)
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def code_fingerprint(instance: TaskInstance) -> str:
    """A hash of the task's code (:func:`function_fingerprint`) and its declared options.

    Raises
    ------
    UnfingerprintableError
        When the task's code refers to a value Glacier cannot fingerprint.
    """
    task = instance.task
    try:
        code = function_fingerprint(task.func)
    except UnfingerprintableError as exc:
        raise UnfingerprintableError(f"task {task.name!r}", exc.name, exc.description, exc.through) from None
    declared = json.dumps({"name": task.name, "config": task.config, "params": sorted(instance.sources)}, sort_keys=True, default=str)
    return hashlib.sha256(f"{code}\0{declared}".encode()).hexdigest()


def cache_key(instance: TaskInstance, inputs: dict[str, str]) -> str | None:
    """The cache key of a step: code, input fingerprints, target and Glacier's version.

    Returns ``None``, with a warning naming the task and the value, when the task's
    code refers to a value Glacier cannot fingerprint: the step then runs.
    """
    from glacier import __version__

    try:
        code = code_fingerprint(instance)
    except UnfingerprintableError as exc:
        warnings.warn(
            f"{exc}; the step will run each time.\n\nHint: refer to plain values (numbers, strings,"
            " tuples, dicts of these), or read the value inside the task",
            stacklevel=2,
        )
        return None
    material = json.dumps({"code": code, "inputs": inputs, "glacier": __version__, "target": instance.target.uri}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


# -- what a function refers to ----------------------------------------------------------


class _Opaque(Exception):
    """A value that is not data Glacier can fingerprint; carries how to name it."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class _Walker:
    """Describes functions and the values they refer to as JSON-ready data.

    Each user function is described in full once (by identity), so recursion and
    mutual references end; the walk order is the code's own, so the description is
    the same in every process.
    """

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.seen: set[int] = set()
        self.helpers: list[str] = []  # user functions being walked, outermost first
        self.containers: list[int] = []  # containers being walked (a cycle is opaque)

    def named(self, name: str, value: Any) -> Any:
        """A value the code refers to by ``name`` (a global, a closure cell, a default)."""
        try:
            return self.reference(value)
        except _Opaque as exc:
            through = tuple(self.helpers[1:])
            raise UnfingerprintableError(self.subject, name, exc.description, through) from None

    def reference(self, value: Any) -> Any:
        from glacier.task import Task

        if isinstance(value, Task):
            value = value.func
        if isinstance(value, types.ModuleType):
            return ["module", value.__name__]
        if isinstance(value, types.FunctionType):
            return self.function(value)
        if isinstance(value, types.MethodType):
            return ["method", self.reference(value.__self__), self.reference(value.__func__)]
        if isinstance(value, functools.partial):
            return ["partial", self.reference(value.func), self.data(value.args), self.data(value.keywords)]
        if isinstance(value, (types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType)):
            owner = getattr(value, "__self__", None)
            bound = None if owner is None or isinstance(owner, types.ModuleType) else self.data(owner)
            return ["builtin", getattr(value, "__module__", None), value.__qualname__, bound]
        if isinstance(value, logging.Logger):
            return ["logger", value.name]  # logging does not change what a step writes
        return self.data(value)

    def function(self, func: types.FunctionType) -> Any:
        ident = [func.__module__, func.__qualname__]
        if _is_library(func.__module__):
            return ["function", *ident]
        if id(func) in self.seen:
            return ["function", *ident, "see above"]
        self.seen.add(id(func))
        self.helpers.append(func.__qualname__)
        try:
            return ["function", *ident, self.function_body(func)]
        finally:
            self.helpers.pop()

    def function_body(self, func: types.FunctionType) -> dict[str, Any]:
        code = func.__code__
        closure: dict[str, Any] = {}
        for name, cell in zip(code.co_freevars, func.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:  # not bound yet
                closure[name] = ["unbound"]
                continue
            closure[name] = self.named(name, contents)
        positional = code.co_varnames[: code.co_argcount]
        defaults = func.__defaults__ or ()
        defaulted = dict(zip(positional[len(positional) - len(defaults) :], defaults))
        defaulted.update(func.__kwdefaults__ or {})
        referenced: dict[str, Any] = {}
        for name, attribute in _global_references(code):
            if name in func.__globals__:
                value = func.__globals__[name]
            elif hasattr(builtins, name):
                continue
            else:
                referenced[name] = ["undefined"]
                continue
            if attribute is not None and isinstance(value, types.ModuleType) and not _is_library(value.__name__) and hasattr(value, attribute):
                qualified = f"{name}.{attribute}"
                referenced[qualified] = self.named(qualified, getattr(value, attribute))
            else:
                referenced[name] = self.named(name, value)
        return {
            "code": _source(func),
            "closure": closure,
            "defaults": {name: self.named(name, value) for name, value in defaulted.items()},
            "globals": referenced,
        }

    def type_(self, cls: type) -> Any:
        ident = [cls.__module__, cls.__qualname__]
        if _is_library(cls.__module__):
            return ["class", *ident]
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            source = None
        return ["class", *ident, source]

    def data(self, value: Any) -> Any:
        """Plain data by value; anything else is :class:`_Opaque`."""
        kind = type(value)
        if value is None or kind in (bool, int, float, complex, str):
            return [kind.__name__, repr(value)]
        if kind in (bytes, bytearray):
            return [kind.__name__, value.hex()]
        if isinstance(value, type):
            return self.type_(value)
        if isinstance(value, enum.Enum):
            return ["enum", self.type_(kind), value.name]
        if dataclasses.is_dataclass(value):
            return self.container(value, lambda: ["dataclass", self.type_(kind), {f.name: self.data(getattr(value, f.name)) for f in dataclasses.fields(value)}])
        if isinstance(value, (tuple, list)):
            return self.container(value, lambda: [_qualname(kind), [self.data(v) for v in value]])
        if isinstance(value, (set, frozenset)):
            return self.container(value, lambda: [_qualname(kind), sorted(json.dumps(self.data(v), sort_keys=True) for v in value)])
        if isinstance(value, dict):
            return self.container(value, lambda: [_qualname(kind), [[self.data(k), self.data(v)] for k, v in value.items()]])
        if isinstance(value, (int, float, complex, str, bytes)):  # numpy scalars, str subclasses
            return [_qualname(kind), repr(value)]
        if isinstance(value, PurePath):
            return ["path", kind.__name__, str(value)]
        if isinstance(value, (date, time, timedelta, tzinfo, Decimal, Fraction, uuid.UUID)):
            return ["value", _qualname(kind), repr(value)]
        if isinstance(value, re.Pattern):
            return ["pattern", repr(value.pattern), value.flags]
        exported = _exported_name(value, kind)
        if exported is not None:
            return ["exported", *exported]
        if kind.__module__.partition(".")[0] == "polars":
            return _polars_value(value)
        raise _Opaque(_a(kind.__name__))

    def container(self, value: Any, describe: Callable[[], Any]) -> Any:
        if id(value) in self.containers:
            raise _Opaque(f"{_a(type(value).__name__)} that contains itself")
        self.containers.append(id(value))
        try:
            return describe()
        except _Opaque as exc:
            raise _Opaque(f"{exc.description} inside {_a(type(value).__name__)}") from None
        finally:
            self.containers.pop()


def _polars_value(value: Any) -> Any:
    import polars as pl

    try:
        if isinstance(value, pl.DataType):
            return ["polars", repr(value)]
        if isinstance(value, pl.Expr):
            return ["polars", "Expr", value.meta.serialize(format="json")]
        if isinstance(value, pl.Series):
            value = value.to_frame()
        if isinstance(value, pl.DataFrame):
            buffer = io.BytesIO()
            value.write_ipc(buffer)  # the same bytes for the same frame, in every process
            return ["polars", "DataFrame", hashlib.sha256(buffer.getvalue()).hexdigest()]
    except Exception:  # a column type polars cannot write or serialize
        pass
    raise _Opaque(_a(f"polars {type(value).__name__}"))


def _exported_name(value: Any, kind: type) -> tuple[str, str] | None:
    """``(package, name)`` when ``value`` is a library's own named object (``pl.col``, ``np.sqrt``)."""
    if not _is_library(kind.__module__):
        return None
    package = kind.__module__.partition(".")[0]
    for name, member in vars(sys.modules.get(package, types.ModuleType(package))).items():
        if member is value:
            return package, name
    return None


def _global_references(code: types.CodeType) -> Iterator[tuple[str, str | None]]:
    """Each global name the code (and code nested in it) loads, with the attribute read from it."""
    instructions = list(dis.get_instructions(code))
    for index, instruction in enumerate(instructions):
        if instruction.opname not in ("LOAD_GLOBAL", "LOAD_NAME"):
            continue
        following = instructions[index + 1] if index + 1 < len(instructions) else None
        attribute = following.argval if following is not None and following.opname in ("LOAD_ATTR", "LOAD_METHOD") else None
        yield str(instruction.argval), attribute
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_references(const)


def _source(func: types.FunctionType) -> Any:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return _code_identity(func.__code__)  # made by exec: no file to read


def _code_identity(code: types.CodeType) -> list[Any]:
    consts: list[Any] = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append(_code_identity(const))
        elif isinstance(const, frozenset):  # its repr's order depends on the hash seed
            consts.append(sorted(repr(c) for c in const))
        else:
            consts.append(repr(const))
    return [code.co_code.hex(), consts, list(code.co_names), list(code.co_varnames)]


def _is_library(module_name: str | None) -> bool:
    """Whether a module belongs to the standard library or an installed package."""
    if not module_name:
        return False
    if module_name in sys.builtin_module_names:
        return True
    file = getattr(sys.modules.get(module_name), "__file__", None)
    if not file:
        return False  # __main__ of a REPL or notebook, or code made by exec: the user's
    path = os.path.realpath(file)
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or path.startswith(_library_roots())


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(getattr(site, "getsitepackages", list)())
    return tuple(sorted(os.path.realpath(root).rstrip(os.sep) + os.sep for root in roots))


def _qualname(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def read_record(target: Bucket) -> dict[str, Any] | None:
    """The cache record beside ``target``, or ``None`` when missing or unreadable."""
    storage = target.storage
    uri = record_uri(target.uri)
    try:
        with storage.fs.open(storage.path(uri), "rb") as f:
            data: dict[str, Any] = json.loads(f.read())
        return data
    except (OSError, ValueError):
        return None


def write_record(target: Bucket, record: dict[str, Any]) -> None:
    """Store the cache record beside ``target`` (one small write, atomic on each store)."""
    storage = target.storage
    uri = record_uri(target.uri)
    payload = json.dumps(record, sort_keys=True).encode()
    if storage.atomic_upload:
        storage.fs.pipe_file(storage.path(uri), payload)
        return
    temp = storage.temp_uri(uri)
    storage.fs.pipe_file(storage.path(temp), payload)
    storage.commit(temp, uri)
