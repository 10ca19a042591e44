"""`python -m snowcoder_train --manifest M --phase P [--max-steps K] [--resume auto|never]`."""

from snowcoder_train.train import main

raise SystemExit(main())
