"""Closed-form parameter counts for torch.nn layers — pure arithmetic, no torch.

Every `<layer>_params(...)` takes the same arguments as the torch constructor (same names, same
positional order, int-or-tuple forms) and returns the number of learnable scalars that
`sum(p.numel() for p in layer.parameters())` reports. Every one has a `<layer>_params_breakdown`
twin returning ``{torch_parameter_name: count}`` with the exact names of `named_parameters()`,
so each term of the formula can be matched against torch tensor by tensor.

This module never imports torch: a formula that built the module to count it would prove nothing.
Buffers (BatchNorm running statistics) are not parameters; see `batchnorm_buffers`.

Formulas (``k`` = product of the kernel sizes, ``G`` = gates: RNN 1, GRU 3, LSTM 4)::

    Linear            out·in + out
    Conv{1,2,3}d      out · (in/groups) · k + out
    ConvTranspose     in · (out/groups) · k + out
    Embedding         num_embeddings · embedding_dim
    BatchNorm         2·C (affine)                     buffers: 2·C + 1 (track_running_stats)
    LayerNorm         2·prod(normalized_shape)         (weight + bias)
    GroupNorm         2·C
    RNN/GRU/LSTM      per layer and direction: G·H·in + G·H·H_r + 2·G·H (+ P·H with proj_size P)
    MultiheadAttention 3·E·E (or E·(E + kdim + vdim)) + 3E + E·E + E (+ 2E with add_bias_kv)
    RMSNorm           prod(normalized_shape)           (gain only)

Modern blocks and whole models (chapters 12–14; no ``…_breakdown`` twin unless noted, their
tests compare with Hugging Face / peft / the course's models)::

    GQA attention     D·h·d + 2·D·g·d + h·d·D          (h query heads, g key/value heads, d = head_dim)
    SwiGLU MLP        3·D·F
    MoE FFN           E·D + E·3·D·F total, E·D + k·3·D·F active per token
    decoder LM        decoder_lm_params: embeddings + L·(attention + MLP/experts + router + 2 norms) + norm + head
    LoRA              r·(in + out) per adapted Linear  (lora_params_breakdown)
    ResNet blocks     basic_block_params, bottleneck_params (+ 1×1 projection shortcut where needed)
    MobileNetV2       inverted_residual_params (1×1 expand → 3×3 depthwise → 1×1 project, BatchNorm each)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

from helpers._args import IntOrTuple, SizeTypeError, as_tuple, is_int, require_positive_int, spatial_dims

__all__ = [
    "linear_params", "linear_params_breakdown",
    "bilinear_params",
    "conv_params", "conv_params_breakdown",
    "conv_transpose_params", "conv_transpose_params_breakdown",
    "embedding_params", "embedding_params_breakdown",
    "batchnorm_params", "batchnorm_params_breakdown", "batchnorm_buffers",
    "layernorm_params", "layernorm_params_breakdown",
    "groupnorm_params", "groupnorm_params_breakdown",
    "rnn_params", "rnn_params_breakdown", "RNN_GATES",
    "mha_params", "mha_params_breakdown",
    "transformer_layer_params", "transformer_layer_params_breakdown",
    "prelu_params",
]

Breakdown = dict[str, int]
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _total(breakdown: Breakdown) -> int:
    return sum(breakdown.values())


# --------------------------------------------------------------------------- Linear

def linear_params_breakdown(in_features: int, out_features: int, bias: bool = True) -> Breakdown:
    """Per-tensor counts of ``nn.Linear(in_features, out_features, bias)``.

    weight: (out_features, in_features) → out·in;  bias: (out_features,) → out.
    """
    fin = require_positive_int(in_features, "in_features", allow_zero=True)
    fout = require_positive_int(out_features, "out_features", allow_zero=True)
    parts = {"weight": fout * fin}
    if bias:
        parts["bias"] = fout
    return parts


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of ``nn.Linear``: ``out·in + out`` (``out·in`` without bias).

    Shapes: input (*, in_features) → output (*, out_features); any leading dims pass through.

    >>> linear_params(10, 5)
    55
    """
    return _total(linear_params_breakdown(in_features, out_features, bias))


def bilinear_params(in1_features: int, in2_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of ``nn.Bilinear``: weight (out, in1, in2) → out·in1·in2, bias → out."""
    # torch refuses in1_features=0 (its initialisation divides by √in1) but builds in2 or out = 0
    a = require_positive_int(in1_features, "in1_features")
    b = require_positive_int(in2_features, "in2_features", allow_zero=True)
    o = require_positive_int(out_features, "out_features", allow_zero=True)
    return o * a * b + (o if bias else 0)


# --------------------------------------------------------------------------- Convolution

def _check_conv_args(in_channels: int, out_channels: int, groups: int, padding: object,
                     stride: IntOrTuple, padding_mode: str) -> tuple[int, int, int]:
    cin = require_positive_int(in_channels, "in_channels", allow_zero=True)
    cout = require_positive_int(out_channels, "out_channels", allow_zero=True)
    if not is_int(groups) or int(groups) <= 0:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    g = int(groups)
    if cin % g:
        raise ValueError(f"in_channels must be divisible by groups: {cin} channels cannot be split "
                         f"into {g} equal groups")
    if cout % g:
        raise ValueError(f"out_channels must be divisible by groups: {cout} filters cannot be split "
                         f"into {g} equal groups")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        strides = tuple(stride) if isinstance(stride, Sequence) and not isinstance(stride, str) else (stride,)
        if padding == "same" and any(s != 1 for s in strides):
            raise ValueError("padding='same' is not supported for strided convolutions "
                             "(stride must be 1 so the output keeps the input's size)")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    return cin, cout, g


def _kernel(kernel_size: IntOrTuple, dim: Optional[int]) -> tuple[int, ...]:
    n = dim if dim is not None else spatial_dims(kernel_size, default=2)
    if n not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3 (Conv1d/Conv2d/Conv3d), got {n}")
    ks = as_tuple(kernel_size, n, "kernel_size", broadcast_one=False)
    if any(k < 0 for k in ks):
        raise ValueError(f"kernel_size must not be negative, got {kernel_size!r}")
    return ks


def conv_params_breakdown(in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                          stride: IntOrTuple = 1, padding: Union[IntOrTuple, str] = 0,
                          dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                          padding_mode: str = "zeros", *, dim: Optional[int] = None) -> Breakdown:
    """Per-tensor counts of ``nn.Conv{dim}d``.

    weight: (out_channels, in_channels/groups, *kernel_size); bias: (out_channels,).
    `dim` is 1, 2 or 3; by default the length of a tuple `kernel_size`, else 2 (``nn.Conv2d``).
    """
    cin, cout, g = _check_conv_args(in_channels, out_channels, groups, padding, stride, padding_mode)
    ks = _kernel(kernel_size, dim)
    if padding == "same":  # torch computes the padding d·(k−1) at construction, so dilation must be a number
        dilations = tuple(dilation) if isinstance(dilation, Sequence) and not isinstance(dilation, str) else (dilation,)
        if not all(is_int(d) or isinstance(d, (bool, float)) for d in dilations):
            raise SizeTypeError(f"dilation must be an int or a tuple of ints, got {dilation!r}: padding='same' "
                                f"pads dilation·(kernel_size − 1) positions")
    parts = {"weight": cout * (cin // g) * math.prod(ks)}
    if bias:
        parts["bias"] = cout
    return parts


def conv_params(in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                stride: IntOrTuple = 1, padding: Union[IntOrTuple, str] = 0,
                dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                padding_mode: str = "zeros", *, dim: Optional[int] = None) -> int:
    """Parameters of ``nn.Conv1d/2d/3d``: ``out · (in/groups) · prod(kernel_size) + out``.

    A *filter* is one output channel's weights: ``in/groups`` kernels of size ``kernel_size``.
    stride, padding and dilation change the output shape, never the count. `dim` selects
    Conv1d/2d/3d when `kernel_size` is an int (default 2).

    Shapes: input (B, C_in, *spatial) → output (B, C_out, *spatial_out).

    >>> conv_params(3, 16, 3)          # nn.Conv2d(3, 16, 3): 16·3·3·3 + 16
    448
    >>> conv_params(12, 64, 3, dim=1)  # nn.Conv1d(12, 64, 3): 64·12·3 + 64
    2368
    """
    return _total(conv_params_breakdown(in_channels, out_channels, kernel_size, stride, padding,
                                        dilation, groups, bias, padding_mode, dim=dim))


def conv_transpose_params_breakdown(in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                                    stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                                    output_padding: IntOrTuple = 0, groups: int = 1,
                                    bias: bool = True, dilation: IntOrTuple = 1,
                                    padding_mode: str = "zeros", *,
                                    dim: Optional[int] = None) -> Breakdown:
    """Per-tensor counts of ``nn.ConvTranspose{dim}d``.

    weight: (in_channels, out_channels/groups, *kernel_size) — note the swapped order
    compared with Conv; bias: (out_channels,).
    """
    if padding_mode != "zeros":
        raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose, got {padding_mode!r}')
    if isinstance(padding, str):
        raise ValueError("ConvTranspose does not accept string padding ('same'/'valid'); give an int")
    cin, cout, g = _check_conv_args(in_channels, out_channels, groups, padding, stride, padding_mode)
    ks = _kernel(kernel_size, dim)
    parts = {"weight": cin * (cout // g) * math.prod(ks)}
    if bias:
        parts["bias"] = cout
    return parts


def conv_transpose_params(in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                          stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                          output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                          dilation: IntOrTuple = 1, padding_mode: str = "zeros", *,
                          dim: Optional[int] = None) -> int:
    """Parameters of ``nn.ConvTranspose1d/2d/3d``: ``in · (out/groups) · prod(kernel_size) + out``.

    Same total as the Conv with in/out swapped when groups=1, different when groups>1 and
    the bias is counted on out_channels.

    >>> conv_transpose_params(16, 8, 2)   # U-Net up-convolution
    520
    """
    return _total(conv_transpose_params_breakdown(in_channels, out_channels, kernel_size, stride,
                                                  padding, output_padding, groups, bias, dilation,
                                                  padding_mode, dim=dim))


# --------------------------------------------------------------------------- Embedding

def embedding_params_breakdown(num_embeddings: int, embedding_dim: int,
                               padding_idx: Optional[int] = None,
                               max_norm: Optional[float] = None, norm_type: float = 2.0,
                               scale_grad_by_freq: bool = False, sparse: bool = False) -> Breakdown:
    """Per-tensor counts of ``nn.Embedding``: weight (num_embeddings, embedding_dim).

    padding_idx row is still a parameter (it only receives no gradient); max_norm rescales rows
    at lookup time and adds nothing.
    """
    v = require_positive_int(num_embeddings, "num_embeddings", allow_zero=True)
    d = require_positive_int(embedding_dim, "embedding_dim", allow_zero=True)
    if padding_idx is not None and not is_int(padding_idx):
        raise SizeTypeError(f"padding_idx must be an integer row index (or None), got {padding_idx!r} "
                            f"({type(padding_idx).__name__})")
    if padding_idx is not None and not (-v <= int(padding_idx) < v):  # type: ignore[call-overload]
        raise ValueError(f"padding_idx must be within num_embeddings: got padding_idx={padding_idx} "
                         f"for a vocabulary of {v} rows (valid: {-v}..{v - 1})")
    return {"weight": v * d}


def embedding_params(num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                     max_norm: Optional[float] = None, norm_type: float = 2.0,
                     scale_grad_by_freq: bool = False, sparse: bool = False) -> int:
    """Parameters of ``nn.Embedding``: ``num_embeddings · embedding_dim`` (V·D).

    Shapes: indices (*) → vectors (*, embedding_dim); e.g. (B, T) → (B, T, D).

    >>> embedding_params(50257, 768)
    38597376
    """
    return _total(embedding_params_breakdown(num_embeddings, embedding_dim, padding_idx, max_norm,
                                             norm_type, scale_grad_by_freq, sparse))


# --------------------------------------------------------------------------- Normalisation

def batchnorm_params_breakdown(num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                               affine: bool = True, track_running_stats: bool = True) -> Breakdown:
    """Per-tensor counts of ``nn.BatchNorm{1,2,3}d``: weight γ (C,) and bias β (C,) if affine."""
    c = require_positive_int(num_features, "num_features", allow_zero=True)
    return {"weight": c, "bias": c} if affine else {}


def batchnorm_params(num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                     affine: bool = True, track_running_stats: bool = True) -> int:
    """Parameters of ``nn.BatchNorm{1,2,3}d``: ``2·C`` with affine=True (γ and β), else 0.

    running_mean, running_var (C each) and num_batches_tracked (1) are *buffers*: saved in the
    state_dict, never trained; see `batchnorm_buffers`.

    >>> batchnorm_params(64)
    128
    """
    return _total(batchnorm_params_breakdown(num_features, eps, momentum, affine, track_running_stats))


def batchnorm_buffers(num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                      affine: bool = True, track_running_stats: bool = True) -> int:
    """Buffer elements of ``nn.BatchNorm``: ``2·C + 1`` (running_mean, running_var,
    num_batches_tracked) when track_running_stats, else 0.

    >>> batchnorm_buffers(64)
    129
    """
    c = require_positive_int(num_features, "num_features", allow_zero=True)
    return 2 * c + 1 if track_running_stats else 0


def _normalized_numel(normalized_shape: IntOrTuple) -> int:
    if is_int(normalized_shape):
        shape: tuple[object, ...] = (normalized_shape,)
    elif isinstance(normalized_shape, Sequence) and not isinstance(normalized_shape, str):
        shape = tuple(normalized_shape)
    else:
        raise SizeTypeError(f"normalized_shape must be an int or a tuple of ints (the trailing dims to "
                            f"normalise), got {normalized_shape!r} ({type(normalized_shape).__name__})")
    return math.prod(require_positive_int(s, "normalized_shape", allow_zero=True) for s in shape)


def layernorm_params_breakdown(normalized_shape: IntOrTuple, eps: float = 1e-5,
                               elementwise_affine: bool = True, bias: bool = True) -> Breakdown:
    """Per-tensor counts of ``nn.LayerNorm``: weight and bias, each of shape normalized_shape."""
    n = _normalized_numel(normalized_shape)
    if not elementwise_affine:
        return {}
    return {"weight": n, "bias": n} if bias else {"weight": n}


def layernorm_params(normalized_shape: IntOrTuple, eps: float = 1e-5,
                     elementwise_affine: bool = True, bias: bool = True) -> int:
    """Parameters of ``nn.LayerNorm``: ``2·prod(normalized_shape)`` (γ and β), ``prod`` with
    bias=False, 0 with elementwise_affine=False. No buffers: statistics come from each sample.

    >>> layernorm_params(768)
    1536
    """
    return _total(layernorm_params_breakdown(normalized_shape, eps, elementwise_affine, bias))


def groupnorm_params_breakdown(num_groups: int, num_channels: int, eps: float = 1e-5,
                               affine: bool = True) -> Breakdown:
    """Per-tensor counts of ``nn.GroupNorm``: weight and bias of shape (num_channels,)."""
    g = require_positive_int(num_groups, "num_groups")
    c = require_positive_int(num_channels, "num_channels", allow_zero=True)
    if c % g:
        raise ValueError(f"num_channels ({c}) must be divisible by num_groups ({g})")
    return {"weight": c, "bias": c} if affine else {}


def groupnorm_params(num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True) -> int:
    """Parameters of ``nn.GroupNorm``: ``2·C`` (per channel γ, β — not per group), 0 without affine.

    >>> groupnorm_params(8, 64)
    128
    """
    return _total(groupnorm_params_breakdown(num_groups, num_channels, eps, affine))


def prelu_params(num_parameters: int = 1, init: float = 0.25) -> int:
    """Parameters of ``nn.PReLU``: one learnable slope per channel (default: one shared slope)."""
    return require_positive_int(num_parameters, "num_parameters", allow_zero=True)


# --------------------------------------------------------------------------- Recurrent

RNN_GATES = {"RNN": 1, "RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}
"""Number of stacked gate blocks in weight_ih/weight_hh: RNN 1, GRU 3 (r, z, n), LSTM 4 (i, f, g, o)."""


def rnn_params_breakdown(mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                         bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                         bidirectional: bool = False, proj_size: int = 0) -> Breakdown:
    """Per-tensor counts of ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` with torch's names.

    For layer l and direction suffix s ('' or '_reverse'), with G gates, H = hidden_size,
    H_r = proj_size or H (the size of h_t), D = 2 if bidirectional else 1::

        weight_ih_l{l}{s}: (G·H, in_l)   in_0 = input_size, in_l = D·H_r for l > 0
        weight_hh_l{l}{s}: (G·H, H_r)
        bias_ih_l{l}{s}:   (G·H,)        torch keeps TWO bias vectors (cuDNN layout),
        bias_hh_l{l}{s}:   (G·H,)        so biases count 2·G·H, not G·H
        weight_hr_l{l}{s}: (H_r, H)      only with proj_size > 0 (LSTM only)
    """
    key = str(mode).upper()
    if key not in RNN_GATES:
        raise ValueError(f"mode must be one of {sorted(RNN_GATES)}, got {mode!r}")
    gates = RNN_GATES[key]
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
        if not is_int(value):
            raise ValueError(f"{name} should be of type int, got {type(value).__name__}")
    if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout <= 1):
        raise ValueError(f"dropout should be a number in [0, 1] (the probability of zeroing), got {dropout!r}")
    h = require_positive_int(hidden_size, "hidden_size")
    layers = require_positive_int(num_layers, "num_layers")
    inp = require_positive_int(input_size, "input_size")
    if not is_int(proj_size) or int(proj_size) < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable projections, got {proj_size!r}")
    proj = int(proj_size)
    if proj and key != "LSTM":
        raise ValueError(f"proj_size is only supported for LSTM, not {key}")
    if proj >= h and proj:
        raise ValueError(f"proj_size has to be smaller than hidden_size (got proj_size={proj}, hidden_size={h})")
    h_r = proj or h
    directions = 2 if bidirectional else 1
    parts: Breakdown = {}
    for layer in range(layers):
        layer_in = inp if layer == 0 else h_r * directions
        for suffix in ("", "_reverse")[:directions]:
            tag = f"l{layer}{suffix}"
            parts[f"weight_ih_{tag}"] = gates * h * layer_in
            parts[f"weight_hh_{tag}"] = gates * h * h_r
            if bias:
                parts[f"bias_ih_{tag}"] = gates * h
                parts[f"bias_hh_{tag}"] = gates * h
            if proj:
                parts[f"weight_hr_{tag}"] = proj * h
    return parts


def rnn_params(mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
               batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
               proj_size: int = 0) -> int:
    """Parameters of ``nn.RNN`` (mode 'RNN'), ``nn.GRU`` ('GRU') or ``nn.LSTM`` ('LSTM').

    One layer, one direction: ``G·(H·in + H·H + 2·H)`` with G = 1, 3, 4 — the two bias vectors
    are why it is 2·H and not H. Deeper layers read D·H_r features (D directions).
    With proj_size P (LSTM): ``4·(H·in + H·P + 2·H) + P·H``.

    Shapes (batch_first=False): input (T, B, input_size) → output (T, B, D·H_r),
    h_n (D·num_layers, B, H_r), c_n (D·num_layers, B, H) for LSTM.

    >>> rnn_params("LSTM", 20, 64)
    22016
    """
    return _total(rnn_params_breakdown(mode, input_size, hidden_size, num_layers, bias, batch_first,
                                       dropout, bidirectional, proj_size))


# --------------------------------------------------------------------------- Attention

def mha_params_breakdown(embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                         add_bias_kv: bool = False, add_zero_attn: bool = False,
                         kdim: Optional[int] = None, vdim: Optional[int] = None,
                         batch_first: bool = False) -> Breakdown:
    """Per-tensor counts of ``nn.MultiheadAttention`` with torch's names.

    E = embed_dim. When kdim == vdim == E torch packs Q, K, V in one in_proj_weight (3E, E);
    otherwise it keeps q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim).
    in_proj_bias (3E,) and out_proj (E·E + E) follow `bias`; bias_k, bias_v are (1, 1, E).
    Heads split E into num_heads·head_dim and add no parameters.
    """
    e = require_positive_int(embed_dim, "embed_dim")
    nh = require_positive_int(num_heads, "num_heads")
    if e % nh:
        raise ValueError(f"embed_dim must be divisible by num_heads: {e} features cannot be split into "
                         f"{nh} heads of equal size")
    kd = e if kdim is None else require_positive_int(kdim, "kdim", allow_zero=True)  # torch builds kdim=0
    vd = e if vdim is None else require_positive_int(vdim, "vdim", allow_zero=True)
    parts: Breakdown = {}
    if kd == e and vd == e:
        parts["in_proj_weight"] = 3 * e * e
    else:
        parts.update(q_proj_weight=e * e, k_proj_weight=e * kd, v_proj_weight=e * vd)
    if bias:
        parts["in_proj_bias"] = 3 * e
    if add_bias_kv:
        parts.update(bias_k=e, bias_v=e)
    for name, count in linear_params_breakdown(e, e, bias).items():
        parts[f"out_proj.{name}"] = count
    return parts


def mha_params(embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
               add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: Optional[int] = None,
               vdim: Optional[int] = None, batch_first: bool = False) -> int:
    """Parameters of ``nn.MultiheadAttention``: ``4·E² + 4·E`` in the default case.

    The popular "4·d²" estimate forgets the 4E biases (3E in-projection + E out-projection).
    With kdim/vdim: ``E·(E + kdim + vdim) + 3E + E² + E``; add_bias_kv adds 2E.

    Shapes (batch_first=True): query (B, T, E), key (B, S, kdim), value (B, S, vdim)
    → output (B, T, E), weights (B, T, S).

    >>> mha_params(768, 12)
    2362368
    """
    return _total(mha_params_breakdown(embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn,
                                       kdim, vdim, batch_first))


def transformer_layer_params_breakdown(d_model: int, nhead: int, dim_feedforward: int = 2048,
                                       dropout: float = 0.1, activation: object = "relu",
                                       layer_norm_eps: float = 1e-5, batch_first: bool = False,
                                       norm_first: bool = False, bias: bool = True, *,
                                       decoder: bool = False) -> Breakdown:
    """Per-tensor counts of ``nn.TransformerEncoderLayer`` (or ``DecoderLayer`` with decoder=True).

    Encoder: self_attn (MHA) + linear1 (d→ff) + linear2 (ff→d) + norm1, norm2.
    Decoder adds multihead_attn (cross-attention) and norm3. `bias` applies to every Linear,
    attention projection and LayerNorm bias.
    """
    d = require_positive_int(d_model, "d_model")
    ff = require_positive_int(dim_feedforward, "dim_feedforward", allow_zero=True)
    blocks: list[tuple[str, Breakdown]] = [("self_attn", mha_params_breakdown(d, nhead, bias=bias))]
    if decoder:
        blocks.append(("multihead_attn", mha_params_breakdown(d, nhead, bias=bias)))
    blocks += [("linear1", linear_params_breakdown(d, ff, bias)),
               ("linear2", linear_params_breakdown(ff, d, bias))]
    for i in range(1, 4 if decoder else 3):
        blocks.append((f"norm{i}", layernorm_params_breakdown(d, layer_norm_eps, True, bias)))
    return {f"{prefix}.{name}": n for prefix, parts in blocks for name, n in parts.items()}


def transformer_layer_params(d_model: int, nhead: int, dim_feedforward: int = 2048,
                             dropout: float = 0.1, activation: object = "relu",
                             layer_norm_eps: float = 1e-5, batch_first: bool = False,
                             norm_first: bool = False, bias: bool = True, *,
                             decoder: bool = False) -> int:
    """Parameters of ``nn.TransformerEncoderLayer`` (decoder=False) or ``nn.TransformerDecoderLayer``.

    Encoder: ``(4d² + 4d) + (d·ff + ff) + (ff·d + d) + 2·(2d)``;
    decoder adds a second attention ``4d² + 4d`` and a third LayerNorm ``2d``.

    >>> transformer_layer_params(512, 8)   # the "Attention Is All You Need" base encoder layer
    3152384
    """
    return _total(transformer_layer_params_breakdown(d_model, nhead, dim_feedforward, dropout, activation,
                                                     layer_norm_eps, batch_first, norm_first, bias,
                                                     decoder=decoder))



# --------------------------------------------------------------------------- Decoder-only LLMs

__all__ += ["decoder_lm_params", "DECODER_LM_PARTS"]

#: the parts of `decoder_lm_params`'s breakdown, in model order; they sum to ``"total"``.
DECODER_LM_PARTS: tuple[str, ...] = ("embed_tokens", "attention", "mlp", "router", "norms", "lm_head")


def decoder_lm_params(vocab_size: int, hidden_size: int, intermediate_size: int, num_hidden_layers: int,
                      num_attention_heads: int, num_key_value_heads: Optional[int] = None, *,
                      head_dim: Optional[int] = None, tie_word_embeddings: bool = False,
                      attention_bias: bool = False, mlp_bias: bool = False,
                      num_local_experts: int = 1, num_experts_per_tok: int = 1) -> dict[str, int]:
    """Parameters of a Llama-family decoder LM (Llama, Mistral, Mixtral), total and active.

    Argument names are Hugging Face's config fields, so ``decoder_lm_params(**{k: cfg[k] ...})``
    takes a ``config.json`` as it is. V = vocab_size, D = hidden_size, F = intermediate_size,
    L = num_hidden_layers, h = num_attention_heads, g = num_key_value_heads (default h: MHA;
    g = 1: MQA), d = head_dim (default D // h; even, as RoPE rotates pairs), E = num_local_experts, k = num_experts_per_tok::

        embed_tokens  V·D                                  (token table, (V, D))
        attention     L·(D·h·d + 2·D·g·d + h·d·D)          q (h·d, D), k and v (g·d, D), o (D, h·d)
                      + L·(h·d + 2·g·d + D)                if attention_bias (q, k, v and o biases)
        mlp           L·E·3·D·F                            SwiGLU gate/up (F, D), down (D, F), per expert
                      + L·(2F + D)                         if mlp_bias (dense only)
        router        L·E·D if E > 1 else 0                the gate Linear(D, E, bias=False)
        norms         (2L + 1)·D                           two RMSNorms per layer + the final one
        lm_head       0 if tie_word_embeddings else V·D    tied: the embedding matrix is reused
        total         the sum of the parts
        active        total − L·(E − k)·3·D·F              what one token uses: k of the E experts

    E = 1 is a dense Llama MLP without a router (Hugging Face's LlamaForCausalLM); E > 1 is
    Mixtral's sparse MoE block (MixtralForCausalLM), whose experts have no biases, so `mlp_bias`
    with E > 1 is refused. RoPE adds no parameters. "active" counts the embedding table and the
    lm_head in full, as Mistral's "12.9B active parameters" for Mixtral-8x7B does.

    Returns:
        ``{part: count for part in DECODER_LM_PARTS}`` plus ``"total"`` and ``"active"`` (ints).

    >>> decoder_lm_params(128256, 4096, 14336, 32, 32, 8)["total"]   # Llama-3-8B
    8030261248
    """
    V = require_positive_int(vocab_size, "vocab_size")
    L = require_positive_int(num_hidden_layers, "num_hidden_layers")
    D, h, g, d = _heads(hidden_size, num_attention_heads, num_key_value_heads, head_dim)
    E = require_positive_int(num_local_experts, "num_local_experts")
    k = require_positive_int(num_experts_per_tok, "num_experts_per_tok")
    if d % 2:
        raise ValueError(f"head_dim={d} is odd: rotary position embeddings (RoPE) rotate the features of "
                         f"each head in pairs, so head_dim (hidden_size / num_attention_heads) must be even")
    if k > E:
        raise ValueError(f"num_experts_per_tok={k} cannot exceed num_local_experts={E}: a token cannot "
                         f"be routed to more experts than exist")
    if E > 1 and mlp_bias:
        raise ValueError(f"mlp_bias=True with num_local_experts={E}: mlp_bias applies to a dense (Llama) MLP; "
                         "Mixtral-style experts have no biases")
    expert = swiglu_params(D, intermediate_size, mlp_bias)  # one SwiGLU MLP
    attn = gqa_attention_params(D, h, g, d, attention_bias)
    parts = {"embed_tokens": V * D, "attention": L * attn, "mlp": L * E * expert,
             "router": L * E * D if E > 1 else 0, "norms": (2 * L + 1) * D,
             "lm_head": 0 if tie_word_embeddings else V * D}
    total = sum(parts.values())
    return {**parts, "total": total, "active": total - L * (E - k) * expert}

# --------------------------------------------------------------------------- LoRA (chapter 13)

def lora_params_breakdown(in_features: int, out_features: int, r: int) -> Breakdown:
    """Trainable tensors LoRA adds to one ``nn.Linear(in_features, out_features)`` (Hu et al. 2021,
    arXiv 2106.09685, §4.1): ``W x + B A x`` with A (r, in) and B (out, r); W stays frozen.

    Keys follow peft's module names (peft adds the adapter name: ``lora_A.default.weight``).
    """
    i = require_positive_int(in_features, "in_features")
    o = require_positive_int(out_features, "out_features")
    rank = require_positive_int(r, "r")
    return {"lora_A.weight": rank * i, "lora_B.weight": o * rank}


def lora_params(in_features: int, out_features: int, r: int) -> int:
    """Trainable parameters of a rank-`r` LoRA adapter on ``nn.Linear(in, out)``: ``r·(in + out)``.

    >>> lora_params(4096, 4096, 8)   # one Llama-2-7B attention projection at r = 8
    65536
    """
    return _total(lora_params_breakdown(in_features, out_features, r))


__all__ += ["lora_params", "lora_params_breakdown"]


# --------------------------------------------------------------------------- Layers of chapters 12–14

__all__ += ["rmsnorm_params", "gqa_attention_params", "swiglu_params", "moe_params", "basic_block_params",
            "bottleneck_params", "inverted_residual_params"]


def rmsnorm_params(normalized_shape: IntOrTuple, eps: Optional[float] = None,
                   elementwise_affine: bool = True) -> int:
    """Parameters of ``nn.RMSNorm``: ``prod(normalized_shape)`` (the gain γ only: no β, no
    mean-centring), 0 with elementwise_affine=False; no buffers. LayerNorm has twice as many.

    Shapes: output shape = input shape (*, *normalized_shape); each vector is divided by its root
    mean square over the trailing normalized_shape dims.

    >>> rmsnorm_params(4096)   # one Llama-2-7B norm
    4096
    """
    n = _normalized_numel(normalized_shape)
    return n if elementwise_affine else 0


def _heads(hidden_size: int, num_attention_heads: int, num_key_value_heads: Optional[int],
           head_dim: Optional[int]) -> tuple[int, int, int, int]:
    """(D, h, g, d) validated: h a multiple of g, d = D // h unless given."""
    D = require_positive_int(hidden_size, "hidden_size")
    h = require_positive_int(num_attention_heads, "num_attention_heads")
    g = h if num_key_value_heads is None else require_positive_int(num_key_value_heads, "num_key_value_heads")
    if h % g:
        raise ValueError(f"num_attention_heads={h} must be a multiple of num_key_value_heads={g}: each "
                         f"key/value head is shared by a whole group of query heads")
    if head_dim is None and D % h:
        raise ValueError(f"hidden_size={D} is not divisible by num_attention_heads={h}; pass head_dim "
                         f"explicitly or choose a hidden_size that splits into {h} equal heads")
    return D, h, g, D // h if head_dim is None else require_positive_int(head_dim, "head_dim")


def gqa_attention_params(hidden_size: int, num_attention_heads: int, num_key_value_heads: Optional[int] = None,
                         head_dim: Optional[int] = None, attention_bias: bool = False) -> int:
    """Parameters of grouped-query attention (``helpers.models.llama.LlamaAttention``, Hugging
    Face ``LlamaAttention``): ``D·h·d + 2·D·g·d + h·d·D`` — q (h·d, D), k and v (g·d, D), o (D, h·d),
    with D = hidden_size, h = num_attention_heads, g = num_key_value_heads (h: MHA, 1: MQA), d =
    head_dim (D // h); ``+ h·d + 2·g·d + D`` with attention_bias. RoPE adds nothing.

    Shapes: (B, T, D) → (B, T, D); inside, q (B, h, T, d) and k, v (B, g, T, d).

    >>> gqa_attention_params(4096, 32, 8)   # one Llama-3-8B layer
    41943040
    """
    D, h, g, d = _heads(hidden_size, num_attention_heads, num_key_value_heads, head_dim)
    return 2 * D * h * d + 2 * D * g * d + ((h * d + 2 * g * d + D) if attention_bias else 0)


def swiglu_params(hidden_size: int, intermediate_size: int, mlp_bias: bool = False) -> int:
    """Parameters of a SwiGLU MLP (``helpers.models.llama.LlamaMLP``, down(silu(gate(x)) · up(x))):
    ``3·D·F`` — gate and up (F, D), down (D, F) — ``+ 2F + D`` with mlp_bias (Hugging Face only).

    Shapes: (B, T, D) → (B, T, F) (gate, up) → (B, T, D) (down).

    >>> swiglu_params(4096, 14336)   # one Llama-3-8B MLP
    176160768
    """
    D = require_positive_int(hidden_size, "hidden_size")
    Fh = require_positive_int(intermediate_size, "intermediate_size")
    return 3 * D * Fh + ((2 * Fh + D) if mlp_bias else 0)


def moe_params(hidden_size: int, intermediate_size: int, num_local_experts: int, num_experts_per_tok: int = 1,
               *, active: bool = False) -> int:
    """Parameters of a sparse MoE feed-forward of SwiGLU experts (``helpers.models.moe.SparseMoE``,
    Mixtral's block): total ``E·D + E·3·D·F`` (router (E, D) + E experts), active per token
    ``E·D + k·3·D·F`` (the router scores all E, the token runs through k), E = num_local_experts,
    k = num_experts_per_tok.

    Shapes: (B, T, D) → (B, T, D); routing is per token: (B·T, D) → weights and indices (B·T, k).

    >>> moe_params(4096, 14336, 8, 2), moe_params(4096, 14336, 8, 2, active=True)   # Mixtral-8x7B
    (1409318912, 352354304)
    """
    D = require_positive_int(hidden_size, "hidden_size")
    E = require_positive_int(num_local_experts, "num_local_experts")
    k = require_positive_int(num_experts_per_tok, "num_experts_per_tok")
    if k > E:
        raise ValueError(f"num_experts_per_tok={k} cannot exceed num_local_experts={E}: a token cannot "
                         f"be routed to more experts than exist")
    return E * D + (k if active else E) * swiglu_params(D, intermediate_size)


def _projection(in_channels: int, out_channels: int, stride: int) -> int:
    """The 1×1 conv + BatchNorm shortcut of a ResNet block where identity does not fit, else 0."""
    return 0 if in_channels == out_channels and stride == 1 else in_channels * out_channels + 2 * out_channels


def basic_block_params(in_channels: int, planes: int, stride: int = 1) -> int:
    """Parameters of ResNet's basic block (``helpers.models.resnet.BasicBlock``, torchvision's):
    ``9·C_in·P + 9·P² + 4P`` (two 3×3 convs without bias, two BatchNorms) ``+ C_in·P + 2P`` for the
    1×1 projection shortcut when C_in ≠ P or stride ≠ 1.

    Shapes: (B, C_in, H, W) → (B, P, ⌈H/s⌉, ⌈W/s⌉).

    >>> basic_block_params(64, 128, 2)   # first block of ResNet-18's stage 2
    230144
    """
    C = require_positive_int(in_channels, "in_channels")
    P = require_positive_int(planes, "planes")
    s = require_positive_int(stride, "stride")
    return 9 * C * P + 9 * P * P + 4 * P + _projection(C, P, s)


def bottleneck_params(in_channels: int, planes: int, stride: int = 1) -> int:
    """Parameters of ResNet's bottleneck (``helpers.models.resnet.Bottleneck``, torchvision's V1.5):
    ``C_in·P + 9·P² + 4·P² + 12P`` (1×1 reduce, 3×3, 1×1 expand to 4P, no biases; three BatchNorms)
    ``+ 4P·C_in + 8P`` for the projection shortcut when C_in ≠ 4P or stride ≠ 1.

    Shapes: (B, C_in, H, W) → (B, 4P, ⌈H/s⌉, ⌈W/s⌉).

    >>> bottleneck_params(256, 64)   # a ResNet-50 stage-1 block with an identity shortcut
    70400
    """
    C = require_positive_int(in_channels, "in_channels")
    P = require_positive_int(planes, "planes")
    s = require_positive_int(stride, "stride")
    return C * P + 9 * P * P + 4 * P * P + 12 * P + _projection(C, 4 * P, s)


def inverted_residual_params(in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                             *, depthwise: bool = True) -> int:
    """Parameters of MobileNetV2's inverted residual (``helpers.models.mobilenet.InvertedResidual``,
    torchvision's): with M = round(t·C_in), ``C_in·M + 2M`` (1×1 expand + BN, absent when t = 1)
    ``+ 9·M + 2M`` (3×3 depthwise + BN) ``+ M·C_out + 2·C_out`` (1×1 linear projection + BN);
    a full 3×3 (depthwise=False) costs 9·M² instead of 9·M.

    Shapes: (B, C_in, H, W) → (B, M, H, W) → (B, C_out, ⌈H/s⌉, ⌈W/s⌉); the input is added back
    when s = 1 and C_in = C_out.

    >>> inverted_residual_params(24, 24, 1, 6)
    8832
    """
    C = require_positive_int(in_channels, "in_channels")
    Co = require_positive_int(out_channels, "out_channels")
    if stride not in (1, 2):
        raise ValueError(f"an inverted residual has stride 1 or 2, got {stride}")
    t = require_positive_int(expand_ratio, "expand_ratio")
    M = int(round(C * t))
    expand = 0 if t == 1 else C * M + 2 * M
    return expand + (9 * M if depthwise else 9 * M * M) + 2 * M + M * Co + 2 * Co
