"""Put the course on a JupyterHub on this machine (run as root; `make hub` calls it).

    python hub/setup_hub.py --root /srv/deepnets-hub --instructor instructor --students alice bob

Creates, under --root:
- venv/: the environment every user's server and kernel runs in, made from the system's Python
  (users cannot run root's Python or read the repository): the course venv's third-party
  packages hard-linked (no copy, no download), `deepnets` from the student wheel (never the
  repository's editable install, which would point users at source/), jupyterhub, the course's
  kernel "Python 3 (deepnets course)", nbgrader's extensions (the Assignment List and Validate
  for everyone; the formgrader and Create Assignment only for the instructor, as nbgrader's
  JupyterHub docs lay out), and a global nbgrader_config.py naming the course and the exchange;
- exchange/: nbgrader's exchange, ugo+rwx as nbgrader documents (nbgrader then makes each
  course's inbound write-only, so students cannot list each other's submissions);
- users.json: who may log in, read by hub/jupyterhub_config.py.
Creates the system users (home folders 0700) and the instructor's course directory,
~INSTRUCTOR/deep-networks (nbgrader_config.py, source/, notebooks/, autograder/, generated
assignments), readable by the instructor alone. Running it again updates what it made.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import build_student  # noqa: E402

COURSE_ID = "deep-networks"          # as in nbgrader_config.py
COURSE_FOLDER = "deep-networks"      # in the instructor's home
KERNEL_NAME = "Python 3 (deepnets course)"
COURSE_OWN = ("deepnets", "__editable__", "autograder")  # never linked from the course venv
# nbgrader's lab and server extensions: everyone gets these two ...
FOR_EVERYONE = ["assignment-list", "validate-assignment"]
# ... only the instructor these (nbgrader's JupyterHub docs: formgrader for graders only).
FOR_INSTRUCTOR = ["formgrader", "create-assignment", "course-list"]
SERVER_EXTENSIONS = {"assignment-list": "assignment_list", "validate-assignment": "validate_assignment",
                     "formgrader": "formgrader", "course-list": "course_list"}
COURSE_FILES = ["nbgrader_config.py", "source", "notebooks", "autograder", "deepnets", "demos"]


def run(*command: str, user: str | None = None, **kwargs) -> None:
    if user:
        home = pwd.getpwnam(user).pw_dir
        command = (shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser", "-u", user, "--", "env", f"HOME={home}", f"USER={user}", *command)
    subprocess.run(command, check=True, **kwargs)


def make_user(name: str) -> Path:
    try:
        pwd.getpwnam(name)
    except KeyError:
        run("useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name)
    home = Path(pwd.getpwnam(name).pw_dir)
    home.chmod(0o700)  # nobody else reads a home: other students' work, the instructor's course
    return home


def link_tree(source: Path, target: Path, skip=lambda path: False) -> None:
    """Hard links of every file under `source` (copies where a link cannot be made)."""
    for folder, dirs, files in os.walk(source):
        folder = Path(folder)
        dirs[:] = [d for d in dirs if not skip(folder / d)]
        destination = target / folder.relative_to(source)
        destination.mkdir(parents=True, exist_ok=True)
        for name in files:
            if skip(folder / name) or (destination / name).exists():
                continue
            try:
                os.link(folder / name, destination / name, follow_symlinks=False)
            except OSError:
                shutil.copy2(folder / name, destination / name, follow_symlinks=False)


def unsupported_packages(site: Path, python_version: str) -> list[str]:
    """The distributions in `site` whose Requires-Python excludes `python_version`. The hub links
    the course venv's packages, which pip chose for the course's Python, under the system's Python
    (another patch release, maybe): pip's own check never runs on them, so this one does. (Found
    the hard way: soupsieve 4 requires 3.11.5, and on Debian 12's 3.11.2 every CSS selector, so
    nbconvert's HTML export and with it Generate Feedback, failed.)"""
    import importlib.metadata

    from packaging.specifiers import SpecifierSet

    refused = []
    for distribution in importlib.metadata.distributions(path=[str(site)]):
        requires = distribution.metadata.get("Requires-Python")
        if requires and not SpecifierSet(requires).contains(python_version, prereleases=True):
            refused.append(f"{distribution.metadata['Name']} {distribution.version} (Python {requires})")
    return sorted(refused)


def write_console_scripts(venv: Path) -> None:
    """bin/ scripts (jupyterhub, jupyterhub-singleuser, jupyter-*, nbgrader, alembic) for the
    packages linked into `venv`, which pip never installed there."""
    python = venv / "bin" / "python"
    run(str(python), "-c", f"""if True:
        import importlib.metadata, os
        for entry in importlib.metadata.entry_points(group="console_scripts"):
            path = os.path.join({str(venv / 'bin')!r}, entry.name)
            module, _, function = entry.value.partition(":")
            with open(path, "w") as script:
                script.write(f"#!{python}\\nimport sys\\nfrom {{module}} import {{function.split('.')[0]}}\\n"
                             f"sys.exit({{function}}())\\n")
            os.chmod(path, 0o755)
        """)


def write_extension_settings(config_dir: Path, everyone: bool) -> None:
    """nbgrader's lab and server extensions, as `jupyter labextension enable --level=...` and
    `jupyter server extension enable` would set them (written directly: each of those commands
    takes seconds, and since JupyterLab 4.1 a disable at sys_prefix level locks the plugin).
    everyone=True: the venv's settings (FOR_EVERYONE on, FOR_INSTRUCTOR off); False: the
    instructor's own (FOR_INSTRUCTOR on)."""
    page = {"disabledExtensions": {f"@jupyter/nbgrader:{name}": everyone for name in FOR_INSTRUCTOR}}
    if everyone:
        page["disabledExtensions"].update({f"@jupyter/nbgrader:{name}": False for name in FOR_EVERYONE})
    server = {f"nbgrader.server_extensions.{SERVER_EXTENSIONS[name]}": not everyone
              for name in FOR_INSTRUCTOR if name in SERVER_EXTENSIONS}
    if everyone:
        server.update({f"nbgrader.server_extensions.{SERVER_EXTENSIONS[name]}": True for name in FOR_EVERYONE})
    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=1))
    settings = {"ServerApp": {"jpserver_extensions": server}}
    if everyone:
        conf_d = config_dir / "jupyter_server_config.d"
        for old in conf_d.glob("nbgrader*.json"):
            old.unlink()
        (conf_d / "nbgrader.json").write_text(json.dumps(settings, indent=1))
    else:
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(settings, indent=1))


def make_venv(venv: Path, course_venv: Path, exchange: Path) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin")
    if not system_python:
        sys.exit(f"The hub needs a system Python {version} (the course venv's version) that every "
                 f"user can run: apt-get install python{version}")
    if not (venv / "bin" / "python").exists():
        run(system_python, "-m", "venv", "--without-pip", str(venv))
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    course_site = Path(sysconfig.get_paths()["purelib"])
    link_tree(course_site, site, skip=lambda p: p.parent == course_site and (
        p.name.startswith(COURSE_OWN) or p.suffix == ".pth"))
    hub_python = subprocess.run([str(venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
                                check=True, capture_output=True, text=True).stdout.strip()
    refused = unsupported_packages(site, hub_python)
    if refused:
        sys.exit(f"The course's packages were installed for Python {sys.version.split()[0]}; the hub runs the "
                 f"system's {hub_python} ({system_python}), which these do not support: {', '.join(refused)}. "
                 "Pin versions that support both in requirements.txt, or install the hub's Python version.")
    kernels = venv / "share" / "jupyter" / "kernels"
    link_tree(course_venv / "share", venv / "share", skip=lambda p: p == course_venv / "share" / "jupyter" / "kernels")
    # etc/ is rewritten below (extensions disabled, the course's config): copies, not links.
    shutil.rmtree(venv / "etc", ignore_errors=True)
    shutil.copytree(course_venv / "etc", venv / "etc")
    wheel = build_student.build_wheel(venv.parent / "wheels")
    run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
        "--force-reinstall", str(wheel))
    write_console_scripts(venv)
    shutil.rmtree(kernels, ignore_errors=True)
    run(str(venv / "bin" / "python"), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
        "--display-name", KERNEL_NAME)
    write_extension_settings(venv / "etc" / "jupyter", everyone=True)
    # No "Would you like to get notified about Jupyter news?" pop-up for every user.
    overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.unlink(missing_ok=True)  # a hard link to the course venv's file, if any: not edited
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(json.dumps({"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}))
    (venv / "etc" / "jupyter" / "nbgrader_config.py").write_text(
        "# Every user of the hub: the course and its exchange (written by hub/setup_hub.py).\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n")
    for path in [venv.parent, *(p for p in venv.rglob("*") if p.is_dir())]:
        path.chmod(path.stat().st_mode | 0o755)


def make_course(instructor: str, home: Path, venv: Path, exchange: Path, students: list[str]) -> Path:
    course = home / COURSE_FOLDER
    course.mkdir(exist_ok=True)
    for name in COURSE_FILES:
        source, target = REPO / name, course / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb")
                            if name == "source" else shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    jupyter_dir = home / ".jupyter"
    jupyter_dir.mkdir(exist_ok=True)
    (jupyter_dir / "nbgrader_config.py").write_text(
        f"c = get_config()  # noqa: F821\nc.CourseDirectory.root = {str(course)!r}\n")
    run("chown", "-R", f"{instructor}:{instructor}", str(course), str(jupyter_dir))
    environment = {**os.environ, "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "DEEPNETS_EXCHANGE": str(exchange)}
    python = str(venv / "bin" / "python")
    build_sources(course, instructor)
    for assignment in sorted(p.name for p in (course / "source").iterdir() if p.is_dir()):
        run(python, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--log-level=WARN",
            user=instructor, cwd=course, env=environment)
    for student in students:
        run(python, "-m", "nbgrader", "db", "student", "add", student, "--log-level=WARN",
            user=instructor, cwd=course, env=environment)
    write_extension_settings(jupyter_dir, everyone=False)
    run("chown", "-R", f"{instructor}:{instructor}", str(jupyter_dir))
    return course


def build_sources(course: Path, instructor: str) -> None:
    """source/<assignment>/*.ipynb from the percent files, as `make setup` does in the repository."""
    import build_course

    build_course.build(course, sorted(os.listdir(course / "source")), execute=False, sources_only=True)
    run("chown", "-R", f"{instructor}:{instructor}", str(course / "source"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/srv/deepnets-hub"))
    parser.add_argument("--instructor", default="instructor")
    parser.add_argument("--students", nargs="+", default=["student1", "student2", "student3"])
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("Run as root: it creates system users (sudo make hub)")
    root = arguments.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    exchange = root / "exchange"
    exchange.mkdir(exist_ok=True)
    exchange.chmod(0o777)
    make_venv(root / "venv", Path(sys.prefix), exchange)
    homes = {name: make_user(name) for name in [arguments.instructor, *arguments.students]}
    course = make_course(arguments.instructor, homes[arguments.instructor], root / "venv", exchange,
                         arguments.students)
    (root / "users.json").write_text(json.dumps({
        "instructor": arguments.instructor, "students": arguments.students,
        "course": str(course), "exchange": str(exchange), "venv": str(root / "venv")}, indent=1))
    print(f"hub ready in {root}: instructor {arguments.instructor} (course {course}), "
          f"students {', '.join(arguments.students)}")


if __name__ == "__main__":
    main()
