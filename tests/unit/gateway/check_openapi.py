#!/usr/bin/env python3
# check_openapi.py - docs/openapi.yaml and the server's route table (`wagate --routes`) must
# describe the same routes: same paths and methods, the same ones planned (x-planned) and
# public (security: []). Needs python3-yaml.
#   check_openapi.py <wagate> <openapi.yaml>
# SPDX-License-Identifier: GPL-3.0-or-later
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("check_openapi: python3-yaml is missing (run scripts/deps.sh)", file=sys.stderr)
    sys.exit(1)

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

wagate, spec_path = sys.argv[1], sys.argv[2]
out = subprocess.run([wagate, "--routes"], capture_output=True, text=True, check=True).stdout
server = {}
for line in out.splitlines():
    parts = line.split()
    server[(parts[0].upper(), parts[1])] = {"public": "public" in parts[2:], "planned": "planned" in parts[2:]}

with open(spec_path) as f:
    spec = yaml.safe_load(f)
default_security = spec.get("security")
documented = {}
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method not in METHODS:
            continue
        security = op.get("security", default_security)
        documented[(method.upper(), path)] = {"public": security == [], "planned": bool(op.get("x-planned"))}
        if not op.get("responses"):
            print(f"{method.upper()} {path}: no responses documented")
            documented[(method.upper(), path)]["bad"] = True

passed = failed = 0
for key in sorted(set(server) | set(documented)):
    name = f"{key[0]} {key[1]}"
    if key not in documented:
        print(f"FAIL {name}: served but not in {spec_path}")
        failed += 1
    elif key not in server:
        print(f"FAIL {name}: documented but not served")
        failed += 1
    elif documented[key].get("bad") or {k: documented[key][k] for k in ("public", "planned")} != server[key]:
        print(f"FAIL {name}: spec {documented[key]} vs server {server[key]}")
        failed += 1
    else:
        passed += 1
# sanity: the comparison covered something
if len(server) < 10:
    print("FAIL: the server listed fewer than 10 routes")
    failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
