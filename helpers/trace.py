"""Tracing a forward pass: a per-layer `summary` (shapes, parameters, FLOPs) and `explain`.

`summary(model, input_size)` runs ONE forward pass under forward (pre-)hooks inside one
`torch.utils.flop_counter.FlopCounterMode`, and returns a `Summary`: one `LayerRow` per module
*call*, in call order (a module called twice gets two rows, "call 2"), with

* ``input_shapes`` / ``output_shapes`` — shape tuples, nested exactly like the values the module
  received and returned. Tuples are shown whole: ``nn.LSTM`` returns ``output, (h_n, c_n)``, so
  its row reads ``output (L, N, D·H_out), h_n (D·num_layers, N, H_out), c_n (…)``;
* ``params`` — the module's OWN parameters (``module.parameters(recurse=False)``); a tensor
  already counted in an earlier row (a tied embedding/head, a module reused twice) is reported in
  ``shared_params`` as well, so ``sum(row.new_params) == Summary.total_params ==
  helpers.counting.count_params(model)`` (tied tensors counted once);
* ``flops`` — the FLOPs of the operations run by this call itself, *excluding* its child layers'
  calls (for a leaf layer: all of its FLOPs), so ``sum(row.flops) == Summary.total_flops``.
  ``cum_flops`` includes the children. A row's FLOPs are the growth of FlopCounterMode's total
  between the call's entry and exit, so a module reused twice has each call counted separately.

In the text table a ``tied`` after a parameter count marks tensors already counted in an earlier
row (``reused`` for a module's second call), and ``(not called)`` a module that owns parameters
but was not called as a module (e.g. ``nn.MultiheadAttention.out_proj``, whose weight its parent
uses directly). ``depth=d`` folds deeper calls into their ancestor at depth d.

FLOP convention (FlopCounterMode's): a multiply-accumulate counts as **2 FLOPs**, and only
matrix products, convolutions and attention kernels are counted (element-wise ops, norms,
activations, softmax count 0). So, with B·T rows going through the layer::

    nn.Linear(in, out):       FLOPs = 2 · (B·T) · in · out              (bias not counted)
    nn.Conv2d(C_in, C_out, k, groups=g), output (N, C_out, H', W'):
                              FLOPs = 2 · N · C_out · H' · W' · (C_in / g) · k_h · k_w
    attention (SDPA), q/k/v (B, h, T, d):  FLOPs = 2 · 2 · B · h · T · T · d   (QKᵀ and A·V;
                              a causal mask is not discounted)
    MACs = FLOPs / 2

Gaps of the stock FlopCounterMode closed in `helpers._flops` (so CPU and meta give the same
table): on CPU, oneDNN runs ``nn.LSTM``/``nn.GRU`` as one fused kernel it cannot see (switched off
around recurrent layers only, so they decompose into counted matmuls); the fused CPU attention
kernel, ``torch._grouped_mm`` (Mixture-of-Experts: FLOPs = 2·rows·in·out over all experts),
``nn.Bilinear``'s ``_trilinear`` (2·N·out·in1·in2 + 2·N·out·in2), ``mv`` and ``dot`` get formulas.
An op that looks FLOP-heavy (a matmul, convolution, attention or RNN kernel) but has no formula
is listed in ``Summary.notes`` — never silently counted as 0.

Mixture of Experts: a block with ``experts`` (and ``num_experts``/``top_k``, or the model config's
``num_local_experts``/``num_experts_per_tok``) routes each token to k of n experts, so
``Summary.active_params`` = total − (n − k)/n of each block's expert parameters (the router,
shared experts, attention and embeddings are always active), printed next to the total.

Device: by default the pass runs on the ``meta`` device — tensors there have a shape and a dtype
but no storage, so a Llama-2-7B-shaped model is summarised in about a second with no weights
allocated. The model itself is never modified (`helpers._forward.shadow`): the pass runs on new
module objects that hold stand-in tensors — shape-only meta tensors when ``device="meta"``, the
model's own parameters (read, never written) and *copies* of its buffers (BatchNorm's running
statistics and ``num_batches_tracked`` stay untouched) on the model's device, copies on another
device, zeros for a model built on meta traced on a real device. Tied tensors and modules
registered under several names (T5's ``shared`` embedding) stay tied. On meta the pass runs under
``torch.no_grad()``; on a real device with autograd on, which keeps PyTorch's fused inference
fast paths (invisible to FlopCounterMode) switched off.
To summarise a model too large for RAM, build it on meta in the first place::

    with torch.device("meta"):
        model = Llama(LlamaConfig())      # shapes only: no memory, no init time
    summary(model, example_inputs=torch.zeros(1, 4096, dtype=torch.long))

Special cases: a model with lazy layers (``nn.LazyLinear``…) is traced on a deep copy (the
forward pass materialises lazy parameters; the original stays uninitialised); a TorchScript
module runs as one call on a copy on its own device; if a model cannot run on meta (it keeps
plain, unregistered tensors on the CPU, calls ``.item()``, has data-dependent shapes), `summary`
runs it again on the model's device with the caller's own input tensors (not zeros) and says so
in ``Summary.notes``; a layer call that raised an error the model caught is noted too.

`explain(model, example_inputs)` runs the forward pass (on meta by default) and, when it fails,
names the layer that failed (qualified name and type), the shape it received versus what it
expects, and the likely cause, in plain language — never a traceback.
"""

from helpers._text import format_shapes
from helpers.explain import Explanation, explain
from helpers.summary import LayerRow, Summary, summary

__all__ = ["summary", "Summary", "LayerRow", "explain", "Explanation", "format_shapes"]
