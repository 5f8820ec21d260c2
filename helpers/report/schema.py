"""The typed record of one report, and the JSON schema ``python -m helpers report --json`` follows.

`Report` is what `helpers.report.compute.make_report` returns and what `helpers.report.render` and
``--json`` print; ``Report.to_json()`` emits exactly `JSON_SCHEMA` (``tests/test_report.py``
validates every report it makes against it). Bytes are plain numbers of bytes (never GiB), FLOPs
are FLOPs (2 per multiply-accumulate, FlopCounterMode's convention), counts are integers; a part
that does not apply to the model (a KV cache of a CNN) is ``null``.

Schema (version `SCHEMA_VERSION`), top-level keys:

    schema_version  int
    source          str      the SOURCE as given; library ("transformers", "diffusers", "torchvision",
                             "timm", "python"), architecture (class or model name), kind ("decoder_lm",
                             "encoder", "encoder_decoder", "vision", "diffusion", "other")
    options         object   the options the numbers were computed with (dtype, seq_len, batch,
                             image_size, gpus, gpu_memory_bytes, zero, lora_rank, quant, recompute, optimizer)
    params          object   total, trainable, active (MoE: what one token uses), buffers, largest_layer
                             (parameters of the largest single module, DeepSpeed's ZeRO-3 gather)
    blocks          array    {name, type, params, repeat, depth} — the top levels of the module tree,
                             identical siblings folded into one row with repeat = how many
    weight_bytes    object   {fp32, bf16, int8, int4, chosen}: parameters + buffers (accelerate's total)
    flops           object   unit ("token" or "image"), forward (one forward pass of the batch: batch × seq_len
                             tokens, or batch images), per_unit (forward / tokens or images: a decoder's
                             prefill FLOPs per token), decode_per_token (decoders: one step at seq_len of
                             context, else null), method
    kv_cache        array|null  {form, per_token_bytes, at_seq_len_bytes}, one per cache form
    activations     object|null  per_layer_bytes, layers, total_bytes, formula
    training        object   parts {weights, grads, optimizer, activations} per GPU, total, fits, largest_batch
    deepspeed       object   model states per GPU in DeepSpeed's estimators' accounting (zero2, zero3)
    inference       object   parts {weights, kv_cache | activations}, total, fits, largest_batch, largest_context
    gpu_memory_bytes number
    assumptions     array of str  every assumption behind a number
    notes           array of str  what was not measured, fallbacks
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["SCHEMA_VERSION", "JSON_SCHEMA", "KINDS", "TOKEN_KINDS", "BlockRow", "KVForm", "MemoryEstimate",
           "Report"]

SCHEMA_VERSION = 1
#: a report's kinds; the first three read tokens (the others images or latents: no sequence length, nothing per token)
KINDS = ("decoder_lm", "encoder", "encoder_decoder", "vision", "diffusion", "other")
TOKEN_KINDS = KINDS[:3]


@dataclass(frozen=True)
class BlockRow:
    """One row of the per-block table: a module (or `repeat` identical siblings) and its parameters."""

    name: str
    type: str
    params: int  # of ONE of the `repeat` siblings
    repeat: int
    depth: int


@dataclass(frozen=True)
class KVForm:
    """One way of keeping the key/value cache, and its bytes."""

    form: str
    per_token_bytes: float  # for one sequence, one more token of context (at short context)
    at_seq_len_bytes: float  # for `batch` sequences of `seq_len` tokens


@dataclass
class MemoryEstimate:
    """Per-GPU bytes by part, whether they fit in the GPU, and the largest batch / context that fits."""

    parts: dict[str, float]
    total: float
    fits: bool
    largest_batch: Optional[int] = None  # 0 = not even one; None = not computed
    largest_context: Optional[int] = None


@dataclass
class Report:
    """Everything `python -m helpers report` prints (see the module docstring for each key)."""

    source: str
    library: str
    architecture: str
    kind: str
    options: dict[str, Any]
    params: dict[str, int]
    blocks: list[BlockRow]
    weight_bytes: dict[str, float]
    flops: dict[str, Any]
    kv_cache: Optional[list[KVForm]]
    activations: Optional[dict[str, Any]]
    training: MemoryEstimate
    deepspeed: dict[str, float]
    inference: MemoryEstimate
    gpu_memory_bytes: float
    assumptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


_NUM = {"type": "number", "minimum": 0}
_INT = {"type": "integer", "minimum": 0}
_OPT_INT = {"type": ["integer", "null"], "minimum": 0}


def _obj(props: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": sorted(props), "additionalProperties": extra}


_MEMORY = _obj({"parts": {"type": "object", "additionalProperties": _NUM}, "total": _NUM, "fits": {"type": "boolean"},
                "largest_batch": _OPT_INT, "largest_context": _OPT_INT})

#: JSON Schema (draft 2020-12) of ``Report.to_json()``.
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "python -m helpers report --json",
    **_obj({
        "schema_version": {"const": SCHEMA_VERSION},
        "source": {"type": "string"}, "library": {"enum": ["transformers", "diffusers", "torchvision", "timm", "python"]},
        "architecture": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "options": _obj({"dtype": {"type": "string"}, "seq_len": _INT, "batch": _INT, "image_size": _OPT_INT,
                         "gpus": _INT, "gpu_memory_bytes": _NUM, "zero": {"enum": [0, 1, 2, 3]},
                         "lora_rank": _OPT_INT, "quant": {"enum": [None, "int8", "nf4"]},
                         "recompute": {"enum": ["none", "selective", "full"]}, "optimizer": {"type": "string"}}),
        "params": _obj({"total": _INT, "trainable": _INT, "active": _INT, "buffers": _INT, "largest_layer": _INT}),
        "blocks": {"type": "array", "items": _obj({"name": {"type": "string"}, "type": {"type": "string"},
                                                   "params": _INT, "repeat": {"type": "integer", "minimum": 1},
                                                   "depth": {"type": "integer", "minimum": 1}})},
        "weight_bytes": _obj({"fp32": _NUM, "bf16": _NUM, "int8": _NUM, "int4": _NUM, "chosen": _NUM}),
        "flops": _obj({"unit": {"enum": ["token", "image"]}, "forward": {"type": ["integer", "null"], "minimum": 0},
                       "per_unit": _NUM,
                       "decode_per_token": {"type": ["integer", "null"], "minimum": 0},
                       "method": {"type": "string"}}),
        "kv_cache": {"type": ["array", "null"],
                     "items": _obj({"form": {"type": "string"}, "per_token_bytes": _NUM, "at_seq_len_bytes": _NUM})},
        "activations": {"oneOf": [{"type": "null"},
                                  _obj({"per_layer_bytes": _NUM, "layers": _INT, "total_bytes": _NUM,
                                        "formula": {"type": "string"}})]},
        "training": _MEMORY,
        "deepspeed": _obj({"zero2": _NUM, "zero3": _NUM}),
        "inference": _MEMORY,
        "gpu_memory_bytes": _NUM,
        "assumptions": {"type": "array", "items": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string"}},
    }),
}
