"""free_port.py USED_FILE -- print a TCP port nobody uses, for a server a test starts.

Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port the
kernel handed out with bind(0) is free only until it is closed, and the same range feeds every
outgoing connection, so under parallel tests (browsers, curl, DCMTK tools) an ephemeral port
picked this way was sometimes taken by a client socket before the server bound it ("Address
already in use", seen in CI). Below that range only listeners bind explicitly. The pick is
random (parallel tests rarely meet) and checked by binding it on every interface without
SO_REUSEADDR (refused while a connection on it lingers in TIME_WAIT too); ports already given
to this test (USED_FILE) are not given again."""
import os
import random
import socket
import sys

used_file = sys.argv[1] if len(sys.argv) > 1 else None
used = set()
if used_file and os.path.exists(used_file):
    with open(used_file) as f:
        used = {int(x) for x in f.read().split()}
try:
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        eph_lo = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    eph_lo = 32768
lo, hi = 10000, eph_lo - 1


def usable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('0.0.0.0', port))
        return True
    except OSError:
        return False
    finally:
        s.close()


port = None
if hi - lo >= 1000:
    for _ in range(200):
        p = random.randint(lo, hi)
        if p not in used and usable(p):
            port = p
            break
if port is None:  # an unusual port range: let the kernel choose
    while port is None or port in used:
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
if used_file:
    with open(used_file, 'a') as f:
        f.write(f'{port}\n')
print(port)
