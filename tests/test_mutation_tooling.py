"""tests/mutation/run.py (``tox -e mutation``): the parts that need no mutmut run. A group
whose test list names a file that is gone, or an equivalent.toml line naming a module no
group mutates, would silently shrink what the report measures."""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "tests" / "mutation" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module


run = load_runner()


def test_every_group_pattern_matches_modules_and_tests() -> None:
    for group in run.GROUPS:
        for pattern in group.modules:
            assert list(ROOT.glob(pattern)), f"{group.name}: no module matches {pattern}"
        for pattern in group.tests:
            assert list((ROOT / "tests").glob(pattern)), f"{group.name}: no test file matches {pattern}"


def test_mutant_names_map_to_modules_and_functions() -> None:
    method = "protocol.catalog.x\u01c1Catalog\u01c1from_wire__mutmut_12"
    assert run.module_of(method) == "protocol.catalog"
    assert run.function_of(method) == "protocol.catalog.x\u01c1Catalog\u01c1from_wire"
    assert run.module_of("world.session_reset.x_reset_all__mutmut_3") == "world.session_reset"
    assert run.function_of("world.session_reset.x_reset_all__mutmut_3") == "world.session_reset.x_reset_all"


def test_function_hashes_name_functions_as_mutmut_does_and_see_comments(tmp_path: Path) -> None:
    """A pragma comment renumbers a function's mutants, so it counts as a change."""
    group = run.Group("sample", ("pkg/*.py",), ())
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "mod.py"
    source.write_text("def f(x):\n    return x + 1\n\nclass C:\n    def m(self):\n        return 2\n")
    (tmp_path / "pkg" / "__init__.py").write_text("def ignored():\n    pass\n")
    before = run.function_hashes(tmp_path, group)
    assert set(before) == {"pkg.mod.x_f", "pkg.mod.x\u01c1C\u01c1m"}
    source.write_text(source.read_text().replace("x + 1", "x + 1  # pragma: no mutate"))
    after = run.function_hashes(tmp_path, group)
    assert after["pkg.mod.x_f"] != before["pkg.mod.x_f"]
    assert after["pkg.mod.x\u01c1C\u01c1m"] == before["pkg.mod.x\u01c1C\u01c1m"]


def test_kill_rate_leaves_equivalents_out() -> None:
    from collections import Counter

    assert run._rate(Counter(killed=9, survived=1, equivalent=5)) == 0.9
    assert run._rate(Counter({"killed": 8, "survived": 1, "no tests": 1})) == 0.8
    assert run._rate(Counter({"killed": 9, "survived": 1, "not checked": 50})) == 0.9  # an interrupted run
    assert run._rate(Counter()) == 1.0


def test_equivalent_lines_name_mutated_modules_and_give_a_reason() -> None:
    entries = tomllib.loads((ROOT / "tests" / "mutation" / "equivalent.toml").read_text())["equivalent"]
    mutated = [pattern.removesuffix(".py").replace("/", ".") for group in run.GROUPS for pattern in group.modules]
    for name, reason in entries.items():
        assert "__mutmut_" in name, name
        assert any(fnmatch.fnmatchcase(run.module_of(name), module) for module in mutated), name
        assert isinstance(reason, str) and len(reason) > 15, name
    assert run.explanation("protocol.x.x_f__mutmut_3", {"protocol.x.x_f__mutmut_[34]": "why"}) == "why"
    assert run.explanation("protocol.x.x_f__mutmut_5", {"protocol.x.x_f__mutmut_[34]": "why"}) is None
