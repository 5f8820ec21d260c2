"""`python -m helpers report SOURCE`: size, cost and fit of an engineer's own model (issue 28).

One job per module: `source` (read SOURCE, build on meta, friendly failures), `counts` (parameters,
blocks, weight bytes), `flops` (formula or traced pass), `memory` (KV cache, training, inference, fit),
`schema` (the `Report` record and its JSON schema), `build` (orchestration), `render` (text),
`command` (the CLI subcommand).
"""

from helpers.report.build import Options, make_report
from helpers.report.schema import JSON_SCHEMA, Report
from helpers.report.source import SourceError, build_model

__all__ = ["Options", "make_report", "Report", "JSON_SCHEMA", "SourceError", "build_model"]
