"""Lint is a habit: the rules are configured, CI runs them, and every exception says why."""

import re

from tritonkit import paths

NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)$")


def test_every_noqa_names_its_rule_and_its_reason():
    bare = []
    for folder in ("src", "tests", "ensembles"):
        for path in (paths.root() / folder).rglob("*.py"):
            if path.samefile(__file__):
                continue  # its message shows the form
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                match = NOQA.search(line)
                if match and not re.match(r":\s*[A-Z]+\d+(?:,\s*[A-Z]+\d+)*\s+-\s+\S", match.group("rest")):
                    bare.append(f"{path.relative_to(paths.root())}:{number}: {line.strip()}")
    assert not bare, "write `# noqa: RULE - why`:\n" + "\n".join(bare)


def test_ci_runs_lint_and_checks_the_generated_configs():
    ci = (paths.root() / ".ci" / "run").read_text()
    makefile = (paths.root() / "Makefile").read_text()
    assert "make lint" in ci and "EXPORT_ARGS=--check-configs" in ci
    assert "ruff check src tests" in makefile and "mypy src/tritonkit/client" in makefile
