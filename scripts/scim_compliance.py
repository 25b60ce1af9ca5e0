"""Runs scim2-tester against a live /scim/v2 and compares the checks that pass with a baseline.

    python3 scripts/scim_compliance.py --url URL --token TOKEN --ca CA.pem --baseline FILE [--update]

A check is named `<resource type or "-">/<title>`; several results with one name count as
passed only when all pass. Fails (exit 1) when a check of the baseline's `passing` list no longer
passes; prints newly passing ones so the baseline can be raised with --update.
"""

import argparse
import json
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASS = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def run(url: str, token: str, ca: str) -> dict[str, bool]:
    http = httpx2.Client(
        base_url=url, verify=ca, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    client = SyncSCIMClient(http)
    results = check_server(client, raise_exceptions=False)
    outcome: dict[str, bool] = {}
    for result in results:
        if result.status == Status.SKIPPED:
            continue
        name = f"{result.resource_type or '-'}/{result.title}"
        ok = result.status in PASS
        outcome[name] = outcome.get(name, True) and ok
        if not ok:
            print(f"  {result.status.name:9} {name}: {result.reason}", file=sys.stderr)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--update", action="store_true")
    args = parser.parse_args()

    outcome = run(args.url, args.token, args.ca)
    passing = sorted(name for name, ok in outcome.items() if ok)
    failing = sorted(name for name, ok in outcome.items() if not ok)
    print(f"scim2-tester: {len(passing)} of {len(outcome)} checks pass")

    if args.update:
        with open(args.baseline, "w") as f:
            json.dump({"passing": passing, "known_gaps": failing}, f, indent=2)
            f.write("\n")
        print(f"baseline written: {args.baseline}")
        return 0

    with open(args.baseline) as f:
        baseline = json.load(f)
    regressed = sorted(set(baseline["passing"]) - set(passing))
    improved = sorted(set(passing) - set(baseline["passing"]))
    for name in improved:
        print(f"  now passes (raise the baseline with --update): {name}")
    for name in regressed:
        print(f"  REGRESSED: {name}", file=sys.stderr)
    if regressed:
        print(f"scim2-tester: {len(regressed)} check(s) that passed before now fail", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
