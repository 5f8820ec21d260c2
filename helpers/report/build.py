"""`make_report(source, options)`: build the model on meta, then every number of the report, in order.

One job: orchestration. Counting is `helpers.report.counts`, FLOPs and traced activations
`helpers.report.flops`, memory and fit `helpers.report.memory`, the record `helpers.report.schema`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Optional

from helpers._text import dtype_bytes
from helpers.planner import GIB, model_dims
from helpers.report import counts, flops, memory
from helpers.report.schema import TOKEN_KINDS, Report
from helpers.report.source import BuiltModel, build_model
from helpers.scale import OPTIMIZERS, RECOMPUTE, quantized_bits_per_param

__all__ = ["Options", "make_report", "parse_memory", "QUANT_BITS"]

#: bits per quantised weight: int8 = 8 + one fp32 absmax per block of 64 (bitsandbytes' blockwise
#: int8), nf4 = 4 + double-quantised scales (QLoRA §3: 4.127 bits)
QUANT_BITS = {"int8": quantized_bits_per_param(8, 64, 32), "nf4": quantized_bits_per_param(4, 64, double_quant=True)}
_UNITS = {"": GIB, "g": GIB, "gb": GIB, "gib": GIB, "m": 2 ** 20, "mb": 2 ** 20, "mib": 2 ** 20,
          "t": 2 ** 40, "tb": 2 ** 40, "tib": 2 ** 40}


def parse_memory(text: str) -> float:
    """"80GB", "80 GiB", "80" (GiB) → bytes. A GPU sold as "80 GB" has 80 GiB (81,920 MiB), so GB is read
    as GiB, as `helpers.planner` does."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(f"--gpu-memory must be a size such as 80GB, 24GiB or 40 (GiB), got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


@dataclass
class Options:
    """The report's options (the command line's flags)."""

    dtype: str = "bf16"
    seq_len: Optional[int] = None  # default: min(max_position_embeddings, 4096), else 512
    batch: int = 1
    image_size: Optional[int] = None
    gpus: int = 1
    gpu_memory_bytes: float = 80 * GIB
    zero: int = 0
    lora_rank: Optional[int] = None
    quant: Optional[str] = None
    recompute: str = "none"
    optimizer: str = "adamw"
    depth: int = 2

    def check(self) -> None:
        if self.dtype not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"--dtype must be fp32, bf16 or fp16, got {self.dtype!r}")
        for name in ("batch", "gpus"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        for name in ("seq_len", "image_size", "lora_rank"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.zero not in (0, 1, 2, 3):
            raise ValueError(f"--zero must be 0, 1, 2 or 3, got {self.zero}")
        if self.quant not in (None, *QUANT_BITS):
            raise ValueError(f"--quant must be one of {', '.join(QUANT_BITS)}, got {self.quant!r}")
        if self.recompute not in RECOMPUTE:
            raise ValueError(f"--recompute must be one of {', '.join(RECOMPUTE)}, got {self.recompute!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")


def _position_limit(config: dict[str, Any]) -> Optional[int]:
    limit = config.get("max_position_embeddings") or config.get("n_positions") or config.get("n_ctx")
    return int(limit) if limit else None


def _seq_len(o: Options, config: dict[str, Any]) -> int:
    if o.seq_len is not None:
        return o.seq_len
    limit = _position_limit(config)
    return min(limit, 4096) if limit else 512


def make_report(source: str | BuiltModel, options: Options | None = None, *, mirror: bool = True) -> Report:
    """The report of `source` (a SOURCE string or an already built model) with `options`; a SOURCE is built
    after the options are checked, through `helpers.report.mirror` where it can be unless `mirror` is False."""
    o = Options(**asdict(options)) if options is not None else Options()
    o.check()
    built = build_model(source, mirror=mirror) if isinstance(source, str) else source
    config = built.config or {}
    o.seq_len = _seq_len(o, config)
    kind = flops.model_kind(built)
    model = built.model
    params = counts.param_counts(model)
    notes, assumptions = list(built.notes), []
    limit = _position_limit(config)
    if limit and o.seq_len > limit:
        notes.append(f"--seq-len {o.seq_len:,} is beyond the model's {limit:,} positions (max_position_embeddings "
                     "or n_positions): the numbers are for that length, which the model was not built to read")

    # weights: per dtype (accelerate's total: parameters + buffers), then the chosen form
    weight = {name: counts.weight_bytes(model, name) for name in ("fp32", "bf16", "int8", "int4")}
    quantized = counts.quantizable_params(model) if o.quant else 0
    bits = QUANT_BITS[o.quant] if o.quant else None
    weight["chosen"] = counts.weight_bytes(model, o.dtype, quantized=quantized, bits=bits)
    assumptions.append(f"weights in {o.dtype}" + (f"; {quantized:,} parameters (the matrix weights outside the "
                       f"embeddings and the output head) quantised to {o.quant}, {bits:.4g} bits each" if o.quant else "")
                       + "; buffers in their own dtype when it is smaller (accelerate's rule)")

    # trainable parameters: all, or LoRA's adapters (the base frozen)
    trainable = params["total"]
    if o.lora_rank:
        targets, how = counts.lora_targets(model, config.get("model_type"))
        trainable = counts.lora_trainable_params(model, targets, o.lora_rank)
        assumptions.append(f"LoRA r={o.lora_rank} on {len(targets)} linear layers ({how}): {trainable:,} "
                           f"trainable parameters (formulas.lora_params: r·(in + out) each); the base is frozen"
                           + (" and quantised (QLoRA)" if o.quant else ""))
    params = {**params, "trainable": trainable}
    frozen_bits = bits if o.quant else None
    if o.quant and not o.lora_rank:
        notes.append(f"--quant {o.quant} without --lora-rank: training memory assumes every weight is trained in "
                     f"{o.dtype}; the quantised weights only change the inference memory")
        frozen_bits = None
    act_bytes = 4 if o.dtype == "fp32" else 2
    bpe = dtype_bytes(o.dtype)

    if kind == "decoder_lm":
        dims = model_dims(model)  # GPT-2's n_layer/n_head under the names the KV-cache functions read
        config = {"num_hidden_layers": dims.num_hidden_layers, "num_attention_heads": dims.num_attention_heads,
                  "num_key_value_heads": dims.num_key_value_heads, "hidden_size": dims.hidden_size,
                  "head_dim": dims.head_dim, **{k: v for k, v in config.items() if v is not None}}
        flop = flops.decoder_flops(built, o.seq_len, o.batch)
        training, plan_assumptions, activations = memory.decoder_training(model, o, trainable, frozen_bits)
        assumptions += plan_assumptions
        kv = memory.kv_forms(config, o.seq_len, o.batch, bpe)
        inference, inf_assumptions = memory.decoder_inference(weight["chosen"], config, o, bpe)
    else:
        inputs, described = flops.example_inputs(built, kind, o.seq_len, o.batch, o.image_size)
        unit, units = ("token", o.batch * o.seq_len) if kind in TOKEN_KINDS else ("image", o.batch)
        flop, activations = flops.traced_costs(built, inputs, o.batch, units, unit, described, act_bytes)
        training, plan_assumptions = memory.other_training(params["total"], trainable, frozen_bits,
                                                           activations["total_bytes"], o)
        assumptions += plan_assumptions
        kv = None
        inference, inf_assumptions = memory.other_inference(weight["chosen"], activations["per_layer_bytes"], o)
    assumptions += inf_assumptions
    if training.largest_batch == 0:
        levers = [lever for lever, useful in (
            ("--recompute selective or full (activations)", o.recompute != "full"),
            ("--zero 3 (shards weights, grads and optimizer)", o.zero != 3),
            ("more --gpus (ZeRO shards over them)", o.zero > 0),
            ("--lora-rank r (train adapters only)", not o.lora_rank),
            ("--quant nf4 with --lora-rank (QLoRA)", not o.quant)) if useful]
        notes.append("training does not fit even at micro-batch 1" + (f"; levers: {'; '.join(levers)}" if levers else ""))
    assumptions.append("optimizer, precision and recomputation as in --optimizer/--dtype/--recompute; CUDA context, "
                       "allocator fragmentation and communication buffers (typically 1–3 GiB per GPU) not included")
    options = {k: v for k, v in asdict(o).items() if k != "depth"}
    return Report(source=built.source, library=built.library, architecture=built.name, kind=kind, options=options,
                  params=params, blocks=counts.block_rows(model, o.depth), weight_bytes=weight, flops=flop,
                  kv_cache=kv, activations=activations, training=training,
                  deepspeed=memory.deepspeed_model_states(params["total"], params["largest_layer"], o.gpus),
                  inference=inference, gpu_memory_bytes=o.gpu_memory_bytes, assumptions=assumptions, notes=notes)

