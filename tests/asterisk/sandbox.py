"""A throw-away real Asterisk for the integration suite.

Every directory Asterisk uses is inside one run directory (config, AstDB,
spool, logs, sounds), AMI listens on a loopback port, and there is no SIP
stack: phones, agents and customers are Local channels of the test PBX
(``tests/asterisk/pbx/``). The binary is found by :func:`find_asterisk`:
``$AGI_SERVER_TEST_ASTERISK``, then ``asterisk`` on ``PATH``, then the
prefix ``../shared/asterisk/build.sh`` installs into.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

BUILD_PREFIX = Path("/opt/asterisk-22")
HOW_TO_GET = (
    "no Asterisk found: set AGI_SERVER_TEST_ASTERISK=/path/to/asterisk, put asterisk on PATH, "
    "or build one with ../shared/asterisk/build.sh (Asterisk 22 into /opt/asterisk-22)"
)

# What the test PBX needs and nothing else (no SIP, no core sounds).
MODULES = """
res_timing_timerfd res_agi res_speech res_musiconhold res_manager_devicestate pbx_config
app_dial app_queue app_chanspy app_playback app_read app_verbose app_userevent app_stack
app_senddtmf app_echo app_exec app_originate app_mixmonitor app_db app_while app_record
app_system app_softhangup
bridge_simple bridge_softmix bridge_holding bridge_builtin_features bridge_builtin_interval_features
chan_bridge_media
func_callerid func_strings func_global func_channel func_logic func_devstate func_extstate
func_timeout func_db func_cut func_math func_dialplan func_groupcount func_hangupcause func_env
func_sprintf func_uri
format_wav format_pcm format_sln format_gsm
codec_ulaw codec_alaw codec_gsm codec_a_mu codec_resample
cdr_manager cel_manager
""".split()


def find_asterisk() -> Path | None:
    """The asterisk binary the suite runs, or None."""
    given = os.environ.get("AGI_SERVER_TEST_ASTERISK")
    if given:
        path = Path(given)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    on_path = shutil.which("asterisk")
    if on_path:
        return Path(on_path)
    built = BUILD_PREFIX / "sbin" / "asterisk"
    return built if os.access(built, os.X_OK) else None


def asterisk_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "-V"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip() or out.stderr.strip()


class AsteriskSandbox:
    """``start()`` a real Asterisk in ``run_dir``; ``stop()`` ends it.

    Files the test wrote into ``run_dir/etc`` before ``start()`` are kept;
    the sandbox adds what is missing (asterisk.conf, modules.conf,
    logger.conf, manager.conf).
    """

    def __init__(self, run_dir: Path, binary: Path, ami_port: int) -> None:
        self.run = Path(run_dir)
        self.binary = Path(binary)
        self.ami_port = ami_port
        self.etc = self.run / "etc"
        self.sounds = self.run / "data" / "sounds"
        self.log_dir = self.run / "log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> Path:
        return self.binary.resolve().parent.parent

    @property
    def modules_dir(self) -> Path:
        for candidate in (self.prefix / "lib" / "asterisk" / "modules", self.prefix / "lib64" / "asterisk" / "modules",
                          Path("/usr/lib/asterisk/modules"), Path("/usr/lib/x86_64-linux-gnu/asterisk/modules")):
            if candidate.is_dir():
                return candidate
        raise RuntimeError(f"no Asterisk module directory near {self.binary}")

    @property
    def installed_data_dir(self) -> Path:
        """The installation's own data directory (XML documentation, ...)."""
        for candidate in (self.prefix / "var" / "lib" / "asterisk", Path("/var/lib/asterisk"),
                          Path("/usr/share/asterisk")):
            if (candidate / "documentation").is_dir():
                return candidate
        raise RuntimeError(f"no Asterisk data directory (with documentation/) near {self.binary}")

    def write_base_config(self) -> None:
        for sub in ("etc", "lib", "spool", "run", "log", "agi-bin", "data/sounds", "keys", "monitor"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        # The data directory is the sandbox's own (its sounds/ is where
        # agi-server installs prompts); the rest is the installation's.
        for entry in self.installed_data_dir.iterdir():
            link = self.run / "data" / entry.name
            if entry.name != "sounds" and not link.exists():
                link.symlink_to(entry)
        self._write("asterisk.conf", f"""[directories]
astetcdir => {self.etc}
astmoddir => {self.modules_dir}
astvarlibdir => {self.run}/lib
astdbdir => {self.run}/lib
astkeydir => {self.run}/keys
astdatadir => {self.run}/data
astagidir => {self.run}/agi-bin
astspooldir => {self.run}/spool
astrundir => {self.run}/run
astlogdir => {self.log_dir}
astsbindir => {self.binary.parent}
[options]
verbose = 3
nocolor = yes
""", force=True)
        self._write("modules.conf", "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES))
        self._write("logger.conf",
                    "[general]\nqueue_log = yes\n[logfiles]\nmessages.log => notice,warning,error,verbose\n")
        self._write("manager.conf", f"""[general]
enabled = yes
port = {self.ami_port}
bindaddr = 127.0.0.1
[test]
secret = test
read = all
write = all
""")
        self._write("cdr.conf", "[general]\nenable = yes\n")
        self._write("cdr_manager.conf", "[general]\nenabled = yes\n")
        self._write("cel.conf", "[general]\nenable = yes\napps = all\nevents = ALL\n")
        self._write("cel_manager.conf", "[general]\nenabled = yes\n")
        for name in ("musiconhold.conf", "features.conf", "queues.conf", "extensions.conf"):
            self._write(name, "")

    def _write(self, name: str, text: str, *, force: bool = False) -> None:
        path = self.etc / name
        if force or not path.exists():
            path.write_text(text, encoding="utf-8")

    def start(self, timeout: float = 30.0) -> None:
        self.write_base_config()
        console = open(self.log_dir / "console.log", "wb")
        self.process = subprocess.Popen(
            [str(self.binary), "-C", str(self.etc / "asterisk.conf"), "-f", "-n", "-g"],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
        )  # fmt: skip
        console.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited with {self.process.returncode}: {self.console_tail()}")
            out = self.cli("core waitfullybooted", timeout=5, check=False)
            if "fully booted" in out:
                return
            time.sleep(0.2)
        raise RuntimeError(f"asterisk did not boot within {timeout:g}s: {self.console_tail()}")

    def cli(self, command: str, *, timeout: float = 10.0, check: bool = True) -> str:
        """Run one CLI command on the running instance (``asterisk -rx``)."""
        out = subprocess.run(
            [str(self.binary), "-C", str(self.etc / "asterisk.conf"), "-rx", command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed: {out.stderr or out.stdout}")
        return out.stdout

    def console_tail(self, lines: int = 40) -> str:
        path = self.log_dir / "console.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def queue_log(self) -> list[list[str]]:
        """The queue_log lines, split on ``|``."""
        path = self.log_dir / "queue_log"
        if not path.exists():
            return []
        return [line.split("|") for line in path.read_text(errors="replace").splitlines() if line]

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        self.cli("core stop now", timeout=10, check=False)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
