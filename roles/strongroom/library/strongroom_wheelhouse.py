#!/usr/bin/python
# Strongroom Ansible role: build (or inspect) the controller-side wheelhouse.
# SPDX-License-Identifier: MPL-2.0
# Ansible convention: DOCUMENTATION/EXAMPLES/RETURN come before the imports.
# ruff: noqa: E402
"""Module ``strongroom_wheelhouse``: a directory of every wheel a Strongroom install needs."""

from __future__ import annotations

DOCUMENTATION = r"""
module: strongroom_wheelhouse
short_description: Build Strongroom's wheelhouse on the controller, only when its source changed
description:
  - With O(build=true), runs C(python -m pip wheel --wheel-dir DIR SOURCE), which leaves the
    wheels of Strongroom and of all its dependencies in O(dest). The build runs only when
    O(dest) holds no build of the current source: a fingerprint of the inputs (the package
    sources, C(pyproject.toml), the Python version) is kept in O(dest)/.fingerprint.
  - The new wheelhouse is built next to O(dest) and swapped in whole, so a failed build
    leaves the previous one intact and no stale wheel survives a rebuild.
  - With O(build=false), only inspects O(dest) (wheels you built or downloaded yourself);
    the fingerprint is then a digest of the wheel files.
  - Either way, O(dest)/wheelhouse.tar holds the wheels and O(dest)/.fingerprint, so hosts
    receive one file (one checksum to compare on later runs instead of one per wheel). It is
    rewritten only when the fingerprint changes, and reproducibly (fixed owner and mtimes).
  - Meant to run on the controller (C(delegate_to=localhost), C(run_once=true)).
options:
  dest:
    description: Wheelhouse directory.
    type: path
    required: true
  source:
    description: Source tree holding C(pyproject.toml). Required when O(build=true).
    type: path
  build:
    description: Build from O(source) (when needed), or only inspect O(dest).
    type: bool
    default: true
  python:
    description: Python that runs C(pip wheel); its version is the one the wheels target.
    type: path
    required: true
  package:
    description: Distribution name of the package the wheelhouse is for.
    type: str
    default: strongroom
  version:
    description: Version the package's wheel must have; empty accepts the one found.
    type: str
    default: ""
  index_url:
    description: Package index for the dependencies (pip's default when empty).
    type: str
    default: ""
  lock:
    description:
      - Requirements file pinning every dependency with its hash
        (C(name==version --hash=sha256:...)). When set, the dependencies' wheels come
        from it only (C(pip wheel --require-hashes)): a file whose hash differs, or a
        dependency missing from the lock, stops the build. The package's own wheel is
        built with C(--no-deps), and each of its requirements must be in the lock.
        The lock's content is part of the fingerprint. Empty: pip resolves the
        package's ranges.
    type: path
  inputs:
    description:
      - Paths relative to O(source) whose content makes up the fingerprint. By default
        C(pyproject.toml), C(setup.py), C(setup.cfg), C(MANIFEST.in), the project's readme
        and the C([tool.setuptools.packages.find] where) directories.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Wheelhouse from this repository
  strongroom_wheelhouse:
    source: /src/strongroom
    dest: /src/strongroom/.cache/wheelhouse
    python: "{{ ansible_playbook_python }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
fingerprint:
  description: Digest identifying this wheelhouse's content (hosts record what they installed).
  type: str
  returned: success
wheels:
  description: File names of the wheels in the wheelhouse.
  type: list
  elements: str
  returned: success
archive:
  description: Path of the tar archive of the wheelhouse.
  type: str
  returned: success
package_wheel:
  description: File name of the package's own wheel.
  type: str
  returned: success
version:
  description: Version of the package's wheel.
  type: str
  returned: success
python_version:
  description: C(major.minor) of O(python), the version binary wheels were built for.
  type: str
  returned: success
"""

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import tomllib
import zipfile

from ansible.module_utils.basic import AnsibleModule

FINGERPRINT = ".fingerprint"
ARCHIVE = "wheelhouse.tar"
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def python_version(module, python):
    rc, out, err = module.run_command(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    if rc != 0:
        module.fail_json(msg=f"cannot run {python}: {err.strip() or out.strip()}")
    return out.strip()


def default_inputs(source):
    with open(os.path.join(source, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    inputs = ["pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in"]
    readme = project.get("project", {}).get("readme")
    if isinstance(readme, dict):
        readme = readme.get("file")
    if isinstance(readme, str):
        inputs.append(readme)
    find = project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    inputs += find.get("where", ["src"])
    return inputs


def source_digest(source, inputs):
    digest = hashlib.sha256()
    for rel in sorted(set(inputs)):
        top = os.path.join(source, rel)
        if os.path.isfile(top):
            files = [top]
        else:
            files = []
            for root, dirs, names in os.walk(top):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS
                                 and not d.endswith(".egg-info"))
                files += [os.path.join(root, n) for n in sorted(names)
                          if not n.endswith((".pyc", ".pyo"))]
        for path in files:
            digest.update(os.path.relpath(path, source).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def wheel_digest(dest, wheels):
    digest = hashlib.sha256()
    for name in wheels:
        digest.update(name.encode() + b"\0")
        with open(os.path.join(dest, name), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def list_wheels(dest):
    if not os.path.isdir(dest):
        return []
    return sorted(n for n in os.listdir(dest) if n.endswith(".whl"))


def read_fingerprint(dest):
    try:
        with open(os.path.join(dest, FINGERPRINT), encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return None


def package_wheel(module, wheels, package, version, dest):
    # Wheel file names normalise the project name: runs of -_. become _ (PEP 427/503).
    prefix = re.sub(r"[-_.]+", "_", package).lower() + "-"
    found = [w for w in wheels if w.lower().startswith(prefix)]
    if len(found) != 1:
        module.fail_json(msg=f"expected exactly one {package} wheel in {dest}, found "
                             f"{found or 'none'}")
    wheel_version = found[0][len(prefix):].split("-")[0]
    if version and wheel_version != version:
        module.fail_json(msg=f"{dest} holds {found[0]} (version {wheel_version}), but version "
                             f"{version} was requested")
    return found[0], wheel_version


def lock_digest(lock):
    if not lock:
        return ""
    with open(lock, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_names(lock):
    names = set()
    with open(lock, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^]]*\])?\s*==", line)
            if match:
                names.add(canonical(match.group(1)))
    return names


def wheel_requirements(path):
    """Names of a wheel's unconditional requirements (Requires-Dist without an extra)."""
    with zipfile.ZipFile(path) as wheel:
        meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        text = wheel.read(meta).decode("utf-8")
    names = set()
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        spec = line.split(":", 1)[1]
        if re.search(r"extra\s*==", spec.split(";", 1)[-1]) and ";" in spec:
            continue
        names.add(canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec).group(1)))
    return names


def pip_wheel(module, params, staging, parent, args):
    cmd = [params["python"], "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
           "--wheel-dir", staging]
    if params["index_url"]:
        cmd += ["--index-url", params["index_url"]]
    cmd += args
    rc, out, err = module.run_command(cmd, cwd=parent)
    if rc != 0:
        shutil.rmtree(staging, ignore_errors=True)
        module.fail_json(msg="pip wheel failed", cmd=cmd, rc=rc, stdout=out, stderr=err)


def build(module, params, fingerprint):
    dest = params["dest"]
    parent = os.path.dirname(dest.rstrip("/")) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".wheelhouse-", dir=parent)
    # pip builds in a copy of the tree (build isolation), so the source stays untouched.
    if not params["lock"]:
        pip_wheel(module, params, staging, parent, [params["source"]])
    else:
        pip_wheel(module, params, staging, parent, ["--no-deps", params["source"]])
        own = package_wheel(module, list_wheels(staging), params["package"], "", staging)[0]
        missing = wheel_requirements(os.path.join(staging, own)) - lock_names(params["lock"])
        if missing:
            shutil.rmtree(staging, ignore_errors=True)
            module.fail_json(msg=f"{own} requires {', '.join(sorted(missing))}, which the lock "
                                 f"{params['lock']} does not pin: add them with their hashes")
        # Only the lock's files, each checked against its hash (and any dependency of
        # theirs missing from the lock is an error in this mode).
        pip_wheel(module, params, staging, parent, ["--require-hashes", "-r", params["lock"]])
    with open(os.path.join(staging, FINGERPRINT), "w", encoding="ascii") as handle:
        handle.write(fingerprint + "\n")
    os.chmod(staging, 0o755)  # noqa: S103 - public wheels; mkdtemp made it 0700
    old = None
    if os.path.exists(dest):
        old = dest.rstrip("/") + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(dest, old)
    os.rename(staging, dest)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def write_archive(dest, wheels, fingerprint):
    """(Re)write dest/wheelhouse.tar unless it already holds this fingerprint's wheels."""
    path = os.path.join(dest, ARCHIVE)
    if read_fingerprint(dest) == fingerprint and os.path.isfile(path):
        return False
    with open(os.path.join(dest, FINGERPRINT), "w", encoding="ascii") as handle:
        handle.write(fingerprint + "\n")
    staging = path + ".tmp"
    with tarfile.open(staging, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in [FINGERPRINT] + wheels:
            info = tar.gettarinfo(os.path.join(dest, name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o644
            info.mtime = 0
            with open(os.path.join(dest, name), "rb") as handle:
                tar.addfile(info, handle)
    os.replace(staging, path)
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "source": {"type": "path"},
            "build": {"type": "bool", "default": True},
            "python": {"type": "path", "required": True},
            "package": {"type": "str", "default": "strongroom"},
            "version": {"type": "str", "default": ""},
            "index_url": {"type": "str", "default": ""},
            "inputs": {"type": "list", "elements": "str"},
            "lock": {"type": "path"},
        },
        required_if=[("build", True, ("source",))],
        supports_check_mode=True,
    )
    params = module.params
    dest = params["dest"]
    py_version = python_version(module, params["python"])
    changed = False
    if params["build"]:
        source = params["source"]
        if not os.path.isfile(os.path.join(source, "pyproject.toml")):
            module.fail_json(msg=f"{source} has no pyproject.toml (strongroom_source_dir)")
        inputs = params["inputs"] or default_inputs(source)
        if params["lock"] and not os.path.isfile(params["lock"]):
            module.fail_json(msg=f"the lock {params['lock']} does not exist "
                                 "(strongroom_wheelhouse_lock)")
        fingerprint = hashlib.sha256(
            f"{py_version}\0{params['index_url']}\0{source_digest(source, inputs)}"
            f"\0{lock_digest(params['lock'])}".encode()
        ).hexdigest()[:32]
        if read_fingerprint(dest) != fingerprint or not list_wheels(dest):
            changed = True
            if module.check_mode:
                module.exit_json(changed=True, fingerprint=fingerprint, wheels=[],
                                 archive=os.path.join(dest, ARCHIVE), package_wheel="",
                                 version=params["version"], python_version=py_version)
            build(module, params, fingerprint)
    wheels = list_wheels(dest)
    if not wheels:
        module.fail_json(msg=f"no wheels in {dest}")
    wheel, version = package_wheel(module, wheels, params["package"], params["version"], dest)
    if not params["build"]:
        fingerprint = wheel_digest(dest, wheels)[:32]
        if module.check_mode:
            changed = read_fingerprint(dest) != fingerprint
        else:
            changed = write_archive(dest, wheels, fingerprint)
    else:
        write_archive(dest, wheels, fingerprint)  # a fresh build has no archive yet
    module.exit_json(changed=changed, fingerprint=fingerprint, wheels=wheels,
                     archive=os.path.join(dest, ARCHIVE), package_wheel=wheel,
                     version=version, python_version=py_version)


if __name__ == "__main__":
    main()
