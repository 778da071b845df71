"""The root BUILD is an accurate Bazel description of the package (checked without Bazel).

BUILD is Starlark, a Python-syntax subset, so it is parsed with `ast` and its calls are
evaluated by walking the tree, never exec'd or eval'd. Checked here:
  * every .py file under tfattncut/ and launch/, __init__.py included, is in the srcs of
    exactly one target: a py_library, or for launch/NAME.py the py_binary whose main it is;
  * every tests/**/test_*.py is the main of exactly one py_test;
  * every file BUILD names exists, every glob matches something, each main is in its srcs;
  * every deps entry is ":target" defined in BUILD or requirement("<PyPI name>");
  * every first-party import in a target's srcs (and the __init__.py of each tfattncut/ or
    launch/ package on the way) is in its srcs or in its deps' srcs, transitively; every
    third-party import is covered by a requirement() there; no first-party dep is unused;
    no dependency cycles;
  * names follow the convention below; targets and lists are in a stable, sorted order;
  * a py_test is tagged "slow" exactly when its module sets `pytestmark = pytest.mark.slow`
    (so `pytest -m 'not slow'` and Bazel's tag filters leave out the same tests).

Target naming convention (a file's path with "/" -> "_" and ".py" dropped):
  py_library  tfattncut_SUB   tfattncut/SUB/: every .py file of the subpackage (__init__ too)
              tfattncut_MOD   tfattncut/MOD.py, a top-level module, alone
              tfattncut       tfattncut/__init__.py alone (every tfattncut target deps on it,
              launch          launch/__init__.py alone     directly or transitively)
  py_binary   launch_NAME     srcs = main = launch/NAME.py
  py_test     tests_PATH      main = tests/PATH.py, e.g. tests_selection_test_qsattn;
                              srcs = main + tests/conftest.py (pytest loads it for every test)
                              + tests/testdata.py or any other tests/ module it imports.
Order: load()s, then py_library, py_binary, py_test, each by name; srcs, data and tags
sorted; deps: ":labels" sorted, then requirement()s sorted.
"""
import ast
import collections
import glob
import os
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = "BUILD"
# Every .py file here, __init__.py included, belongs to exactly one target.
LISTED_DIRS = ("tfattncut", "launch")
TESTS_DIR = "tests"
FIRST_PARTY = LISTED_DIRS + (TESTS_DIR,)
CONFTEST = "tests/conftest.py"

RULES_BZL = "@rules_python//python:defs.bzl"
PIP_BZL = "@pip//:requirements.bzl"
RULES = ("py_library", "py_binary", "py_test")
COMMON_ATTRS = {"name", "srcs", "deps", "data", "tags", "visibility", "imports", "testonly"}
RULE_ATTRS = {
    "py_library": COMMON_ATTRS,
    "py_binary": COMMON_ATTRS | {"main", "args", "env"},
    "py_test": COMMON_ATTRS | {"main", "args", "env", "size", "timeout", "flaky",
                               "shard_count"},
}
TEST_SIZES = ("small", "medium", "large", "enormous")

# Third-party import name (or dotted prefix) -> its PyPI name, as given to requirement().
# A new third-party import needs an entry here and requirement("...") in the target's deps.
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
    "tensorboard": "tensorboard",
    "tensorflow": "tensorflow",
    "tensorflow_gan": "tensorflow-gan",
    "tensorflow_serving": "tensorflow-serving-api",
    # launch/torch_reference.py only, run by an interpreter the user provides: not installed.
    "torch": "torch",
}
# Needed at run time with no import of their own: TF-GAN's eval files, which
# tests/metrics/test_tfgan_reference.py loads by path, import these two.
RUNTIME_ONLY_REQUIREMENTS = ("tensorflow-probability", "tf-keras")
KNOWN_REQUIREMENTS = frozenset(IMPORT_TO_REQUIREMENT.values()) | set(RUNTIME_ONLY_REQUIREMENTS)
# Calls whose constant first argument names a module imported at run time.
DYNAMIC_IMPORTS = ("import_module", "find_spec", "__import__")


class BuildError(Exception):
    """BUILD uses something this evaluator (and so this project's convention) does not allow."""


Requirement = collections.namedtuple("Requirement", "name")
Glob = collections.namedtuple("Glob", "patterns")
Target = collections.namedtuple("Target", "kind name attrs lineno")


def _label_sort_key(dep):
    return (1, dep.name) if isinstance(dep, Requirement) else (0, dep)


def _format_dep(dep):
    return f'requirement("{dep.name}")' if isinstance(dep, Requirement) else f'"{dep}"'


class BuildFile:
    """The targets of a BUILD file, evaluated from its AST."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        self.path = path
        self.loaded = {}     # symbol -> .bzl file it was loaded from
        self.targets = {}    # name -> Target, in file order
        self.loads_first = True
        seen_rule = False
        for statement in tree.body:
            call = statement.value if isinstance(statement, ast.Expr) else None
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                raise BuildError(self._where(statement) + "only load(...) and py_* rule "
                                 "calls may appear at the top level")
            if call.func.id == "load":
                self._load(call)
                self.loads_first &= not seen_rule
            elif call.func.id in RULES:
                seen_rule = True
                self._rule(call)
            else:
                raise BuildError(self._where(call) + f"unknown rule {call.func.id}(); use one "
                                 f"of {', '.join(RULES)}")

    def _where(self, node):
        return f"{os.path.basename(self.path)}:{node.lineno}: "

    def _load(self, call):
        if call.keywords or not call.args:
            raise BuildError(self._where(call) + 'write load("FILE", "SYMBOL", ...)')
        bzl, *symbols = [self._eval(arg) for arg in call.args]
        for symbol in symbols:
            if not isinstance(symbol, str):
                raise BuildError(self._where(call) + "load() symbols must be strings")
            self.loaded[symbol] = bzl

    def _rule(self, call):
        kind = call.func.id
        if self.loaded.get(kind) != RULES_BZL:
            raise BuildError(self._where(call) + f'{kind} is used but not loaded from '
                             f'"{RULES_BZL}"')
        if call.args:
            raise BuildError(self._where(call) + f"{kind}() takes keyword arguments only")
        attrs = {}
        for keyword in call.keywords:
            if keyword.arg not in RULE_ATTRS[kind]:
                raise BuildError(self._where(keyword.value) + f"{kind}() attribute "
                                 f"{keyword.arg!r} is not one of {sorted(RULE_ATTRS[kind])}")
            if keyword.arg in attrs:
                raise BuildError(self._where(keyword.value) + f"{keyword.arg!r} given twice")
            attrs[keyword.arg] = self._eval(keyword.value)
        name = attrs.get("name")
        if not isinstance(name, str) or not name:
            raise BuildError(self._where(call) + f"{kind}() needs name = \"...\"")
        if name in self.targets:
            raise BuildError(self._where(call) + f"target {name!r} is defined twice "
                             f"(first at line {self.targets[name].lineno})")
        for attr in ("srcs", "deps", "data", "tags"):
            if not isinstance(attrs.get(attr, []), list):
                raise BuildError(self._where(call) + f":{name} {attr} must be a list")
        self.targets[name] = Target(kind, name, attrs, call.lineno)

    def _eval(self, node):
        """The value of a Starlark expression: strings, numbers, booleans, lists, list + list,
        requirement("name") and glob(["pattern", ...])."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, bool)):
            return node.value
        if isinstance(node, ast.List):
            return [self._eval(element) for element in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            args = [self._eval(arg) for arg in node.args]
            if node.func.id == "requirement" and len(args) == 1 and isinstance(args[0], str):
                if self.loaded.get("requirement") != PIP_BZL:
                    raise BuildError(self._where(node) + f'requirement is used but not loaded '
                                     f'from "{PIP_BZL}"')
                return Requirement(args[0])
            if (node.func.id == "glob" and len(args) == 1 and isinstance(args[0], list)
                    and all(isinstance(a, str) for a in args[0])):
                return [Glob(tuple(args[0]))]
        raise BuildError(self._where(node) + f"cannot evaluate {ast.dump(node)[:80]}")

    def of_kind(self, kind):
        return [t for t in self.targets.values() if t.kind == kind]


def _posix(path):
    return path.replace(os.sep, "/")


def _py_files(top):
    """Every .py file under ROOT/top, as sorted repo-relative POSIX paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
        found += [_posix(os.path.relpath(os.path.join(dirpath, f), ROOT))
                  for f in filenames if f.endswith(".py")]
    return sorted(found)


def _module_name(path):
    """tfattncut/selection/base.py -> tfattncut.selection.base; a package's __init__.py
    -> the package."""
    parts = path[:-len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_file(module):
    """The repo file that `import module` loads, or None."""
    base = module.replace(".", "/")
    for candidate in (base + "/__init__.py", base + ".py"):
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return candidate
    return None


def _package_inits(path):
    """The __init__.py files Python runs before `path`'s module: those of its packages, for
    files under tfattncut/ and launch/ (tests/ packages are left to Bazel's generated ones)."""
    if path.split("/")[0] not in LISTED_DIRS:
        return set()
    inits, directory = set(), os.path.dirname(path)
    while directory:
        inits.add(directory + "/__init__.py")
        directory = os.path.dirname(directory)
    return inits


_IMPORT_CACHE = {}


def _imports(path):
    """[(lineno, (candidate module, ...))] for each import in the file: the first candidate
    that is a module is the one imported (`from a import b` is a.b if that is a module, else
    a). Function-level imports and import_module("x") / find_spec("x") are included."""
    if path in _IMPORT_CACHE:
        return _IMPORT_CACHE[path]
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    package = _module_name(path).split(".")
    if not path.endswith("/__init__.py"):
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, (alias.name,)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found += [(node.lineno, (module,) if alias.name == "*"
                       else (f"{module}.{alias.name}", module)) for alias in node.names]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in DYNAMIC_IMPORTS):
            found.append((node.lineno, (node.args[0].value,)))
    _IMPORT_CACHE[path] = sorted(found)
    return _IMPORT_CACHE[path]


def _requirement_for(module):
    """The PyPI name for a third-party module; "" for the standard library; None if
    unknown."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return ""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in IMPORT_TO_REQUIREMENT:
            return IMPORT_TO_REQUIREMENT[".".join(parts[:end])]
    return None


class BuildTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.build, cls.build_error = BuildFile(os.path.join(ROOT, BUILD)), None
        except (BuildError, OSError, SyntaxError) as error:
            cls.build, cls.build_error = None, error
        cls.targets = cls.build.targets if cls.build else {}
        cls.listed_files = [f for top in LISTED_DIRS for f in _py_files(top)]
        cls.test_files = [f for f in _py_files(TESTS_DIR)
                          if os.path.basename(f).startswith("test_")]
        # Which targets hold each file in srcs.
        cls.holders = collections.defaultdict(list)
        for target in cls.targets.values():
            for src in target.attrs.get("srcs", []):
                cls.holders[src].append(target.name)

    def setUp(self):
        super().setUp()
        if self.build_error:
            self.fail(f"cannot read BUILD: {self.build_error}")

    # ---- helpers ------------------------------------------------------------------------

    def _project_deps(self, target):
        return [d for d in target.attrs.get("deps", []) if isinstance(d, str)]

    def _closure(self, target):
        """The target and every target it depends on, transitively (defined ones only)."""
        seen, stack = {}, [target]
        while stack:
            current = stack.pop()
            if current.name in seen:
                continue
            seen[current.name] = current
            stack += [self.targets[d[1:]] for d in self._project_deps(current)
                      if d.startswith(":") and d[1:] in self.targets]
        return list(seen.values())

    def _needs(self, path, direct=False):
        """(first-party files, PyPI names, problems) that importing `path` requires. With
        direct, only the modules it imports and its own packages' __init__.py files, not
        those of the packages of the modules it imports."""
        files, requirements, problems = set(_package_inits(path)), set(), []
        for lineno, candidates in _imports(path):
            if candidates[-1].split(".")[0] in FIRST_PARTY:
                found = next(filter(None, map(_module_file, candidates)), None)
                if found is None:
                    problems.append(f"{path}:{lineno} imports {candidates[-1]!r}, which is no "
                                    f"file in the repo")
                else:
                    files |= {found} | (set() if direct else _package_inits(found))
                continue
            requirement = _requirement_for(candidates[-1])
            if requirement is None:
                problems.append(f"{path}:{lineno} imports {candidates[-1]!r}, a third-party "
                                f"module tests/test_build.py does not know: add it to "
                                f"IMPORT_TO_REQUIREMENT there and requirement(\"<PyPI name>\")"
                                f" to the deps in BUILD")
            elif requirement:
                requirements.add(requirement)
        files.discard(path)
        return files, requirements, problems

    def _owner(self, path):
        """The library/binary target holding a tfattncut/ or launch/ file, or None."""
        holders = [n for n in self.holders.get(path, []) if self.targets[n].kind != "py_test"]
        return holders[0] if len(holders) == 1 else None

    def _suggested_deps(self, paths):
        deps, problems = set(), []
        for path in paths:
            files, requirements, more = self._needs(path, direct=True)
            problems += more
            deps |= {Requirement(r) for r in requirements}
            deps |= {":" + self._owner(f) for f in files
                     if f not in paths and self._owner(f)}
        return "[" + ", ".join(map(_format_dep, sorted(deps, key=_label_sort_key))) + "]"

    def _suggest_target(self, path):
        """What to add to BUILD for a file that is in no target."""
        stem = path[:-len(".py")].replace("/", "_")
        if path.startswith("launch/") and not path.endswith("/__init__.py"):
            return (f'add py_binary(name = "{stem}", srcs = ["{path}"], main = "{path}", '
                    f'deps = {self._suggested_deps([path])})')
        if path.split("/")[0] == TESTS_DIR:
            srcs, todo = {path, CONFTEST}, [path]
            while todo:  # the tests/ modules it imports, and theirs
                new = {f for f in self._needs(todo.pop())[0]
                       if f.startswith(TESTS_DIR + "/")} - srcs
                srcs |= new
                todo += new
            return (f'add py_test(name = "{stem}", srcs = {sorted(srcs)}, main = "{path}", '
                    f'size = "small" | "medium" | "large", '
                    f'deps = {self._suggested_deps(sorted(srcs))})'.replace("'", '"'))
        package = os.path.dirname(path).replace("/", "_")
        if path.count("/") >= 2 and package in self.targets:
            return f'add "{path}" to the srcs of py_library :{package}'
        name = _module_name(path).replace(".", "_")
        if path.count("/") >= 2:  # a new subpackage: one py_library for all of it
            name = package
        return (f'add py_library(name = "{name}", srcs = ["{path}"], '
                f'deps = {self._suggested_deps([path])})')

    def _report(self, problems):
        if problems:
            self.fail(f"BUILD is out of date ({len(problems)} problem(s); see the convention in "
                      f"tests/test_build.py's docstring):\n  " + "\n  ".join(problems))

    # ---- the checks ---------------------------------------------------------------------

    def test_loads_come_first(self):
        self.assertTrue(self.build.loads_first, "put every load(...) before the first rule")
        self.assertNotEmpty(self.targets, "BUILD defines no targets")

    def test_every_library_and_launch_file_is_in_exactly_one_target(self):
        problems = []
        for path in self.listed_files:
            holders = self.holders.get(path, [])
            is_entry_point = path.startswith("launch/") and not path.endswith("/__init__.py")
            want = "py_binary" if is_entry_point else "py_library"
            if not holders:
                problems.append(f"{path} is in no {want}'s srcs: {self._suggest_target(path)}")
            elif len(holders) > 1:
                problems.append(f"{path} is in the srcs of {len(holders)} targets "
                                f"({', '.join(':' + h for h in holders)}); keep it in one "
                                f"{want} and depend on that one from the others")
            elif self.targets[holders[0]].kind != want:
                problems.append(f"{path} is in {self.targets[holders[0]].kind} "
                                f":{holders[0]}, but belongs in a {want}")
        self._report(problems)

    def test_every_test_file_has_exactly_one_py_test(self):
        problems = []
        mains = collections.defaultdict(list)
        for target in self.build.of_kind("py_test"):
            mains[target.attrs.get("main")].append(target.name)
        for path in self.test_files:
            if not mains.get(path):
                problems.append(f"{path} has no py_test: {self._suggest_target(path)}")
            elif len(mains[path]) > 1:
                problems.append(f"{path} is the main of {len(mains[path])} py_tests "
                                f"({', '.join(':' + n for n in mains[path])}); keep one")
        for main, names in sorted(mains.items(), key=lambda item: str(item[0])):
            if main not in self.test_files:
                problems.append(f"py_test {', '.join(':' + n for n in names)}: main = {main!r} "
                                f"is not a tests/**/test_*.py file")
        for path, holders in sorted(self.holders.items()):
            kinds = {self.targets[h].kind for h in holders}
            if path.startswith(TESTS_DIR + "/") and kinds - {"py_test"}:
                problems.append(f"{path} (a test file) is in the srcs of a non-test target: "
                                f"{', '.join(':' + h for h in holders)}")
        self._report(problems)

    def test_every_named_file_exists(self):
        problems = []
        for target in self.targets.values():
            named = list(target.attrs.get("srcs", [])) + list(target.attrs.get("data", []))
            if "main" in target.attrs:
                named.append(target.attrs["main"])
            for item in dict.fromkeys(named):
                if isinstance(item, Glob):
                    for pattern in item.patterns:
                        if not glob.glob(os.path.join(ROOT, pattern), recursive=True):
                            problems.append(f":{target.name} glob pattern {pattern!r} "
                                            f"matches no file")
                elif not isinstance(item, str):
                    problems.append(f":{target.name} names {item!r}, which is not a file")
                elif not os.path.isfile(os.path.join(ROOT, item)):
                    problems.append(f":{target.name} names {item!r}, which does not exist "
                                    f"(renamed or deleted? update BUILD)")
            for src in target.attrs.get("srcs", []):
                if not (isinstance(src, str) and src.endswith(".py")):
                    problems.append(f":{target.name} srcs entry {src!r} is not a .py file")
        self._report(problems)

    def test_binaries_and_tests_name_a_main_in_their_srcs(self):
        problems = []
        for target in self.build.of_kind("py_binary") + self.build.of_kind("py_test"):
            main = target.attrs.get("main")
            if main not in target.attrs.get("srcs", []):
                problems.append(f"{target.kind} :{target.name}: main = {main!r} must be one of "
                                f"its srcs {target.attrs.get('srcs', [])}")
        for target in self.build.of_kind("py_binary"):
            main = target.attrs.get("main", "")
            if not (main.startswith("launch/") and main.count("/") == 1):
                problems.append(f"py_binary :{target.name}: main {main!r} is not a "
                                f"launch/*.py entry point")
        for target in self.build.of_kind("py_test"):
            if target.attrs.get("size") not in TEST_SIZES:
                problems.append(f"py_test :{target.name}: give size = one of {TEST_SIZES}")
            if CONFTEST not in target.attrs.get("srcs", []):
                problems.append(f"py_test :{target.name}: add {CONFTEST!r} to srcs (pytest "
                                f"loads it for every test)")
        self._report(problems)

    def test_deps_are_defined_targets_or_requirements(self):
        problems = []
        for target in self.targets.values():
            deps = target.attrs.get("deps", [])
            for dep in deps:
                if isinstance(dep, Requirement):
                    if dep.name not in KNOWN_REQUIREMENTS:
                        problems.append(f":{target.name}: requirement({dep.name!r}) is not a "
                                        f"known PyPI name {sorted(KNOWN_REQUIREMENTS)}; fix "
                                        f"it or add it to tests/test_build.py")
                elif not (isinstance(dep, str) and dep.startswith(":")):
                    problems.append(f":{target.name}: dep {dep!r} must be \":NAME\" (a target "
                                    f"in BUILD) or requirement(\"...\")")
                elif dep[1:] not in self.targets:
                    problems.append(f":{target.name}: dep {dep!r} is no target in BUILD")
                elif dep[1:] == target.name:
                    problems.append(f":{target.name} depends on itself")
                elif self.targets[dep[1:]].kind != "py_library":
                    problems.append(f":{target.name}: dep {dep!r} is a "
                                    f"{self.targets[dep[1:]].kind}; only py_library can be "
                                    f"a dep")
            duplicates = [d for d, n in collections.Counter(deps).items() if n > 1]
            if duplicates:
                problems.append(f":{target.name} lists {duplicates} twice in deps")
        self._report(problems)

    def test_imports_are_satisfied_by_srcs_and_deps(self):
        problems = []
        for target in self.targets.values():
            closure = self._closure(target)
            available = {s for t in closure for s in t.attrs.get("srcs", [])}
            requirements = {d.name for t in closure for d in t.attrs.get("deps", [])
                            if isinstance(d, Requirement)}
            used, missing = set(), False
            for src in target.attrs.get("srcs", []):
                if not (isinstance(src, str) and os.path.isfile(os.path.join(ROOT, src))):
                    missing = True  # reported by test_every_named_file_exists
                    continue
                files, needed, more = self._needs(src)
                problems += more
                used |= files
                for path in sorted(files - available):
                    owner = self._owner(path)
                    if owner:
                        fix = f"add \":{owner}\" (which holds it) to the deps"
                    elif path.startswith(TESTS_DIR + "/"):
                        fix = f"add \"{path}\" to the srcs"
                    else:
                        fix = f"{path} is in no single target; put it in one, then add that " \
                              f"to the deps"
                    problems.append(f"{src} (in {target.kind} :{target.name}) needs {path}: "
                                    f"{fix} of :{target.name}")
                for name in sorted(needed - requirements):
                    problems.append(f"{src} (in {target.kind} :{target.name}) imports "
                                    f"{name}: add requirement(\"{name}\") to the deps of "
                                    f":{target.name}")
            for dep in self._project_deps(target):
                held = set(self.targets[dep[1:]].attrs.get("srcs", [])) \
                    if dep[1:] in self.targets else set()
                if held and not held & used and not missing:
                    problems.append(f":{target.name}: dep \"{dep}\" is unused (its srcs import "
                                    f"nothing from it); remove it")
        self._report(problems)

    def test_no_dependency_cycles(self):
        state, problems = {}, []

        def visit(name, path):
            if state.get(name) == "done":
                return
            if state.get(name) == "active":
                cycle = path[path.index(name):] + [name]
                problems.append("dependency cycle: " + " -> ".join(":" + n for n in cycle))
                return
            state[name] = "active"
            for dep in self._project_deps(self.targets[name]):
                if dep[1:] in self.targets:
                    visit(dep[1:], path + [name])
            state[name] = "done"

        for name in self.targets:
            visit(name, [])
        self._report(problems)

    def test_names_follow_the_convention(self):
        problems = []
        for target in self.targets.values():
            srcs = [s for s in target.attrs.get("srcs", []) if isinstance(s, str)]
            if not srcs:
                problems.append(f"{target.kind} :{target.name} has no srcs")
                continue
            if target.kind != "py_library":
                main = target.attrs.get("main", "")
                want = main[:-len(".py")].replace("/", "_")
                top = {"py_binary": "launch", "py_test": TESTS_DIR}[target.kind]
                outside = [s for s in srcs if s.split("/")[0] != top]
            else:
                directories = {os.path.dirname(s) for s in srcs}
                if len(srcs) == 1:
                    want = _module_name(srcs[0]).replace(".", "_")
                elif len(directories) == 1:
                    directory = directories.pop()
                    want = directory.replace("/", "_")
                    if directory + "/__init__.py" not in srcs:
                        problems.append(f"py_library :{target.name} holds several modules of "
                                        f"{directory}/ but not its __init__.py; a multi-file "
                                        f"library is a whole subpackage")
                else:
                    want = None
                    problems.append(f"py_library :{target.name} mixes directories "
                                    f"{sorted(directories)}; use one per subpackage or module")
                outside = [s for s in srcs if s.split("/")[0] not in LISTED_DIRS]
            if want is not None and target.name != want:
                problems.append(f"{target.kind} :{target.name} should be named {want!r} "
                                f"(its file's path with '/' -> '_', no '.py')")
            if outside:
                problems.append(f"{target.kind} :{target.name} has srcs outside its "
                                f"directory: {outside}")
        self._report(problems)

    def test_slow_tags_match_the_pytest_marks(self):
        problems = []
        for target in self.build.of_kind("py_test"):
            tagged = "slow" in target.attrs.get("tags", [])
            with open(os.path.join(ROOT, target.attrs["main"])) as f:
                tree = ast.parse(f.read())
            marked = any(isinstance(node, ast.Assign)
                         and [ast.unparse(t) for t in node.targets] == ["pytestmark"]
                         and ast.unparse(node.value) == "pytest.mark.slow"
                         for node in tree.body)
            if tagged != marked:
                problems.append(f"{target.name}: tagged slow in BUILD: {tagged}; "
                                f"{target.attrs['main']} sets pytestmark = pytest.mark.slow: "
                                f"{marked}")
        self._report(problems)

    def test_stable_order(self):
        problems = []
        targets = list(self.targets.values())
        for before, target in zip(targets, targets[1:]):
            if (RULES.index(target.kind), target.name) < (RULES.index(before.kind), before.name):
                problems.append(f"{target.kind} :{target.name} (line {target.lineno}) must come "
                                f"before {before.kind} :{before.name}: targets go py_library, "
                                f"py_binary, py_test, each sorted by name")
        for target in self.targets.values():
            for attr in ("srcs", "tags"):
                values = target.attrs.get(attr, [])
                if values != sorted(values):
                    problems.append(f":{target.name} {attr} should be sorted: {sorted(values)}")
            data = target.attrs.get("data", [])
            files = [d for d in data if isinstance(d, str)]
            if data != sorted(files) + [d for d in data if isinstance(d, Glob)]:
                problems.append(f":{target.name} data: sorted files first, then glob()")
            deps = target.attrs.get("deps", [])
            if deps != sorted(deps, key=_label_sort_key):
                want = ", ".join(map(_format_dep, sorted(deps, key=_label_sort_key)))
                problems.append(f":{target.name} deps should be [{want}]")
        self._report(problems)


if __name__ == "__main__":
    tf.test.main()
