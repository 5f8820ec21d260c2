"""Compare a course model with an independent implementation tensor for tensor, through a name map.

``rename(our_name)`` returns the reference's name of the same tensor, or a tuple of names whose
tensors, concatenated along dim 0, make ours (a packed q/k/v projection against three Linears).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Rename = Callable[[str], "str | tuple[str, ...]"]


def _gather(ref: dict[str, torch.Tensor], names: "str | tuple[str, ...]") -> torch.Tensor:
    if isinstance(names, str):
        return ref[names]
    return torch.cat([ref[n] for n in names], dim=0)


def assert_same_state(ours: nn.Module, theirs: nn.Module, rename: Rename) -> None:
    """Every tensor of ours (parameters and buffers) has a counterpart of the same shape, and
    every tensor of theirs is used exactly once."""
    ref = theirs.state_dict()
    used: list[str] = []
    for name, tensor in ours.state_dict().items():
        names = rename(name)
        missing = [n for n in ((names,) if isinstance(names, str) else names) if n not in ref]
        assert not missing, f"{name} → {missing}: not in the reference"
        assert tuple(tensor.shape) == tuple(_gather(ref, names).shape), name
        used += [names] if isinstance(names, str) else list(names)
    assert sorted(used) == sorted(ref), f"unmatched reference tensors: {sorted(set(ref) - set(used))[:5]}"


@torch.no_grad()
def load_from(ours: nn.Module, theirs: nn.Module, rename: Rename) -> None:
    """Copy the reference's (random) weights into ours through the map."""
    ref = theirs.state_dict()
    ours.load_state_dict({name: _gather(ref, rename(name)) for name in ours.state_dict()})


def assert_same_logits(ours: nn.Module, theirs: nn.Module, rename: Rename, x: torch.Tensor) -> None:
    """With the reference's random weights copied in (both in eval mode), ours(x) equals the
    Hugging Face image classifier's logits for ``pixel_values=x``."""
    ours.eval()
    theirs.eval()
    load_from(ours, theirs, rename)
    torch.testing.assert_close(ours(x), theirs(pixel_values=x).logits)
