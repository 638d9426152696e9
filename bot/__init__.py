"""faqbot: answers developers' questions from an FAQ in Slack and turns the rest into tickets."""

import os

# One BLAS thread per process, set before anything imports numpy: faqbot decides questions on
# many threads of its own (gunicorn's, its background pool), and OpenBLAS's threads on top of
# them made the optional semantic model about 15 times slower in a worker: 40 answers took
# 9.5 s instead of 0.7 s (bench/bench_slack.py --bundled). An operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
__all__ = ["__version__"]
