"""The run-level picture behind ``gradlens analyze``: language similarity per block, the
model-level grouping and its agreement with URIEL. Evidence in, a frozen result out; the report
only formats it.

    python -c "from gradlens.analysis.overview import overview; help(overview)"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradlens.analysis.evidence import ModuleEvidence, similarity_of
from gradlens.analysis.grouping import LanguageGrouping
from gradlens.analysis.evidence import null_similarities
from gradlens.analysis.typology import Agreement, agreement_of
from gradlens.modules import block_of


@dataclass(frozen=True)
class Overview:
    languages: list[str]
    similarities: dict[str, np.ndarray]  # "model" and each block: [L, L]
    grouping: LanguageGrouping  # fitted on the model-level similarity
    typology: Agreement  # Mantel tests of the model-level distance against URIEL


def block_similarities(evidence: list[ModuleEvidence]) -> dict[str, np.ndarray]:
    """``[L, L]`` similarity of each block and of the whole model (key ``model``)."""
    out = {"model": similarity_of(evidence)}
    for block in dict.fromkeys(block_of(e.module) for e in evidence):
        out[block] = similarity_of([e for e in evidence if block_of(e.module) == block])
    return out


def overview(evidence: list[ModuleEvidence], permutations: int = 999) -> Overview:
    languages = evidence[0].languages
    sims = block_similarities(evidence)
    return Overview(languages, sims, LanguageGrouping().fit(sims["model"], languages),
                    agreement_of(sims["model"], languages, permutations,
                                 null=null_similarities(evidence)))
