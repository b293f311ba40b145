"""What is wrong with a YAML file, in one line: the files users and operators hand the CLI (policies,
kubeconfigs, scheduler configurations) are refused naming the problem and where it is, never with a
traceback or yaml's four-line excerpt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`not valid YAML: <problem> (line L, column C)`, from yaml's own account of the error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"not valid YAML: {problem} (line {mark.line + 1}, column {mark.column + 1})"
    return "not valid YAML: " + " ".join(str(exc).split())


def utf8_problem(data: bytes, exc: UnicodeDecodeError) -> str:
    """`is not UTF-8 text (byte 0x.. at offset N)`: a binary file given where a YAML one belongs."""
    return f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"


def read_text(path: Path) -> str:
    """A file as UTF-8 text: OSError as reading raises it, ValueError (`utf8_problem`) for a binary file, so a
    loader names the file and the byte instead of passing on a UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(utf8_problem(data, exc)) from None


class YamlFileError(ValueError):
    """Why a YAML file could not be read, in one line; the caller names the file (and the flag)."""


def load_yaml_file(path: Path) -> Any:
    """A YAML file's one document: YamlFileError if it cannot be read, is not UTF-8 text, is not YAML, or is
    refused by `load_one` (an alias bomb, a repeated key, deeper than MAX_DEPTH)."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise YamlFileError(f"cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise YamlFileError(str(exc)) from exc
    return load_yaml_text(text)


def load_yaml_text(text: str) -> Any:
    """`load_one`, with whatever is wrong with the text as one YamlFileError line; the caller names the source."""
    try:
        return load_one(text)
    except yaml.YAMLError as exc:
        raise YamlFileError(yaml_problem(exc)) from exc
    except RecursionError as exc:  # the YAML composer recurses once per level of nesting
        raise YamlFileError("nested too deep") from exc
    except YamlShapeError as exc:
        raise YamlFileError(exc.problem) from exc


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when installed: 10x faster
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlShapeError(ValueError):
    """A document that parses but must not be loaded (`node_problem`): `document` is its place among the file's
    non-empty documents (1-based)."""

    def __init__(self, document: int, problem: str) -> None:
        super().__init__(problem)
        self.document = document
        self.problem = problem


def node_problem(root: yaml.Node, *, max_depth: int, max_values: int) -> str:
    """What makes a composed YAML document unsafe or ambiguous to load ('' if nothing), before it is built.

    Each distinct node is visited once (an alias is the node it names, so a "billion laughs" of a few hundred
    bytes costs a few dozen visits), while the count of values the document comes to counts every alias as
    what it repeats: a document past `max_values` values, nested past `max_depth` levels, whose alias
    contains itself, or a mapping that gives one key twice (YAML would keep the last silently) is refused.

    Past `max_values`, aliases are blamed only if the document has one: a long but plain list (100,000 cluster
    names) is told where it is and how long, not called a 'billion laughs' (outside QA N4)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    place: dict[int, tuple[yaml.Node, str]] = {}  # a node's first parent and its step from there (.key or [i])
    referred: set[int] = set()  # nodes some parent has counted: counted again, a node is an alias's
    aliased = False
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            open_.discard(key)
            for kid in kids:
                aliased = aliased or id(kid) in referred
                referred.add(id(kid))
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > max_values:
                if aliased:
                    return (f"comes to more than {max_values} values, counting each alias (*name) as the values "
                            "it repeats; this file needs far fewer (aliases that multiply, a 'billion laughs'?)")
                return _too_many(node, _path(node, place, root), max_values)
            if depth[key] > max_depth + 1:
                return f"nested more than {max_depth} levels deep"
            continue
        if key in size:
            continue
        if key in open_:
            return f"an alias (line {node.start_mark.line + 1}) refers to a node that contains it: a recursive value"
        open_.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            problem = _duplicate_key(node)
            if problem:
                return problem
        for step, kid in _steps(node):
            place.setdefault(id(kid), (node, step))
        stack.extend((k, False) for k in kids if id(k) not in size)
    return ""


def _too_many(node: yaml.Node, path: str, max_values: int) -> str:
    """The message for a document past `max_values` without an alias: the limit, and where the bulk is."""
    entries = len(node.value) if isinstance(node, yaml.MappingNode | yaml.SequenceNode) else 1
    what = "keys" if isinstance(node, yaml.MappingNode) else "entries"
    where = f"{path} has {entries} {what}" if path else f"it has {entries} {what} at its top level"
    return (f"comes to more than {max_values} values (each key, value and list entry counts), the most a "
            f"document may have: {where}")


def _steps(node: yaml.Node) -> list[tuple[str, yaml.Node]]:
    """Each child of a mapping or sequence with its step in a field path: `.key` (the key's own node too), `[i]`."""
    if isinstance(node, yaml.SequenceNode):
        return [(f"[{i}]", kid) for i, kid in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[str, yaml.Node]] = []
        for k, v in node.value:
            step = f".{k.value}" if isinstance(k, yaml.ScalarNode) else f"[{k.start_mark.line + 1}]"
            out += [(step, k), (step, v)]
        return out
    return []


def _path(node: yaml.Node, place: dict[int, tuple[yaml.Node, str]], root: yaml.Node) -> str:
    """The field path from `root` to `node` (spec.clusters.names), by each node's first parent."""
    steps: list[str] = []
    while node is not root and id(node) in place:
        node, step = place[id(node)]
        steps.append(step)
    return "".join(reversed(steps)).lstrip(".")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _duplicate_key(node: yaml.MappingNode) -> str:
    seen: dict[tuple[str, str], int] = {}
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode) or k.tag == _MERGE_TAG:
            continue
        line = k.start_mark.line + 1
        if (k.tag, k.value) in seen:
            first = seen[(k.tag, k.value)]
            where = f"line {line}" if first == line else f"lines {first} and {line}"
            return (f"key {k.value[:63]!r} is given twice in one mapping ({where}); YAML would keep only the last, "
                    "so give it once")
        seen[(k.tag, k.value)] = line
    return ""


def load_documents(text: str, *, max_depth: int, max_values: int) -> list[Any]:
    """Every non-empty document of a YAML stream, each checked by `node_problem` before it is built.

    Raises yaml.YAMLError (not YAML), RecursionError (nested deeper than the parser recurses) or
    YamlShapeError (a document that parses but is refused, with its place in the file)."""
    loader = _Loader(text)
    out: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
                continue  # an empty document (`---` twice, a comment): nothing to submit
            problem = node_problem(node, max_depth=max_depth, max_values=max_values)
            if problem:
                raise YamlShapeError(len(out) + 1, problem)
            data = loader.construct_document(node)
            if data is not None:
                out.append(data)
    finally:
        loader.dispose()
    return out


MAX_DEPTH = 64
"""Levels of nesting an operator's file (policy, fleet, trust, access, scheduler configuration) may have."""
MAX_VALUES = 1_000_000
"""Values such a file may come to, counting each alias as what it repeats: a national fleet of a thousand
clusters comes to tens of thousands; a few hundred bytes of aliases that multiply would come to billions."""


def load_one(text: str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> Any:
    """The one document of a YAML text (None if it is empty), checked by `node_problem` before it is built,
    so a file of nested aliases is refused in milliseconds instead of taking the process's memory.

    Raises yaml.YAMLError (not YAML, or more than one document), RecursionError (nested deeper than the
    parser recurses) or YamlShapeError. Read by PyYAML's own parser, not libyaml's: these files are read
    once, and its account of a syntax error ("expected the node content, but found '<stream end>'") is
    the plainer one for an operator."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = node_problem(node, max_depth=max_depth, max_values=max_values)
        if problem:
            raise YamlShapeError(1, problem)
        return loader.construct_document(node)
    finally:
        loader.dispose()
