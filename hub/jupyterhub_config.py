"""JupyterHub for the course on one machine (`make hub`; hub/setup_hub.py made what it names).

Settings from the environment:
  DEEPNETS_HUB_ROOT      what setup_hub.py made (default /srv/deepnets-hub)
  DEEPNETS_HUB_PORT      the port users open (default 8000), on DEEPNETS_HUB_IP (default 127.0.0.1)
  DEEPNETS_HUB_PASSWORD  the students' shared password, and DEEPNETS_HUB_ADMIN_PASSWORD the
                         instructor's (SharedPasswordAuthenticator): for a local test or a demo
                         only, since any student can log in as any other. In production use PAM
                         (the system users' own passwords: c.JupyterHub.authenticator_class =
                         "pam") or your institution's login (OAuthenticator, LTI); the rest of
                         this file stays as it is.
  DEEPNETS_DATA_ROOT, DEEPNETS_OFFLINE, DEEPNETS_BUDGET, DEEPNETS_MALLOC
                         passed on to every user's server (README)
"""

import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub provides get_config)

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("DEEPNETS_HUB_ROOT", "/srv/deepnets-hub"))
users = json.loads((ROOT / "users.json").read_text())
venv_bin = Path(users["venv"]) / "bin"

c.JupyterHub.bind_url = (f"http://{os.environ.get('DEEPNETS_HUB_IP', '127.0.0.1')}:"
                         f"{os.environ.get('DEEPNETS_HUB_PORT', '8000')}")
if os.environ.get("DEEPNETS_HUB_INTERNAL_PORT"):  # the hub's own API (tests pick free ports)
    c.JupyterHub.hub_port = int(os.environ["DEEPNETS_HUB_INTERNAL_PORT"])
if os.environ.get("DEEPNETS_HUB_PROXY_API_PORT"):
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['DEEPNETS_HUB_PROXY_API_PORT']}"
c.JupyterHub.db_url = f"sqlite:///{ROOT / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(ROOT / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(ROOT / "jupyterhub.pid")
# The proxy: configurable-http-proxy from npm, pinned in hub/package.json (`npm ci --prefix hub`).
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(ROOT / "proxy.pid")

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["DEEPNETS_HUB_PASSWORD"]
c.SharedPasswordAuthenticator.admin_password = os.environ["DEEPNETS_HUB_ADMIN_PASSWORD"]
c.Authenticator.allowed_users = {users["instructor"], *users["students"]}
c.Authenticator.admin_users = {users["instructor"]}

# Each user's server runs as that system user (LocalProcessSpawner), in the course's environment.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(venv_bin / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
    "DEEPNETS_EXCHANGE": users["exchange"],   # nbgrader_config.py of the course reads it
    **{name: os.environ[name] for name in ("DEEPNETS_DATA_ROOT", "DEEPNETS_OFFLINE", "DEEPNETS_BUDGET",
                                           "DEEPNETS_MALLOC")
       if name in os.environ},
}
