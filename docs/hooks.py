"""mkdocs hook: links from a docs page to a file of the repository outside docs/.

The pages are read on GitHub as much as on the site, so they link examples, tests and plugin folders by
their relative path in the repository (``../examples/README.md``). The site holds only docs/, where such
a link would lead nowhere: this hook points it at the file in the repository when `repo_url` is set in
mkdocs.yml, and otherwise keeps its text without the link (as code when the text is a path, else followed
by the path). A link to a path that does not exist is logged as a warning, which
``mkdocs build --strict`` turns into an error.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

log = get_plugin_logger(__name__)

BRANCH = "main"
LINK = re.compile(r"\[(?P<text>[^\]\n]+)\]\((?P<path>\.\./[^)\s#]*)(?P<anchor>#[^)\s]*)?\)")


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    docs_dir = Path(config.docs_dir).resolve()
    root = Path(config.config_file_path).resolve().parent
    page_dir = Path(page.file.abs_src_path or docs_dir / page.file.src_path).parent

    def rewrite(link: re.Match[str]) -> str:
        target = (page_dir / link["path"]).resolve()
        if target.is_relative_to(docs_dir):
            return link[0]  # mkdocs itself checks and converts links between pages
        if not target.is_relative_to(root) or not target.exists():
            log.warning(
                "Doc file '%s' links to '%s', which is not in the repository", page.file.src_uri, link["path"]
            )
            return link[0]
        text, path = link["text"], target.relative_to(root).as_posix()
        if config.repo_url:
            kind = "tree" if target.is_dir() else "blob"
            return f"[{text}]({config.repo_url.rstrip('/')}/{kind}/{BRANCH}/{path}{link['anchor'] or ''})"
        if " " in text:  # prose: keep it, and say where the file is
            return f"{text} (`{path}`)"
        return text if text.startswith("`") else f"`{text}`"

    return LINK.sub(rewrite, markdown)
