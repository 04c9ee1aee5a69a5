#!/usr/bin/env python3
"""Run every xluo benchmark and print the figures (what `make bench` does).

    python3 bench/run.py --build build [--quick] [--only ingest|footprint|logs]

--quick: 4M samples per durability setting instead of 20M, a 30 s
footprint window instead of 300 s, and a 256 MiB log file instead of 1 GiB.
The benchmarks print figures; none of them asserts a speed. Figures and how
to read them: docs/performance.md.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(title, argv):
    print(f"\n######## {title}: {' '.join(argv[1:])}\n", flush=True)
    t0 = time.monotonic()
    try:
        rc = subprocess.call(argv)
    except KeyboardInterrupt:
        # The child got the same Ctrl-C and cleans up after itself.
        print(f"\n{title}: interrupted", file=sys.stderr)
        raise
    print(f"\n######## {title}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--only", choices=["ingest", "footprint", "logs"])
    ap.add_argument("--json-dir", help="write ingest.json, footprint.json and logs.json here")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    py = sys.executable
    rcs = []
    try:
        if args.only in (None, "ingest"):
            argv = [py, os.path.join(HERE, "ingest.py"), "--build", build]
            if args.quick:
                argv.append("--quick")
            if args.json_dir:
                argv += ["--json", os.path.join(args.json_dir, "ingest.json")]
            rcs.append(run("ingest", argv))
        if args.only in (None, "footprint"):
            argv = [py, os.path.join(HERE, "footprint.py"), "--build", build,
                    "--seconds", "30" if args.quick else "300"]
            if args.json_dir:
                argv += ["--json", os.path.join(args.json_dir, "footprint.json")]
            rcs.append(run("footprint", argv))
        if args.only in (None, "logs"):
            argv = [py, os.path.join(HERE, "logs.py"), "--build", build,
                    "--size", "256MiB" if args.quick else "1GiB"]
            if args.json_dir:
                argv += ["--json", os.path.join(args.json_dir, "logs.json")]
            rcs.append(run("logs", argv))
    except KeyboardInterrupt:
        return 130
    return max(rcs) if rcs else 0


if __name__ == "__main__":
    sys.exit(main())
