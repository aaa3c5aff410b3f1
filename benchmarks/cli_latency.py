"""Latency of `quietrl --help`, `--version` and bad-input errors (target: each under 1 s).

Prints the median wall time of each command over repeated runs next to a bare `python -c pass` measured in
the same run (machines here are noisy; the ratio is the portable number), and checks that none of them
imports JAX, Ray, craftax or a sub-package.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "--help": ["--help"],
    "--version": ["--version"],
    "reproduce --help": ["reproduce", "--help"],
    "unknown --only": ["reproduce", "--only", "nope"],
    "unknown option": ["reproduce", "--bogus"],
    "resume non-run": ["reproduce", "--resume", "/nonexistent/run"],
    "out below a file": ["reproduce", "--out", "/etc/hostname/run"],
}


def timed(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    base = timed([sys.executable, "-c", "pass"], args.repeats)
    print(f"{'command':<22} {'median s':>9} {'vs python -c pass':>18}  heavy imports")
    print(f"{'python -c pass':<22} {base:9.3f} {1.0:18.2f}")
    worst = 0.0
    for name, argv in CASES.items():
        t = timed([sys.executable, "-m", "quietrl.cli", *argv], args.repeats)
        code = ("import sys\nfrom quietrl.cli import main\nsys.argv=['quietrl', *%r]\n"
                "try:\n    main()\nexcept SystemExit:\n    pass\n"
                "heavy=[m for m in ('jax','ray','craftax','quietrl.prefrl','quietrl.proofsearch','quietrl.goalgen',"
                "'quietrl.arms','quietrl.leo','quietrl.precise') if m in sys.modules]\n"
                "sys.stderr.write('HEAVY=' + ','.join(heavy))" % (argv,))
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        heavy = r.stderr.rsplit("HEAVY=", 1)[-1].strip() or "none"
        worst = max(worst, t)
        print(f"{name:<22} {t:9.3f} {t / base:18.2f}  {heavy}")
    print(f"slowest: {worst:.3f} s (target < 1 s): {'OK' if worst < 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
