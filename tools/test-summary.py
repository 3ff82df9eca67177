"""Counts meson test results: TAP programs by their subtests, GstCheck
programs by their checks, others as one test each; prints the closing line
'N passed, N failed, N skipped'."""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        t = json.loads(line)
        res = t["result"]
        out = t.get("stdout") or ""
        subs = re.findall(r"^(?:ok|not ok) \d+[^\n]*", out, re.M)
        check = re.search(r"^\d+%: Checks: (\d+), Failures: (\d+), Errors: (\d+)", out, re.M)
        if t.get("protocol", "").upper() == "TAP" or subs:
            for s in subs:
                if s.startswith("not ok"):
                    failed += 1
                elif "# SKIP" in s:
                    skipped += 1
                else:
                    passed += 1
            if res not in ("OK", "SKIP") and not any(s.startswith("not ok") for s in subs):
                failed += 1  # crashed or timed out before reporting
        elif check:
            checks, bad = int(check[1]), int(check[2]) + int(check[3])
            passed += checks - bad
            failed += max(bad, int(res != "OK"))  # a crash counts once
        elif res == "OK":
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
