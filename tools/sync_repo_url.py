"""Copy the repository address from ``_config.yml`` (its one home) into every notebook's
Colab badge and Colab bootstrap cell.

    python tools/sync_repo_url.py          # rewrite the notebooks in place
    python tools/sync_repo_url.py --check  # exit 1 if any notebook is out of step

``tests/test_conventions.py`` runs the check, so a changed address cannot drift.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+?(?=[/\"'\s)]|\.git|$)")
COLAB = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/")


def repo_url() -> str:
    """The ``repository.url`` of ``_config.yml`` (read without a YAML dependency)."""
    text = (ROOT / "_config.yml").read_text()
    m = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not m:
        raise SystemExit("_config.yml has no repository.url")
    return m.group(1).rstrip("/")


def sync(text: str, url: str) -> str:
    slug = url.removeprefix("https://github.com/")
    text = GITHUB.sub(url, text)
    return COLAB.sub(f"https://colab.research.google.com/github/{slug}/", text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    url = repo_url()
    stale = []
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        data = json.loads(nb.read_text())
        changed = False
        for cell in data["cells"]:
            src = "".join(cell["source"])
            new = sync(src, url)
            if new != src:
                cell["source"] = new.splitlines(keepends=True)
                changed = True
        if changed:
            stale.append(nb.name)
            if not args.check:
                nb.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    if args.check and stale:
        print(f"out of step with _config.yml ({url}): {', '.join(stale)}; "
              "run python tools/sync_repo_url.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
