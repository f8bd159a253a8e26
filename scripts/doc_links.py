#!/usr/bin/env python3
"""Fails if a relative link in the project's Markdown (a file, or a file's
heading) does not resolve. Run by scripts/test.sh."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def anchors(path):
    """GitHub's anchors for a file's headings."""
    found = set()
    for line in path.read_text().splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            text = m.group(1).strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


files = subprocess.run(
    ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
).stdout.split()
bad = 0
for name in files:
    page = ROOT / name
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        link = m.group(1)
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            print(f"{name}: {link}: no such file")
            bad += 1
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            print(f"{name}: {link}: no such heading")
            bad += 1
if bad:
    sys.exit(1)
print(f"every relative link in {len(files)} Markdown files resolves")
