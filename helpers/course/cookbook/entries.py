"""The cookbook's rows, as data: per layer, the dotted paths of its formula, shape-rule docstring and
expected-shape rule, the chapter section that derives it, and the configurations that prove it.

No function is imported here: each is named by its dotted path (`Entry`, `Case`), resolved when the
table is drawn or the proof runs, and tests/test_cookbook.py fails on a path that names nothing. The
one piece of code, `_recurrent_cases`, writes the three configurations nn.RNN, nn.GRU and nn.LSTM
share. A new formula in `helpers.formulas` or shape rule in `helpers.shapes` needs a row here (the
same test checks that too).
"""

from __future__ import annotations

from helpers.course.cookbook.entry import Case, Entry, case

__all__ = ["ENTRIES"]

_F, _S = "helpers.formulas.", "helpers.shapes."
_X, _R = "helpers.course.cookbook.expected.", "helpers.course.cookbook.recipes."
_LLAMA = "helpers.models.llama."
_CH12, _CH14 = "12_modern_llms", "14_vision_backbones"
_LLAMA_CONFIG = _LLAMA + "LlamaConfig"


def _recurrent_cases(mode: str) -> tuple[Case, ...]:
    """nn.RNN / nn.GRU / nn.LSTM share their three configurations (LSTM's third adds proj_size)."""
    extra = {"proj_size": 8} if mode == "LSTM" else {}
    return (
        case(mode, 20, 64, inputs=[(5, 2, 20)], formula_args=(mode, 20, 64)),
        case(mode, 20, 64, inputs=[(2, 5, 20)], formula_args=(mode, 20, 64), num_layers=2,
             bidirectional=True, batch_first=True,
             formula_kwargs=dict(num_layers=2, bidirectional=True, batch_first=True)),
        case(mode, 7, 12, inputs=[(4, 3, 7)], formula_args=(mode, 7, 12), num_layers=3, bias=False,
             formula_kwargs=dict(num_layers=3, bias=False, **extra), **extra),
    )


ENTRIES: tuple[Entry, ...] = (
    Entry("nn.Linear", _F + "linear_params", _F + "linear_params", _X + "linear", (
        case("Linear", 10, 5, inputs=[(4, 10)]),
        case("Linear", 784, 128, inputs=[(2, 3, 784)], bias=False),
    ), chapter=("01_linear", "3. Counting the parameters")),
    Entry("nn.Bilinear", _F + "bilinear_params", None, _X + "linear", (
        case("Bilinear", 4, 6, 3, inputs=[(2, 4), (2, 6)]),
    ), shape_rule="input1 (*, in1_features), input2 (*, in2_features) → output (*, out_features)."),
    Entry("nn.Conv1d / nn.Conv2d / nn.Conv3d", _F + "conv_params", _S + "conv_output_size", _X + "conv", (
        case("Conv2d", 3, 16, 3, inputs=[(1, 3, 32, 32)], padding=1),
        case("Conv2d", 8, 16, (3, 5), inputs=[(2, 8, 17, 20)], stride=2, dilation=(1, 2), groups=4, bias=False),
        case("Conv1d", 12, 64, 3, inputs=[(2, 12, 50)], padding="same", formula_kwargs=dict(padding="same", dim=1)),
        case("Conv3d", 2, 4, 3, inputs=[(1, 2, 6, 7, 8)], stride=(1, 2, 2), formula_kwargs=dict(dim=3)),
    ), chapter=("02_convolution", "3. Every argument of `nn.Conv2d` / `nn.Conv1d`")),
    Entry("nn.ConvTranspose1d / 2d / 3d", _F + "conv_transpose_params", _S + "conv_transpose_output_size",
          _X + "conv_transpose", (
              case("ConvTranspose2d", 16, 8, 2, inputs=[(1, 16, 14, 14)], stride=2),
              case("ConvTranspose1d", 6, 9, 4, inputs=[(2, 6, 11)], stride=3, padding=1, output_padding=2,
                   groups=3, formula_kwargs=dict(stride=3, padding=1, output_padding=2, groups=3, dim=1)),
          ), chapter=("09_unet", "3 · Completing the U: bottleneck, decoder, skips")),
    Entry("nn.MaxPool1d / 2d / 3d", None, _S + "pool_output_size", _X + "pool", (
        case("MaxPool2d", 2, inputs=[(1, 3, 28, 28)]),
        case("MaxPool2d", 3, inputs=[(1, 2, 10, 11)], stride=2, padding=1, ceil_mode=True),
        case("MaxPool1d", 2, inputs=[(1, 1, 5)], stride=2, padding=1, ceil_mode=True),
        case("MaxPool1d", 2, inputs=[(1, 1, 8)], stride=1, dilation=3),
    ), shape_rule_note="Max pooling: padding counts as −∞ (a padded position never wins); `dilation` allowed "
                       "(window span d·(k−1)+1); padding ≤ kernel_size // 2 whatever the dilation; the "
                       "docstring's formula omits the ceil_mode rule (stated in its note only).",
        chapter=("03_pooling", "3 · The output-size formula")),
    Entry("nn.AvgPool1d / 2d / 3d", None, _S + "pool_output_size", _X + "pool", (
        case("AvgPool2d", 3, inputs=[(1, 3, 13, 9)], stride=2, padding=1, ceil_mode=True),
        case("AvgPool1d", 2, inputs=[(1, 1, 5)], padding=1, count_include_pad=False),
    ), shape_rule_note="Average pooling: zero padding, counted in the divisor unless count_include_pad=False; "
                       "no `dilation` argument; padding ≤ kernel_size // 2 (its docstring states the limit "
                       "and, under the formula, the ceil_mode rule).",
        chapter=("03_pooling", "Padding: max pooling does **not** pad with zeros")),
    Entry("nn.Embedding", _F + "embedding_params", _F + "embedding_params", _X + "embedding", (
        case("Embedding", 1000, 64, inputs=[(2, 16)], dtype="long"),
        case("Embedding", 50, 8, inputs=[(7,)], dtype="long", padding_idx=0),
    ), chapter=("07_embeddings", "1 · The lookup: $(B, T) \\to (B, T, D)$, $V \\cdot D$ parameters")),
    Entry("nn.BatchNorm1d / 2d / 3d", _F + "batchnorm_params", None, _X + "same", (
        case("BatchNorm2d", 64, inputs=[(2, 64, 5, 5)]),
        case("BatchNorm1d", 10, inputs=[(4, 10)], affine=False),
    ), shape_rule="output shape = input shape (B, C, *); statistics per channel C.",
        buffers=_F + "batchnorm_buffers",
        chapter=("04_normalization_dropout_activations", "1 · BatchNorm: two parameters and three buffers per layer")),
    Entry("nn.LayerNorm", _F + "layernorm_params", None, _X + "same", (
        case("LayerNorm", 768, inputs=[(2, 5, 768)]),
        case("LayerNorm", (5, 6), inputs=[(3, 5, 6)], bias=False),
    ), shape_rule="output shape = input shape (*, *normalized_shape); statistics over normalized_shape.",
        chapter=("04_normalization_dropout_activations", "2 · LayerNorm: statistics per sample, over the trailing dimensions")),
    Entry("nn.GroupNorm", _F + "groupnorm_params", None, _X + "same", (
        case("GroupNorm", 8, 64, inputs=[(2, 64, 4, 4)]),
    ), shape_rule="output shape = input shape (B, C, *); statistics per group of C/num_groups channels.",
        chapter=("04_normalization_dropout_activations", "3 · GroupNorm: channels in groups, per sample")),
    Entry("nn.PReLU", _F + "prelu_params", None, _X + "same", (
        case("PReLU", inputs=[(2, 3, 4)]),
        case("PReLU", 3, inputs=[(2, 3, 4)]),
    ), shape_rule="output shape = input shape; the slopes broadcast over dim 1 (channels).",
        chapter=("04_normalization_dropout_activations", "5 · Activations: no parameters (except PReLU)")),
    Entry("nn.RNN", _F + "rnn_params", _F + "rnn_params", _X + "recurrent", _recurrent_cases("RNN"),
          note="Here G = 1: one block, h_t = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu); no proj_size.",
          shape_rule_note="Returns (output, h_n): no cell state.",
          chapter=("05_rnn_bptt", "2 · What `nn.RNN` returns: `output` vs `h_n`")),
    Entry("nn.GRU", _F + "rnn_params", _F + "rnn_params", _X + "recurrent", _recurrent_cases("GRU"),
          note="Here G = 3 (reset r, update z, candidate n, stacked in that order); b_hn sits inside the reset "
               "gate, so the two bias vectors are not redundant; no proj_size.",
          shape_rule_note="Returns (output, h_n): one state, no cell state.",
          chapter=("06_lstm_gru", "2 · The GRU: three blocks, one state")),
    Entry("nn.LSTM", _F + "rnn_params", _F + "rnn_params", _X + "recurrent", _recurrent_cases("LSTM"),
          note="Here G = 4 (input i, forget f, cell g, output o, stacked in that order); proj_size P > 0 adds "
               "weight_hr (P, H) per layer and direction and makes W_hh (4H, P).",
          shape_rule_note="Returns (output, (h_n, c_n)); with proj_size P, output and h_n have P features, "
                          "c_n keeps H.",
          chapter=("06_lstm_gru", "3 · Exact parameter counts for `nn.RNN`, `nn.GRU`, `nn.LSTM`")),
    Entry("nn.MultiheadAttention", _F + "mha_params", _F + "mha_params", _X + "mha", paragraphs=2,
          shape_rule_note="With add_bias_kv (one learned key/value) and add_zero_attn (one zero key/value) "
                          "the weights' last dim is S + 1 for each.", cases=(
        case("MultiheadAttention", 16, 4, inputs=[(2, 5, 16)] * 3, batch_first=True),
        case("MultiheadAttention", 12, 3, inputs=[(5, 2, 12), (7, 2, 6), (7, 2, 10)], kdim=6, vdim=10),
        case("MultiheadAttention", 8, 2, inputs=[(3, 1, 8)] * 3, add_bias_kv=True, bias=False),
        case("MultiheadAttention", 8, 4, inputs=[(2, 3, 8), (2, 4, 8), (2, 4, 8)], batch_first=True,
             add_bias_kv=True, add_zero_attn=True),
    ), chapter=("08_attention_transformers", "3. How many parameters does multi-head attention have?")),
    Entry("nn.TransformerEncoderLayer / DecoderLayer", _F + "transformer_layer_params", None, _X + "same", (
        case("TransformerEncoderLayer", 32, 4, inputs=[(6, 2, 32)], dim_feedforward=64),
        case("TransformerEncoderLayer", 16, 2, inputs=[(2, 6, 16)], dim_feedforward=48, batch_first=True,
             norm_first=True, bias=False),
        case("TransformerDecoderLayer", 16, 2, inputs=[(6, 2, 16), (9, 2, 16)], dim_feedforward=32,
             formula_kwargs=dict(dim_feedforward=32, decoder=True)),
    ), shape_rule="output shape = input (target) shape (T, B, d_model), or (B, T, d_model) with batch_first.",
        chapter=("08_attention_transformers", "4. The feed-forward network and the transformer block")),
    # ------------------------------------------------------------------ chapters 12–14
    Entry("nn.RMSNorm", _F + "rmsnorm_params", _F + "rmsnorm_params", _X + "same", (
        case("RMSNorm", 64, inputs=[(2, 5, 64)]),
        case("RMSNorm", (4, 8), inputs=[(3, 4, 8)], elementwise_affine=False),
        case("RMSNorm", 32, inputs=[(2, 3, 32)], factory=_LLAMA + "RMSNorm"),
    ), chapter=(_CH12, "2 · RMSNorm: $d$ parameters instead of $2d$")),
    Entry("RoPE (rotary position embedding)", None, None, _X + "rotary", (
        case("hf_rotary_embedding", 64, 4, inputs=[(2, 5, 64), (2, 5)], dtype=("float", "long"),
             factory=_R + "hf_rotary_embedding"),
        case("hf_rotary_embedding", 96, 3, inputs=[(1, 7, 96), (1, 7)], dtype=("float", "long"),
             factory=_R + "hf_rotary_embedding"),
    ), note="the rotation angles are fixed functions of the position (Su et al. 2021, arXiv:2104.09864). "
            "The course's `apply_rotary` computes cos/sin in forward (no buffer); Hugging Face keeps "
            "``inv_freq`` (d/2 values) as a non-persistent buffer, outside the state_dict.",
        shape_rule="cos, sin: (B, T, d) each from position_ids (B, T), d = D // h; applied to q (B, h, T, d) and "
                   "k (B, g, T, d), whose shapes do not change.",
        chapter=(_CH12, "3 · RoPE: positions without parameters")),
    Entry("GQA attention (LlamaAttention)", _F + "gqa_attention_params", _F + "gqa_attention_params", _X + "same", (
        case("LlamaAttention", inputs=[(2, 5, 64)], factory=_LLAMA + "LlamaAttention", config=_LLAMA_CONFIG,
             dim=64, n_heads=8, n_kv_heads=2,
             formula_kwargs=dict(hidden_size=64, num_attention_heads=8, num_key_value_heads=2)),
        case("LlamaAttention", inputs=[(1, 3, 48)], factory=_LLAMA + "LlamaAttention", config=_LLAMA_CONFIG,
             dim=48, n_heads=4, n_kv_heads=1, head_dim=16,
             formula_kwargs=dict(hidden_size=48, num_attention_heads=4, num_key_value_heads=1, head_dim=16)),
        case("LlamaAttention", inputs=[(1, 4, 32)], factory=_LLAMA + "LlamaAttention", config=_LLAMA_CONFIG,
             dim=32, n_heads=4, formula_kwargs=dict(hidden_size=32, num_attention_heads=4)),
    ), chapter=(_CH12, "1 · Grouped-query and multi-query attention")),
    Entry("SwiGLU MLP (LlamaMLP)", _F + "swiglu_params", _F + "swiglu_params", _X + "same", (
        case("LlamaMLP", inputs=[(2, 5, 64)], factory=_LLAMA + "LlamaMLP", config=_LLAMA_CONFIG,
             dim=64, intermediate_size=172, formula_kwargs=dict(hidden_size=64, intermediate_size=172)),
        case("LlamaMLP", inputs=[(3, 128)], factory=_LLAMA + "LlamaMLP", config=_LLAMA_CONFIG,
             dim=128, intermediate_size=40, formula_kwargs=dict(hidden_size=128, intermediate_size=40)),
    ), chapter=(_CH12, "4 · SwiGLU: three matrices, and why Llama-3-8B has `intermediate_size` 14336")),
    Entry("MoE FFN (SparseMoE, total vs active)", _F + "moe_params", _F + "moe_params", _X + "same", (
        case("swiglu_moe", 64, 96, 4, 2, inputs=[(2, 5, 64)], factory=_R + "swiglu_moe"),
        case("swiglu_moe", 64, 96, 4, 2, inputs=[(2, 5, 64)], factory=_R + "swiglu_moe",
             count=_R + "routed_params", formula_kwargs=dict(active=True)),
        case("swiglu_moe", 32, 48, 8, 1, inputs=[(1, 6, 32)], factory=_R + "swiglu_moe",
             count=_R + "routed_params", formula_kwargs=dict(active=True)),
    ), shape_rule_note="Active: `routed_params` runs the router on one token and counts the router plus the "
                       "experts it picked.",
        chapter=(_CH12, "8 · Mixture of experts: total vs active parameters")),
    Entry("LoRA-adapted nn.Linear (peft)", _F + "lora_params", None, _X + "linear", (
        case("lora_linear", 64, 32, inputs=[(2, 64)], factory=_R + "lora_linear",
             count=_R + "trainable_params", r=8),
        case("lora_linear", 20, 50, inputs=[(3, 4, 20)], factory=_R + "lora_linear",
             count=_R + "trainable_params", r=2),
    ), note="Trainable only: the frozen W (out·in + out) still counts in the total.",
        shape_rule="input (*, in_features) → output (*, out_features), like the Linear it adapts.",
        chapter=("13_training_at_scale", "5. Fine-tuning: LoRA and QLoRA")),
    Entry("ViT patch embedding (nn.Conv2d, kernel = stride = patch)", _F + "conv_params",
          _S + "conv_output_size", _X + "conv", (
              case("Conv2d", 3, 768, 16, inputs=[(1, 3, 224, 224)], stride=16),
              case("Conv2d", 3, 64, 8, inputs=[(2, 3, 32, 48)], stride=8),
          ), note="With kernel_size = stride = p: C·p²·D + D.",
        shape_rule_note="Then ``flatten(2).transpose(1, 2)``: (B, D, H/p, W/p) → (B, N, D), N = (H/p)·(W/p) "
                        "tokens (`VisionTransformer.patchify`; +1 [CLS] token).",
        chapter=(_CH14, "4 · ViT: an image as 197 tokens")),
    Entry("ResNet basic block", _F + "basic_block_params", _F + "basic_block_params", _X + "block", (
        case("BasicBlock", 64, 64, inputs=[(2, 64, 8, 8)], factory="helpers.models.resnet.BasicBlock"),
        case("BasicBlock", 64, 128, 2, inputs=[(1, 64, 9, 9)], factory="helpers.models.resnet.BasicBlock"),
    ), chapter=(_CH14, "1 · Residual blocks")),
    Entry("ResNet bottleneck", _F + "bottleneck_params", _F + "bottleneck_params", _X + "block", (
        case("Bottleneck", 256, 64, inputs=[(1, 256, 8, 8)], factory="helpers.models.resnet.Bottleneck"),
        case("Bottleneck", 64, 64, inputs=[(2, 64, 6, 6)], factory="helpers.models.resnet.Bottleneck"),
        case("Bottleneck", 256, 128, 2, inputs=[(1, 256, 7, 7)], factory="helpers.models.resnet.Bottleneck"),
    ), chapter=(_CH14, "1 · Residual blocks")),
    Entry("MobileNetV2 inverted residual", _F + "inverted_residual_params", _F + "inverted_residual_params",
          _X + "block", (
              case("InvertedResidual", 24, 24, 1, 6, inputs=[(1, 24, 8, 8)],
                   factory="helpers.models.mobilenet.InvertedResidual"),
              case("InvertedResidual", 32, 16, 1, 1, inputs=[(2, 32, 6, 6)],
                   factory="helpers.models.mobilenet.InvertedResidual"),
              case("InvertedResidual", 16, 24, 2, 6, inputs=[(1, 16, 9, 9)],
                   factory="helpers.models.mobilenet.InvertedResidual"),
              case("InvertedResidual", 8, 8, 1, 6, inputs=[(1, 8, 5, 5)], depthwise=False,
                   factory="helpers.models.mobilenet.InvertedResidual"),
          ), chapter=(_CH14, "3 · MobileNetV2: the inverted residual")),
)
