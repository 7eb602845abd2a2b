"""Speaking rates of the CLDR phrases corpus: each language's mean utterance duration relative to
English, at espeak-ng's default rate and at the matched one, on held-out (dev) items that the
rates were not matched on. The spread that remains is the figure: utterance length is a
nuisance that can stand in for the language (docs/results).

    python bench/speaking_rates.py [--items 60] [--languages est gle swh ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens.corpus.phrases import _BASE_RATE, items, mean_duration, speaking_rate  # noqa: E402
from gradlens.languages import PHRASE_LANGUAGES, TARGET  # noqa: E402


def spread(ratios: list[float]) -> dict:
    logs = np.log(ratios)
    return {"sd_log": float(logs.std(ddof=1)), "max_over_min": float(np.exp(logs.max() - logs.min())),
            "worst": float(np.exp(np.abs(logs).max()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=60, help="dev items per language")
    parser.add_argument("--languages", nargs="*", default=PHRASE_LANGUAGES)
    parser.add_argument("--json", default="bench/results/speaking_rates.json")
    args = parser.parse_args()
    dev = [int(i) for i in items("dev")[: args.items]]
    english = mean_duration(TARGET.code, _BASE_RATE, dev)
    rows = []
    print(f"English at {_BASE_RATE} wpm: {english:.2f} s per dev item ({len(dev)} items)")
    print(f"{'lang':5s} {'rate':>5s} {'natural':>8s} {'matched':>8s}   (duration / English)")
    for i, lang in enumerate(args.languages):
        rate = speaking_rate(lang)
        natural = mean_duration(lang, _BASE_RATE, dev) / english
        matched = mean_duration(lang, rate, dev) / english
        rows.append({"language": lang, "rate": rate, "natural": natural, "matched": matched})
        print(f"{lang:5s} {rate:5d} {natural:8.2f} {matched:8.2f}   [{i + 1}/{len(args.languages)}]",
              flush=True)
    result = {"command": " ".join(sys.argv), "date": dt.datetime.now().isoformat(timespec="seconds"),
              "machine": platform.platform(), "items": len(dev), "english_seconds": english,
              "rows": rows, "natural": spread([r["natural"] for r in rows]),
              "matched": spread([r["matched"] for r in rows])}
    for arm in ("natural", "matched"):
        s = result[arm]
        print(f"{arm:8s}: sd of log ratio {s['sd_log']:.3f}, longest/shortest {s['max_over_min']:.2f}, "
              f"worst language {s['worst']:.2f}x English")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
