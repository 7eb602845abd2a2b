"""``python -m gradlens.corpus [--corpus NAME] [LANG ...]``: a few examples per language."""

import argparse

from gradlens.corpus import SAMPLE_RATE, open_corpus

parser = argparse.ArgumentParser(prog="python -m gradlens.corpus", description=__doc__)
parser.add_argument("languages", nargs="*", default=["spa", "deu", "fin"])
parser.add_argument("--corpus", default="spoken-numbers")
parser.add_argument("--n", type=int, default=3, help="examples per language")
args = parser.parse_args()
corpus = open_corpus(args.corpus, args.languages)
for code in corpus.languages:
    for ex in corpus.batch(code, "train", args.n, 0):
        print(f"{ex.id:22s} {len(ex.audio) / SAMPLE_RATE:4.2f}s  {ex.transcript!r} -> "
              f"{ex.translation!r}")
