#!/usr/bin/env python3
"""A small Chrome DevTools Protocol driver for the dashboard's browser test (stdlib only).

Starts headless Chromium with --remote-debugging-pipe (commands on its fd 3, answers on
its fd 4, JSON messages ended by a NUL byte), opens one page, then reads one command per
line of JSON on stdin and answers each with one line of JSON on stdout:

  {"cmd": "navigate", "url": "http://127.0.0.1:PORT/"}      -> {"ok": true}
  {"cmd": "eval", "expression": "..."}                       -> {"ok": true, "value": ...}
  {"cmd": "wait", "expression": "...", "timeout": 20}        -> {"ok": true, "value": ...}
  {"cmd": "viewport", "width": 390, "height": 844, "mobile": true, "scale": 2}
  {"cmd": "key", "key": "Enter"}                             (to the focused element)
  {"cmd": "screenshot", "path": "/tmp/x.png"}                (the whole page, or with
                                                              "full_page": false the viewport)
  {"cmd": "pdf", "path": "/tmp/x.pdf"}                       (as printed)
  {"cmd": "requests"}                                        -> every URL the page requested
  {"cmd": "problems"}                                        -> script exceptions, console errors,
                                                              failed loads, CSP violations
  {"cmd": "quit"}

Failures answer {"ok": false, "error": "..."}. Every wait is bounded: a CDP call gives up
after --timeout seconds, `wait` after its own timeout.

Usage: browser.py CHROMIUM USER_DATA_DIR LOG_FILE
"""

import base64
import fcntl
import json
import os
import queue
import subprocess
import sys
import threading
import time

CALL_TIMEOUT = 30.0


def high_fd(fd):
    """The same file on a descriptor numbered 10 or more (the old one is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    def __init__(self, binary, user_data_dir, log_path):
        commands_read, commands_write = os.pipe()
        answers_read, answers_write = os.pipe()
        # Move Chromium's ends above 4 first, so the redirections below cannot close one
        # end while placing the other.
        commands_read = high_fd(commands_read)
        answers_write = high_fd(answers_write)
        # bash (dash reads only one-digit descriptors) puts the two pipe ends on fds 3 and 4, where --remote-debugging-pipe
        # expects them, then becomes Chromium.
        script = f'exec "$0" "$@" 3<&{commands_read} 4>&{answers_write} {commands_read}<&- {answers_write}>&-'
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [
                "bash", "-c", script, binary,
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-extensions", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--mute-audio",
                "--hide-scrollbars", "--force-color-profile=srgb",
                f"--user-data-dir={user_data_dir}",
                "--remote-debugging-pipe", "about:blank",
            ],
            pass_fds=(commands_read, answers_write),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
        )
        os.close(commands_read)
        os.close(answers_write)
        self.writer = os.fdopen(commands_write, "wb", buffering=0)
        self.reader = os.fdopen(answers_read, "rb", buffering=0)
        self.next_id = 0
        self.pending = {}
        self.lock = threading.Lock()
        self.events = queue.Queue()
        self.requests = []
        self.problems = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = self.reader.read(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self.lock:
                        waiter = self.pending.pop(message["id"], None)
                    if waiter is not None:
                        waiter.put(message)
                else:
                    method = message.get("method")
                    params = message.get("params", {})
                    if method == "Network.requestWillBeSent":
                        self.requests.append(params["request"]["url"])
                    elif method == "Runtime.exceptionThrown":
                        details = params["exceptionDetails"]
                        self.problems.append("exception: " + (
                            details.get("exception", {}).get("description") or details.get("text", "")))
                    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                        self.problems.append("console.error: " + " ".join(
                            str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])))
                    elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                        # Failed loads and Content-Security-Policy violations land here.
                        entry = params["entry"]
                        self.problems.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
                    self.events.put(message)
        with self.lock:
            for waiter in self.pending.values():
                waiter.put({"error": {"message": "Chromium closed the pipe"}})
            self.pending.clear()

    def call(self, method, params=None, session=None, timeout=CALL_TIMEOUT):
        with self.lock:
            self.next_id += 1
            call_id = self.next_id
            waiter = queue.Queue(maxsize=1)
            self.pending[call_id] = waiter
        message = {"id": call_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.writer.write(json.dumps(message).encode() + b"\0")
        try:
            answer = waiter.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{method}: no answer within {timeout} s")
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def wait_event(self, method, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {method} within {timeout} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("method") == method:
                return event

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class Page:
    def __init__(self, browser):
        self.browser = browser
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.width, self.height, self.mobile, self.scale = 1280, 900, False, 1
        self.viewport(self.width, self.height, False, 1)

    def call(self, method, params=None, timeout=CALL_TIMEOUT):
        return self.browser.call(method, params, self.session, timeout)

    def navigate(self, url, timeout=30):
        while not self.browser.events.empty():
            self.browser.events.get_nowait()
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise RuntimeError(f"navigate {url}: {answer['errorText']}")
        self.browser.wait_event("Page.loadEventFired", timeout)

    def eval(self, expression, timeout=CALL_TIMEOUT):
        answer = self.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, timeout)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"script error: {text}")
        return answer["result"].get("value")

    def wait(self, expression, timeout):
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = self.eval(expression, timeout=max(1.0, deadline - time.monotonic()))
                if value:
                    return value
            except RuntimeError as error:
                last_error = error
            time.sleep(0.05)
        raise RuntimeError(f"still false after {timeout} s: {expression}" +
                           (f" (last error: {last_error})" if last_error else ""))

    def viewport(self, width, height, mobile, scale):
        self.width, self.height, self.mobile, self.scale = width, height, mobile, scale
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile,
        })

    def key(self, key):
        codes = {"Enter": 13, "Escape": 27, "Tab": 9, " ": 32}
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": key, "code": key if key != " " else "Space",
                      "windowsVirtualKeyCode": codes.get(key, 0)}
            if kind == "keyDown" and key == "Enter":
                params["text"] = "\r"
            self.call("Input.dispatchKeyEvent", params)

    def screenshot(self, path, full_page=True):
        if not full_page:
            data = self.call("Page.captureScreenshot", {"format": "png"}, timeout=60)["data"]
            with open(path, "wb") as file:
                file.write(base64.b64decode(data))
            return {"path": path}
        # The whole page: make the viewport as tall as the content, capture, restore.
        height = self.eval("Math.ceil(document.documentElement.scrollHeight)")
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": int(height), "deviceScaleFactor": self.scale,
            "mobile": self.mobile,
        })
        try:
            data = self.call("Page.captureScreenshot", {"format": "png"}, timeout=60)["data"]
        finally:
            self.viewport(self.width, self.height, self.mobile, self.scale)
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))
        return {"path": path, "height": height}

    def pdf(self, path):
        data = self.call("Page.printToPDF", {
            "printBackground": True, "preferCSSPageSize": True,
        }, timeout=60)["data"]
        raw = base64.b64decode(data)
        with open(path, "wb") as file:
            file.write(raw)
        return {"path": path, "bytes": len(raw)}


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    browser = Chromium(sys.argv[1], sys.argv[2], sys.argv[3])
    try:
        page = Page(browser)
        print(json.dumps({"ok": True, "ready": True}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            name = command.get("cmd")
            try:
                if name == "quit":
                    print(json.dumps({"ok": True}), flush=True)
                    break
                elif name == "navigate":
                    page.navigate(command["url"], command.get("timeout", 30))
                    value = None
                elif name == "eval":
                    value = page.eval(command["expression"])
                elif name == "wait":
                    value = page.wait(command["expression"], command.get("timeout", 20))
                elif name == "viewport":
                    page.viewport(command["width"], command["height"],
                                  command.get("mobile", False), command.get("scale", 1))
                    value = None
                elif name == "key":
                    page.key(command["key"])
                    value = None
                elif name == "screenshot":
                    value = page.screenshot(command["path"], command.get("full_page", True))
                elif name == "pdf":
                    value = page.pdf(command["path"])
                elif name == "requests":
                    value = list(browser.requests)
                elif name == "problems":
                    value = list(browser.problems)
                else:
                    raise RuntimeError(f"unknown command {name!r}")
                print(json.dumps({"ok": True, "value": value}), flush=True)
            except Exception as error:  # reported to the test, which fails with it
                print(json.dumps({"ok": False, "error": str(error)}), flush=True)
    finally:
        browser.close()


if __name__ == "__main__":
    main()
