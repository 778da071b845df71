"""The repository explains itself: what its code, configs and Markdown cite is in it.

  * a citation of a Markdown page in a comment, docstring or flagfile names it by its path
    from the repository root (`docs/design/selection.md`), the page exists, and the section it
    names -- `#anchor`, or `, "Section title"` after the path -- is a heading of that page
    (GitHub's anchors: lower case, punctuation dropped, spaces to '-');
  * a bare design page name (`selection.md`) is a citation a fresh clone cannot follow;
  * nothing refers to the design notes the project was started from, outside the repository
    (a `spec` or `shared` folder);
  * every relative link of README.md and docs/ resolves, anchors included;
  * README.md is a front page: at most 150 lines, the two commands first, the test command
    the one .ci/run runs, and the study headline's markers that launch.study rewrites between.
The last class checks that these checks catch what they are meant to, on a made-up tree.
"""
import os
import re
import shutil
import tempfile

import tensorflow as tf

from tfattncut.study.page import HEADLINE_END, HEADLINE_START

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGN = "docs/design"
README = "README.md"
CI_RUN = ".ci/run"
README_MAX_LINES = 150
# Where citations live: the code, the presets and the build files.
CODE_DIRS = ("tfattncut", "launch", "tests", "configs")
CODE_FILES = ("setup.py", "BUILD", "build_defs.bzl", CI_RUN)
CODE_EXTENSIONS = (".py", ".cfg", ".bzl")
# This file holds broken citations on purpose (the self-checks' made-up tree).
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT)

# A Markdown file named in text, with the section that follows it, if any.
CITATION = re.compile(r'(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)(?![\w-])'
                      r'(?:#([\w-]+)|,\s*"([^"]+)")?')
OUTSIDE = re.compile(r"(?<![\w-])(?:shared/spec|shared|spec)/")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`[^`\n]*`")


def github_anchor(title):
    """A heading's anchor as GitHub makes it: the text without Markdown's backticks, lower
    case, every character but letters, digits, '_', '-' and spaces dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")


def prose_lines(text):
    """The lines of a Markdown text outside fenced code blocks, as (number, line)."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield number, line


def anchors(path):
    """The anchors of a Markdown file's headings (a repeated one also as GitHub numbers it)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            anchor = base = github_anchor(match.group(1))
            repeat = 0
            while anchor in found:
                repeat += 1
                anchor = f"{base}-{repeat}"
            found.add(anchor)
    return found


def design_pages(root):
    return sorted(name for name in os.listdir(os.path.join(root, DESIGN)) if name.endswith(".md"))


def code_files(root):
    """The files that may cite a page, relative to root."""
    found = [name for name in CODE_FILES if os.path.isfile(os.path.join(root, name))]
    for top in CODE_DIRS:
        for folder, subfolders, names in os.walk(os.path.join(root, top)):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            found += [os.path.relpath(os.path.join(folder, name), root)
                      for name in sorted(names) if name.endswith(CODE_EXTENSIONS)]
    return [path for path in found if path != THIS_FILE]


def markdown_files(root):
    """README.md and every Markdown file under docs/, relative to root."""
    found = [README] if os.path.isfile(os.path.join(root, README)) else []
    for folder, _, names in os.walk(os.path.join(root, "docs")):
        found += [os.path.relpath(os.path.join(folder, name), root)
                  for name in sorted(names) if name.endswith(".md")]
    return sorted(found)


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def section_problem(root, page, anchor, title):
    """Why the section a citation names is not in `page` (a path from root), or None."""
    wanted = anchor or (github_anchor(" ".join(title.replace("#", " ").split())) if title
                        else None)
    if wanted is None or wanted in anchors(os.path.join(root, page)):
        return None
    return f"{page} has no section #{wanted}"


def citation_problems(root, path):
    """One line per citation of `path` (a code file or flagfile) that a clone cannot follow."""
    text = read(root, path)
    names = set(design_pages(root))
    problems = []
    for match in CITATION.finditer(text):
        cited, anchor, title = match.groups()
        where = f"{path}:{line_of(text, match.start())}"
        if cited.startswith("docs/") or cited == README:
            if not os.path.isfile(os.path.join(root, cited)):
                problems.append(f"{where}: cites {cited}, which does not exist")
                continue
            problem = section_problem(root, cited, anchor, title)
            if problem:
                problems.append(f"{where}: {problem}")
        elif os.path.basename(cited) in names:
            problems.append(f"{where}: cites {cited}; expected its path, "
                            f"{DESIGN}/{os.path.basename(cited)}")
    return problems


def outside_problems(root, path):
    text = read(root, path)
    return [f"{path}:{line_of(text, match.start())}: refers to {match.group(0)!r}, which is not "
            f"in the repository (cite {DESIGN}/ instead)" for match in OUTSIDE.finditer(text)]


def link_problems(root, path):
    """One line per relative link of a Markdown file that leads nowhere."""
    problems = []
    folder = os.path.dirname(path)
    for number, line in prose_lines(read(root, path)):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            target = match.group(1)
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:: not this repository's
                continue
            file_part, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(folder, file_part)) if file_part else path
            where = f"{path}:{number}: link {target!r}"
            if not os.path.exists(os.path.join(root, linked)):
                problems.append(f"{where}: {linked} does not exist")
            elif anchor and linked.endswith(".md"):
                problem = section_problem(root, linked, anchor, None)
                if problem:
                    problems.append(f"{where}: {problem}")
    return problems


def readme_problems(root):
    """Why README.md is not the front page it should be, one line per problem."""
    text = read(root, README)
    lines = text.splitlines()
    problems = []
    if len(lines) > README_MAX_LINES:
        problems.append(f"{README} has {len(lines)} lines; expected at most {README_MAX_LINES} "
                        "(move the rest to a page under docs/ and link it)")
    ci_command = [line for line in read(root, CI_RUN).splitlines()
                  if line.strip() and not line.startswith("#")][-1]
    blocks = re.findall(r"^```bash\n(.*?)\n```$", text, re.S | re.M)
    if len(blocks) < 2 or blocks[1] != ci_command:
        problems.append(f"{README}'s second command block should be {CI_RUN}'s command "
                        f"{ci_command!r}; found {blocks[1] if len(blocks) > 1 else None!r}")
    if not blocks or "python -m launch.train --flagfile=configs/demo.cfg" not in blocks[0]:
        problems.append(f"{README}'s first command block should install and train the demo "
                        "(configs/demo.cfg)")
    for marker in (HEADLINE_START, HEADLINE_END):
        if lines.count(marker) != 1:
            problems.append(f"{README} has the line {marker!r} {lines.count(marker)} times; "
                            "launch.study --readme rewrites what lies between the two, once")
    if all(lines.count(m) == 1 for m in (HEADLINE_START, HEADLINE_END)) and (
            lines.index(HEADLINE_START) > lines.index(HEADLINE_END)):
        problems.append(f"{README}: {HEADLINE_END!r} comes before {HEADLINE_START!r}")
    return problems


def problems_of(check, root, paths):
    """What `check(root, path)` finds over paths, in order."""
    return [problem for path in paths for problem in check(root, path)]


def all_problems(root):
    code, markdown = code_files(root), markdown_files(root)
    return (problems_of(citation_problems, root, code)
            + problems_of(outside_problems, root, code + markdown)
            + problems_of(link_problems, root, markdown) + readme_problems(root))


class DocsTest(tf.test.TestCase):

    def test_github_anchor(self):
        self.assertEqual(github_anchor("Local + global"), "local--global")
        self.assertEqual(github_anchor("The reference's window layout"),
                         "the-references-window-layout")
        self.assertEqual(github_anchor("`--helpfull` and QS-Attn"), "--helpfull-and-qs-attn")

    def test_citations_name_pages_and_sections_that_exist(self):
        self.assertEqual(problems_of(citation_problems, ROOT, code_files(ROOT)), [])

    def test_nothing_refers_outside_the_repository(self):
        paths = code_files(ROOT) + markdown_files(ROOT)
        self.assertEqual(problems_of(outside_problems, ROOT, paths), [])

    def test_markdown_links_resolve(self):
        self.assertEqual(problems_of(link_problems, ROOT, markdown_files(ROOT)), [])

    def test_readme_is_a_front_page(self):
        self.assertEqual(readme_problems(ROOT), [])


class DocsChecksCatchProblemsTest(tf.test.TestCase):
    """The checks above on a made-up tree: a clean one passes, each flaw is reported once."""

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(dir=self.get_temp_dir())
        self.addCleanup(shutil.rmtree, self.root)
        self.write(f"{DESIGN}/losses.md", "# Losses\n\n## GAN losses\n\n## Update step\n\n"
                   "```\n## not a heading\n```\n")
        self.write(CI_RUN, "#!/usr/bin/env bash\n# CI\npython -m pytest -q tests\n")
        self.write(README, "\n".join([
            "# x", "", "```bash", "pip install -e . && python -m launch.train "
            "--flagfile=configs/demo.cfg", "```", "", "```bash", "python -m pytest -q tests",
            "```", "", "[losses](docs/design/losses.md#gan-losses)", HEADLINE_START, "numbers",
            HEADLINE_END, ""]))
        self.write("tfattncut/losses.py", '"""docs/design/losses.md#update-step and '
                   'docs/design/losses.md, "GAN losses"; writes compare.md."""\n')

    def write(self, path, text):
        os.makedirs(os.path.dirname(os.path.join(self.root, path)), exist_ok=True)
        with open(os.path.join(self.root, path), "w", encoding="utf-8") as f:
            f.write(text)

    def assertOneProblem(self, expected):
        problems = all_problems(self.root)
        self.assertLen(problems, 1, problems)
        self.assertIn(expected, problems[0])

    def test_clean_tree_passes(self):
        self.assertEqual(all_problems(self.root), [])

    def test_missing_page(self):
        self.write("configs/cut.cfg", "# docs/design/training.md#presets\n--model=cut\n")
        self.assertOneProblem("configs/cut.cfg:1: cites docs/design/training.md, which does "
                              "not exist")

    def test_missing_anchor(self):
        self.write("launch/train.py", "# docs/design/losses.md#patchnce\n")
        self.assertOneProblem("launch/train.py:1: docs/design/losses.md has no section "
                              "#patchnce")

    def test_missing_section_title(self):
        self.write("launch/train.py", '"""See docs/design/losses.md, "Not\n a section"."""\n')
        self.assertOneProblem("docs/design/losses.md has no section #not-a-section")

    def test_heading_inside_code_block_is_no_section(self):
        self.write("launch/train.py", "# docs/design/losses.md#not-a-heading\n")
        self.assertOneProblem("has no section #not-a-heading")

    def test_bare_page_name(self):
        self.write("tests/test_x.py", "# NumPy versions of losses.md.\n")
        self.assertOneProblem("tests/test_x.py:1: cites losses.md; expected its path, "
                              "docs/design/losses.md")

    def test_outside_spec(self):
        outside = os.path.join("..", "shared", "spec", "")
        self.write("setup.py", f"# the algorithms and defaults are in {outside}\n")
        self.assertOneProblem("setup.py:1: refers to 'shared/spec/'")

    def test_broken_markdown_link(self):
        self.write("docs/usage.md", "[serving](serving.md) and [x](design/losses.md#nope)\n")
        problems = all_problems(self.root)
        self.assertEqual(problems, [
            "docs/usage.md:1: link 'serving.md': docs/serving.md does not exist",
            "docs/usage.md:1: link 'design/losses.md#nope': docs/design/losses.md has no "
            "section #nope"])

    def test_readme_too_long_and_wrong_test_command(self):
        text = read(self.root, README).replace("python -m pytest -q tests\n```",
                                                "python -m pytest tests\n```")
        self.write(README, text + "line\n" * README_MAX_LINES)
        problems = all_problems(self.root)
        self.assertLen(problems, 2, problems)
        self.assertIn("expected at most 150", problems[0])
        self.assertIn("should be .ci/run's command 'python -m pytest -q tests'", problems[1])

    def test_readme_without_headline_markers(self):
        self.write(README, read(self.root, README).replace(HEADLINE_END + "\n", ""))
        self.assertOneProblem("times; launch.study --readme rewrites")
