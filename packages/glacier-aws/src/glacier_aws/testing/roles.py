"""The generated IAM held against the access model: what a provider test suite checks.

:func:`role_problems` reads a generated ``main.tf`` back (python-hcl2) and, for every
Lambda function of the pipeline, compares what its role allows on S3 with what
:func:`glacier.infra.access.function_access` says the function's steps touch: each
source object read, each target (and its cache record) written, each listed prefix.
A grant the steps do not need, or a need without a grant, is a problem.
"""

from __future__ import annotations

from pathlib import Path
import json
import re
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

if TYPE_CHECKING:
    from glacier.pipeline import Pipeline

__all__ = ["role_problems", "function_policies", "assume_function_roles"]

_SCHEMES = ("s3", "s3a")


def role_problems(generated_dir: str | Path, pipeline: Pipeline) -> list[str]:
    """Every difference between the generated roles and the access model, as sentences.

    Globs are compared as written: Glacier's ``*`` and ``?`` are IAM's too. The roles that
    functions of other clouds assume (:mod:`glacier_aws.infra.federation`) are held against
    their :class:`~glacier.infra.access.ForeignAccess` the same way, and their trust policy
    must admit only that function's identity, by web identity, with no other action.
    """
    import hcl2

    from glacier.testing.terraform import blocks, unquote

    from glacier.infra.access import function_access
    from glacier.infra.generate import function_specs

    with open(Path(generated_dir) / "main.tf") as f:
        doc = hcl2.load(f)
    functions = {unquote(body["function_name"]): ident for ident, body in blocks(doc, "resource", "aws_lambda_function").items()}
    policies = blocks(doc, "data", "aws_iam_policy_document")
    from glacier.infra.access import access_local, foreign_access, identity_local

    from glacier_aws.infra.federation import ENVIRONMENT, SECRET_CLOUDS, SECRET_ENV, foreign_role_identifier, secret_identifier

    problems = []
    dag = pipeline.build()
    pairs = foreign_access(pipeline, dag)
    lambdas = {unquote(body["function_name"]): unquote(body) for body in blocks(doc, "resource", "aws_lambda_function").values()}
    roles: list[tuple[Any, str | None]] = [(spec, functions.get(spec.name)) for spec in function_specs(pipeline, dag).get("aws", {}).values()]
    roles += [(pair.spec, foreign_role_identifier(pair.spec)) for pair in pairs if pair.cloud == "aws"]
    declared_roles = blocks(doc, "resource", "aws_iam_role")
    for pair in pairs:
        if pair.home == "aws":  # its environment names what the other cloud published for it
            env = lambdas.get(pair.spec.name, {}).get("environment", [{}])[0].get("variables", {})
            for name, key in ENVIRONMENT.get(pair.cloud, {}).items():
                if _bare(env.get(name)) != f"local.{access_local(pair.spec, pair.cloud)}.{key}":
                    problems.append(f"{pair.spec.name}: its {name} is {env.get(name)!r}, not what {pair.cloud} published for it")
            if pair.cloud in SECRET_CLOUDS:  # the ARN of its own secret, readable by its role alone
                secret = f"aws_secretsmanager_secret.{secret_identifier(pair.spec, pair.cloud)}.arn"
                if _bare(env.get(SECRET_ENV)) != secret:
                    problems.append(f"{pair.spec.name}: its {SECRET_ENV} is {env.get(SECRET_ENV)!r}, not {secret}")
                if secret_identifier(pair.spec, pair.cloud) in blocks(doc, "resource", "aws_secretsmanager_secret_version"):
                    problems.append(f"{pair.spec.name}: the value of its {pair.cloud} secret is in Terraform")
            continue
        if pair.cloud != "aws":
            continue
        federated = foreign_role_identifier(pair.spec)
        if federated not in declared_roles:
            problems.append(f"{pair.spec.name} on {pair.home}: no federated role {federated}")
            continue
        trust = [unquote(st) for st in policies.get(f"{federated}_assume_role", {}).get("statement", [])]
        identity = f"local.{identity_local(pair.spec)}"
        subject = f"{identity}.unique_id" if pair.home == "gcp" else f"{identity}.principal_id"
        if len(trust) != 1 or trust[0]["actions"] != ["sts:AssumeRoleWithWebIdentity"]:
            problems.append(f"{pair.spec.name} on {pair.home}: its role's trust is {trust}, not one web identity statement")
            continue
        subs = [c for c in trust[0].get("condition", []) if c["variable"].endswith(":sub")]
        if [(c["test"], c["values"]) for c in subs] != [("StringEquals", [subject])]:
            problems.append(f"{pair.spec.name} on {pair.home}: its role trusts the subjects {subs}, not only {subject}")
    for spec, ident in roles:
        if ident is None:
            problems.append(f"function {spec.name!r} is not in the generated module")
            continue
        statements = [unquote(s) for s in policies.get(ident, {}).get("statement", [])]
        access = function_access(spec).only(_SCHEMES)
        writes = {_arn(u) for u in access.writes | access.temporaries}
        expected = {"s3:GetObject": {_arn(u) for u in access.reads}, "s3:PutObject": writes, "s3:AbortMultipartUpload": writes}
        for action, want in expected.items():
            have = {r for s in statements if action in s["actions"] for r in s["resources"]}
            problems += [f"{spec.name}: {action} on {r} is granted but no step needs it" for r in sorted(have - want)]
            problems += [f"{spec.name}: {action} on {r} is needed but not granted" for r in sorted(want - have)]
        listed: dict[str, set[str]] = {}
        for listing in access.lists:
            bucket, _, key = listing.prefix.partition("://")[2].partition("/")
            listed.setdefault(f"aws_s3_bucket.{_ident(bucket)}.arn", set()).add(key + ("*" if listing.deeper else ""))
        granted = {s["resources"][0]: set(s["condition"][0]["values"]) for s in statements if s["actions"] == ["s3:ListBucket"]}
        if granted != listed:
            problems.append(f"{spec.name}: s3:ListBucket is granted on {granted}, the steps list {listed}")
        home = ident == functions.get(spec.name)
        other = {a for s in statements for a in s["actions"] if a.startswith("s3:") or not home} - {*expected, "s3:ListBucket"}
        # Secrets Manager: at home only, only the function's own cross-cloud secrets.
        secrets = {r for s in statements if "secretsmanager:GetSecretValue" in s["actions"] for r in s["resources"]}
        own = {f"aws_secretsmanager_secret.{secret_identifier(spec, p.cloud)}.arn" for p in pairs if home and p.spec.name == spec.name and p.cloud in SECRET_CLOUDS}
        if secrets != own:
            problems.append(f"{spec.name}: may read the secrets {sorted(secrets)}, not only its own {sorted(own)}")
        other |= {a for s in statements for a in s["actions"] if a.startswith("secretsmanager:")} - {"secretsmanager:GetSecretValue"}
        problems += [f"{spec.name}: {a} is granted but no step uses it" for a in sorted(other)]
    return problems


def _bare(value: Any) -> Any:
    """A single interpolation ``"${x}"`` as the bare reference ``x`` python-hcl2 reads."""
    text = str(value)
    return text[2:-1] if text.startswith("${") and text.endswith("}") and text.count("${") == 1 else value


def _ident(bucket: str) -> str:
    from glacier.infra.terraform import terraform_identifier

    return terraform_identifier(bucket.replace("-", "_"))  # as glacier_aws.infra.terraform names buckets


def _arn(uri: str) -> str:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return f"${{aws_s3_bucket.{_ident(bucket)}.arn}}/{key}"


_BUCKET_ARN = re.compile(r"\$\{aws_s3_bucket\.([A-Za-z0-9_-]+)\.arn\}")
_LOG_GROUP_ARN = re.compile(r"\$\{aws_cloudwatch_log_group\.([A-Za-z0-9_-]+)\.arn\}")
_ROLE = re.compile(r"^\$\{aws_iam_role\.([A-Za-z0-9_-]+)\.arn\}$")
_POLICY = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$")


def function_policies(generated_dir: str | Path, *, region: str = "us-east-1", account: str = "123456789012") -> dict[str, dict[str, Any]]:
    """Each generated function's role policy as IAM JSON, the way ``terraform apply`` would send it.

    The ``aws_iam_policy_document`` behind each function's ``aws_iam_role_policy`` is
    rendered with its references resolved: ``aws_s3_bucket.X.arn`` to
    ``arn:aws:s3:::NAME`` and ``aws_cloudwatch_log_group.X.arn`` to the log group's ARN.

    Returns
    -------
    dict
        Function name -> policy document (``{"Version": ..., "Statement": [...]}``).
    """
    import hcl2
    from hcl2.utils import SerializationOptions

    with open(Path(generated_dir) / "main.tf", encoding="utf-8") as f:
        doc = hcl2.load(f, serialization_options=SerializationOptions(strip_string_quotes=True, with_comments=False))

    def named(kind: str, type_: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for entry in doc.get(kind, []):
            found.update(entry.get(type_, {}))
        return found

    buckets = {ident: str(body["bucket"]) for ident, body in named("resource", "aws_s3_bucket").items()}
    groups = {ident: str(body["name"]) for ident, body in named("resource", "aws_cloudwatch_log_group").items()}
    documents = named("data", "aws_iam_policy_document")
    role_policy = {str(body["role"]).removeprefix("${aws_iam_role.").removesuffix(".id}"): str(body["policy"])
                   for body in named("resource", "aws_iam_role_policy").values()}

    def resolve(value: str) -> str:
        value = _BUCKET_ARN.sub(lambda m: f"arn:aws:s3:::{buckets[m.group(1)]}", value)
        value = _LOG_GROUP_ARN.sub(lambda m: f"arn:aws:logs:{region}:{account}:log-group:{groups[m.group(1)].replace('${', '').replace('}', '')}", value)
        return value.replace("$${", "${").replace("%%{", "%{")  # Terraform's template escapes

    policies = {}
    for body in named("resource", "aws_lambda_function").values():
        role = _ROLE.match(str(body["role"]))
        policy = _POLICY.match(role_policy.get(role.group(1), "") if role else "")
        if role is None or policy is None:
            raise ValueError(f"function {body['function_name']}: no aws_iam_role_policy from a policy document for its role")
        statements = []
        for st in documents[policy.group(1)].get("statement", []):
            out: dict[str, Any] = {"Sid": st["sid"], "Effect": st.get("effect", "Allow"), "Action": st["actions"],
                                   "Resource": [resolve(str(r)) for r in st["resources"]]}
            for condition in st.get("condition", []):
                values = [resolve(str(v)) for v in condition["values"]]
                out.setdefault("Condition", {}).setdefault(condition["test"], {})[condition["variable"]] = values
            statements.append(out)
        policies[str(body["function_name"])] = {"Version": "2012-10-17", "Statement": statements}
    return policies


@contextmanager
def _enforcement_paused(endpoint_url: str) -> Iterator[None]:
    """moto's server without IAM enforcement for a moment: the Lambda service assumes roles
    (a ``Service`` principal, which moto's trust check cannot evaluate)."""

    def set_count(value: str) -> None:
        request = urllib.request.Request(f"{endpoint_url}/moto-api/reset-auth", data=value.encode(), method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).close()

    set_count("inf")
    try:
        yield
    finally:
        set_count("0")


def assume_function_roles(generated_dir: str | Path, endpoint_url: str, *, region: str = "us-east-1") -> dict[str, dict[str, str]]:
    """Create each generated function's role in moto's IAM with its generated policy, assume it, return its credentials.

    For a moto server that enforces IAM (``INITIAL_NO_AUTH_ACTION_COUNT=0``): with these
    credentials a function may do on S3 exactly what its generated role allows, so a
    step that touches anything else is refused (``AccessDenied``). The roles are created
    and assumed with enforcement paused, as the Lambda service (not a user) assumes them.

    Parameters
    ----------
    generated_dir
        Where ``generate`` wrote ``main.tf``.
    endpoint_url
        The moto server (IAM, STS and S3 on one address).

    Returns
    -------
    dict
        Function name -> ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``.
    """
    import boto3

    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    keys = {"region_name": region, "endpoint_url": endpoint_url, "aws_access_key_id": "lambda-service", "aws_secret_access_key": "lambda-service"}
    found = {}
    with _enforcement_paused(endpoint_url):
        iam, sts = boto3.client("iam", **keys), boto3.client("sts", **keys)
        for function, policy in function_policies(generated_dir, region=region).items():
            role = f"glacier-{function}"[:64]
            try:
                iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
            except iam.exceptions.EntityAlreadyExistsException:
                pass
            iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))
            arn = iam.get_role(RoleName=role)["Role"]["Arn"]
            creds = sts.assume_role(RoleArn=arn, RoleSessionName=function[:64])["Credentials"]
            found[function] = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"], "AWS_SESSION_TOKEN": creds["SessionToken"]}
    return found
