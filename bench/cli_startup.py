"""Benchmark: `keyguard --help` start-up cost as a ratio to `python -c "import typer"`.

Target: ratio <= 1.5. Both commands run as fresh processes, alternately, in the same run,
so machine load affects both alike; the medians are compared. Also reports whether
boto3, botocore, keyring or duckdb were imported by `--help` (they must not be).

Bytecode: an installed keyguard (a wheel) has its modules compiled at install time, and so
has typer. An editable checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as in CI here)
would recompile keyguard's ~60 modules from source on every start and measure the
compiler (about 50 ms) instead of the start-up, so the package is compiled first.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import time

ROUNDS = 15
HELP = [sys.executable, "-c", "import sys; from keyguard.cli import main; sys.argv=['keyguard','--help']; main()"]
BASELINE = [sys.executable, "-c", "import typer"]
HEAVY = ("boto3", "botocore", "keyring", "duckdb", "secretstorage")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    import keyguard

    for root in keyguard.__path__:  # as an install would (see above); __pycache__ is ignored
        compileall.compile_dir(root, quiet=1)
    for cmd in (HELP, BASELINE):  # warm the file cache
        timed(cmd)
    help_times, base_times = [], []
    for _ in range(ROUNDS):
        help_times.append(timed(HELP))
        base_times.append(timed(BASELINE))
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom keyguard.cli import app\n"
         "import typer.testing as t\nt.CliRunner().invoke(app, ['--help'])\n"
         f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    h, b = statistics.median(help_times), statistics.median(base_times)
    print(f"keyguard --help     median {h * 1000:7.1f} ms over {ROUNDS} runs")
    print(f"python -c 'import typer' median {b * 1000:7.1f} ms")
    print(f"ratio {h / b:.2f} (target <= 1.5)")
    print(f"heavy modules imported by --help: {probe or 'none'}")
    return 0 if h / b <= 1.5 and not probe else 1


if __name__ == "__main__":
    sys.exit(main())
