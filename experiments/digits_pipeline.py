"""The newcomer's pipeline on the embedded default (UCI digits), end to end.

    python experiments/digits_pipeline.py --workdir runs/digits [--smoke]

1. ``supernet search``   DARTS search on the digits  -> WORKDIR/search/arch.json
2. ``supernet train``    the derived network, from scratch -> WORKDIR/train
3. ``supernet export``   weights + jax.export artifact -> WORKDIR/export
4. ``supernet evaluate`` the export on the test split, loading only the export

Each stage is one ``supernet`` verb (a thin launcher: no logic lives here);
re-running resumes finished or interrupted stages from their checkpoints.
"""

import argparse
import json
import os
import sys
import time

from supernet.cli import main as supernet

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "configs")


def _stage(name: str, argv: list[str], times: dict[str, float]) -> None:
  print(f"\n=== {name}: supernet {' '.join(argv)}", flush=True)
  t0 = time.time()
  rc = supernet(argv)
  times[name] = round(time.time() - t0, 1)
  if rc != 0:
    sys.exit(rc)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--smoke", action="store_true",
                      help="tiny configs (a functional check, low accuracy)")
  args = parser.parse_args()
  variant = ":smoke" if args.smoke else ""
  w = os.path.abspath(args.workdir)
  search, train, export = (os.path.join(w, d) for d in ("search", "train",
                                                        "export"))
  times: dict[str, float] = {}
  t0 = time.time()
  _stage("search", ["search", "--config",
                    os.path.join(CONFIGS, "darts_digits.py") + variant,
                    "--workdir", search], times)
  _stage("train", ["train", "--config",
                   os.path.join(CONFIGS, "darts_digits_train.py") + variant,
                   "--arch", os.path.join(search, "arch.json"),
                   "--workdir", train], times)
  _stage("export", ["export", "--workdir", train, "--out", export,
                    "--overwrite"], times)
  _stage("evaluate", ["evaluate", "--export", export, "--split", "test"],
         times)
  total = round(time.time() - t0, 1)
  summary = {"wall_s": {**times, "total": total},
             "search": {"arch": os.path.join(search, "arch.json"),
                        "plots": os.path.join(search, "alphas.png")},
             "train": {"results": os.path.join(train, "results.json"),
                       "metrics": os.path.join(train, "metrics.csv")},
             "export": export}
  with open(os.path.join(w, "pipeline.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print("\n=== done in", total, "s; stage times:", times)
  print(f"  derived architecture  {summary['search']['arch']}")
  print(f"  search plots          {search}/*.png")
  print(f"  trained network       {train} (results.json, metrics.csv, plots)")
  print(f"  export                {export}")
  print(f"  summary               {os.path.join(w, 'pipeline.json')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
