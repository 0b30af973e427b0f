"""The model's pass over a whole history, a chunk at a time on several threads: the numbers of one whole pass."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from guard.model.inference import SeriesPass, forward_series
from guard.model.runner import ModelRunner
from tests.model.toy import Trained


def test_series_pass_chunks_run_side_by_side_give_the_whole_pass_numbers_bit_for_bit(trained: Trained) -> None:
    """Chunks run out of order on two threads give every bar the logits `forward_series` gives with the same chunks,
    and a runner's fill jobs run that way give every bar the outputs its one-thread fill gives."""
    torch.set_num_threads(1)
    net = trained.model.net
    series = trained.series[0]
    chunk = len(series.rows) // 3 + 1
    whole, _ = forward_series(net, series.rows, chunk=chunk)
    model_pass = SeriesPass(net, series.rows, chunk=chunk)
    chunks = model_pass.chunks()
    assert len(chunks) == 3 and chunks[-1][1] == len(series.rows)
    with ThreadPoolExecutor(2) as pool:
        pieces = list(pool.map(lambda c: (c[0], model_pass.logits(*c)), reversed(chunks)))
    assert np.array_equal(np.concatenate([lg for _, lg in sorted(pieces, key=lambda p: p[0])]), whole)

    runner = ModelRunner(trained.model)
    alone = runner.replay_unfilled(series, novelty_threshold=0.95)
    for job in runner.fill_jobs(alone, chunk):
        job()
    side_by_side = runner.replay_unfilled(series, novelty_threshold=0.95)
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(job) for job in reversed(runner.fill_jobs(side_by_side, chunk))]:
            done.result()
    for name in ("probs", "side", "confidence", "novelty", "novel"):
        assert np.array_equal(
            getattr(alone, name), getattr(side_by_side, name), equal_nan=name != "side" and name != "novel"
        ), name
