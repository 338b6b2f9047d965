"""The house rules, measured: layers point one way (no import cycle in kit/), no private names imported
across modules, modules and functions short enough to read."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parent.parent / "kit"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    rel = path.relative_to(KIT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in KIT.rglob("*.py")}


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Every import statement of kit/ (function-level ones too) as edges between kit modules; and the
    private names (``_x``) imported from another kit module."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private: list[str] = []
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node.level, node.module)
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.append(full if full in mods else base)
                    if a.name.startswith("_") and base.startswith("kit") and base != mod:
                        private.append(f"{mod} imports {a.name} from {base}")
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != mod and t.startswith("kit"):
                    graph[mod].add(t)
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _parent_package_edge(a: str, b: str) -> bool:
    # A package's __init__ re-exporting its own modules is not a layering cycle (kit.train -> kit.train.stage).
    return b.startswith(a + ".")


def test_no_import_cycles():
    graph, _ = import_graph()
    pruned = {m: {t for t in ts if not _parent_package_edge(m, t)} for m, ts in graph.items()}
    assert cycles(pruned) == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_private_names_imported_across_modules():
    _, private = import_graph()
    assert private == []


def test_layers_point_one_way():
    """Lower layers never import the stages, the runner or the CLI."""
    graph, _ = import_graph()
    lower = ["kit.io", "kit.options", "kit.formats", "kit.registry", "kit.search", "kit.embed", "kit.catalog",
             "kit.modelfolder"] + [m for m in graph if m.startswith("kit.providers")]
    upper = ("kit.stages", "kit.pipeline", "kit.cli", "kit.prep", "kit.queries", "kit.split", "kit.mine",
             "kit.train", "kit.merge", "kit.adapter", "kit.bench")
    bad = [(m, t) for m in lower for t in graph[m] if t.startswith(upper)]
    assert bad == []
    assert not [t for t in graph["kit.pipeline"] if t.startswith(("kit.stages", "kit.cli"))]


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


@pytest.mark.parametrize("path", sorted(KIT.rglob("*.py")), ids=lambda p: str(p.relative_to(KIT)))
def test_modules_and_functions_are_short(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path}: {len(text.splitlines())} lines"
    long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines)" for f in _functions(ast.parse(text))
            if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"{path}: {long}"


# The console writers: the CLI (results on stdout), kit.logs.note (progress on stderr + the stage log), the crash
# hooks in kit.logs, the trainer's live output (kit/train/: streamed as it comes, \r bars included), and docgen (a
# script). Everything else reports through note() or returns a summary.
CONSOLE_WRITERS = {"logs.py", "docgen.py", "train/stage.py", "train/progress.py"}


def _prints(tree: ast.AST) -> list[int]:
    """Lines calling print(), click.echo() or sys.stdout/stderr.write()."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "print":
            out.append(node.lineno)
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) == ("click", "echo"):
            out.append(node.lineno)
        elif (isinstance(f, ast.Attribute) and f.attr == "write" and isinstance(f.value, ast.Attribute)
              and isinstance(f.value.value, ast.Name) and f.value.value.id == "sys" and f.value.attr in ("stdout", "stderr")):
            out.append(node.lineno)
    return out


def test_library_code_does_not_print():
    offenders = [f"{path.relative_to(KIT).as_posix()}:{n}" for path in sorted(KIT.rglob("*.py"))
                 if not path.relative_to(KIT).as_posix().startswith("cli/")
                 and path.relative_to(KIT).as_posix() not in CONSOLE_WRITERS
                 for n in _prints(ast.parse(path.read_text(encoding="utf-8")))]
    assert offenders == [], f"library code prints (use kit.logs.note or return a summary): {offenders}"


def test_the_print_check_sees_a_print():
    assert _prints(ast.parse('print(f"x", file=sys.stderr)\nclick.echo(m, err=True)\nsys.stderr.write(t)')) == [1, 2, 3]
    assert _prints(ast.parse('self.pprint(x)\nnote(x)\ns = "print(x)"')) == []


# One stage shape (README, "Adding a stage"): every stage of `kit run` is a folder kit/<stage>/ with options.py (its
# section's dataclass), stage.py (the work) and step.py (STEP, its registration); so are the commands that act on a
# workdir from outside the pipeline.
STANDALONE = ("drift", "update")


def test_every_stage_has_the_same_shape():
    from kit.stages import REGISTRY

    for stage in REGISTRY:
        package = stage.run.__module__.rsplit(".", 1)[0]
        assert stage.run.__module__ == f"{package}.step", f"{stage.name}: registered outside its step.py"
        folder = KIT / package.split(".", 1)[1]
        assert {"options.py", "stage.py", "step.py"} <= {p.name for p in folder.iterdir()}, folder
        assert stage.options.__module__ == f"{package}.options", f"{stage.name}: options outside options.py"
    for name in STANDALONE:
        assert {"options.py", "stage.py"} <= {p.name for p in (KIT / name).iterdir()}, name


def test_test_modules_outside_packages_have_unique_names():
    """pytest imports a test module outside a package by its file name: two tests/*/test_x.py clash ("import file
    mismatch") and the whole run stops at collection."""
    tests = KIT.parent / "tests"
    names = [p.name for p in tests.rglob("test_*.py") if not (p.parent / "__init__.py").exists()]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def _test_module_imports(path) -> list[str]:
    """The test modules (test_*) a file imports."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [n for n in names if n.split(".")[-1].startswith("test_")]
    return found


def test_tests_share_helpers_through_tests_helpers_not_each_other():
    """A helper another module needs lives in tests/helpers/ (or a folder's conftest.py): a test module importing
    another runs that module's fixtures and collection side effects, and breaks when either moves."""
    tests = KIT.parent / "tests"
    bad = {str(p.relative_to(tests)): _test_module_imports(p) for p in tests.rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_test_import_check_sees_one(tmp_path):
    (tmp_path / "test_a.py").write_text("from test_b import helper\nimport tests.mine.test_mine\n", encoding="utf-8")
    assert _test_module_imports(tmp_path / "test_a.py") == ["test_b", "tests.mine.test_mine"]
