"""Copy the repository address from ``_config.yml`` (its one home) into the book's own links:
every notebook's Colab badge and bootstrap cell, and the pages that quote them.

    python tools/sync_repo_url.py          # rewrite the files in place
    python tools/sync_repo_url.py --check  # exit 1 if any file is out of step

Only the book's *own* links are rewritten, recognised by their form, never by their host:

* a Colab link to one of this book's notebooks,
  ``https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/notebooks/...``;
* the bootstrap's install of this package, ``cvbook @ git+https://github.com/OWNER/REPO``;
* any other ``https://github.com/OWNER/REPO`` link *whose OWNER/REPO is one of the two
  above in any of the files* (the book's old address, when the address changes: a page
  with only a plain ``git clone`` link, or ``CITATION.cff``, is rewritten too).

A link to another repository (an official code base, a dataset) is left alone.
``tests/test_conventions.py`` runs the check; ``tests/test_tools.py`` proves the rules.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUG = r"[\w.-]+/[\w.-]+?"
COLAB = re.compile(r"https://colab\.research\.google\.com/github/(" + SLUG + r")/blob/"
                   r"([\w.-]+)/notebooks/")
INSTALL = re.compile(r"(cvbook\s*@\s*git\+)https://github\.com/(" + SLUG
                     + r")(?=\.git\b|[@\"'\s]|$)")


def repo_url(root: Path = ROOT) -> tuple[str, str]:
    """``(url, branch)`` of ``repository:`` in ``_config.yml`` (read without YAML)."""
    text = (root / "_config.yml").read_text()
    block = re.search(r"^repository:\s*\n((?:[ \t]+.*\n?)*)", text, re.M)
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), re.M) if block else None
    if not url or not url.group(1).startswith("https://github.com/"):
        raise SystemExit("_config.yml needs repository.url: https://github.com/OWNER/REPO")
    branch = re.search(r"^\s+branch:\s*(\S+)", block.group(1), re.M)
    return url.group(1).rstrip("/").removesuffix(".git"), branch.group(1) if branch else "main"


def own_slugs(text: str) -> set[str]:
    """The OWNER/REPO names the text uses for the book itself (badges, bootstrap)."""
    return {m.group(1) for m in COLAB.finditer(text)} | \
        {m.group(2) for m in INSTALL.finditer(text)}


def sync(text: str, url: str, branch: str = "main", known: set[str] | None = None) -> str:
    """``text`` with the book's own links pointed at ``url`` (and Colab links at ``branch``).
    ``known``: OWNER/REPO names the book used for itself elsewhere (see :func:`main`)."""
    slug = url.removeprefix("https://github.com/")
    old = (own_slugs(text) | (known or set())) - {slug}
    text = COLAB.sub(f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/",
                     text)
    text = INSTALL.sub(lambda m: f"{m.group(1)}{url}", text)
    for o in sorted(old):  # plain links to the book's previous address
        text = re.sub(r"https://github\.com/" + re.escape(o) + r"(?=[/\"'\s)#.]|$)", url, text)
    return text


def targets(root: Path = ROOT) -> list[Path]:
    return (sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
            + sorted((root / "book").glob("*.md"))
            + [p for p in (root / "README.md", root / "CONTRIBUTING.md", root / "CITATION.cff")
               if p.is_file()])


def sync_file(path: Path, url: str, branch: str, write: bool,
              known: set[str] | None = None) -> bool:
    """Sync one file; return True if it was (or, with ``write=False``, would be) changed."""
    if path.suffix == ".ipynb":
        data = json.loads(path.read_text())
        changed = False
        for cell in data["cells"]:
            src = "".join(cell["source"])
            new = sync(src, url, branch, known)
            if new != src:
                cell["source"] = new.splitlines(keepends=True)
                changed = True
        if changed and write:
            path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        return changed
    text = path.read_text()
    new = sync(text, url, branch, known)
    if new != text and write:
        path.write_text(new)
    return new != text


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    url, branch = repo_url(root)
    files = targets(root)
    known = set().union(*(own_slugs(p.read_text()) for p in files))  # the book's addresses
    stale = [p.relative_to(root).as_posix() for p in files
             if sync_file(p, url, branch, write=not args.check, known=known)]
    if args.check and stale:
        print(f"out of step with _config.yml ({url}, branch {branch}): {', '.join(stale)}; "
              "run python tools/sync_repo_url.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
