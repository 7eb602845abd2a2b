"""Agreement of gradient distances with typology: URIEL distances (lang2vec) and a Mantel test.

URIEL's typological vectors come from ``lang2vec`` (shipped in its wheel, read offline). The
distances are cosine distances between feature vectors, as URIEL defines them:

- ``genetic``: the ``fam`` vectors (membership in each of Glottolog's ~3,700 families and
  sub-families), so languages sharing deeper sub-families are closer; where URIEL records the
  family only under the macrolanguage (Bokmål ``nob`` under ``nor``) that vector stands in, and a
  language with no family at all is at distance 1 from every other;
- ``phonological``: the ``phonology_knn`` vectors (WALS/Ethnologue phonology features, gaps
  filled by URIEL's k-nearest-neighbour prediction, so every language has a full vector).

The Mantel test correlates the upper triangles of two distance matrices (Pearson) and gets its
p-value by permuting the languages of one matrix (rows and columns together). For the mean
similarity it must also beat a second null: the same similarity on data in which the languages
share one direction and keep their own noise and scales. A language's signal-to-noise ratio
shapes its estimated similarities, and where that ratio follows the family, relabelling alone
calls the shape typology (19-33 % false positives in simulation, docs/results.md §1f).

    python -c "from gradlens.analysis.typology import uriel_distance; \\
               print(uriel_distance(['spa', 'ita', 'deu'], 'genetic'))"
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gradlens.errors import ConfigError, NotEnoughData
from gradlens.languages import LANGUAGES
from gradlens.paths import cache_dir

FEATURE_SETS = {"genetic": "fam", "phonological": "phonology_knn"}
# URIEL files some languages' family under their macrolanguage only; used where a vector is empty
MACROLANGUAGE = {"nob": "nor", "nno": "nor"}


@lru_cache(maxsize=8)
def _features(languages: tuple[str, ...], feature_set: str) -> dict[str, list]:
    """URIEL vectors of ``languages``; kept on disk too, since lang2vec takes seconds per call."""
    key = hashlib.sha256(f"{feature_set}:{' '.join(languages)}".encode()).hexdigest()[:16]
    path = cache_dir() / "uriel" / f"{feature_set}-{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    feats = {lang: [v if v == "--" else float(v) for v in vec]
             for lang, vec in _lang2vec(languages, feature_set).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(feats), encoding="utf-8")
    tmp.replace(path)
    return feats


def _lang2vec(languages: tuple[str, ...], feature_set: str) -> dict[str, list]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lang2vec imports the deprecated pkg_resources
        import lang2vec.lang2vec as l2v

        try:
            return l2v.get_features(list(languages), feature_set)
        except Exception as exc:  # lang2vec raises a bare Exception naming the language
            first = str(exc).split(". ")[0].replace("Note: ", "")
            raise NotEnoughData(f"URIEL (lang2vec) {feature_set}: {first}") from None


def uriel_distance(languages: list[str], kind: str = "genetic") -> np.ndarray:
    """``[L, L]`` URIEL cosine distance of ``kind`` (``genetic`` or ``phonological``)."""
    if kind not in FEATURE_SETS:
        raise ConfigError(f"kind must be one of {sorted(FEATURE_SETS)}, got {kind!r}")
    return _uriel_distance(tuple(languages), kind).copy()


@lru_cache(maxsize=16)
def _uriel_distance(languages: tuple[str, ...], kind: str) -> np.ndarray:
    """Built once per language list: the genetic vectors are thousands of features long."""
    # one lang2vec call per feature set covers the built-in languages too (each call takes seconds)
    wanted = set(languages) | {MACROLANGUAGE[x] for x in languages if x in MACROLANGUAGE}
    asked = tuple(sorted(wanted | set(LANGUAGES) | set(MACROLANGUAGE.values())))
    try:
        feats = _features(asked, FEATURE_SETS[kind])
    except ValueError:
        feats = _features(tuple(sorted(wanted)), FEATURE_SETS[kind])
    rows = []
    for lang in languages:
        vec = feats[lang]
        if lang in MACROLANGUAGE and not any(v not in ("--", 0, 0.0) for v in vec):
            vec = feats[MACROLANGUAGE[lang]]
        if any(v == "--" for v in vec):
            raise NotEnoughData(f"URIEL's {FEATURE_SETS[kind]} vector of {lang!r} has gaps")
        rows.append(np.asarray(vec, dtype=np.float64))
    x = np.array(rows)
    norms = np.linalg.norm(x, axis=1)
    unit = x / np.where(norms > 0, norms, 1.0)[:, None]
    # a language with an empty vector (no family recorded) shares nothing: distance 1
    dist = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    dist[norms == 0, :] = 1.0
    dist[:, norms == 0] = 1.0
    np.fill_diagonal(dist, 0.0)
    return dist


@dataclass(frozen=True)
class Mantel:
    """Pearson ``r`` between two distance matrices' upper triangles, and its one-sided p.

    ``relabel_p``: the share of ``permutations`` random relabellings whose correlation is at
    least ``r`` (the languages' labels are exchangeable under the null). ``noise_p``: the share
    of ``noise_draws`` null distance matrices (the languages share one direction and keep their
    own noise and scales; ``None`` when none were given) whose correlation is at least ``r``:
    a distance estimated from noisy gradients is shaped by each language's signal-to-noise
    ratio, and where that follows the family, relabelling alone takes the shape for typology
    (docs/results.md §1f). ``p`` is the larger: agreement is claimed only when both nulls are
    rejected."""

    r: float
    p: float
    permutations: int
    relabel_p: float | None = None
    noise_p: float | None = None
    noise_draws: int = 0


def mantel(a: np.ndarray, b: np.ndarray, permutations: int = 999, seed: int = 0,
           null_a: np.ndarray | None = None) -> Mantel:
    """Mantel test of ``[L, L]`` distance matrices ``a`` and ``b`` (L >= 3); with ``null_a``
    ``[B, L, L]`` (``a`` as its null makes it), the noise null too (``Mantel``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"Mantel needs two square matrices of one shape, got {a.shape} and {b.shape}")
    L = a.shape[0]
    if L < 3:
        raise NotEnoughData(f"Mantel needs at least 3 languages, got {L}")
    iu = np.triu_indices(L, 1)
    x = a[iu] - a[iu].mean()
    y = b[iu] - b[iu].mean()
    if not x.any() or not y.any():
        return Mantel(float("nan"), float("nan"), 0)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    r = float(x @ y)
    null = _relabelled(np.ascontiguousarray(b).tobytes(), L, permutations, seed) @ x
    relabel_p = (1 + int((null >= r - 1e-12).sum())) / (permutations + 1)
    if null_a is None:
        return Mantel(r, relabel_p, permutations, relabel_p)
    xs = np.asarray(null_a, dtype=np.float64)[:, iu[0], iu[1]]
    xs = xs - xs.mean(-1, keepdims=True)
    norms = np.linalg.norm(xs, axis=-1)
    rs = np.where(norms > 0, xs @ y / np.where(norms > 0, norms, 1.0), 0.0)
    noise_p = (1 + int((rs >= r - 1e-12).sum())) / (len(rs) + 1)
    return Mantel(r, max(relabel_p, noise_p), permutations, relabel_p, noise_p, len(rs))


@lru_cache(maxsize=16)
def _relabelled(b: bytes, L: int, permutations: int, seed: int) -> np.ndarray:
    """``[P, pairs]``: the upper triangle of the ``[L, L]`` matrix ``b`` under ``P`` seeded
    relabellings, centred and of unit norm. It depends on ``b`` alone, so every unit of a run
    tested against one URIEL distance shares it (a dendrogram page's Mantel test is then one
    matrix-vector product)."""
    b = np.frombuffer(b, dtype=np.float64).reshape(L, L)
    iu = np.triu_indices(L, 1)
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(L) for _ in range(permutations)])
    y = b[perms[:, iu[0]], perms[:, iu[1]]]                          # [P, pairs], gathered directly
    y = y - y.mean(-1, keepdims=True)
    return y / np.linalg.norm(y, axis=-1, keepdims=True)


def family_distance(languages: list[str]) -> np.ndarray:
    """``[L, L]``: 0 between languages of one family branch (``gradlens.languages``: Romance,
    Germanic, Slavic, ...), 1 otherwise; a language outside the built-in set is its own."""
    fams = [LANGUAGES[x].family if x in LANGUAGES else f"?{x}" for x in languages]
    return np.array([[0.0 if a == b else 1.0 for b in fams] for a in fams])


def typology_agreement(gradient_distance: np.ndarray, languages: list[str],
                       permutations: int = 999, seed: int = 0,
                       null_distances: np.ndarray | None = None) -> dict[str, Mantel]:
    """Mantel test of ``gradient_distance`` ``[L, L]`` against each URIEL distance kind (with
    its noise null where ``null_distances`` ``[B, L, L]`` are given)."""
    return {kind: mantel(gradient_distance, uriel_distance(languages, kind), permutations, seed,
                         null_distances)
            for kind in FEATURE_SETS}


@dataclass(frozen=True)
class Agreement:
    """Mantel tests of a gradient distance against each URIEL distance kind (``tests``), or,
    with none, why they cannot be had (``unavailable``: too few languages, one URIEL lacks)."""

    tests: dict[str, Mantel]
    unavailable: str | None = None


def agreement_of(similarity: np.ndarray, languages: list[str], permutations: int = 999,
                 seed: int = 0, null: np.ndarray | None = None) -> Agreement:
    """URIEL agreement of the distance ``1 - similarity`` ``[L, L]``; ``null`` ``[B, L, L]``:
    the similarity as the noise null makes it (``null_similarities``), or ``None`` for a
    similarity that has none (its Mantel p is then the relabelling one alone)."""
    if len(languages) < 3:
        return Agreement({}, "needs at least 3 languages")
    try:
        return Agreement(typology_agreement(1.0 - similarity, languages, permutations, seed,
                                            None if null is None else 1.0 - null))
    except ValueError as exc:
        return Agreement({}, str(exc))

