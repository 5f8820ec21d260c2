"""Shared assertion for questions answered with an nn.Module: a wrong answer gets friendly feedback."""

from __future__ import annotations

from typing import Any

from helpers.checks import check


def assert_friendly_failure(capsys: Any, question_id: str, answer: Any, status: str, words: str) -> None:
    """``check(question_id, answer)`` ends with `status`, prints `words` and a hint, and no traceback."""
    result = check(question_id, answer)
    out = capsys.readouterr().out
    assert result.status == status and words in out, out
    assert "Traceback" not in out and "Hint:" in out
