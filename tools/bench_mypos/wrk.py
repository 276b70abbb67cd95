"""The HTTP loads: wrk runs of wrk.lua against the server, and the figures they report."""

import json
import os
import re
import shutil
import statistics
import subprocess

from .console import die
from .odoo_server import cpu_seconds

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wrk.lua')


def run_wrk(args, port, mode, clients, duration, bodies_file='', server_pid=None):
    script = os.path.join(args.work_dir, 'bench.lua')
    shutil.copyfile(SCRIPT, script)
    command = [
        'wrk',
        '-t1',
        f'-c{clients}',
        f'-d{max(1, round(duration))}s',
        '--timeout',
        '10s',
        '-s',
        script,
        f'http://127.0.0.1:{port}',
        '--',
        mode,
        bodies_file,
    ]
    before = cpu_seconds(server_pid) if server_pid else None
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    after = cpu_seconds(server_pid) if server_pid else None
    match = re.search(r'^WRK_JSON (.*)$', result.stdout, re.M)
    if result.returncode or not match:
        die(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data = json.loads(match.group(1))
    seconds = data['duration_us'] / 1e6
    data['rps'] = data['requests'] / seconds if seconds else 0.0
    data['errors'] = data['bad'] + data['connect'] + data['read'] + data['write'] + data['timeout']
    if before and after:
        data['odoo_cpu'], data['postgres_cpu'] = (after[0] - before[0], after[1] - before[1])
    return data


def combine_slices(slices):
    """One figure from the slices of a load level: totals, and each percentile's median."""
    # Throughput is total requests over total time. wrk reports percentiles per run only; the
    # median of the slices' percentiles stands for the level's (the slices are of equal length).
    total = {
        key: sum(run[key] for run in slices)
        for key in ('requests', 'duration_us', 'bad', 'spare', 'errors')
    }
    for key in ('odoo_cpu', 'postgres_cpu'):
        total[key] = sum(run.get(key, 0) for run in slices)
    for key in ('p50_us', 'p90_us', 'p99_us'):
        total[key] = statistics.median(run[key] for run in slices)
    total['max_us'] = max(run['max_us'] for run in slices)
    total['rps'] = total['requests'] / (total['duration_us'] / 1e6) if total['duration_us'] else 0
    return total


def write_bodies(args, name, bodies):
    path = os.path.join(args.work_dir, name)
    with open(path, 'w', encoding='ascii') as file:
        file.write(''.join(body + '\n' for body in bodies))
    return path
