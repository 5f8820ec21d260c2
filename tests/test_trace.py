"""helpers.trace: golden tests for `summary` and `explain`.

Every expected value is derived independently of the code under test: shapes by running the
real layers on CPU, parameter counts from ``p.numel()``, FLOPs from the closed-form formulas
(a multiply-accumulate = 2 FLOPs):  Linear 2·rows·in·out,  Conv2d 2·N·C_out·H'·W'·(C_in/g)·k_h·k_w,
attention 2·2·B·h·T·T·d,  LSTM 2·N·(in·4H + H·4H) per layer and time step.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.counting import count_buffers, count_params
from helpers.trace import Explanation, LayerRow, Summary, explain, summary


# --------------------------------------------------------------------------- models ----------

class SmallCNN(nn.Module):
    """conv → bn → relu → pool → flatten → fc1 → relu → fc2 (relu called twice)."""

    def __init__(self, fc_in: int = 16 * 14 * 14, conv2_in: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(fc_in, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class TinyLM(nn.Module):
    """Embedding → TransformerEncoderLayer → Linear head tied to the embedding."""

    def __init__(self, vocab: int = 50, d: int = 16, nhead: int = 2, ff: int = 32) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.enc = nn.TransformerEncoderLayer(d, nhead, ff, dropout=0.0, batch_first=True)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.emb(idx)))


def cnn_expected(model: SmallCNN, x: torch.Tensor) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """(input shape, output shape) of each layer, by running the real layers on CPU."""
    shapes = {}
    h = x
    for name in ("conv", "bn", "relu", "pool", "flatten", "fc1"):
        out = getattr(model, name)(h)
        shapes[name] = (tuple(h.shape), tuple(out.shape))
        h = out
    return shapes


def conv2d_flops(conv: nn.Conv2d, out_shape: tuple[int, ...]) -> int:
    n, c_out, h, w = out_shape
    kh, kw = conv.kernel_size
    return 2 * n * c_out * h * w * (conv.in_channels // conv.groups) * kh * kw


def linear_flops(rows: int, lin: nn.Linear) -> int:
    return 2 * rows * lin.in_features * lin.out_features


# --------------------------------------------------------------------------- summary: CNN ----

@pytest.fixture(scope="module")
def cnn() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN()


def test_cnn_rows_shapes_params_flops_are_golden(cnn):
    x = torch.randn(2, 1, 28, 28)
    s = summary(cnn, tuple(x.shape))
    expected = cnn_expected(cnn, x)
    assert [r.name for r in s.rows] == ["", "conv", "bn", "relu", "pool", "flatten", "fc1", "relu", "fc2"]
    assert [r.call for r in s.rows] == [1, 1, 1, 1, 1, 1, 1, 2, 1]
    assert [r.depth for r in s.rows] == [0] + [1] * 8
    for name, (shape_in, shape_out) in expected.items():
        row = s[name]
        assert row.input_shapes == (shape_in,), name
        assert row.output_shapes == shape_out, name
        assert row.type == type(getattr(cnn, name)).__name__
    assert s.output_shapes == tuple(cnn(x).shape) == (2, 10)
    for r in s.rows:  # own parameters, from torch
        own = sum(p.numel() for p in (cnn if r.name == "" else getattr(cnn, r.name)).parameters(recurse=False))
        assert r.params == own
    conv_out = expected["conv"][1]
    assert s["conv"].flops == conv2d_flops(cnn.conv, conv_out)
    assert s["fc1"].flops == linear_flops(2, cnn.fc1) and s["fc2"].flops == linear_flops(2, cnn.fc2)
    for name in ("bn", "relu", "pool", "flatten", ""):
        assert s[name].flops == 0  # FlopCounterMode counts only matmul/conv/attention
    assert s.total_flops == conv2d_flops(cnn.conv, conv_out) + linear_flops(2, cnn.fc1) + linear_flops(2, cnn.fc2)
    assert all(r.macs * 2 == r.flops for r in s.rows) and s.total_macs * 2 == s.total_flops


def test_cnn_totals_reconcile_with_torch(cnn):
    s = summary(cnn, (2, 1, 28, 28))
    by_numel = sum(p.numel() for p in cnn.parameters())
    assert s.total_params == count_params(cnn) == by_numel
    assert sum(r.new_params for r in s.rows) == s.total_params
    assert sum(r.flops for r in s.rows) == s.total_flops
    assert s.trainable_params == by_numel and s.non_trainable_params == 0
    assert s.total_buffers == count_buffers(cnn) == sum(b.numel() for b in cnn.buffers())
    assert s.param_bytes_fp32 == 4 * by_numel and s.param_bytes_bf16 == 2 * by_numel
    assert s.param_bytes(torch.float16) == 2 * by_numel


def test_frozen_layers_are_not_trainable():
    model = SmallCNN()
    model.conv.requires_grad_(False)
    s = summary(model, (1, 1, 28, 28))
    frozen = sum(p.numel() for p in model.conv.parameters())
    assert s.trainable_params == count_params(model, trainable_only=True) == s.total_params - frozen
    assert s["conv"].trainable_params == 0


def test_meta_and_cpu_give_the_same_table(cnn):
    meta, cpu = summary(cnn, (2, 1, 28, 28)), summary(cnn, (2, 1, 28, 28), device="cpu")
    assert meta.device == "meta" and cpu.device == "cpu"
    assert meta.rows == cpu.rows
    strip = lambda s: [ln for ln in str(s).splitlines() if not ln.startswith("Traced on")]  # noqa: E731
    assert strip(meta) == strip(cpu)


def test_summary_leaves_the_model_untouched(cnn):
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    ptrs = [p.data_ptr() for p in cnn.parameters()]
    cnn.train()
    for device in ("meta", "cpu"):
        summary(cnn, (4, 1, 28, 28), device=device)
    after = cnn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm running stats too
    assert [p.data_ptr() for p in cnn.parameters()] == ptrs
    assert all(p.device.type == "cpu" for p in cnn.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in cnn.modules())
    from torch.nn.modules import module as M

    assert not M._global_forward_hooks and not M._global_forward_pre_hooks


def test_text_table_is_aligned_and_html_has_every_row(cnn):
    s = summary(cnn, (2, 1, 28, 28))
    text = str(s)
    assert max(map(len, text.splitlines())) <= 110
    assert f"{s.total_params:,}" in text and f"{s.total_flops:,}" in text and f"{s.total_macs:,}" in text
    for r in s.rows[1:]:
        assert f"{r.name} ({r.type})" in text
    html = s._repr_html_()
    assert html.count("<tr>") == len(s.rows) + 2  # header + rows + footer
    assert "fc1" in html and "(2, 3136)" in html


# --------------------------------------------------------------------------- summary: LSTM ---

def lstm_flops(lstm: nn.LSTM, steps: int, batch: int) -> int:
    total = 0
    for layer in range(lstm.num_layers):
        width_in = lstm.input_size if layer == 0 else lstm.hidden_size
        total += 2 * steps * batch * (width_in * 4 * lstm.hidden_size + lstm.hidden_size * 4 * lstm.hidden_size)
    return total


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_lstm_output_tuple_is_shown_whole(device):
    torch.manual_seed(0)
    lstm = nn.LSTM(32, 64, num_layers=2)
    x = torch.randn(5, 2, 32)
    out, (h_n, c_n) = lstm(x)
    s = summary(lstm, tuple(x.shape), device=device)
    (row,) = s.rows
    assert row.output_shapes == (tuple(out.shape), (tuple(h_n.shape), tuple(c_n.shape)))
    shown = f"output {tuple(out.shape)}, h_n {tuple(h_n.shape)}, c_n {tuple(c_n.shape)}"
    assert row.output_str == shown and shown in str(s)
    assert row.params == s.total_params == sum(p.numel() for p in lstm.parameters())
    # on CPU too: summary switches oneDNN off so the LSTM decomposes into countable matmuls
    assert s.total_flops == row.flops == lstm_flops(lstm, steps=5, batch=2)


def test_lstm_with_initial_state_and_gru_names():
    lstm, gru = nn.LSTM(8, 16, batch_first=True), nn.GRU(8, 16, batch_first=True)
    x, h0, c0 = torch.zeros(3, 4, 8), torch.zeros(1, 3, 16), torch.zeros(1, 3, 16)
    s = summary(lstm, example_inputs=(x, (h0, c0)))
    assert s.rows[0].input_shapes == ((3, 4, 8), ((1, 3, 16), (1, 3, 16)))
    out, h = gru(x)
    assert summary(gru, (3, 4, 8)).rows[0].output_str == f"output {tuple(out.shape)}, h_n {tuple(h.shape)}"


# --------------------------------------------------------------------------- summary: transformer

def encoder_layer_flops(layer: nn.TransformerEncoderLayer, batch: int, seq: int) -> int:
    d, h = layer.self_attn.embed_dim, layer.self_attn.num_heads
    ff = layer.linear1.out_features
    rows = batch * seq
    return (2 * rows * d * 3 * d  # in_proj (q, k, v)
            + 2 * 2 * batch * h * seq * seq * (d // h)  # q·kᵀ and attention·v
            + 2 * rows * d * d  # out_proj
            + 2 * rows * d * ff * 2)  # linear1 and linear2


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_tiny_transformer_with_tied_head(mode):
    torch.manual_seed(0)
    model = TinyLM().train(mode == "train")
    idx = torch.randint(0, 50, (2, 7))
    meta = summary(model, idx.shape, dtypes=[torch.long])
    cpu = summary(model, example_inputs=idx, device="cpu")
    assert meta.rows == cpu.rows
    logits = model(idx)
    assert meta.output_shapes == tuple(logits.shape)
    assert meta["emb"].output_shapes == tuple(model.emb(idx).shape)
    # tied weights: counted once in the total, flagged on the head's row
    naive = sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False))
    by_numel = sum(p.numel() for p in model.parameters())
    assert meta.total_params == count_params(model) == by_numel == naive - 50 * 16
    head = meta["head"]
    assert head.params == head.shared_params == 50 * 16 and head.new_params == 0
    assert head.tied_with == ("emb.weight",) and "tied" in str(meta)
    assert sum(r.new_params for r in meta.rows) == meta.total_params
    # FLOPs by hand
    assert head.flops == linear_flops(2 * 7, model.head)
    assert meta["enc"].flops + sum(r.flops for r in meta.rows if r.name.startswith("enc.")) == \
        encoder_layer_flops(model.enc, 2, 7)
    assert meta.total_flops == encoder_layer_flops(model.enc, 2, 7) + linear_flops(2 * 7, model.head)
    assert sum(r.flops for r in meta.rows) == meta.total_flops


def test_depth_folds_children_and_keeps_the_sums():
    model = TinyLM()
    full = summary(model, (2, 7), dtypes=[torch.long])
    short = summary(model, (2, 7), dtypes=[torch.long], depth=1)
    assert [r.name for r in short.rows] == ["", "emb", "enc", "head"]
    enc = short["enc"]
    assert enc.collapsed and enc.params == sum(p.numel() for p in model.enc.parameters())
    assert enc.flops == encoder_layer_flops(model.enc, 2, 7)
    assert sum(r.new_params for r in short.rows) == short.total_params == full.total_params
    assert sum(r.flops for r in short.rows) == short.total_flops == full.total_flops
    assert [r.name for r in summary(model, (2, 7), dtypes=[torch.long], depth=0).rows] == [""]


def test_a_module_called_twice_gets_two_rows_and_its_weights_count_once():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shared = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.shared(torch.relu(self.shared(x)))

    model = Twice()
    s = summary(model, (3, 8))
    first, second = s.rows[1:]
    assert (first.name, first.call, second.name, second.call) == ("shared", 1, "shared", 2)
    assert first.new_params == 8 * 8 + 8 and second.new_params == 0 and second.shared_params == 72
    assert first.flops == second.flops == linear_flops(3, model.shared)
    assert s.total_params == 72 and s.total_flops == 2 * linear_flops(3, model.shared)
    assert "call 2" in str(s)


def test_parameters_of_uncalled_modules_still_count():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.spare = nn.Linear(4, 4), nn.Linear(4, 100)
            self.scale = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x) * self.scale

    model = Unused()
    s = summary(model, (2, 4))
    assert s.total_params == count_params(model) == 4 + 20 + 500
    assert s[""].params == 4  # the root's own nn.Parameter
    spare = s["spare"]
    assert not spare.called and spare.params == 500 and spare.output_shapes is None


def test_flops_agree_with_stock_flop_counter_mode():
    """summary's faster dispatch path must count exactly what FlopCounterMode counts."""
    gpt = pytest.importorskip("helpers.models.gpt")
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32))
    idx = torch.randint(0, 64, (2, 16))
    for m, x in ((model, idx), (SmallCNN(), torch.randn(2, 1, 28, 28)), (nn.LSTM(8, 16, 2), torch.randn(3, 2, 8))):
        with FlopCounterMode(display=False) as counter:
            m.to("meta")(x.to("meta"))
        assert summary(m, example_inputs=x).total_flops == counter.get_total_flops() > 0


def test_llama_2_7b_shaped_model_on_meta():
    llama = pytest.importorskip("helpers.models.llama")
    cfg = llama.LlamaConfig()
    with torch.device("meta"):
        model = llama.Llama(cfg)
    s = summary(model, example_inputs=torch.zeros(1, 128, dtype=torch.long))
    V, D, F, L = cfg.vocab_size, cfg.dim, cfg.intermediate_size, cfg.n_layers
    expected = 2 * V * D + L * (4 * D * D + 3 * D * F + 2 * D) + D  # untied head
    assert s.total_params == count_params(model) == expected
    assert expected > 6_000_000_000 and s.param_bytes_bf16 == 2 * expected
    assert s.output_shapes == (1, 128, V)
    assert s["lm_head"].flops == 2 * 128 * D * V
    assert all(p.device.type == "meta" for p in model.parameters())


# --------------------------------------------------------------------------- summary: inputs -

def test_input_forms():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(5, 2)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(y)

    model = Two()
    s1 = summary(model, [(4, 3), (4, 5)])
    s2 = summary(model, example_inputs=(torch.zeros(4, 3), torch.zeros(4, 5)))
    s3 = summary(model, example_inputs={"x": torch.zeros(4, 3), "y": torch.zeros(4, 5)})
    assert s1.rows == s2.rows
    assert s1.rows[1:] == s3.rows[1:] and s3[""].input_kwargs == {"x": (4, 3), "y": (4, 5)}
    with pytest.raises(ValueError, match="exactly one"):
        summary(model)
    with pytest.raises(ValueError, match="exactly one"):
        summary(model, (4, 3), example_inputs=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="dtypes"):
        summary(model, [(4, 3), (4, 5)], dtypes=[torch.float32])


def test_lazy_layers_are_traced_on_a_copy():
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(5))
    s = summary(model, (2, 3, 4))
    assert s.total_params == 3 * 4 * 5 + 5 and s.output_shapes == (2, 5)
    assert isinstance(model[1].weight, nn.parameter.UninitializedParameter)
    assert any("lazy" in n for n in s.notes)


def test_summary_falls_back_to_the_real_device_when_meta_cannot_run():
    class NeedsValues(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * float(x.abs().max().item() + 1)  # data-dependent

    s = summary(NeedsValues(), (2, 4))
    assert s.device == "cpu" and s.total_flops == linear_flops(2, nn.Linear(4, 4)) and s.notes


# --------------------------------------------------------------------------- explain ---------

def test_explain_flatten_mistake_names_layer_and_numbers():
    model = SmallCNN(fc_in=4096)
    x = torch.randn(2, 1, 28, 28)
    e = explain(model, x)
    flat = tuple(model.flatten(model.pool(model.conv(x))).shape)  # the real flattened shape
    assert isinstance(e, Explanation) and isinstance(e, str) and not e.ok
    assert e.layer == "fc1" and e.layer_type == "Linear" and e.input_shapes == (flat,)
    assert "fc1 (Linear)" in e and "4096" in e and str(flat[1]) in e
    assert f"{flat[1]} = 16×14×14" in e and "flatten" in e.lower() and "LazyLinear" in e
    assert "Traceback" not in e and "File \"" not in e
    assert "fc1" in e._repr_html_()


def test_explain_forgotten_flatten():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(4 * 26 * 26, 10))
    e = explain(model, torch.randn(2, 1, 28, 28))
    assert e.layer == "1" and "layer 1 (Linear)" in e and "flatten" in e.lower() and "26" in e


def test_explain_lstm_input_size_mistake():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 12)
            self.lstm = nn.LSTM(10, 20, batch_first=True)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return self.lstm(self.emb(idx))[0]

    e = explain(Tagger(), torch.randint(0, 100, (2, 5)))
    assert not e.ok and e.layer == "lstm" and e.layer_type == "LSTM"
    assert e.input_shapes == ((2, 5, 12),)
    assert "lstm (LSTM)" in e and "input_size = 10" in e and "got 12" in e


def test_explain_conv_channel_mistake():
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(3, 8, 3))
    model.add_module("conv2", nn.Conv2d(16, 4, 3))
    e = explain(model, torch.randn(2, 3, 32, 32))
    assert e.layer == "conv2" and e.input_shapes == ((2, 8, 30, 30),)
    assert "conv2 (Conv2d)" in e and "16 input channels" in e and "got 8" in e and "conv1" in e


def test_explain_channels_last_and_missing_channel_dim():
    conv = nn.Conv2d(3, 8, 3)
    assert "channels-last" in explain(conv, torch.randn(2, 32, 32, 3))
    e = explain(conv, torch.randn(2, 32, 32))  # 3-D = one unbatched (C, H, W) image with C = 2
    assert not e.ok and "unbatched" in e and "in_channels = 3" in e and "C = 2 channels" in e
    e2 = explain(nn.Conv2d(1, 8, 3), torch.randn(32, 32))
    assert "channel dimension is missing" in e2 and "unsqueeze(1)" in e2


def test_explain_embedding_mistakes():
    emb = nn.Embedding(10, 4)
    e = explain(emb, torch.tensor([[1, 12]]))
    assert not e.ok and "num_embeddings = 10" in e and "12" in e
    assert "integer token ids" in explain(emb, torch.randn(2, 3))


def test_explain_view_mistake_in_forward_code():
    class Hardcoded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 16, 3, padding=1)
            self.fc = nn.Linear(4096, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).view(-1, 4096))

    x = torch.randn(3, 1, 28, 28)  # conv output: 3·16·28·28 = 37,632 elements, not a multiple of 4096
    e = explain(Hardcoded(), x)
    assert e.layer == "" and e.layer_type == "Hardcoded"
    assert "view/reshape" in e and "conv (Conv2d)" in e and "37,632" in e and "3×16×28×28" in e


def test_explain_on_a_correct_model():
    torch.manual_seed(0)
    model = SmallCNN()
    x = torch.randn(2, 1, 28, 28)
    e = explain(model, x)
    assert e.ok and e == f"✓ ran fine: output shape {tuple(model(x).shape)}" and e.layer is None
    lstm = nn.LSTM(4, 6)
    out, (h, c) = lstm(torch.randn(3, 1, 4))
    e2 = explain(lstm, torch.randn(3, 1, 4))
    assert e2.ok and str(tuple(out.shape)) in e2 and str(tuple(h.shape)) in e2
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_rows_are_dataclasses():
    s = summary(SmallCNN(), (1, 1, 28, 28))
    assert isinstance(s, Summary) and all(isinstance(r, LayerRow) for r in s.rows)
    assert len(s) == len(list(s)) == len(s.rows)
    with pytest.raises(KeyError):
        s["nope"]
    assert math.prod(s["flatten"].output_shapes) == 16 * 14 * 14


@pytest.mark.parametrize("model, inputs, layer, needles", [
    (nn.Sequential(nn.Linear(3, 6), nn.LayerNorm(5)), torch.zeros(2, 3), "1",
     ["layer 1 (LayerNorm)", "(5,)", "(6,)", "nn.LayerNorm(6)"]),
    (nn.MultiheadAttention(8, 2, batch_first=True), (torch.zeros(2, 3, 6),) * 3, "",
     ["embed_dim = 8", "got 6"]),
    (nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(5)), torch.zeros(2, 3, 8, 8), "1",
     ["num_features", "got 6", "nn.BatchNorm2d(6)"]),
    (nn.LSTM(4, 8, 2), (torch.zeros(5, 3, 4), (torch.zeros(1, 3, 8), torch.zeros(1, 3, 8))), "",
     ["hidden state", "(2, 3, 8)"]),
    (nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5)),
     torch.zeros(1, 1, 16, 16), "4", ["1×1", "5×5", "shrank"]),
])
def test_explain_other_layer_mistakes(model, inputs, layer, needles):
    e = explain(model, inputs)
    assert not e.ok and e.layer == layer and e.startswith("✗ Shape problem")
    for needle in needles:
        assert needle in e, needle


def test_explain_reports_other_errors_without_a_traceback():
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("custom failure")

    e = explain(Broken(), torch.zeros(2))
    assert not e.ok and e.layer == "" and "ValueError: custom failure" in e and "Traceback" not in e
    assert e.error == "custom failure"


def test_unregistered_cpu_tensor_falls_back_to_cpu():
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.mask = nn.Linear(4, 4), torch.ones(4)  # a plain attribute, not a buffer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * self.mask

    s = summary(Masked(), (2, 4))
    assert s.device == "cpu" and s.total_flops == 2 * 2 * 4 * 4 and "meta" in s.notes[0]
