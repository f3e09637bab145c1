#!/usr/bin/env bash
# The whole test suite on a bare Debian 12 machine (run as root): installs
# the servers and reference decoders, the project and its test deps, then
# runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m pytest -q -p no:cacheprovider "$@"
