"""Interrupt ``sweep --ray`` again and again; every interrupt must end cleanly.

    python tools/stress_ray_interrupt.py            # 10 interrupts
    python tools/stress_ray_interrupt.py --runs 3 --delay 0.5

Each run starts ``python -m bijepa_nb.sweep sine --quick --ray --ray-cpus 1`` with a fresh
cache, waits until the first ``--after`` chunks are cached (plus a random 0-``--delay``
seconds, so the signal lands at different moments of Ray's task bookkeeping), sends
SIGINT (Ctrl-C) and checks: exit status 130, no Python traceback, no Ray "Check failed"
or C++ stack trace, no output file, the finished chunks kept. Prints one line per run and
a tally; exits 1 if any run was not clean. Not part of the test suite (a minute or two per
ten runs on two cores); tests/test_cluster.py interrupts once per backend.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD = (
    "Traceback (most recent call last)",
    "Check failed",
    "*** SIGABRT",
    "core dumped",
)


def one_run(
    work: Path, after: int, delay: float, rng: random.Random
) -> tuple[bool, str]:
    cache, out = work / "cache", work / "maps.json"
    cmd = [sys.executable, "-m", "bijepa_nb.sweep", "sine", "--quick", "--threads", "1"]
    cmd += ["--chunk-size", "4", "--cache-dir", str(cache), "--out", str(out)]
    cmd += ["--ray", "--ray-cpus", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if cache.exists() and len(list(cache.glob("*.json"))) >= after:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        return False, f"finished before the interrupt (exit {proc.returncode})"
    time.sleep(rng.uniform(0.0, delay))
    proc.send_signal(signal.SIGINT)
    try:
        text = proc.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return False, "did not exit within 120 s of SIGINT"
    kept = len(list(cache.glob("*.json")))
    problems = [b for b in BAD if b in text]
    if proc.returncode != 130:
        problems.append(f"exit {proc.returncode}")
    if out.exists():
        problems.append("wrote an output file")
    if kept < after:
        problems.append(f"kept {kept} chunks, fewer than the {after} cached before")
    what = f"exit {proc.returncode}, {kept} chunks kept"
    return not problems, what + ("" if not problems else ": " + "; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="interrupts (default 10)")
    ap.add_argument("--after", type=int, default=1, help="cached chunks first (1)")
    ap.add_argument("--delay", type=float, default=1.0, help="extra random wait, s")
    ap.add_argument("--seed", type=int, default=0, help="of the random waits")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.after < 1 or args.delay < 0:
        ap.error("--runs and --after must be >= 1 and --delay >= 0")
    rng, clean = random.Random(args.seed), 0
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            ok, what = one_run(Path(tmp), args.after, args.delay, rng)
        clean += ok
        print(f"run {i + 1}/{args.runs}: {'clean' if ok else 'NOT CLEAN'} ({what})")
    print(f"{clean} of {args.runs} interrupts ended cleanly")
    return 0 if clean == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
