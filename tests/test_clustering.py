"""Clustering, GradSim grouping and typology agreement against references and planted truths."""

import itertools

import numpy as np
import pytest
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import cdist, pdist, squareform

from gradlens.analysis.clustering import cluster_languages, cosine_similarity
from gradlens.analysis.grouping import EXACT_MAX, LanguageGrouping, partition_score, silhouette
from gradlens.analysis.typology import mantel, uriel_distance


def planted(groups: list[int], D=256, noise=0.6, seed=0) -> np.ndarray:
    """``[L, D]`` mean gradients: a shared part, a part per planted group, and noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(groups) + 1, D))
    shared = rng.normal(size=D)
    return np.array([shared + 1.5 * centres[g] + noise * rng.normal(size=D) for g in groups])


def test_distances_match_scipy():
    x = np.random.default_rng(0).normal(size=(7, 50))
    c = cluster_languages(x, list("abcdefg"), "average")
    assert np.allclose(c.distance, cdist(x, x, "cosine"), atol=1e-12)
    assert np.allclose(cosine_similarity(x), 1 - squareform(pdist(x, "cosine")), atol=1e-12)
    z = linkage(pdist(x, "cosine"), "average")
    assert np.allclose(c.linkage, z)
    assert c.cophenetic == pytest.approx(cophenet(z, pdist(x, "cosine"))[0])


def all_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for p in all_partitions(rest):
        for i in range(len(p)):
            yield p[:i] + [[first] + p[i]] + p[i + 1:]
        yield [[first]] + p


@pytest.mark.parametrize("L", [3, 5, 7])
def test_exact_grouping_is_the_best_of_every_partition(L):
    rng = np.random.default_rng(L)
    a = rng.normal(size=(L, L))
    sim = np.clip((a + a.T) / 3, -1, 1)
    np.fill_diagonal(sim, 1.0)
    langs = [f"l{i}" for i in range(L)]
    for g in range(1, L + 1):
        best = max(partition_score(sim, labels_of(p, L)) for p in all_partitions(list(range(L)))
                   if len(p) == g)
        fit = LanguageGrouping(g).fit(sim, langs)
        assert fit.exact_ and fit.score_ == pytest.approx(best)
        assert partition_score(sim, fit.labels_) == pytest.approx(best)


def labels_of(partition, L):
    labels = np.zeros(L, dtype=int)
    for i, group in enumerate(partition):
        labels[group] = i
    return labels


@pytest.mark.parametrize("L", [9, EXACT_MAX, 20])
def test_grouping_recovers_a_planted_partition(L):
    truth = [i % 3 for i in range(L)]
    langs = [f"l{i}" for i in range(L)]
    sim = cosine_similarity(planted(truth, seed=L))
    fit = LanguageGrouping().fit(sim, langs)  # the number of groups is found too
    assert fit.exact_ == (L <= EXACT_MAX)
    assert sorted(map(sorted, fit.groups_)) == sorted(
        sorted(f"l{i}" for i in range(L) if truth[i] == g) for g in range(3))


@pytest.mark.parametrize("seed", range(6))
def test_silhouette_is_scikit_learns(seed):
    """The grouping's own silhouette (vectorised) against scikit-learn's, singletons included."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    L = 9 + seed
    points = rng.normal(size=(L, 3))
    dist = squareform(pdist(points))
    for g in (2, 3, L - 1):
        labels = np.r_[np.arange(g), rng.integers(0, g, L - g)]  # every group used
        assert silhouette(dist, labels) == pytest.approx(
            silhouette_score(dist, labels, metric="precomputed"), abs=1e-12)


def test_grouping_refuses_bad_input():
    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        LanguageGrouping(2).fit(np.eye(2), list("abc"))
    with pytest.raises(ValueError, match="between 1 and 3"):
        LanguageGrouping(4).fit(np.eye(3), list("abc"))
    with pytest.raises(ValueError, match="NaN"):
        LanguageGrouping(2).fit(np.full((3, 3), np.nan), list("abc"))


def test_mantel_against_an_exact_permutation_test():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(6, 2))
    a = squareform(pdist(pts))
    b = squareform(pdist(pts + 0.3 * rng.normal(size=pts.shape)))
    iu = np.triu_indices(6, 1)
    r = np.corrcoef(a[iu], b[iu])[0, 1]
    null = [np.corrcoef(a[iu], b[np.ix_(p, p)][iu])[0, 1]
            for p in map(list, itertools.permutations(range(6)))]
    exact_p = np.mean(np.array(null) >= r - 1e-12)
    m = mantel(a, b, permutations=4999, seed=1)
    assert m.r == pytest.approx(r)
    assert m.p == pytest.approx(exact_p, abs=0.02)
    unrelated = mantel(a, squareform(pdist(rng.normal(size=(6, 2)))), 999)
    assert unrelated.p > 0.05


def test_mantel_claims_agreement_only_beyond_its_noise_null():
    rng = np.random.default_rng(4)
    pts = rng.normal(size=(8, 2))
    a, b = squareform(pdist(pts)), squareform(pdist(pts + 0.1 * rng.normal(size=pts.shape)))
    alone = mantel(a, b, 999)
    assert alone.p < 0.01 and alone.noise_p is None and alone.relabel_p == alone.p
    # a null that makes the very same distances: the agreement is the noise's, not typology's
    same = mantel(a, b, 999, null_a=np.repeat(a[None], 50, 0))
    assert same.relabel_p == alone.p and same.noise_p == 1.0 and same.p == 1.0
    assert same.noise_draws == 50
    # a null of unrelated distances: both reject, and the larger p decides
    other = np.stack([squareform(pdist(rng.normal(size=(8, 2)))) for _ in range(99)])
    beaten = mantel(a, b, 999, null_a=other)
    assert beaten.noise_p < 0.05 and beaten.p == max(beaten.relabel_p, beaten.noise_p)


def test_mantel_holds_where_the_noise_follows_the_family():
    """One family noisier, with a larger loss, and no difference in direction: relabelling
    alone calls the mean similarity's shape typology; with the noise null it does not, and a
    family with a mean of its own is still found (docs/results.md §1f, at more trials)."""
    from gradlens.analysis.calibration import Scenario, mantel_rates

    langs = ["spa", "fra", "ita", "por", "ron", "cat", "deu", "nld", "swe", "dan", "nob", "isl"]
    nuisance = Scenario(12, noise=(1.0, 3.0), scales=(0.5, 2.0), nuisance_by_group=True)
    before = mantel_rates(nuisance, langs, 150, noise_null=False).rejection_rate["genetic"]
    after = mantel_rates(nuisance, langs, 150).rejection_rate["genetic"]
    assert before > 0.18 and after < 0.12, (before, after)
    assert mantel_rates(Scenario(12, effect=0.3), langs, 40).rejection_rate["genetic"] >= 0.8
    # the paired similarity has no noise null, and needs none here
    assert mantel_rates(nuisance, langs, 150, "paired").rejection_rate["genetic"] < 0.1


def test_a_moving_model_s_pace_is_not_typology_when_the_paired_similarity_reads_detrended_rows():
    """Languages with no structure whose gradient scales drift by family while the model
    trains: the paired similarity of the steps calls that agreement with URIEL in nearly every
    unit; of their detrended contrasts (what a moving run's evidence keeps) it does not, and a
    family's own response to each batch is still found (docs/results.md §1h, §1i)."""
    from gradlens.analysis.calibration import Scenario, mantel_rates
    from gradlens.analysis.evidence import (module_evidence, paired_rows, similarity_of,
                                            sketch_similarity)

    langs = ["spa", "fra", "ita", "por", "deu", "nld", "swe", "dan"]
    moving = dict(drift=0.3, scale_drift=(0.5, 2.0), noise=(1.0, 3.0), scales=(0.5, 2.0),
                  nuisance_by_group=True)
    pace = Scenario(8, **moving)
    assert pace.moves and not Scenario(8).moves
    levels = mantel_rates(pace, langs, 40, "paired", moving=False).rejection_rate["genetic"]
    detrended = mantel_rates(pace, langs, 60, "paired").rejection_rate["genetic"]
    assert levels > 0.9 and detrended < 0.15, (levels, detrended)
    # a bent pace (most of the change early) with a strong signal: a cubic trend left 12 % of
    # these units (seed 0) calling typology, the quintic 4 % (docs/results.md §1i)
    bent = Scenario(8, **{**moving, "drift": 0.8, "scale_drift": (0.25, 4.0)}, scale_bend=4.0,
                    snr=10.0)
    assert mantel_rates(bent, langs, 200, "paired").rejection_rate["genetic"] < 0.08
    response = Scenario(8, group_response=1.0, **moving)
    assert mantel_rates(response, langs, 30, "paired").rejection_rate["genetic"] >= 0.8
    # a moving run's evidence keeps the same similarity as its sketches give, not the steps'
    x = np.random.default_rng(0).normal(size=(10, 5, 1, 32))
    e = module_evidence(x, list("abcde"), ["st"], "m", 10, moving=True)
    rows, _ = sketch_similarity(x[:, :, 0], "paired", moving=True)
    steps, _ = sketch_similarity(x[:, :, 0], "paired")
    assert np.allclose(similarity_of([e], "paired"), rows)
    assert not np.allclose(rows, steps)
    assert paired_rows(x, True).shape == (4, 5, 1, 32)


def test_uriel_distances_know_the_families():
    langs = ["spa", "ita", "por", "deu", "nld", "fin", "hun", "nob", "swe"]
    g = uriel_distance(langs, "genetic")
    assert np.allclose(g, g.T) and np.allclose(np.diag(g), 0)
    i = {x: k for k, x in enumerate(langs)}
    assert g[i["spa"], i["por"]] < g[i["spa"], i["deu"]] < g[i["spa"], i["fin"]]
    assert g[i["nob"], i["swe"]] < g[i["nob"], i["spa"]]  # Bokmål through its macrolanguage
    p = uriel_distance(langs, "phonological")
    assert p.shape == (9, 9) and np.isfinite(p).all()
    with pytest.raises(ValueError, match="xqz"):
        uriel_distance(["spa", "xqz"], "genetic")
    with pytest.raises(ValueError, match="kind must be"):
        uriel_distance(langs, "syntactic")


def test_paired_steps_find_languages_that_respond_alike_to_the_same_items():
    """Every language wants the same mean update, but two groups respond differently to the
    items of a step (the same numbers in every language): the mean similarity cannot tell the
    groups apart, the paired-step similarity recovers them with full bootstrap support."""
    from gradlens.analysis.clustering import cluster_similarity
    from gradlens.analysis.divergence import (bootstrap_weights, corrected_gram,
                                              corrected_similarity,
                                              paired_gram)

    rng = np.random.default_rng(0)
    S, D = 30, 128
    groups = np.array([0, 0, 0, 1, 1, 1])
    items = rng.normal(size=(S, 8))                        # what each step's batch holds
    response = rng.normal(size=(2, 8, D))                  # how each group reacts to it
    mean = 3 * rng.normal(size=D)
    x = mean + np.einsum("si,lid->sld", items, response[groups]) + rng.normal(size=(S, 6, D))
    langs = list("abcdef")
    by_mean = corrected_similarity(corrected_gram(x))
    assert by_mean[0, 5] > 0.9                              # one update for everyone
    paired = corrected_similarity(paired_gram(x))
    assert paired[0, 1] > 0.5 > abs(paired[0, 5])
    tree = cluster_similarity(paired, langs, "average",
                              corrected_similarity(paired_gram(x, bootstrap_weights(S))))
    clades = [set(c) for c in tree.supported_clades()]
    assert set("abc") in clades and set("def") in clades
    assert all(c <= set("abc") or c <= set("def") for c in clades)  # none mixes the groups
    # one weight per step is the plain covariance
    assert np.allclose(paired_gram(x, np.ones((1, S)))[0], paired_gram(x))
    centred = x - x.mean(0)
    assert np.allclose(paired_gram(x), np.einsum("sad,sbd->ab", centred, centred) / (S - 1))


@pytest.mark.parametrize("kind", ["mean", "paired"])
def test_a_layers_similarity_summed_from_its_modules_is_that_of_their_concatenation(kind):
    """The dendrogram page sums a layer's similarity from its modules' evidence instead of
    reading the layer's sketches: the same point estimate and the same bootstrap replicates."""
    from gradlens.analysis.evidence import (boot_similarities, module_evidence, similarity_of,
                                            sketch_similarity)

    rng = np.random.default_rng(1)
    S, L, k = 12, 5, 64
    langs = list("abcde")
    shared = rng.normal(size=(S, 1, 1, k))                 # what a step's items do to everyone
    parts = [rng.normal(size=(L, 2, k)) + shared + rng.normal(size=(S, L, 2, k)) for _ in range(3)]
    evidence = [module_evidence(x, langs, ["st", "asr"], f"m{i}", k)
                for i, x in enumerate(parts)]
    whole, whole_boot = sketch_similarity(np.concatenate(parts, -1)[:, :, 0], kind)
    assert np.allclose(similarity_of(evidence, kind), whole, atol=1e-9)
    assert np.allclose(boot_similarities(evidence, kind), whole_boot, atol=1e-5)  # kept as float32
    assert not np.allclose(similarity_of(evidence, kind), similarity_of(evidence[:1], kind))


def test_agreement_with_typology_is_one_type_with_its_reason_when_unavailable():
    from gradlens.analysis.typology import Agreement, agreement_of

    few = agreement_of(np.eye(2), ["spa", "deu"])
    assert few == Agreement({}, "needs at least 3 languages")
    unknown = agreement_of(np.eye(3), ["spa", "deu", "xxx"], permutations=9)
    assert not unknown.tests and "xxx" in unknown.unavailable
    known = agreement_of(np.eye(3), ["spa", "ita", "deu"], permutations=9)
    assert known.unavailable is None and set(known.tests) == {"genetic", "phonological"}


def test_bootstrap_support_finds_a_planted_group_and_no_clade_where_none_was_planted():
    """All languages sharing one mean gradient (unequal noise, corrected similarities often
    clipped at 1, so distances tie): no clade may be supported, whatever the languages' order.
    With tied replicates resolved by position, the first two languages were "supported" in a
    third of such units. A planted group is found."""
    from gradlens.analysis.calibration import Scenario, clade_rates

    assert clade_rates(Scenario(8, snr=10.0), trials=40, seed=1).false_clade_rate <= 0.05
    assert clade_rates(Scenario(4, snr=3.0), trials=40, seed=2).false_clade_rate <= 0.05
    planted = clade_rates(Scenario(8, snr=10.0, effect=0.3), trials=20, seed=3)
    assert planted.recovered >= 0.9 and planted.false_clade_rate <= 0.1


def test_paired_clades_come_from_a_shared_response_not_from_quiet_languages():
    """Languages that respond to each batch alike and differ only in their own noise: the raw
    paired correlation ranks pairs by how quiet they are and "supported" a clade of the quiet
    ones in every simulated unit; corrected for each language's own noise it supports none, and
    still finds a group planted in the response. Below 5 languages its clades are not tested."""
    from gradlens.analysis.calibration import Scenario, clade_rates, simulate
    from gradlens.analysis.evidence import sketch_similarity

    assert clade_rates(Scenario(8), trials=30, seed=1, kind="paired").false_clade_rate <= 0.05
    found = clade_rates(Scenario(8, group_response=1.0), trials=20, seed=2, kind="paired")
    assert found.recovered >= 0.9 and found.false_clade_rate <= 0.1
    x, _ = simulate(Scenario(4), np.random.default_rng(0))
    sim, replicates = sketch_similarity(x[:, :, 0], "paired")
    assert replicates is None and sim.shape == (4, 4)


def test_one_factor_communalities_are_recovered_and_the_corrected_correlations_are_one():
    """Correlations made by one factor, ``r_ab = l_a l_b``: the fit returns ``h = l^2`` (also
    batched), and the corrected similarity is 1 for every pair; a second factor shared by a
    group keeps its pairs at 1 and pulls the others below."""
    from gradlens.analysis.divergence import common_response_similarity, one_factor_communality

    loadings = np.array([0.9, 0.3, 0.6, 0.45, 0.75, 0.2])
    cov = np.outer(loadings, loadings)
    np.fill_diagonal(cov, 1.0)
    assert np.allclose(one_factor_communality(cov), loadings ** 2, atol=1e-5)
    assert np.allclose(one_factor_communality(np.stack([cov, cov]))[1], loadings ** 2, atol=1e-5)
    assert np.allclose(common_response_similarity(cov * 4.0), 1.0, atol=1e-4)
    group = np.zeros(6)
    group[3:] = 0.5
    two = cov + np.outer(group, group)
    np.fill_diagonal(two, 1.0)
    rho = common_response_similarity(two)
    assert rho[3, 4] > 0.99 and rho[0, 3] < 0.95 and rho[0, 1] > rho[0, 3]
    # a language that shares nothing: 0 with every other, not its noise blown up
    silent = np.pad(cov, ((0, 1), (0, 1)))
    silent[-1, :-1] = silent[:-1, -1] = [0.001, -0.002, 0.0, 0.001, -0.001, 0.002]
    silent[-1, -1] = 1.0
    rho = common_response_similarity(silent)
    assert np.all(rho[-1, :-1] == 0) and np.allclose(rho[:-1, :-1], 1.0, atol=1e-3)


def test_the_tree_verdict_does_not_read_structure_into_a_high_silhouette():
    """Languages with no groups: the best grouping's silhouette is high all the same (the
    silhouette is scale-free, and the best of many groupings is picked), so the verdict states
    that no clade is supported and that the silhouette is no test, not "clear structure"."""
    from gradlens.analysis.calibration import Scenario, clade_rates, simulate
    from gradlens.analysis.clustering import cluster_similarity
    from gradlens.analysis.evidence import sketch_similarity
    from gradlens.analysis.typology import Agreement
    from gradlens.report import tree_verdict

    assert clade_rates(Scenario(8), trials=20, seed=4).median_silhouette > 0.5
    x, _ = simulate(Scenario(8), np.random.default_rng(4))
    langs = [str(i) for i in range(8)]
    similarity, replicates = sketch_similarity(x[:, :, 0], "mean")
    tree = cluster_similarity(similarity, langs, "average", replicates)
    best = LanguageGrouping().fit(tree.similarity, langs)
    verdict = tree_verdict(tree, best, Agreement({}, "test"))
    assert best.silhouettes_[len(best.groups_)] > 0.5
    assert "No grouping of these languages is supported" in verdict
    assert "clear structure" not in verdict and "is no test of a grouping" in verdict
