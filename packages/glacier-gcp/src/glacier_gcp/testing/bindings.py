"""The generated service accounts held against the access model: what a provider test suite checks.

GCS emulators cannot enforce IAM, so :func:`binding_problems` reads a generated
``main.tf`` back (python-hcl2) and, for every Cloud Function of the pipeline, compares
what its service account's bucket bindings allow with what
:func:`glacier.infra.access.function_access` says the function's steps touch: each
source object read (a glob as its folder, the narrowest a condition can say), each
target (and its cache record) written and read back, each bucket listed in. A grant
the steps do not need, or a need without a grant, is a problem; so is a custom role
with other permissions than its own, a function running as another account, or a
function without its invoker binding.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glacier.pipeline import Pipeline

__all__ = ["binding_problems"]

_SCHEMES = ("gs", "gcs")
_GLOB_CHARS = "*?["
_PERMISSIONS = {
    "reader": ["storage.objects.get"],
    "writer": ["storage.objects.create", "storage.objects.delete"],
    "lister": ["storage.objects.list"],
}
_EXACT = re.compile(r'resource\.name == "projects/_/buckets/([^/"]+)/objects/([^"]*)"')
_PREFIX = re.compile(r'resource\.name\.startsWith\("projects/_/buckets/([^/"]+)/objects/([^"]*)"\)')


def _bare(value: object) -> object:
    """A single interpolation ``"${x}"`` as the bare reference ``x`` python-hcl2 reads."""
    text = str(value)
    return text[2:-1] if text.startswith("${") and text.endswith("}") and text.count("${") == 1 else value


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key


def _grants(expression: str) -> set[str]:
    text = expression.replace('\\"', '"')
    return {f"{b}/{k}" for b, k in _EXACT.findall(text)} | {f"{b}/{k}*" for b, k in _PREFIX.findall(text)}


def binding_problems(generated_dir: str | Path, pipeline: Pipeline) -> list[str]:
    """Every difference between the generated bindings and the access model, as sentences."""
    import hcl2

    from glacier.infra.access import function_access
    from glacier.infra.generate import function_specs
    from glacier.testing.terraform import blocks, unquote

    with open(Path(generated_dir) / "main.tf") as f:
        doc = hcl2.load(f)
    functions = {unquote(body["name"]): (ident, unquote(body)) for ident, body in blocks(doc, "resource", "google_cloudfunctions2_function").items()}
    buckets = {f"google_storage_bucket.{ident}.name": unquote(body["name"]) for ident, body in blocks(doc, "resource", "google_storage_bucket").items()}
    roles = {f"google_project_iam_custom_role.{ident}.name": unquote(body) for ident, body in blocks(doc, "resource", "google_project_iam_custom_role").items()}
    bindings = [unquote(body) for body in blocks(doc, "resource", "google_storage_bucket_iam_member").values()]
    invokers = [unquote(body) for body in blocks(doc, "resource", "google_cloud_run_service_iam_member").values()]
    from glacier.infra.access import access_local, foreign_access, identity_local

    from glacier_gcp.infra.federation import ENVIRONMENT, foreign_account_identifier

    problems = []
    dag = pipeline.build()
    pairs = foreign_access(pipeline, dag)
    impersonation = [unquote(body) for body in blocks(doc, "resource", "google_service_account_iam_member").values()]
    accounts = blocks(doc, "resource", "google_service_account")
    identities: list[tuple[Any, str, str | None]] = []
    for spec in function_specs(pipeline, dag).get("gcp", {}).values():
        if spec.name not in functions:
            problems.append(f"function {spec.name!r} is not in the generated module")
            continue
        identities.append((spec, f"google_service_account.{functions[spec.name][0]}", functions[spec.name][0]))
    for pair in pairs:
        if pair.home == "gcp":  # its environment names what the other cloud published for it
            env = functions.get(pair.spec.name, ("", {"service_config": [{}]}))[1]["service_config"][0].get("environment_variables", {})
            for name, key in ENVIRONMENT.get(pair.cloud, {}).items():
                if _bare(env.get(name)) != f"local.{access_local(pair.spec, pair.cloud)}.{key}":
                    problems.append(f"{pair.spec.name}: its {name} is {env.get(name)!r}, not what {pair.cloud} published for it")
        if pair.cloud != "gcp":
            continue
        federated = foreign_account_identifier(pair.spec)
        if federated not in accounts:
            problems.append(f"{pair.spec.name} on {pair.home}: no federated service account {federated}")
            continue
        account = f"google_service_account.{federated}"
        identity = f"local.{identity_local(pair.spec)}"
        if pair.home == "aws":
            member = f"principalSet://iam.googleapis.com/${{google_iam_workload_identity_pool.glacier.name}}/attribute.aws_role/${{{identity}.role_name}}"
        else:
            member = f"principal://iam.googleapis.com/${{google_iam_workload_identity_pool.glacier.name}}/subject/${{{identity}.principal_id}}"
        granted = [(i["role"], i["member"]) for i in impersonation if i["service_account_id"] == f"{account}.name"]
        if granted != [("roles/iam.workloadIdentityUser", member)]:
            problems.append(f"{pair.spec.name} on {pair.home}: {account} may be impersonated by {granted}, not only by its own identity {member}")
        identities.append((pair.spec, account, None))
    for ref, role in roles.items():
        kind = ref.split(".")[1].removeprefix("glacier_")
        if sorted(role["permissions"]) != _PERMISSIONS.get(kind):
            problems.append(f"custom role {ref} has {role['permissions']}, not {_PERMISSIONS.get(kind)}")
    for spec, account, ident in identities:
        if ident is not None:
            function = functions[spec.name][1]
            if function["service_config"][0]["service_account_email"] != f"{account}.email":
                problems.append(f"{spec.name}: runs as {function['service_config'][0]['service_account_email']}, not its own {account}")
        access = function_access(spec).only(_SCHEMES)
        want: dict[str, set[str]] = {"reader": set(), "writer": set(), "lister": set()}
        for uri in access.reads:
            bucket, key = _split(uri)
            first = min((key.index(c) for c in _GLOB_CHARS if c in key), default=-1)
            want["reader"].add(f"{bucket}/{key}" if first < 0 else f"{bucket}/{key[:first]}*")
        want["writer"] = {"/".join(_split(uri)) for uri in access.writes | access.temporaries}
        want["lister"] = {_split(entry.prefix)[0] for entry in access.lists}
        have: dict[str, set[str]] = {"reader": set(), "writer": set(), "lister": set()}
        for binding in bindings:
            if binding["member"] != f"serviceAccount:${{{account}.email}}":
                continue
            kind = binding["role"].split(".")[1].removeprefix("glacier_")
            bucket = buckets.get(binding["bucket"], binding["bucket"])
            expression = binding.get("condition", [{}])[0].get("expression", "")
            if kind == "lister":
                if expression.replace('\\"', '"') != 'resource.type == "storage.googleapis.com/Bucket"':
                    problems.append(f"{spec.name}: the listing binding on {bucket} has the condition {expression!r}")
                have["lister"].add(bucket)
                continue
            grants = _grants(expression)
            if not grants:
                problems.append(f"{spec.name}: a {kind} binding on {bucket} has no condition on object names ({expression!r})")
            strays = sorted(g for g in grants if not g.startswith(f"{bucket}/"))
            problems += [f"{spec.name}: a {kind} binding on {bucket} names {g}, in another bucket" for g in strays]
            have.setdefault(kind, set()).update(grants)
        for kind in sorted(set(want) | set(have)):
            problems += [f"{spec.name}: {kind} on {g} is granted but no step needs it" for g in sorted(have.get(kind, set()) - want.get(kind, set()))]
            problems += [f"{spec.name}: {kind} on {g} is needed but not granted" for g in sorted(want.get(kind, set()) - have.get(kind, set()))]
        invoked = [i for i in invokers if i["service"] == f"google_cloudfunctions2_function.{ident}.name"]
        if ident is not None and [(i["role"], i["member"]) for i in invoked] != [("roles/run.invoker", "var.gcp_invoker")]:
            problems.append(f"{spec.name}: its invoker bindings are {invoked}, not roles/run.invoker for var.gcp_invoker")
    return problems

