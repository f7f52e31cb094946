"""Running the test flows as a user would: `python flow.py run ...` in a
fresh directory, with the library and the package from the build."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FLOWS = os.path.join(HERE, "flows")
PYTHON = os.environ.get("MF_TEST_PYTHON", sys.executable)


def env_for(datastore_root, **extra):
    env = dict(os.environ)
    # Metaflow's meaning: the datastore is $METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow
    env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = os.path.dirname(str(datastore_root))
    env.setdefault("METAFLOW_USER", "tester")
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_flow(tmp_path, flow, *args, env=None, timeout=120, check=None):
    """Run `python flows/<flow> <args>` with a datastore under tmp_path.
    Returns the CompletedProcess (stdout and stderr as text)."""
    e = env_for(tmp_path / ".metaflow", **(env or {}))
    p = subprocess.run([PYTHON, os.path.join(FLOWS, flow)] + list(args), cwd=str(tmp_path),
                       env=e, capture_output=True, text=True, timeout=timeout)
    if check is not None and (p.returncode == 0) != check:
        raise AssertionError("%s %s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (flow, " ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def use_datastore(monkeypatch, tmp_path):
    """Point this process's client at the test's datastore."""
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path))
    monkeypatch.setenv("METAFLOW_USER", "tester")
