"""Test helper: a stand-in scores.parquet for publish and builder tests.

The scores are random numbers made by the test, not a model's output; they only have the schema
that the `score` stage writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenet_multimodal.io import write_json
from imagenet_multimodal.schema import SCORE_SCHEMA, scored_captions_digest


def write_fake_scores(work: Path, *, seed: int = 0) -> pa.Table:
    captions = pq.read_table(work / "captions.parquet")
    eligible = captions.filter(captions["eligible"])
    n = eligible.num_rows
    rng = np.random.default_rng(seed)
    p = rng.random(n).astype(np.float32)
    kept = p >= 0.5
    relevance = np.where(kept, (p - 0.5) * 2, np.nan).astype(np.float32)
    table = pa.table(
        {
            "record": eligible["record"],
            "image_id": eligible["image_id"],
            "label": eligible["label"],
            "p_correct": p,
            "p_mean": np.full(n, 0.001, np.float32),
            "rank": rng.integers(1, 10, n).astype(np.int32),
            "top5": [[0, 1, 2, 3, 4]] * n,
            "kept": kept,
            "drop_reason": pa.array([None if k else "below_low" for k in kept], pa.string()),
            "relevance": pc.if_else(pa.array(kept), pa.array(relevance), pa.scalar(None, pa.float32())),
            "scored_out_of_fold": np.zeros(n, bool),
            "score_method": ["in-sample"] * n,
            "p_correct_in_sample": p,
            "name_match": rng.random(n) < 0.3,
            "class_similarity": rng.random(n).astype(np.float32),
            "informativeness": rng.random(n).astype(np.float32),
        },
        schema=SCORE_SCHEMA,
    )
    pq.write_table(table, work / "scores.parquet")
    fingerprint = {"captions": scored_captions_digest(captions)}  # what `score` records
    write_json({"fingerprint": fingerprint, "low": 0.5, "high": 0.9, "curve": "linear", "method": "in-sample",
                "reasons": {"kept": int(kept.sum()), "below_low": int((~kept).sum())}}, work / "score_stats.json")
    return table
