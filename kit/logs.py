"""Logging for the CLI: the kit's own progress at INFO on stderr, third-party chatter at WARNING."""
from __future__ import annotations

import logging

NOISY = ("httpx", "httpx2", "httpcore", "openai", "urllib3", "jieba", "pdfminer", "filelock", "datasets")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
