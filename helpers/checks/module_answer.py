"""Answers that are ``nn.Module``s: build one, and describe it as plain JSON data.

A question whose answer is a module (``Question.probe`` is set) never sends the module anywhere:
the student's function is called with the case's arguments under ``torch.device("meta")`` (so
``nn.Linear(10**6, 10**6)`` costs no memory) and :func:`describe_module` turns the result into a
description — the only thing that leaves the graded kernel (the grader's runner, or the student's
own kernel for the instant ``check``). The reference module is described the same way in the
checking/grading process, and the verdict compares the two descriptions.

A probe (JSON, computed by the question from the case's arguments) says what to run::

    {"input": [2, 3, 28, 28], "values": 6}
    {"input": [2, 12], "ids": 100, "values": 6}     integer token ids in [0, 100) instead of floats
    {"input": [2, 16, 32, 32], "names": False}      the student designs the module: layer names are
                                                    theirs, so parameters are compared as a multiset
                                                    of shapes (and no values: their order is free)

A description::

    {"parameters": [["fc1.weight", [16, 8]], …],   named parameter shapes, in named_parameters() order
     "count": 280,                                  number of parameters
     "trainable": 280,                              of which requires_grad (a frozen base shows here)
     "input": [2, 3, 28, 28],                       the probe's input shape
     "output": [2, 10],                             forward's output shape on a meta input of that shape
                                                    (a list of shapes for a tuple output; None if it failed)
     "forward_error": "RuntimeError: …",            only when forward failed
     "values": [0.1234, …]}                         only with probe "values": the first values of the
                                                    flattened output on fixed weights and input (CPU)

Fixed weights: every floating parameter, in ``named_parameters()`` order, then every floating
buffer, is filled from ``torch.Generator().manual_seed(0)`` (parameters uniform in [-0.5, 0.5),
buffers uniform in [0.5, 1.5) so a running variance stays positive); the input is drawn next
from the same generator, uniform in [-1, 1) (or, with probe ``"ids": N``, integers in [0, N)). The
module is put in ``eval()`` mode.
Values are computed only for modules of at most :data:`VALUES_MAX_PARAMS` parameters.

Standard library + torch only, and no answers: this module is copied into the graded view
(see ``INFRASTRUCTURE`` in :mod:`helpers.checks.graded`).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["NotAModule", "warm_up", "build_module", "describe_module", "build_and_describe", "module_summary",
           "VALUES_MAX_PARAMS", "VALUES_MAX"]

#: largest module (in parameters) whose output values are computed on the CPU
VALUES_MAX_PARAMS = 2_000_000
#: most output values a description carries
VALUES_MAX = 16
_ERROR_LIMIT = 300


class NotAModule(TypeError):
    """The function returned something that is not an ``nn.Module`` (message: its type's name)."""


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_LIMIT else text[:_ERROR_LIMIT] + "…"


_WARM = False


def warm_up() -> None:
    """Run one tiny meta-device forward so torch's one-off set-up (its first meta matmul imports
    ``torch._dynamo``: seconds) happens before any time limit starts, not inside the first case."""
    global _WARM
    if not _WARM:
        import torch

        with torch.no_grad():
            torch.nn.Linear(2, 2, device="meta")(torch.empty(1, 2, device="meta"))
        _WARM = True


def build_module(fn: Callable, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` with ``torch.device("meta")`` as the default device."""
    import torch

    with torch.device("meta"):
        return fn(*args, **kwargs)


def _shapes(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return [int(n) for n in out.shape]
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return [[int(n) for n in o.shape] for o in out]
    raise TypeError(f"forward returned a {type(out).__name__}, not a tensor")


def _fill(module: Any) -> Any:
    """Move `module` to the CPU with the fixed weights; return the generator (for the input)."""
    import torch

    module.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in module.named_parameters():
            if p.is_floating_point():
                p.copy_(torch.rand(p.shape, generator=g) - 0.5)
        for _, b in module.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            else:
                b.zero_()
    return g


def describe_module(module: Any, probe: dict) -> dict:
    """The JSON description of `module` for `probe` (see the module docstring).

    Raises :class:`NotAModule` if `module` is not an ``nn.Module``; an error of forward is
    recorded in the description (``forward_error``), any other error propagates.
    """
    import torch
    from torch import nn

    if not isinstance(module, nn.Module):
        raise NotAModule(type(module).__name__)
    shape = [int(n) for n in probe["input"]]
    desc: dict = {"parameters": [[str(name), [int(n) for n in p.shape]] for name, p in module.named_parameters()],
                  "count": int(sum(p.numel() for p in module.parameters())),
                  "trainable": int(sum(p.numel() for p in module.parameters() if p.requires_grad)), "input": shape}
    if probe.get("names") is False:
        desc["names"] = False
    module.eval()
    module.to(device="meta")
    try:
        with torch.no_grad():
            dtype = torch.long if probe.get("ids") else torch.float32
            desc["output"] = _shapes(module(torch.empty(shape, dtype=dtype, device="meta")))
    except Exception as exc:  # the module is still broken: part of the answer, not a crash
        desc["output"] = None
        desc["forward_error"] = _clip(f"{type(exc).__name__}: {exc}")
        return desc
    n_values = min(int(probe.get("values", 0)), VALUES_MAX) if probe.get("names") is not False else 0
    if n_values > 0:
        if desc["count"] > VALUES_MAX_PARAMS:
            raise ValueError(f"the module has {desc['count']:,} parameters; this question runs modules of "
                             f"at most {VALUES_MAX_PARAMS:,} (check the sizes you pass to each layer)")
        g = _fill(module)
        ids = int(probe.get("ids") or 0)
        x = torch.randint(0, ids, shape, generator=g) if ids else torch.rand(shape, generator=g) * 2 - 1
        with torch.no_grad():
            out = module(x)
        first = out if isinstance(out, torch.Tensor) else out[0]
        desc["values"] = [float(v) for v in first.detach().reshape(-1)[:n_values].tolist()]
    return desc


def build_and_describe(fn: Callable, args: tuple, kwargs: dict, probe: dict) -> dict:
    """Build the module with :func:`build_module` and describe it: the one path the student's
    answer (checker and grader's runner) and the reference (checking/grading process) both take."""
    return describe_module(build_module(fn, args, kwargs), probe)


def module_summary(desc: Any) -> str:
    """A description in a few words, for a CSV cell or a feedback line: ``"280 parameters (280
    trainable), output (3, 10)"``, or why forward failed."""
    if not isinstance(desc, dict) or "parameters" not in desc:
        return "not a module"
    count, trainable = desc.get("count"), desc.get("trainable", desc.get("count"))
    text = f"{count:,} parameters" if isinstance(count, int) else "parameters ?"
    if isinstance(trainable, int) and trainable != count:
        text += f" ({trainable:,} trainable)"
    out = desc.get("output")
    if desc.get("forward_error"):
        return text + f", forward fails ({desc['forward_error'][:60]})"
    if isinstance(out, list) and out and all(isinstance(o, list) for o in out):
        return text + ", outputs " + ", ".join(str(tuple(o)) for o in out)
    return text + (f", output {tuple(out)}" if isinstance(out, list) else "")
