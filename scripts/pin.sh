#!/usr/bin/env bash
# Pin the development environment: resolve '.[dev]' afresh in a throwaway venv and write the
# exact version of every package installed (transitive ones too, conveyor itself excluded) to
# constraints.txt. Run it after changing a dependency in pyproject.toml, or to move to newer
# versions, then run the tests and commit constraints.txt.
#
# Why: resolving '.[dev]' from ranges takes minutes, and the pip that `python3 -m venv` brings
# (23.2.1 with Python 3.11) gives up on the boto stack (s3fs, aiobotocore, botocore, moto,
# boto3) with ResolutionImpossible. With every version fixed there is nothing to search, so
# README's and CI's `pip install -c constraints.txt -e '.[dev]'` is the same everywhere. pip itself
# is pinned too: README's commands first move the pip that venv brings to it, because 23.2.1
# spends about 75 s of CPU reading the index pages of 170 pinned packages where the newer pip
# spends about 23 s (pip install --dry-run -c constraints.txt -e '.[dev]', warm cache).
# The pins are for Python 3.11 on Linux x86_64 (what CI runs); the script refuses anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
where="$("$python" -c 'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]} {platform.system()} {platform.machine()}")')"
if [ "$where" != "3.11 Linux x86_64" ]; then
  echo "scripts/pin.sh: the pins are for Python 3.11 on Linux x86_64, this is $where (set PYTHON=...)" >&2
  exit 2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
# Only this throwaway venv gets a newer pip: its resolver finds a solution where 23.2.1's gives up.
"$tmp/venv/bin/pip" install -q --upgrade pip
"$tmp/venv/bin/pip" install -q -e '.[dev]'
{
  echo "# The development environment, pinned: every package of '.[dev]' and of its dependencies,"
  echo "# for Python 3.11 on Linux x86_64. Written by scripts/pin.sh; do not edit by hand."
  echo "# Used as: .venv/bin/pip install -c constraints.txt -e '.[dev]'"
  { "$tmp/venv/bin/pip" freeze --exclude-editable --exclude conveyor; "$tmp/venv/bin/pip" freeze --all | grep '^pip=='; } | LC_ALL=C sort -f
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "wrote constraints.txt ($(grep -c '==' constraints.txt) packages)"
