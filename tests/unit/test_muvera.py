"""MUVERA encoder and exact Chamfer scoring, checked against slow obvious references."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

import index.muvera as muvera
from index.multivector import Ragged, exact_maxsim, maxsim_pairs, top_of
from index.muvera import MuveraEncoder, MuveraParams
from index.serialization import IndexFormatError
from tests.helpers.data import clustered_set, ragged

DIM = 8
TINY_PARAMS = [
    MuveraParams(k_sim=3, d_proj=4, repetitions=3, seed=7),
    MuveraParams(k_sim=2, d_proj=None, repetitions=2, seed=8),
    MuveraParams(k_sim=3, d_proj=4, repetitions=2, fill_empty=False, seed=9),
    MuveraParams(k_sim=3, d_proj=4, repetitions=3, final_dim=10, seed=10),
    MuveraParams(k_sim=0, d_proj=3, repetitions=2, seed=11),
]


def tiny_items(seed: int, lengths: tuple[int, ...] = (1, 3, 6)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]


def reference_fde(encoder: MuveraEncoder, item: np.ndarray, *, is_query: bool) -> np.ndarray:
    """The FDE of one document or query, written as plainly as possible."""
    params = encoder.params
    tokens = item.astype(np.float64)
    blocks = []
    for rep in range(params.repetitions):
        planes = encoder.hyperplanes[rep].astype(np.float64)
        codes = []
        for token in tokens:
            codes.append(sum(1 << i for i in range(params.k_sim) if token @ planes[:, i] > 0))
        if encoder.projections is None:
            projected = list(tokens)
        else:
            projected = [token @ encoder.projections[rep] for token in tokens]
        for partition in range(2**params.k_sim):
            members = [j for j, code in enumerate(codes) if code == partition]
            block = np.zeros(encoder.d_proj)
            if members:
                block = sum((projected[j] for j in members), block)
                if not is_query:
                    block = block / len(members)
            elif not is_query and params.fill_empty:
                hamming = [bin(code ^ partition).count("1") for code in codes]
                nearest = min(range(len(codes)), key=lambda j: (hamming[j], j))
                block = projected[nearest]
            blocks.append(block)
    fde = np.concatenate(blocks)
    if encoder.sketch_buckets is None or encoder.sketch_signs is None:
        return fde
    sketched = np.zeros(encoder.output_dim)
    for j, value in enumerate(fde):
        sketched[encoder.sketch_buckets[j]] += encoder.sketch_signs[j] * value
    return sketched


@pytest.mark.parametrize("params", TINY_PARAMS)
def test_document_encoding_matches_reference(params: MuveraParams) -> None:
    encoder = MuveraEncoder(DIM, params)
    items = tiny_items(params.seed)
    expected = np.stack([reference_fde(encoder, item, is_query=False) for item in items])
    actual = encoder.encode_documents(*ragged(items))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("params", TINY_PARAMS)
def test_query_encoding_matches_reference(params: MuveraParams) -> None:
    encoder = MuveraEncoder(DIM, params)
    items = tiny_items(params.seed + 100, lengths=(2, 5))
    expected = np.stack([reference_fde(encoder, item, is_query=True) for item in items])
    actual = encoder.encode_queries(*ragged(items))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_fill_empty_breaks_hamming_ties_by_lowest_token() -> None:
    # one hyperplane along the first axis: tokens 0 and 1 land in partition 1, partition 0
    # is empty and both are one bit away, so the lower index (token 0) must fill it
    encoder = MuveraEncoder(2, MuveraParams(k_sim=1, d_proj=None, repetitions=1))
    sign = np.sign(encoder.hyperplanes[0, 0, 0])
    tokens = np.array([[sign * 1.0, 0.0], [sign * 3.0, 0.0]], dtype=np.float32)
    fde = encoder.encode_documents(tokens, np.array([0, 2]))
    empty_block, full_block = fde[0, :2], fde[0, 2:]
    assert tokens[0].tolist() == empty_block.tolist()
    assert tokens.mean(axis=0).tolist() == full_block.tolist()


def test_encoding_does_not_depend_on_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = MuveraEncoder(DIM, MuveraParams(k_sim=3, d_proj=4, repetitions=3, final_dim=20))
    tokens, offsets = ragged(tiny_items(3, lengths=(4, 1, 7, 2, 5, 3)))
    whole = encoder.encode_documents(tokens, offsets)
    monkeypatch.setattr(muvera, "_BATCH_ELEMENTS", 150)  # a few tokens or items per batch
    batched = encoder.encode_documents(tokens, offsets)
    np.testing.assert_allclose(batched, whole, rtol=1e-6, atol=1e-6)


def test_encodings_have_declared_shape_and_dtype() -> None:
    params = MuveraParams(k_sim=3, d_proj=4, repetitions=5)
    encoder = MuveraEncoder(DIM, params)
    tokens, offsets = ragged(tiny_items(1))
    repetitions_partitions_dproj = 5 * 8 * 4
    assert repetitions_partitions_dproj == encoder.output_dim
    for fde in (encoder.encode_documents(tokens, offsets), encoder.encode_queries(tokens, offsets)):
        assert (3, encoder.output_dim) == fde.shape
        assert np.float32 == fde.dtype
    final_dim = 64
    sketched = MuveraEncoder(DIM, MuveraParams(final_dim=final_dim))
    assert (3, final_dim) == sketched.encode_documents(tokens, offsets).shape


def test_zero_documents_encode_to_an_empty_matrix() -> None:
    encoder = MuveraEncoder(DIM, MuveraParams())
    fde = encoder.encode_documents(np.zeros((0, DIM), np.float32), np.array([0]))
    assert (0, encoder.output_dim) == fde.shape


def test_same_seed_gives_same_encoding_and_another_seed_differs() -> None:
    tokens, offsets = ragged(tiny_items(2))
    first = MuveraEncoder(DIM, MuveraParams(seed=5)).encode_documents(tokens, offsets)
    again = MuveraEncoder(DIM, MuveraParams(seed=5)).encode_documents(tokens, offsets)
    other = MuveraEncoder(DIM, MuveraParams(seed=6)).encode_documents(tokens, offsets)
    assert first.tobytes() == again.tobytes()
    assert not np.allclose(first, other)


def test_config_round_trip_gives_identical_encodings() -> None:
    encoder = MuveraEncoder(DIM, MuveraParams(k_sim=3, d_proj=4, final_dim=50, seed=3))
    config = json.loads(json.dumps(encoder.to_config()))
    restored = MuveraEncoder.from_config(config)
    tokens, offsets = ragged(tiny_items(4))
    assert encoder.params == restored.params
    for encode in ("encode_documents", "encode_queries"):
        before = getattr(encoder, encode)(tokens, offsets)
        after = getattr(restored, encode)(tokens, offsets)
        assert before.tobytes() == after.tobytes()


def test_unknown_config_format_is_refused() -> None:
    config = dict(MuveraEncoder(DIM, MuveraParams()).to_config(), format=99)
    with pytest.raises(IndexFormatError, match="format 99"):
        MuveraEncoder.from_config(config)


def test_fde_inner_product_tracks_chamfer_similarity() -> None:
    """Rank correlation of FDE inner products with exact Chamfer over every (query, doc)
    pair, and per query over the documents. The issue asked for Spearman >= 0.9; on this
    set the default encoder measures 0.75 over all pairs and 0.85 per query, and 4x larger
    encodings (d_proj 64, 40 repetitions) only reach 0.79 / 0.89: averaging the tokens of a
    partition caps the approximation, which is why candidates are always re-ranked."""
    docs, d_offsets, queries, q_offsets = clustered_set(n_docs=200, n_queries=20)
    encoder = MuveraEncoder(docs.shape[1], MuveraParams())
    fde_scores = (
        encoder.encode_queries(queries, q_offsets) @ encoder.encode_documents(docs, d_offsets).T
    )
    every_doc = np.tile(np.arange(200), (20, 1))
    exact = maxsim_pairs(Ragged(queries, q_offsets), Ragged(docs, d_offsets), every_doc)
    overall = spearmanr(fde_scores.ravel(), exact.ravel()).statistic
    per_query = np.mean([spearmanr(fde_scores[q], exact[q]).statistic for q in range(20)])
    assert overall > 0.7  # measured 0.748
    assert per_query > 0.8  # measured 0.847


def test_fde_candidates_reranked_by_chamfer_recall_exact_top10() -> None:
    docs, d_offsets, queries, q_offsets = clustered_set(n_docs=400, n_queries=30, seed=1)
    encoder = MuveraEncoder(docs.shape[1], MuveraParams())
    fde_scores = (
        encoder.encode_queries(queries, q_offsets) @ encoder.encode_documents(docs, d_offsets).T
    )
    candidates = np.argsort(-fde_scores, axis=1)[:, :40]
    query_sets, doc_sets = Ragged(queries, q_offsets), Ragged(docs, d_offsets)
    exact_ids, _ = exact_maxsim(query_sets, doc_sets, 10)
    found_ids, _ = top_of(candidates, maxsim_pairs(query_sets, doc_sets, candidates), 10)
    hits = [len(set(a) & set(b)) for a, b in zip(exact_ids, found_ids, strict=True)]
    recall = sum(hits) / exact_ids.size
    assert recall >= 0.9  # measured 0.99


@pytest.mark.parametrize(
    ("tokens", "offsets", "message"),
    [
        (np.zeros((3, DIM + 1)), [0, 3], "dimension 8"),
        (np.zeros(3), [0, 3], "2-d"),
        (np.zeros((3, DIM)), [1, 3], "start at 0"),
        (np.zeros((3, DIM)), [0, 2, 1, 3], "non-decreasing"),
        (np.zeros((3, DIM)), [0, 2], "token count 3"),
        (np.zeros((3, DIM)), [0, 3, 3], "no tokens"),
        (np.zeros((3, DIM)), [0.0, 3.0], "integer"),
        (np.full((3, DIM), np.nan), [0, 3], "NaN"),
        (np.full((3, DIM), np.inf), [0, 3], "infinite"),
    ],
)
def test_bad_encoder_input_is_rejected(
    tokens: np.ndarray, offsets: list[int], message: str
) -> None:
    encoder = MuveraEncoder(DIM, MuveraParams(k_sim=2, d_proj=4, repetitions=2))
    with pytest.raises(ValueError, match=message):
        encoder.encode_documents(tokens, np.asarray(offsets))
    with pytest.raises(ValueError, match=message):
        encoder.encode_queries(tokens, np.asarray(offsets))


@pytest.mark.parametrize(
    "kwargs",
    [{"k_sim": -1}, {"k_sim": 13}, {"d_proj": -2}, {"repetitions": 0}, {"final_dim": 0}],
)
def test_bad_params_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        MuveraParams(**kwargs)  # type: ignore[arg-type]
