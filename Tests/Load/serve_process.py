"""`flipt-offline serve` started for a load script: the process and the port it printed."""

import re
import subprocess
import time


class ServeProcess:
    """Starts `flipt-offline serve ARGUMENTS --listen 127.0.0.1:0`, logging to `log_path`; `port` is the bound port,
    None if it did not start (then `log()` says why). Stop it with `stop()`."""

    def __init__(self, tool, arguments, log_path):
        self.log_file = open(log_path, "w+")
        self.process = subprocess.Popen([tool, "serve", *arguments, "--listen", "127.0.0.1:0"], stderr=self.log_file)
        self.pid = self.process.pid
        self.port = None
        for _ in range(400):
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if found:
                self.port = int(found.group(1))
                break
            if self.process.poll() is not None:
                break
            time.sleep(0.05)

    def log(self):
        self.log_file.seek(0)
        return self.log_file.read()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()
