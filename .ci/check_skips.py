"""Fail CI when a test was skipped for any reason but the one CI cannot remove: executing a TensorRT
engine, which needs a Jetson. Reads pytest's JUnit XML (`--junitxml`); prints the summary CI shows."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

ALLOWED = "needs a Jetson"


def main(path: str) -> int:
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
    skipped = [(c, s) for c in cases for s in c.findall("skipped")]
    failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
    bad = [(c, s) for c, s in skipped if ALLOWED not in (s.get("message") or "")]
    for c, s in skipped:
        mark = "ok  " if (c, s) not in bad else "FAIL"
        print(f"{mark} skipped {c.get('classname')}::{c.get('name')}: {s.get('message')}")
    print(f"ci: {len(cases)} tests, {failed} failed, {len(skipped)} skipped "
          f"({len(skipped) - len(bad)} need a Jetson, {len(bad)} for other reasons)")
    if bad:
        print(f"ci: every skip must be an engine execution that {ALLOWED}; install what the others ask for",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
