#!/usr/bin/python3
"""Initialise one SoftHSM token without a PIN on the command line.

softhsm2-util takes the SO and user PINs either as arguments (visible to every
process on the host in /proc/*/cmdline) or from a terminal prompt. This runs it
under a pseudo-terminal and answers the prompts with the PINs read from stdin
(first line: SO PIN, second line: user PIN), so the PINs never reach argv.

Usage: softhsm_init_token.py LABEL < pins      (SOFTHSM2_CONF from the environment)
Exit status: softhsm2-util's, or 2 on bad input.
"""

import os
import pty
import sys


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1]:
        print("usage: softhsm_init_token.py LABEL < pins", file=sys.stderr)
        return 2
    lines = sys.stdin.read().split("\n")
    if len(lines) < 2 or not lines[0] or not lines[1]:
        print("stdin must hold the SO PIN and the user PIN, one per line", file=sys.stderr)
        return 2
    so_pin, user_pin = lines[0].encode(), lines[1].encode()
    # Each prompt is answered once it has appeared: the SO PIN twice, then the user PIN twice.
    answers = [(b"SO PIN", so_pin), (b"SO PIN", so_pin), (b"user PIN", user_pin), (b"user PIN", user_pin)]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("softhsm2-util", ["softhsm2-util", "--init-token", "--free", "--label", sys.argv[1]])
    seen = b""
    output = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        output += chunk
        if answers and answers[0][0] in seen and seen.rstrip().endswith(b":"):
            os.write(fd, answers.pop(0)[1] + b"\n")
            seen = b""
    _, status = os.waitpid(pid, 0)
    # The terminal echoes nothing (softhsm2-util turns echo off), but keep only the
    # lines that cannot hold a PIN: the prompts and softhsm2-util's verdict.
    for line in output.decode(errors="replace").splitlines():
        if line.strip() and (so_pin.decode() not in line) and (user_pin.decode() not in line):
            print(line.strip())
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
