"""python -m raftcart_jepsen.recheck RESULTS_DIR: judges a recorded run
again (its history.json and state.json) and prints the summary, e.g. after
a change to the checker."""

import json
import os
import sys
import time

from . import checker, report


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = sys.argv[1]
    with open(os.path.join(run, "history.json")) as f:
        history = json.load(f)
    with open(os.path.join(run, "state.json")) as f:
        state = json.load(f)
    started = time.monotonic()
    result = checker.check(history, state["init"], state["final"], state["replicas"],
                           state["windows"], state["end"])
    result["checker_seconds"] = round(time.monotonic() - started, 1)
    print(report.summary(os.path.basename(run.rstrip("/")), result))
    sys.exit(0 if result["valid"] else 1)


if __name__ == "__main__":
    main()
