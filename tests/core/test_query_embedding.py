"""Concurrent query embeddings: batched together, cached, the same vectors as one at a time, errors shared."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from holocrm_core.query_embedding import BatchingQueryEmbedder


class CountingEmbedder:
    """A deterministic stand-in that records each forward pass (the batching is what is under test)."""

    dim = 8

    def __init__(self, delay_s: float = 0.02, fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.delay_s = delay_s
        self.fail_on = fail_on

    def encode(self, texts):
        self.calls.append(list(texts))
        time.sleep(self.delay_s)  # a forward pass takes time: others queue meanwhile
        if self.fail_on in texts:
            raise RuntimeError("model failed")
        return np.stack([np.full(self.dim, float(len(t)), dtype=np.float32) for t in texts])


def ask_all(embedder, texts):
    out, threads = {}, []
    for text in texts:
        t = threading.Thread(target=lambda q=text: out.__setitem__(q, embedder.encode([q])[0]))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_queries_share_forward_passes_and_repeats_hit_the_cache():
    inner = CountingEmbedder()
    batcher = BatchingQueryEmbedder(inner, max_batch=64, max_wait_s=0.005)
    texts = [f"query number {i}" for i in range(40)]
    out = ask_all(batcher, texts)
    assert all(out[t][0] == len(t) for t in texts)
    assert sum(len(c) for c in inner.calls) == 40 and len(inner.calls) < 10  # 40 queries, few passes
    passes = len(inner.calls)
    again = ask_all(batcher, texts[:10] * 3)  # repeats and duplicates in flight: no new pass
    assert len(inner.calls) == passes and batcher.stats["hits"] >= 10
    assert np.array_equal(again[texts[0]], out[texts[0]])


@pytest.mark.slow  # loads the real model (about 10 s quiet, 50 s on a loaded machine)
def test_the_same_vectors_as_the_real_model_one_at_a_time():
    from holocrm_core.embedding import load_embedder

    model = load_embedder(backend="torch")
    batcher = BatchingQueryEmbedder(model)
    texts = ["worried about the cost", "CTO at a logistics firm", "renewal in March", "budget concerns"]
    together = ask_all(batcher, texts)
    for text in texts:
        assert np.allclose(together[text], model.encode([text])[0], atol=1e-5)


def test_an_error_reaches_every_waiter_and_the_worker_lives_on():
    inner = CountingEmbedder(fail_on="bad")
    batcher = BatchingQueryEmbedder(inner, max_wait_s=0.05)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.encode(["bad"])
    assert batcher.encode(["good"])[0][0] == 4
