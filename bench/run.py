"""Command line: `python -m bench.run [--quick] [--all | --suite NAME ...] [--list] [--report]`.

With no `--suite`, every registered suite runs (`--all` says so explicitly). `--quick` makes each
suite use its reduced sizes. Each finished suite writes `bench/results/<suite>.json` and
RESULTS.md is regenerated from all result files. A suite that raises is reported and skipped;
the exit status is then 1. Ctrl-C or SIGTERM stops every server before exiting.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from types import FrameType

from bench import report
from bench.context import Context, require_binary
from bench.suite import Suite, SuiteSkipped, all_suites


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in all_suites()]
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Side-by-side benchmarks of jobcached against its real peers.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes (the whole run stays under 3 minutes)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="run every suite (the default)")
    which.add_argument("--suite", action="append", choices=names, metavar="NAME",
                       help="run only this suite; repeatable. One of: " + ", ".join(names))
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--report", action="store_true",
                        help="only regenerate RESULTS.md from the existing result files")
    return parser.parse_args(argv)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so every Context's cleanup runs, as for Ctrl-C.
    raise KeyboardInterrupt


def run_suite(suite: Suite, quick: bool) -> bool:
    """Run one suite and write its results; False if it failed (the run goes on)."""
    print(f"== {suite.name}{' (quick)' if quick else ''}: {suite.description}", flush=True)
    started = time.monotonic()
    try:
        with Context(quick=quick, log=lambda msg: print(msg, flush=True)) as ctx:
            rows = suite.run(ctx)
    except SuiteSkipped as exc:
        print(f"  skipped: {exc}")
        return True
    except Exception:
        traceback.print_exc()
        print(f"  suite {suite.name} FAILED; its previous results (if any) are kept")
        return False
    data = {
        "suite": suite.name,
        "description": suite.description,
        "mode": "quick" if quick else "full",
        "duration_s": round(time.monotonic() - started, 1),
        "machine": report.machine_facts(),
        "parameters": suite.parameters(quick),
        "columns": [c.to_json() for c in suite.columns],
        "rows": rows,
    }
    path = report.write_suite_result(data)
    failed = sum(1 for row in rows if row.get("status") == "failed")
    print(f"  wrote {path.relative_to(report.ROOT)}: {len(rows)} rows"
          + (f", {failed} failed (see Notes)" if failed else "")
          + f", {data['duration_s']:.0f} s", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    suites = all_suites()
    if args.list:
        for suite in suites:
            print(f"{suite.name:<16} {suite.description}")
        return 0
    if args.report:
        print(f"wrote {report.write_results_md([s.name for s in suites]).relative_to(report.ROOT)}")
        return 0
    if args.suite:
        suites = [s for s in suites if s.name in args.suite]
    for binary in sorted({b for s in suites for b in s.required_binaries}):
        require_binary(binary)
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.monotonic()
    ok = True
    try:
        for suite in suites:
            ok = run_suite(suite, args.quick) and ok
            report.write_results_md([s.name for s in all_suites()])
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, unfinished suite not written", file=sys.stderr)
        return 130
    print(f"updated {report.RESULTS_MD.relative_to(report.ROOT)} "
          f"in {time.monotonic() - started:.0f} s total")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
