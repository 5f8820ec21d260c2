"""What one cookbook row is: an `Entry` (a layer, its formula, its shape rule) and the `Case`s that prove it.

Rows name every function by dotted path (``"helpers.formulas.linear_params"``), so the rows themselves
are data (`helpers.course.cookbook.entries`) and importing them imports nothing: `resolve` turns a path
into the object when it is needed, and `unresolved` lists every path of a set of rows that names
nothing (tests/test_cookbook.py asserts there is none).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from helpers import formulas
from helpers.course.cookbook.docstrings import call_text, first_paragraph, shapes_paragraph
from helpers.course.cookbook.render import section_link

__all__ = ["Shape", "Case", "Entry", "case", "resolve", "unresolved"]

Shape = tuple[int, ...]


def resolve(path: str) -> Any:
    """The object named by a dotted path: ``"helpers.models.resnet.Bottleneck"`` (imported only now, so
    the rows never import torch or a reference library when they are loaded).

    Raises LookupError, naming the path, when the module or the name does not exist.
    """
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise LookupError(f"a cookbook row names `{path}`, which does not exist ({exc})") from None


@dataclass(frozen=True)
class Case:
    """One configuration: ``cls(*args, **kwargs)`` run on inputs of `inputs` shapes.

    formula_args/formula_kwargs: how the formula is called (default: the same as the module, which
    works because `helpers.formulas` names and orders its arguments like torch's constructors).
    dtype: "float" or "long" (token ids) for the inputs, or one of those per input.
    factory: dotted path of what builds the module when it is not ``torch.nn.<cls>`` (a course
        model class of `helpers.models`, or a recipe of `helpers.course.cookbook.recipes` around an
        independent reference such as peft); `cls` is then the name shown. None: ``getattr(torch.nn, cls)``.
    config: dotted path of a config class (``helpers.models.llama.LlamaConfig``): args/kwargs
        build it and the factory receives it, shown as ``Cls(Config(…))``.
    count: dotted path of ``(module, inputs) → int``, what the formula is compared with
        (default `helpers.counting.count_params`), e.g. the parameters one token really uses.
    """

    cls: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ()
    formula_args: Optional[tuple[Any, ...]] = None
    formula_kwargs: Optional[dict[str, Any]] = None
    dtype: str | tuple[str, ...] = "float"
    factory: Optional[str] = None
    config: Optional[str] = None
    count: Optional[str] = None

    @property
    def module_text(self) -> str:
        name = f"nn.{self.cls}" if self.factory is None else self.cls
        if self.config is not None:
            return f"{name}({call_text(self.config.rpartition('.')[2], self.args, self.kwargs)})"
        return call_text(name, self.args, self.kwargs)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every dotted path this case names."""
        return tuple(p for p in (self.factory, self.config, self.count) if p is not None)

    def target(self) -> Callable[..., Any]:
        """The class or function that builds the module (``torch.nn.<cls>`` unless `factory`)."""
        if self.factory is None:
            import torch.nn as nn  # noqa: PLC0415
            return getattr(nn, self.cls)
        return resolve(self.factory)

    def build(self) -> Any:
        """The module of this configuration, on the current default device."""
        if self.config is not None:
            return self.target()(resolve(self.config)(*self.args, **self.kwargs))
        return self.target()(*self.args, **self.kwargs)

    def counted(self, module: Any, inputs: Sequence[Any]) -> int:
        """What the formula is compared with: `count` of (module, inputs), else ``count_params(module)``."""
        if self.count is not None:
            return resolve(self.count)(module, inputs)
        from helpers.counting import count_params  # noqa: PLC0415
        return count_params(module)

    def formula_call(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """(args, kwargs) the formula is called with: `formula_args`/`formula_kwargs`, else the module's."""
        return (self.args if self.formula_args is None else self.formula_args,
                self.kwargs if self.formula_kwargs is None else self.formula_kwargs)

    def dtypes(self) -> tuple[str, ...]:
        """One dtype name per input."""
        return (self.dtype,) * len(self.inputs) if isinstance(self.dtype, str) else self.dtype

    def bound(self) -> dict[str, Any]:
        """The constructor's arguments by name, defaults applied (as torch sees them)."""
        target = resolve(self.config) if self.config is not None else self.target()
        sig = inspect.signature(target)
        args = self.args
        if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
            # nn.RNN/GRU/LSTM take (*args, **kwargs): use the formula's torch-named signature
            sig, args = inspect.signature(formulas.rnn_params), (self.cls, *self.args)
        b = sig.bind(*args, **self.kwargs)
        b.apply_defaults()
        return dict(b.arguments)


def case(cls: str, *args: Any, inputs: Sequence[Shape], formula_args: Optional[tuple[Any, ...]] = None,
         formula_kwargs: Optional[dict[str, Any]] = None, dtype: str | tuple[str, ...] = "float",
         factory: Optional[str] = None, config: Optional[str] = None, count: Optional[str] = None,
         **kwargs: Any) -> Case:
    """A `Case` written like the torch call it makes: ``case("Linear", 10, 5, inputs=[(4, 10)], bias=False)``."""
    return Case(cls, tuple(args), kwargs, tuple(tuple(s) for s in inputs), formula_args, formula_kwargs, dtype,
                factory, config, count)


@dataclass(frozen=True)
class Entry:
    """One table row: a layer, its formula, its shape rule, and the cases that prove them.

    formula: dotted path of the `helpers.formulas` function (None: the layer has no parameters).
    shape_doc: dotted path of the function whose docstring states the shape rule (a `helpers.shapes`
        function, or the formula itself when its docstring has a "Shapes:" paragraph), or None.
    expected: dotted path of ``(case, input shapes) → the output shape(s)`` the rule predicts (nested
        like torch's; `helpers.course.cookbook.expected`).
    shape_rule: a fallback one-line rule when no docstring states it ("output shape = input shape").
    buffers: dotted path of the function counting the layer's buffers; its first paragraph joins the note.
    """

    layer: str
    formula: Optional[str]
    shape_doc: Optional[str]
    expected: str
    cases: tuple[Case, ...]
    shape_rule: Optional[str] = None
    note: str = ""
    paragraphs: int = 1
    shape_rule_note: str = ""
    chapter: Optional[tuple[str, str]] = None
    buffers: Optional[str] = None

    @property
    def title(self) -> str:
        return f"{self.layer} parameters and shapes"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every dotted path this row names (its own and its cases')."""
        own = (self.formula, self.shape_doc, self.expected, self.buffers)
        return (*(p for p in own if p is not None), *(p for c in self.cases for p in c.paths))

    def formula_function(self) -> Optional[Callable[..., int]]:
        """The formula (None: no parameters)."""
        return None if self.formula is None else resolve(self.formula)

    def expected_shape(self, case: Case, inputs: tuple[Shape, ...]) -> Any:
        """The output shape(s) the shape rule predicts for `case` on inputs of shapes `inputs`."""
        return resolve(self.expected)(case, inputs)

    @property
    def formula_text(self) -> str:
        note = " ".join(filter(None, (
            f"Buffers: {first_paragraph(resolve(self.buffers))}" if self.buffers else "", self.note)))
        if self.formula is None:
            return f"0 — nothing to learn; {note}" if note else "0 — nothing to learn (no parameters, no buffers)."
        text = first_paragraph(resolve(self.formula), formula=True, paragraphs=self.paragraphs)
        return f"{text} {note}".strip()

    @property
    def shape_text(self) -> str:
        if self.shape_doc is not None:
            doc = resolve(self.shape_doc)
            para = shapes_paragraph(doc) if self.shape_doc == self.formula else first_paragraph(doc, formula=True)
            if para:
                return f"{para} {self.shape_rule_note}".strip()
        return f"{self.shape_rule or ''} {self.shape_rule_note}".strip()

    @property
    def worked(self) -> str:
        """The first case as a worked count: ``nn.LSTM(20, 64) → 21,504 parameters`` (formula only;
        `prove` checks the same number against torch)."""
        first = self.cases[0]
        formula = self.formula_function()
        if formula is None:
            return f"{first.module_text} → 0 parameters"
        args, kwargs = first.formula_call()
        return f"{first.module_text} → {formula(*args, **kwargs):,} parameters"

    @property
    def link(self) -> Optional[tuple[str, str]]:
        """(text, href) of the chapter section that derives this row, e.g.
        ``("06 § 3 · Exact parameter counts …", "06_lstm_gru.ipynb#3-·-Exact-…")``, or None."""
        return section_link(self.chapter)

    @property
    def sources(self) -> str:
        names = [self.formula] if self.formula is not None else []
        if self.shape_doc is not None and self.shape_doc != self.formula:
            names.append(self.shape_doc)
        names += dict.fromkeys(c.factory for c in self.cases if c.factory)
        return ", ".join(n.removeprefix("helpers.") for n in names)


def unresolved(entries: Sequence[Entry]) -> list[str]:
    """``"layer: reason"`` for every dotted path of `entries` that names nothing (imports what they name)."""
    wrong = []
    for entry in entries:
        for path in entry.paths:
            try:
                resolve(path)
            except LookupError as exc:
                wrong.append(f"{entry.layer}: {exc}")
    return wrong
