"""``tareplanner serve``: the guided workflow as a web page (docs/web.md)."""

from __future__ import annotations

import argparse
import sys

EXIT_INPUT = 2

DESCRIPTION = """\
Serve the guided workflow (data, registration, segmentation, LSF and TNR, plan, treatment
day, verification, save) as a web page, with slice and 3D views of the scene. It listens on
127.0.0.1 only unless --host says otherwise, and serves no file outside the --data folder:
folders to load are chosen inside it, and Save writes into its 'output' subfolder.

One user session per process: every browser connected to this server sees and changes the
same patient; run one server per user.

Needs the 'web' extra: pip install -e ".[web]"."""


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import FieldValueError
    from ..web import missing_packages

    missing = missing_packages()
    if missing:
        print(f"tareplanner: error: serve needs the 'web' extra (missing: {', '.join(missing)})"
              f"; install it with: pip install -e \".[web]\" (or pip install "
              f"\"tareplanner[web]\")", file=sys.stderr)
        return EXIT_INPUT
    data = Path(args.data)
    if not data.is_dir():
        raise FieldValueError("--data", args.data, "an existing folder (the patient data; "
                              "Save writes into its 'output' subfolder)")
    if not 0 < args.port < 65536:
        raise FieldValueError("--port", args.port, "1 to 65535")
    _check_free(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tareplanner: warning: listening on {args.host}: anyone who can reach it can "
              "see and change this session (there is no login)", file=sys.stderr)
    from ..web.app import serve
    serve(data, host=args.host, port=args.port)
    return 0


def _check_free(host: str, port: int) -> None:
    """Refuse a port another program listens on (before the page is built)."""
    import socket

    from ..errors import FieldValueError
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise FieldValueError("--host", host, "an address of this computer, e.g. 127.0.0.1",
                              str(error)) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise FieldValueError("--port", port, f"a free port on {host}",
                                  error.strerror or str(error)) from None


def add_web_commands(sub) -> None:
    p = sub.add_parser("serve", help="the guided workflow as a web page (extra 'web'; one "
                                     "user session per process)",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this computer only)")
    p.add_argument("--data", default=".",
                   help="data folder: the only folder the page reads from and writes into "
                        "(default: the current folder)")
    p.set_defaults(func=cmd_serve)
