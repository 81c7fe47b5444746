#!/usr/bin/python3 -IS
"""systemctl / journalctl STAND-IN for the etcd-ha lab. This is NOT systemd.

Lab hosts have no systemd; the lab installs this file as both `systemctl` and `journalctl` (role = basename of
argv[0]). `start` spawns one fully detached supervisor per service (double fork, setsid, stdin /dev/null,
stdout/stderr to the unit's log, no other fd kept, so the SSH session that ran `systemctl start` can end). It
runs the main process, waits for readiness (Type=notify: a real READY=1 datagram on NOTIFY_SOCKET), logs its
output, reaps it (and, as child subreaper, its orphans) and restarts it.

Verbs: daemon-reload, start [--no-block], stop, restart, enable [--now], disable [--now], is-enabled, is-active [-q],
  status [-n N], show [-p PROP]... [--value], kill [-s SIG], reset-failed, list-timers [--all], and the
  stand-in extension `standin-fire X.timer`: timers never fire by themselves; this starts the timer's service
  synchronously (a oneshot runs to completion; its exit status is ours) and records the trigger time.
  journalctl: -u UNIT, -n [N|all], -o short|cat, -x, -e, -q, --no-pager.
Honoured: [Unit] Description, StartLimitIntervalSec, StartLimitBurst. [Service] Type (simple exec notify oneshot),
  one ExecStart (\\-continuations, quotes, $VAR, ${VAR}, prefixes - @ +), User, Group (setgid, initgroups,
  setuid), Environment, EnvironmentFile, WorkingDirectory, UMask, NoNewPrivileges, Limit{NOFILE,NPROC,CORE,
  MEMLOCK,STACK,AS,FSIZE,DATA} (clamped, with a log line, to a hard limit this machine's root cannot raise),
  Restart (no always on-success on-failure on-abnormal on-abort), RestartSec, TimeoutStartSec (90 s; none for
  oneshot, as in systemd), TimeoutStopSec, TimeoutSec, RemainAfterExit, NotifyAccess (main all none; MAINPID= is
  shown, the forked process stays the watched one), KillMode=process (else the main process group stands in for the control group). [Install]
  WantedBy, RequiredBy (real .wants/ symlinks). [Timer] Unit. Specifiers %n %N %p %i %H %%. Drop-ins .d/*.conf.
Parsed but NOT enforced: every other key, e.g. After, Before, Wants, Requires, Documentation, IOSchedulingClass,
  IOSchedulingPriority, ProtectSystem, ProtectHome, PrivateTmp, ReadWritePaths; [Timer] OnCalendar, OnBootSec,
  Persistent. No ordering, dependencies, cgroups, sandboxing or scheduling. ExecStartPre/Post, ExecStop(Post),
  ExecReload, ExecCondition or a second ExecStart make `start` fail rather than be skipped. Unknown verbs,
  options and `show` properties fail (exit 1).
Paths: units in $SYSTEMCTL_STANDIN_UNIT_DIR (colon-separated; default /etc/systemd/system:/lib/systemd/system;
  enable links go in the first), state in $SYSTEMCTL_STANDIN_STATE (default /run/systemctl-standin): loaded/
  (daemon-reload snapshots), units/<unit>/ (state.json, supervisor.pid, main.pid, notify socket, locks),
  journal/<unit>.log (journald short format).
"""
import ctypes, fcntl, getopt, grp, json, math, os, pwd, re, resource, select, shlex, shutil, signal, socket, struct, sys, time, traceback, uuid
from contextlib import nullcontext, suppress

UNIT_DIRS = os.environ.get("SYSTEMCTL_STANDIN_UNIT_DIR", "/etc/systemd/system:/lib/systemd/system").split(":")
STATE = os.environ.get("SYSTEMCTL_STANDIN_STATE", "/run/systemctl-standin")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}
STEPS = {"SETUP": 1, "CHDIR": 200, "EXEC": 203, "LIMITS": 205, "GROUP": 216, "USER": 217}
EXIT_NAMES = dict(enumerate("SUCCESS FAILURE INVALIDARGUMENT NOTIMPLEMENTED NOPERMISSION NOTINSTALLED NOTCONFIGURED NOTRUNNING".split()))
EXIT_NAMES.update({c: s for s, c in STEPS.items() if c > 1})
SPANS = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
         "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
FAILURES = {"exit-code", "signal", "core-dump", "timeout", "protocol", "resources"}
RESTART_ON = {"no": set(), "always": FAILURES | {"success"}, "on-success": {"success"}, "on-failure": FAILURES,
              "on-abnormal": {"signal", "core-dump", "timeout"}, "on-abort": {"signal", "core-dump"}}
WHY = {"exit-code": "the control process exited with error code", "signal": "a fatal signal was delivered to the control process",
       "core-dump": "a fatal signal was delivered causing the control process to dump core", "timeout": "a timeout was exceeded",
       "start-limit-hit": "start of the service was attempted too often", "resources": "of unavailable resources or another system error",
       "protocol": "the service did not take the steps required by its unit configuration"}
UNSUPPORTED = ("ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload", "ExecCondition")

class Fail(Exception):
    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code

def eprint(*a): print(*a, file=sys.stderr)
def yes(v): return v in ("yes", "true", "on", "1")
def norm(name): return name if name.endswith((".service", ".timer")) else name + ".service"
def trigger(timer, u): return val(u, "Timer", "Unit", timer[:-6] + ".service")
def journal(unit): return os.path.join(mkdir("journal"), unit + ".log")
def getpw(user): return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
def getgr(group): return grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
def stamp(ts): return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(ts)) if ts else "n/a"
def ago(ts): return f"{int(time.time() - ts)}s ago" if ts else "n/a"

def val(u, sec, key, default=None):
    v = u.get(sec, {}).get(key)
    return v[-1] if v else default

def mkdir(*parts):
    os.makedirs(os.path.join(STATE, *parts), 0o755, exist_ok=True)
    return os.path.join(STATE, *parts)

def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()

def write_json(path, data):
    with open(f"{path}.{os.getpid()}", "w") as f:
        json.dump(data, f)
    os.replace(f"{path}.{os.getpid()}", path)

def disk(unit):
    """(path, text) of the unit file with its drop-ins appended, or (None, None)."""
    for p in (os.path.join(d, unit) for d in UNIT_DIRS):
        if os.path.isfile(p):
            drops = sorted(f for f in os.listdir(p + ".d") if f.endswith(".conf")) if os.path.isdir(p + ".d") else []
            return p, "\n".join([read(p)] + [read(os.path.join(p + ".d", f)) for f in drops])
    return None, None

def load(unit, warn=False):
    """The loaded definition (daemon-reload's snapshot, else the file at first use): (path, sections) or (None, None)."""
    path, text = disk(unit)
    try:
        with open(os.path.join(STATE, "loaded", unit)) as f:
            snap = json.load(f)
    except OSError:
        if text is None:
            return None, None
        write_json(os.path.join(mkdir("loaded"), unit), snap := {"path": path, "text": text})
    if warn and text != snap["text"]:
        eprint(f"Warning: The unit file, source configuration file or drop-ins of {unit} changed on disk. Run 'systemctl daemon-reload' to reload units.")
    return snap["path"], parse(snap["text"], unit)

def parse(text, unit):
    base, secs, cur = unit.rpartition(".")[0], {}, None
    spec = {"n": unit, "N": base, "p": base.split("@")[0], "i": base.partition("@")[2], "H": socket.gethostname(), "%": "%"}
    for line in (x.strip() for x in re.sub(r"\\\n", " ", text).split("\n")):
        if line[:1] == "[" and line[-1:] == "]":
            cur = secs.setdefault(line[1:-1], {})
        elif line and line[0] not in "#;" and "=" in line and cur is not None:
            key, value = (x.strip() for x in line.split("=", 1))
            value = re.sub(r"%([nNpiH%])", lambda m: spec[m.group(1)], value)
            cur[key] = cur.get(key, []) + [value] if value else []  # an empty assignment resets the list
    return secs

def span(v, default):
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", v or "")
    if v is None or v.strip() == "infinity":
        return default if v is None else math.inf
    if not parts or re.sub(r"[\d.\sa-z]", "", v) or any(s not in SPANS for _, s in parts):
        raise Fail(f"Invalid time span '{v}'.")
    return sum(float(n) * SPANS[s] for n, s in parts)

def timeouts(u):
    both, oneshot = val(u, "Service", "TimeoutSec"), val(u, "Service", "Type") == "oneshot"  # 0 = no timeout
    start = span(val(u, "Service", "TimeoutStartSec", both), math.inf if oneshot else 90)
    return start or math.inf, span(val(u, "Service", "TimeoutStopSec", both), 90) or math.inf

def state(unit):
    with suppress(OSError, ValueError), open(os.path.join(STATE, "units", unit, "state.json")) as f:
        return json.load(f)
    return {}

def save(unit, st, active=None, sub=None, result=None):
    if active and active != st.get("ActiveState"):
        st["StateChangeTimestamp"] = time.time()
    st.update({k: v for k, v in (("ActiveState", active), ("SubState", sub), ("Result", result)) if v})
    write_json(os.path.join(mkdir("units", unit), "state.json"), st)

def supervisor(unit):
    """PID of the unit's live supervisor (it holds supervisor.lock while it lives), else 0."""
    with open(os.path.join(mkdir("units", unit), "supervisor.lock"), "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return 0
        except BlockingIOError:
            return int(read(os.path.join(STATE, "units", unit, "supervisor.pid")) or 0)

def current(unit):
    st = state(unit)
    if st.get("Supervised") and st.get("ActiveState") in ("active", "activating", "deactivating") and not supervisor(unit):
        st.update(ActiveState="failed", SubState="failed", Result="resources", MainPID=0)  # the supervisor was killed
    return st

def environment(u, st):
    """systemd's clean environment: PATH, LANG, User='s HOME USER LOGNAME SHELL, INVOCATION_ID, Environment=, EnvironmentFile=."""
    env, user = {"PATH": PATH, "LANG": "C.UTF-8", "INVOCATION_ID": st["InvocationID"]}, val(u, "Service", "User")
    with suppress(KeyError):  # an unknown user fails later, at step USER
        pw = getpw(user) if user else None
        env.update(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name, SHELL=pw.pw_shell) if pw else None
    for line in u.get("Service", {}).get("Environment", []):
        env.update(w.split("=", 1) for w in shlex.split(line) if "=" in w)
    for line in u.get("Service", {}).get("EnvironmentFile", []):
        try:
            for key, eq, value in (tuple(x.strip() for x in row.partition("=")) for row in read(line.lstrip("-")).split("\n")):
                if eq and key and key[0] not in "#;":
                    quoted = len(value) > 1 and value[0] == value[-1] and value[0] in "'\""
                    env[key] = value if not quoted else value[1:-1] if value[0] == "'" else re.sub(r'\\(["\\$`])', r"\1", value[1:-1])
        except OSError as e:
            if not line.startswith("-"):
                raise Fail(f"Failed to load environment files: {e.strerror}") from None
    return env

def command(u, env):
    """ExecStart= as (prefix, path, argv): quotes, $VAR (split into words) and ${VAR}, prefixes - @ +."""
    words = shlex.split(u["Service"]["ExecStart"][0])
    prefix = re.match(r"[-@+!:]*", words[0]).group()
    words[0], out = words[0][len(prefix):], []
    for w in words:
        if whole := re.fullmatch(r"\$(\w+)", w):
            out += env.get(whole.group(1), "").split()
        else:
            out.append(re.sub(r"\$\{(\w+)\}|\$\$", lambda m: env.get(m.group(1), "") if m.group(1) else "$", w))
    return prefix, out[0] if "/" in out[0] else (shutil.which(out[0], path=PATH) or out[0]), out[1:] if "@" in prefix else out

def child(u, prefix, path, argv, env, errw, outw):
    """The forked main process: fds, limits, credentials, directory, exec. Failures go to errw. Never returns."""
    step, sv = "SETUP", lambda k, d=None: val(u, "Service", k, d)
    try:
        for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setsid()
        for fd, src in ((0, os.open(os.devnull, os.O_RDONLY)), (1, outw), (2, outw)):
            os.dup2(src, fd)
        os.closerange(3, errw)
        os.closerange(errw + 1, 65536)
        step = "LIMITS"
        for key in ("NOFILE", "NPROC", "CORE", "MEMLOCK", "STACK", "AS", "FSIZE", "DATA"):
            if sv("Limit" + key):
                res, (soft, _, hard) = getattr(resource, "RLIMIT_" + key), sv("Limit" + key).partition(":")
                want = tuple(resource.RLIM_INFINITY if x == "infinity" else int(x) for x in (soft, hard or soft))
                try:
                    resource.setrlimit(res, want)
                except ValueError:  # the lab machine's root may lack CAP_SYS_RESOURCE: clamp to its hard limit, and say so
                    cap = resource.getrlimit(res)[1]
                    fit = tuple(cap if x == resource.RLIM_INFINITY or x > cap else x for x in want)
                    os.write(2, f"systemctl stand-in: Limit{key}={sv('Limit' + key)} clamped to {fit[1]}, the hard limit this machine cannot raise\n".encode())
                    resource.setrlimit(res, fit)
        os.umask(int(sv("UMask", "0022"), 8))
        user, group = ("", "") if "+" in prefix else (sv("User", ""), sv("Group", ""))
        step = "USER"
        pw = getpw(user) if user else None
        step = "GROUP"
        if user or group:
            gid = getgr(group).gr_gid if group else pw.pw_gid
            os.setgid(gid)
            os.initgroups(pw.pw_name, gid) if pw else os.setgroups([])
        step, wd = "USER", sv("WorkingDirectory", "/")
        os.setuid(pw.pw_uid) if pw else None
        step = "CHDIR"
        with suppress(OSError) if wd.startswith("-") else nullcontext():
            os.chdir(env.get("HOME", "/") if wd.lstrip("-") == "~" else wd.lstrip("-"))
        if yes(sv("NoNewPrivileges")):
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        step = "EXEC"
        os.execve(path, argv, env)
    except BaseException as e:
        os.write(errw, f"Failed at step {step} spawning {path}: {getattr(e, 'strerror', None) or e}".encode())
    os._exit(STEPS[step])

class Supervisor:
    """The detached supervisor of one service: runs, watches, restarts and stops its main process."""

    def __init__(self, unit, u, report_w):
        self.unit, self.u, self.report_w, self.stop, self.ns, self.st = unit, u, report_w, False, None, state(unit)
        self.sv = lambda k, d=None: val(u, "Service", k, d)
        self.kind, self.desc, self.host = self.sv("Type", "simple"), val(u, "Unit", "Description", unit), socket.gethostname()
        self.tstart, self.tstop = timeouts(u)

    def log(self, msg, ident="systemctl-standin", pid=None):
        head = f"{time.strftime('%b %d %H:%M:%S')} {self.host} {ident}[{pid or os.getpid()}]: "
        os.write(1, head.encode() + (msg if isinstance(msg, bytes) else msg.encode()) + b"\n")

    def report(self, word):
        """The first report ends the `systemctl start` that spawned us: done, canceled or a failure result."""
        if self.report_w is not None:
            with suppress(OSError):
                os.write(self.report_w, word.encode())
            os.close(self.report_w)
            self.report_w = None

    def kill(self, pid, sig):
        for target in (pid,) if self.sv("KillMode") == "process" else (-pid, pid):
            with suppress(ProcessLookupError):
                return os.kill(target, sig)

    def run(self):
        unit, st, rd = self.unit, self.st, mkdir("units", self.unit)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))  # `systemctl stop`
        with open(os.path.join(rd, "supervisor.pid"), "w") as f:
            f.write(str(os.getpid()))
        fcntl.flock(lock := open(os.path.join(rd, "supervisor.lock"), "a"), fcntl.LOCK_EX)  # held until we exit
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the service's orphans are reaped here too
        st.update(Supervised=True, NRestarts=0, MainPID=0, InvocationID=uuid.uuid4().hex, StatusText="")
        save(unit, st, "activating", "start", "success")
        if self.kind == "notify":
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(rd, "notify"))
            self.ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.ns.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self.ns.bind(os.path.join(rd, "notify"))
            os.chmod(os.path.join(rd, "notify"), 0o777)  # User= must be able to send
        interval, burst = span(val(self.u, "Unit", "StartLimitIntervalSec"), 10), int(val(self.u, "Unit", "StartLimitBurst", "5"))
        while True:
            st["StartTimes"] = [t for t in st.get("StartTimes", []) if time.time() - t < interval] + [time.time()]
            if len(st["StartTimes"]) > burst:
                self.log(f"{unit}: Start request repeated too quickly.")
                result = "start-limit-hit"
                break
            result = self.run_once()
            if self.stop or self.kind == "oneshot" or result not in RESTART_ON[self.sv("Restart", "no")]:
                break
            save(unit, st, "activating", "auto-restart", result)
            self.log(f"{unit}: Failed with result '{result}'.") if result != "success" else None
            self.report(result)
            wake = time.time() + span(self.sv("RestartSec"), 0.1)
            while not self.stop and time.time() < wake:
                time.sleep(0.05)
            if self.stop:
                result = "success"
                break
            st["NRestarts"] += 1
            self.log(f"{unit}: Scheduled restart job, restart counter is at {st['NRestarts']}.")
        ok, remain = result == "success", self.kind == "oneshot" and result == "success" and not self.stop and yes(self.sv("RemainAfterExit"))
        save(unit, st, "active" if remain else "inactive" if ok else "failed", "exited" if remain else "dead" if ok else "failed", result)
        self.log(f"{unit}: Deactivated successfully." if ok else f"{unit}: Failed with result '{result}'.")
        self.report("canceled" if self.stop else "done" if ok else result)
        os.unlink(self.ns.getsockname()) if self.ns else None
        lock.close()

    def run_once(self):
        """One main process, from spawn to reaped; returns systemd's result for it."""
        unit, st = self.unit, self.st
        self.log(f"Starting {unit} - {self.desc}...")
        save(unit, st, "activating", "start")
        try:
            env = environment(self.u, st)
            env.update(NOTIFY_SOCKET=self.ns.getsockname()) if self.ns else None
            prefix, path, argv = command(self.u, env)
        except (Fail, ValueError, IndexError) as e:
            self.log(f"{unit}: {e}")
            return "resources"
        (errr, errw), (outr, outw) = os.pipe(), os.pipe()
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # a stop racing the fork still reaches the child
        if (pid := os.fork()) == 0:
            child(self.u, prefix, path, argv, env, errw, outw)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.close(errw)
        os.close(outw)
        with open(os.path.join(STATE, "units", unit, "main.pid"), "w") as f:
            f.write(str(pid))
        st.update(MainPID=pid, ExecMainPID=pid, ExecMainStartTimestamp=time.time(), ExecMainCode=0, ExecMainStatus=0)
        save(unit, st)
        ident, buf, fds = os.path.basename(argv[0]), [b""], [fd for fd in (errr, outr, self.ns) if fd is not None]
        ready, status, result, stop_at, deadline = self.kind == "simple", None, None, None, time.time() + self.tstart

        def pump(reads):  # the service's output, line by line, into the journal; False at EOF
            for _ in range(reads):
                if not (data := os.read(outr, 65536) if select.select([outr], [], [], 0)[0] else None):
                    return data is None
                *lines, buf[0] = (buf[0] + data).split(b"\n")
                for line in lines + ([buf[0]] if len(buf[0]) > 65536 else []):
                    self.log(line, ident, pid)
                buf[0] = b"" if len(buf[0]) > 65536 else buf[0]
            return True

        while status is None:
            for fd in select.select(fds, [], [], 0.1)[0]:
                if fd == errr:  # EOF: exec succeeded; else the child's own error
                    fds.remove(errr)
                    err = os.read(errr, 4096)
                    self.log(f"{unit}: {err.decode(errors='replace')}") if err else None
                    ready = ready or (self.kind == "exec" and not err)
                elif fd == outr and not pump(1):
                    fds.remove(outr)
                elif fd is self.ns:
                    ready = self.notify(pid) or ready
            if ready and st["ActiveState"] == "activating" and self.kind != "oneshot":
                st["ActiveEnterTimestamp"] = time.time()
                save(unit, st, "active", "running")
                self.log(f"Started {unit} - {self.desc}.")
                self.report("done")
            status, now = self.reap(pid), time.time()
            if status is None and stop_at is None and (self.stop or (not ready and now > deadline)):
                self.log(f"Stopping {unit} - {self.desc}..." if self.stop else f"{unit}: start operation timed out. Terminating.")
                result, stop_at = None if self.stop else "timeout", now + self.tstop
                save(unit, st, "deactivating", "stop-sigterm")
                self.kill(pid, signal.SIGTERM)
            elif status is None and stop_at is not None and now > stop_at:
                self.log(f"{unit}: State 'stop-sigterm' timed out. Killing.")
                result, stop_at = "timeout", math.inf
                self.kill(pid, signal.SIGKILL)
        pump(1000)
        self.log(buf[0], ident, pid) if buf[0] else None
        os.close(errr)
        os.close(outr)
        with suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # what is left of the service's process group
        exited = os.WIFEXITED(status)
        num = os.WEXITSTATUS(status) if exited else os.WTERMSIG(status)
        code = 1 if exited else 3 if os.WCOREDUMP(status) else 2  # ExecMainCode: CLD_EXITED, CLD_KILLED, CLD_DUMPED
        st.update(MainPID=0, ExecMainCode=code, ExecMainStatus=num, StatusText="")
        name = EXIT_NAMES.get(num, "n/a") if exited else signal.Signals(num).name[3:]
        self.log(f"{unit}: Main process exited, code={('exited', 'killed', 'dumped')[code - 1]}, status={num}/{name}")
        clean = (num == 0 or "-" in prefix) if exited else num in CLEAN_SIGNALS
        result = result or ("success" if clean else ("exit-code", "signal", "core-dump")[code - 1])
        return "protocol" if result == "success" and not ready and self.kind == "notify" and not self.stop else result

    def notify(self, pid):
        """One sd_notify datagram: True for READY=1. STATUS= and MAINPID= are recorded, the rest ignored."""
        data, anc, _, _ = self.ns.recvmsg(4096, socket.CMSG_SPACE(12))
        sender = next((struct.unpack("3i", d[:12])[0] for lv, ty, d in anc if (lv, ty) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)), 0)
        access = self.sv("NotifyAccess", "main")
        if access != "all" and (access == "none" or sender not in (pid, self.st.get("MainPID"))):
            self.log(f"{self.unit}: Got notification message from PID {sender}, but reception only permitted for main PID {pid}")
            return False
        fields = dict(line.split("=", 1) for line in data.decode(errors="replace").split("\n") if "=" in line)
        self.st["StatusText"] = fields.get("STATUS", self.st.get("StatusText", ""))
        self.st["MainPID"] = int(fields["MAINPID"]) if fields.get("MAINPID", "").isdigit() else self.st["MainPID"]
        save(self.unit, self.st)
        return fields.get("READY") == "1"

    def reap(self, pid):
        """Reaps every exited child (we are a subreaper); the main process' wait status, or None."""
        status = None
        with suppress(ChildProcessError):
            for _ in range(1000):
                p, s = os.waitpid(-1, os.WNOHANG)
                if p == 0:
                    break
                status = s if p == pid else status
        return status

def spawn(unit, u, wait):
    """Starts the detached supervisor; returns its one-word report (at most `wait` seconds later)."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    if (pid := os.fork()) == 0:  # double fork + setsid: the supervisor keeps no tty, no stdout/stderr and no fd of the caller
        try:
            os.setsid()
            if os.fork() == 0:
                log = os.open(journal(unit), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                for fd, src in ((0, os.open(os.devnull, os.O_RDWR)), (1, log), (2, log)):
                    os.dup2(src, fd)
                os.closerange(3, w)
                os.closerange(w + 1, 65536)
                Supervisor(unit, u, w).run()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    word, deadline = b"", time.time() + wait
    while time.time() < deadline:
        if select.select([r], [], [], min(deadline - time.time(), 60))[0]:
            if not (chunk := os.read(r, 64)):
                os.close(r)
                return word.decode() or "resources"
            word += chunk
    return "timeout"

def start(unit, verb="start", block=True):
    path, u = load(unit)
    if u is None:
        raise Fail(f"Failed to {verb} {unit}: Unit {unit} not found.", 5)
    if unit.endswith(".timer"):
        if load(trigger(unit, u))[1] is None:
            raise Fail(f"Failed to {verb} {unit}: Unit {trigger(unit, u)} not found.", 5)
        return save(unit, state(unit), "active", "waiting", "success")
    svc = u.get("Service", {})
    bad = [k + "=" for k in UNSUPPORTED if svc.get(k)] + ([] if len(svc.get("ExecStart", [])) == 1 else ["a unit without exactly one ExecStart="])
    if bad:
        raise Fail(f"Failed to {verb} {unit}: the lab stand-in does not support {', '.join(bad)}.")
    tstart, tstop = timeouts(u)
    with open(os.path.join(mkdir("units", unit), "op.lock"), "a") as op:
        fcntl.flock(op, fcntl.LOCK_EX)  # one start at a time per unit
        if supervisor(unit):  # running, or between restarts: wait until it is active
            deadline = time.time() + tstart + span(val(u, "Service", "RestartSec"), 0.1) + 5
            while current(unit).get("ActiveState") == "activating" and time.time() < deadline:
                time.sleep(0.1)
            word = "done" if current(unit).get("ActiveState") == "active" else current(unit).get("Result", "resources")
        else:
            word = spawn(unit, u, tstart + tstop + 10 if block else 0)
    if not block:  # --no-block: the job is queued; its outcome is not waited for (nor reported)
        return
    if word != "done":
        raise Fail(f"Job for {unit} canceled." if word == "canceled" else f"Job for {unit} failed because {WHY.get(word, WHY['resources'])}.\n"
                   f"See \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details.")

def stop(unit, verb="stop"):
    path, u = load(unit)
    if u is None:
        raise Fail(f"Failed to {verb} {unit}: Unit {unit} not loaded.", 5)
    if pid := supervisor(unit):
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeouts(u)[1] + 10
        while supervisor(unit) and time.time() < deadline:
            time.sleep(0.05)
        if supervisor(unit):
            raise Fail(f"Failed to {verb} {unit}: its stand-in supervisor (PID {pid}) did not exit.")
    elif state(unit).get("ActiveState") in ("active", "activating"):  # a timer, or a oneshot with RemainAfterExit=yes
        save(unit, state(unit), "inactive", "dead")

def links(unit, text):
    u = parse(text, unit)
    return [os.path.join(UNIT_DIRS[0], f"{t}.{kind}", unit) for key, kind in (("WantedBy", "wants"), ("RequiredBy", "requires"))
            for line in u.get("Install", {}).get(key, []) for t in line.split()]

def file_state(unit):
    ls = links(unit, text) if (text := disk(unit)[1]) is not None else None
    return None if ls is None else "enabled" if any(os.path.lexists(x) for x in ls) else "disabled" if ls else "static"

def enable(unit, on):
    path, text = disk(unit)
    if text is None:
        raise Fail(f"Failed to {'enable' if on else 'disable'} unit: Unit file {unit} does not exist.")
    if on and not links(unit, text):
        eprint(f"The unit files have no installation config (WantedBy=, RequiredBy=) for {unit}; enabling is a no-op.")
    for link in links(unit, text):
        if on and not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(path, link)
            eprint(f"Created symlink {link} → {path}.")
        elif not on and os.path.lexists(link):
            os.unlink(link)
            eprint(f'Removed "{link}".')

def tail(unit, n):
    with suppress(OSError):
        lines = read(os.path.join(STATE, "journal", unit + ".log")).splitlines()
        return lines if n is None else lines[-n:] if n else []
    return []

def status(unit, n):
    path, u = load(unit)
    if u is None:
        raise Fail(f"Unit {unit} could not be found.", 4)
    st = current(unit)
    active, since, pid = st.get("ActiveState", "inactive"), st.get("StateChangeTimestamp"), st.get("MainPID")
    print(f"{'×' if active == 'failed' else '●'} {unit} - {val(u, 'Unit', 'Description', unit)}")
    print(f"     Loaded: loaded ({path}; {file_state(unit) or 'bad'}; preset: enabled)")
    result = f" (Result: {st.get('Result')})" if active == "failed" else ""
    print(f"     Active: {active} ({st.get('SubState', 'dead')}){result}" + (f" since {stamp(since)}; {ago(since)}" if since else ""))
    if unit.endswith(".timer"):
        print(f"    Trigger: n/a (stand-in timers fire only by `systemctl standin-fire`)\n   Triggers: ● {trigger(unit, u)}")
    if pid:
        print(f"   Main PID: {pid} ({read(f'/proc/{pid}/comm').strip() if os.path.exists(f'/proc/{pid}/comm') else '?'})")
    if st.get("StatusText"):
        print(f'     Status: "{st["StatusText"]}"')
    if lines := tail(unit, n):
        print("\n" + "\n".join(lines))
    return 0 if active == "active" else 3

def properties(unit):
    path, u = load(unit)
    st, u, g = current(unit), u or {}, lambda k, d=0: st.get(k, d)
    return {"Id": unit, "Description": val(u, "Unit", "Description", unit), "LoadState": "loaded" if path else "not-found",
            "ActiveState": g("ActiveState", "inactive"), "SubState": g("SubState", "dead"), "Result": g("Result", "success"),
            "UnitFileState": file_state(unit) or "", "FragmentPath": path or "", "MainPID": g("MainPID"), "ExecMainPID": g("ExecMainPID"),
            "ExecMainCode": g("ExecMainCode"), "ExecMainStatus": g("ExecMainStatus"), "NRestarts": g("NRestarts"), "InvocationID": g("InvocationID", ""),
            "StatusText": g("StatusText", ""), "Type": val(u, "Service", "Type", "simple"), "Restart": val(u, "Service", "Restart", "no"),
            "User": val(u, "Service", "User", ""), "ActiveEnterTimestamp": stamp(g("ActiveEnterTimestamp")), "LastTriggerUSec": stamp(g("LastTrigger"))}

def list_timers(everything):
    names = sorted({f for d in UNIT_DIRS + [os.path.join(STATE, "loaded")] if os.path.isdir(d) for f in os.listdir(d) if f.endswith(".timer")})
    rows = [(n, state(n)) for n in names if everything or state(n).get("ActiveState") == "active"]
    print(f"{'NEXT':<6}{'LEFT':<6}{'LAST':<29}{'PASSED':<12}{'UNIT':<32}ACTIVATES")
    for n, st in rows:
        print(f"{'n/a':<6}{'n/a':<6}{stamp(st.get('LastTrigger')):<29}{ago(st.get('LastTrigger')):<12}{n:<32}{trigger(n, load(n)[1] or {})}")
    print(f"\n{len(rows)} timers listed." + ("" if everything else "\nPass --all to see loaded but inactive timers, too."))

def fire(timer):
    """standin-fire (stand-in extension): what the timer would do when it elapses, synchronously."""
    path, u = load(timer)
    if u is None or not timer.endswith(".timer"):
        raise Fail(f"standin-fire: {timer} is not a timer unit.", 5)
    if (st := state(timer)).get("ActiveState") != "active":
        raise Fail(f"standin-fire: {timer} is not active (start or enable --now it first).")
    st["LastTrigger"] = time.time()
    save(timer, st)
    try:
        return start(trigger(timer, u)) or 0
    except Fail as e:
        eprint(e)
        return state(trigger(timer, u)).get("ExecMainStatus") or e.code

def systemctl(args):
    opts, rest = getopt.gnu_getopt(args, "qp:s:an:l", ["quiet", "now", "no-pager", "property=", "value", "signal=", "all", "lines=", "full",
                                                       "no-legend", "system", "no-ask-password", "no-block"])
    o = {}
    for k, v in opts:
        o.setdefault({"-q": "quiet", "-p": "property", "-s": "signal", "-a": "all", "-n": "lines", "-l": "full"}.get(k, k[2:]), []).append(v)
    verb, units, rc = (rest or [""])[0], [norm(x) for x in rest[1:]], 0
    if verb == "daemon-reload":
        shutil.rmtree(os.path.join(STATE, "loaded"), ignore_errors=True)
        for name in {f for d in UNIT_DIRS if os.path.isdir(d) for f in os.listdir(d) if f.endswith((".service", ".timer"))}:
            if (snap := dict(zip(("path", "text"), disk(name))))["text"] is not None:
                write_json(os.path.join(mkdir("loaded"), name), snap)
        return 0
    if verb == "list-timers":
        return list_timers("all" in o)
    if verb not in "start stop restart enable disable is-enabled is-active status show kill reset-failed standin-fire".split():
        raise Fail(f"Unknown command verb '{verb}'." if verb else "systemctl stand-in: a verb is needed.")
    if not units:
        raise Fail(f"Too few arguments: {verb} needs a unit.")
    for unit in units:
        if verb in ("start", "stop", "restart", "status") or "now" in o:
            load(unit, warn=True)  # the daemon-reload warning, once
        if verb in ("enable", "disable"):
            enable(unit, verb == "enable")
        if verb in ("stop", "restart") or (verb == "disable" and "now" in o):
            stop(unit, verb if verb != "disable" else "stop")
        if verb in ("start", "restart") or (verb == "enable" and "now" in o):
            start(unit, verb if verb != "enable" else "start", block="no-block" not in o)
        if verb in ("is-enabled", "is-active"):
            if (answer := file_state(unit) if verb == "is-enabled" else current(unit).get("ActiveState", "inactive")) is None:
                raise Fail(f"Failed to get unit file state for {unit}: No such file or directory")
            print(answer) if "quiet" not in o else None
            rc = max(rc, 0 if answer in ("enabled", "static", "active") else 1 if verb == "is-enabled" else 3)
        elif verb == "status":
            rc = max(rc, status(unit, int(o.get("lines", ["10"])[-1])))
        elif verb == "show":
            p = properties(unit)
            for name in [x for v in o.get("property", []) for x in v.split(",")] or list(p):
                if name not in p:
                    raise Fail(f"systemctl stand-in: unknown property '{name}' (known: {', '.join(p)}).")
                print(p[name] if "value" in o else f"{name}={p[name]}")
        elif verb == "kill":
            sig = o.get("signal", ["SIGTERM"])[-1]
            if not isinstance(num := int(sig) if sig.isdigit() else getattr(signal, "SIG" + sig.upper().removeprefix("SIG"), None), int):
                raise Fail(f"Failed to parse signal string {sig}.")
            if not (pid := current(unit).get("MainPID") if supervisor(unit) else 0):
                raise Fail(f"Failed to kill unit {unit}: No main process to kill")
            os.kill(pid, num)
        elif verb == "reset-failed":
            (st := state(unit))["StartTimes"] = []
            save(unit, st, *(("inactive", "dead", "success") if st.get("ActiveState") == "failed" else ()))
        elif verb == "standin-fire":
            rc = max(rc, fire(unit))
    return rc

def journalctl(args):
    args = [a + "10" if a == "-n" and (i + 1 == len(args) or not re.fullmatch(r"\d+|all", args[i + 1])) else a for i, a in enumerate(args)]
    opts, rest = getopt.gnu_getopt(args, "u:n:o:xeq", ["unit=", "lines=", "output=", "no-pager", "catalog", "pager-end", "quiet"])
    units = [norm(v) for k, v in opts if k in ("-u", "--unit")]
    modes = [v for k, v in opts if k in ("-o", "--output")]
    counts = [v for k, v in opts if k in ("-n", "--lines")] or (["1000"] if ("-e", "") in opts else ["all"])  # -e implies -n1000
    if rest or not units or set(modes) - {"short", "cat"}:
        raise Fail("journalctl stand-in: needs -u UNIT; supports only -n, -o short|cat, -x, -e, -q, --no-pager.")
    lines, n = [line for unit in units for line in tail(unit, None)], None if counts[-1] == "all" else int(counts[-1])
    for line in (lines if n is None else lines[-n:] if n else []) or ["-- No entries --"]:
        print(re.sub(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s\[]+\[\d+\]: ", "", line) if modes[-1:] == ["cat"] else line)

def main():
    prog = os.path.basename(sys.argv[0])
    try:
        return (journalctl if prog.startswith("journalctl") else systemctl)(sys.argv[1:]) or 0
    except Fail as e:
        eprint(e)
        return e.code
    except (getopt.GetoptError, ValueError) as e:
        eprint(f"{prog}: {e}")
        return 1

if __name__ == "__main__":
    sys.exit(main())
