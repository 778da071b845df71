"""BUILD describes the package as its files and imports are (checked without Bazel).

BUILD and the macros it loads (build_defs.bzl) are run by a Starlark interpreter
(starlark-rust, through starlark-pyo3) whose Bazel functions are stand-ins: glob() lists this
checkout's files, the py_* rules record the targets they are given. On those targets:
  * every .py file under tfattncut/, launch/ and tests/ (but tests/fixtures/, data) is in the
    srcs of exactly one py_library or py_binary, and every tests/**/test_*.py is run by
    exactly one py_test, whose main is tests/bazel_main.py (pytest on the file): a file in a
    globbed folder is covered by itself, a file in a new folder is not until the folder has
    its glob;
  * a py_test is tagged "slow" exactly when its module sets `pytestmark = pytest.mark.slow`;
  * deps are py_library targets or requirement()s of known PyPI names, and data entries are
    files or targets that exist;
  * a target's deps are what its sources import: each first-party import (and conftest.py,
    which pytest loads for every test) is in its srcs or its deps' srcs, transitively, each
    third-party import is covered by a requirement() there, each dep is imported directly by
    one of its sources, and no dependency cycle exists;
  * a library is one folder's files (or part of one), named for the folder.
The last test class checks that these checks catch what they are meant to, on copies of the
tree with a file added.
"""
import ast
import collections
import glob
import os
import shutil
import sys
import tempfile

import starlark
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD, MACROS = "BUILD", "build_defs.bzl"
CODE_DIRS = ("tfattncut", "launch", "tests")
FIXTURES = "tests/fixtures/"
CONFTEST = "tests/conftest.py"
REQUIREMENT_LABEL = "@pip//"
LOADABLE = {"@rules_python//python:defs.bzl": ("py_binary", "py_library", "py_test"),
            "@pip//:requirements.bzl": ("requirement",)}
LOADED_MACROS = ("entry_point_labels", "py_entry_points", "py_test_folder")
SLOW_MARK = "pytestmark = pytest.mark.slow"

# Third-party import name (or dotted prefix) -> its PyPI name, as given to requirement().
IMPORT_TO_REQUIREMENT = {
    "PIL": "pillow",
    "absl": "absl-py",
    "apache_beam": "apache-beam",
    "google.protobuf": "protobuf",
    "grpc": "grpcio",
    "keras": "keras",
    "numpy": "numpy",
    "pytest": "pytest",
    "scipy": "scipy",
    "starlark": "starlark-pyo3",
    "tensorboard": "tensorboard",
    "tensorflow": "tensorflow",
    "tensorflow_gan": "tensorflow-gan",
    "tensorflow_serving": "tensorflow-serving-api",
    # launch/torch_reference.py only, run by an interpreter the user provides: not installed.
    "torch": "torch",
}
# Needed with no import of their own: TF-GAN's eval files, which this test loads by path,
# import these two.
RUNTIME_REQUIREMENTS = {
    "tests/metrics/test_tfgan_reference.py": {"tensorflow-probability", "tf-keras"}}
KNOWN_REQUIREMENTS = (set(IMPORT_TO_REQUIREMENT.values())
                      | set().union(*RUNTIME_REQUIREMENTS.values()))
# Calls whose constant first argument names a module imported at run time.
DYNAMIC_IMPORTS = ("import_module", "find_spec", "__import__")

# group: the BUILD statement that gave the target its deps (":name", or a macro call's).
Target = collections.namedtuple("Target", "kind name srcs deps data tags main args group")
# What every py_test runs: pytest on the test file given as its one argument.
PYTEST_MAIN = "tests/bazel_main.py"


def _module_name(path):
    """tfattncut/selection/base.py -> tfattncut.selection.base; a package's __init__.py -> the
    package."""
    parts = path[:-len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class Checkout:
    """The targets BUILD defines in the tree at `root`, and what that tree's files import."""

    def __init__(self, root):
        self.root, self.targets, self.macros = root, {}, {}
        self._imports, self._group = {}, None
        module = starlark.Module()
        module.add_callable("glob", self._glob)
        build_dialect = starlark.Dialect.standard()
        build_dialect.enable_def = False  # as in Bazel: BUILD files call, .bzl files define
        self._evaluate(module, BUILD, build_dialect)

    # ---- evaluating BUILD -------------------------------------------------------------------

    def _evaluate(self, module, path, dialect=None):
        with open(os.path.join(self.root, path), encoding="utf-8") as f:
            ast_module = starlark.parse(path, f.read(), dialect or starlark.Dialect.standard())
        starlark.eval(module, ast_module, starlark.Globals.standard(),
                      starlark.FileLoader(self._load))

    def _load(self, label):
        module = starlark.Module()
        if label == "//:" + MACROS:
            macros = starlark.Module()
            self._evaluate(macros, MACROS)
            self.macros = {name: macros[name] for name in ("SLOW_TESTS", "LONG_TESTS")}
            frozen = macros.freeze()
            for symbol in LOADED_MACROS:
                module.add_callable(symbol, self._macro(frozen, symbol))
        elif label in LOADABLE:
            for symbol in LOADABLE[label]:
                module.add_callable(symbol, self._rule(symbol) if symbol.startswith("py_")
                                    else lambda name: REQUIREMENT_LABEL + name)
        else:
            raise ValueError(f"load({label!r}): BUILD loads only //:{MACROS} and {list(LOADABLE)}")
        return module.freeze()

    def _macro(self, frozen, symbol):
        """Calls `symbol` of the frozen macro module; the targets it makes share one group,
        whose deps are given once."""
        def call(*args, **kwargs):
            self._group = (f"{symbol}(name = \"{kwargs['name']}\")" if "name" in kwargs
                           else f"the {symbol}() call")
            try:
                # call_with: its symbol is positional-only, so a macro may take `name`.
                return frozen.call_with(starlark.EvalOptions(), symbol, *args, **kwargs).value
            finally:
                self._group = None
        return call

    def _glob(self, include, exclude=()):
        found = set()
        for pattern in include:
            matches = {os.path.relpath(p, self.root).replace(os.sep, "/")
                       for p in glob.glob(os.path.join(self.root, pattern), recursive=True)
                       if os.path.isfile(p)}
            if not matches:
                raise ValueError(f"glob pattern {pattern!r} matches no file")
            found |= matches
        return sorted(found - set(self._glob(exclude) if exclude else ()))

    def _rule(self, kind):
        def record(name, srcs, deps=(), data=(), main=None, args=(), tags=(), size=None,
                   testonly=False):
            if name in self.targets:
                raise ValueError(f"target {name!r} is defined twice")
            self.targets[name] = Target(kind, name, list(srcs), list(deps), list(data),
                                        list(tags), main, list(args),
                                        self._group or f":{name}")
        return record

    def of_kind(self, kind):
        return [t for t in self.targets.values() if t.kind == kind]

    # ---- what the files need ----------------------------------------------------------------

    def files(self):
        """Every .py file BUILD must cover, as sorted repo-relative POSIX paths."""
        found = []
        for top in CODE_DIRS:
            found += self._glob([top + "/**/*.py"])
        return [f for f in found if not f.startswith(FIXTURES)]

    def _module_file(self, module):
        base = module.replace(".", "/")
        for candidate in (base + "/__init__.py", base + ".py"):
            if os.path.isfile(os.path.join(self.root, candidate)):
                return candidate
        return None

    def _parse(self, path):
        with open(os.path.join(self.root, path), encoding="utf-8") as f:
            return ast.parse(f.read(), filename=path)

    @staticmethod
    def _package_inits(path):
        """The __init__.py files Python runs before `path`'s module."""
        inits, directory = set(), os.path.dirname(path)
        while directory:
            inits.add(directory + "/__init__.py")
            directory = os.path.dirname(directory)
        return inits

    def imports(self, path):
        """[(lineno, (candidate module, ...))] for each import in the file, function-level and
        import_module("x") ones included: the first candidate that is a module is the one
        imported (`from a import b` is a.b if that is a module, else a)."""
        if path not in self._imports:
            tree = self._parse(path)
            package = _module_name(path).split(".")
            if not path.endswith("/__init__.py"):
                package = package[:-1]
            found = []
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [(node.lineno, (alias.name,)) for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    module = (".".join(package[:len(package) - node.level + 1]
                                       + ([node.module] if node.module else []))
                              if node.level else node.module)
                    found += [(node.lineno, (module,) if alias.name == "*"
                               else (f"{module}.{alias.name}", module)) for alias in node.names]
                elif (isinstance(node, ast.Call) and node.args
                      and isinstance(node.args[0], ast.Constant)
                      and isinstance(node.args[0].value, str)
                      and getattr(node.func, "attr", getattr(node.func, "id", None))
                      in DYNAMIC_IMPORTS):
                    found.append((node.lineno, (node.args[0].value,)))
            self._imports[path] = sorted(found)
        return self._imports[path]

    def needs(self, path):
        """(first-party files, PyPI names, problems) that running `path` needs directly: the
        modules it imports with their packages' __init__.py files, its own packages' ones and,
        for a test module, tests/conftest.py."""
        files = self._package_inits(path) | ({CONFTEST} if path.startswith("tests/") else set())
        requirements, problems = set(RUNTIME_REQUIREMENTS.get(path, ())), []
        for lineno, candidates in self.imports(path):
            top = candidates[-1].split(".")[0]
            if top in CODE_DIRS:
                found = next(filter(None, map(self._module_file, candidates)), None)
                if found is None:
                    problems.append(f"{path}:{lineno} imports {candidates[-1]!r}, which is no "
                                    f"file in the repository")
                else:
                    files |= {found} | self._package_inits(found)
            elif top not in sys.stdlib_module_names and top != "__future__":
                parts = candidates[-1].split(".")
                prefixes = (".".join(parts[:end]) for end in range(len(parts), 0, -1))
                name = next(filter(None, map(IMPORT_TO_REQUIREMENT.get, prefixes)), None)
                if name is None:
                    problems.append(f"{path}:{lineno} imports {candidates[-1]!r}, a third-party "
                                    f"module tests/test_build.py does not know: add it to its "
                                    f"IMPORT_TO_REQUIREMENT")
                else:
                    requirements.add(name)
        files.discard(path)
        return files, requirements, problems

    # ---- the checks, each a list of problems ------------------------------------------------

    def holders(self):
        """file -> the py_library / py_binary targets whose srcs hold it."""
        found = collections.defaultdict(list)
        for target in self.targets.values():
            if target.kind != "py_test":
                for src in target.srcs:
                    found[src].append(target.name)
        return found

    def coverage_problems(self):
        holders, problems = self.holders(), []
        tests = self.of_kind("py_test")
        runs = collections.Counter(t.args[0] for t in tests if t.args)
        for path in self.files():
            if len(holders.get(path, ())) != 1:
                problems.append(f"{path} is in the srcs of {len(holders.get(path, ()))} "
                                f"py_library/py_binary targets {holders.get(path, [])}, not "
                                f"one: a new folder needs its glob in BUILD")
            if os.path.basename(path).startswith("test_") and runs[path] != 1:
                problems.append(f"{path} is run by {runs[path]} py_test targets, not one: "
                                f"put its folder in a py_test_folder() in BUILD")
        for test in tests:
            # A test file as its own main would define its classes and run no test.
            if test.main != PYTEST_MAIN or len(test.args) != 1 or test.srcs != [
                    test.args[0], PYTEST_MAIN]:
                problems.append(f":{test.name} must run pytest on its one test file: srcs "
                                f"[FILE, {PYTEST_MAIN}], main {PYTEST_MAIN}, args [FILE]; it "
                                f"has srcs {test.srcs}, main {test.main}, args {test.args}")
                continue
            marked = any(ast.unparse(node) == SLOW_MARK
                         for node in self._parse(test.args[0]).body)
            if ("slow" in test.tags) != marked:
                problems.append(f"{test.args[0]}: tagged slow in BUILD: {'slow' in test.tags}; "
                                f"sets `{SLOW_MARK}`: {marked} (SLOW_TESTS in {MACROS} lists the "
                                f"slow ones)")
        for listed in ("SLOW_TESTS", "LONG_TESTS"):
            problems += [f"{MACROS}: {listed} names {path}, which is no test file"
                         for path in self.macros[listed] if not runs[path]]
        return problems

    def reference_problems(self):
        problems = []
        for target in self.targets.values():
            for dep in target.deps:
                if dep.startswith(REQUIREMENT_LABEL):
                    name = dep[len(REQUIREMENT_LABEL):]
                    if name not in KNOWN_REQUIREMENTS:
                        problems.append(f":{target.name}: requirement({name!r}) is no known PyPI "
                                        f"name {sorted(KNOWN_REQUIREMENTS)}")
                elif dep[1:] not in self.targets or self.targets[dep[1:]].kind != "py_library":
                    problems.append(f":{target.name}: dep {dep!r} is no py_library in BUILD")
            for item in target.data:
                if not (item[1:] in self.targets if item.startswith(":")
                        else os.path.isfile(os.path.join(self.root, item))):
                    problems.append(f":{target.name}: data {item!r} is no target or file")
            folders = {os.path.dirname(src).replace("/", "_") for src in target.srcs}
            # A folder split in parts (the root package) names each part folder_PART.
            if target.kind == "py_library" and not (
                    len(folders) == 1 and f"{target.name}_".startswith(f"{folders.pop()}_")):
                problems.append(f"py_library :{target.name} should hold one folder's files and "
                                f"be named for it; it holds {target.srcs}")
        return problems

    def _closure(self, target):
        """The target and every target it depends on, transitively (defined ones only)."""
        seen, stack = {}, [target]
        while stack:
            current = stack.pop()
            if current.name not in seen:
                seen[current.name] = current
                stack += [self.targets[d[1:]] for d in current.deps if d[1:] in self.targets]
        return list(seen.values())

    def dependency_problems(self):
        holders, problems = self.holders(), []
        used = collections.defaultdict(set)  # group -> the files and requirements it uses
        for target in self.targets.values():
            closure = self._closure(target)
            available = {src for t in closure for src in t.srcs}
            requirements = {d for t in closure for d in t.deps if d.startswith(REQUIREMENT_LABEL)}
            used[target.group] |= set(target.srcs)
            for src in target.srcs:
                files, names, more = self.needs(src)
                problems += more
                used[target.group] |= files | {REQUIREMENT_LABEL + name for name in names}
                problems += [f"{src} (in :{target.name}) needs {path}: add "
                             f"\":{holders.get(path, ['(no target)'])[0]}\" to the deps of "
                             f"{target.group}" for path in sorted(files - available)]
                problems += [f"{src} (in :{target.name}) imports {name}: add requirement(\""
                             f"{name}\") to the deps of {target.group}" for name in sorted(names)
                             if REQUIREMENT_LABEL + name not in requirements]
        for target in self.targets.values():
            for dep in target.deps:
                held = ({dep} if dep.startswith(REQUIREMENT_LABEL)
                        else set(self.targets[dep[1:]].srcs) if dep[1:] in self.targets
                        else None)  # reported by reference_problems
                if held is not None and not held & used[target.group]:
                    problems.append(f"{target.group}: dep {dep!r} is unused (no source of its "
                                    f"targets imports it); remove it")
        return sorted(set(problems), key=problems.index) + self._cycles()

    def _cycles(self):
        state, problems = {}, []

        def visit(name, path):
            if state.get(name) == "active":
                problems.append("dependency cycle: " + " -> ".join(
                    ":" + n for n in path[path.index(name):] + [name]))
            elif name not in state:
                state[name] = "active"
                for dep in self.targets[name].deps:
                    if dep[1:] in self.targets:
                        visit(dep[1:], path + [name])
                state[name] = "done"

        for name in self.targets:
            visit(name, [])
        return problems


class BuildTest(tf.test.TestCase):
    """This checkout's BUILD."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.checkout, cls.error = Checkout(ROOT), None
        except (starlark.StarlarkError, OSError) as error:
            cls.checkout, cls.error = None, error

    def setUp(self):
        super().setUp()
        if self.error:
            self.fail(f"cannot evaluate BUILD: {self.error}")

    def assertNoProblems(self, problems):
        self.assertEmpty(problems, "BUILD does not describe the tree (see tests/test_build.py's "
                         "docstring):\n  " + "\n  ".join(problems))

    def test_every_file_is_covered_once(self):
        self.assertNoProblems(self.checkout.coverage_problems())

    def test_deps_and_data_name_what_exists(self):
        self.assertNoProblems(self.checkout.reference_problems())

    def test_deps_are_what_the_sources_import(self):
        self.assertNoProblems(self.checkout.dependency_problems())

    def test_targets_are_those_of_the_tree(self):
        # A few fixed points of the description, so that an evaluation that records nothing
        # (or everything twice) cannot pass the checks above.
        targets = self.checkout.targets
        self.assertEqual((targets["tests_selection_test_qsattn"].main,
                          targets["tests_selection_test_qsattn"].args),
                         (PYTEST_MAIN, ["tests/selection/test_qsattn.py"]))
        self.assertEqual(targets["launch_train"].srcs, ["launch/train.py"])
        self.assertIn("tfattncut/selection/qsattn.py", targets["tfattncut_selection"].srcs)
        self.assertIn("slow", targets["tests_launch_test_train"].tags)
        self.assertLen(self.checkout.of_kind("py_test"), len(
            [f for f in self.checkout.files() if os.path.basename(f).startswith("test_")]))


class ChecksCatchTest(tf.test.TestCase):
    """The checks on copies of the tree: new files in covered folders need no BUILD edit; a
    file in a new folder, an unknown import or an untagged slow test is reported."""

    def copy(self, files):
        """A copy of the checkout's BUILD inputs with `files` ({path: text}) added; its
        Checkout's problems."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        for name in (BUILD, MACROS):
            shutil.copy(os.path.join(ROOT, name), root)
        for top in CODE_DIRS + ("configs",):
            shutil.copytree(os.path.join(ROOT, top), os.path.join(root, top),
                            ignore=shutil.ignore_patterns("__pycache__"))
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)
        checkout = Checkout(root)
        return (checkout.coverage_problems() + checkout.reference_problems()
                + checkout.dependency_problems())

    def test_new_module_and_test_in_covered_folders_need_no_edit(self):
        self.assertEqual(self.copy({
            "tfattncut/selection/nearest.py": "from tfattncut.selection import base\n",
            "tests/selection/test_nearest.py": "from tfattncut.selection import nearest\n"}), [])

    def test_files_in_a_new_folder_are_reported(self):
        problems = "\n".join(self.copy({"tfattncut/tracking/__init__.py": "",
                                        "tests/tracking/test_kalman.py": "import numpy\n"}))
        self.assertIn("tfattncut/tracking/__init__.py is in the srcs of 0", problems)
        self.assertIn("tests/tracking/test_kalman.py is run by 0 py_test", problems)

    def test_an_import_outside_the_deps_is_reported(self):
        problems = self.copy({"tfattncut/metrics/leak.py": "from tfattncut.serving import rest\n"})
        self.assertIn("tfattncut/metrics/leak.py (in :tfattncut_metrics) needs "
                      "tfattncut/serving/rest.py: add \":tfattncut_serving\" to the deps of "
                      ":tfattncut_metrics", problems)
        # A new import of an entry point is reported against the call that gives them deps.
        problems = self.copy({"launch/track.py": "import pytest\n"})
        self.assertIn("launch/track.py (in :launch_track) imports pytest: add "
                      "requirement(\"pytest\") to the deps of the py_entry_points() call",
                      problems)

    def test_an_untagged_slow_test_is_reported(self):
        problems = self.copy({"tests/metrics/test_long.py": f"import pytest\n\n{SLOW_MARK}\n"})
        self.assertIn(f"tests/metrics/test_long.py: tagged slow in BUILD: False; sets "
                      f"`{SLOW_MARK}`: True (SLOW_TESTS in {MACROS} lists the slow ones)", problems)

    def test_a_test_file_as_its_own_main_is_reported(self):
        with open(os.path.join(ROOT, MACROS)) as f:
            macros = f.read()
        own_main = macros.replace("main = PYTEST_MAIN,", "main = src,")
        self.assertNotEqual(own_main, macros)
        problems = "\n".join(self.copy({MACROS: own_main}))
        self.assertIn(":tests_selection_test_qsattn must run pytest on its one test file",
                      problems)
