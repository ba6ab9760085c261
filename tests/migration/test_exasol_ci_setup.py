"""The migration example reproduces exasol-script-languages-container-ci-setup's builds.

Runs the real old tool (installed from PyPI into .venv-exasol by tests/run.sh) and flavor-ci on
the example repository, reads both outputs with PyYAML's BaseLoader (every scalar as its text,
so `3.10` stays `3.10`), and compares what each build of each batch runs: identifiers, flavors,
dependencies, compute, variables (the document's and the task's, merged as CodeBuild merges
them), secrets, shell, phases with their commands, and artifacts.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REPO = ROOT / "examples" / "script-languages"
SETTINGS = REPO / "exasol-ci-setup.yaml"
FLAVOR_CI = ROOT / "target" / "debug" / "flavor-ci"
OLD_PYTHON = Path(os.environ.get("EXASOL_CI_SETUP_PYTHON", ROOT / ".venv-exasol" / "bin" / "python"))
OLD_TOOL = "exasol_script_languages_container_ci_setup.main"


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)


def phase_name(name: str) -> str:
    return name.replace("-", "_")


def builds(batch_doc: dict, build_doc_of) -> dict:
    """identifier → what that build runs, from a batch buildspec and the build buildspec each
    task uses (`build_doc_of(task)`)."""
    batch = batch_doc["batch"]
    (shape,) = [k for k in ("build-graph", "build-list", "build-matrix", "build-fanout") if k in batch]
    out = {}
    for task in batch[shape]:
        doc = build_doc_of(task)
        env = doc.get("env", {})
        task_env = dict(task.get("env", {}))
        variables = {**env.get("variables", {}), **task_env.pop("variables", {})}
        out[task["identifier"]] = {
            "shape": shape,
            "fast-fail": batch.get("fast-fail", "false"),
            "depend-on": sorted(task.get("depend-on", [])),
            "ignore-failure": task.get("ignore-failure", "false"),
            "task-env": task_env,
            "variables": variables,
            "shell": env.get("shell"),
            "secrets-manager": env.get("secrets-manager", {}),
            "parameter-store": env.get("parameter-store", {}),
            "phases": {phase_name(k): v for k, v in doc.get("phases", {}).items()},
            "artifacts": doc.get("artifacts"),
        }
    return out


@pytest.fixture(scope="module")
def old_tool():
    if not OLD_PYTHON.exists():
        pytest.fail(
            f"{OLD_PYTHON} is missing: python3 -m venv .venv-exasol && "
            ".venv-exasol/bin/pip install exasol-script-languages-container-ci-setup==1.8.0 "
            "(tests/run.sh does this)"
        )
    return OLD_PYTHON


def run_old(python: Path, command: str, out: Path) -> dict:
    out.mkdir()
    subprocess.run(
        [str(python), "-m", OLD_TOOL, command, "--flavor-root-path", "flavors", "--output-path", str(out)],
        cwd=REPO, check=True, capture_output=True,
    )
    build_doc = load(out / "build_buildspec.yaml")

    def build_doc_of(task):
        assert task["buildspec"] == f"{out}/build_buildspec.yaml", task
        return build_doc

    return builds(load(out / "buildspec.yaml"), build_doc_of)


def run_new(out: Path) -> dict[str, dict]:
    proc = subprocess.run(
        [str(FLAVOR_CI), "generate", "-r", str(REPO), "-s", str(SETTINGS), "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    assert "do nothing yet" not in proc.stderr, proc.stderr
    result = {}
    for variant in ("ci", "release"):
        batch = load(out / f"{variant}-batch-buildspec.yaml")
        result[variant] = builds(batch, lambda task, batch=batch: batch)
    return result


def test_the_example_reproduces_the_old_tools_ci_and_release_builds(old_tool, tmp_path):
    ours = run_new(tmp_path / "flavor-ci")
    for variant, command in (("ci", "generate-buildspecs"), ("release", "generate-release-buildspecs")):
        theirs = run_old(old_tool, command, tmp_path / f"old-{variant}")
        assert len(theirs) == 9, sorted(theirs)
        assert sorted(ours[variant]) == sorted(theirs), variant
        for identifier, build in theirs.items():
            assert ours[variant][identifier] == build, (variant, identifier)


def test_the_old_identifiers_differ_from_the_standard_ones(tmp_path):
    """Without `identifier-style: exasol-ci-setup` the names change, which is why it exists."""
    settings = tmp_path / "standard.yaml"
    settings.write_text(SETTINGS.read_text().replace("identifier-style: exasol-ci-setup", ""))
    subprocess.run(
        [str(FLAVOR_CI), "generate", "-r", str(REPO), "-s", str(settings), "-o", str(tmp_path / "o")],
        check=True, capture_output=True,
    )
    text = (tmp_path / "o" / "ci-batch-buildspec.yaml").read_text()
    assert "build_standard_EXASOL_all_python_3_10" in text
    assert "build_standard_EXASOL_all_python_310" not in text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
