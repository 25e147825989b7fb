"""orderly serve --backend automatic|epoll|io_uring: each choice is the one the server's loops use
(seen in /proc/PID/fd: an epoll descriptor or an io_uring ring), the flag beats ORDERLY_BACKEND,
and where io_uring is not usable (here: a seccomp filter, no_uring.c, that fails io_uring_setup with
ENOSYS) automatic says once why it fell back to epoll while an explicit io_uring is an error."""

import os
import signal
import subprocess
import unittest

from cli_support import BIN, HERE, TIMEOUT, cli_test, client_exchange

NO_URING = os.environ.get("ORDERLY_NO_URING", os.path.join(HERE, "..", "..", "build", "dev",
                                                           "tests", "cli", "cli_no_uring"))
EPOLL_FD = "anon_inode:[eventpoll]"
URING_FD = "anon_inode:[io_uring]"


def environment(backend=None):
    env = dict(os.environ)
    env.pop("ORDERLY_BACKEND", None)
    if backend is not None:
        env["ORDERLY_BACKEND"] = backend
    return env


def descriptor_kinds(pid):
    kinds = set()
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            kinds.add(os.readlink(os.path.join(fd_dir, name)))
        except OSError:
            pass  # closed meanwhile
    return kinds


class ServeBackendTest(cli_test):
    def serve(self, *args, env_backend=None, no_uring=False):
        argv = [BIN, "serve", "echo", "--threads", "1", *args, "127.0.0.1:0"]
        if no_uring:
            self.assertTrue(os.access(NO_URING, os.X_OK), "no_uring not built: " + NO_URING)
            argv = [NO_URING, *argv]
        pr = self.start(argv, env=environment(env_backend))
        _, port = self.listening(pr)
        return pr, port

    def need_uring(self):
        pr = self.start([BIN, "serve", "echo", "--threads", "1", "--backend", "io_uring",
                         "127.0.0.1:0"], env=environment())
        line = pr.stderr_line()
        pr.kill()
        if "not usable" in line:
            self.skipTest("io_uring is not usable on this machine: " + line)

    def check_serves(self, pr, port, backend):
        """The loops use `backend`, echo works, and nothing was said about a fallback."""
        kinds = descriptor_kinds(pr.p.pid)
        if backend == "epoll":
            self.assertIn(EPOLL_FD, kinds)
            self.assertNotIn(URING_FD, kinds)
        else:
            self.assertIn(URING_FD, kinds)
            self.assertNotIn(EPOLL_FD, kinds)
        data, error = client_exchange(port, b"ping " * 1000)
        self.assertIsNone(error)
        self.assertEqual(data, b"ping " * 1000)
        pr.p.send_signal(signal.SIGINT)
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertIn("served 1 connection: clean 1", pr.stderr)
        return pr.stderr

    def test_epoll(self):
        err = self.check_serves(*self.serve("--backend", "epoll"), "epoll")
        self.assertNotIn("backend", err)

    def test_io_uring(self):
        self.need_uring()
        err = self.check_serves(*self.serve("--backend", "io_uring"), "io_uring")
        self.assertNotIn("backend", err)

    def test_automatic_is_io_uring_where_usable(self):
        self.need_uring()
        for args in (["--backend", "automatic"], []):
            err = self.check_serves(*self.serve(*args), "io_uring")
            self.assertNotIn("backend", err)

    def test_flag_beats_environment(self):
        self.need_uring()
        self.check_serves(*self.serve("--backend", "epoll", env_backend="io_uring"), "epoll")
        self.check_serves(*self.serve("--backend", "io_uring", env_backend="epoll"), "io_uring")
        self.check_serves(*self.serve("--backend", "automatic", env_backend="epoll"), "io_uring")

    def test_environment_without_flag(self):
        self.need_uring()
        err = self.check_serves(*self.serve(env_backend="epoll"), "epoll")
        self.assertNotIn("backend", err)  # a choice, not a fallback
        self.check_serves(*self.serve(env_backend="io_uring"), "io_uring")

    def test_automatic_falls_back_and_says_why_once(self):
        for args in (["--backend", "automatic"], []):
            pr, port = self.serve(*args, no_uring=True)
            line = pr.stderr_line()
            self.assertEqual(line.strip(), "backend epoll: io_uring is not usable here: "
                             "io_uring_setup failed: Function not implemented")
            err = self.check_serves(pr, port, "epoll")
            self.assertEqual(err.count("backend epoll"), 1, err)

    def test_epoll_under_the_filter_says_nothing(self):
        err = self.check_serves(*self.serve("--backend", "epoll", no_uring=True), "epoll")
        self.assertNotIn("backend", err)

    def test_io_uring_not_usable_is_an_error(self):
        cases = ((["--backend", "io_uring"], None, "--backend io_uring"),
                 (["--backend", "io_uring"], "epoll", "--backend io_uring"),
                 ([], "io_uring", "ORDERLY_BACKEND=io_uring"))
        for args, env_backend, source in cases:
            r = subprocess.run([NO_URING, BIN, "serve", "echo", *args, "127.0.0.1:0"],
                               env=environment(env_backend), capture_output=True, timeout=TIMEOUT)
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 1, err)
            self.assertNotIn("listening on", err)
            self.assertIn("orderly: " + source + ": io_uring is not usable here: "
                          "io_uring_setup failed: Function not implemented", err)
            self.assertIn("Use --backend epoll", err)

    def test_unknown_backend_is_a_usage_error(self):
        r = self.run_orderly("serve", "echo", "--backend", "kqueue", "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--backend", r.stderr)


if __name__ == "__main__":
    unittest.main()
