"""Exact linear-chain inference against brute-force enumeration over all K^L labellings."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from structebm.structured import linear_chain
from structebm.structured._forward_backward import scaled_forward
from structebm.structured._potentials import one_intra_op_thread, prepare
from structebm.structured.constraints import AllowedTransitions, check_allowed, chunk_allowed_transitions

NEG_INF = float("-inf")


def random_problem(seed, batch, length, num_tags, constrained, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    em = scale * torch.randn(batch, length, num_tags, generator=g, dtype=torch.float64)
    tr = torch.randn(num_tags, num_tags, generator=g, dtype=torch.float64)
    start = torch.randn(num_tags, generator=g, dtype=torch.float64)
    end = torch.randn(num_tags, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length
    mask = torch.arange(length)[None, :] < lengths[:, None]
    allowed = None
    if constrained:
        allowed = AllowedTransitions(
            torch.rand(num_tags, num_tags, generator=g) < 0.7,
            torch.rand(num_tags, generator=g) < 0.7,
            torch.rand(num_tags, generator=g) < 0.7,
        )
        allowed.start[0] = allowed.end[0] = True  # a length-1 labelling is always allowed
    return em, tr, start, end, mask, allowed


def brute_force(em, tr, start, end, length, allowed):
    """All labellings of one sequence (``em`` ``[T, K]``) and their scores, by plain loops."""
    num_tags = em.shape[1]
    labellings = list(itertools.product(range(num_tags), repeat=length))
    scores = []
    for y in labellings:
        score = float(start[y[0]] + end[y[-1]]) + sum(float(em[t, y[t]]) for t in range(length))
        score += sum(float(tr[y[t - 1], y[t]]) for t in range(1, length))
        if allowed is not None:
            ok = allowed.start[y[0]] and allowed.end[y[-1]] and all(allowed.transitions[y[t - 1], y[t]] for t in range(1, length))
            score = score if ok else NEG_INF
        scores.append(score)
    return labellings, torch.tensor(scores, dtype=torch.float64)


def is_allowed(y, allowed):
    if allowed is None:
        return True
    return bool(allowed.start[y[0]] and allowed.end[y[-1]] and all(allowed.transitions[a, b] for a, b in zip(y, y[1:])))


problems = st.tuples(
    st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.booleans()
)


@settings(max_examples=40, deadline=None)
@given(problems)
def test_log_partition_marginals_and_gradients_match_enumeration(problem):
    seed, batch, length, num_tags, constrained = problem
    em, tr, start, end, mask, allowed = random_problem(seed, batch, length, num_tags, constrained)
    leaves = [p.clone().requires_grad_(True) for p in (em, tr, start, end)]
    log_z = linear_chain.log_partition(*leaves, mask, allowed)
    node, edge = linear_chain.marginals(em, tr, start, end, mask, allowed, edges=True)
    for b in range(batch):
        n = int(mask[b].sum())
        labellings, scores = brute_force(em[b], tr, start, end, n, allowed)
        reference = torch.logsumexp(scores, 0)
        assert torch.isclose(log_z[b], reference, atol=1e-9) or (reference == NEG_INF and log_z[b] == NEG_INF)
        if reference == NEG_INF:
            continue
        probs = (scores - reference).exp()
        expected_node = torch.zeros(length, num_tags, dtype=torch.float64)
        expected_edge = torch.zeros(max(length - 1, 0), num_tags, num_tags, dtype=torch.float64)
        for y, p in zip(labellings, probs):
            for t in range(n):
                expected_node[t, y[t]] += p
            for t in range(1, n):
                expected_edge[t - 1, y[t - 1], y[t]] += p
        torch.testing.assert_close(node[b], expected_node, atol=1e-9, rtol=0)
        torch.testing.assert_close(edge[b], expected_edge, atol=1e-9, rtol=0)
    finite = torch.isfinite(log_z)
    grads = torch.autograd.grad(log_z[finite].sum(), leaves)
    torch.testing.assert_close(grads[0][finite], node[finite], atol=1e-9, rtol=0)
    torch.testing.assert_close(grads[1], edge[finite].sum((0, 1)), atol=1e-9, rtol=0)


@settings(max_examples=40, deadline=None)
@given(problems, st.integers(1, 6))
def test_viterbi_and_topk_match_enumeration(problem, k):
    seed, batch, length, num_tags, constrained = problem
    em, tr, start, end, mask, allowed = random_problem(seed, batch, length, num_tags, constrained)
    best_scores, best_paths = linear_chain.viterbi(em, tr, start, end, mask, allowed)
    top_scores, top_paths = linear_chain.topk(em, tr, start, end, k, mask, allowed)
    assert top_paths.shape == (k, batch, length)
    for b in range(batch):
        n = int(mask[b].sum())
        _, scores = brute_force(em[b], tr, start, end, n, allowed)
        ranked = torch.sort(scores, descending=True).values
        expected = torch.full((k,), NEG_INF, dtype=torch.float64)
        expected[: min(k, len(ranked))] = ranked[:k]
        torch.testing.assert_close(top_scores[:, b], expected, atol=1e-9, rtol=0)
        assert torch.isclose(best_scores[b], ranked[0], atol=1e-9) or best_scores[b] == ranked[0] == NEG_INF
        assert (best_paths[b, n:] == 0).all() and (top_paths[:, b, n:] == 0).all()
        if ranked[0] == NEG_INF:
            continue
        assert is_allowed(best_paths[b, :n].tolist(), allowed)
        score_of = linear_chain.sequence_score(em[b : b + 1], tr, start, end, best_paths[b : b + 1], mask[b : b + 1], allowed)
        assert torch.isclose(score_of[0], best_scores[b], atol=1e-9)
        finite = [r for r in range(k) if top_scores[r, b] > NEG_INF]
        seen = {tuple(top_paths[r, b, :n].tolist()) for r in finite}
        assert len(seen) == len(finite), "top-k labellings must be distinct"
        for r in finite:
            assert is_allowed(top_paths[r, b, :n].tolist(), allowed)
            rescored = linear_chain.sequence_score(em[b : b + 1], tr, start, end, top_paths[r, b : b + 1], mask[b : b + 1], allowed)
            assert torch.isclose(rescored[0], top_scores[r, b], atol=1e-9)


@pytest.mark.parametrize("constrained", [False, True])
def test_sample_frequencies_match_exact_distribution(constrained):
    # n draws per condition; Pearson's statistic over the S labellings is chi^2(S' - 1) under
    # the null (S' = cells with positive probability). A 1e-4 significance level means a
    # correct sampler fails this with probability 1e-4 per condition, while a sampler off
    # by a TV distance of 0.02 gives an expected statistic of roughly n * 4 * 0.02^2 / (S'
    # mean p) >> the critical value at n = 20000.
    n = 20_000
    em, tr, start, end, mask, allowed = random_problem(3, 2, 3, 3, constrained)
    draws = linear_chain.sample(em, tr, start, end, n, mask, allowed, torch.Generator().manual_seed(0))
    assert draws.shape == (n, 2, 3)
    for b in range(2):
        length = int(mask[b].sum())
        labellings, scores = brute_force(em[b], tr, start, end, length, allowed)
        probs = (scores - torch.logsumexp(scores, 0)).exp()
        index = {y: i for i, y in enumerate(labellings)}
        assert (draws[:, b, length:] == 0).all()
        counts = torch.zeros(len(labellings))
        for y in map(tuple, draws[:, b, :length].tolist()):
            counts[index[y]] += 1
        assert counts[probs == 0].sum() == 0, "a forbidden labelling was sampled"
        support = probs > 0
        statistic, p_value = stats.chisquare(counts[support].numpy(), (n * probs[support]).numpy())
        assert p_value > 1e-4, f"chi-square p-value {p_value:.2e} (statistic {statistic:.1f})"


def test_sampling_is_reproducible_with_a_generator():
    em, tr, start, end, mask, allowed = random_problem(5, 3, 4, 3, True)
    first = linear_chain.sample(em, tr, start, end, 50, mask, allowed, torch.Generator().manual_seed(7))
    second = linear_chain.sample(em, tr, start, end, 50, mask, allowed, torch.Generator().manual_seed(7))
    assert torch.equal(first, second)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 4), st.booleans())
def test_padding_never_changes_results(seed, length, extra, constrained):
    em, tr, start, end, _, allowed = random_problem(seed, 1, length, 3, constrained)
    garbage = 50 * torch.randn(1, extra, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    padded = torch.cat([em, garbage], dim=1)
    mask = torch.arange(length + extra)[None, :] < length
    assert torch.equal(linear_chain.log_partition(em, tr, start, end, None, allowed), linear_chain.log_partition(padded, tr, start, end, mask, allowed))
    node = linear_chain.marginals(padded, tr, start, end, mask, allowed)
    torch.testing.assert_close(node[:, :length], linear_chain.marginals(em, tr, start, end, None, allowed), atol=1e-12, rtol=0)
    assert (node[:, length:] == 0).all()
    score, path = linear_chain.viterbi(padded, tr, start, end, mask, allowed)
    score_plain, path_plain = linear_chain.viterbi(em, tr, start, end, None, allowed)
    assert torch.equal(score, score_plain) and torch.equal(path[:, :length], path_plain)
    top, _ = linear_chain.topk(padded, tr, start, end, 3, mask, allowed)
    assert torch.equal(top, linear_chain.topk(em, tr, start, end, 3, None, allowed)[0])
    gold = torch.randint(0, 3, (1, length + extra), generator=torch.Generator().manual_seed(seed))
    gold[:, length:] = -1  # labels past the length are never read
    assert torch.equal(
        linear_chain.sequence_score(padded, tr, start, end, gold, mask, allowed),
        linear_chain.sequence_score(em, tr, start, end, gold[:, :length], None, allowed),
    )


def test_float32_log_partition_is_accurate_with_large_emissions():
    em, tr, start, end, _, _ = random_problem(11, 8, 120, 12, False, scale=40.0)
    reference = linear_chain.log_partition(em, tr, start, end)  # float64
    single = linear_chain.log_partition(em.float(), tr.float(), start.float(), end.float())
    # |log Z| ~ 1e4 here; one float32 rounding of the result alone is up to 1e4 * 2^-24 ≈ 6e-4.
    relative = ((single.double() - reference).abs() / reference.abs()).max()
    assert relative < 1e-6


def test_extreme_potentials_fall_back_to_log_space_exactly():
    # Emissions 1000 apart with a transition mask that forces the path through the
    # unlikely tags: scaled arithmetic underflows, so these rows must be redone in log space.
    em = torch.tensor([[[0.0, -1000.0], [-1000.0, 0.0], [0.0, -1000.0]]])
    allowed = AllowedTransitions(torch.tensor([[False, True], [True, False]]), torch.tensor([False, True]), torch.tensor([True, True]))
    zeros_k, zeros_kk = torch.zeros(2), torch.zeros(2, 2)
    leaves = [em.clone().requires_grad_(True), zeros_kk.clone().requires_grad_(True)]
    log_z = linear_chain.log_partition(leaves[0], leaves[1], zeros_k, zeros_k, None, allowed)
    assert torch.isclose(log_z, torch.tensor([-3000.0])).all()  # the only allowed labelling is 1, 0, 1
    grad_em, grad_tr = torch.autograd.grad(log_z.sum(), leaves)
    torch.testing.assert_close(grad_em[0], torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(grad_tr, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_agrees_with_pytorch_crf_in_float64():
    torchcrf = pytest.importorskip("torchcrf")
    em, tr, start, end, mask, _ = random_problem(2, 6, 15, 5, False)
    crf = torchcrf.CRF(5, batch_first=True).double()
    with torch.no_grad():
        crf.transitions.copy_(tr), crf.start_transitions.copy_(start), crf.end_transitions.copy_(end)
    theirs = crf._compute_normalizer(em.transpose(0, 1), mask.t())
    torch.testing.assert_close(linear_chain.log_partition(em, tr, start, end, mask), theirs, atol=1e-10, rtol=0)
    paths = linear_chain.viterbi(em, tr, start, end, mask)[1]
    for b, decoded in enumerate(crf.decode(em, mask)):
        assert paths[b, : len(decoded)].tolist() == decoded


def test_bad_inputs_give_clear_errors():
    em, tr, start, end, mask, _ = random_problem(0, 2, 3, 2, False)
    with pytest.raises(ValueError, match="emissions is NaN"):
        linear_chain.log_partition(em.clone().index_put_((torch.tensor([1]), torch.tensor([2]), torch.tensor([0])), torch.tensor(float("nan"), dtype=torch.float64)), tr, start, end)
    with pytest.raises(ValueError, match="left-aligned"):
        linear_chain.viterbi(em, tr, start, end, torch.tensor([[True, False, True], [True, True, True]]))
    with pytest.raises(ValueError, match="transitions must have shape"):
        linear_chain.log_partition(em, tr[:1], start, end)
    with pytest.raises(ValueError, match="emissions must be a float tensor"):
        linear_chain.marginals(em[0], tr, start, end)
    with pytest.raises(ValueError, match="outside"):
        linear_chain.sequence_score(em, tr, start, end, torch.full((2, 3), 5))
    with pytest.raises(ValueError, match="k must be"):
        linear_chain.topk(em, tr, start, end, 0)


def test_chunk_schemes():
    bio = chunk_allowed_transitions(["O", "B-NP", "I-NP", "B-VP", "I-VP"])
    assert bio.start.tolist() == [True, True, False, True, False]
    assert bio.end.all()
    assert bio.transitions[:, 2].tolist() == [False, True, True, False, False]  # I-NP after B-NP / I-NP only
    assert bio.transitions[:, [0, 1, 3]].all()
    bioes = chunk_allowed_transitions(["O", "B-X", "I-X", "E-X", "S-X"], "BIOES")
    assert bioes.start.tolist() == [True, True, False, False, True]
    assert bioes.end.tolist() == [True, False, False, True, True]
    assert bioes.transitions[1].tolist() == [False, False, True, True, False]  # after B-X: I-X or E-X
    assert bioes.transitions[3].tolist() == [True, True, False, False, True]  # after E-X: O, B, S
    check_allowed(bioes, 5, "test")
    with pytest.raises(ValueError, match="not a BIO tag"):
        chunk_allowed_transitions(["O", "E-X"])
    # Viterbi with BIO constraints never outputs I-X after O even when emissions push for it.
    em = torch.tensor([[[5.0, 0, 0, 0, 0], [0, 0, 9.0, 0, 0], [0, 0, 9.0, 0, 0]]])
    path = linear_chain.viterbi(em, torch.zeros(5, 5), torch.zeros(5), torch.zeros(5), allowed=bio)[1][0].tolist()
    assert is_allowed(path, bio) and path[1:] == [2, 2]


def test_float32_messages_that_underflow_between_normalisations_fall_back_to_log_space():
    # Two tags that must alternate, with emissions favouring tag 0 by 30 nats at every step:
    # each of the two allowed labellings pays 30 nats every other step, so the forward messages
    # shrink by about e^-15 per step and in float32 reach zero within one block of unnormalised
    # steps. The row must be flagged and redone in log space (float32 log-space arithmetic at
    # |log Z| ≈ 600 is good to about 1e-4); the result must match float64's.
    length = 40
    em = torch.zeros(2, length, 2, dtype=torch.float64)
    em[0, :, 1] = -30.0
    em[1] = torch.randn(length, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    allowed = AllowedTransitions(torch.tensor([[False, True], [True, False]]), torch.tensor([True, True]), torch.tensor([True, True]))
    tr, start, end = torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    reference = linear_chain.log_partition(em, tr, start, end, None, allowed)
    leaves = [em.float().requires_grad_(True), tr.float().requires_grad_(True)]
    single = linear_chain.log_partition(leaves[0], leaves[1], start.float(), end.float(), None, allowed)
    torch.testing.assert_close(single.double(), reference, atol=1e-3, rtol=1e-6)
    chain = prepare(leaves[0].detach(), leaves[1].detach(), start.float(), end.float(), None, allowed, "test")
    assert scaled_forward(chain).log_space_rows.tolist() == [True, False]
    grad_em, _ = torch.autograd.grad(single.sum(), leaves)
    torch.testing.assert_close(grad_em.double(), linear_chain.marginals(em, tr, start, end, None, allowed), atol=1e-4, rtol=0)
    # Sampling takes the same fallback: row 0 has two allowed labellings of equal score, tags
    # 0, 1, 0, ... and 1, 0, 1, ...; 4000 draws put 0.5 ± 0.008 (one standard error) on each.
    draws = linear_chain.sample(em.float(), tr.float(), start.float(), end.float(), 4000, None, allowed, torch.Generator().manual_seed(0))
    first = draws[:, 0, 0]
    alternating = torch.arange(length) % 2
    assert torch.equal(draws[:, 0], (first[:, None] + alternating[None, :]) % 2)
    assert abs(float(first.float().mean()) - 0.5) < 5 * 0.5 / 4000**0.5


def test_recursions_run_on_one_thread_and_restore_the_setting():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_intra_op_thread(torch.device("cpu")):
            assert torch.get_num_threads() == 1
            with one_intra_op_thread(torch.device("cpu")):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1  # the inner exit keeps the outer one's setting
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with one_intra_op_thread(torch.device("cpu")):
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
        em, tr, start, end, mask, _ = random_problem(0, 2, 4, 3, False)
        leaves = [em.clone().requires_grad_(True), tr]
        linear_chain.log_partition(leaves[0], tr, start, end, mask).sum().backward()
        linear_chain.viterbi(em, tr, start, end, mask)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("constrained", [False, True])
def test_topk_over_many_tags_matches_enumeration(constrained):
    # K = 7 > 2k: each step keeps only the k predecessors with the best rank-0 candidates.
    em, tr, start, end, mask, allowed = random_problem(4, 3, 3, 7, constrained)
    top_scores, top_paths = linear_chain.topk(em, tr, start, end, 3, mask, allowed)
    for b in range(3):
        n = int(mask[b].sum())
        _, scores = brute_force(em[b], tr, start, end, n, allowed)
        ranked = torch.sort(scores, descending=True).values[:3]
        torch.testing.assert_close(top_scores[: len(ranked), b], ranked, atol=1e-9, rtol=0)
        for r in range(len(ranked)):
            if top_scores[r, b] > NEG_INF:
                rescored = linear_chain.sequence_score(em[b : b + 1], tr, start, end, top_paths[r, b : b + 1], mask[b : b + 1], allowed)
                assert torch.isclose(rescored[0], top_scores[r, b], atol=1e-9)
        assert len({tuple(top_paths[r, b, :n].tolist()) for r in range(len(ranked)) if top_scores[r, b] > NEG_INF}) == sum(
            1 for r in range(len(ranked)) if top_scores[r, b] > NEG_INF
        )
