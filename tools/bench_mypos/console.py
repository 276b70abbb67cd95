"""Progress and fatal errors on stderr, coloured like tools/common.sh's log and die."""

import sys


def log(message):
    print(f'\033[1;34m==>\033[0m {message}', file=sys.stderr, flush=True)


def die(message):
    print(f'\033[1;31mERROR:\033[0m {message}', file=sys.stderr, flush=True)
    sys.exit(1)
