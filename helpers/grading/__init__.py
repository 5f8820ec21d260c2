"""The grader's parts, one job per module (the public door is :mod:`helpers.grade`)."""
