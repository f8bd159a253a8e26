#!/usr/bin/env bash
# ensure_venv DIR CHECK PACKAGE...: a Python venv in DIR where the command
# CHECK (run with the venv's python, e.g. "import matplotlib") succeeds;
# otherwise the venv is made afresh (a half-made one from an interrupted
# run included) and the packages installed. Sourced by the scripts that
# need Python tools.
ensure_venv() {
    local dir=$1 check=$2
    shift 2
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" 2>/dev/null; then
        return 0
    fi
    echo "setting up a Python venv in $dir: $*"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q "$@"
}
