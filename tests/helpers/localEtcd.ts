/**
 * A single-member etcd (Debian's /usr/bin/etcd) on a loopback address over plain HTTP, for tests that run
 * scripts against a real server: bounded start (until `endpoint health` passes), stopped by its own PID
 * (TERM, then KILL), etcdctl without any ETCDCTL_* of the caller.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";

export const ETCD = "/usr/bin/etcd";
export const ETCDCTL = "/usr/bin/etcdctl";

/** This process's environment minus any ETCDCTL_* it may carry. */
export function cleanEnv(): NodeJS.ProcessEnv {
    return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ETCDCTL_")));
}

export interface LocalEtcdOptions {
    addr: string;
    dataDir: string;
    /** Member name; default `m<last octet>`. */
    name?: string;
    clientPort?: number;
    peerPort?: number;
    /** More flags (quota, metrics listener, …). */
    extra?: string[];
    /** Health checks 250 ms apart before giving up; default 80 (20 s). */
    startChecks?: number;
    /**
     * `--initial-cluster` for a member of a multi-member cluster (default: this member alone). Start the
     * members together: each start waits until its member is healthy, which needs a quorum.
     */
    initialCluster?: string;
}

export class LocalEtcd {
    proc: ChildProcess | undefined;
    log = "";
    readonly name: string;

    constructor(readonly opts: LocalEtcdOptions) {
        this.name = opts.name ?? `m${opts.addr.split(".")[3]}`;
    }

    get endpoint(): string {
        return `http://${this.opts.addr}:${this.opts.clientPort ?? 2379}`;
    }

    /** etcdctl against this member (bounded). */
    ctl(args: string[], input?: string) {
        return spawnSync(ETCDCTL, [`--endpoints=${this.endpoint}`, "--dial-timeout=2s", "--command-timeout=5s", ...args], {
            input,
            encoding: "utf8",
            timeout: 15_000,
            env: { ...cleanEnv(), ETCDCTL_API: "3" },
        });
    }

    /** Starts etcd (creating the data dir 0700 when missing) and waits until it is healthy. */
    async start(token = `local-etcd-${this.name}`): Promise<void> {
        if (!fs.existsSync(this.opts.dataDir)) fs.mkdirSync(this.opts.dataDir, { mode: 0o700 });
        const peer = `http://${this.opts.addr}:${this.opts.peerPort ?? 2380}`;
        this.log = "";
        this.proc = spawn(
            ETCD,
            [
                `--name=${this.name}`,
                `--data-dir=${this.opts.dataDir}`,
                `--listen-client-urls=${this.endpoint}`,
                `--advertise-client-urls=${this.endpoint}`,
                `--listen-peer-urls=${peer}`,
                `--initial-advertise-peer-urls=${peer}`,
                `--initial-cluster=${this.opts.initialCluster ?? `${this.name}=${peer}`}`,
                `--initial-cluster-token=${token}`,
                "--initial-cluster-state=new",
                "--logger=zap",
                "--log-outputs=stderr",
                ...(this.opts.extra ?? []),
            ],
            { stdio: ["ignore", "pipe", "pipe"] },
        );
        this.proc.stdout!.on("data", (d) => (this.log += d));
        this.proc.stderr!.on("data", (d) => (this.log += d));
        const checks = this.opts.startChecks ?? 80;
        for (let i = 0; i < checks; i++) {
            if (this.proc.exitCode !== null) throw new Error(`etcd at ${this.opts.addr} exited ${this.proc.exitCode}:\n${this.log.slice(-3000)}`);
            if (this.ctl(["endpoint", "health"]).status === 0) return;
            await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`etcd at ${this.opts.addr} not healthy within ${checks / 4} s:\n${this.log.slice(-3000)}`);
    }

    /** TERM by PID, KILL after 10 s, and wait (bounded) until it has exited. */
    async stop(): Promise<void> {
        const p = this.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
        const exited = new Promise((r) => p.once("exit", r));
        let timer: NodeJS.Timeout | undefined;
        process.kill(p.pid, "SIGTERM");
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
        if (p.exitCode === null && p.signalCode === null) {
            process.kill(p.pid, "SIGKILL");
            await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
            clearTimeout(timer);
        }
    }
}
