"""MkDocs hooks of the documentation site (mkdocs.yml): the nav, the mixers' API page, links outside docs/.

* The nav is made from the pages that exist, in a fixed order of sections, so a new method or
  integration page is in the nav without an edit here.
* ``<!-- mixkit-api: PACKAGE -->`` in a page becomes one ``::: module.Class`` block per name of the
  package's ``__all__`` (read by importing it: ``mixkit.mixers`` builds its ``__all__`` at import).
* A link to a file of the repository outside docs/ (``../benchmarks/README.md``) becomes its path as
  code text, as the site does not hold that file; a link to a missing file is a warning, so
  ``mkdocs build --strict`` fails on it.
* Every object the API pages document must have a docstring, and so must its public methods and
  properties: a missing one is a warning, which fails the strict build.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

log = logging.getLogger("mkdocs.hooks.mixkit")

# sections of the nav: (title, glob under docs/, pages first in this order)
SECTIONS = [
    ("Methods", "methods/*.md", []),
    ("Integrations", "integrations/*.md", ["timm.md", "torchvision.md", "kornia.md", "lightning.md",
                                            "huggingface.md"]),
    ("Analyses", "analysis/*.md", ["index.md", "robustness.md", "gradients.md", "calibration.md", "cam.md",
                                   "mutual_info.md", "efficiency.md", "transfer.md"]),
    ("Results", "results/**/*.md", ["README.md"]),
    ("API reference", "api/*.md", ["index.md", "mixers.md", "learned.md", "result.md", "losses.md",
                                   "targets.md", "registry.md", "integrations.md"]),
]
TOP = [("Guide", "index.md"), ("Design", "design.md"), ("Speed", "speed.md"), ("Cost", "cost.md"), ("GPU", "gpu.md")]
API_MARK = re.compile(r"<!-- mixkit-api: ([\w.]+)( optional)? -->")
DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.M)
# the nn.Module hooks that mkdocs.yml's filters leave out of the pages
NOT_API = {"forward", "extra_repr", "get_extra_state", "set_extra_state"}
# public members that have no docstring yet; a new one is a warning (remove a name once it has one)
TO_DOCUMENT: set = set()  # public members allowed to lack a docstring (none)
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")


def _section(docs: Path, pattern: str, first: list[str]) -> list[str]:
    base = pattern.split("*")[0]
    found = sorted(p.relative_to(docs).as_posix() for p in docs.glob(pattern))
    head = [base + name for name in first if base + name in found]
    return head + [p for p in found if p not in head]


def on_config(config):
    docs = Path(config["docs_dir"])
    nav = [{title: page} for title, page in TOP[:2] if (docs / page).is_file()]
    for title, pattern, first in SECTIONS[:3]:
        pages = _section(docs, pattern, first)
        if pages:
            nav.append({title: pages})
    nav += [{title: page} for title, page in TOP[2:] if (docs / page).is_file()]
    title, pattern, first = SECTIONS[3]
    pages = _section(docs, pattern, first)
    if pages:
        nav.append({title: pages})
    config["nav"] = nav
    return config


def _api_blocks(package: str, optional: bool = False) -> str:
    """One ``:::`` block per class or function of ``package.__all__``; with ``optional``, nothing when the
    module does not exist (any other import error is raised)."""
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as e:
        if optional and e.name is not None and package.startswith(e.name) and e.name.startswith("mixkit"):
            return ""
        raise
    out = [f"## `{package}`\n"] if optional else []
    names = getattr(module, "__all__", None)
    if names is None:  # the public classes and functions the module defines
        names = [n for n, o in vars(module).items() if not n.startswith("_")
                 and getattr(o, "__module__", None) == package]
    for name in names:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants are described in the page's text
        out.append(f"::: {obj.__module__}.{obj.__qualname__}\n")
    return "\n".join(out)


def _undocumented(path: str) -> list[str]:
    """``path`` and its public methods and properties that have no docstring of their own."""
    module, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        obj = importlib.import_module(path)
    doc = inspect.getdoc(obj) or ""
    missing = [] if doc else [path]
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_") or name in NOT_API or f"{path}.{name}" in TO_DOCUMENT:
                continue
            fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if not inspect.isfunction(fn):
                continue
            # an override may keep its base class's docstring (inspect.getdoc follows the MRO); a property
            # may be described in the class docstring instead (an ``Attributes:`` entry)
            inherited = inspect.getdoc(member if isinstance(member, property) else getattr(obj, name))
            described = isinstance(member, property) and re.search(rf"``{name}``|^\s+{name}:", doc, re.M)
            if not inherited and not described:
                missing.append(f"{path}.{name}")
    elif inspect.ismodule(obj):
        for name in getattr(obj, "__all__", []):
            member = getattr(obj, name)
            if (inspect.isfunction(member) or inspect.isclass(member)) and not member.__doc__:
                missing.append(f"{path}.{name}")
    return missing


def on_page_markdown(markdown, page, config, files):
    markdown = API_MARK.sub(lambda m: _api_blocks(m.group(1), bool(m.group(2))), markdown)
    for path in DIRECTIVE.findall(markdown):
        for name in _undocumented(path):
            log.warning(f"{page.file.src_uri}: {name} has no docstring")
    return _outside_links(markdown, page, config)


def _outside_links(markdown, page, config):
    docs = Path(config["docs_dir"]).resolve()
    root = Path(config["config_file_path"]).resolve().parent  # the repository: mkdocs.yml's folder

    def fix(m):
        target = m.group("target")
        if "://" in target or target.startswith(("/", "mailto:")):
            return m.group(0)
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), target))
        if not rel.startswith("../"):
            return m.group(0)  # inside docs/: MkDocs checks it
        path = (docs / rel).resolve()
        try:
            repo_path = path.relative_to(root).as_posix()
        except ValueError:
            repo_path = None
        if repo_path is None or not path.exists():
            log.warning(f"{page.file.src_uri}: the link to {target!r} points at no file of the repository")
            return m.group(0)
        text = m.group("text")
        return text if repo_path in text else f"{text} (`{repo_path}`)"

    return LINK.sub(fix, markdown)
