"""./dev: which targets each verb builds. The script runs in a scratch copy of the tree with
cmake, ctest and dpkg-query replaced by stubs that log their arguments, so nothing is built."""

import os
import stat
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

STUB = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "{log}"
case "$(basename "$0")" in dpkg-query) printf 'install ok installed' ;; esac
exit 0
"""


class DevScriptTest(unittest.TestCase):
    def run_dev(self, *args):
        with tempfile.TemporaryDirectory() as tmp:
            tree = os.path.join(tmp, "tree")
            stubs = os.path.join(tmp, "bin")
            log = os.path.join(tmp, "log")
            os.makedirs(os.path.join(tree, "tools"))
            os.makedirs(stubs)
            with open(os.path.join(ROOT, "dev")) as f, open(os.path.join(tree, "dev"), "w") as g:
                g.write(f.read())
            with open(os.path.join(tree, "tools", "demo.sh"), "w") as g:
                g.write('printf "demo %%s\\n" "$*" >> "%s"\n' % log)
            for name in ("cmake", "ctest", "dpkg-query", "nproc"):
                path = os.path.join(stubs, name)
                with open(path, "w") as g:
                    g.write(STUB.format(log=log) if name != "nproc" else "#!/bin/sh\necho 2\n")
                os.chmod(path, stat.S_IRWXU)
            env = dict(os.environ, PATH=stubs + os.pathsep + os.environ["PATH"])
            r = subprocess.run(["sh", os.path.join(tree, "dev"), *args], env=env, timeout=20,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            with open(log) as f:
                return [line.split() for line in f.read().splitlines()]

    def builds(self, calls):
        return [c[1:] for c in calls if c[:2] == ["cmake", "--build"]]

    def test_demo_builds_only_the_cli(self):
        calls = self.run_dev("demo", "orderly-close")
        builds = self.builds(calls)
        self.assertEqual(len(builds), 1, calls)
        # One target, the CLI: the tests and benchmarks would keep a first run waiting minutes.
        self.assertEqual(builds[0][builds[0].index("--target") + 1:], ["orderly_cli"], builds)
        self.assertIn(["demo", "build/dev", "orderly-close"], calls)

    def test_test_builds_everything(self):
        builds = self.builds(self.run_dev("test"))
        self.assertEqual(len(builds), 3, builds)  # dev, asan-ubsan, tsan
        for b in builds:
            self.assertNotIn("--target", b)


if __name__ == "__main__":
    unittest.main()
