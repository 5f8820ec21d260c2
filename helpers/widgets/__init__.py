"""Interactive ipywidgets explorers, one module per topic (``helpers/widgets/<name>.py``).

``from helpers.widgets import conv_explorer`` re-exports every public name of every explorer
module; a chapter that adds an explorer adds its module and one import line here
(tests/test_project.py checks that every module's ``__all__`` is re-exported, once).
Each module keeps its pure logic (what is displayed: sizes, formulas, positions, error text)
importable and testable without ipywidgets; ipywidgets, matplotlib and torch are imported only
when a widget is built or a figure drawn, so ``import helpers.widgets`` stays cheap.
"""

from types import ModuleType as _ModuleType

from .attention import (ATTENTION_CSS_CLASS, DTYPE_BYTES, HeadsExploration, attention_explorer, draw_heads,
                        explore_heads, valid_num_heads)
from .conv import (CONV_OUTPUT_CSS_CLASS, ConvExploration, conv_explorer, coverage, draw_conv, explore_conv,
                   window_starts)
from .recurrent_params import RecurrentExploration, TensorRow, explore_recurrent, recurrent_explorer
from .rnn_unrolling import RNNExploration, draw_unrolled, explore_rnn, rnn_explorer

#: every name imported above (the modules themselves are reached as ``helpers.widgets.conv`` …)
__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and not isinstance(value, _ModuleType))
