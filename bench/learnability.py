"""Can the tiny model learn a corpus? The demo's recipe (gradlens.demo.RECIPE, or fewer steps)
trains the tiny SeamlessM4T on a corpus's languages from scratch, then every language's dev
BLEU/chrF is printed beside the average: a language far below the others is one the model
cannot learn from espeak-ng's voice, and is left out of the demo (docs/results says which).

    python bench/learnability.py --corpus cldr-phrases --languages spa deu est gle swh ...
    python bench/learnability.py --corpus spoken-numbers            # the demo's languages
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens.plan import new_plan  # noqa: E402
from gradlens.demo import DEMO_LANGUAGES  # noqa: E402


def main() -> int:
    from tqdm import tqdm

    from gradlens.demo import RECIPE
    from probes.training import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="cldr-phrases")
    parser.add_argument("--languages", nargs="+", default=DEMO_LANGUAGES)
    parser.add_argument("--steps", type=int, default=RECIPE.steps)
    parser.add_argument("--eval-size", type=int, default=32, help="dev utterances per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=RECIPE.max_new_tokens)
    parser.add_argument("--json", default="", help="default bench/results/learnability-CORPUS.json")
    args = parser.parse_args()
    cfg = dataclasses.replace(RECIPE, corpus=args.corpus, steps=args.steps, seed=args.seed,
                              eval_every=args.steps, eval_size=args.eval_size,
                              warmup_steps=min(RECIPE.warmup_steps, args.steps // 10),
                              checkpoint_every=args.steps, max_new_tokens=args.max_new_tokens)
    bar = tqdm(total=cfg.steps, desc=f"training on {args.corpus}", unit="step")
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        records = train(cfg, new_plan("tiny", args.languages), tmp,
                        lambda done, total, record: bar.update(done - bar.n))
    bar.close()
    dev = {r["language"]: r for r in records if r.get("split") == "dev"}
    print(f"\n{'lang':5s} {'BLEU':>6s} {'chrF':>6s}   dev, {args.eval_size} utterances each")
    for lang in [*args.languages, "all"]:
        print(f"{lang:5s} {dev[lang]['bleu']:6.1f} {dev[lang]['chrf']:6.1f}")
    mean_chrf = sum(dev[x]["chrf"] for x in args.languages) / len(args.languages)
    print(f"mean of the languages' dev chrF: {mean_chrf:.1f}; {time.time() - start:.0f} s")
    out = Path(args.json or f"bench/results/learnability-{args.corpus.replace(':', '_')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(sys.argv), "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(), "config": dataclasses.asdict(cfg),
        "languages": args.languages, "dev": dev, "mean_chrf": mean_chrf,
        "seconds": time.time() - start}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
