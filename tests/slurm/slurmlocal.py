"""A real one-node Slurm cluster on localhost for tests, from Debian's
packages (munge, slurmctld, slurmd, slurm-client), as root without systemd
or cgroups. Everything lives in one temporary directory: the munge key and
socket, slurm.conf, state, spool, logs. Daemons run in the foreground as
children of the test, so they are stopped by PID. Clients need SLURM_CONF
(in self.env)."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, cpus=None):
        self.dir = tempfile.mkdtemp(prefix="tessera-slurm-")
        os.chmod(self.dir, 0o755)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = min(cpus or os.cpu_count(), os.cpu_count())  # a node larger than the machine breaks jobs
        self.procs = []
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.dir, "slurm.conf"))

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def start(self, timeout=60):
        try:
            self._munge()
            self._conf()
            for d in ("state", "spool", "log"):
                os.mkdir(self.path(d))
            self._daemon(["slurmctld", "-D", "-i"], "slurmctld")
            self._daemon(["slurmd", "-D"], "slurmd")
            t = time.monotonic()
            while self.sinfo_state() != "idle":
                if time.monotonic() - t > timeout:
                    raise RuntimeError(f"the Slurm node is not idle after {timeout} s ({self.sinfo_state()!r}):\n"
                                       + self.logs())
                for p, name in self.procs:
                    if p.poll() is not None:
                        raise RuntimeError(f"{name} exited with {p.returncode}:\n" + self.logs())
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def _munge(self):
        m = pwd.getpwnam("munge")
        d = self.path("munge")
        os.mkdir(d, 0o755)  # the socket needs execute permission for all
        os.chown(d, m.pw_uid, m.pw_gid)
        key = os.path.join(d, "munge.key")
        subprocess.run(["mungekey", "--create", "--keyfile", key], check=True, capture_output=True)
        os.chown(key, m.pw_uid, m.pw_gid)
        os.chmod(key, 0o600)
        self.munge_socket = os.path.join(d, "munge.socket")
        # munged must run as the munge user
        p = subprocess.Popen(["munged", "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
                              f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log",
                              f"--seed-file={d}/munged.seed"],
                             user=m.pw_uid, group=m.pw_gid, extra_groups=[], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(d, "munged.stderr"), "w"))
        self.procs.append((p, "munged"))
        t = time.monotonic()
        while not os.path.exists(self.munge_socket):
            if p.poll() is not None or time.monotonic() - t > 20:
                raise RuntimeError("munged did not start:\n" + open(os.path.join(d, "munged.stderr")).read())
            time.sleep(0.05)

    def _conf(self):
        d = self.dir
        conf = f"""# written by tests/slurm/slurmlocal.py: one node, no cgroups, no accounting
ClusterName=tessera-test
SlurmctldHost={self.host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: how long a requeued job waits before it may start again (default 120 s);
# sched_interval: how often pending jobs are looked at again (default 60 s)
AuthInfo=socket={self.munge_socket},cred_expire=5
SchedulerParameters=sched_interval=1
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=5
NodeName={self.host} CPUs={self.cpus} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.path("slurm.conf"), "w") as f:
            f.write(conf)

    def _daemon(self, cmd, name):
        p = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=open(self.path(f"{name}.stderr"), "w"))
        self.procs.append((p, name))

    def logs(self):
        out = []
        for f in ("munge/munged.stderr", "slurmctld.stderr", "slurmd.stderr", "log/slurmctld.log", "log/slurmd.log"):
            try:
                out.append(f"--- {f}\n" + open(self.path(f)).read()[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def cmd(self, *args, check=True, timeout=30, **kw):
        p = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=self.env, timeout=timeout, **kw)
        if check and p.returncode:
            raise AssertionError(f"{' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        return p

    def sinfo_state(self):
        return self.cmd("sinfo", "-h", "-o", "%t", check=False).stdout.strip()

    def sbatch(self, *args, cwd, env=None):
        p = subprocess.run(["sbatch", "--parsable", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                           env=dict(self.env, **(env or {})), timeout=30)
        if p.returncode:
            raise AssertionError(f"sbatch failed:\n{p.stderr}")
        return p.stdout.strip().split(";")[0]

    def job(self, jobid):
        """scontrol's fields of a job, as a dict."""
        out = self.cmd("scontrol", "show", "job", "-o", jobid).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait(self, jobid, timeout, state=None):
        """Wait until the job reaches `state` (default: any final state); returns its fields."""
        t = time.monotonic()
        while True:
            j = self.job(jobid)
            if (j["JobState"] == state) if state else (j["JobState"] in FINAL):
                return j
            if time.monotonic() - t > timeout:
                self.cmd("scancel", jobid, check=False)
                raise AssertionError(f"job {jobid} is {j['JobState']} ({j.get('Reason')}) after {timeout} s\n"
                                     + self.logs())
            time.sleep(0.1)

    def stop(self):
        """Cancel every job, then stop the daemons this object started, by PID."""
        if any(name == "slurmctld" and p.poll() is None for p, name in self.procs):
            self.cmd("scancel", "--user=root", check=False)
            time.sleep(0.5)
        for p, name in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        shutil.rmtree(self.dir, ignore_errors=True)
