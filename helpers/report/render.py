"""The text form of a `Report` (what ``python -m helpers report SOURCE`` prints without ``--json``)."""

from __future__ import annotations

from helpers._text import format_bytes, si
from helpers.report.schema import TOKEN_KINDS, MemoryEstimate, Report

__all__ = ["render"]


def _memory(title: str, m: MemoryEstimate, gpu: float, what: str) -> list[str]:
    lines = [f"{title} (per GPU)"]
    lines += [f"  {name:<12}{format_bytes(v):>12}" for name, v in m.parts.items()]
    verdict = "fits" if m.fits else "does NOT fit"
    lines.append(f"  {'total':<12}{format_bytes(m.total):>12}  → {verdict} in {format_bytes(gpu)}")
    if m.largest_batch is not None:
        lines.append(f"  largest {what} that fits: {m.largest_batch:,}")
    if m.largest_context is not None:
        lines.append(f"  largest context that fits at this batch: {m.largest_context:,} tokens")
    return lines


def render(r: Report) -> str:
    """Sections: parameters, blocks, weights, FLOPs, KV cache, activations, training, inference, assumptions.

    A model that reads images (vision, diffusion) shows no seq_len and no "active per token" (unless it
    routes, i.e. active < total); its input size is in the FLOPs method line."""
    o, p = r.options, r.params
    tokens = r.kind in TOKEN_KINDS
    size = (f"seq_len {o['seq_len']}, " if tokens else
            f"image size {o['image_size']}, " if o["image_size"] else "")
    active = f"active per token {p['active']:,}   " if tokens or p["active"] != p["total"] else ""
    out = [f"{r.architecture} ({r.library}, {r.kind}) from {r.source}",
           f"options: dtype {o['dtype']}, {size}batch {o['batch']}, {o['gpus']} GPU(s) × "
           f"{format_bytes(o['gpu_memory_bytes'])}, ZeRO {o['zero']}"
           + (f", LoRA r={o['lora_rank']}" if o["lora_rank"] else "") + (f", {o['quant']}" if o["quant"] else ""),
           "", "parameters",
           f"  total {p['total']:,}   trainable {p['trainable']:,}   {active}"
           f"buffers {p['buffers']:,}   largest layer {p['largest_layer']:,}", "", "blocks"]
    for b in r.blocks:
        label = "  " * b.depth + b.name
        rep = f"{b.repeat} × {b.params:,}" if b.repeat > 1 else f"{b.params:,}"
        out.append(f"{label:<48}{b.type:<32}{rep:>24}")
    w = r.weight_bytes
    out += ["", "weights (parameters + buffers)",
            "  " + "   ".join(f"{k} {format_bytes(w[k])}" for k in ("fp32", "bf16", "int8", "int4"))
            + f"   chosen {format_bytes(w['chosen'])}", "", f"FLOPs (per {r.flops['unit']})",
            f"  forward of the batch {si(r.flops['forward'])}   per {r.flops['unit']} {si(int(r.flops['per_unit']))}"
            + (f"   decode step {si(r.flops['decode_per_token'])}" if r.flops["decode_per_token"] else ""),
            f"  method: {r.flops['method']}"]
    if r.kv_cache:
        out += ["", f"KV cache (per token, and at {o['batch']} × {o['seq_len']} tokens)"]
        out += [f"  {kv.form:<50}{format_bytes(kv.per_token_bytes):>12}{format_bytes(kv.at_seq_len_bytes):>12}"
                for kv in r.kv_cache]
    if r.activations:
        a = r.activations
        # a decoder LM: the planner's per-layer formula × L; a traced pass: Σ of unequal leaf outputs
        size = (f"  per layer {format_bytes(a['per_layer_bytes'])} × {a['layers']} = {format_bytes(a['total_bytes'])}"
                if r.kind == "decoder_lm" else
                f"  {a['layers']} leaf modules: Σ {format_bytes(a['total_bytes'])}, the largest "
                f"{format_bytes(a['per_layer_bytes'])}")
        out += ["", "activations (training, kept for backward)", size, f"  formula: {a['formula']}"]
    out += ["", *_memory("training", r.training, r.gpu_memory_bytes, "micro-batch"),
            f"  DeepSpeed's estimators would say: ZeRO-2 {format_bytes(r.deepspeed['zero2'])}, "
            f"ZeRO-3 {format_bytes(r.deepspeed['zero3'])} of model states",
            "", *_memory("inference", r.inference, r.gpu_memory_bytes, "batch"), "", "assumptions"]
    out += [f"  - {a}" for a in r.assumptions]
    if r.notes:
        out += ["", "notes", *(f"  - {n}" for n in r.notes)]
    return "\n".join(out)
