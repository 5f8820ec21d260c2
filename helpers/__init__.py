"""helpers — the importable toolkit of the "Dimensions and Parameters" course.

Core (pure arithmetic or torch introspection, nothing about homework or widgets):
    helpers.formulas  closed-form parameter counts, one per torch layer, with breakdowns
    helpers.shapes    output-size arithmetic and check_shape
    helpers.counting  count_params, count_buffers, param_table (tied tensors counted once)
    helpers.moe       moe_counts, active_params (Mixture-of-Experts: what one token uses)
    helpers.cost      FLOPs/MACs, weight and training memory, attention and KV-cache bytes
    helpers.trace     summary (per-layer shapes, params, FLOPs; meta device) and explain
                      (parts: summary, explain, _forward, _flops, _text)
    helpers.models    the reference models the chapters share, each defined once
Chapter tools (built on the core):
    helpers.scale, helpers.planner, helpers.inference   training at scale, will-it-fit, inference cost
    helpers.activations                                 what autograd saves for backward
    helpers.distributed, helpers.comm, helpers.parallelism, helpers.parallel_runs   chapter 16 on gloo ranks
    helpers.report    ``python -m helpers report``: size, cost and fit of an engineer's model
    helpers.cli       ``python -m helpers summary "nn.LSTM(20, 64)"``
Homework (built on the core):
    helpers.checks    instant exercise feedback;  helpers.exercises  solutions/ → exercises/
    helpers.grade     batch grader (CLI);         helpers.grading    its parts, one job per module
    helpers.widgets   ipywidgets explorers
Building the course (imported by name, never by the chapters' arithmetic):
    helpers.course    notebooks (re-execute in place), site + site_search (the static site),
                      cookbook (notebook 99's proven table), diagrams (block diagrams of 06, 08, 10)

The pure-arithmetic core is re-exported, so ``from helpers import conv_params`` works; the
modules that import torch (``counting``, ``trace``, ``models``) or build widgets are imported by
name (``from helpers.counting import count_params``), so ``import helpers`` never imports torch.
Adding a public name to formulas/shapes/cost: add it to that module's ``__all__`` and one import
line here (tests/test_project.py checks both lists agree).
"""

from types import ModuleType as _ModuleType

from .cost import (BYTES_PER_ELEMENT, OPTIMIZER_STATES, TrainingMemory, attention_scores_bytes, conv_flops,
                   conv_macs, depthwise_separable_ratio, kv_cache_bytes, linear_flops, linear_macs,
                   training_memory, weight_bytes)
from .cost import transformer_activation_bytes, zero_model_state_bytes
from .cost import format_bytes
from .cost import kv_cache_bytes_from_config, quantized_bytes_per_element
from .formulas import (RNN_GATES, batchnorm_buffers, batchnorm_params, batchnorm_params_breakdown,
                       bilinear_params, conv_params, conv_params_breakdown, conv_transpose_params,
                       conv_transpose_params_breakdown, embedding_params, embedding_params_breakdown,
                       groupnorm_params, groupnorm_params_breakdown, layernorm_params, layernorm_params_breakdown,
                       linear_params, linear_params_breakdown, mha_params, mha_params_breakdown, prelu_params,
                       rnn_params, rnn_params_breakdown, transformer_layer_params,
                       transformer_layer_params_breakdown)
from .formulas import DECODER_LM_PARTS, decoder_lm_params
from .formulas import lora_params, lora_params_breakdown
from .formulas import (basic_block_params, bottleneck_params, gqa_attention_params, inverted_residual_params,
                       moe_params, rmsnorm_params, swiglu_params)
from .shapes import (ShapeError, check_shape, conv_output_size, conv_transpose_output_size, pool_output_size,
                     rnn_shapes)

#: every name imported above (the submodules themselves are reached as ``helpers.formulas`` …)
__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and not isinstance(value, _ModuleType))
