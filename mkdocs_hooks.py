"""MkDocs hooks (mkdocs.yml ``hooks:``): BENCHMARKS.md and CHANGELOG.md live at the top of the repository,
where GitHub readers and the README link them; the site gets them as pages of its own, and the pages' links
to ``../BENCHMARKS.md`` / ``../CHANGELOG.md`` (right on GitHub) are pointed at those pages, so
``mkdocs build --strict`` checks them like any other link."""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

# top-level file -> the page it becomes on the site
TOP_LEVEL = {"BENCHMARKS.md": "benchmarks.md", "CHANGELOG.md": "changelog.md"}


def _rewrite(markdown: str, prefix: str) -> str:
    """Point links to the top-level files (``prefix`` is how a page reaches the top) at their site pages, and
    the top-level files' own links into ``docs/`` at the pages themselves."""
    for name, page in TOP_LEVEL.items():
        markdown = re.sub(r"\]\(" + re.escape(prefix + name), "](" + page, markdown)
    if prefix == "":
        markdown = markdown.replace("](docs/", "](")
    return markdown


def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for name, page in TOP_LEVEL.items():
        path = root / name
        if path.exists():
            files.append(File.generated(config, page, content=_rewrite(path.read_text(encoding="utf-8"), "")))
    return files


def on_page_markdown(markdown, page, config, files):
    return _rewrite(markdown, "../")
