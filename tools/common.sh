# shellcheck shell=bash
# Shared helpers for tools/test, tools/run, tools/setup and .ci/run.  Source it, don't run it.
#
# Environment knobs (all optional):
#   MYPOS_ODOO_SERIES  the Odoo series to run (18.0 or 19.0)   [the newest installed; tools/test: each]
#   ODOO_SRC           its source tree (odoo-bin, odoo/, addons/)         [~/odoo18 or ~/odoo19]
#   ODOO_PYTHON        Python that runs Odoo (venv with its requirements)  [~/odoo18-venv/bin/python, ...]
#                      If ODOO_SRC does not exist, ODOO_PYTHON may instead be a Python
#                      that can already `import odoo` (pip-installed Odoo).
#   MYPOS_RUN_DIR      where configs, logs and the data_dir go              [<repo>/.odoo-run]
#   MYPOS_ADDONS_EXTRA extra comma-separated addons directories appended to addons_path
#   PGHOST/PGPORT/PGUSER/PGPASSWORD  an existing PostgreSQL server to use (libpq defaults otherwise)

# Repository root = parent of the directory holding this file.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${MYPOS_RUN_DIR:-$REPO/.odoo-run}"

# Odoo expects to run in UTC (odoo-bin sets this too).
export TZ=UTC

log()  { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mWARNING:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# The test-only Python packages: test-requirements.txt at the repository's root (tools/setup
# and .ci/run pip-install it into the Odoo Python's environment).
TEST_REQUIREMENTS="$REPO/test-requirements.txt"

# missing_test_requirements PYTHON: prints the lines of test-requirements.txt whose distribution
# is not installed in PYTHON's environment (nothing when all are there).
missing_test_requirements() {
    "$1" - "$TEST_REQUIREMENTS" <<'PY'
import importlib.metadata, re, sys
for line in open(sys.argv[1], encoding="utf-8"):
    requirement = line.split("#", 1)[0].strip()
    if requirement:
        try:
            importlib.metadata.version(re.match(r"[A-Za-z0-9._-]+", requirement).group())
        except importlib.metadata.PackageNotFoundError:
            print(requirement)
PY
}

# Database names are interpolated into SQL/regexes below: keep them boring.
check_db_name() {
    [[ "$1" =~ ^[A-Za-z0-9_][A-Za-z0-9_-]*$ ]] || die "invalid database name: '$1' (use letters, digits, _ and -)"
}

# ---------------------------------------------------------------------------
# Odoo
# ---------------------------------------------------------------------------

# The Odoo series this addon supports; tools/test and .ci/run run the suite on each installed one.
SUPPORTED_SERIES=(18.0 19.0)

# is_supported_series SERIES: whether this addon supports it (18.0, 19.0).
is_supported_series() { [[ " ${SUPPORTED_SERIES[*]} " == *" $1 "* ]]; }

# series_tree / series_python SERIES -> the default tree and venv python of a series (~/odoo19...).
series_tree()   { printf '%s\n' "$HOME/odoo${1%%.*}"; }
series_python() { printf '%s\n' "$HOME/odoo${1%%.*}-venv/bin/python"; }

# Prints the supported series whose default tree and venv are there (tools/setup puts them there).
installed_series() {
    local s
    for s in "${SUPPORTED_SERIES[@]}"; do
        if [ -f "$(series_tree "$s")/odoo/release.py" ] && [ -x "$(series_python "$s")" ]; then
            printf '%s\n' "$s"
        fi
    done
}

odoo_missing() {
    local series="${MYPOS_ODOO_SERIES:-${SUPPORTED_SERIES[*]}}"
    if [ "${CI:-}" = true ]; then
        printf '\n\033[1;31m*** CI: Odoo %s not found - the test suite CANNOT run, failing. ***\033[0m\n\n' "$series" >&2
    fi
    die "$1

Odoo ($series) is required. tools/setup SERIES builds it (tools/setup --help), or provide:
  * an Odoo source tree of that series (odoo-bin, odoo/, addons/)
    and point ODOO_SRC at it            (default: ~/odoo18, ~/odoo19)
  * a Python 3.11 virtualenv with that tree's requirements.txt installed
    and point ODOO_PYTHON at its python (default: ~/odoo18-venv/bin/python, ~/odoo19-venv/...)
or set ODOO_PYTHON to a Python in which 'import odoo' already gives that Odoo.
Currently: MYPOS_ODOO_SERIES=${MYPOS_ODOO_SERIES:-<unset>} ODOO_SRC=${ODOO_SRC:-<none>} ODOO_PYTHON=${ODOO_PYTHON:-<unset>}"
}

# Finds the Odoo to run: the series MYPOS_ODOO_SERIES names (its default tree and venv unless
# ODOO_SRC / ODOO_PYTHON say otherwise), else the one ODOO_SRC / ODOO_PYTHON give, else the newest
# installed series.
# Sets: ODOO_SERIES (e.g. 19.0), SERIES_TAG (e.g. 19: for database and file names), ODOO_PYTHON,
# ODOO_SRC ("" when using an importable Odoo), ODOO_CMD (array: the odoo-bin equivalent),
# ODOO_ADDONS (comma-separated core addons dirs), ODOO_FILE (where the odoo package is).
# Exports PYTHONPATH when needed.
locate_odoo() {
    local src_explicit=${ODOO_SRC+x} want="${MYPOS_ODOO_SERIES:-}"
    if [ -n "$want" ]; then
        is_supported_series "$want" \
            || die "MYPOS_ODOO_SERIES=$want: this addon supports ${SUPPORTED_SERIES[*]}"
    elif [ -n "${ODOO_SRC:-}" ] && [ -f "$ODOO_SRC/odoo/release.py" ]; then
        want="$(sed -nE 's/^version_info = \(([0-9]+), ([0-9]+),.*/\1.\2/p' "$ODOO_SRC/odoo/release.py")"
    elif [ -z "${ODOO_SRC:-}" ] && [ -z "${ODOO_PYTHON:-}" ]; then
        want="$(installed_series | tail -n 1)"
        [ -n "$want" ] || want="${SUPPORTED_SERIES[0]}"
    fi
    if [ -n "$want" ]; then
        ODOO_SRC="${ODOO_SRC:-$(series_tree "$want")}"
        ODOO_PYTHON="${ODOO_PYTHON:-$(series_python "$want")}"
    else
        ODOO_SRC="${ODOO_SRC:-}"
        ODOO_PYTHON="${ODOO_PYTHON:-python3}"
    fi

    if ! command -v "$ODOO_PYTHON" >/dev/null 2>&1; then
        odoo_missing "ODOO_PYTHON '$ODOO_PYTHON' is not an executable Python."
    fi
    ODOO_PYTHON="$(command -v "$ODOO_PYTHON")"

    # 19.0's odoo/ is a namespace package (no __init__.py): release.py marks a tree on both.
    if [ -n "$ODOO_SRC" ] && [ -f "$ODOO_SRC/odoo-bin" ] && [ -f "$ODOO_SRC/odoo/release.py" ]; then
        ODOO_SRC="$(cd "$ODOO_SRC" && pwd)"
        export PYTHONPATH="$ODOO_SRC${PYTHONPATH:+:$PYTHONPATH}"
    elif [ -n "$src_explicit" ]; then
        odoo_missing "ODOO_SRC '$ODOO_SRC' is not an Odoo source tree (no odoo-bin / odoo/release.py)."
    else
        ODOO_SRC=""   # no source tree: rely on an importable (pip-installed) odoo
    fi

    # Ask Python: the series, where odoo lives, its default addons dirs (the same rule Odoo uses
    # when addons_path is unset) and whether `python -m odoo` works. `import odoo` alone does not
    # import odoo.release on 19.0.
    local probe
    if ! probe="$(MYPOS_WANT="$want" SUPPORTED="${SUPPORTED_SERIES[*]}" "$ODOO_PYTHON" - 2>&1 <<'PY'
import importlib.util, os
import odoo.release as release
want, supported = os.environ['MYPOS_WANT'], os.environ['SUPPORTED'].split()
series = '%s.%s' % release.version_info[:2]
assert series == want or (not want and series in supported), "found Odoo %s, need %s" % (
    release.version, want or ' or '.join(supported))
import odoo
root = os.path.abspath(list(odoo.__path__)[0])
dirs = [os.path.join(root, "addons"), os.path.abspath(os.path.join(root, "..", "addons"))]
dirs = [d for d in dirs if os.path.isdir(d)]
print(series)
print(os.path.join(root, "release.py"))
print(",".join(dict.fromkeys(dirs)))
print("main" if importlib.util.find_spec("odoo.__main__") else "cli")
PY
)"; then
        odoo_missing "'$ODOO_PYTHON' cannot import Odoo ${want:-${SUPPORTED_SERIES[*]}}${ODOO_SRC:+ from $ODOO_SRC}:
$(printf '%s\n' "$probe" | tail -n 5)"
    fi
    ODOO_SERIES="$(sed -n 1p <<<"$probe")"
    SERIES_TAG="${ODOO_SERIES%%.*}"
    ODOO_FILE="$(sed -n 2p <<<"$probe")"
    ODOO_ADDONS="$(sed -n 3p <<<"$probe")"
    export MYPOS_ODOO_SERIES="$ODOO_SERIES"

    if [ -n "$ODOO_SRC" ]; then
        ODOO_CMD=("$ODOO_PYTHON" "$ODOO_SRC/odoo-bin")
    elif [ "$(sed -n 4p <<<"$probe")" = main ]; then
        ODOO_CMD=("$ODOO_PYTHON" -m odoo)
    else
        ODOO_CMD=("$ODOO_PYTHON" -c 'import odoo.cli, sys; sys.argv[0] = "odoo"; odoo.cli.main()')
    fi
    log "Odoo $ODOO_SERIES: $ODOO_FILE (python: $ODOO_PYTHON)"
}

# Run the odoo-bin equivalent.
odoo_bin() { "${ODOO_CMD[@]}" "$@"; }

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

pg_install_hint() {
    echo "Install PostgreSQL (Debian/Ubuntu: apt-get install postgresql postgresql-client),
or point PGHOST/PGPORT/PGUSER/PGPASSWORD at a running server."
}

# psql against the maintenance db, quiet, unaligned, no ~/.psqlrc.
pg_sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres -c "$1"; }

# Make sure a PostgreSQL server answers and that we can log in to it.
ensure_postgres() {
    command -v pg_isready >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 \
        || die "PostgreSQL client tools (pg_isready, psql) not found. $(pg_install_hint)"

    if ! pg_isready -q -t 3; then
        if [ -n "${PGHOST:-}" ] && [[ "$PGHOST" != /* ]] || [ -n "${PGSERVICE:-}" ]; then
            die "PostgreSQL configured via PGHOST/PGSERVICE is not reachable (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-})."
        fi
        command -v pg_lsclusters >/dev/null 2>&1 \
            || die "No running PostgreSQL server found${PGPORT:+ on port $PGPORT}. $(pg_install_hint)"
        # A local Debian cluster is installed but not running: start the one on
        # ${PGPORT:-5432}, or (PGPORT unset) the first one and use its port.
        local ver name port _rest found="" first="" first_port=""
        while read -r ver name port _rest; do
            if [ "$port" = "${PGPORT:-5432}" ]; then found="$ver $name"; break; fi
            if [ -z "$first" ]; then first="$ver $name"; first_port="$port"; fi
        done < <(pg_lsclusters -h 2>/dev/null)
        if [ -z "$found" ] && [ -z "${PGPORT:-}" ] && [ -n "$first" ]; then
            found="$first"
            export PGPORT="$first_port"
        fi
        [ -n "$found" ] || die "No PostgreSQL cluster on port ${PGPORT:-5432} (pg_lsclusters). $(pg_install_hint)"
        read -r ver name <<<"$found"
        log "Starting PostgreSQL cluster $ver/$name"
        pg_ctlcluster "$ver" "$name" start \
            || die "could not start PostgreSQL cluster $ver/$name (try: pg_ctlcluster $ver $name start)"
        local i
        for i in $(seq 1 30); do pg_isready -q -t 1 && break; sleep 1; done
        pg_isready -q -t 3 || die "PostgreSQL cluster $ver/$name was started but does not answer."
    fi

    local me; me="$(id -un)"
    local dbuser="${PGUSER:-$me}"
    [ "$dbuser" = postgres ] && die "Odoo refuses to connect as the 'postgres' role: run as another user or set PGUSER."

    # Login role for the current OS user (peer auth on the local socket).
    local err
    if ! err="$(pg_sql 'select 1' 2>&1 >/dev/null)"; then
        if [[ "$err" == *"role \"$dbuser\" does not exist"* ]] && [ -z "${PGHOST:-}" ] && [ "$dbuser" = "$me" ]; then
            log "Creating PostgreSQL superuser role '$me'"
            if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- createuser -s "$me"
            elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
                sudo -n -u postgres createuser -s "$me"
            else
                die "PostgreSQL role '$me' is missing. Create it with: sudo -u postgres createuser -s $me"
            fi
            err="$(pg_sql 'select 1' 2>&1 >/dev/null)" || die "cannot connect to PostgreSQL as '$dbuser': $err"
        else
            die "cannot connect to PostgreSQL as '$dbuser': $err"
        fi
    fi
    pg_sql "select rolcreatedb or rolsuper from pg_roles where rolname = current_user" | grep -qx t \
        || die "PostgreSQL role '$dbuser' may not create databases (ALTER ROLE \"$dbuser\" CREATEDB)."
    log "PostgreSQL OK (role '$dbuser', $(pg_sql 'show server_version'))"
}

db_exists() { [ "$(pg_sql "select 1 from pg_database where datname = '$1'")" = 1 ]; }

# Prints those of the comma-separated modules that are not installed in db $1.
db_missing_modules() {
    local db="$1" mods="$2" installed m
    installed="$(psql -X -q -A -t -d "$db" -c \
        "select name from ir_module_module where state = 'installed'" 2>/dev/null || true)"
    for m in ${mods//,/ }; do
        grep -qx "$m" <<<"$installed" || printf '%s\n' "$m"
    done
}

# Drop database $1 and its filestore.
drop_db() {
    local db="$1"
    if db_exists "$db"; then
        log "Dropping database $db"
        dropdb --if-exists --force "$db"
    fi
    rm -rf "$RUN_DIR/data/filestore/$db"
}

# ---------------------------------------------------------------------------
# Odoo configuration file
# ---------------------------------------------------------------------------

# write_odoo_config NAME DB [key=value ...]  ->  prints the path of $RUN_DIR/NAME.conf
write_odoo_config() {
    local name="$1" db="$2"; shift 2
    local cfg="$RUN_DIR/$name.conf"
    mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs"

    local addons="$ODOO_ADDONS,$REPO"
    [ -n "${MYPOS_ADDONS_EXTRA:-}" ] && addons="$addons,$MYPOS_ADDONS_EXTRA"

    (
        umask 077
        {
            echo "; generated by tools/common.sh - do not edit, it is rewritten on every run"
            echo "[options]"
            echo "addons_path = $addons"
            echo "data_dir = $RUN_DIR/data"
            echo "db_name = $db"
            echo "dbfilter = ^$db\$"
            echo "list_db = False"
            echo "http_interface = 127.0.0.1"
            # Only pin what the user configured; otherwise libpq defaults apply.
            [ -n "${PGHOST:-}" ] && echo "db_host = $PGHOST"
            [ -n "${PGPORT:-}" ] && echo "db_port = $PGPORT"
            [ -n "${PGUSER:-}" ] && echo "db_user = $PGUSER"
            [ -n "${PGPASSWORD:-}" ] && echo "db_password = $PGPASSWORD"
            local kv
            for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
        } >"$cfg"
    )
    printf '%s\n' "$cfg"
}
