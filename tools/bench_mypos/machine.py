"""The machine and software a run measured on, for the results' header."""

import contextlib
import os
import platform
import subprocess


def machine_info(args):
    def read(command):
        try:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return '?'

    cpu = '?'
    with contextlib.suppress(OSError):  # Not Linux: unknown.
        with open('/proc/cpuinfo', encoding='utf-8') as file:
            cpu = next(
                (line.split(':', 1)[1].strip() for line in file if line.startswith('model name')),
                '?',
            )
    ram = '?'
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open('/proc/meminfo', encoding='utf-8') as file:
            kib = int(next(line for line in file if line.startswith('MemTotal')).split()[1])
            ram = f'{kib / 1024 / 1024:.1f} GiB'
    import cryptography

    import odoo.release

    pg = read(['psql', '-X', '-A', '-t', '-d', args.db, '-c', 'SHOW server_version'])
    wrk = read(['wrk', '--version']).splitlines()
    return {
        'cpus': os.cpu_count(),
        'cpu': cpu,
        'ram': ram,
        'kernel': platform.release(),
        'python': platform.python_version(),
        'odoo': odoo.release.version,
        'postgresql': pg.split()[0] if pg else '?',
        'cryptography': cryptography.__version__,
        'wrk': (wrk[0].split(' [')[0] if wrk else '?'),
        'load': ' '.join(f'{x:.2f}' for x in os.getloadavg()),
    }
