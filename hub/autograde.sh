#!/usr/bin/env bash
# Autograde on the hub, as root: `sudo hub/autograde.sh session07_residual_cnn [--force]`.
# The grading sandbox (autograder/sandbox.py) isolates student code only when nbgrader runs as
# root; from the instructor's formgrader it runs as the instructor, who owns source/ and the
# gradebook, with resource limits only. Then the course is given back to the instructor.
set -euo pipefail
root="${DEEPNETS_HUB_ROOT:-/srv/deepnets-hub}"
python="$root/venv/bin/python"
read -r course instructor < <("$python" -c 'import json, sys; u = json.load(open(sys.argv[1])); print(u["course"], u["instructor"])' "$root/users.json")
cd "$course"
PATH="$root/venv/bin:$PATH" "$python" -m nbgrader autograde "$@"
chown -R "$instructor:$instructor" "$course"
