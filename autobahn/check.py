"""Runs the Autobahn TestSuite cases (kosoku, fuzzingclient mode) against one server and
compares the verdicts with the committed expectation.

    python3 autobahn/check.py NAME ws://HOST:PORT/ws/echo [--lean] [--bless]

The expectation, autobahn/expected.json, maps each case id to its verdicts and the close code
the server sent; durations and report file names are left out, so it changes only when
behaviour does. It is one file for every adapter: they share one driver, so they must agree
case by case. Any change fails (as tungstenite's CI does); --bless rewrites the file (the
cases that ran; the others keep their verdicts).

--lean leaves out the compression cases with messages of 32 KiB and more (12.*.8-10 and
12.*.13-18, likewise 13.*): they are 94 % of the suite's bytes, and every permessage-deflate
parameter set (13.1-13.7), fragmentation and message type is still run. `cargo xtask autobahn`
runs one adapter in full and the others lean (all four share the codec; what differs is the
upgrade that agrees the extension); `--full` runs every adapter in full.
The full kosoku report (HTML and JSON per case) goes to target/autobahn/NAME/.
"""

import asyncio
import collections
import fnmatch
import json
import pathlib
import sys

import kosoku
from kosoku._report import write_reports

# Every case runs, the compression cases (12.*, 13.*: permessage-deflate) included; --lean
# leaves out the ones with the largest messages.
LARGE = [f"{group}.*.{i}" for group in ("12", "13") for i in (8, 9, 10, 13, 14, 15, 16, 17, 18)]
ACCEPTABLE = {"OK", "NON-STRICT", "INFORMATIONAL"}
ROOT = pathlib.Path(__file__).resolve().parent.parent


def case_key(case_id):
    return [int(p) for p in case_id.split(".")]


async def run(url, exclude):
    try:
        return await kosoku.run_fuzzingclient(url, None, exclude, concurrency=4)
    except kosoku.FailureError as failure:
        return failure.results


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    bless = "--bless" in sys.argv
    exclude = LARGE if "--lean" in sys.argv else []
    if len(args) != 2:
        sys.exit(__doc__)
    name, url = args
    results = asyncio.run(run(url, exclude))
    write_reports(results, str(ROOT / "target" / "autobahn" / name))
    got = {
        r.case_id: {
            "behavior": r.behavior.value,
            "behaviorClose": r.behavior_close.value,
            "remoteCloseCode": r.remote_close_code,
        }
        for r in sorted(results, key=lambda r: case_key(r.case_id))
    }
    counts = collections.Counter(v["behavior"] for v in got.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"autobahn {name}: {len(got)} cases: {summary}")
    bad = [c for c, v in got.items() if v["behavior"] not in ACCEPTABLE]
    for case in bad:
        print(f"  {case}: {got[case]}")

    expected_file = ROOT / "autobahn" / "expected.json"
    if bless:
        merged = json.loads(expected_file.read_text()) if expected_file.exists() else {}
        merged.update(got)
        merged = {c: merged[c] for c in sorted(merged, key=case_key)}
        expected_file.write_text(json.dumps(merged, indent=1) + "\n")
        print(f"  wrote {expected_file.relative_to(ROOT)}")
    else:
        if not expected_file.exists():
            sys.exit(f"autobahn {name}: no {expected_file.relative_to(ROOT)}; run with --bless")
        expected = json.loads(expected_file.read_text())
        # a case expected but not run is a change, unless --lean left it out
        skipped = {c for c in expected if any(fnmatch.fnmatchcase(c, p) for p in exclude)}
        changed = sorted((set(expected) - skipped) | set(got), key=case_key)
        changed = [c for c in changed if expected.get(c) != got.get(c)]
        for case in changed:
            print(f"  {case}: expected {expected.get(case)}, got {got.get(case)}")
        if changed:
            sys.exit(f"autobahn {name}: {len(changed)} cases differ from the expectation")
    if bad:
        sys.exit(f"autobahn {name}: {len(bad)} cases neither OK, NON-STRICT nor INFORMATIONAL")


if __name__ == "__main__":
    main()
