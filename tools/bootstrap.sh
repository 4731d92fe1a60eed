#!/usr/bin/env bash
# Prepare a fresh clone: headless-GL system libraries, .venv with the pinned requirements,
# and an editable install of src/graspq. Idempotent and quick once done: pip runs again
# only when the requirement or packaging files change. Sourced by tools/main.sh and
# tools/test.sh (it exports nothing and leaves the caller's directory alone); also runs
# on its own: `tools/bootstrap.sh`. GRASPQ_PYTHON picks the interpreter (default python3).
set -euo pipefail

_graspq_bootstrap() (
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    # Runs in a subshell, so neither variables nor the cd reach a sourcing caller.
    venv=.venv
    py="$venv/bin/python"

    # MuJoCo renders headless through EGL; Debian splits libglvnd (libEGL/libGL/libOpenGL)
    # from the Mesa drivers behind it (libEGL_mesa, DRI), so all of them are checked.
    ldcache="$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null || true)"
    missing=()
    for lib in libEGL.so.1 libOpenGL.so.0 libGL.so.1 libEGL_mesa.so.0; do
        grep -qF "$lib" <<<"$ldcache" || missing+=("$lib")
    done
    if ((${#missing[@]} == 0)); then
        echo "bootstrap: EGL/OpenGL libraries present"
    elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing EGL/OpenGL libraries (missing: ${missing[*]})"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends \
            libegl1 libgl1 libopengl0 libegl-mesa0 libgl1-mesa-dri >/dev/null
    else
        echo "bootstrap: WARNING missing ${missing[*]}; rendering will fail. Install as root:" \
            "apt-get install libegl1 libgl1 libopengl0 libegl-mesa0 libgl1-mesa-dri" >&2
    fi

    # The tests check the generated URDF and Gazebo world with check_urdf and `ign sdf -k`
    # (Debian 12: liburdfdom-tools; sdformat 12 and ignition-tools); without them those
    # tests skip, saying why.
    if command -v check_urdf >/dev/null && command -v ign >/dev/null; then
        echo "bootstrap: check_urdf and ign sdf present"
    elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing check_urdf and ign sdf (URDF and SDF checks)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends liburdfdom-tools libsdformat12-12 \
            sdformat-sdf ignition-tools libsdformat-dev >/dev/null \
            || echo "bootstrap: WARNING could not install them; the URDF/SDF checks skip" >&2
    else
        echo "bootstrap: check_urdf or ign missing and not root; the URDF/SDF checks skip" >&2
    fi

    if [[ -x $py ]]; then
        echo "bootstrap: $venv exists ($("$py" -V))"
    else
        base="${GRASPQ_PYTHON:-python3}"
        # The pins (numpy 2.4, mujoco 4, pillow 13) need Python >= 3.11.
        if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "bootstrap: ERROR $base is missing or older than 3.11;" \
                "set GRASPQ_PYTHON to a Python >= 3.11" >&2
            return 1
        fi
        echo "bootstrap: creating $venv with $("$base" -V)"
        "$base" -m venv "$venv"
    fi

    stamp="$venv/.graspq-reqs.sha256"
    reqs_sum="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
    if [[ -f $stamp && $(<"$stamp") == "$reqs_sum" ]]; then
        echo "bootstrap: pinned requirements up to date"
    else
        echo "bootstrap: installing requirements-dev.txt (first run takes a minute)"
        "$py" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
        echo "$reqs_sum" >"$stamp"
    fi

    # An editable install tracks source edits by itself; only packaging changes need pip.
    pkg_stamp="$venv/.graspq-editable.sha256"
    pkg_sum="$(cd src/graspq && cat pyproject.toml setup.py setup.cfg | sha256sum | cut -d' ' -f1)"
    if [[ -f $pkg_stamp && $(<"$pkg_stamp") == "$pkg_sum" && -x $venv/bin/graspq ]]; then
        echo "bootstrap: graspq editable install up to date"
    else
        echo "bootstrap: installing src/graspq (editable, --no-deps)"
        "$py" -m pip install -q --disable-pip-version-check --no-deps -e src/graspq
        echo "$pkg_sum" >"$pkg_stamp"
    fi
)

_graspq_bootstrap
unset -f _graspq_bootstrap
