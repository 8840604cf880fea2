"""A project with its OWN Vagrantfile (the classic setup: forward 8001 -> 5000, its own share and
provisioner) booted by `devstack up --vm` on real Vagrant (libvirt, QEMU).

Runs before test_vm_stack.py (file order) and destroys its VM at the end of the module, so the
two VMs never hold host port 8001 at the same time.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from devstack.project.config import load
from devstack.stack import probes
from devstack.vm import guest, vagrantfile
from tests.support.stack import EXAMPLE
from tests.support.wheel import make_wheel
from tests.vm.conftest import VMProject, _sweep, require_vm

pytestmark = pytest.mark.vm

GUEST_PATH = "/srv/chat"
USER_VAGRANTFILE = f"""\
# The project's own file, as a team would keep it in the repository.
Vagrant.configure("2") do |config|
  config.vm.box = "devstack-test"
  config.vm.network "forwarded_port", guest: 5000, host: 8001
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.synced_folder ".", "{GUEST_PATH}", type: "rsync",
    rsync__exclude: [".devstack/", ".vagrant/", ".git/"]
  config.vm.provision "shell", inline: "echo provisioned-by-the-project > /home/vagrant/project-marker"
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "qemu"
    libvirt.cpus = 1
    libvirt.memory = 1024
  end
end
"""

# The app's own dependency, one the box cannot have: a wheel in the project, found through the
# project's requirements.txt; the app imports it in a route.
REQUIREMENTS = "--find-links wheels\ngreeting==1.0\n"
APP_ROUTE = """

@app.route("/greeting")
def greeting_route() -> str:
    import greeting

    return greeting.hello()
"""


@pytest.fixture(scope="module")
def own_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VMProject]:
    require_vm()
    root = tmp_path_factory.mktemp("own-vagrantfile") / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    (root / "Vagrantfile").write_text(USER_VAGRANTFILE, encoding="utf-8")
    (root / "requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    make_wheel(root / "wheels")
    with open(root / "app.py", "a", encoding="utf-8") as app:
        app.write(APP_ROUTE)
    project = VMProject(root, 5000, 5001)
    try:
        seconds = project.up_vm()
        print(f"\nown Vagrantfile: devstack up --vm on a fresh VM ready through :8001 in {seconds:.0f} s")
        yield project
    finally:
        if project.proc is not None and project.proc.poll() is None:
            project.cli("down", timeout=90)
            project.proc.wait(timeout=60)
        project.cli("down", "--destroy", timeout=180)
        _sweep(project)


def test_the_users_file_is_run_unchanged_with_devstacks_layer(own_project: VMProject) -> None:
    assert (own_project.root / "Vagrantfile").read_text(encoding="utf-8") == USER_VAGRANTFILE
    overlay = (own_project.state_dir / "vm" / "Vagrantfile").read_text(encoding="utf-8")
    assert f'load "{(own_project.root / "Vagrantfile").resolve()}"' in overlay
    # vagrant ran in the project root: its machine is the one `vagrant up` there would use.
    assert (own_project.root / ".vagrant" / "machines" / "default" / "libvirt" / "id").is_file()
    out = (own_project.root.parent / "up-vm.out").read_text(errors="replace")
    assert "using your Vagrantfile" in out and GUEST_PATH in out  # (rich may wrap the line)


def test_users_provisioner_ran_and_share_path_is_theirs(own_project: VMProject) -> None:
    config = vagrantfile.gather(load(own_project.config_path)).config
    assert config.vm.guest_path == GUEST_PATH
    code, out, err = guest.run_in_guest(config, "cat /home/vagrant/project-marker; ls " + GUEST_PATH)
    assert code == 0, err
    assert "provisioned-by-the-project" in out and "app.py" in out


def test_the_apps_own_requirements_reach_the_guest(own_project: VMProject) -> None:
    out = (own_project.root.parent / "up-vm.out").read_text(errors="replace")
    assert "app requirements:" in out and "installed" in out, out[-2000:]
    page = probes.http_get("http://127.0.0.1:8001/greeting")
    assert page.status == 200 and page.body == b"hello from an app requirement", page.body[:300]


def test_served_through_the_users_forward_and_css_edit_fresh(own_project: VMProject) -> None:
    url = "http://127.0.0.1:8001"
    home = probes.http_get(url + "/")
    assert home.status == 200 and b"Hello from devstack" in home.body
    css = own_project.root / "static" / "css" / "app.css"
    with open(css, "a", encoding="utf-8") as handle:
        handle.write(f"/* edited {time.time_ns()} */\n")
    started = time.monotonic()
    while probes.http_get(url + "/static/css/app.css").body != css.read_bytes():
        assert time.monotonic() - started < 15, "the CSS edit never reached the guest's nginx"
        time.sleep(0.05)
    print(f"css edit fresh through the user's forward after {(time.monotonic() - started) * 1000:.0f} ms")


def test_down_and_up_again_reuse_the_running_vm(own_project: VMProject) -> None:
    own_project.stop_up()
    seconds = own_project.up_vm(timeout=180)
    phases = own_project.state()["extra"]["vm"]["phases"]
    print(f"own Vagrantfile: warm `up --vm` (VM already running) ready in {seconds:.1f} s: {phases}")
    out = (own_project.root.parent / "up-vm.out").read_text(errors="replace")
    assert "VM already running" in out
    # Same requirements, same guest: nothing downloaded, nothing installed the second time.
    assert "cached on the host" in out and "already in the VM" in out, out[-2000:]
    assert probes.http_get("http://127.0.0.1:8001/").status == 200


def test_up_vm_detach_returns_ready_and_down_stops_it(own_project: VMProject) -> None:
    own_project.stop_up()
    result = own_project.cli("up", "--vm", "--detach", timeout=300)
    assert result.returncode == 0, result.stderr
    # The daemon's progress is echoed, then the one ready line with the supervisor's pid.
    assert "VM already running" in result.stderr and "ready in" in result.stderr, result.stderr
    assert "Ctrl-C" not in result.stderr  # it is detached: `devstack down` stops it
    assert probes.http_get("http://127.0.0.1:8001/").status == 200
    status = own_project.cli("status", "--json")
    assert '"mode": "vm"' in status.stdout and '"running": true' in status.stdout, status.stdout
    down = own_project.cli("down", timeout=90)
    assert down.returncode == 0, down.stderr
    assert '"running": false' in own_project.cli("status", "--json").stdout
