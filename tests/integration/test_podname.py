#!/usr/bin/env python3
"""Pod names are UTF-8 text: one that is not valid UTF-8, or holds a control character,
is refused at start (exit 2, the reason on stderr); a valid one reaches JSON and HTML
unchanged ("café" stays "café"). Text the server did not choose (a path in a 404) is
escaped so that JSON stays valid and pages stay valid UTF-8."""
import json
import os
import subprocess

from harness import SERVER, ServerTest, run_tests

CAFE = "café"
ROCKET = "pod-\U0001F680"


def arg(raw):
    """bytes as a command-line argument or environment value (undecodable bytes kept)."""
    return os.fsdecode(raw)


class PodNames(ServerTest):
    def refused(self, raw, via_env):
        cmd = [SERVER, "--bind", "127.0.0.1", "--port", "0", "--data-dir", self.data]
        env = dict(os.environ)
        if via_env:
            env["POD_NAME"] = arg(raw)
        else:
            cmd += ["--pod-name", arg(raw)]
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "strict")

    def test_invalid_names_are_refused_at_start(self):
        cases = [
            (b"caf\xff", "byte 4 (0xff) is not valid UTF-8 there"),
            (b"caf\xc3", "byte 4 (0xc3) is not valid UTF-8 there"),       # cut short
            (b"\xc0\xaf", "byte 1 (0xc0) is not valid UTF-8 there"),      # overlong '/'
            (b"a\xed\xa0\x80", "byte 2 (0xed) is not valid UTF-8 there"),  # a surrogate
            (b"\xf4\x90\x80\x80", "byte 1 (0xf4) is not valid UTF-8 there"),  # > U+10FFFF
            (b"a\x01b", "the character at byte 2 is U+0001, a control character"),
            (b"a\x7f", "the character at byte 2 is U+007F, a control character"),
            (b"a\xc2\x85", "the character at byte 2 is U+0085, a control character"),
            (b"x" * 254, "254 bytes"),
        ]
        for raw, why in cases:
            for via_env in (False, True):
                with self.subTest(name=raw[:20], env=via_env):
                    rc, out, err = self.refused(raw, via_env)
                    self.assertEqual(rc, 2, err)
                    self.assertIn("POD_NAME" if via_env else "--pod-name", err)
                    self.assertIn("expected 1..253 bytes of UTF-8 text without control "
                                  "characters: " + why, err)
                    self.assertEqual(err.count("\n"), 1, err)
                    self.assertEqual(out, b"")
        self.assertFalse(os.path.exists(self.counter))

    def test_utf8_names_reach_json_and_html_unchanged(self):
        for name in (CAFE, ROCKET, "Ünïcödé-ポッド"):
            with self.subTest(name=name):
                srv = self.start(args=["--pod-name", name])
                for path in ("/", "/visits"):
                    status, hdrs, body = srv.request("GET", path,
                                                     {"Accept": "application/json"})
                    self.assertEqual(status, 200)
                    self.assertIn(name.encode(), body)  # raw UTF-8, not \\u00c3\\u00a9
                    self.assertEqual(json.loads(body.decode("utf-8"))["pod"], name)
                status, hdrs, body = srv.request("GET", "/", {"Accept": "text/html"})
                self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
                page = body.decode("utf-8", "strict")
                self.assertIn("<strong>%s</strong>" % name, page)
                status, hdrs, body = srv.request("GET", "/cluster",
                                                 {"Accept": "application/json"})
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body.decode("utf-8"))["pods"][0]["pod"], name)
                self.stop_ok(srv)

    def test_startup_line_escapes_nothing_valid(self):
        srv = self.start(args=["--pod-name", CAFE])
        self.assertIn("pod %s," % CAFE, srv.stdout())
        self.stop_ok(srv)

    def test_paths_in_errors_stay_valid_json(self):
        srv = self.start()
        for target, shown in ((b"/caf%C3%A9", "/café"), (b"/%FF", "/\ufffd"),
                              (b"/a%01b", "/a\x01b"), (b"/%00x", "/\x00x"),
                              (b"/%E2%80%A8", "/\u2028")):
            with self.subTest(target=target):
                status, hdrs, body = srv.request("GET", target.decode("latin-1"))
                self.assertEqual(status, 404)
                text = body.decode("utf-8", "strict")
                self.assertEqual(json.loads(text)["error"], "no route for %s (see /)" % shown)
                self.assertEqual(int(hdrs["content-length"]), len(body))
        self.stop_ok(srv)


if __name__ == "__main__":
    run_tests()
