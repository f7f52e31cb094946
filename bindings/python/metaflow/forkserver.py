"""The fork server: a process forked from the flow's process before the
library holds any state or thread, with the flow module already imported.
The runtime's launcher asks it for a task; it forks a child that runs the
step, so a task costs a fork, not a Python start and an import.

Protocol over a SOCK_SEQPACKET socketpair: the runtime sends one message
per task (JSON: step and environment) with the task's stdout and stderr
descriptors attached (SCM_RIGHTS); the server answers with the child's pid
(8 bytes). EOF on the socket (the runtime exited, however it died) ends the
server. Children are in process groups of their own; the server ignores
SIGCHLD so they never linger as zombies.
"""
import array
import json
import os
import signal
import socket
import struct
import sys


def _recv_fds(sock, msglen, maxfds):
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(msglen, socket.CMSG_LEN(maxfds * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _serve(sock, run_task):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    while True:
        try:
            msg, fds = _recv_fds(sock, 1 << 20, 2)
        except (ConnectionError, OSError):
            break
        if not msg:
            break
        req = json.loads(msg.decode("utf-8"))
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sock.close()
                os.setpgid(0, 0)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.dup2(fds[0], 1)
                os.dup2(fds[1], 2)
                for fd in fds:
                    if fd > 2:
                        os.close(fd)
                os.environ.update(req["env"])
                code = run_task(req["step"])
            except BaseException:  # noqa: BLE001 - report, then leave the child
                import traceback
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code if isinstance(code, int) else 1)
        for fd in fds:
            os.close(fd)
        sock.send(struct.pack("=q", pid))
    os._exit(0)


class ForkServer:
    def __init__(self, run_task):
        sys.stdout.flush()
        sys.stderr.flush()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            parent.close()
            try:
                _serve(child, run_task)
            finally:
                os._exit(0)
        child.close()
        self.pid = pid
        self.sock = parent

    def launch(self, step, env, stdout_fd, stderr_fd):
        msg = json.dumps({"step": step, "env": env}).encode("utf-8")
        self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", [stdout_fd, stderr_fd]))])
        data = self.sock.recv(8)
        if len(data) != 8:
            raise OSError("the fork server did not answer")
        return struct.unpack("=q", data)[0]

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
