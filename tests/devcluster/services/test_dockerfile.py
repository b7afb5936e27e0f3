"""Reading images/ Dockerfiles without Docker: pins, build inputs, image config."""

from __future__ import annotations

from devcluster.services import dockerfile
from tests.paths import REPO


def test_the_hub_image_installs_its_pins_from_its_build_inputs():
    parsed = dockerfile.parse((REPO / "images/hub/Dockerfile").read_text())
    (install,) = parsed.pip
    assert install[:2] == ["-c", "/tmp/wbspawner/constraints.txt"]
    assert "jupyterhub==6.1.1" in install
    assert "dask-gateway-server[kubernetes]==2026.3.0" in install
    assert install[-1] == "/tmp/wbspawner"  # wbspawner itself, as COPY staged it
    staged = dict(parsed.staged())
    assert staged["wbspawner"] == "/tmp/wbspawner/wbspawner"
    assert staged["pyproject.toml"] == "/tmp/wbspawner/pyproject.toml"
    assert parsed.files() == {
        "/usr/local/etc/wbspawner/jupyterhub_config.py": "jupyterhub_config.py"
    }
    config = parsed.config()
    assert config["Entrypoint"] == ["tini", "-g", "--"]
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/srv/jupyterhub"
    assert "PYTHONUNBUFFERED=1" in config["Env"]


def test_build_args_override_arg_defaults():
    text = (REPO / "images/singleuser/Dockerfile").read_text()
    parsed = dockerfile.parse(text, {"DASK_VERSION": "1.0"})
    assert "dask==1.0" in parsed.pip[0]
    assert parsed.base.startswith("python:3.11")


def test_continuations_comments_env_forms_and_command_chains():
    text = (
        "ARG V=2\n"
        "FROM python:3.11-slim\n"
        "ARG V\n"
        "ENV A=1 \\\n"
        '    B="two words"\n'
        "ENV OLD form kept\n"
        "# a comment\n"
        "COPY pkg /tmp/pkg\n"
        "COPY a.txt b.txt /opt/data/\n"
        "RUN apt-get update \\\n"
        "    # inside a continuation\n"
        '    && pip install --no-cache-dir -r /tmp/pkg/req.txt "x==${V}" /tmp/pkg \\\n'
        "    && python -c \"import x; print('a; b')\" ; python -m pip install y==$V\n"
        "WORKDIR /work\n"
        "USER 1000:100\n"
        'CMD ["x", "--serve"]\n'
    )
    parsed = dockerfile.parse(text)
    assert parsed.env == {"A": "1", "B": "two words", "OLD": "form kept"}
    assert parsed.pip == [["-r", "/tmp/pkg/req.txt", "x==2", "/tmp/pkg"], ["y==2"]]
    assert parsed.files() == {"/opt/data/a.txt": "a.txt", "/opt/data/b.txt": "b.txt"}
    assert parsed.config()["Cmd"] == ["x", "--serve"]
    assert parsed.config()["Entrypoint"] == []
    assert (parsed.workdir, parsed.user) == ("/work", "1000:100")
