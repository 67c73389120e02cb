#!/usr/bin/python3
"""The management service of the procedure tests: a stand-in for a video management server.

    mgmt-server.py DATA_DIR ADDRESS PORT PID_FILE [CONNINFO]

Answers over HTTP, reading everything again at each request:
    GET /health    200 "ok"
    GET /version   {"data": DATA_DIR/VERSION, "sql": version in the database's meta table, "node": NODE}
    GET /records   {"records": the lines of DATA_DIR/records, "cameras": the rows of the cameras table, "node": NODE}
NODE is $MIRROR_NODE (the node's name, given to start scripts by the daemon), else the host name.
The database (PostgreSQL, reached with psql and CONNINFO) is left out when CONNINFO is not given.
Binds first, then goes to the background with its pid in PID_FILE: when the command returns,
the service answers.
"""
import http.server
import json
import os
import socket
import subprocess
import sys

data, address, port, pid_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
conninfo = sys.argv[5] if len(sys.argv) > 5 else None
node = os.environ.get("MIRROR_NODE") or socket.gethostname()


def query(statement):
    result = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", statement],
                            capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return [line.split("|") for line in result.stdout.splitlines() if line]


def read(name):
    with open(os.path.join(data, name)) as file:
        return file.read()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            if self.path == "/health":
                body = "ok"
            elif self.path == "/version":
                body = {"data": read("VERSION").strip(), "sql": query("select version from meta")[0][0] if conninfo else None,
                        "node": node}
            elif self.path == "/records":
                body = {"records": read("records").splitlines(),
                        "cameras": query("select * from cameras order by id") if conninfo else None, "node": node}
            else:
                return self.reply(404, {"error": "no such page"})
            self.reply(200, body)
        except Exception as error:
            self.reply(500, {"error": str(error)})

    def reply(self, code, body):
        text = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format, *arguments):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % arguments))


server = http.server.ThreadingHTTPServer((address, port), Handler)
child = os.fork()
if child:
    with open(pid_file + ".new", "w") as file:
        file.write("%d\n" % child)
    os.rename(pid_file + ".new", pid_file)
    os._exit(0)
os.setsid()
server.serve_forever()
