"""The documentation stays true to the code, and measured figures live only in BENCHMARKS.md.

Rules, each checked on this checkout and shown to fail on a violation planted in a temporary copy (as
tests/unit/test_layering.py does for the import contracts):

- **Figures.** BENCHMARKS.md is written by `make bench`. No other Markdown file quotes a speed-up or timing
  figure in the style BENCHMARKS.md writes them (`FIGURE`: a number glued to x or ×, "1.22x", "171×",
  "0.35-0.62x"; a number of µs, us or ns, "28 µs", "142/149 us"; a decimal or slash-joined number of ms or
  s, "0.60 s", "0.270 / 0.678 ms"; a rate in rows/s or req/s, "203k rows/s"). Whole numbers of ms or s are
  allowed: they are settings and cost-model inputs ("200 ms", "30 s"), not measurements. The one exception:
  a decision record (docs/decisions/NNNN-*.md) may quote figures under its `## What was measured` heading,
  the historical measurement that drove the decision, and that section must carry a date (YYYY-MM-DD, or
  YYYY-MM where the day was not recorded).
- **The map.** Every module under greenlight/, pipelines/, deploy/ and src/ is named in ARCHITECTURE.md by
  its path; a package's `__init__.py` is covered by its folder's path (`deploy/batch/`), and a glob path
  (`deploy/batch/*.py`) is the explicit marker that covers every module of a folder. Every path the map
  names (under a top-level folder of the repository) and every dotted module it names exists. The map is
  at most 400 lines.
- **Links and references.** Relative Markdown links resolve, anchors into Markdown files name a heading,
  and every `ARCHITECTURE.md ("Section")` reference in code or docs names a heading of the map.
- **Decision records.** Numbers are unique, every record is listed in docs/decisions/README.md, and each
  has Context, Decision and Consequences sections.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP = "ARCHITECTURE.md"
MAP_MAX_LINES = 400
SELF = "tests/unit/test_docs.py"  # its examples and plants are not references
CODE_PACKAGES = ("greenlight", "pipelines", "deploy", "src")
PATH_ROOTS = (*CODE_PACKAGES, "tests", "benchmarks", "docs", "notebooks", ".ci")
DECISIONS = "docs/decisions"
MEASURED_HEADING = "## What was measured"
SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist"}

_NUM = r"\d(?:[\d,]*\d)?(?:\.\d+)?"
FIGURE = re.compile(
    rf"(?<![\w.]){_NUM}[x×](?!\w)"                                # speed-ups and ratios: 1.22x, 171×
    rf"|(?<![\w.]){_NUM}(?:\s?/\s?{_NUM})*\s?(?:µs|us|ns)\b"       # sub-millisecond timings: 28 µs, 142/149 us
    rf"|(?<![\w.])\d+\.\d+(?:\s?/\s?{_NUM})*\s?(?:ms|s)\b"         # decimal timings: 0.60 s, 0.270 / 0.678 ms
    rf"|(?<![\w.]){_NUM}(?:\s?/\s?{_NUM})+\s?(?:ms|s)\b"           # slash-joined timings: 142/149 ms
    rf"|(?<![\w.]){_NUM}\s?[kM]?\s?(?:rows|req|requests)/s\b"      # rates: 203k rows/s, 2,973 req/s
)
DATE = re.compile(r"\b20\d\d-\d\d(?:-\d\d)?\b")  # a day, or a month when the day was not recorded
RECORD = re.compile(r"^(\d{4})-[a-z0-9-]+\.md$")
_ROOTS = "|".join(re.escape(r) for r in PATH_ROOTS)
_PATH = re.compile(rf"(?<![\w/.-])((?:{_ROOTS})/[\w./*-]*)")
_DOTTED = re.compile(rf"(?<![\w./-])((?:{'|'.join(CODE_PACKAGES)})(?:\.\w+)+)")
_FILE_SUFFIXES = {"toml", "md", "py", "json", "yaml", "yml", "txt", "csv", "cfg", "ini"}
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_SECTION_REF = re.compile(r"ARCHITECTURE\.md,?\s*\(?\s*\\?\"([^\"\\]+)\\?\"")
_REFERENCING = (".py", ".md", ".yaml", ".yml", ".importlinter", ".ipynb")


# ---- what the checks read ----------------------------------------------------------------------

def _walk(root: Path):
    """Every file of the repository, without dot-folders (.git, .venv, homes), caches and build output."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (d.startswith(".") and d != ".ci") and d not in SKIP_DIRS
                         and not d.endswith(".egg-info"))
        for name in sorted(files):
            yield Path(folder) / name


def markdown_files(root: Path) -> list[Path]:
    return [p for p in _walk(root) if p.suffix == ".md"]


def headings(path: Path) -> list[str]:
    in_code, found = False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            found.append(line.lstrip("#").strip())
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _is_record(root: Path, path: Path) -> bool:
    return path.parent == root / DECISIONS and RECORD.match(path.name) is not None


# ---- the checks: each returns its violations as "file:line: what" --------------------------------

def figure_quotes(root: Path) -> list[str]:
    """Speed-up and timing figures outside BENCHMARKS.md and outside a record's 'What was measured'."""
    found = []
    for path in markdown_files(root):
        rel = path.relative_to(root).as_posix()
        if rel == "BENCHMARKS.md":
            continue
        record, measured = _is_record(root, path), False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("#"):
                measured = line.strip() == MEASURED_HEADING
            if record and measured:
                continue
            found += [f"{rel}:{number}: {m.group()!r}" for m in FIGURE.finditer(line)]
    return found


def undated_measurements(root: Path) -> list[str]:
    """Decision records whose 'What was measured' section names no date."""
    found = []
    for path in sorted((root / DECISIONS).glob("*.md")):
        if not _is_record(root, path):
            continue
        text = path.read_text(encoding="utf-8")
        if MEASURED_HEADING in text:
            section = re.split(r"^#{1,2} ", text.split(MEASURED_HEADING, 1)[1], flags=re.M)[0]
            if not DATE.search(section):
                found.append(f"{path.relative_to(root).as_posix()}: '{MEASURED_HEADING}' without a date")
    return found


def named_paths(text: str) -> set[str]:
    return {m.group(1).rstrip(".,:;") for m in _PATH.finditer(text)}


def missing_from_map(root: Path) -> list[str]:
    """Modules of the code packages the map does not name (by path, folder for __init__.py, or glob)."""
    names = named_paths((root / MAP).read_text(encoding="utf-8"))
    globbed = {p.relative_to(root).as_posix() for name in names if "*" in name for p in root.glob(name)}
    missing = []
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(root).as_posix()
            folder = path.parent.relative_to(root).as_posix()
            if rel in names or rel in globbed or (path.name == "__init__.py" and {folder, folder + "/"} & names):
                continue
            missing.append(rel)
    return missing


def _module_exists(root: Path, dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[-1] in _FILE_SUFFIXES:  # a file name such as greenlight.toml, not a module
        return True
    for cut in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if not base.is_dir() else base / "__init__.py"
        if module.exists():
            rest = parts[cut:]
            if not rest:
                return True
            source = module.read_text(encoding="utf-8")
            return len(rest) == 1 and re.search(rf"\b{re.escape(rest[0])}\b", source) is not None
    return False


def stale_map_names(root: Path) -> list[str]:
    """Paths and dotted modules the map names that do not exist."""
    text = (root / MAP).read_text(encoding="utf-8")
    stale = [f"{MAP}: {name} does not exist" for name in sorted(named_paths(text))
             if not (any(root.glob(name)) if "*" in name else (root / name).exists())]
    stale += [f"{MAP}: {name} is no module (or attribute of one)" for name in sorted(set(_DOTTED.findall(text)))
              if not _module_exists(root, name)]
    return stale


def map_too_long(root: Path) -> list[str]:
    lines = len((root / MAP).read_text(encoding="utf-8").splitlines())
    return [f"{MAP} has {lines} lines (at most {MAP_MAX_LINES}); rationale belongs in {DECISIONS}/"] \
        if lines > MAP_MAX_LINES else []


def broken_links(root: Path) -> list[str]:
    """Relative Markdown links to nothing, and anchors that name no heading."""
    broken = []
    for path in markdown_files(root):
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):  # code spans hold no links
                if re.match(r"[a-z]+:", target):
                    continue
                file, _, anchor = target.partition("#")
                dest = (path.parent / file).resolve() if file else path
                if not dest.exists():
                    broken.append(f"{rel}:{number}: {target} does not exist")
                elif anchor and dest.suffix == ".md" and anchor not in {slug(h) for h in headings(dest)}:
                    broken.append(f"{rel}:{number}: {target} names no heading of {dest.name}")
    return broken


def stale_section_references(root: Path) -> list[str]:
    """`ARCHITECTURE.md ("Section")` references, in code and docs, to a section the map does not have."""
    titles = headings(root / MAP)
    stale = []
    for path in _walk(root):
        if not path.name.endswith(_REFERENCING) or path.relative_to(root).as_posix() == SELF:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for section in _SECTION_REF.findall(line):
                if not any(section in title for title in titles):
                    stale.append(f"{path.relative_to(root).as_posix()}:{number}: no section {section!r} in {MAP}")
    return stale


def record_problems(root: Path) -> list[str]:
    """Duplicate numbers, records missing from the index, records without their sections."""
    folder = root / DECISIONS
    index = (folder / "README.md").read_text(encoding="utf-8")
    records = sorted(p for p in folder.glob("*.md") if _is_record(root, p))
    problems, numbers = [], {}
    for path in records:
        numbers.setdefault(RECORD.match(path.name).group(1), []).append(path.name)
        if f"]({path.name})" not in index:
            problems.append(f"{DECISIONS}/{path.name}: not listed in {DECISIONS}/README.md")
        text = path.read_text(encoding="utf-8")
        problems += [f"{DECISIONS}/{path.name}: no '## {s}' section" for s in ("Context", "Decision", "Consequences")
                     if not re.search(rf"^## {s}\s*$", text, flags=re.M)]
    problems += [f"{DECISIONS}: number {n} used by {', '.join(names)}" for n, names in numbers.items() if len(names) > 1]
    return problems


# ---- this checkout ------------------------------------------------------------------------------

def test_no_markdown_outside_benchmarks_quotes_a_measured_figure():
    assert figure_quotes(ROOT) == [], "link the section of BENCHMARKS.md instead of copying its figures"


def test_every_measurement_in_a_decision_record_is_dated():
    assert undated_measurements(ROOT) == []


def test_the_map_names_every_module():
    assert missing_from_map(ROOT) == [], f"name each module in {MAP} (or its folder's glob, e.g. deploy/x/*.py)"


def test_every_path_and_module_the_map_names_exists():
    assert stale_map_names(ROOT) == []


def test_the_map_stays_short():
    assert map_too_long(ROOT) == []


def test_markdown_links_and_anchors_resolve():
    assert broken_links(ROOT) == []


def test_references_to_sections_of_the_map_name_a_section():
    assert stale_section_references(ROOT) == []


def test_decision_records_are_numbered_indexed_and_complete():
    assert record_problems(ROOT) == []


# ---- the pattern on its own: today's copies are caught, settings are not -------------------------

@pytest.mark.parametrize("figure", ["142/149 us", "1.76x/2.28x", "0.35-0.62x", "1.22x", "152.1 us", "171x",
                                    "171×", "0.60 s", "28 µs", "0.270 / 0.678 ms", "203k rows/s", "2,973 req/s",
                                    "26 ns", "24.0 ms"])
def test_the_pattern_catches_figures_written_as_benchmarks_writes_them(figure):
    assert FIGURE.search(f"it ran at {figure} here")


@pytest.mark.parametrize("text", ["442 × 10", "50,000 x 10", "x86_64", "1,769 MB", "4 MiB", "200 ms a request",
                                  "a 30 s busy timeout", "0x1F", "Python 3.12", "2026-11-30", "v2 -> v1",
                                  "10^9 requests", "1.3 × arrays", "sha256:abc"])
def test_the_pattern_leaves_settings_and_names_alone(text):
    assert not FIGURE.search(text)


# ---- planted violations in a temporary copy -----------------------------------------------------

@pytest.fixture
def copy(tmp_path) -> Path:
    """The repository's code and docs, copied (no .git, .venv or caches)."""
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".greenlight*", ".pytest_cache")
    for entry in ROOT.iterdir():
        if entry.name in {".git", ".venv"} or entry.name.endswith(".egg-info") or entry.name.startswith(".greenlight"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, tmp_path / entry.name, ignore=ignore)
        else:
            shutil.copy2(entry, tmp_path / entry.name)
    return tmp_path


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_a_copied_figure_is_caught(copy):
    _append(copy / "README.md", "\nOne row takes 142/149 us, 1.76x/2.28x faster; batches 0.35-0.62x.\n")
    _append(copy / "ARCHITECTURE.md", "\nCold start: 0.60 s.\n")
    found = figure_quotes(copy)
    assert [f.split(": ", 1)[1] for f in found] == ["'0.60 s'", "'142/149 us'", "'1.76x'", "'2.28x'", "'0.62x'"]
    assert all(f.startswith(("README.md:", "ARCHITECTURE.md:")) for f in found)


def test_a_figure_in_a_record_is_allowed_only_in_its_dated_measured_section(copy):
    record = sorted((copy / DECISIONS).glob("0*.md"))[0]
    _append(record, "\n## Consequences\n\nIt made batches 1.22x faster.\n")
    assert figure_quotes(copy) == [f"{DECISIONS}/{record.name}:{len(record.read_text().splitlines())}: '1.22x'"]
    planted = copy / DECISIONS / "0999-planted.md"
    planted.write_text("# 0999. Planted\n\n## Context\n\n## Decision\n\n## Consequences\n\n"
                       "## What was measured\n\n`make bench`: 171x.\n", encoding="utf-8")
    assert undated_measurements(copy) == [f"{DECISIONS}/0999-planted.md: '{MEASURED_HEADING}' without a date"]
    assert record_problems(copy) == [f"{DECISIONS}/0999-planted.md: not listed in {DECISIONS}/README.md"]


def test_a_new_module_missing_from_the_map_is_caught(copy):
    (copy / "deploy" / "batch" / "planted.py").write_text('"""A module nobody mapped."""\n', encoding="utf-8")
    (copy / "greenlight" / "planted").mkdir()
    (copy / "greenlight" / "planted" / "__init__.py").write_text("", encoding="utf-8")
    assert missing_from_map(copy) == ["greenlight/planted/__init__.py", "deploy/batch/planted.py"]
    _append(copy / MAP, "\n`deploy/batch/*.py` and `greenlight/planted/`: planted.\n")
    assert missing_from_map(copy) == []


def test_a_path_the_map_names_that_does_not_exist_is_caught(copy):
    _append(copy / MAP, "\n`deploy/batch/gone.py`, `tests/unit/*.nothing` and `deploy.batch.worker.no_such_name`.\n")
    assert stale_map_names(copy) == [f"{MAP}: deploy/batch/gone.py does not exist",
                                     f"{MAP}: tests/unit/*.nothing does not exist",
                                     f"{MAP}: deploy.batch.worker.no_such_name is no module (or attribute of one)"]


def test_a_long_map_is_caught(copy):
    _append(copy / MAP, "\n" * MAP_MAX_LINES)
    assert map_too_long(copy) == [f"{MAP} has {len((copy / MAP).read_text().splitlines())} lines "
                                  f"(at most {MAP_MAX_LINES}); rationale belongs in {DECISIONS}/"]


def test_broken_links_and_stale_section_references_are_caught(copy):
    _append(copy / "README.md", "\nSee [gone](docs/gone.md) and [serving](BENCHMARKS.md#no-such-section).\n")
    _append(copy / "deploy" / "handler.py", '\n# see ARCHITECTURE.md ("No such section")\n')
    assert [b.split(": ", 1)[1] for b in broken_links(copy)] == [
        "docs/gone.md does not exist", "BENCHMARKS.md#no-such-section names no heading of BENCHMARKS.md"]
    assert [r.split(": ", 1)[1] for r in stale_section_references(copy)] == [f"no section 'No such section' in {MAP}"]
