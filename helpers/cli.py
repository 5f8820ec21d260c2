"""Command line: summarise a torch.nn layer written as its constructor call.

    python -m helpers summary "nn.LSTM(20, 64, num_layers=2)" --input "5,2,20"
    python -m helpers summary "nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))" --input 1,3,32,32
    python -m helpers summary "nn.Embedding(50257, 768)" --input 2,16 --dtype long

The expression is parsed, never evaluated: only calls of `torch.nn` module classes (as `nn.X`,
`torch.nn.X` or a bare `X`), with literal arguments (numbers, strings, booleans, None, tuples,
lists) or nested `nn.…` calls, are accepted. Anything else — names, attribute access outside
torch.nn, arithmetic on anything but numbers, lambdas, imports, ``device=`` (everything is built on the meta device, so
no size can allocate memory), a keyword given twice, expressions longer than `MAX_LENGTH`
characters or nested more than `MAX_DEPTH` levels deep (the constructor call itself is level 1,
each nested call, tuple or list one more) — is refused with a message saying what was found.

``--input`` takes a shape of non-negative integers (``5,2,20``, ``5x2x20`` or ``(5, 2, 20)``); a
negative first size (``--input -2,10``) is read as a shape, not as an option, and refused with the
reason, and so is a shape of more elements than a tensor can have (2**63 − 1).

Exit status: 0 with the summary table; 2 with a one-line ``error: …`` (or the plain-language
`helpers.trace.explain` of a failing forward pass) on stderr for a refused expression, a module
torch cannot build, a forward pass that fails, or a malformed ``--input``.

torch is imported only once the arguments are read, so ``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import math
import operator
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = ["parse_module", "main", "UnsafeExpression", "MAX_LENGTH", "MAX_DEPTH"]

MAX_LENGTH = 2000  # characters of one expression
MAX_DEPTH = 16     # levels of nested calls / tuples / lists, the outer call being level 1
MAX_NUMEL = 2**63 - 1  # elements of one tensor (torch sizes are int64)
_REFUSED_KWARGS = {"device": "everything is built on the meta device (shapes only)"}


class UnsafeExpression(ValueError):
    """The expression is not a plain torch.nn constructor call with literal arguments."""


def _module_class(func: ast.expr) -> type[nn.Module]:
    from torch import nn  # noqa: PLC0415 - torch is imported once the arguments are read

    parts: list[str] = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise UnsafeExpression(f"only calls like nn.Linear(...) are allowed, got {ast.unparse(func)!r}")
    parts.append(node.id)
    dotted = ".".join(reversed(parts))
    for prefix in ("torch.nn.", "nn.", ""):
        if dotted.startswith(prefix) and "." not in dotted[len(prefix):]:
            name = dotted[len(prefix):]
            cls = getattr(nn, name, None)
            if inspect.isclass(cls) and issubclass(cls, nn.Module):
                return cls
    raise UnsafeExpression(f"{dotted!r} is not a torch.nn module class")


def _literal(node: ast.expr) -> Any:
    """A plain literal: a number, a string, True/False/None, a signed number, or arithmetic of numbers."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str, type(None))):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _arithmetic(node)
    raise UnsafeExpression(f"arguments must be literals or nn.… calls, got {ast.unparse(node)!r}")


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
               ast.Div: operator.truediv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def _arithmetic(node: ast.BinOp) -> int | float:
    """Literal arithmetic such as ``16*30*30`` or ``2**10``: numbers and + - * / // % ** only, computed
    operator by operator (never evaluated as code); results beyond 2**63 − 1 are refused."""
    left, right = _literal(node.left), _literal(node.right)
    if not all(type(v) in (int, float) for v in (left, right)):
        raise UnsafeExpression(f"arithmetic is allowed on numbers only, got {ast.unparse(node)!r}")
    if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > MAX_NUMEL):
        raise UnsafeExpression(f"{ast.unparse(node)!r} is too large (exponents up to 64)")
    try:
        value = _ARITHMETIC[type(node.op)](left, right)
    except (ZeroDivisionError, OverflowError) as exc:
        raise UnsafeExpression(f"{ast.unparse(node)!r}: {exc}") from None
    if isinstance(value, complex) or abs(value) > MAX_NUMEL:
        raise UnsafeExpression(f"{ast.unparse(node)!r} is out of range (at most 2**63 − 1)")
    return value


def _value(node: ast.expr, depth: int) -> Any:
    """The value of an argument of a call or item of a container that is `depth` levels deep."""
    if isinstance(node, (ast.Call, ast.Tuple, ast.List)):
        if depth + 1 > MAX_DEPTH:
            raise UnsafeExpression(f"the expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Call):
            return _build(node, depth + 1)
        items = [_value(e, depth + 1) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    return _literal(node)


def _build(node: ast.Call, depth: int = 1) -> nn.Module:
    """Build the call `node`, which is `depth` levels deep (the outer call is level 1)."""
    cls = _module_class(node.func)
    args = []
    for a in node.args:
        if isinstance(a, ast.Starred):
            raise UnsafeExpression("*args are not allowed")
        args.append(_value(a, depth))
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise UnsafeExpression("**kwargs are not allowed")
        if kw.arg in _REFUSED_KWARGS:
            raise UnsafeExpression(f"{kw.arg}= is not allowed: {_REFUSED_KWARGS[kw.arg]}")
        if kw.arg in kwargs:  # Python refuses this when compiling; ast.parse does not check it
            raise UnsafeExpression(f"keyword argument {kw.arg}= is given twice in {ast.unparse(node)!r}")
        kwargs[kw.arg] = _value(kw.value, depth)
    try:
        return cls(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises, the user gets one line
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise ValueError(f"nn.{cls.__name__}({shown}) could not be built: "
                         f"{type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def parse_module(expression: str) -> nn.Module:
    """Build the torch.nn module described by `expression` (on the meta device), safely.

    >>> parse_module("nn.Linear(10, 5)")
    Linear(in_features=10, out_features=5, bias=True)
    """
    if len(expression) > MAX_LENGTH:
        raise UnsafeExpression(f"the expression is {len(expression):,} characters long; at most {MAX_LENGTH:,} are accepted")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise UnsafeExpression(f"not a Python expression: {getattr(exc, 'msg', None) or exc}") from None
    if not isinstance(tree.body, ast.Call):
        raise UnsafeExpression("the expression must be a single constructor call such as nn.Linear(10, 5)")
    import torch  # noqa: PLC0415

    with torch.device("meta"):
        return _build(tree.body)


def _shape(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.replace("x", ",").replace("(", "").replace(")", "").split(",")]
    if not all(re.fullmatch(r"[+-]?[0-9]+", p) for p in parts if p):  # no "2.5", "1e3", "2_0", "--2"
        raise argparse.ArgumentTypeError(f"--input must be comma-separated integers like 2,5,20, got {text!r}")
    dims = tuple(int(p) for p in parts if p)
    if not dims or any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"--input must be non-negative integers, got {text!r}")
    if math.prod(dims) > MAX_NUMEL or max(dims) > MAX_NUMEL:
        raise argparse.ArgumentTypeError(
            f"--input {text!r} is too large: a tensor has at most 2**63 - 1 = {MAX_NUMEL:,} elements "
            f"(torch sizes are 64-bit integers), this shape has {math.prod(dims):,}")
    return dims


def _join_negative_inputs(argv: list[str]) -> list[str]:
    """``--input -2,10`` → ``--input=-2,10``: argparse would read ``-2,10`` as an unknown option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--input" and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"--input={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="Dimensions & parameters helpers.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="per-layer shapes, parameters and FLOPs of an nn.… expression")
    p.add_argument("module", help='e.g. "nn.LSTM(20, 64, num_layers=2)"')
    p.add_argument("--input", type=_shape, action="append", required=True,
                   help="input shape, e.g. 5,2,20 (repeat for several inputs)")
    p.add_argument("--dtype", choices=["float", "long"], default="float",
                   help="dtype of the inputs (long for nn.Embedding indices)")
    from helpers.report.command import add_parser as add_report_parser  # noqa: PLC0415 - no torch import
    from helpers.report.command import run as run_report  # noqa: PLC0415

    add_report_parser(sub)
    args = parser.parse_args(_join_negative_inputs(sys.argv[1:] if argv is None else list(argv)))
    if args.command == "report":
        return run_report(args)

    import torch  # noqa: PLC0415 - `--help` and argument errors do not wait for torch

    from helpers.trace import explain, summary  # noqa: PLC0415

    try:
        module = parse_module(args.module)
    except ValueError as exc:  # UnsafeExpression is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dtype = torch.long if args.dtype == "long" else torch.float32
    try:
        inputs = tuple(torch.zeros(shape, dtype=dtype, device="meta") for shape in args.input)
    except (RuntimeError, ValueError, OverflowError, TypeError) as exc:  # one line, not a traceback
        print(f"error: cannot make an input of shape {args.input}: {_first_line(exc)}", file=sys.stderr)
        return 2
    try:
        table = summary(module, example_inputs=inputs)
    except Exception as exc:  # noqa: BLE001 - a failing forward pass is explained, not a traceback
        try:
            explained = explain(module, inputs)
            why = str(explained)
            if args.dtype == "float" and explained.layer_type in ("Embedding", "EmbeddingBag"):
                hint = "summary(..., dtypes=[torch.long])"
                cli_hint = "--dtype long on this command line (token ids are integers)"
                why = why.replace(hint, cli_hint) if hint in why else f"{why}\nFrom the CLI: add {cli_hint}."
        except Exception:  # noqa: BLE001
            why = f"{type(exc).__name__}: {_first_line(exc)}"
        shapes = ", ".join(str(tuple(s)) for s in args.input)
        print(f"error: the forward pass with input {shapes} failed.\n{why}", file=sys.stderr)
        return 2
    print(table)
    return 0
