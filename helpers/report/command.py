"""The ``report`` subcommand of ``python -m helpers``: argparse flags → `Options` → text or JSON.

torch is imported only when the command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="size, cost and fit of a model from a config.json, torchvision:/timm:NAME "
                                      "or module:callable (built on meta, offline)")
    p.add_argument("source", help="config.json path, torchvision:resnet50, timm:convnext_tiny or package.module:callable")
    p.add_argument("--dtype", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--gpus", type=int, default=1)
    p.add_argument("--gpu-memory", default="80GB", help="per GPU, e.g. 80GB (read as GiB), 24GiB")
    p.add_argument("--zero", type=int, default=0, choices=[0, 1, 2, 3])
    p.add_argument("--lora-rank", type=int, default=None)
    p.add_argument("--quant", default=None, choices=["int8", "nf4"])
    p.add_argument("--recompute", default="none", choices=["none", "selective", "full"])
    p.add_argument("--optimizer", default="adamw")
    p.add_argument("--depth", type=int, default=2, help="levels of the per-block table")
    p.add_argument("--json", action="store_true", help="one JSON object (schema: helpers.report.schema)")
    p.add_argument("--build-with-transformers", action="store_true",
                   help="build a Llama/Mistral/Mixtral config with transformers' own classes instead of "
                        "helpers.report.mirror (the same tree, tested equal; about 1.5 s slower)")


def run(args: argparse.Namespace) -> int:
    from helpers.report.build import Options, make_report, parse_memory  # noqa: PLC0415 - imports torch
    from helpers.report.render import render  # noqa: PLC0415
    from helpers.report.source import SourceError  # noqa: PLC0415

    try:
        options = Options(dtype=args.dtype, seq_len=args.seq_len, batch=args.batch, image_size=args.image_size,
                          gpus=args.gpus, gpu_memory_bytes=parse_memory(args.gpu_memory), zero=args.zero,
                          lora_rank=args.lora_rank, quant=args.quant, recompute=args.recompute,
                          optimizer=args.optimizer, depth=args.depth)
        report = make_report(args.source, options, mirror=not args.build_with_transformers)
    except (SourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else render(report))
    return 0
