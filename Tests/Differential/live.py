#!/usr/bin/env python3
"""The live differential check: fresh random documents, both engines, every answer compared.

Usage (normally through run-live.sh):
    live.py --flipt-offline PATH [--seeds N] [--requests M] [--seed S ...] [--keep DIR]

For each seed: generate.py writes a document and M request lines; official.py answers them with
the official engine (the interpreter running this script must have PyPI flipt-client==1.4.5);
`flipt-offline eval` answers them with this project's engine; compare.py's rules decide.
Seeds are fresh random numbers unless given with --seed (repeatable, for reproducing a failure).
Prints the seeds, every mismatch, and finally `differential: N passed, M failed`. Exit 1 on any
mismatch or error. Each step has a time limit, so the check stays bounded.
"""

import argparse
import concurrent.futures
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (a sibling script)

STEP_TIMEOUT = 300
WORKERS = max(1, min(4, os.cpu_count() or 1))


def run(command, **kwargs):
    environment = dict(os.environ)
    environment.pop("RUST_BACKTRACE", None)
    return subprocess.run(command, check=True, timeout=STEP_TIMEOUT, env=environment, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flipt-offline", required=True, help="path of the built flipt-offline executable")
    parser.add_argument("--seeds", type=int, default=30, help="how many fresh random seeds (default 30)")
    parser.add_argument("--requests", type=int, default=2000, help="request lines per seed (default 2000)")
    parser.add_argument("--seed", type=int, action="append", default=[], help="a fixed seed (repeatable)")
    parser.add_argument("--keep", help="write the generated files to this directory and keep them")
    parser.add_argument("--max-shown", type=int, default=20, help="mismatches printed per seed (default 20)")
    options = parser.parse_args()

    if not os.access(options.flipt_offline, os.X_OK):
        sys.exit(f"live.py: {options.flipt_offline} is not an executable; build it with "
                 "`swift build -c release --product flipt-offline`")
    seeds = options.seed or [secrets.randbelow(2**31) for _ in range(options.seeds)]
    print(f"differential seeds ({len(seeds)} x {options.requests} requests): {' '.join(map(str, seeds))}")
    sys.stdout.flush()

    work = options.keep or tempfile.mkdtemp(prefix="flipt-differential-")
    os.makedirs(work, exist_ok=True)
    started = time.monotonic()
    prefixes = [os.path.join(work, f"seed-{seed}") for seed in seeds]
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda pair: run([sys.executable, os.path.join(HERE, "generate.py"), str(pair[0]),
                                        str(options.requests), pair[1]]), zip(seeds, prefixes)))
    generated = time.monotonic()

    triples = []
    for prefix in prefixes:
        triples += [prefix + ".document.json", prefix + ".requests.jsonl", prefix + ".expected.jsonl"]
    run([sys.executable, os.path.join(HERE, "official.py"), "--pairs"] + triples)
    official_done = time.monotonic()

    def answer_with_flipt_offline(prefix):
        command = [options.flipt_offline, "eval", "--document", prefix + ".document.json",
                   "--requests", prefix + ".requests.jsonl"]
        if os.path.exists(prefix + ".namespace"):
            with open(prefix + ".namespace", encoding="utf-8") as f:
                command += ["--namespace", f.read().strip()]
        with open(prefix + ".actual.jsonl", "w", encoding="utf-8") as output:
            run(command, stdout=output)

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(answer_with_flipt_offline, prefixes))
    swift_done = time.monotonic()

    passed = failed = 0
    failing_seeds = []
    for seed, prefix in zip(seeds, prefixes):
        p, f = compare.compare_files(prefix + ".requests.jsonl", prefix + ".expected.jsonl",
                                     prefix + ".actual.jsonl", label=f"seed {seed}", max_shown=options.max_shown)
        passed += p
        failed += f
        if f:
            failing_seeds.append(seed)
    print(f"timings: generate {generated - started:.1f} s, official engine {official_done - generated:.1f} s, "
          f"flipt-offline {swift_done - official_done:.1f} s")
    if failing_seeds:
        print("failing seeds: " + " ".join(map(str, failing_seeds)))
        print(f"reproduce: Tests/Differential/run-live.sh --flipt-offline {options.flipt_offline} "
              f"--requests {options.requests} " + " ".join(f"--seed {s}" for s in failing_seeds))
        print(f"files kept in {work}")
    elif not options.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"differential: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as error:
        print(f"live.py: step failed (exit {error.returncode}): {' '.join(error.cmd)}", file=sys.stderr)
        sys.exit(1)
    except subprocess.TimeoutExpired as error:
        print(f"live.py: step took longer than {STEP_TIMEOUT} s: {' '.join(error.cmd)}", file=sys.stderr)
        sys.exit(1)
