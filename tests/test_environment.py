"""requirements.txt and environment.yml pin the same packages at the same versions."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)$")


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_requirements_and_environment_yml_pin_the_same_versions():
    requirements = pins((REPO / "requirements.txt").read_text().splitlines())
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == requirements
    assert "python=3.11" in environment["dependencies"]


def test_the_pins_are_what_is_installed():
    from importlib.metadata import version

    for name, pinned in pins((REPO / "requirements.txt").read_text().splitlines()).items():
        assert version(name) == pinned, f"{name}: installed {version(name)}, pinned {pinned}"


def lowest_python() -> str:
    """The oldest Python the course says it runs on: pyproject.toml's requires-python, as x.y.0."""
    import tomllib

    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires.strip())
    assert match, f"requires-python should be a lower bound, not {requires!r}"
    return f"{match.group(1)}.{match.group(2)}.0"


def unsupported_packages():
    """hub/setup_hub.py's check of linked packages against a Python (the one place it is written)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("setup_hub", REPO / "hub" / "setup_hub.py")
    setup_hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_hub)
    return setup_hub.unsupported_packages


def test_every_installed_package_supports_the_oldest_python_the_course_claims():
    """Transitive dependencies are not all pinned: one that moves past the course's oldest Python
    breaks whoever runs it there. soupsieve 4 (Python >= 3.11.5) broke nbconvert's HTML export,
    and so Generate Feedback, on the JupyterHub install's Debian 3.11.2 (hub/setup_hub.py)."""
    import sysconfig

    oldest = lowest_python()
    refused = unsupported_packages()(Path(sysconfig.get_paths()["purelib"]), oldest)
    assert not refused, f"the course claims Python {oldest}: pin older releases of " + "; ".join(refused)


def test_the_hub_refuses_course_packages_its_python_does_not_support(tmp_path):
    for name, version, requires in [("soupsieve", "4.1.3", ">=3.11.5"), ("numpy", "2.4.6", ">=3.11")]:
        info = tmp_path / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                       f"Requires-Python: {requires}\n")
    assert unsupported_packages()(tmp_path, "3.11.2") == ["soupsieve 4.1.3 (Python >=3.11.5)"]
    assert unsupported_packages()(tmp_path, "3.11.7") == []
