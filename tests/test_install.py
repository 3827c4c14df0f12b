"""pyproject's dependency groups: one TensorFlow build per platform and per extra, evaluated with
the PEP 508 markers of each platform pip would see."""

import os
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TENSORFLOWS = ('tensorflow', 'tensorflow-cpu')

# The marker environment of each platform (PEP 508 names).
PLATFORMS = {
    'linux_x86_64': {'sys_platform': 'linux', 'platform_machine': 'x86_64'},
    'linux_aarch64': {'sys_platform': 'linux', 'platform_machine': 'aarch64'},
    'macos_arm64': {'sys_platform': 'darwin', 'platform_machine': 'arm64'},
    'windows_amd64': {'sys_platform': 'win32', 'platform_machine': 'AMD64'},
}
# tensorflow-cpu 2.21 publishes wheels for Linux x86_64 and Windows only.
CPU_BUILD = {'linux_x86_64': 'tensorflow-cpu', 'linux_aarch64': 'tensorflow',
             'macos_arm64': 'tensorflow', 'windows_amd64': 'tensorflow-cpu'}


@pytest.fixture(scope='module')
def project():
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)['project']


def _selected(requirements, platform):
  environment = {'python_version': '3.11', 'python_full_version': '3.11.7', 'extra': '',
                 **PLATFORMS[platform]}
  found = [Requirement(r) for r in requirements]
  return [r for r in found if r.marker is None or r.marker.evaluate(environment)]


@pytest.mark.parametrize('platform', sorted(PLATFORMS))
def test_cpu_extra_selects_the_one_build_with_a_wheel(project, platform):
  tensorflows = [r for r in _selected(project['optional-dependencies']['cpu'], platform)
                 if r.name in TENSORFLOWS]
  assert [r.name for r in tensorflows] == [CPU_BUILD[platform]]
  assert str(tensorflows[0].specifier) == '==2.21.0'


@pytest.mark.parametrize('platform', sorted(PLATFORMS))
def test_gpu_extra_never_brings_tensorflow_cpu(project, platform):
  tensorflows = [r for r in _selected(project['optional-dependencies']['gpu'], platform)
                 if r.name in TENSORFLOWS]
  assert [(r.name, r.extras) for r in tensorflows] == [('tensorflow', {'and-cuda'})]


def test_core_dependencies_hold_no_tensorflow_and_no_test_tools(project):
  names = {Requirement(r).name for r in project['dependencies']}
  assert not names & {*TENSORFLOWS, 'pytest', 'pytest-xdist'}
  assert {'keras', 'tensorboard'} <= names
  assert {'pytest', 'pytest-xdist'} <= {
      Requirement(r).name for r in project['optional-dependencies']['dev']}


def test_requires_python_is_what_keras_and_tensorflow_support(project):
  supported = SpecifierSet(project['requires-python'])
  assert [v for v in ('3.10', '3.11', '3.12', '3.13', '3.14') if v in supported] == [
      '3.11', '3.12', '3.13']
