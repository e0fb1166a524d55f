"""Progress of a batch: a bar on a terminal, timestamped log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import pandas as pd

from solver.result import ANSWERED

logger = logging.getLogger(__name__)
PROGRESS_SECONDS = 30.0  # between progress lines when stderr is not a terminal


class Progress:
    """Counts accounts done; a bar on a terminal, timestamped log lines otherwise."""

    def __init__(self, total: int, *, show: bool) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self._show = show and total > 0
        self._start = self._last = time.monotonic()
        self._bar: Any = None
        if self._show and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit="acct", dynamic_ncols=True, smoothing=0.1
            )

    def add(self, summary: pd.DataFrame) -> None:
        """Count a finished chunk."""
        self.done += len(summary)
        self.failed += int((~summary["status"].isin(ANSWERED)).sum())
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, refresh=False)
            self._bar.update(len(summary))
        elif self._show and time.monotonic() - self._last >= PROGRESS_SECONDS:
            self._last = time.monotonic()
            rate = self.done / max(self._last - self._start, 1e-9)
            logger.info(
                "%d of %d accounts (%.0f%%), %d not answered, %.1f accounts/s, "
                "about %.0f s left",
                self.done,
                self.total,
                100 * self.done / self.total,
                self.failed,
                rate,
                (self.total - self.done) / rate,
            )

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
