"""The generated role assignments held against the access model: what the provider's tests check.

Azurite enforces no RBAC, so the identities cannot be checked at run time here; instead
:func:`role_problems` reads a generated ``main.tf`` back (python-hcl2) and *evaluates*
each identity's role assignments, conditions included (:func:`evaluate`, a small
evaluator of the ABAC expressions Glacier writes), for the requests its steps make,
as :func:`glacier.infra.access.function_access` lists them, and for requests they never
make: every needed request must be allowed, and reading another blob, writing a
source, deleting anything, or touching a container or queue of no step of the
function must be refused.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glacier.pipeline import Pipeline

__all__ = ["Request", "ROLE_ACTIONS", "evaluate", "allowed", "role_problems"]

_BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"

#: The blob data actions of the built-in roles Glacier assigns (queue roles are checked by scope).
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "Storage Blob Data Reader": frozenset({f"{_BLOB}/read"}),
    "Storage Blob Data Contributor": frozenset({f"{_BLOB}/read", f"{_BLOB}/write", f"{_BLOB}/delete", f"{_BLOB}/add/action"}),
    "Storage Blob Data Owner": frozenset({f"{_BLOB}/read", f"{_BLOB}/write", f"{_BLOB}/delete", f"{_BLOB}/add/action"}),
}


@dataclass(frozen=True)
class Request:
    """One data-plane request on a container: an action, whether it lists, and its blob path or list prefix."""

    action: str
    path: str = ""
    listing: bool = False


_TOKEN = re.compile(r"\s*(\(|\)|!|AND\b|OR\b|NOT\b|false\b|ActionMatches\{'[^']*'\}|SubOperationMatches\{'[^']*'\}|@\w+\[[^\]]*\]|StringLike\b|StringStartsWith\b|StringEquals\b|'(?:[^'\\]|\\.)*')")


def evaluate(condition: str, request: Request) -> bool:
    """Whether ``condition`` (the subset of ABAC Glacier writes) holds for ``request``.

    Examples
    --------
    >>> cond = "((!(ActionMatches{'%s/read'})) OR (@Resource[%s:path] StringLike 'raw/*'))" % (_BLOB, _BLOB)
    >>> evaluate(cond, Request(f"{_BLOB}/read", "raw/a.parquet")), evaluate(cond, Request(f"{_BLOB}/read", "ref/a.parquet"))
    (True, False)
    """
    tokens, pos = [], 0
    text = condition.replace("\\n", "\n").strip()  # python-hcl2 keeps HCL's escapes
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"cannot read the condition at {text[pos:pos + 40]!r}")
        tokens.append(match.group(1))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    at = [0]

    def peek() -> str | None:
        return tokens[at[0]] if at[0] < len(tokens) else None

    def take() -> str:
        at[0] += 1
        return tokens[at[0] - 1]

    def expr() -> bool:
        value = term()
        while peek() == "OR":
            take()
            value = term() or value
        return value

    def term() -> bool:
        value = factor()
        while peek() == "AND":
            take()
            value = factor() and value
        return value

    def factor() -> bool:
        token = take()
        if token in ("!", "NOT"):
            return not factor()
        if token == "(":
            value = expr()
            assert take() == ")"
            return value
        if token == "false":
            return False
        if token.startswith("ActionMatches"):
            return request.action == token[len("ActionMatches{'"):-2]
        if token.startswith("SubOperationMatches"):
            return request.listing and token[len("SubOperationMatches{'"):-2] == "Blob.List"
        if token.startswith("@"):
            operator, literal = take(), take()[1:-1].replace("\\'", "'")
            subject = request.path
            if operator == "StringLike":
                return fnmatch.fnmatchcase(subject, literal)
            if operator == "StringStartsWith":
                return subject.startswith(literal)
            return subject == literal
        raise ValueError(f"unexpected {token!r} in the condition")

    result = expr()
    if peek() is not None:
        raise ValueError(f"left over in the condition: {tokens[at[0]:]}")
    return result


def allowed(assignments: list[dict[str, Any]], request: Request) -> bool:
    """Whether any of ``assignments`` (role name and condition, on one scope) allows ``request``."""
    for assignment in assignments:
        if request.action not in ROLE_ACTIONS.get(assignment["role"], frozenset()):
            continue
        if assignment.get("condition") is None or evaluate(assignment["condition"], request):
            return True
    return False


def role_problems(generated_dir: str | Path, pipeline: Pipeline) -> list[str]:
    """Every difference between the generated identities' grants and the access model, as sentences."""
    import hcl2

    from glacier.infra.access import function_access
    from glacier.infra.generate import function_specs
    from glacier.testing.terraform import blocks, unquote

    from glacier_azure.infra.iam import SCHEMES, split_uri
    from glacier_azure.infra.terraform import app_name

    with open(Path(generated_dir) / "main.tf") as fh:
        doc = hcl2.load(fh)
    containers = {f"azurerm_storage_container.{k}": unquote(v) for k, v in blocks(doc, "resource", "azurerm_storage_container").items()}
    queues = {f"azurerm_storage_queue.{k}": unquote(v) for k, v in blocks(doc, "resource", "azurerm_storage_queue").items()}
    apps = {unquote(v["name"]): unquote(v) for v in blocks(doc, "resource", "azurerm_function_app_flex_consumption").values()}
    assignments = [unquote(v) for v in blocks(doc, "resource", "azurerm_role_assignment").values()]
    problems: list[str] = []
    for spec in function_specs(pipeline, pipeline.build()).get("azure", {}).values():
        app = app_name(spec)
        body = apps.get(app)
        if body is None:
            problems.append(f"function app {app!r} is not in the generated module")
            continue
        identity = body["identity"][0]["identity_ids"][0].removesuffix(".id")
        mine = [a for a in assignments if a["principal_id"] == f"{identity}.principal_id"]
        by_container: dict[str, list[dict[str, Any]]] = {}
        for a in mine:
            scope = a["scope"].removesuffix(".resource_manager_id")
            if scope in containers:
                by_container.setdefault(containers[scope]["name"], []).append({"role": a["role_definition_name"], "condition": a.get("condition")})
            elif scope in queues:
                name = queues[scope]["name"]
                if name not in (app, f"{app}-poison"):
                    problems.append(f"{app}: {a['role_definition_name']} on the queue {name!r} of another function")
            elif not a["scope"].startswith("azurerm_application_insights."):
                problems.append(f"{app}: {a['role_definition_name']} is scoped to {a['scope']}, wider than a container or a queue")
        access = function_access(spec).only(SCHEMES)
        touched = _touched(access)
        problems += _data_problems(app, by_container, access)
        from glacier_azure.infra.terraform import HOST_CONTAINERS, RESULTS_CONTAINER

        expected = touched | {RESULTS_CONTAINER, *HOST_CONTAINERS, f"pkg-{app}"}
        for container in sorted(set(by_container) - expected):
            problems.append(f"{app}: has a role on container {container!r}, which none of its steps touches")
        results = by_container.get(RESULTS_CONTAINER, [])
        for step in spec.steps:
            if not allowed(results, Request(f"{_BLOB}/write", f"run/{step.name}/1-x.json")):
                problems.append(f"{app}: cannot write the result of its step {step.name!r}")
        if allowed(results, Request(f"{_BLOB}/write", "run/another-step/1-x.json")) or allowed(results, Request(f"{_BLOB}/read", f"run/{spec.steps[0].name}/1-x.json")):
            problems.append(f"{app}: may write another step's results, or read results")
    problems += _federation_problems(doc, pipeline, apps, assignments, containers)
    return problems


def _federation_problems(doc: Any, pipeline: Pipeline, apps: dict[str, Any], assignments: list[dict[str, Any]], containers: dict[str, Any]) -> list[str]:
    """Each other cloud's function on Azure: only its own token is trusted, and its grants are the access model's."""
    from glacier.infra.access import access_local, foreign_access, identity_local
    from glacier.testing.terraform import blocks, unquote

    from glacier_azure.infra.federation import ENVIRONMENT, GOOGLE_ISSUER, SECRET_HOMES, foreign_identity_identifier
    from glacier_azure.infra.terraform import app_name

    problems: list[str] = []
    credentials = [unquote(v) for v in blocks(doc, "resource", "azurerm_federated_identity_credential").values()]
    identities = blocks(doc, "resource", "azurerm_user_assigned_identity")
    for pair in foreign_access(pipeline, pipeline.build()):
        spec = pair.spec
        if pair.home == "azure":  # its app settings name what the other cloud published for it
            settings = apps.get(app_name(spec), {}).get("app_settings", {})
            for name, key in ENVIRONMENT.get(pair.cloud, {}).items():
                value = str(settings.get(name))
                if value.removeprefix("${").removesuffix("}") != f"local.{access_local(spec, pair.cloud)}.{key}":
                    problems.append(f"{spec.name}: its {name} is {value!r}, not what {pair.cloud} published for it")
            continue
        if pair.cloud != "azure":
            continue
        ident = foreign_identity_identifier(spec)
        if pair.home in SECRET_HOMES:  # an Entra application whose secret is kept outside Terraform
            if ident not in blocks(doc, "resource", "azuread_service_principal"):
                problems.append(f"{spec.name} on {pair.home}: no service principal {ident}")
                continue
            principal = f"azuread_service_principal.{ident}.object_id"
            passwords = {t for entry in doc.get("resource", []) for t in entry if t.startswith("azuread_") and "password" in t}
            if passwords:
                problems.append(f"{spec.name} on {pair.home}: the module declares {sorted(passwords)}, a secret in Terraform")
        else:
            if ident not in identities:
                problems.append(f"{spec.name} on {pair.home}: no federated identity {ident}")
                continue
            identity = f"azurerm_user_assigned_identity.{ident}"
            principal = f"{identity}.principal_id"
            trusted = [(c["issuer"], c["subject"]) for c in credentials if c["parent_id"] == f"{identity}.id"]
            want = [(GOOGLE_ISSUER, f"local.{identity_local(spec)}.unique_id")]
            if [(i, s.removeprefix("${").removesuffix("}")) for i, s in trusted] != want:
                problems.append(f"{spec.name} on {pair.home}: {identity} trusts {trusted}, not only {want}")
        by_container: dict[str, list[dict[str, Any]]] = {}
        for a in assignments:
            if a["principal_id"] != principal:
                continue
            scope = a["scope"].removesuffix(".resource_manager_id")
            if scope not in containers:
                problems.append(f"{spec.name} on {pair.home}: {a['role_definition_name']} is scoped to {a['scope']}, not a container")
                continue
            by_container.setdefault(containers[scope]["name"], []).append({"role": a["role_definition_name"], "condition": a.get("condition")})
        access = pair.access
        problems += _data_problems(f"{spec.name} on {pair.home}", by_container, access)
        problems += [f"{spec.name} on {pair.home}: has a role on container {c!r}, which none of its steps touches" for c in sorted(set(by_container) - _touched(access))]
    return problems


def _touched(access: Any) -> set[str]:
    from glacier_azure.infra.iam import split_uri

    return {split_uri(u)[0] for u in access.reads | access.writes} | {split_uri(entry.prefix)[0] for entry in access.lists}


def _data_problems(app: str, by_container: dict[str, list[dict[str, Any]]], access: Any) -> list[str]:
    """What the grants on the containers allow beyond, or short of, ``access``."""
    from glacier_azure.infra.iam import split_uri

    problems: list[str] = []
    touched = _touched(access)
    needs = [("read", u, Request(f"{_BLOB}/read", split_uri(u)[1])) for u in access.reads]
    needs += [("list", e.prefix, Request(f"{_BLOB}/read", split_uri(e.prefix)[1], listing=True)) for e in access.lists]
    needs += [("write", u, Request(f"{_BLOB}/write", split_uri(u)[1])) for u in access.writes]
    for what, uri, request in needs:
        if "*" in request.path or "?" in request.path:
            request = Request(request.action, request.path.replace("*", "x").replace("?", "x"), request.listing)  # a match of the glob
        if not allowed(by_container.get(split_uri(uri)[0], []), request):
            problems.append(f"{app}: {what} of {uri} is needed but not allowed")
    writes = {split_uri(u)[1] for u in access.writes}
    for container in sorted(touched):
        grants = by_container.get(container, [])
        refused = [("read", Request(f"{_BLOB}/read", "glacier-probe/other.parquet")),
                   ("list", Request(f"{_BLOB}/read", "glacier-probe/", listing=True)),
                   ("write", Request(f"{_BLOB}/write", "glacier-probe/other.parquet")),
                   *(("delete", Request(f"{_BLOB}/delete", path)) for path in sorted(writes) or ["glacier-probe/x"])]  # fmt: skip
        for u in access.reads:
            container_of, path = split_uri(u)
            if container_of == container and path not in writes:
                refused.append(("write", Request(f"{_BLOB}/write", path.replace("*", "x"))))
        for what, request in refused:
            if allowed(grants, request):
                problems.append(f"{app}: {what} of az://{container}/{request.path} is allowed but no step needs it")
    return problems
