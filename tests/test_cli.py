import json
import subprocess
import sys

import jaxadv
from jaxadv.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "jaxadv", *args], capture_output=True, text=True, timeout=300)


def test_version():
    out = _run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"jaxadv {jaxadv.__version__}"


def test_info_json_names_versions_backend_and_devices():
    out = _run("info", "--json")
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    import jax

    assert env["jax"] == jax.__version__
    assert env["backend"] == jax.default_backend()
    assert env["devices"] and env["jaxadv"] == jaxadv.__version__


def test_info_text(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "backend" in text and "jaxlib" in text


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "info" in capsys.readouterr().out
