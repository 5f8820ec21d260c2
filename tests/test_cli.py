"""`python -m helpers summary "nn.…" --input …`: right shapes and counts, unsafe input refused.

Expected shapes come from running the REAL torch module forward on real tensors, expected counts
from `helpers.counting.count_params` on the real module — never from the CLI's own code path.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import cli, formulas, shapes
from helpers.counting import count_params

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def shape_text(shape) -> str:
    return str(tuple(shape))


def total_params(stdout: str) -> int:
    m = re.search(r"Total params: ([\d,]+)", stdout)
    assert m, f"no 'Total params' line in:\n{stdout}"
    return int(m.group(1).replace(",", ""))


# ------------------------------------------------------------------------------- as a real command
def test_lstm_summary_subprocess():
    """The README/issue example, run as a real command: shapes of output, h_n, c_n and the count."""
    proc = run_cli("summary", "nn.LSTM(20, 64, num_layers=2)", "--input", "5,2,20")
    assert proc.returncode == 0, proc.stderr
    torch.manual_seed(0)
    lstm = nn.LSTM(20, 64, num_layers=2)
    output, (h_n, c_n) = lstm(torch.zeros(5, 2, 20))
    row = next(line for line in proc.stdout.splitlines() if line.startswith("LSTM"))
    assert f"output {shape_text(output.shape)}" in row
    assert f"h_n {shape_text(h_n.shape)}" in row
    assert f"c_n {shape_text(c_n.shape)}" in row
    assert total_params(proc.stdout) == count_params(lstm) == formulas.rnn_params("LSTM", 20, 64, 2)
    assert f"{count_params(lstm):,}" in row
    assert proc.stderr == ""


def test_unsafe_expression_subprocess_exit_2(tmp_path: Path):
    marker = tmp_path / "pwned"
    proc = run_cli("summary", f"__import__('os').system('touch {marker}')", "--input", "2,3")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_bad_input_format_subprocess_exit_2():
    proc = run_cli("summary", "nn.Linear(3, 4)", "--input", "two,three")
    assert proc.returncode == 2
    assert "--input must be comma-separated integers" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------- in process
@pytest.mark.parametrize("expression, inputs, build, dtype", [
    ("nn.Linear(10, 5)", [(4, 10)], lambda: nn.Linear(10, 5), torch.float32),
    ("torch.nn.Linear(10, 5, bias=False)", [(2, 3, 10)], lambda: nn.Linear(10, 5, bias=False), torch.float32),
    ("nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))", [(1, 3, 32, 32)],
     lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), torch.float32),
    ("nn.Conv1d(12, 64, kernel_size=(5,), stride=2, dilation=2, groups=4)", [(2, 12, 50)],
     lambda: nn.Conv1d(12, 64, kernel_size=(5,), stride=2, dilation=2, groups=4), torch.float32),
    ("nn.GRU(8, 16, bidirectional=True, batch_first=True)", [(3, 7, 8)],
     lambda: nn.GRU(8, 16, bidirectional=True, batch_first=True), torch.float32),
    ("nn.Embedding(100, 32, padding_idx=0)", [(2, 9)], lambda: nn.Embedding(100, 32, padding_idx=0), torch.long),
    ("nn.MultiheadAttention(16, 4, batch_first=True)", [(2, 5, 16)] * 3,
     lambda: nn.MultiheadAttention(16, 4, batch_first=True), torch.float32),
    ("Linear(3, 2)", [(1, 3)], lambda: nn.Linear(3, 2), torch.float32),  # bare torch.nn name
])
def test_summary_matches_real_module(capsys, expression, inputs, build, dtype):
    argv = ["summary", expression]
    for shape in inputs:
        argv += ["--input", ",".join(map(str, shape))]
    if dtype == torch.long:
        argv += ["--dtype", "long"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    torch.manual_seed(0)
    module = build()
    assert total_params(out) == count_params(module)
    result = module(*(torch.zeros(s, dtype=dtype) for s in inputs))
    first = result[0] if isinstance(result, tuple) else result
    assert shape_text(first.shape) in out.splitlines()[3], "the top row shows the real output shape"


def test_conv_pool_shapes_follow_helpers_shapes(capsys):
    """Each row of a Sequential shows the size helpers.shapes predicts, and torch agrees."""
    assert cli.main(["summary", "nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.MaxPool2d(3, ceil_mode=True))",
                     "--input", "1,3,29,29"]) == 0
    out = capsys.readouterr().out
    conv = shapes.conv_output_size(29, 5, stride=2)
    pool = shapes.pool_output_size(conv, 3, ceil_mode=True)
    real = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.MaxPool2d(3, ceil_mode=True))
    assert real[0](torch.zeros(1, 3, 29, 29)).shape == (1, 8, conv, conv)
    assert real(torch.zeros(1, 3, 29, 29)).shape == (1, 8, pool, pool)
    assert shape_text((1, 8, conv, conv)) in next(ln for ln in out.splitlines() if "(Conv2d)" in ln)
    assert shape_text((1, 8, pool, pool)) in next(ln for ln in out.splitlines() if "(MaxPool2d)" in ln)


def test_parse_module_builds_on_meta():
    module = cli.parse_module("nn.Linear(100000, 100000)")  # 10¹⁰ weights: must not allocate
    assert module.weight.device.type == "meta"
    assert count_params(module) == formulas.linear_params(100000, 100000)


NESTED = "nn.Sequential(" * (cli.MAX_DEPTH + 2) + "nn.ReLU()" + ")" * (cli.MAX_DEPTH + 2)
DEEP_LIST = "nn.Linear(3, 4, bias=" + "[" * (cli.MAX_DEPTH + 2) + "]" * (cli.MAX_DEPTH + 2) + ")"
PARSER_LIMIT = "nn.Sequential(" * 300 + ")" * 300


@pytest.mark.parametrize("expression, message", [
    ("__import__('os')", "is not a torch.nn module class"),
    ("__import__('os').system('true')", "only calls like nn.Linear(...) are allowed"),
    ("os.system('true')", "'os.system' is not a torch.nn module class"),
    ("torch.load('model.pt')", "'torch.load' is not a torch.nn module class"),
    ("nn.Linear.__init__(1, 2)", "is not a torch.nn module class"),
    ("nn.functional.linear(1, 2)", "is not a torch.nn module class"),
    ("nn.Module.__subclasses__()", "is not a torch.nn module class"),
    ("nn.Linear(10, 5).weight", "must be a single constructor call"),
    ("nn.Linear", "must be a single constructor call"),
    ("nn.Linear(x * 3, 4)", "got 'x'"),
    ("nn.Linear('ab' * 3, 4)", "arithmetic is allowed on numbers only"),
    ("nn.Linear(10 ** 100, 4)", "too large (exponents up to 64)"),
    ("nn.Linear(2 ** 62 * 4, 4)", "out of range"),
    ("nn.Linear(1 // 0, 4)", "by zero"),
    ("nn.Linear(1 + 2j, 4)", "got '2j'"),
    ("nn.Linear(-True, 4)", "got '-True'"),
    ("nn.Linear(x, 4)", "got 'x'"),
    ("nn.Linear(3, 4, bias=print)", "got 'print'"),
    ("nn.Sequential(lambda: 1)", "got 'lambda: 1'"),
    ("nn.Linear(*[3, 4])", "*args are not allowed"),
    ("nn.Linear(**{'in_features': 3})", "**kwargs are not allowed"),
    ("nn.Linear([i for i in range(3)], 4)", "arguments must be literals"),
    ("nn.Linear(3, 4, device='cpu')", "device= is not allowed"),
    ("nn.Linear(3, 4, bias=True, bias=False)", "keyword argument bias= is given twice"),
    ("nn.Sequential(nn.Linear(3, 4, bias=False, bias=False))", "given twice"),
    ("nn.Linear(3, (yield))", "arguments must be literals"),
    ("nn.Linear(3, 4); import os", "not a Python expression"),
    ("nn.Linear(3, 4", "not a Python expression"),
    ("nn.Linear(3, 4)\x00", "not a Python expression"),
    (NESTED, f"nested more than {cli.MAX_DEPTH} levels"),
    (DEEP_LIST, f"nested more than {cli.MAX_DEPTH} levels"),
    (PARSER_LIMIT, "characters long"),
    ("nn.Linear(3, '" + "x" * 5000 + "')", "characters long"),
])
def test_unsafe_expressions_refused(capsys, expression, message):
    assert cli.main(["summary", expression, "--input", "2,3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert message in captured.err, captured.err


def nested_calls(levels: int) -> str:
    """An expression `levels` levels deep: Sequential(Sequential(…(ReLU())…))."""
    return "nn.Sequential(" * (levels - 1) + "nn.ReLU()" + ")" * (levels - 1)


def nested_lists(levels: int) -> str:
    """The outer call (level 1), then levels − 1 nested lists as an argument."""
    return "nn.Linear(3, 4, bias=" + "[" * (levels - 1) + "]" * (levels - 1) + ")"


@pytest.mark.parametrize("make", [nested_calls, nested_lists])
def test_depth_limit_is_exact(make):
    """MAX_DEPTH levels are accepted, one more is refused (the limit used to let MAX_DEPTH + 2 through)."""
    module = cli.parse_module(make(cli.MAX_DEPTH))
    real = eval(make(cli.MAX_DEPTH), {"nn": nn})  # noqa: S307 - our own literal expression, to compare
    assert count_params(module) == count_params(real)
    with pytest.raises(cli.UnsafeExpression, match=f"nested more than {cli.MAX_DEPTH} levels"):
        cli.parse_module(make(cli.MAX_DEPTH + 1))


def test_refused_before_anything_runs(tmp_path: Path):
    marker = tmp_path / "created"
    for expression in (f"nn.Linear(open({str(marker)!r}, 'w'), 3)",
                       f"nn.Sequential(nn.Linear(2, 2), __import__('pathlib').Path({str(marker)!r}).touch())"):
        with pytest.raises(cli.UnsafeExpression):
            cli.parse_module(expression)
    assert not marker.exists()


@pytest.mark.parametrize("expression, inputs, message", [
    ("nn.Linear(3, 4)", "2,5", "expects 3 input features"),          # forward shape mismatch: explained
    ("nn.Module()", "2,5", "missing the required \"forward\""),
    ("nn.Linear(-3, 4)", "2,3", "could not be built"),
    ("nn.Conv2d(3, 8, 3, groups=2)", "1,3,8,8", "could not be built"),
    ("nn.MultiheadAttention(10, 3)", "2,5,10", "could not be built"),
    ("nn.NoSuchLayer(3)", "2,3", "is not a torch.nn module class"),
])
def test_build_and_forward_errors_are_one_message(capsys, expression, inputs, message):
    assert cli.main(["summary", expression, "--input", inputs]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err


@pytest.mark.parametrize("value", ["two,three", "2.5,3", "-1,3", "", ",", "2;3"])
def test_bad_input_formats(capsys, value):
    with pytest.raises(SystemExit) as exc:
        cli.main(["summary", "nn.Linear(3, 4)", "--input", value])
    assert exc.value.code == 2
    assert "--input" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["99999999999999999999999,10", "3037000500,3037000500"])
def test_too_large_input_is_one_clean_error(capsys, value):
    """More elements than an int64 can count: torch refuses to make the tensor; the CLI says why, in one line."""
    dims = [int(v) for v in value.split(",")]
    with pytest.raises((RuntimeError, OverflowError, TypeError)):
        torch.empty(dims, device="meta")
    with pytest.raises(SystemExit) as exc:
        cli.main(["summary", "nn.Linear(10, 3)", "--input", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "too large" in err and "2**63 - 1" in err and "Traceback" not in err, err


@pytest.mark.parametrize("value", ["-2,10", "-2"])
def test_negative_input_is_read_as_a_shape_and_refused(capsys, value):
    """argparse reads "-2,10" after --input as an unknown option ("expected one argument"); the CLI reads it as
    the shape it is and says what is wrong with it."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["summary", "nn.Linear(10, 3)", "--input", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--input must be non-negative integers" in err and repr(value) in err, err
    assert "expected one argument" not in err


def test_argument_errors_do_not_wait_for_torch():
    """A bad --input (and --help) is answered before torch is imported."""
    code = ("import sys\nfrom helpers.cli import main\n"  # as helpers/__main__.py imports it
            "try:\n    main(['summary', 'nn.Linear(10, 3)', '--input', '-2,10'])\n"
            "except SystemExit as exc:\n    print(exc.code, 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    assert "non-negative" in proc.stderr


def test_input_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["summary", "nn.Linear(3, 4)"])
    assert exc.value.code == 2
    assert "--input" in capsys.readouterr().err


def test_input_accepts_x_and_parentheses(capsys):
    assert cli.main(["summary", "nn.Linear(3, 4)", "--input", "(2x3)"]) == 0
    assert shape_text(nn.Linear(3, 4)(torch.zeros(2, 3)).shape) in capsys.readouterr().out


# ------------------------------------------------------------------------------- issue 28, item 4
@pytest.mark.parametrize("expression, in_features", [("nn.Linear(16*30*30, 10)", 16 * 30 * 30),
                                                      ("nn.Linear(2**10 - 24, 10)", 1000),
                                                      ("nn.Linear((3 + 1) * 8 // 2, 10)", 16)])
def test_literal_arithmetic_accepted(capsys, expression, in_features):
    """Arithmetic of numbers is computed operator by operator (never evaluated as code)."""
    assert cli.main(["summary", expression, "--input", f"2,{in_features}"]) == 0
    assert total_params(capsys.readouterr().out) == count_params(nn.Linear(in_features, 10))


def test_embedding_float_input_hint_names_the_cli_flag(capsys):
    assert cli.main(["summary", "nn.Embedding(10, 4)", "--input", "2,3"]) == 2
    err = capsys.readouterr().err
    assert "--dtype long" in err and "dtypes=[torch.long]" not in err, err
    assert cli.main(["summary", "nn.Embedding(10, 4)", "--input", "2,3", "--dtype", "long"]) == 0
