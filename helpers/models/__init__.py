"""Reference models shared by the chapters, each defined once in its own module.

``from helpers.models import SimpleNet`` re-exports every public name of every submodule
(``helpers/models/<topic>.py``, each listing its public names in ``__all__``). A chapter that
adds a model adds its module and one import line here; tests/test_project.py checks that every
submodule's ``__all__`` is re-exported and that no name is defined twice.
"""

from types import ModuleType as _ModuleType

from .attention import MultiHeadAttention, scaled_dot_product_attention
from .bert import Bert, BertConfig
from .blocks import ConvBlock, seed_cnn_block
from .cnn import DepthwiseSeparableConv2d, SimpleNet
from .embedding import SinusoidalPositionalEncoding, TinyLM, sinusoidal_table
from .gpt import GPT, CausalSelfAttention, GPTBlock, GPTConfig, GPTMLP
from .lenet import LeNet5
from .llama import Llama, LlamaAttention, LlamaBlock, LlamaConfig, LlamaMLP, RMSNorm, apply_rotary
from .lstm import GRUCellScratch, GRUScratch, LSTMCellScratch, LSTMScratch, gru_cell, lstm_cell
from .mamba import (MambaBlock, mamba_block_flops, mamba_block_params, mamba_block_params_breakdown, mamba_dims,
                    mamba_seed_estimate, mamba_state_numel, selective_scan)
from .rnn import (SimpleRNN, measure_saved_numel, rnn_bptt_manual, rnn_bptt_saved_numel, rnn_forward_manual,
                  rnn_layer_forward)
from .seq2seq import AlignedManyToManyLSTM, EncoderDecoderLSTM, ManyToOneLSTM, OneToManyLSTM
from .unet import (DoubleConv, UNet, UNetDecoder, UNetEncoder, UNetLevelSizes, center_crop, conv_block_params,
                   original_unet, unet_level_sizes, unet_output_size, unet_params, unet_params_breakdown,
                   unet_valid_input_sizes)

#: every name imported above (the submodules themselves are reached as ``helpers.models.gpt`` …)
__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and not isinstance(value, _ModuleType))
