"""The grader's import refusals, applied outside its sandbox: in the student's kernel and nbgrader's.

The rule itself — which ``helpers`` modules and names graded work may use — is defined once, in
:func:`helpers.checks.graded.refused_name` (the grader's sandbox enforces it by building a view of
helpers without the rest). This module applies that same rule where the whole of helpers is
importable, so the three scores a student can see agree:

* :func:`refused_use` — the first refused helpers module (or name) a function uses, read from the
  function itself: the imports in its code, the globals and closure variables it reads (a module,
  or an object whose ``__module__`` is refused), the attributes it takes of an available module
  (``helpers.rnn_params``), and, transitively, every function or class of the student's own
  namespace it reads (``simple_rnn_params`` calling a ``vanilla_rnn_params`` that uses
  ``helpers.formulas``). The instant ``check`` prints :func:`refusal_warning` next to its ✅;
  under nbgrader's autograder the check fails instead.
* :func:`nbgrader_release` — what the first (locked) cell of the nbgrader release runs: under
  nbgrader (:func:`autograding`: ``NBGRADER_EXECUTION=autograde`` or ``validate``) it refuses, from then on, every import of a refused helpers
  module by the notebook's own code (``import`` statements whose caller's ``__name__`` is
  ``__main__``: helpers' own internal imports still work), raising the grader's
  :class:`~helpers.checks.graded.ForbiddenImport`, exactly where the sandbox would; and it marks
  the kernel as running the release (:func:`is_nbgrader_release`). A notebook without that cell —
  ``exercises/``, not the release — fails every check under autograde with
  :data:`NOT_THE_RELEASE`.

Standard library only: copied into the grader's graded view (the release's first cell imports it
there too, where :func:`nbgrader_release` does nothing).
"""

from __future__ import annotations

import builtins
import dis
import functools
import inspect
import os
import types
from typing import Any, Callable, Optional

from helpers.checks.graded import ForbiddenImport, forbidden_message, refused_name

__all__ = ["refused_use", "refusal_warning", "nbgrader_release", "is_nbgrader_release", "autograding",
           "NOT_THE_RELEASE", "refuse_notebook_imports"]

NOT_THE_RELEASE = ("this is not the nbgrader release of the notebook — download the release from your "
                   "course (nbgrader grades only the notebook it released: its cells carry nbgrader's metadata)")
_LIMIT = 400  # objects visited at most by refused_use (a notebook's functions and what they read)
_release: Optional[str] = None  # the chapter whose nbgrader release this kernel runs (under autograde)


def refusal_warning(name: str) -> str:
    """``this function uses helpers.formulas, which the grader refuses — it will score 0``."""
    return f"this function uses {name}, which the grader refuses — it will score 0"


def autograding() -> bool:
    """True inside nbgrader's autograder or validator (``NBGRADER_EXECUTION`` is ``autograde`` or
    ``validate`` in the kernel): the student's "Validate" button predicts the autograder's score."""
    return os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")


# --------------------------------------------------------------------------- static: what a function uses

def _codes(code: types.CodeType) -> list[types.CodeType]:
    """`code` and every code object nested in it (inner functions, lambdas, comprehensions)."""
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found += _codes(const)
    return found


def _imports(code: types.CodeType) -> Optional[str]:
    """The first refused import statement in `code` (``import helpers.formulas``, ``from helpers
    import formulas``, ``from helpers.shapes import conv2d_output_shape``)."""
    module = ""
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME":
            module = str(ins.argval)
            if refused_name(module):
                return refused_name(module)
        elif ins.opname == "IMPORT_FROM" and refused_name(module, str(ins.argval)):
            return refused_name(module, str(ins.argval))
    return None


def _module_use(module: types.ModuleType, attributes: frozenset[str], depth: int = 0) -> Optional[str]:
    """The refused part of `module` the code reaches: the module itself, or one of its attributes
    named in the code (``helpers.formulas`` as ``helpers.formulas.rnn_params`` or ``helpers.rnn_params``)."""
    name = module.__name__
    if refused_name(name) or not (name == "helpers" or name.startswith("helpers.")) or depth > 4:
        return refused_name(name)
    for attribute in sorted(attributes & set(vars(module))):
        value = vars(module)[attribute]
        found = (_module_use(value, attributes, depth + 1) if isinstance(value, types.ModuleType)
                 else refused_name(name, attribute))
        if found:
            return found
    return None


def _value_use(value: Any, attributes: frozenset[str], home: str, todo: list) -> Optional[str]:
    """The refused helpers part `value` (a global or closure variable the code reads) is; a function
    or class of the student's namespace `home` is queued for a look of its own."""
    if isinstance(value, types.ModuleType):
        return _module_use(value, attributes)
    if isinstance(value, (types.FunctionType, type, types.MethodType, functools.partial,
                          staticmethod, classmethod, property)):
        if getattr(value, "__module__", None) == home or not isinstance(value, (types.FunctionType, type)):
            todo.append(value)
            return None
        return refused_name(str(value.__module__), value.__name__)
    kind = type(value)
    if kind.__module__ == home:
        todo.append(kind)
        return None
    return refused_name(kind.__module__, kind.__name__)


def _function_use(fn: types.FunctionType, home: str, todo: list) -> Optional[str]:
    """What `fn` (the student's) uses: refused imports in its code, then each global and closure
    variable it reads."""
    codes = _codes(fn.__code__)
    attributes = frozenset(n for code in codes for n in code.co_names)
    for code in codes:
        found = _imports(code)
        if found:
            return found
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(cell.cell_contents)
        except ValueError:  # a closure variable not assigned yet
            pass
    read = [fn.__globals__[n] for n in sorted(attributes) if n in fn.__globals__] + cells
    for value in read:
        found = _value_use(value, attributes, home, todo)
        if found:
            return found
    return None


def _parts(obj: Any) -> list:
    """What a wrapper or class of the student's stands for: its functions, bases, wrapped callables."""
    if isinstance(obj, (staticmethod, classmethod)):
        return [obj.__func__]
    if isinstance(obj, property):
        return [f for f in (obj.fget, obj.fset, obj.fdel) if f is not None]
    if isinstance(obj, types.MethodType):
        return [obj.__func__]
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if isinstance(obj, type):
        return list(obj.__bases__) + list(vars(obj).values())
    return []


def refused_use(answer: Callable) -> Optional[str]:
    """The first helpers module (or name) that `answer` uses and the grader refuses, else None.

    `answer` is a student's function or class; the functions and classes of its own namespace that
    it reads are followed too (at most a few hundred objects). Read statically (the code is not run),
    so a refused name only in a branch that never runs is reported as well.
    """
    home = getattr(answer, "__module__", None) or "__main__"
    todo: list = [answer]
    seen: set[int] = set()
    while todo and len(seen) < _LIMIT:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType) and obj.__module__ == home:
            found = _function_use(obj, home, todo)
        elif isinstance(obj, type) and obj.__module__ != home:
            found = refused_name(obj.__module__, obj.__name__)
        elif isinstance(obj, types.FunctionType):
            found = refused_name(str(obj.__module__), obj.__name__)
        else:
            todo += [p for p in _parts(obj) if inspect.isfunction(p) or inspect.isclass(p) or _parts(p)]
            found = None
        if found:
            return found
    return None


# --------------------------------------------------------------------------- nbgrader's kernel

class _NotebookImports:
    """``builtins.__import__`` refusing what the grader refuses, for the notebook's own code only."""

    def __init__(self, original: Callable) -> None:
        self.original = original

    def __call__(self, name: str, globals: Optional[dict] = None, locals: Optional[dict] = None,
                 fromlist: tuple = (), level: int = 0) -> Any:
        if level == 0 and globals is not None and globals.get("__name__") == "__main__":
            refused = refused_name(name)
            if refused:
                raise ForbiddenImport(forbidden_message(name), name=name)
            for item in fromlist or ():
                if item != "*" and refused_name(name, item):
                    raise ForbiddenImport(forbidden_message(name, item), name=f"{name}.{item}")
        return self.original(name, globals, locals, fromlist, level)


def refuse_notebook_imports() -> None:
    """Install :class:`_NotebookImports` (once) as ``builtins.__import__``."""
    if not isinstance(builtins.__import__, _NotebookImports):
        builtins.__import__ = _NotebookImports(builtins.__import__)


def nbgrader_release(chapter: str) -> None:
    """The nbgrader release's first cell: under autograde, refuse what the grader refuses and mark
    the kernel as running chapter `chapter`'s release; elsewhere (the student's Jupyter, the
    grader's sandbox) nothing."""
    global _release
    if autograding():
        _release = str(chapter)
        refuse_notebook_imports()


def is_nbgrader_release() -> bool:
    """True once the release's first cell ran in this kernel under autograde (:func:`nbgrader_release`)."""
    return _release is not None
