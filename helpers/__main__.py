"""`python -m helpers summary "nn.LSTM(20, 64)" --input 5,2,20` — see helpers.cli."""

from helpers.cli import main

raise SystemExit(main())
