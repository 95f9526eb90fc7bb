"""Safe, bounded YAML loading that keeps the raw text of numeric scalars.

Keptn decodes its files with Go's yaml.v3 into typed structs: a ``string`` field receives the
scalar's raw text (``pass: 90`` is ``"90"``, ``pass: 90.0`` is ``"90.0"``). PyYAML would give
``90`` and ``90.0``, so ints and floats are constructed as subclasses that remember their text
(:func:`scalar_text` gives it back). Everything else is ordinary SafeLoader output.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_keptn.errors import SpecError

# Real Keptn files are kilobytes (an slo.yaml of 10,000 objectives is about 1 MiB); anything
# larger is refused before parsing, so that no file takes more than a few seconds to read.
MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1_000
MAX_EXPANDED_NODES = 200_000


class SpecWarning(UserWarning):
    """Something in a Keptn file that Keptn ignores silently (e.g. an unknown key)."""


class YInt(int):
    """An int that remembers how it was written."""

    text: str

    def __new__(cls, value: int, text: str) -> YInt:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class YFloat(float):
    """A float that remembers how it was written."""

    text: str

    def __new__(cls, value: float, text: str) -> YFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _Refused(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


# libyaml's C parser when PyYAML was built with it (every PyPI wheel is), else pure Python.
if TYPE_CHECKING:
    _SafeBase = yaml.CSafeLoader
else:
    _SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):
    """libyaml's C parser and composer (several times faster than PyYAML's pure-Python ones;
    libyaml itself refuses nesting beyond 1,000 levels), PyYAML's safe constructors. Depth,
    aliases and expansion are checked on the composed graph before anything is constructed."""

    def construct_yaml_int(self, node: ScalarNode) -> int:
        value = super().construct_yaml_int(node)
        return YInt(value, str(node.value))

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        return YFloat(value, str(node.value))

    def construct_yaml_timestamp(self, node: ScalarNode, values: Any = None) -> Any:
        return str(node.value)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = key_node.value
                if key in seen:
                    raise _Refused(
                        f"mapping key {key!r} already defined at line {seen[key]}",
                        key_node.start_mark.line + 1,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_constructors = {
    **yaml.SafeLoader.yaml_constructors,
    "tag:yaml.org,2002:int": _Loader.construct_yaml_int,
    "tag:yaml.org,2002:float": _Loader.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _Loader.construct_yaml_timestamp,
}


# yaml.v3 resolves only YAML 1.2's booleans (true/True/TRUE, false/False/FALSE); YAML 1.1's
# yes/no/on/off are strings there (``filter: {handler: on}`` keeps "on"), and a Go ``bool``
# field still accepts them (see ``Fields.boolean``). PyYAML resolves them as booleans.
_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in _SafeBase.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_YAML11_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}


def _line(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return None if mark is None else int(mark.line) + 1


def _check_shape(root: Node) -> None:
    """Refuse documents nested too deeply or using too many aliases (shared nodes)."""
    seen: set[int] = set()
    aliases = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _Refused(f"too many aliases (more than {MAX_ALIASES})", _line(node))
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", _line(node))
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in reversed(node.value))
        elif isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                stack.append((value, depth + 1))
                stack.append((key, depth + 1))


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards against recursive aliases
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo) + _expanded_size(v, memo)
    memo[key] = size
    return size


def _read(source: str | Path | bytes, file: str) -> str:
    if isinstance(source, Path):
        try:
            if source.stat().st_size > MAX_BYTES:
                raise SpecError(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", file=file)
            data = source.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot read file: {exc.strerror or exc}", file=file) from None
    elif isinstance(source, bytes):
        data = source
    else:
        if len(source) > MAX_BYTES:
            raise SpecError(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", file=file)
        return source
    if len(data) > MAX_BYTES:
        raise SpecError(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", file=file)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 (invalid byte at offset {exc.start})", file=file) from None


def load_yaml(source: str | Path | bytes, *, file: str) -> Any:
    """Load one YAML document safely; any problem is a one-line :class:`SpecError`.

    ``source`` is a path, raw bytes or the document text. Returns ``None`` for an empty document.
    """
    text = _read(source, file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node)
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise _Refused(
                f"document expands to more than {MAX_EXPANDED_NODES} nodes (too large, or an alias bomb)"
            )
        return loader.construct_document(node)
    except _Refused as exc:
        raise SpecError(
            exc.message, file=file, field=f"line {exc.line}" if exc.line else None
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            problem = problem.replace(
                "could not determine a constructor for the tag", "unsupported tag"
            )
        field = f"line {mark.line + 1}" if mark is not None else None
        if "maximum nesting depth" in problem:  # libyaml's own limit (1,000 levels)
            raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=file, field=field) from None
        raise SpecError(f"YAML syntax error: {problem}", file=file, field=field) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}", file=file) from None
    except RecursionError:
        raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=file) from None
    finally:
        loader.dispose()


def scalar_text(value: Any) -> str | None:
    """The text a Go ``string`` field would receive for this scalar, or None if not a scalar."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, YInt | YFloat):
        return value.text
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def read_source(
    source: str | Path | bytes | Mapping[str, Any], file: str | None, default_name: str
) -> tuple[Any, str, bytes | None]:
    """Return (document, file name, raw bytes or None for a mapping)."""
    if isinstance(source, Mapping):
        return dict(source), file or default_name, None
    if isinstance(source, bytes):
        name = file or default_name
        return load_yaml(source, file=name), name, source
    path = Path(source)
    name = file or str(source)
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_BYTES else None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", file=name) from None
    if raw is None:
        return load_yaml(path, file=name), name, None  # raises: too large
    return load_yaml(raw, file=name), name, raw


class Fields:
    """Reads fields of one file, building ``a.b[2].c`` paths for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._warned: set[str] = set()

    def error(self, path: str, message: str) -> SpecError:
        return SpecError(message, file=self.file, field=path or None)

    def warn(self, path: str, message: str) -> None:
        text = f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}"
        warnings.warn(SpecWarning(text), stacklevel=4)

    def mapping(self, value: Any, path: str, *, allow_null: bool = True) -> dict[Any, Any]:
        if value is None and allow_null:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {type_name(value)}")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, got {type_name(value)}")
        return value

    def string(self, value: Any, path: str) -> str:
        text = scalar_text(value)
        if text is None:
            raise self.error(path, f"expected a string, got {type_name(value)}")
        return text

    def integer(self, value: Any, path: str) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, f"expected an integer, got {type_name(value)}")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.error(path, "expected an integer, got a non-finite number")
            return math.trunc(value)  # yaml.v3 truncates a float literal into an int field
        return int(value)

    def boolean(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if isinstance(value, str) and value in _YAML11_BOOLS:
            return _YAML11_BOOLS[value]  # yaml.v3 still decodes these into a bool field
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {type_name(value)}")
        return value

    def unknown_keys(self, mapping: Mapping[Any, Any], known: Iterable[str], path: str) -> None:
        known_set = set(known)
        for key in mapping:
            if key not in known_set:
                where = f"{path}.{key}" if path else str(key)
                # once per field, not once per stage or task that carries it
                general = re.sub(r"\[\d+\]", "[]", where)
                if general not in self._warned:
                    self._warned.add(general)
                    self.warn(where, "unknown key (ignored)")
