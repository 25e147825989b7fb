"""What a new user types wrong, and what orderly says (issue 17): every message names the bad part
and the fix, and the exit code is 2 for a usage error."""

import os
import re
import socket
import subprocess
import tempfile

from cli_support import BIN, HERE, TIMEOUT, cli_test

DOCS = os.path.join(HERE, "..", "..", "docs", "cli.md")


class MessagesTest(cli_test):
    def usage_error(self, *args):
        r = self.run_orderly(*args)
        self.assertEqual(r.returncode, 2, (args, r.stderr))
        return r.stderr.decode()

    def test_unknown_subcommand_is_named_with_the_closest(self):
        err = self.usage_error("connec", "127.0.0.1:1")
        self.assertIn("unknown subcommand 'connec'", err)
        self.assertIn("did you mean 'connect'?", err)
        err = self.usage_error("lisen", "127.0.0.1:0")
        self.assertIn("did you mean 'listen'?", err)
        err = self.usage_error("bogus")
        self.assertIn("unknown subcommand 'bogus'", err)
        self.assertNotIn("did you mean", err)  # nothing is close: only the list
        self.assertIn("connect, listen, serve", err)

    def test_version(self):
        r = self.run_orderly("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r"^orderly \d+\.\d+\.\d+\n$")

    def test_regular_file_in_the_way_of_a_unix_path(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "not-a-socket")
            with open(path, "w") as f:
                f.write("keep me\n")
            r = self.run_orderly("listen", "unix:" + path)
            err = r.stderr.decode()
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("is a regular file, not a socket", err)
            self.assertNotIn("port", err)
            with open(path) as f:
                self.assertEqual(f.read(), "keep me\n")  # never removed

    def test_url_scheme_says_drop_it(self):
        for sub in ("connect", "listen"):
            err = self.usage_error(sub, "tcp://127.0.0.1:80")
            self.assertIn("URL scheme", err)
            self.assertIn("write 127.0.0.1:80", err)
            self.assertNotIn("must be in brackets", err)

    def test_negative_port_is_named(self):
        for sub in ("connect", "listen"):
            err = self.usage_error(sub, "127.0.0.1:-1")
            self.assertIn("port '-1'", err)
            self.assertNotIn("Servname", err)  # not getaddrinfo's text

    def test_malformed_ipv4_is_exit_2_without_a_lookup(self):
        for sub in ("connect", "listen"):
            err = self.usage_error(sub, "999.1.1.1:80")
            self.assertIn("'999.1.1.1'", err)
            self.assertIn("not a valid IPv4 address", err)
            self.assertNotIn("resolve", err)

    def test_byte_count_overflow_says_so(self):
        err = self.usage_error("serve", "reply", "--bytes", "99999999999G", "127.0.0.1:0")
        self.assertIn("--bytes", err)
        self.assertIn("overflows", err)
        err = self.usage_error("serve", "reply", "--bytes", "lots", "127.0.0.1:0")
        self.assertIn("not a byte count", err)

    def test_byte_units_in_either_case(self):
        # 64k was accepted and 1m not: both cases of every unit mean the same binary multiple.
        # (--help would skip the check: a bad address after a good count fails on the address.)
        for word in ("64k", "1m", "1g", "64K", "1M"):
            err = self.usage_error("serve", "reply", "--bytes", word, "tcp://127.0.0.1:0")
            self.assertNotIn("byte count", err, word)
            self.assertIn("URL scheme", err, word)
        err = self.usage_error("serve", "reply", "--bytes", "1x", "127.0.0.1:0")
        self.assertIn("not a byte count", err)

    def test_mistyped_top_level_option_is_named(self):
        err = self.usage_error("--versoin")
        self.assertIn("unknown option '--versoin'", err)
        self.assertIn("did you mean '--version'?", err)
        self.assertNotIn("subcommand is required", err)
        err = self.usage_error("--port", "80")
        self.assertIn("unknown option '--port'", err)
        self.assertIn("orderly SUBCOMMAND --help", err)

    def test_help_as_a_word(self):
        r = self.run_orderly("help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Subcommands:", r.stdout.decode())
        r = self.run_orderly("help", "connect")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--on-stdin-eof", r.stdout.decode())
        err = self.usage_error("help", "bogus")
        self.assertIn("unknown subcommand 'bogus'", err)

    def test_unknown_lab_scenario_lists_them(self):
        err = self.usage_error("lab", "bogus")
        self.assertIn("unknown scenario 'bogus'", err)
        self.assertIn("orderly lab --list", err)
        self.assertIn("half-close", err)

    def test_threads_range(self):
        for bad in ("-1", "100000", "two"):
            err = self.usage_error("serve", "echo", "--threads", bad, "127.0.0.1:0")
            self.assertIn("--threads", err)
            self.assertIn("0 to 256", err)
            self.assertNotIn("Could not convert", err)
        err = self.usage_error("serve", "echo", "--max-connections", "-1", "127.0.0.1:0")
        self.assertIn("whole number", err)

    def test_help_shows_address_type_and_abstract_names(self):
        for sub in ("connect", "listen", "serve"):
            r = self.run_orderly(sub, "--help")
            out = r.stdout.decode()
            self.assertRegex(out, r"address ADDRESS REQUIRED", sub)
            self.assertIn("unix:@name", out, sub)

    def test_docs_json_fields_are_the_printed_ones(self):
        # Every field docs/cli.md lists for --json is in the object connect prints, and back.
        with open(DOCS) as f:
            docs = f.read()
        section = docs[docs.index("`--json` prints the same report"):]
        section = section[: section.index("The outcome is one of")]
        listed = set(re.findall(r"`([a-z_]+)`", section)) - {"connect", "listen"}
        server = self.orderly("serve", "echo", "127.0.0.1:0")
        _, port = self.listening(server)
        r = self.run_orderly("connect", "--json", f"127.0.0.1:{port}", input=b"x")
        self.assertEqual(r.returncode, 0, r.stderr)
        import json

        printed = set(json.loads(r.stderr.decode().strip().splitlines()[-1]))
        printed.discard("connect")  # connect's own member, documented apart
        self.assertEqual(listed - printed, set(), "documented but not printed")
        self.assertEqual(printed - listed, set(), "printed but not documented")

    def test_docs_port_zero_snippet_waits_for_the_line(self):
        with open(DOCS) as f:
            docs = f.read()
        block = re.search(r"```sh\n(orderly serve echo 127\.0\.0\.1:0 2> serve\.log &\n.*?)```",
                          docs, re.S)
        self.assertIsNotNone(block)
        with tempfile.TemporaryDirectory() as d:
            script = block.group(1).replace("orderly ", BIN + " ", 1)
            script = "set -e\n" + script + 'echo "port=$port"\nkill $!\nwait || true\n'
            r = subprocess.run(["bash", "-c", script], cwd=d, capture_output=True,
                               timeout=TIMEOUT)
            m = re.search(rb"port=(\d+)\n", r.stdout)
            self.assertIsNotNone(m, (r.stdout, r.stderr))
            self.assertGreater(int(m.group(1)), 0)
