#!/usr/bin/env python3
"""Reads generated buildspecs with PyYAML, a YAML 1.1 reader, where `yes`, `on`, `1.10`,
`0x1F` and `2024-01-01` are not strings unless quoted, and checks every flavor name and
variable value comes back as the exact string that went in.

Usage: yaml11_check.py PATH_TO_FLAVOR_CI_BINARY
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

TRAPS = [
    "1.10", "3.10", "yes", "no", "on", "off", "Y", "n", "null", "NULL", "~", "0x1F", "0o17",
    "017", "1e3", "1_000", "2024-01-01", "12:30", ".5", ".inf", "*", "& x", "! x", "- x",
    "a: b", "a #b", "#x", "%x", "@x", "`x", "[x]", "{x}", "x,y", "'q'", '"dq"', "?x", "|x",
    ">x", "<<", "=", "über", "a\\b\\c".replace("\\", "_"), "tab\tinside", "python-3.10",
]
# U+FFFE and U+FFFF: YAML forbids them raw, so they must come back through an escape.
VALUES = TRAPS + ["", " lead", "trail ", "line\nbreak", "back\\slash", "\u2028", "\ufeff",
                  "x\ufffey", "\uffff"]


def main() -> int:
    binary = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        # One flavor name per build identifier (`*`, `~` and `=` all map to `build__`);
        # every trap also goes through as a variable value below.
        by_identifier = {}
        for n in TRAPS:
            if "\t" not in n and not n.startswith("."):  # hidden directories are not flavors
                by_identifier.setdefault(re.sub(r"[^A-Za-z0-9_]", "_", n), n)
        names = sorted(by_identifier.values())
        for name in names:
            (repo / "flavors" / name).mkdir(parents=True)
        variables = "\n".join(f"    V{i}: {yaml_double(v)}" for i, v in enumerate(VALUES))
        (repo / "flavor-ci.yaml").write_text(f"batch:\n  max-builds: 100\nbuild:\n  variables:\n{variables}\n")
        out = Path(tmp) / "out"
        run = subprocess.run([str(binary), "generate", "--repo", str(repo), "--out", str(out)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout, run.stderr, sep="\n")
            return 1
        failures = 0
        for path in sorted(out.glob("*.yaml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            got = [t["env"]["variables"]["FLAVOR"] for t in doc["batch"]["build-graph"]]
            for expected, actual in zip(sorted(names), got):
                if not (isinstance(actual, str) and actual == expected):
                    print(f"{path.name}: flavor {expected!r} read back as {actual!r}")
                    failures += 1
            env = doc["env"]["variables"]
            for i, expected in enumerate(VALUES):
                actual = env[f"V{i}"]
                if not (isinstance(actual, str) and actual == expected):
                    print(f"{path.name}: value {expected!r} read back as {actual!r}")
                    failures += 1
            if len(got) != len(names):
                print(f"{path.name}: {len(got)} tasks for {len(names)} flavors")
                failures += 1
        print(f"checked {len(names)} flavor names and {len(VALUES)} values in "
              f"{len(list(out.glob('*.yaml')))} files: {failures} failure(s)")
        return 1 if failures else 0


def yaml_double(value: str) -> str:
    """A YAML double-quoted scalar for the settings file."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\t", "\\t").replace("\u2028", "\\L").replace("\ufeff", "\\uFEFF")
               .replace("\ufffe", "\\uFFFE").replace("\uffff", "\\uFFFF"))
    return f'"{escaped}"'


if __name__ == "__main__":
    sys.exit(main())
