"""`python -m helpers report SOURCE`: size, cost and fit of an engineer's own model (issue 28).

One job per module: `source` (read SOURCE, build on meta, friendly failures), `mirror` (a plain
Llama/Mistral/Mixtral config rebuilt without importing transformers, tested equal), `counts` (parameters,
blocks, weight bytes), `flops` (formula or traced pass), `memory` (KV cache, training, inference, fit),
`schema` (the `Report` record and its JSON schema), `build` (orchestration), `render` (text),
`command` (the CLI subcommand).

Import from the submodules (``from helpers.report.build import make_report, Options``): this
package imports nothing itself, so ``python -m helpers --help`` and argument errors never wait for torch.
"""

