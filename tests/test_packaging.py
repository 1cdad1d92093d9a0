"""``pip install`` as users do it: built wheels, a fresh venv, the pip that venv ships with."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["glacier-core", "glacier-local", "glacier-aws", "glacier-gcp", "glacier-azure"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each package's wheel, built the way a release builds it (hatchling, no deps)."""
    out = tmp_path_factory.mktemp("wheels")
    for name in PACKAGES:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT / "packages" / name)],
            check=True,
        )
    built = sorted(out.glob("*.whl"))
    assert len(built) == len(PACKAGES), built
    return built


def test_the_wheels_install_with_the_pip_a_fresh_venv_ships_with(wheels: list[Path], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    shipped = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, check=True).stdout
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *map(str, wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, f"{shipped}\n{install.stderr[-3000:]}"
    probe = (
        "import sys, glacier\n"
        "heavy = sorted(m for m in ('boto3', 'botocore', 's3fs', 'fsspec', 'gcsfs', 'google.cloud') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('adlfs', 'azure')]\n"
        "from glacier.config import AwsConfig, LambdaConfig, LocalConfig\n"
        "import glacier_aws.executor, glacier_aws.storage, botocore.session, s3fs\n"
        "import hcl2, glacier_aws.infra.terraform  # glacier-aws brings glacier-core[infra]\n"
        "from glacier.config import GcpConfig, CloudFunctionConfig\n"
        "import glacier_gcp.executor, glacier_gcp.storage, glacier_gcp.infra.terraform, gcsfs.core, google.oauth2.id_token\n"
        "from glacier.config import AzureConfig, AzureFunctionConfig\n"
        "import glacier_azure.executor, glacier_azure.storage, glacier_azure.infra.terraform, adlfs, azure.storage.queue, azure.identity\n"
        "print('ok')\n"
    )
    ran = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    assert ran.stdout.strip() == "ok", ran.stderr[-3000:]


def _requires(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode()).get_all("Requires-Dist") or []


def test_python_hcl2_is_glacier_cores_infra_extra_which_the_provider_requires(wheels: list[Path]) -> None:
    by_name = {w.name.split("-")[0]: w for w in wheels}
    core = _requires(by_name["glacier_core"])
    assert [r for r in core if r.startswith("python-hcl2")] == ["python-hcl2==8.1.4; extra == 'infra'"]
    assert [r for r in _requires(by_name["glacier_aws"]) if r.startswith("glacier-core")] == ["glacier-core[infra]"]
